//! The unified (v2) cgroup hierarchy: ids of the cgroups that exist at
//! start-up. A cgroup's v2 id is its directory's inode number.

use std::{
    ffi::OsString,
    os::unix::{
        ffi::{OsStrExt as _, OsStringExt as _},
        fs::MetadataExt as _,
    },
    path::{Path, PathBuf},
};

use crate::parse::mountinfo::unescape_bytes;

/// The unified hierarchy's mount point, from our mountinfo: a `cgroup2`
/// mount whose root is the hierarchy's root (not a cgroup-namespace view).
pub fn unified_mount() -> Option<PathBuf> {
    let mounts = procfs::process::Process::myself().ok()?.mountinfo().ok()?;
    mounts
        .into_iter()
        .find(|m| m.fs_type == "cgroup2" && m.root == "/")
        .map(|m| {
            let raw = m.mount_point.as_os_str().as_bytes();
            PathBuf::from(OsString::from_vec(unescape_bytes(raw)))
        })
}

/// The unified hierarchy under a cgroupfs mount given by the user: the
/// directory itself on a cgroup v2 host, its `unified/` on a hybrid one
/// (`--cgroup-root /host/sys/fs/cgroup` works on both).
pub fn resolve_root(dir: &Path) -> PathBuf {
    if !dir.join("cgroup.controllers").exists() && dir.join("unified/cgroup.controllers").exists() {
        dir.join("unified")
    } else {
        dir.to_path_buf()
    }
}

/// Every cgroup below `root`: (id, path relative to the hierarchy, with a leading `/`).
pub fn walk(root: &Path, limit: usize) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), b"/".to_vec())];
    while let Some((dir, rel)) = stack.pop() {
        if let Ok(meta) = std::fs::metadata(&dir) {
            out.push((meta.ino(), rel.clone()));
        }
        if out.len() >= limit {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let mut child = rel.clone();
                if child.len() > 1 {
                    child.push(b'/');
                }
                child.extend_from_slice(e.file_name().as_encoded_bytes());
                stack.push((e.path(), child));
            }
        }
    }
    out
}

/// The full path (relative to the hierarchy, leading `/`) of the cgroup
/// whose id is `id`, given a path the kernel cut short: the search starts at
/// the deepest directory of the cut path that exists (its last component may
/// be cut) and looks below it for the directory whose inode number is the id.
pub fn find_by_id(root: &Path, cut: &[u8], id: u64, limit: usize) -> Option<Vec<u8>> {
    let complete = match cut.iter().rposition(|&b| b == b'/') {
        Some(i) => &cut[..i],
        None => &[][..],
    };
    let mut dir = root.to_path_buf();
    let mut rel = Vec::new();
    for comp in complete.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if comp == b"." || comp == b".." {
            break;
        }
        let next = dir.join(std::ffi::OsStr::from_bytes(comp));
        if !next.is_dir() {
            break;
        }
        dir = next;
        rel.push(b'/');
        rel.extend_from_slice(comp);
    }
    let mut queue = std::collections::VecDeque::from([(dir, rel)]);
    let mut seen = 0;
    while let Some((dir, rel)) = queue.pop_front() {
        if std::fs::metadata(&dir).is_ok_and(|m| m.ino() == id) {
            return Some(if rel.is_empty() { b"/".to_vec() } else { rel });
        }
        seen += 1;
        if seen >= limit {
            return None;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let mut child = rel.clone();
                child.push(b'/');
                child.extend_from_slice(e.file_name().as_bytes());
                queue.push_back((e.path(), child));
            }
        }
    }
    None
}

/// The processes in a cgroup and the cgroups below it (`cgroup.procs`),
/// given its path relative to the hierarchy.
pub fn procs(root: &Path, cgroup: &str) -> Vec<u32> {
    const MAX_DIRS: usize = 256;
    let mut out = Vec::new();
    let mut stack = vec![root.join(cgroup.trim_start_matches('/'))];
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        seen += 1;
        if seen > MAX_DIRS {
            break;
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            stack.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_roots_resolve_to_unified() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("unified")).expect("dirs");
        std::fs::write(dir.path().join("unified/cgroup.controllers"), "").expect("file");
        assert_eq!(resolve_root(dir.path()), dir.path().join("unified"));
        std::fs::write(dir.path().join("cgroup.controllers"), "").expect("file");
        assert_eq!(resolve_root(dir.path()), dir.path());
    }

    #[test]
    fn walk_gives_relative_paths_and_inodes() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("docker/abc")).expect("dirs");
        std::fs::write(dir.path().join("cgroup.procs"), "").expect("file");
        let mut got: Vec<Vec<u8>> = walk(dir.path(), 100).into_iter().map(|(_, p)| p).collect();
        got.sort();
        assert_eq!(
            got,
            vec![b"/".to_vec(), b"/docker".to_vec(), b"/docker/abc".to_vec()]
        );
        assert_eq!(walk(dir.path(), 1).len(), 1);
    }

    #[test]
    fn a_cut_path_is_found_by_the_cgroup_id() {
        let dir = tempfile::tempdir().expect("tmp");
        let outer = format!("system.slice/docker-{}.scope", "a".repeat(64));
        let pod = format!(
            "kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{}.slice",
            "0123abcd_4567_89ef_0123_456789abcdef"
        );
        let inner = format!("cri-containerd-{}.scope", "b".repeat(64));
        let full = format!("/{outer}/{pod}/{inner}");
        assert!(full.len() > 300, "{}", full.len());
        std::fs::create_dir_all(dir.path().join(&full[1..])).expect("dirs");
        // a sibling that must not be taken for it
        std::fs::create_dir_all(dir.path().join(format!(
            "{outer}/{pod}/cri-containerd-{}.scope",
            "c".repeat(64)
        )))
        .expect("dirs");
        let id = std::fs::metadata(dir.path().join(&full[1..]))
            .expect("stat")
            .ino();
        let cut = &full.as_bytes()[..255];
        assert_eq!(
            find_by_id(dir.path(), cut, id, 1000),
            Some(full.as_bytes().to_vec())
        );
        // cut inside a directory name that exists in part only
        let cut = &full.as_bytes()[..40];
        assert_eq!(
            find_by_id(dir.path(), cut, id, 1000),
            Some(full.as_bytes().to_vec())
        );
        assert_eq!(find_by_id(dir.path(), cut, 1, 1000), None);
        assert_eq!(find_by_id(dir.path(), cut, id, 2), None, "the limit holds");
    }

    #[test]
    fn procs_of_a_cgroup_and_below() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("docker/abc/sub")).expect("dirs");
        std::fs::write(dir.path().join("docker/abc/cgroup.procs"), "10\n11\n").expect("w");
        std::fs::write(dir.path().join("docker/abc/sub/cgroup.procs"), "12\n").expect("w");
        let mut got = procs(dir.path(), "/docker/abc");
        got.sort_unstable();
        assert_eq!(got, vec![10, 11, 12]);
        assert!(procs(dir.path(), "/nope").is_empty());
    }
}
