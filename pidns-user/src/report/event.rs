//! What `pidns watch` reports: one [`WatchEvent`] per output line.

use pidns_ebpf::programs;
use serde::{Serialize, Serializer};

use super::{
    CloneFlags, HostAccessAggregate, HostAccessEvent, HostPidns, Identity, Pod, Runtime,
    ScanReport, Verdict,
};

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

/// What every event about a process carries: the process, its container,
/// and when it happened. Flattened into each event's line, where the
/// container's id is `container_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub pid: u32,
    pub comm: String,
    pub container: Identity,
    /// RFC 3339, UTC.
    pub ts: String,
}

#[cfg(test)]
impl Envelope {
    /// Process `pid` (`comm`) of Docker container `abc`, for unit tests.
    pub fn docker_abc(pid: u32, comm: &str) -> Envelope {
        Envelope {
            pid,
            comm: comm.into(),
            container: Identity {
                id: "abc".into(),
                runtime: Runtime::Docker,
                name: None,
                pod: None,
                cgroup: "/docker/abc".into(),
            },
            ts: String::new(),
        }
    }
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Line<'a> {
            pid: u32,
            comm: &'a str,
            container_id: &'a str,
            runtime: Runtime,
            name: &'a Option<String>,
            pod: &'a Option<Pod>,
            cgroup: &'a str,
            ts: &'a str,
        }
        let c = &self.container;
        Line {
            pid: self.pid,
            comm: &self.comm,
            container_id: &c.id,
            runtime: c.runtime,
            name: &c.name,
            pod: &c.pod,
            cgroup: &c.cgroup,
            ts: &self.ts,
        }
        .serialize(s)
    }
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
        /// `--enforce` modes in force (`setns`, `host-pidns`); empty: report only.
        enforce: Vec<&'static str>,
    },
    /// A container process lives in the host PID namespace.
    HostPidns(Finding),
    /// A container process called setns into a host namespace.
    Setns(SetnsEvent),
    /// A container process in the host PID namespace created a child in
    /// another PID namespace: informational, not a finding.
    NewPidns(NewPidnsEvent),
    /// What a container did beyond its budget in the kernel, counted there
    /// rather than sent one event per syscall.
    Aggregate(AggregateEvent),
    /// A process of a container in the host PID namespace acted on a
    /// process outside its container: the first access of its kind to that
    /// target.
    HostAccess(HostAccessEvent),
    /// One container's host accesses of one op in one interval that were
    /// not reported one by one, with the distinct targets.
    HostAccessAggregate(HostAccessAggregate),
    /// Events the kernel could not hand over (a ring buffer full): `stream`
    /// says which, `findings` (findings may be missing) or `other`.
    Lost {
        stream: &'static str,
        count: u64,
        total: u64,
        ts: String,
    },
    /// A container process was moved (or moved itself) out of its
    /// container's cgroup into one that is not a container's. It keeps its
    /// container: what it does afterwards is reported with the container's
    /// id, as before it moved.
    CgroupEscape(EscapeEvent),
    /// Printed once when watch stops (eBPF mode): what it handled.
    Stats {
        /// Kernel events decoded.
        events: u64,
        /// Events whose process had exited before its cgroup could be placed
        /// (a cgroup never seen, its path unreadable) or its root read (a
        /// foreign-mount exec outside container cgroups), or whose anchor
        /// names no known container: dropped.
        unattributed: u64,
        /// Events the kernel dropped (the sum of the `lost` lines).
        lost: u64,
        ts: String,
    },
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
    #[serde(flatten)]
    pub at: Envelope,
    #[serde(flatten)]
    pub clone_flags: CloneFlags,
    pub child_pid: u32,
    /// The child's PID namespace.
    pub pidns_inode: u32,
    /// Microseconds from the kernel event to its line (eBPF mode), stamped
    /// as the line is written: see [`WatchEvent::stamp_latency`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub trigger: Trigger,
    #[serde(flatten)]
    pub at: Envelope,
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
    /// fork: a vfork child reported at its exit, which it reached without
    /// exec'ing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exited: bool,
    /// Microseconds from the kernel event to its line (eBPF mode), stamped
    /// as the line is written: see [`WatchEvent::stamp_latency`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// The process is outside its container's cgroup (it left it, see
    /// `cgroup_escape`; or the start-up scan found it outside by its root):
    /// a finding of its own, whether or not its container may share.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub outside_cgroup: bool,
    /// What `--enforce host-pidns` did to the process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforced: Option<Enforced>,
}

/// A container process that left its container's cgroup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EscapeEvent {
    /// The process and the container it left.
    #[serde(flatten)]
    pub at: Envelope,
    /// The container cgroup it was in (its container's, or one below it).
    pub from_cgroup: String,
    /// The cgroup it went to; `null` when neither /proc nor the cgroup
    /// table could name it (the process already gone).
    pub to_cgroup: Option<String>,
    /// The process that moved it (itself, when it wrote its own pid).
    pub moved_by: u32,
    /// Microseconds from the kernel event to its line, stamped as the line
    /// is written: see [`WatchEvent::stamp_latency`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
}

