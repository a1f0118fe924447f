//! `pidns scan`, as its steps: place every process in its container (one
//! cgroup read each), gather each container's evidence (the PID namespace of
//! each of its processes), judge each container, tally.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Instant,
};

use super::{
    Ancestry, Placement, ScanOptions,
    host::{PidnsFact, host_pidns, pidns_fact},
    placement, refine_runtime,
    runtime_process::{is_runtime_process, verify_runtime_process},
};
use crate::{
    allow::Allowance,
    error::{ReadError, ReadErrorKind, ScanError},
    parse::layout::Role,
    procfs::ProcRoot,
    report::{
        Container, ContainerKey, HostMethod, HostPidns, ProcessEvidence, SCHEMA, ScanReport,
        Summary, Verdict,
    },
};

/// Runs a one-shot scan.
pub fn scan(opts: &ScanOptions) -> Result<ScanReport, ScanError> {
    let started = Instant::now();
    let scanned_at = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    let proc = ProcRoot::open(&opts.proc_root)?;
    let pids = proc.pids()?;
    let host = host_pidns(&proc, opts.host_pid, Some(&pids))?;
    let mut s = Scan {
        opts,
        proc,
        host,
        summary: Summary {
            processes_scanned: pids.len(),
            ..Summary::default()
        },
        warnings: Vec::new(),
    };
    let candidates = s.place(&pids);
    let own = s.own_container(&candidates);
    let gathered = s.gather(candidates);
    let containers = s.judge(&gathered, own.as_ref());
    s.tally(&containers);
    Ok(ScanReport {
        schema: SCHEMA,
        pidns_version: env!("CARGO_PKG_VERSION"),
        proc_root: s.proc.path().display().to_string(),
        scanned_at,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        host_pidns: s.host,
        containers,
        summary: s.summary,
        warnings: s.warnings,
    })
}

/// A process in a container's cgroup.
struct Candidate {
    pid: u32,
    placement: Placement,
}

/// What the walk learned of one container.
#[derive(Default)]
struct Gathered {
    /// Its first container (not runtime) process's placement.
    placement: Option<Placement>,
    pids: BTreeSet<u32>,
    inodes: BTreeSet<u64>,
    host: Vec<ProcessEvidence>,
    runtime_pids: Vec<u32>,
    unknown: Vec<ReadError>,
    /// Host-PID processes whose name and children's namespace were read.
    detailed: usize,
}

/// One scan in progress.
struct Scan<'a> {
    opts: &'a ScanOptions,
    proc: ProcRoot,
    host: HostPidns,
    summary: Summary,
    warnings: Vec<String>,
}

