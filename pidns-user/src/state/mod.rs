//! Runtimes' on-disk state, read without their APIs: which container a root
//! filesystem is, and whether a runtime has a record of a container id.
//!
//! Each runtime has a file that lists the containers it recorded with the
//! root filesystem each runs on ([`Recorded`]); [`RootIndex`] stats those
//! roots under the host root and matches a process's root with them by
//! device and inode, which the kernel gives and a container cannot choose.
//! Nothing here decides a verdict by a name or a path a container wrote:
//! a root that matches no record is the `unknown` runtime's, still judged.
//!
//! - [`docker`]: Docker's overlay2 layers (`layerdb/mounts/<id>/mount-id`);
//! - [`storage`]: containers/storage, Podman's and CRI-O's (`containers.json`);
//! - [`containerd`]: containerd's task bundles;
//! - [`oci`]: runc (`state.json`) and crun (`status`) on their own;
//! - [`lxc`], [`nspawn`]: LXC's containers and systemd-nspawn's machines;
//! - [`records`]: whether a runtime has a record of an id.

pub mod configured;
pub mod containerd;
pub mod docker;
pub mod lxc;
pub mod nspawn;
pub mod oci;
pub mod records;
pub mod storage;

use std::{
    collections::HashMap,
    fs,
    io::Read as _,
    path::{Path, PathBuf},
};

use serde_json::Value;

use crate::{parse::layout::Runtime, procfs::FileId};

const MAX_STATE_FILE: u64 = 4 * 1024 * 1024;

/// Where a runtime puts a container's processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupRecord {
    /// This cgroup, as `/proc/<pid>/cgroup` shows it (its recorded path).
    Path(String),
    /// Always a cgroup laid out as pidns knows (Docker, Podman, CRI-O,
    /// containerd, LXC): a process found by its root instead is outside it.
    Layout,
    /// Not recorded (systemd-nspawn `--keep-unit` stays in its caller's).
    Unknown,
}

/// A container as its runtime recorded it on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub runtime: Runtime,
    pub id: String,
    /// containerd's namespace.
    pub namespace: Option<String>,
    /// Its root filesystem, as a host path.
    pub rootfs: PathBuf,
    /// Its init process, where recorded: what tells apart containers that
    /// run on one root (several `--rootfs` of one directory).
    pub init_pid: Option<u32>,
    pub cgroup: CgroupRecord,
}

/// Reads a JSON state file: only a regular file (a FIFO or device planted
/// in a host root must not hang or poke anything), at most 4 MiB.
pub fn read_json(path: &Path) -> Option<Value> {
    let mut buf = Vec::new();
    crate::procfs::open_regular(path)
        .ok()?
        .take(MAX_STATE_FILE)
        .read_to_end(&mut buf)
        .ok()?;
    serde_json::from_slice(&buf).ok()
}

/// A small state file's text (an id, a pid), trimmed.
pub fn read_text(path: &Path) -> Option<String> {
    let mut buf = String::new();
    crate::procfs::open_regular(path)
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut buf)
        .ok()?;
    Some(buf.trim().to_owned())
}

/// An id taken from a directory or file name of a runtime's state: one path
/// component, never one that walks the tree.
pub fn safe_id(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains('/') && !id.contains('\0')
}

/// `path` (a host path) below the host root `root`.
pub fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The entries of a directory, by name (those that are valid ids).
pub fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| safe_id(n))
                .collect()
        })
        .unwrap_or_default()
}

/// Every recorded container, best-informed runtime first: Docker, then
/// containers/storage and containerd, then the OCI runtimes below them,
/// then LXC and nspawn.
pub fn recorded(root: &Path) -> Vec<Recorded> {
    let mut all = Vec::new();
    docker::recorded(root, &mut all);
    storage::recorded(root, &mut all);
    containerd::recorded(root, &mut all);
    oci::recorded(root, &mut all);
    lxc::recorded(root, &mut all);
    nspawn::recorded(root, &mut all);
    all
}

