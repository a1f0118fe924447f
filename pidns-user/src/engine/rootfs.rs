//! Container processes by the root they run on, whatever their cgroup.
//!
//! A container process runs in a mount namespace other than the host's, on
//! a root directory that is not the host's (an overlay, a bind-mounted
//! tree). A host service in a private mount namespace (systemd's
//! `PrivateTmp=`, `unshare -m`) keeps the host's root; a plain `chroot` in
//! the host's mount namespace (sshd's privilege separation) keeps the
//! host's mount namespace. Neither is a container process: it takes both.
//!
//! The API watch shares with scan:
//! - [`root_fact`]: given a proc root, a pid and the host's identity
//!   ([`HostIdentity`]), whether the process is container-like;
//! - [`RootAttribution::attribute`]: which container it is, by its root
//!   filesystem matched (device and inode) with runtimes' on-disk state
//!   ([`crate::state`]), else runtime `unknown` with its root mount's
//!   source as its id;
//! - [`container_like`]: both in one call.

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use super::host::HostIdentity;
use crate::{
    error::{ReadError, ReadErrorKind},
    parse::{
        layout::Runtime,
        mountinfo::{self, RootMount},
        stat,
    },
    procfs::{FileId, ProcRoot},
    report::RootMountReport,
    state::{CgroupRecord, Match, Recorded, RootIndex},
};

/// How long a loaded [`RootIndex`] is trusted before a root that matches
/// nothing in it makes it reload (watch runs for days; a scan, once).
const INDEX_RELOAD: Duration = Duration::from_secs(1);

/// What a process's root and mount namespace say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootFact {
    /// It runs on the host's root (whatever its mount namespace).
    HostRoot,
    /// Another root, in the host's mount namespace: a plain `chroot`.
    Chroot,
    /// A kernel thread on a root of its own (`kdevtmpfs` runs on devtmpfs
    /// in a mount namespace of its own): the kernel's, no container's.
    KernelThread,
    /// Another root in another mount namespace: a container process.
    /// `mnt_ns` is `None` when its link was unreadable (counted as another).
    ContainerLike {
        root: FileId,
        mnt_ns: Option<u64>,
    },
    /// Its root could not be read (not root, an evidence tree without it).
    Unreadable(ReadError),
    Vanished,
}

/// Whether `pid` is container-like: one `stat` of its root, and a readlink
/// of its `ns/mnt` and a read of its `stat` (a kernel thread's flags) only
/// when the root is not the host's. The caller checks that `host` is
/// [usable](HostIdentity::usable).
pub fn root_fact(proc: &ProcRoot, pid: u32, host: &HostIdentity) -> RootFact {
    let gone = |e: &ReadError| e.kind == ReadErrorKind::Vanished && !proc.exists(pid);
    let root = match proc.root_id(pid) {
        Ok(root) => root,
        Err(e) if gone(&e) => return RootFact::Vanished,
        Err(e) => return RootFact::Unreadable(e),
    };
    if Some(root) == host.root {
        return RootFact::HostRoot;
    }
    let mnt_ns = match proc.ns_inode(pid, "mnt") {
        Ok(mnt) if Some(mnt) == host.mnt_ns => return RootFact::Chroot,
        Ok(mnt) => Some(mnt),
        Err(e) if gone(&e) => return RootFact::Vanished,
        // Another root and no telling where: judged, never dropped.
        Err(_) => None,
    };
    let mut buf = Vec::new();
    if proc.read_into(pid, "stat", &mut buf).is_ok() && stat::is_kernel_thread(&buf) == Some(true) {
        return RootFact::KernelThread;
    }
    RootFact::ContainerLike { root, mnt_ns }
}

/// Which container a container-like process belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    pub runtime: Runtime,
    pub id: String,
    /// containerd's namespace, when that runtime's.
    pub namespace: Option<String>,
    /// The recorded root filesystem its root matched (none for `unknown`).
    pub rootfs: Option<PathBuf>,
    /// Where its runtime puts its processes.
    pub cgroup: CgroupRecord,
    /// The mount its root is on, from its mountinfo.
    pub root_mount: Option<RootMountReport>,
    /// Why a root that matched records is still `unknown`.
    pub note: Option<String>,
}

/// Attributes container-like processes to containers, reading runtimes'
/// state below `state_root` once (and again, at most once a second, when a
/// root matches nothing: a container started since).
#[derive(Debug)]
pub struct RootAttribution {
    state_root: Option<PathBuf>,
    index: Option<(RootIndex, Instant)>,
    cache: HashMap<(FileId, Option<u64>), Attribution>,
}

