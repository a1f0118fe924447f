//! Library errors. Each names the path it is about.

use std::{io, path::PathBuf};

/// Why the scan as a whole could not run (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read proc root {path}: {source}")]
    ProcRoot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a procfs root: it has no process directories")]
    NotProcfs { path: PathBuf },
    #[error("cannot tell the host PID namespace: {reason}")]
    HostPidns { reason: String },
}

/// Why one file of one process could not be read. Expected while walking a
/// live /proc; the scan records it and moves on.
#[derive(Debug, Clone, thiserror::Error)]
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
    #[error("{0}")]
    Io(io::ErrorKind),
}

impl ReadError {
    pub fn from_io(path: PathBuf, err: &io::Error) -> Self {
        let kind = match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => ReadErrorKind::Vanished,
            Some(libc::EACCES) | Some(libc::EPERM) => ReadErrorKind::PermissionDenied,
            Some(libc::ENOTDIR) => ReadErrorKind::Malformed("not a process directory"),
            Some(libc::EINVAL) => ReadErrorKind::Malformed("not a symbolic link"),
            Some(libc::EISDIR) => ReadErrorKind::Malformed("a directory where a file belongs"),
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
