//! The engine that `scan` and `watch` share: which processes belong to which
//! container, and whether each lives in the host PID namespace.
//!
//! It works from the collector's facts alone (cgroup files, namespace links,
//! `NSpid`, the root a process runs on) and runtimes' on-disk state, never
//! from a runtime's API.
//!
//! - [`placement`]: a process's container, from its cgroup file;
//! - [`rootfs`]: a container process by its root and mount namespace,
//!   whatever its cgroup, and its container by its root filesystem;
//! - [`claim`]: whether a container found by its cgroup's name shows any
//!   other container evidence;
//! - [`runtime_process`]: telling a runtime's own processes from the container's;
//! - [`ancestry`]: a containerd shim (or any runtime) among a process's ancestors;
//! - [`host`]: the host PID namespace, and whether a process lives in it;
//!   the host's mount namespace and root;
//! - [`scan`]: the one-shot scan, as its steps (place, gather, judge, tally).

pub mod ancestry;
pub mod claim;
pub mod host;
pub mod placement;
pub mod rootfs;
pub mod runtime_process;
pub mod scan;

use std::path::PathBuf;

pub use ancestry::Ancestry;
pub use host::{HostIdentity, host_pidns};
pub use placement::{Placement, own_container, refine_runtime};
pub use rootfs::{Attribution, RootAttribution, RootFact, container_like, root_fact};
pub use runtime_process::{Unverified, is_runtime_process, verify_runtime_process};
pub use scan::scan;

use crate::{allow::AllowList, names::NameResolver};

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub proc_root: PathBuf,
    /// The process whose PID namespace is the host's; PID 1 by default.
    pub host_pid: Option<u32>,
    pub allow: AllowList,
    pub names: Option<NameResolver>,
    /// Read `comm` and `ns/pid_for_children` for at most this many host-PID
    /// processes per container (`None`: all of them).
    pub evidence_detail: Option<usize>,
    /// The host filesystem root where runtimes keep their state (`/` for the
    /// live /proc), to tell Docker's `--cgroup-parent` containers from
    /// containerd's ([`refine_runtime`]). Independent of names.
    pub state_root: Option<PathBuf>,
    /// Read each runtime's record of its containers' configuration under
    /// `state_root` (scan; not watch, which follows processes).
    pub configured: bool,
    /// With `configured`: leave out containers that are not running.
    pub running_only: bool,
    /// No procfs at all: only the runtimes' records under `state_root`.
    pub offline: bool,
}

/// The default for [`ScanOptions::evidence_detail`] in `pidns scan`: the
/// verdict needs one host-PID process that is not a runtime's, so that is
/// what is read in detail; the others are listed by pid, inode and method.
pub const EVIDENCE_DETAIL: usize = 1;
