//! What `pidns watch` reports: one [`WatchEvent`] per output line.

use serde::Serialize;

use crate::{parse::layout::Runtime, report::HostPidns};

/// How a process came to be reported in the host PID namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// It exec'd in a container cgroup while in the host PID namespace.
    Exec,
    /// A container process in the host PID namespace created it with no
    /// namespace flag (fork, vfork, clone, clone3: see `clone_flags`).
    Fork,
    /// Created with namespace flags (e.g. CLONE_NEWNS) but not CLONE_NEWPID:
    /// new namespaces, still the host's PIDs.
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
        /// Optional probes that could not be attached, with why: what they
        /// would have reported goes unseen.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        probes_missing: Vec<MissingProbe>,
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
    /// A container process in the host PID namespace created a child in
    /// another PID namespace: informational, not a finding.
    NewPidns(NewPidnsEvent),
    /// Events the kernel could not hand over (ring buffer full).
    Lost { count: u64, total: u64, ts: String },
    /// Printed once when watch stops (eBPF mode): what it handled.
    Stats {
        /// Kernel events decoded.
        events: u64,
        /// Events whose process had exited before its cgroup could be placed
        /// (a cgroup never seen, its path unreadable): dropped.
        unattributed: u64,
        /// Events the kernel dropped (the sum of the `lost` lines).
        lost: u64,
        ts: String,
    },
}

/// Clone flags as the kernel used them (`kernel_clone_args.flags`, without
/// the exit signal), in hex and by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloneFlags {
    #[serde(rename = "clone_flags")]
    pub hex: String,
    #[serde(rename = "clone_flag_names")]
    pub names: Vec<&'static str>,
    #[serde(skip)]
    pub value: u64,
}

/// `include/uapi/linux/sched.h`.
const CLONE_FLAG_NAMES: [(u64, &str); 26] = [
    (0x0000_0080, "CLONE_NEWTIME"),
    (0x0000_0100, "CLONE_VM"),
    (0x0000_0200, "CLONE_FS"),
    (0x0000_0400, "CLONE_FILES"),
    (0x0000_0800, "CLONE_SIGHAND"),
    (0x0000_1000, "CLONE_PIDFD"),
    (0x0000_2000, "CLONE_PTRACE"),
    (0x0000_4000, "CLONE_VFORK"),
    (0x0000_8000, "CLONE_PARENT"),
    (0x0001_0000, "CLONE_THREAD"),
    (0x0002_0000, "CLONE_NEWNS"),
    (0x0004_0000, "CLONE_SYSVSEM"),
    (0x0008_0000, "CLONE_SETTLS"),
    (0x0010_0000, "CLONE_PARENT_SETTID"),
    (0x0020_0000, "CLONE_CHILD_CLEARTID"),
    (0x0040_0000, "CLONE_DETACHED"),
    (0x0080_0000, "CLONE_UNTRACED"),
    (0x0100_0000, "CLONE_CHILD_SETTID"),
    (0x0200_0000, "CLONE_NEWCGROUP"),
    (0x0400_0000, "CLONE_NEWUTS"),
    (0x0800_0000, "CLONE_NEWIPC"),
    (0x1000_0000, "CLONE_NEWUSER"),
    (0x2000_0000, "CLONE_NEWPID"),
    (0x4000_0000, "CLONE_NEWNET"),
    (0x8000_0000, "CLONE_IO"),
    (0x2_0000_0000, "CLONE_INTO_CGROUP"),
];

impl CloneFlags {
    pub fn new(value: u64) -> CloneFlags {
        CloneFlags {
            hex: format!("{value:#x}"),
            names: CLONE_FLAG_NAMES
                .iter()
                .filter(|(bit, _)| value & bit != 0)
                .map(|(_, name)| *name)
                .collect(),
            value,
        }
    }
}

/// How a child came to live in another PID namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NewPidnsVia {
    /// The clone asked for CLONE_NEWPID.
    Clone,
    /// The parent's `pid_for_children` had been switched earlier, by
    /// unshare(CLONE_NEWPID) or setns into a PID namespace.
    UnshareOrSetns,
}

impl NewPidnsVia {
    pub fn as_str(self) -> &'static str {
        match self {
            NewPidnsVia::Clone => "clone",
            NewPidnsVia::UnshareOrSetns => "unshare_or_setns",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewPidnsEvent {
    pub via: NewPidnsVia,
    /// The parent: a container process in the host PID namespace.
    pub pid: u32,
    pub comm: String,
    #[serde(flatten)]
    pub container: ContainerRef,
    pub ts: String,
    #[serde(flatten)]
    pub clone_flags: CloneFlags,
    pub child_pid: u32,
    /// The child's PID namespace.
    pub pidns_inode: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
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
    /// fork/clone, and the exec of a vfork child: the clone flags
    /// (`clone_flags` in hex, `clone_flag_names`).
    #[serde(flatten)]
    pub clone_flags: Option<CloneFlags>,
    /// Microseconds from the kernel event to this line (eBPF mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
}

/// How setns named its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetnsVia {
    /// A namespace file (`/proc/<pid>/ns/<type>`, a bind mount of one).
    NsFile,
    /// A pidfd (util-linux 2.39+ `nsenter`): one event per type asked for.
    Pidfd,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetnsEvent {
    pub nstype: &'static str,
    pub target: &'static str,
    pub ok: bool,
    pub via: SetnsVia,
    /// With a pidfd: the process whose namespaces were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_pid: Option<u32>,
    /// Made through the 32-bit compat entry (`int 0x80`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub compat: bool,
    /// The error when the kernel refused, e.g. `EPERM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub pid: u32,
    pub comm: String,
    #[serde(flatten)]
    pub container: ContainerRef,
    pub ts: String,
    /// The namespace joined; absent when a pidfd's target could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns_inode: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
}

/// An optional probe `ready` reports as not attached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissingProbe {
    pub probe: String,
    pub reason: String,
    /// What goes unreported without it.
    pub unseen: &'static str,
}

impl MissingProbe {
    pub fn new(probe: &str, reason: &str) -> MissingProbe {
        MissingProbe {
            probe: probe.to_owned(),
            reason: reason.to_owned(),
            unseen: match probe {
                "sys_exit_setns" => "setns into host namespaces (escapes)",
                "sys_exit_compat_setns" => "32-bit (compat) setns",
                _ => "events of this probe",
            },
        }
    }
}
