//! The collector: reads a procfs root and never prints.
//!
//! Any directory laid out like /proc works: the live /proc, a host's /proc
//! mounted into a pod (`/host/proc`), or an evidence or fixture tree whose
//! `ns/*` entries are plain symlinks with `pid:[N]` text. Namespace identity
//! is therefore always read from link text (readlink), never with stat.
//!
//! A process's root directory is the one fact read with `stat`: through
//! `/proc/<pid>/root`, which the kernel resolves to the directory the
//! process runs on, in whatever mount namespace it is. In an evidence tree,
//! `root` may be a symlink to a directory standing in for it.

use std::{
    fs::{self, File},
    io::Read as _,
    path::{Path, PathBuf},
};

use crate::{
    error::{NotRegular, ReadError, ReadErrorKind, ScanError},
    parse::{nslink, stat, status},
};

/// Upper bound on what is read from one /proc file. Real cgroup and status
/// files are a few hundred bytes; a tree handed to us may hold anything.
pub const MAX_FILE: u64 = 64 * 1024;

/// A directory as the kernel identifies it: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt as _;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// The device as `(major, minor)`, as mountinfo writes it.
    pub fn major_minor(self) -> (u32, u32) {
        (libc::major(self.dev), libc::minor(self.dev))
    }
}

#[derive(Debug, Clone)]
pub struct ProcRoot {
    root: PathBuf,
    /// A mounted procfs (not a tree handed to us): its process files are
    /// the kernel's, never a FIFO or a device, so they need no check.
    procfs: bool,
}

impl ProcRoot {
    /// Opens a proc root, checking that it is a readable directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ScanError> {
        let root = root.into();
        let meta = fs::metadata(&root).map_err(|reason| ScanError::ProcRoot {
            path: root.clone(),
            reason,
        })?;
        if !meta.is_dir() {
            return Err(ScanError::ProcRoot {
                path: root,
                reason: std::io::Error::from_raw_os_error(libc::ENOTDIR),
            });
        }
        let procfs = nix::sys::statfs::statfs(&root)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
        Ok(ProcRoot { root, procfs })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// PIDs of the process directories, ascending.
    pub fn pids(&self) -> Result<Vec<u32>, ScanError> {
        let entries = fs::read_dir(&self.root).map_err(|reason| ScanError::ProcRoot {
            path: self.root.clone(),
            reason,
        })?;
        let mut pids: Vec<u32> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(parse_pid))
            .collect();
        if pids.is_empty() {
            return Err(ScanError::NotProcfs {
                path: self.root.clone(),
            });
        }
        pids.sort_unstable();
        Ok(pids)
    }

    /// Whether process `pid` is gone or every one of its threads is exiting:
    /// its exit (the probes' exit hook included) has begun or is over. A
    /// thread that is still running, or whose `stat` cannot be read for
    /// another reason than being gone, keeps it alive.
    pub fn group_exiting(&self, pid: u32) -> bool {
        let Ok(threads) = fs::read_dir(self.file(pid, "task")) else {
            return !self.exists(pid);
        };
        let mut buf = Vec::with_capacity(512);
        for tid in threads.filter_map(|e| e.ok()) {
            let Some(tid) = tid.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            buf.clear();
            match self.read_into(pid, &format!("task/{tid}/stat"), &mut buf) {
                Ok(()) if stat::is_exiting(&buf) == Some(true) => {}
                Err(e) if e.kind == ReadErrorKind::Vanished => {}
                _ => return false,
            }
        }
        true
    }

    /// This process's PID as the proc root numbers it: its `self` link, which
    /// procfs resolves in its own PID namespace. `None` for a tree that is not
    /// a live procfs, or one that cannot see us.
    pub fn self_pid(&self) -> Option<u32> {
        fs::read_link(self.root.join("self"))
            .ok()?
            .to_str()?
            .parse()
            .ok()
    }

    /// Whether the process directory is (still) there.
    pub fn exists(&self, pid: u32) -> bool {
        self.root.join(pid.to_string()).is_dir()
    }

    pub fn file(&self, pid: u32, name: &str) -> PathBuf {
        let mut p = self.root.join(pid.to_string());
        p.push(name);
        p
    }

    /// Reads `/proc/<pid>/<name>` into `buf` (cleared first), at most [`MAX_FILE`] bytes.
    ///
    /// A read that returns less than asked for is the end of the file, for
    /// procfs's generated files as for regular ones, so a small file costs one
    /// `read` rather than a second one to see EOF: on a host with thousands of
    /// processes, that is a third of the scan's syscalls.
    pub fn read_into(&self, pid: u32, name: &str, buf: &mut Vec<u8>) -> Result<(), ReadError> {
        let path = self.file(pid, name);
        buf.clear();
        let file = if self.procfs {
            open_procfs(&path)
        } else {
            open_regular(&path)
        };
        file.and_then(|f| read_capped(f, buf))
            .map_err(|e| ReadError::from_io(path, &e))
    }

    /// The inode of `/proc/<pid>/ns/<ns>`, from the link text.
    pub fn ns_inode(&self, pid: u32, ns: &str) -> Result<u64, ReadError> {
        let path = self.file(pid, &format!("ns/{ns}"));
        let text = fs::read_link(&path).map_err(|e| ReadError::from_io(path.clone(), &e))?;
        let expected = if ns == "pid_for_children" {
            "pid"
        } else {
            ns.trim_end_matches("_for_children")
        };
        nslink::parse_typed(text.as_os_str().as_encoded_bytes(), expected).ok_or_else(|| {
            ReadError::malformed(path, "namespace link text is not `<type>:[<inode>]`")
        })
    }

    /// The device and inode of the directory `pid` runs on (`stat` of
    /// `/proc/<pid>/root`, which follows the link).
    pub fn root_id(&self, pid: u32) -> Result<FileId, ReadError> {
        let path = self.file(pid, "root");
        fs::metadata(&path)
            .map(|m| FileId::of(&m))
            .map_err(|e| ReadError::from_io(path, &e))
    }

    pub fn status(&self, pid: u32) -> Result<status::Status, ReadError> {
        let mut buf = Vec::with_capacity(1536);
        self.read_into(pid, "status", &mut buf)?;
        Ok(status::parse(&buf))
    }

    /// The process's command name (`comm`), without the trailing newline.
    pub fn comm(&self, pid: u32) -> Result<String, ReadError> {
        let mut buf = Vec::with_capacity(32);
        self.read_into(pid, "comm", &mut buf)?;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// A process directory's name as procfs writes it: canonical decimal, no
/// sign, no leading zero, not 0. `+10` or `0010` in a supplied tree is not PID 10.
pub fn parse_pid(name: &str) -> Option<u32> {
    let canonical =
        !name.is_empty() && !name.starts_with('0') && name.bytes().all(|b| b.is_ascii_digit());
    canonical.then(|| name.parse().ok()).flatten()
}

/// Opens a file for reading only if it is a regular file: never follows a
/// final symlink, never blocks (a FIFO planted in a tree would hang a
/// blocking open forever), never becomes a controlling terminal. Anything
/// else is refused with `EINVAL`-like errors that map to "malformed".
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)?;
    let kind = f.metadata()?.file_type();
    if kind.is_file() {
        return Ok(f);
    }
    let what = if kind.is_fifo() {
        "a FIFO where a file belongs"
    } else if kind.is_socket() {
        "a socket where a file belongs"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device where a file belongs"
    } else if kind.is_dir() {
        "a directory where a file belongs"
    } else {
        "not a regular file"
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        NotRegular(what),
    ))
}