/// What a process's root matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match<'a> {
    One(&'a Recorded),
    /// Several containers run on that root and nothing told them apart.
    Ambiguous(Vec<&'a Recorded>),
    None,
}

/// Recorded containers by the device and inode of their root filesystem.
#[derive(Debug, Default)]
pub struct RootIndex {
    entries: Vec<Recorded>,
    by_file: HashMap<FileId, Vec<usize>>,
    /// Overlay roots by device (every overlay mount is a superblock of its
    /// own): a process whose root is anywhere on that overlay (a chroot
    /// inside the container) runs on that container's.
    by_overlay: HashMap<u64, Vec<usize>>,
}

impl RootIndex {
    /// Reads every runtime's state below `root` and stats each root
    /// filesystem (one `stat` per container; one `statfs` per root too).
    pub fn load(root: &Path) -> RootIndex {
        let mut index = RootIndex::default();
        let mut seen: Vec<(String, FileId)> = Vec::new();
        for r in recorded(root) {
            let path = under(root, &r.rootfs);
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            let file = FileId::of(&meta);
            // The first (best-informed) record of an id on a root wins: a
            // Podman container is also runc's, a Docker one containerd's.
            if seen.iter().any(|(id, f)| *id == r.id && *f == file) {
                continue;
            }
            let i = index.entries.len();
            seen.push((r.id.clone(), file));
            index.entries.push(r);
            index.by_file.entry(file).or_default().push(i);
            let overlay = nix::sys::statfs::statfs(&path)
                .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC);
            if overlay {
                index.by_overlay.entry(file.dev).or_default().push(i);
            }
        }
        index
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The container whose root filesystem `root` is (or lies on, for an
    /// overlay). Where several run on it, `same_container(init_pid)` says
    /// whether a recorded init is in the process's container (its mount
    /// namespace); the one it picks out wins.
    pub fn lookup(&self, root: FileId, same_container: impl Fn(u32) -> bool) -> Match<'_> {
        let mut hits: Vec<usize> = self.by_file.get(&root).cloned().unwrap_or_default();
        for &i in self.by_overlay.get(&root.dev).into_iter().flatten() {
            if !hits.contains(&i) {
                hits.push(i);
            }
        }
        match hits.as_slice() {
            [] => Match::None,
            [one] => Match::One(&self.entries[*one]),
            many => {
                let picked: Vec<usize> = many
                    .iter()
                    .copied()
                    .filter(|&i| self.entries[i].init_pid.is_some_and(&same_container))
                    .collect();
                match picked.as_slice() {
                    [one] => Match::One(&self.entries[*one]),
                    _ => Match::Ambiguous(many.iter().map(|&i| &self.entries[i]).collect()),
                }
            }
        }
    }
}

/// A cgroup path a runtime recorded as an absolute path in a cgroup
/// filesystem mounted at the usual place (`/sys/fs/cgroup/unified/x`,
/// `/sys/fs/cgroup/memory/x`, `/sys/fs/cgroup/x` on a v2-only host), as
/// `/proc/<pid>/cgroup` shows it (`/x`).
pub fn cgroup_below_mount(path: &str, unified: bool) -> Option<String> {
    let rest = path.strip_prefix("/sys/fs/cgroup")?;
    let rest = if unified {
        rest.strip_prefix("/unified").unwrap_or(rest)
    } else {
        // a v1 hierarchy's own directory: `/memory`, `/cpu,cpuacct`, `/systemd`
        let rest = rest.strip_prefix('/')?;
        &rest[rest.find('/').unwrap_or(rest.len())..]
    };
    Some(if rest.is_empty() {
        "/".into()
    } else {
        rest.into()
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn put(root: &Path, rel: &str, body: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }

    fn rec(id: &str, rootfs: &Path, init_pid: Option<u32>) -> Recorded {
        Recorded {
            runtime: Runtime::Runc,
            id: id.into(),
            namespace: None,
            rootfs: rootfs.into(),
            init_pid,
            cgroup: CgroupRecord::Unknown,
        }
    }

    #[test]
    fn roots_are_matched_by_device_and_inode_and_told_apart_by_init() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let shared = dir.path().join("shared");
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&shared).unwrap();
        let mut index = RootIndex::default();
        for (i, r) in [
            rec("a", &a, None),
            rec("s1", &shared, Some(10)),
            rec("s2", &shared, Some(20)),
        ]
        .into_iter()
        .enumerate()
        {
            let file = FileId::of(&fs::metadata(&r.rootfs).unwrap());
            index.by_file.entry(file).or_default().push(i);
            index.entries.push(r);
        }
        let id = |p: &Path| FileId::of(&fs::metadata(p).unwrap());
        assert!(matches!(index.lookup(id(&a), |_| false), Match::One(r) if r.id == "a"));
        assert!(
            matches!(index.lookup(id(&shared), |pid| pid == 20), Match::One(r) if r.id == "s2")
        );
        assert!(
            matches!(index.lookup(id(&shared), |_| false), Match::Ambiguous(v) if v.len() == 2)
        );
        assert_eq!(index.lookup(id(dir.path()), |_| true), Match::None);
    }

    #[test]
    fn cgroups_below_their_mount() {
        assert_eq!(
            cgroup_below_mount("/sys/fs/cgroup/unified/pidnst-1", true).as_deref(),
            Some("/pidnst-1")
        );
        assert_eq!(
            cgroup_below_mount("/sys/fs/cgroup/pidnst-1/sub", true).as_deref(),
            Some("/pidnst-1/sub")
        );
        assert_eq!(
            cgroup_below_mount("/sys/fs/cgroup/memory/process_api/x/pidnst-1", false).as_deref(),
            Some("/process_api/x/pidnst-1")
        );
        assert_eq!(
            cgroup_below_mount("/sys/fs/cgroup/cpu,cpuacct", false).as_deref(),
            Some("/")
        );
        assert_eq!(cgroup_below_mount("/elsewhere/x", true), None);
    }

    #[test]
    fn ids_never_walk_the_tree() {
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(!safe_id(bad), "{bad:?}");
        }
        assert!(safe_id("pidnst-0a1b2c-3"));
        assert_eq!(
            under(Path::new("/host"), Path::new("/var/lib/x")),
            PathBuf::from("/host/var/lib/x")
        );
    }
}