impl Scan<'_> {
    /// Place: which processes sit in a container's cgroup (one read each).
    fn place(&mut self, pids: &[u32]) -> Vec<Candidate> {
        let mut candidates = Vec::new();
        let mut buf = Vec::with_capacity(4096);
        let mut ancestry = Ancestry::new(&self.proc);
        for &pid in pids {
            if let Err(e) = self.proc.read_into(pid, "cgroup", &mut buf) {
                count_error(&mut self.summary, &e);
                continue;
            }
            let Some(mut placement) = placement(&buf) else {
                continue;
            };
            // A monitor's own cgroup (never one inside a container's: the
            // layout attributes those to the container).
            if placement.role == Role::Monitor {
                continue;
            }
            if placement.needs_confirmation {
                if !ancestry.has_shim_ancestor(pid) {
                    continue;
                }
                refine_runtime(&mut placement, self.opts.state_root.as_deref());
            }
            candidates.push(Candidate { pid, placement });
        }
        candidates
    }

    /// pidns's own container (a DaemonSet pod with hostPID, `docker run
    /// --pid=host`), which shares the host PID namespace by design.
    fn own_container(&self, candidates: &[Candidate]) -> Option<ContainerKey> {
        let own = self.proc.self_pid();
        candidates
            .iter()
            .find(|c| Some(c.pid) == own)
            .map(|c| c.placement.key.clone())
    }

    /// Gather: each container process's PID namespace.
    fn gather(&mut self, candidates: Vec<Candidate>) -> BTreeMap<ContainerKey, Gathered> {
        let mut gathered: BTreeMap<ContainerKey, Gathered> = BTreeMap::new();
        for Candidate { pid, placement } in candidates {
            let fact = pidns_fact(&self.proc, &self.host, pid);
            let g = match fact {
                PidnsFact::Vanished => {
                    self.summary.processes_vanished += 1;
                    continue;
                }
                _ => gathered.entry(placement.key.clone()).or_default(),
            };
            match fact {
                PidnsFact::InHost { inode, method } => {
                    let Some(evidence) = self.host_process(g, pid, &placement, inode, method)
                    else {
                        continue; // a runtime's own process
                    };
                    g.host.push(evidence);
                    g.inodes.extend(inode);
                }
                PidnsFact::Elsewhere { inode } => g.inodes.extend(inode),
                PidnsFact::Unknown(e) => {
                    count_error(&mut self.summary, &e);
                    g.unknown.push(e);
                }
                PidnsFact::Vanished => unreachable!("handled above"),
            }
            g.pids.insert(pid);
            g.placement.get_or_insert(placement);
        }
        gathered
    }

    /// The evidence of a process in the host PID namespace, or `None` for a
    /// runtime's own process. The verdict needs one host-PID process that is
    /// not a runtime's; the detail (name, where its children go) is read for
    /// the first few of each container unless asked for all.
    fn host_process(
        &mut self,
        g: &mut Gathered,
        pid: u32,
        placement: &Placement,
        inode: Option<u64>,
        method: crate::report::Method,
    ) -> Option<ProcessEvidence> {
        let detailed = self
            .opts
            .evidence_detail
            .is_none_or(|limit| g.detailed < limit);
        let comm = if detailed {
            self.proc.comm(pid).ok()
        } else {
            None
        };
        if let Some(name) = comm.as_deref().filter(|c| is_runtime_process(c)) {
            match verify_runtime_process(&self.proc, pid, placement) {
                Ok(()) => {
                    g.runtime_pids.push(pid);
                    return None;
                }
                Err(why) => self.warnings.push(format!(
                    "{} container {}: pid {pid} is named {name:?} like a runtime process, but {why}; it counts as a container process",
                    placement.key.runtime, placement.key.id
                )),
            }
        }
        let children_pidns_inode = if detailed {
            g.detailed += 1;
            self.proc.ns_inode(pid, "pid_for_children").ok()
        } else {
            None
        };
        Some(ProcessEvidence {
            pid,
            comm,
            pidns_inode: inode,
            method,
            children_pidns_inode,
        })
    }

    /// Judge: each container's verdict, in report order.
    fn judge(
        &mut self,
        gathered: &BTreeMap<ContainerKey, Gathered>,
        own: Option<&ContainerKey>,
    ) -> Vec<Container> {
        let peers = pidns_peers(gathered, self.host.inode);
        let mut containers = Vec::new();
        for (key, g) in gathered {
            let Some(placement) = &g.placement else {
                self.warnings.push(format!(
                    "{} container {} (cgroup {}): only runtime processes ({:?}); it is being set up or torn down",
                    key.runtime, key.id, key.cgroup, g.runtime_pids
                ));
                continue;
            };
            let mut c = self.container(key, g, placement, &peers);
            self.verdict(&mut c, g, placement, own);
            containers.push(c);
        }
        containers.sort_by(|a, b| {
            a.verdict
                .cmp(&b.verdict)
                .then_with(|| a.runtime.cmp(&b.runtime))
                .then_with(|| a.id.cmp(&b.id))
                .then_with(|| a.cgroup.cmp(&b.cgroup))
        });
        containers
    }

    /// A container's report entry, named, without its verdict yet.
    fn container(
        &self,
        key: &ContainerKey,
        g: &Gathered,
        placement: &Placement,
        peers: &HashMap<u64, Vec<&ContainerKey>>,
    ) -> Container {
        let mut shares_with: BTreeSet<&str> = BTreeSet::new();
        for inode in &g.inodes {
            for other in peers.get(inode).into_iter().flatten() {
                if *other != key {
                    shares_with.insert(&other.id);
                }
            }
        }
        let names = self.opts.names.as_ref();
        let identity = placement.identity(names);
        Container {
            id: key.id.clone(),
            runtime: key.runtime,
            name: identity.name,
            pod: identity.pod,
            containerd_namespace: placement.namespace.clone(),
            cgroup: placement.cgroup.clone(),
            enclosed_by: placement.enclosing_identities(names),
            shares_host_pidns: None,
            verdict: Verdict::Unknown,
            pids: g.pids.iter().copied().collect(),
            pidns_inodes: g.inodes.iter().copied().collect(),
            host_pidns_processes: g.host.clone(),
            runtime_pids: g.runtime_pids.clone(),
            shares_pidns_with: shares_with.into_iter().map(str::to_owned).collect(),
            unknown_reason: None,
            allowed_by: None,
        }
    }

    /// Sets a container's verdict: sharing (allowed or not), unknown or isolated.
    fn verdict(
        &mut self,
        c: &mut Container,
        g: &Gathered,
        placement: &Placement,
        own: Option<&ContainerKey>,
    ) {
        if !c.host_pidns_processes.is_empty() {
            c.shares_host_pidns = Some(true);
            let allowance = self
                .opts
                .allow
                .allowance(own, &placement.key, &*c, &c.enclosed_by);
            if let Allowance::Refused { entry, enclosing } = &allowance {
                self.warnings.push(format!(
                    "--allow {entry} matches {} container {} (cgroup {}), but not the container(s) enclosing it ({}); it is not allowed",
                    c.runtime,
                    c.id,
                    c.cgroup,
                    enclosing
                        .iter()
                        .map(|e| format!("{} {}", e.runtime, e.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            c.allowed_by = allowance.reason();
            c.verdict = if c.allowed_by.is_some() {
                Verdict::Allowed
            } else {
                Verdict::Shares
            };
        } else if let Some(first) = g.unknown.first() {
            c.unknown_reason = Some(format!(
                "{} of {} processes unreadable; first: {first}",
                g.unknown.len(),
                g.pids.len()
            ));
        } else {
            c.shares_host_pidns = Some(false);
            c.verdict = Verdict::Isolated;
        }
    }

    /// Tally: the summary's counts, and what the user should know about the scan as a whole.
    fn tally(&mut self, containers: &[Container]) {
        let summary = &mut self.summary;
        summary.containers = containers.len();
        summary.container_processes = containers.iter().map(|c| c.pids.len()).sum();
        for c in containers {
            match c.verdict {
                Verdict::Shares => summary.sharing += 1,
                Verdict::Allowed => summary.allowed += 1,
                Verdict::Unknown => summary.unknown += 1,
                Verdict::Isolated => summary.isolated += 1,
            }
        }
        for unused in self.opts.allow.unused(containers) {
            self.warnings.push(format!(
                "--allow {unused} matched no container that shares the host PID namespace"
            ));
        }
        for (entry, runtimes) in self.opts.allow.ambiguous(containers.iter().map(Into::into)) {
            self.warnings
                .push(crate::allow::ambiguity_warning(&entry, &runtimes));
        }
        if self.host.method == HostMethod::Nspid && self.host.inode.is_none() {
            self.warnings.push("no process in the host PID namespace had a readable ns/pid link; verdicts rest on NSpid".into());
        }
    }
}

/// Containers by the (non-host) PID namespaces their processes live in, so
/// that containers sharing one (`--pid=container:<id>`) can name each other.
fn pidns_peers(
    gathered: &BTreeMap<ContainerKey, Gathered>,
    host_inode: Option<u64>,
) -> HashMap<u64, Vec<&ContainerKey>> {
    let mut by_inode: HashMap<u64, Vec<&ContainerKey>> = HashMap::new();
    for (key, g) in gathered {
        for inode in &g.inodes {
            if Some(*inode) != host_inode {
                by_inode.entry(*inode).or_default().push(key);
            }
        }
    }
    by_inode
}

fn count_error(summary: &mut Summary, e: &ReadError) {
    match e.kind {
        ReadErrorKind::Vanished => summary.processes_vanished += 1,
        ReadErrorKind::PermissionDenied => summary.permission_errors += 1,
        ReadErrorKind::Malformed(_) | ReadErrorKind::Io(_) => summary.malformed_entries += 1,
    }
}