/// Opens a file of a mounted procfs: no final symlink followed, no check
/// that it is a regular file (procfs has nothing else there), which saves
/// a `fstat` per file read.
fn open_procfs(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
}

fn read_capped(mut f: File, buf: &mut Vec<u8>) -> std::io::Result<()> {
    const CHUNK: usize = 4096;
    loop {
        let len = buf.len();
        if len as u64 >= MAX_FILE {
            buf.truncate(MAX_FILE as usize);
            return Ok(());
        }
        buf.resize(len + CHUNK, 0);
        match f.read(&mut buf[len..]) {
            Ok(n) => {
                buf.truncate(len + n);
                if n < CHUNK {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => {
                buf.truncate(len);
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_group_is_exiting_when_gone_or_every_thread_exits() {
        let stat = |flags: u32| {
            format!(
                "7 (sh) S 1 1 1 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
            )
        };
        let tree = crate::testutil::Tree::new();
        // 10: leader exiting, another thread running: alive.
        tree.pid(10)
            .file("task/10/stat", &stat(0x4))
            .file("task/11/stat", &stat(0x0));
        // 20: every thread exiting.
        tree.pid(20)
            .file("task/20/stat", &stat(0x4))
            .file("task/21/stat", &stat(0x40_0004));
        // 30: a stat that cannot be parsed: not taken for an exit.
        tree.pid(30).file("task/30/stat", "junk");
        let root = tree.proc();
        assert!(!root.group_exiting(10));
        assert!(root.group_exiting(20));
        assert!(!root.group_exiting(30));
        assert!(root.group_exiting(99), "gone");
    }

    #[test]
    fn reads_fixture_links_and_files() {
        let tree = crate::testutil::Tree::new();
        tree.pid(42)
            .ns("pid", 4026531836)
            .link("pid_for_children", "pid:[4026532001]")
            .link("mnt", "garbage")
            .file("comm", "sleep\n")
            .file("status", "Name:\tsleep\nPPid:\t1\nNSpid:\t42\n");
        fs::write(tree.path().join("7"), "a file where a directory belongs").unwrap();
        fs::create_dir(tree.path().join("self")).unwrap();

        let root = tree.proc();
        assert_eq!(root.pids().unwrap(), vec![7, 42]);
        assert_eq!(root.ns_inode(42, "pid").unwrap(), 4026531836);
        assert_eq!(root.ns_inode(42, "pid_for_children").unwrap(), 4026532001);
        assert!(matches!(
            root.ns_inode(42, "mnt").unwrap_err().kind,
            ReadErrorKind::Malformed(_)
        ));
        assert_eq!(
            root.ns_inode(43, "pid").unwrap_err().kind,
            ReadErrorKind::Vanished
        );
        assert!(matches!(
            root.ns_inode(7, "pid").unwrap_err().kind,
            ReadErrorKind::Malformed(_)
        ));
        assert_eq!(root.comm(42).unwrap(), "sleep");
        assert_eq!(root.status(42).unwrap().nspid, Some(vec![42]));
    }

    #[test]
    fn roots_are_stat_through_the_link() {
        let tree = crate::testutil::Tree::new();
        let host = tree.path().join("hostroot");
        fs::create_dir(&host).unwrap();
        tree.pid(1).root(&host);
        tree.pid(2);
        let root = tree.proc();
        let id = root.root_id(1).unwrap();
        assert_eq!(id, FileId::of(&fs::metadata(&host).unwrap()));
        assert_eq!(
            root.root_id(2).unwrap_err().kind,
            ReadErrorKind::Vanished,
            "no root in the tree"
        );
        let (major, minor) = id.major_minor();
        assert_eq!(libc::makedev(major, minor), id.dev);
    }

    #[test]
    fn pids_are_canonical_decimal() {
        assert_eq!(parse_pid("1"), Some(1));
        assert_eq!(parse_pid("4194304"), Some(4194304));
        for odd in [
            "",
            "0",
            "+10",
            "-10",
            "0010",
            "00",
            " 10",
            "10 ",
            "1e3",
            "self",
            "4294967296",
        ] {
            assert_eq!(parse_pid(odd), None, "{odd:?}");
        }
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("5");
        fs::create_dir_all(p.join("dir")).unwrap();
        nix::unistd::mkfifo(&p.join("cgroup"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        fs::write(dir.path().join("target"), "Name:\tx\n").unwrap();
        symlink(dir.path().join("target"), p.join("status")).unwrap();
        let sock = std::os::unix::net::UnixListener::bind(p.join("comm")).unwrap();
        let root = ProcRoot::open(dir.path()).unwrap();
        let mut buf = Vec::new();
        for (name, why) in [
            ("cgroup", "a FIFO where a file belongs"),
            ("status", "a symbolic link where a file belongs"),
            ("comm", "a socket where a file belongs"),
            ("dir", "a directory where a file belongs"),
        ] {
            let e = root.read_into(5, name, &mut buf).unwrap_err();
            assert_eq!(e.kind, ReadErrorKind::Malformed(why), "{name}");
        }
        drop(sock);
    }

    #[test]
    fn only_a_mounted_procfs_is_trusted_to_hold_plain_files() {
        assert!(ProcRoot::open("/proc").unwrap().procfs);
        let tree = crate::testutil::Tree::new();
        assert!(!tree.proc().procfs, "a tree is checked file by file");
    }

    #[test]
    fn huge_files_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("1")).unwrap();
        fs::write(dir.path().join("1/cgroup"), vec![b'x'; 1 << 20]).unwrap();
        let root = ProcRoot::open(dir.path()).unwrap();
        let mut buf = Vec::new();
        root.read_into(1, "cgroup", &mut buf).unwrap();
        assert_eq!(buf.len() as u64, MAX_FILE);
    }

    #[test]
    fn bad_roots() {
        assert!(matches!(
            ProcRoot::open("/nonexistent/proc"),
            Err(ScanError::ProcRoot { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "").unwrap();
        assert!(matches!(
            ProcRoot::open(&file),
            Err(ScanError::ProcRoot { .. })
        ));
        assert!(matches!(
            ProcRoot::open(dir.path()).unwrap().pids(),
            Err(ScanError::NotProcfs { .. })
        ));
    }
}
