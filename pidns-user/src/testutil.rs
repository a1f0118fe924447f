//! Fixture proc trees for unit tests: directories laid out like /proc, whose
//! `ns/*` entries are symlinks with `<type>:[<inode>]` text (read with
//! readlink, as in an evidence tree). One writer for every module's tests.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
};

use crate::procfs::ProcRoot;

/// A temporary proc root.
pub struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().expect("temporary proc root"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn proc(&self) -> ProcRoot {
        ProcRoot::open(self.path()).expect("fixture proc root")
    }

    /// `/proc/<pid>`, created empty; fill it with the builder's methods.
    pub fn pid(&self, pid: u32) -> Proc {
        Proc::at(self.path(), pid)
    }
}

/// A whole process under the proc root `root`: its cgroup (unified line),
/// `status` (name, parent, one `NSpid` entry), `stat` (start time) and
/// namespace links.
pub fn process(
    root: &Path,
    pid: u32,
    name: &str,
    ppid: u32,
    cgroup: &str,
    ns: &[(&str, u64)],
    start: u64,
) -> Proc {
    let mut p = Proc::at(root, pid)
        .cgroup(cgroup)
        .status(name, ppid)
        .stat(name, ppid, start);
    for (ty, ino) in ns {
        p = p.ns(ty, *ino);
    }
    p
}

/// One fixture process directory.
pub struct Proc {
    dir: PathBuf,
    pid: u32,
}

impl Proc {
    /// `<root>/<pid>`, created (with an empty `ns/`) if need be.
    pub fn at(root: &Path, pid: u32) -> Proc {
        let dir = root.join(pid.to_string());
        fs::create_dir_all(dir.join("ns")).expect("pid dir");
        Proc { dir, pid }
    }

    /// A file under the process directory, as given.
    pub fn file(self, name: &str, contents: &str) -> Proc {
        let path = self.dir.join(name);
        fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        fs::write(path, contents).expect("fixture file");
        self
    }

    /// `cgroup` with one unified (v2) line.
    pub fn cgroup(self, path: &str) -> Proc {
        self.file("cgroup", &format!("0::{path}\n"))
    }

    /// `status` with a name, a parent and one `NSpid` entry (the proc root's
    /// own PID namespace).
    pub fn status(self, name: &str, ppid: u32) -> Proc {
        let pid = self.pid;
        self.file(
            "status",
            &format!("Name:\t{name}\nPPid:\t{ppid}\nNSpid:\t{pid}\n"),
        )
    }

    /// `stat` with a parent and a start time (clock ticks after boot).
    pub fn stat(self, name: &str, ppid: u32, start: u64) -> Proc {
        let pid = self.pid;
        self.file(
            "stat",
            &format!("{pid} ({name}) S {ppid} 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"),
        )
    }

    /// `ns/<ty>` as a link to `<ty>:[<ino>]`, replacing any there.
    pub fn ns(self, ty: &str, ino: u64) -> Proc {
        self.link(ty, &format!("{ty}:[{ino}]"))
    }

    /// `root` as a symlink to `dir`, standing in for the directory the
    /// process runs on (stat follows it, as it follows the kernel's link).
    pub fn root(self, dir: &Path) -> Proc {
        let path = self.dir.join("root");
        let _ = fs::remove_file(&path);
        symlink(dir, path).expect("root link");
        self
    }

    /// `ns/<name>` as a link with any text.
    pub fn link(self, name: &str, text: &str) -> Proc {
        let path = self.dir.join("ns").join(name);
        let _ = fs::remove_file(&path);
        symlink(text, path).expect("ns link");
        self
    }
}
