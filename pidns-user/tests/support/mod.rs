//! Fixture proc trees: directories laid out like /proc, whose `ns/*` entries
//! are plain symlinks with `pid:[N]` text, as in an evidence tree.

#![allow(dead_code)]

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Output,
};

use assert_cmd::Command;
use serde_json::Value;

pub const HOST_NS: u64 = 4026531836;
/// The host's mount namespace.
pub const HOST_MNT: u64 = 4026531832;
pub const ID_A: &str = "40e9cfb459ea932ec1f41ca728c2afb10676bb793b3ad87f4b67f7873eccbae4";
pub const ID_B: &str = "ee1ce7f35ea818835a188ca162e83d4161ff729138d981a1e6d1b304aea23448";
pub const ID_C: &str = "c1c292754f149691ee92da26fd9375d3c02ce1f75711ef956e2bf7437ed81268";
pub const POD_UID: &str = "1c0ffee0-1234-4abc-9def-0123456789ab";

/// How a fixture process's `ns/pid` looks.
#[derive(Clone, Copy)]
pub enum Link {
    /// A symlink `pid:[N]`.
    Ns(u64),
    /// Present but unreadable as a link (a regular file: readlink fails with
    /// EINVAL, which is how the fixtures stand in for EACCES, since root
    /// reads everything).
    Unreadable,
    /// No `ns/` at all (e.g. evidence captured without links).
    Missing,
}

pub struct P {
    pub comm: String,
    pub ppid: u32,
    pub link: Link,
    pub children: Option<u64>,
    /// `None`: no NSpid line.
    pub nspid: Option<Vec<u32>>,
    pub cgroup: String,
    /// Its `ns/mnt` (none with [`Link::Missing`]).
    pub mnt: Option<u64>,
    /// The directory (below the tree's `roots/`) its `root` links to;
    /// `None`: no `root` entry.
    pub root: Option<String>,
    /// The real uid in its `status`.
    pub uid: u32,
}

impl P {
    /// A process in the host PID namespace.
    pub fn host(comm: &str, pid: u32) -> P {
        P {
            comm: comm.into(),
            ppid: 1,
            link: Link::Ns(HOST_NS),
            children: Some(HOST_NS),
            nspid: Some(vec![pid]),
            cgroup: "0::/\n".into(),
            mnt: Some(HOST_MNT),
            root: Some("host".into()),
            uid: 0,
        }
    }

    /// A process in a nested PID namespace `ns`, where it is PID `inner`.
    pub fn nested(comm: &str, pid: u32, ns: u64, inner: u32) -> P {
        P {
            comm: comm.into(),
            ppid: 1,
            link: Link::Ns(ns),
            children: Some(ns),
            nspid: Some(vec![pid, inner]),
            cgroup: "0::/\n".into(),
            mnt: Some(HOST_MNT),
            root: Some("host".into()),
            uid: 0,
        }
    }

    /// cgroup v2 only.
    pub fn v2(mut self, path: &str) -> P {
        self.cgroup = format!("0::{path}\n");
        self
    }

    /// cgroup v1 only (no unified hierarchy).
    pub fn v1(mut self, path: &str) -> P {
        self.cgroup = format!(
            "12:pids:{path}\n11:memory:{path}\n3:cpu,cpuacct:{path}\n1:name=systemd:{path}\n"
        );
        self
    }

    /// Hybrid: v1 controllers and the v2 unified tree.
    pub fn hybrid(mut self, path: &str) -> P {
        self.cgroup = format!("9:name=systemd:{path}\n4:memory:{path}\n1:cpu:{path}\n0::{path}\n");
        self
    }

    pub fn raw_cgroup(mut self, text: &str) -> P {
        self.cgroup = text.into();
        self
    }

    pub fn ppid(mut self, ppid: u32) -> P {
        self.ppid = ppid;
        self
    }

    pub fn link(mut self, link: Link) -> P {
        self.link = link;
        self
    }

    pub fn children(mut self, ns: u64) -> P {
        self.children = Some(ns);
        self
    }

    pub fn no_nspid(mut self) -> P {
        self.nspid = None;
        self
    }

    /// A container's process by its root: in mount namespace `mnt`, on the
    /// directory `roots/<root>` of the tree.
    pub fn on_root(mut self, root: &str, mnt: u64) -> P {
        self.root = Some(root.into());
        self.mnt = Some(mnt);
        self
    }