impl RootAttribution {
    /// `state_root`: the host root where runtimes keep their state (`/` for
    /// the live /proc); without it every container-like process is `unknown`.
    pub fn new(state_root: Option<PathBuf>) -> RootAttribution {
        RootAttribution {
            state_root,
            index: None,
            cache: HashMap::new(),
        }
    }

    /// The container whose root filesystem `root` is. `mnt_ns` (the
    /// process's) tells apart containers that run on one root, by their
    /// recorded init's mount namespace. Reads the process's mountinfo for
    /// its root mount; the answer is kept for that root and namespace.
    pub fn attribute(
        &mut self,
        proc: &ProcRoot,
        pid: u32,
        root: FileId,
        mnt_ns: Option<u64>,
    ) -> Attribution {
        if let Some(known) = self.cache.get(&(root, mnt_ns)) {
            return known.clone();
        }
        let same = |init: u32| mnt_ns.is_some() && proc.ns_inode(init, "mnt").ok() == mnt_ns;
        let mut found = self.lookup(root, &same);
        if found.is_none() && self.stale() {
            self.index = None;
            found = self.lookup(root, &same);
        }
        let mut buf = Vec::new();
        let mount = proc
            .read_into(pid, "mountinfo", &mut buf)
            .ok()
            .and_then(|()| mountinfo::root_mount(&buf, Some(root.major_minor())));
        let attribution = match found {
            Some(Ok(r)) => Attribution {
                runtime: r.runtime,
                id: r.id,
                namespace: r.namespace,
                rootfs: Some(r.rootfs),
                cgroup: r.cgroup,
                root_mount: mount.as_ref().map(report),
                note: None,
            },
            Some(Err(note)) => unknown(mount.as_ref(), root, Some(note)),
            None => unknown(mount.as_ref(), root, None),
        };
        self.cache.insert((root, mnt_ns), attribution.clone());
        attribution
    }

