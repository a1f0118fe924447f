//! What `pidns watch` reports: one [`WatchEvent`] per output line.

use serde::Serialize;

use crate::{parse::layout::Runtime, report::HostPidns};

/// How a process came to be reported in the host PID namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// It exec'd in a container cgroup while in the host PID namespace.
    Exec,
    /// A container process in the host PID namespace forked it (no namespace flags).
    Fork,
    /// Created by clone/clone3 with namespace flags, but left in the host PID namespace.
    Clone,
    /// It was moved into a container cgroup from the host PID namespace.
    CgroupAttach,
    /// A container process joined the host PID namespace with setns; its children land there.
    Setns,
    /// Found by the start-up (or periodic) full scan.
    Scan,
    /// Found by procfs polling (no eBPF).
    Poll,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Exec => "exec",
            Trigger::Fork => "fork",
            Trigger::Clone => "clone",
            Trigger::CgroupAttach => "cgroup_attach",
            Trigger::Setns => "setns",
            Trigger::Scan => "scan",
            Trigger::Poll => "poll",
        }
    }
}

/// The container a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerRef {
    pub container_id: String,
    pub runtime: Runtime,
    pub name: Option<String>,
    pub pod: Option<crate::report::Pod>,
    pub cgroup: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
    /// Every probe is attached (or polling has started); findings follow live.
    Ready {
        mode: &'static str,
        probes: Vec<String>,
        host_pidns: HostPidns,
        containers: usize,
        sharing: usize,
        /// Where `/metrics` is served, if anywhere.
        #[serde(skip_serializing_if = "Option::is_none")]
        metrics_addr: Option<String>,
        pidns_version: &'static str,
        ts: String,
    },
    /// A container process lives in the host PID namespace.
    HostPidns(Finding),
    /// A container process called setns into a host namespace.
    Setns(SetnsEvent),
    /// Events the kernel could not hand over (ring buffer full).
    Lost { count: u64, total: u64, ts: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub trigger: Trigger,
    pub pid: u32,
    pub comm: String,
    #[serde(flatten)]
    pub container: ContainerRef,
    pub ts: String,
    /// The parent (exec, fork), or the process that moved it (cgroup_attach).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// exec: the program.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// fork/clone: the clone flags, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone_flags: Option<String>,
    /// Microseconds from the kernel event to this line (eBPF mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetnsEvent {
    pub nstype: &'static str,
    pub target: &'static str,
    pub ok: bool,
    /// The error when the kernel refused, e.g. `EPERM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub pid: u32,
    pub comm: String,
    #[serde(flatten)]
    pub container: ContainerRef,
    pub ts: String,
    pub ns_inode: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
}
