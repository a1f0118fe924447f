//! Mounts as this process sees them, and removing a directory tree without
//! ever reaching into a mount below it.

use std::{
    collections::BTreeSet,
    ffi::OsStr,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use nix::{
    dir::Dir,
    errno::Errno,
    fcntl::OFlag,
    sys::stat::{Mode, SFlag, fstat, fstatat},
    unistd::{UnlinkatFlags, unlinkat},
};
use procfs::process::{MountInfo, Process};

/// One mount from `/proc/self/mountinfo`, its paths unescaped.
#[derive(Debug, Clone)]
pub struct Mount {
    pub mount_point: PathBuf,
    /// The mounted filesystem's directory that appears at `mount_point`.
    pub root: PathBuf,
    pub fs_type: String,
    /// The filesystem's device (`major:minor`): two mounts of one filesystem share it.
    pub device: String,
    /// The filesystem's own options (`cpuset`, `name=systemd` for a cgroup v1 hierarchy).
    pub super_options: Vec<String>,
}

/// The kernel writes space, tab, newline and backslash in mountinfo paths
/// as octal escapes (`\040`); procfs hands them over as they are.
pub fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(octal) = bytes.get(i + 1..i + 4)
            && octal.iter().all(|b| (b'0'..=b'7').contains(b))
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(octal).unwrap_or("x"), 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

fn from_procfs(m: &MountInfo) -> Mount {
    let mut super_options: Vec<String> = m
        .super_options
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    super_options.sort();
    Mount {
        mount_point: unescape(&m.mount_point.to_string_lossy()),
        root: unescape(&m.root),
        fs_type: m.fs_type.clone(),
        device: m.majmin.clone(),
        super_options,
    }
}

/// Every mount in this process's mount namespace.
pub fn mounts() -> Result<Vec<Mount>> {
    let infos = Process::myself()
        .and_then(|p| p.mountinfo())
        .context("reading /proc/self/mountinfo")?;
    Ok(infos.iter().map(from_procfs).collect())
}

pub fn mount_points() -> Result<BTreeSet<PathBuf>> {
    Ok(mounts()?.into_iter().map(|m| m.mount_point).collect())
}

/// Removes `path` and everything below it, except what lies on another
/// mount: a directory that is a mount point (by mountinfo, or by being on
/// another device) stays, with everything under it, and is returned, as do
/// its parents. Symlinks are removed, never followed; the walk goes through
/// directory file descriptors, so a path swapped for a symlink mid-walk
/// leads nowhere. When `path` itself is a mount point its contents go and
/// the (empty) mount point stays, unreported. A missing `path` is nothing to do.
pub fn remove_tree(path: &Path) -> Result<Vec<PathBuf>> {
    let mounts = mount_points()?;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut top = match Dir::open(path, flags, Mode::empty()) {
        Ok(d) => d,
        Err(Errno::ENOENT) => return Ok(Vec::new()),
        Err(Errno::ENOTDIR | Errno::ELOOP) => {
            // A file or a symlink: remove it, never what it points to.
            return match nix::unistd::unlink(path) {
                Ok(()) | Err(Errno::ENOENT) => Ok(Vec::new()),
                Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
            };
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let dev = fstat(&top)
        .with_context(|| format!("stat {}", path.display()))?
        .st_dev;
    let mut kept = Vec::new();
    remove_contents(&mut top, path, dev, &mounts, &mut kept)?;
    drop(top);
    if kept.is_empty() && !mounts.contains(path) {
        match std::fs::remove_dir(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", path.display()));
            }
            _ => {}
        }
    }
    Ok(kept)
}

fn remove_contents(
    dir: &mut Dir,
    path: &Path,
    dev: u64,
    mounts: &BTreeSet<PathBuf>,
    kept: &mut Vec<PathBuf>,
) -> Result<()> {
    let names: Vec<std::ffi::CString> = dir
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        let child = path.join(OsStr::from_bytes(name.as_bytes()));
        let st = match fstatat(
            &*dir,
            name.as_c_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => st,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e).with_context(|| format!("stat {}", child.display())),
        };
        let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
        if !is_dir {
            match unlinkat(&*dir, name.as_c_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", child.display())),
            }
            continue;
        }
        if st.st_dev != dev || mounts.contains(&child) {
            kept.push(child);
            continue;
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut sub = match Dir::openat(&*dir, name.as_c_str(), flags, Mode::empty()) {
            Ok(d) => d,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e).with_context(|| format!("opening {}", child.display())),
        };
        // What was opened must be what was looked at (not swapped meanwhile).
        let opened = fstat(&sub).with_context(|| format!("stat {}", child.display()))?;
        if opened.st_dev != dev || opened.st_ino != st.st_ino {
            kept.push(child);
            continue;
        }
        let before = kept.len();
        remove_contents(&mut sub, &child, dev, mounts, kept)?;
        drop(sub);
        if kept.len() == before {
            match unlinkat(&*dir, name.as_c_str(), UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", child.display())),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/a\\040b\\011c"), PathBuf::from("/a b\tc"));
        assert_eq!(unescape("/back\\134slash"), PathBuf::from("/back\\slash"));
        // Not an escape: left as it is.
        assert_eq!(unescape("/x\\09y\\"), PathBuf::from("/x\\09y\\"));
    }

    #[test]
    fn procfs_mountinfo_lines_become_unescaped_mounts() {
        let line = "36 35 98:0 /mnt\\040dir /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue";
        let info = MountInfo::from_line(line).expect("mountinfo line");
        let m = from_procfs(&info);
        assert_eq!(m.mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(m.root, PathBuf::from("/mnt dir"));
        assert_eq!(m.fs_type, "ext3");
    }

    #[test]
    fn this_process_sees_its_root_mount() {
        assert!(mount_points().expect("mountinfo").contains(Path::new("/")));
    }

    #[test]
    fn remove_tree_removes_files_dirs_and_symlinks_but_not_their_targets() {
        let outside = tempdir("outside");
        std::fs::write(outside.join("keep"), "x").expect("write");
        let tree = tempdir("tree");
        std::fs::create_dir_all(tree.join("a/b/c")).expect("mkdir");
        std::fs::write(tree.join("a/b/c/f"), "x").expect("write");
        std::os::unix::fs::symlink(&outside, tree.join("a/link")).expect("symlink");
        let kept = remove_tree(&tree).expect("remove");
        assert!(kept.is_empty(), "{kept:?}");
        assert!(!tree.exists());
        assert!(outside.join("keep").is_file(), "followed a symlink");
        assert!(remove_tree(&tree).expect("again").is_empty());
        std::fs::remove_dir_all(&outside).expect("cleanup");
    }

    const IN_MOUNT_NS: &str = "PIDNS_TESTS_IN_PRIVATE_MOUNT_NS";

    /// Runs itself again in a private mount namespace (`unshare -m`), where
    /// it mounts a tmpfs and a bind mount into a tree and removes the tree:
    /// neither mount's contents may go. The mounts vanish with the namespace.
    #[test]
    fn remove_tree_never_crosses_a_mount() {
        let test = crate::test_name!();
        if std::env::var_os(IN_MOUNT_NS).is_none() {
            if !crate::skip::require_root(test) {
                return;
            }
            if !crate::sh::have("unshare") {
                crate::skip::skip(test, "unshare(1) is not installed");
                return;
            }
            let out = std::process::Command::new("unshare")
                .args(["--mount", "--propagation", "private", "--"])
                .arg(std::env::current_exe().expect("test binary"))
                .args(["--exact", test])
                .env(IN_MOUNT_NS, "1")
                .output()
                .expect("unshare");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "in a private mount namespace: {}\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        use nix::mount::{MntFlags, MsFlags, mount, umount2};
        let outside = tempdir("bind-source");
        std::fs::write(outside.join("precious"), "x").expect("write");
        let tree = tempdir("crossing");
        for d in ["a/tmpfs", "b/bind", "c"] {
            std::fs::create_dir_all(tree.join(d)).expect("mkdir");
        }
        std::fs::write(tree.join("c/f"), "x").expect("write");
        mount(
            Some("tmpfs"),
            &tree.join("a/tmpfs"),
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount tmpfs");
        std::fs::write(tree.join("a/tmpfs/precious"), "x").expect("write");
        // Same filesystem, same device: only mountinfo tells it is a mount.
        mount(
            Some(&outside),
            &tree.join("b/bind"),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .expect("bind mount");

        let mut kept = remove_tree(&tree).expect("remove");
        kept.sort();
        assert_eq!(kept, [tree.join("a/tmpfs"), tree.join("b/bind")]);
        assert!(tree.join("a/tmpfs/precious").is_file());
        assert!(outside.join("precious").is_file());
        assert!(!tree.join("c").exists());

        for m in ["a/tmpfs", "b/bind"] {
            umount2(&tree.join(m), MntFlags::empty()).expect("umount");
        }
        assert!(remove_tree(&tree).expect("remove").is_empty());
        assert!(!tree.exists());
        assert!(remove_tree(&outside).expect("cleanup").is_empty());
    }

    fn tempdir(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pidns-tests-{what}-{}-{}",
            std::process::id(),
            crate::state::random_hex(4)
        ));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }
}