    /// Its `ns/mnt` link.
    pub fn mnt(mut self, mnt: Option<u64>) -> P {
        self.mnt = mnt;
        self
    }

    /// No `root` entry (an evidence tree captured without it).
    pub fn no_root(mut self) -> P {
        self.root = None;
        self
    }

    pub fn uid(mut self, uid: u32) -> P {
        self.uid = uid;
        self
    }
}

pub struct Tree {
    pub dir: tempfile::TempDir,
}

impl Tree {
    /// A tree with PID 1 (init) and PID 2 (kthreadd) in the host namespace.
    pub fn new() -> Tree {
        let t = Tree {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        t.add(1, P::host("systemd", 1).v2("/init.scope").ppid(0));
        t.add(2, P::host("kthreadd", 2).ppid(0));
        t
    }

    /// A tree with nothing in it.
    pub fn empty() -> Tree {
        Tree {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn proc_root(&self) -> String {
        self.dir.path().display().to_string()
    }

    pub fn add(&self, pid: u32, p: P) -> &Tree {
        let d = self.dir.path().join(pid.to_string());
        fs::create_dir_all(&d).expect("pid dir");
        fs::write(d.join("comm"), format!("{}\n", p.comm)).expect("comm");
        let nspid = p.nspid.map(|ids| {
            format!(
                "NSpid:\t{}\n",
                ids.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join("\t")
            )
        });
        fs::write(
            d.join("status"),
            format!("Name:\t{}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nPid:\t{pid}\nPPid:\t{}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n{}", p.comm, p.ppid, nspid.unwrap_or_default(), uid = p.uid),
        )
        .expect("status");
        fs::write(d.join("cgroup"), p.cgroup).expect("cgroup");
        // Re-adding a process replaces its links rather than writing through them.
        let _ = fs::remove_dir_all(d.join("ns"));
        let _ = fs::remove_file(d.join("root"));
        if let Some(root) = &p.root {
            let dir = self.root_dir(root);
            symlink(dir, d.join("root")).expect("root");
        }
        if let (Some(mnt), false) = (p.mnt, matches!(p.link, Link::Missing)) {
            fs::create_dir_all(d.join("ns")).expect("ns");
            symlink(format!("mnt:[{mnt}]"), d.join("ns/mnt")).expect("ns/mnt");
        }
        match p.link {
            Link::Missing => {}
            Link::Ns(ino) => {
                fs::create_dir_all(d.join("ns")).expect("ns");
                symlink(format!("pid:[{ino}]"), d.join("ns/pid")).expect("ns/pid");
                if let Some(c) = p.children {
                    symlink(format!("pid:[{c}]"), d.join("ns/pid_for_children"))
                        .expect("pid_for_children");
                }
            }
            Link::Unreadable => {
                fs::create_dir_all(d.join("ns")).expect("ns");
                fs::write(d.join("ns/pid"), "").expect("ns/pid");
                fs::write(d.join("ns/pid_for_children"), "").expect("ns/pid_for_children");
            }
        }
        self
    }

    /// The directory `roots/<name>` of the tree, which processes' `root`
    /// entries link to (created if need be).
    pub fn root_dir(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join("roots").join(name);
        fs::create_dir_all(&dir).expect("root dir");
        dir
    }

    /// Makes PID 1's link unreadable, as on hardened hosts.
    pub fn harden_init(&self) -> &Tree {
        let ns = self.dir.path().join("1/ns");
        let _ = fs::remove_file(ns.join("pid"));
        let _ = fs::remove_file(ns.join("pid_for_children"));
        fs::write(ns.join("pid"), "").expect("ns/pid");
        self
    }

    pub fn write(&self, rel: &str, body: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("parent dir");
        fs::write(&p, body).expect("write");
        p
    }
}

pub fn pidns() -> Command {
    let mut c = Command::cargo_bin("pidns").expect("pidns binary");
    c.env_remove("PIDNS_PROC_ROOT")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    c
}

/// Runs `pidns scan --format json --proc-root <tree> <extra>`; returns (exit code, JSON).
pub fn scan_json(tree: &Tree, extra: &[&str]) -> (i32, Value) {
    let out = pidns()
        .args(["scan", "--format", "json", "--proc-root", &tree.proc_root()])
        .args(extra)
        .output()
        .expect("run pidns");
    (
        code(&out),
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr))),
    )
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

pub fn container<'a>(json: &'a Value, id: &str) -> &'a Value {
    json["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no container {id} in {json:#}"))
}