    /// The record `root` matches: `Err` with why when several do.
    fn lookup(
        &mut self,
        root: FileId,
        same: &dyn Fn(u32) -> bool,
    ) -> Option<Result<Recorded, String>> {
        let state_root = self.state_root.as_ref()?;
        let (index, _) = self
            .index
            .get_or_insert_with(|| (RootIndex::load(state_root), Instant::now()));
        match index.lookup(root, same) {
            Match::One(r) => Some(Ok(r.clone())),
            Match::Ambiguous(all) => Some(Err(format!(
                "its root is that of several containers ({}), and none's recorded init shares its mount namespace",
                all.iter()
                    .map(|r| format!("{} {}", r.runtime, r.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            Match::None => None,
        }
    }

    fn stale(&self) -> bool {
        self.index
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() >= INDEX_RELOAD)
    }
}

/// Container-like or not, and if so whose: [`root_fact`] then
/// [`RootAttribution::attribute`]. `None` for a host process (or a process whose
/// root could not be read, or that is gone).
pub fn container_like(
    proc: &ProcRoot,
    pid: u32,
    host: &HostIdentity,
    roots: &mut RootAttribution,
) -> Option<Attribution> {
    match root_fact(proc, pid, host) {
        RootFact::ContainerLike { root, mnt_ns } => Some(roots.attribute(proc, pid, root, mnt_ns)),
        _ => None,
    }
}

/// A container no runtime's state accounts for: runtime `unknown`, its id
/// the root mount's source (an overlay's upperdir; a bind mount's
/// directory after its source), or its root's device and inode.
fn unknown(mount: Option<&RootMount>, root: FileId, note: Option<String>) -> Attribution {
    let id = match mount {
        Some(RootMount {
            upperdir: Some(upper),
            ..
        }) => upper.clone(),
        Some(m) => {
            let source = m.source.clone().unwrap_or_else(|| m.fs_type.clone());
            if m.root == "/" {
                source
            } else {
                format!("{source}:{}", m.root)
            }
        }
        None => {
            let (major, minor) = root.major_minor();
            format!("dev {major}:{minor} ino {}", root.ino)
        }
    };
    Attribution {
        runtime: Runtime::Unknown,
        id,
        namespace: None,
        rootfs: None,
        cgroup: CgroupRecord::Unknown,
        root_mount: mount.map(report),
        note,
    }
}

fn report(m: &RootMount) -> RootMountReport {
    RootMountReport {
        device: format!("{}:{}", m.major, m.minor),
        fs_type: m.fs_type.clone(),
        source: m.source.clone(),
        root: m.root.clone(),
        upperdir: m.upperdir.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Tree;

    const HOST_MNT: u64 = 4026531832;

    /// A host root, a container's root and a chroot directory, and the
    /// processes on them.
    fn tree() -> (Tree, HostIdentity) {
        let t = Tree::new();
        for d in ["hostroot", "ctr", "chroot"] {
            std::fs::create_dir(t.path().join(d)).unwrap();
        }
        let host_root = t.path().join("hostroot");
        t.pid(10).ns("mnt", HOST_MNT).root(&host_root);
        // unshare -m: another mount namespace, the host's root
        t.pid(11).ns("mnt", 4026532001).root(&host_root);
        // sshd's privilege separation: the host's mount namespace, a chroot
        t.pid(12).ns("mnt", HOST_MNT).root(&t.path().join("chroot"));
        // a container
        t.pid(13)
            .ns("mnt", 4026532002)
            .root(&t.path().join("ctr"))
            .file(
                "mountinfo",
                "204 105 254:0 /srv/ctr / rw,relatime - ext4 /dev/vda rw\n",
            );
        // another root and an unreadable mount namespace link
        t.pid(14).root(&t.path().join("ctr"));
        // no root at all (an evidence tree that lacks it)
        t.pid(15).ns("mnt", 4026532003);
        // kdevtmpfs: a kernel thread in a mount namespace of its own
        t.pid(27)
            .ns("mnt", 4026531860)
            .root(&t.path().join("chroot"))
            .file("stat", "27 (kdevtmpfs) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 20 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
        let proc = t.proc();
        let host = HostIdentity {
            mnt_ns: Some(HOST_MNT),
            root: proc.root_id(10).ok(),
        };
        (t, host)
    }

    #[test]
    fn both_the_mount_namespace_and_the_root_make_a_container_process() {
        let (t, host) = tree();
        let proc = t.proc();
        assert_eq!(root_fact(&proc, 10, &host), RootFact::HostRoot);
        assert_eq!(root_fact(&proc, 11, &host), RootFact::HostRoot);
        assert_eq!(root_fact(&proc, 12, &host), RootFact::Chroot);
        let ctr = proc.root_id(13).unwrap();
        assert_eq!(
            root_fact(&proc, 13, &host),
            RootFact::ContainerLike {
                root: ctr,
                mnt_ns: Some(4026532002)
            }
        );
        assert_eq!(
            root_fact(&proc, 14, &host),
            RootFact::ContainerLike {
                root: ctr,
                mnt_ns: None
            }
        );
        assert!(matches!(
            root_fact(&proc, 15, &host),
            RootFact::Unreadable(_)
        ));
        assert_eq!(root_fact(&proc, 99, &host), RootFact::Vanished);
    }

    #[test]
    fn runtimes_state_names_the_container_else_its_root_mount_does() {
        let (t, host) = tree();
        let proc = t.proc();
        // no state: unknown, named after its root mount
        let mut none = RootAttribution::new(None);
        let a = container_like(&proc, 13, &host, &mut none).expect("container-like");
        assert_eq!(
            (a.runtime, a.id.as_str()),
            (Runtime::Unknown, "/dev/vda:/srv/ctr")
        );
        assert_eq!(
            a.root_mount.as_ref().map(|m| m.device.as_str()),
            Some("254:0")
        );
        assert_eq!(container_like(&proc, 11, &host, &mut none), None);

        // runc's state names the root: found by device and inode
        let state = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(state.path().join("srv/ctr")).unwrap();
        t.pid(13).root(&state.path().join("srv/ctr"));
        crate::state::tests::put(
            state.path(),
            "run/runc/web/state.json",
            r#"{"init_process_pid":13,"config":{"rootfs":"/srv/ctr"},"cgroup_paths":{"":"/sys/fs/cgroup/unified/web"}}"#,
        );
        let mut runc = RootAttribution::new(Some(state.path().to_owned()));
        let a = container_like(&proc, 13, &host, &mut runc).expect("container-like");
        assert_eq!((a.runtime, a.id.as_str()), (Runtime::Runc, "web"));
        assert_eq!(a.cgroup, CgroupRecord::Path("/web".into()));
        assert_eq!(a.rootfs.as_deref(), Some(std::path::Path::new("/srv/ctr")));
    }
}
