//! What a host-PID container did to processes outside it: the
//! `host_access` and `host_access_aggregate` events' data.

use serde::Serialize;

use super::{Envelope, Runtime};

/// The process a host access aimed at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessTarget {
    #[serde(rename = "target_pid")]
    pub pid: u32,
    /// Absent when the target was gone before it could be read.
    #[serde(rename = "target_comm", skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// `host`, another container's id, or `unknown` (gone before its cgroup
    /// could be read, or a process group nobody outside the container was in).
    pub target: String,
    /// Another container: its runtime and name.
    #[serde(rename = "target_runtime", skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    #[serde(rename = "target_name", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One host access (see [`WatchEvent::HostAccess`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostAccessEvent {
    /// `signal`, `ptrace`, `vm_read`, `vm_write`, `pidfd_getfd`, `proc_open`.
    pub op: &'static str,
    /// signal: the signal number; 0 is a probe (is the process there, may I
    /// signal it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<u32>,
    /// ptrace: the request (16 `PTRACE_ATTACH`, 0x4206 `PTRACE_SEIZE`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ptrace_request: Option<u64>,
    /// proc_open: the `/proc/<pid>/` entry opened (`environ`, `maps`, `fd`,
    /// ...), or with `path` set, the path as the opener gave it (a failed
    /// open, or one that left procfs through `root`, `cwd`, `fd/N`, `ns/*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub path: bool,
    #[serde(flatten)]
    pub target: AccessTarget,
    /// signal: `kill` of a process group or of every process (pid <= 0);
    /// the target is the first process reached outside the container.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub group: bool,
    pub ok: bool,
    /// The error when the kernel refused, e.g. `EPERM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The container is allowed to share the host PID namespace (`--allow`):
    /// reported all the same.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allowed_container: bool,
    /// The actor.
    #[serde(flatten)]
    pub at: Envelope,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
}

impl HostAccessEvent {
    /// The label the metric counts it under: signal 0 apart, as `signal_probe`.
    pub fn metric_op(&self) -> &'static str {
        if self.signal == Some(0) {
            "signal_probe"
        } else {
            self.op
        }
    }
}

/// See [`WatchEvent::HostAccessAggregate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostAccessAggregate {
    pub op: &'static str,
    /// Accesses in the interval not reported one by one (repeats included).
    pub count: u64,
    /// signal: how many of them were signal 0 (probes).
    #[serde(skip_serializing_if = "is_zero")]
    pub probes: u64,
    /// How many of them the kernel refused.
    pub failed: u64,
    /// Distinct targets the container reached with this op in the interval
    /// (also those reported one by one), at most [`HostAccessAggregate::MAX_TARGETS`] listed ...
    pub targets: Vec<AccessTarget>,
    /// ... out of this many.
    pub targets_total: usize,
    /// The interval, in seconds.
    pub interval_s: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allowed_container: bool,
    /// The last access's process and when.
    #[serde(flatten)]
    pub at: Envelope,
}

impl HostAccessAggregate {
    pub const MAX_TARGETS: usize = 256;
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