/// What `--enforce` did to a finding's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforced {
    /// SIGKILL from the probe, in the kernel: the process did not return to
    /// user space (a new child: did not run at all).
    Killed,
    /// SIGKILL from the agent (`pidfd_send_signal`) after it verified the
    /// process from /proc: the kernel could not prove it in time (its cgroup
    /// not yet classified there, moved in by another process, or running
    /// when the agent started, with `--enforce-existing`). It may have run.
    KilledByAgent,
}

impl Enforced {
    pub fn as_str(self) -> &'static str {
        match self {
            Enforced::Killed => "killed",
            Enforced::KilledByAgent => "killed_by_agent",
        }
    }
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
    /// The container is allowed to share the host PID namespace (`--allow`),
    /// which does not allow it to join host namespaces (`--allow-setns`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allowed_container: bool,
    /// The error when the kernel refused, e.g. `EPERM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub at: Envelope,
    /// The namespace joined; absent when a pidfd's target could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns_inode: Option<u64>,
    /// Microseconds from the kernel event to its line (eBPF mode), stamped
    /// as the line is written: see [`WatchEvent::stamp_latency`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// What `--enforce setns` did to the caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforced: Option<Enforced>,
}

/// A count of one container's events of one kind that the kernel held back
/// beyond its budget (see `pidns_ebpf::budget`), since the last such line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AggregateEvent {
    /// What the events were: `host_pidns`, `setns` or `new_pidns`.
    pub of: &'static str,
    /// host_pidns: how the processes were caught (`exec`, `fork`, `cgroup_attach`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// setns: whether the kernel let these calls through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    /// setns: the namespace types they targeted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nstypes: Vec<&'static str>,
    /// Events counted, not sent, since the last line for this container and kind.
    pub count: u64,
    /// The last of them: its process (`pid`; `comm` is empty) and when (`ts`).
    #[serde(flatten)]
    pub at: Envelope,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allowed_container: bool,
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
                programs::SYS_EXIT_SETNS => "setns into host namespaces (escapes)",
                programs::SYS_EXIT_COMPAT_SETNS => "32-bit (compat) setns",
                programs::SYS_ENTER_SETNS => {
                    "nothing: without it, a successful setns into the namespace the caller was already in (a no-op) may be reported"
                }
                programs::SYS_ENTER_ACCESS | programs::SYS_EXIT_ACCESS => {
                    "host access (signals, ptrace, process_vm_readv/writev, pidfd_getfd of host processes)"
                }
                programs::SIGNAL_GENERATE => {
                    "which process a signal reached when the target was gone before it could be read"
                }
                programs::SYS_EXIT_UNSHARE => {
                    "setns into namespaces host processes create with unshare after start-up (until a rescan finds their holders)"
                }
                _ => "events of this probe",
            },
        }
    }
}

impl WatchEvent {
    /// `ready`: watching, after the start-up scan `report`, as of `ts`.
    pub fn ready(
        mode: &'static str,
        probes: Vec<String>,
        probes_missing: Vec<MissingProbe>,
        report: &ScanReport,
        metrics_addr: Option<String>,
        ts: String,
    ) -> WatchEvent {
        WatchEvent::Ready {
            mode,
            probes,
            probes_missing,
            host_pidns: report.host_pidns.clone(),
            containers: report.summary.containers,
            sharing: report.summary.sharing,
            metrics_addr,
            pidns_version: env!("CARGO_PKG_VERSION"),
            ts,
            enforce: Vec::new(),
        }
    }

    /// A `ready` event that says which `--enforce` modes are in force.
    pub fn with_enforce(mut self, modes: Vec<&'static str>) -> WatchEvent {
        if let WatchEvent::Ready { enforce, .. } = &mut self {
            *enforce = modes;
        }
        self
    }

    /// Sets how long after its kernel event (in µs) the line of a finding,
    /// setns or new_pidns event is written. The one place latency is set:
    /// the output, just before it serialises the line.
    pub fn stamp_latency(&mut self, us: u64) {
        match self {
            WatchEvent::HostPidns(Finding { latency_us, .. })
            | WatchEvent::Setns(SetnsEvent { latency_us, .. })
            | WatchEvent::NewPidns(NewPidnsEvent { latency_us, .. })
            | WatchEvent::CgroupEscape(EscapeEvent { latency_us, .. })
            | WatchEvent::HostAccess(HostAccessEvent { latency_us, .. }) => *latency_us = Some(us),
            WatchEvent::Ready { .. }
            | WatchEvent::Aggregate(_)
            | WatchEvent::HostAccessAggregate(_)
            | WatchEvent::Lost { .. }
            | WatchEvent::Stats { .. } => {}
        }
    }
}

