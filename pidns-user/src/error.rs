//! Library errors. Each names the path it is about.

use std::{io, path::PathBuf};

/// Why the scan as a whole could not run (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The reason is part of the message and deliberately not a `source`:
    /// `{:#}` chains would print it twice.
    #[error("cannot read proc root {path}: {reason}")]
    ProcRoot { path: PathBuf, reason: io::Error },
    #[error("{path} is not a procfs root: it has no process directories")]
    NotProcfs { path: PathBuf },
    #[error("cannot tell the host PID namespace: {reason}")]
    HostPidns { reason: String },
    /// `--offline` on a host root that is missing, unreadable or empty.
    #[error("cannot scan host root {path} offline: {reason}")]
    HostRoot { path: PathBuf, reason: String },
}

/// What [`crate::procfs::open_regular`] refuses: anything but a regular file
/// (a FIFO planted in an evidence tree, a socket, a device, a directory).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotRegular(pub &'static str);

/// Why one file of one process could not be read. Expected while walking a
/// live /proc; the scan records it and moves on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct ReadError {
    pub path: PathBuf,
    pub kind: ReadErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadErrorKind {
    /// The process exited while we looked at it.
    #[error("process vanished")]
    Vanished,
    #[error("permission denied")]
    PermissionDenied,
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// The kernel cannot print it: a cgroup path longer than PATH_MAX makes
    /// `/proc/<pid>/cgroup` fail with ENAMETOOLONG.
    #[error("too long for the kernel to print (ENAMETOOLONG)")]
    TooLong,
    #[error("{0}")]
    Io(io::ErrorKind),
}

impl ReadError {
    pub fn from_io(path: PathBuf, err: &io::Error) -> Self {
        if let Some(not_regular) = err.get_ref().and_then(|e| e.downcast_ref::<NotRegular>()) {
            return ReadError::malformed(path, not_regular.0);
        }
        let kind = match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => ReadErrorKind::Vanished,
            Some(libc::EACCES) | Some(libc::EPERM) => ReadErrorKind::PermissionDenied,
            Some(libc::ENOTDIR) => ReadErrorKind::Malformed("not a process directory"),
            Some(libc::EINVAL) => ReadErrorKind::Malformed("not a symbolic link"),
            Some(libc::EISDIR) => ReadErrorKind::Malformed("a directory where a file belongs"),
            Some(libc::ELOOP) => ReadErrorKind::Malformed("a symbolic link where a file belongs"),
            Some(libc::ENXIO) => ReadErrorKind::Malformed("a socket where a file belongs"),
            Some(libc::ENAMETOOLONG) => ReadErrorKind::TooLong,
            _ => ReadErrorKind::Io(err.kind()),
        };
        ReadError { path, kind }
    }

    pub fn malformed(path: PathBuf, what: &'static str) -> Self {
        ReadError {
            path,
            kind: ReadErrorKind::Malformed(what),
        }
    }
}
