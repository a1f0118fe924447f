//! The unified (v2) cgroup hierarchy: ids of the cgroups that exist at
//! start-up. A cgroup's v2 id is its directory's inode number.

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

/// The unified hierarchy's mount point, from our mountinfo: a `cgroup2`
/// mount whose root is the hierarchy's root (not a cgroup-namespace view).
pub fn unified_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        let mut fields = pre.split_whitespace();
        let root = fields.nth(3)?;
        let mount_point = fields.next()?;
        (post.split_whitespace().next() == Some("cgroup2") && root == "/")
            .then(|| PathBuf::from(unescape(mount_point)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
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
}