impl Finding {
    /// A finding with no detail beyond its trigger and envelope.
    pub fn new(trigger: Trigger, at: Envelope) -> Finding {
        Finding {
            trigger,
            at,
            ppid: None,
            filename: None,
            clone_flags: None,
            exited: false,
            latency_us: None,
            outside_cgroup: false,
            enforced: None,
        }
    }

    /// One finding (trigger `scan` or `poll`) for every host-PID process of
    /// every container a scan says shares the host PID namespace and is not
    /// allowed, and for every process outside its container's cgroup
    /// (allowed or not: what fails `scan` is what watch reports).
    pub fn from_scan<'r>(
        report: &'r ScanReport,
        trigger: Trigger,
        ts: &'r str,
    ) -> impl Iterator<Item = Finding> + 'r {
        report
            .containers
            .iter()
            .filter(|c| c.verdict == Verdict::Shares || !c.outside_cgroup_pids.is_empty())
            .flat_map(move |c| {
                let container = c.identity();
                let all = c.verdict == Verdict::Shares;
                c.host_pidns_processes
                    .iter()
                    .filter(move |p| all || p.outside_cgroup)
                    .map(move |p| {
                        let mut f = Finding::new(
                            trigger,
                            Envelope {
                                pid: p.pid,
                                comm: p.comm.clone().unwrap_or_default(),
                                container: container.clone(),
                                ts: ts.to_owned(),
                            },
                        );
                        f.outside_cgroup = p.outside_cgroup;
                        f
                    })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Container, HostMethod, Method, ProcessEvidence, SCHEMA, Summary};

    const ID: &str = "c6e94367ab9335599a46308fb7deaf45f923aae7c1e7f971dc89871f499e4cfc";
    const HOST: u64 = 4026531836;

    #[test]
    fn scan_findings_cover_each_host_process() {
        let mk = |verdict: Verdict| Container {
            id: ID.into(),
            runtime: Runtime::Docker,
            name: Some("hp".into()),
            pod: None,
            containerd_namespace: None,
            cgroup: format!("/docker/{ID}"),
            found_by: crate::report::FoundBy::Cgroup,
            root_mount: None,
            rootfs: None,
            enclosed_by: Vec::new(),
            shares_host_pidns: Some(true),
            verdict,
            pids: vec![1, 2],
            pidns_inodes: vec![HOST],
            host_pidns_processes: vec![
                ProcessEvidence {
                    pid: 1,
                    comm: Some("a".into()),
                    pidns_inode: Some(HOST),
                    method: Method::NsLink,
                    children_pidns_inode: None,
                    outside_cgroup: false,
                    cgroup: None,
                },
                ProcessEvidence {
                    pid: 2,
                    comm: Some("b".into()),
                    pidns_inode: Some(HOST),
                    method: Method::NsLink,
                    children_pidns_inode: None,
                    outside_cgroup: false,
                    cgroup: None,
                },
            ],
            runtime_pids: vec![],
            shares_pidns_with: vec![],
            unknown_reason: None,
            unverified_reason: None,
            owner_uid: None,
            outside_cgroup_pids: vec![],
            allowed_by: None,
            state: crate::report::RunState::Running,
            configured_host_pidns: None,
            configured_pid_mode: None,
            configured_in: None,
        };
        let report = |c: Container| ScanReport {
            schema: SCHEMA,
            pidns_version: "x",
            proc_root: "/proc".into(),
            scanned_at: String::new(),
            duration_ms: 0.0,
            host_pidns: HostPidns {
                inode: Some(HOST),
                method: HostMethod::NsLink,
                host_pid: 1,
                inode_source_pid: None,
                procfs_own: true,
            },
            containers: vec![c],
            summary: Summary::default(),
            warnings: vec![],
            offline: false,
        };
        let shares = report(mk(Verdict::Shares));
        let out: Vec<Finding> = Finding::from_scan(&shares, Trigger::Scan, "T").collect();
        assert_eq!(
            out.iter()
                .map(|f| (f.at.pid, f.at.comm.as_str(), f.at.container.id.as_str()))
                .collect::<Vec<_>>(),
            [(1, "a", ID), (2, "b", ID)]
        );
        assert!(
            out.iter()
                .all(|f| f.trigger == Trigger::Scan && f.at.ts == "T")
        );
        let allowed = report(mk(Verdict::Allowed));
        assert_eq!(Finding::from_scan(&allowed, Trigger::Scan, "T").count(), 0);
        // a process outside its container's cgroup is one, allowed or not
        let mut outside = mk(Verdict::Allowed);
        outside.host_pidns_processes[1].outside_cgroup = true;
        outside.outside_cgroup_pids = vec![2];
        let outside = report(outside);
        let out: Vec<Finding> = Finding::from_scan(&outside, Trigger::Scan, "T").collect();
        assert_eq!(
            out.iter()
                .map(|f| (f.at.pid, f.outside_cgroup))
                .collect::<Vec<_>>(),
            [(2, true)]
        );
        let json = serde_json::to_value(WatchEvent::HostPidns(out[0].clone())).expect("json");
        assert_eq!(json["outside_cgroup"], true);
    }
}
