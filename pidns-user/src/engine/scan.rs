//! The engine that `scan` and `watch` share: which processes belong to which
//! container, and whether each lives in the host PID namespace.
//!
//! It works from the collector's facts alone (cgroup files, namespace links,
//! `NSpid`), never from a runtime's API.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::Path,
    time::Instant,
};

use crate::{
    allow::AllowList,
    error::{ReadError, ReadErrorKind, ScanError},
    names::{self, NameResolver},
    parse::{
        cgroup,
        layout::{self, Match, Role, Runtime},
    },
    procfs::ProcRoot,
    report::{
        Container, Enclosing, HostMethod, HostPidns, Method, Pod, ProcessEvidence, SCHEMA,
        ScanReport, Summary, Verdict,
    },
};

/// Identity of a container, from its cgroup path: its runtime, its id, and
/// the cgroup that is the container's, so that the same id at another path
/// (a sub-cgroup of some other container named after an allowed one) is
/// another container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerKey {
    pub runtime: Runtime,
    pub id: String,
    pub cgroup: String,
}

/// A process's container, from its cgroup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub key: ContainerKey,
    pub pod_uid: Option<String>,
    pub namespace: Option<String>,
    pub cgroup: String,
    pub role: Role,
    pub needs_confirmation: bool,
    /// A full 64-hex id under a path no layout names; see [`refine_runtime`].
    pub hex_leaf: bool,
    /// Containers whose cgroups enclose this one, outermost first.
    pub enclosing: Vec<ContainerKey>,
}

impl Placement {
    pub fn from_match(m: Match, path: &[u8]) -> Self {
        let cgroup_of = |len: usize| String::from_utf8_lossy(&path[..len]).into_owned();
        let cgroup = cgroup_of(m.cgroup_len);
        Placement {
            enclosing: m
                .enclosing
                .into_iter()
                .map(|e| ContainerKey {
                    runtime: e.runtime,
                    id: e.id,
                    cgroup: cgroup_of(e.cgroup_len),
                })
                .collect(),
            key: ContainerKey {
                runtime: m.runtime,
                id: m.id,
                cgroup: cgroup.clone(),
            },
            cgroup,
            pod_uid: m.pod_uid,
            namespace: m.namespace,
            role: m.role,
            needs_confirmation: m.needs_confirmation,
            hex_leaf: m.hex_leaf,
        }
    }
}

/// Names a confirmed [`Placement::hex_leaf`] container's runtime: Docker when
/// Docker's state for that id exists under the host root (`docker run
/// --cgroup-parent=…`), else containerd. Without a host root it stays
/// containerd.
pub fn refine_runtime(p: &mut Placement, state_root: Option<&Path>) {
    if p.hex_leaf
        && p.key.runtime == Runtime::Containerd
        && state_root.is_some_and(|root| names::docker_state_exists(root, &p.key.id))
    {
        p.key.runtime = Runtime::Docker;
        p.namespace = None;
    }
}

/// Picks the container a process's cgroup file places it in.
///
/// The unified (v2) line is preferred, then systemd's named v1 hierarchy, then
/// any other v1 hierarchy. The `/<namespace>/<id>` shape is only trusted on
/// the first two: a lone v1 controller path such as `/process_api/<hex>` is
/// how host tools partition memory, not a container.
pub fn placement(cgroup_file: &[u8]) -> Option<Placement> {
    let lines: Vec<cgroup::Line<'_>> = cgroup::parse(cgroup_file).collect();
    let ranked = lines
        .iter()
        .filter(|l| l.is_unified())
        .map(|l| (l, true))
        .chain(lines.iter().filter(|l| l.is_systemd()).map(|l| (l, true)))
        .chain(
            lines
                .iter()
                .filter(|l| !l.is_unified() && !l.is_systemd())
                .map(|l| (l, false)),
        );
    for (line, trusted_shape) in ranked {
        if let Some(m) = layout::classify(line.path) {
            if m.needs_confirmation && !trusted_shape {
                continue;
            }
            return Some(Placement::from_match(m, line.path));
        }
    }
    None
}

/// Whether a process is *named* like a runtime's (`comm`, at most 15 bytes as
/// the kernel keeps it): runc's setup stages `runc:[0:PARENT]` and
/// `runc:[1:CHILD]` (`runc:[2:INIT]` becomes the container's init and is a
/// container process), OCI runtimes, shims and monitors.
///
/// A name is no proof: any process can rename itself. The scan counts a
/// runtime-named process in a container's cgroup as the runtime's only when
/// [`verify_runtime_process`] confirms it from facts the container cannot
/// forge.
pub fn is_runtime_process(comm: &str) -> bool {
    const EXACT: [&str; 9] = [
        "runc",
        "runc:[0:PARENT]",
        "runc:[1:CHILD]",
        "crun",
        "youki",
        "conmon",
        "lxc-start",
        "systemd-nspawn",
        "runsc",
    ];
    EXACT.contains(&comm)
        || is_setup_stage(comm)
        || comm.starts_with("containerd-shim")
        || comm.starts_with("runsc-")
}

/// OCI runtime command-line tools: the parent of every setup stage they run
/// in a container's cgroup (runc clones its stages with `CLONE_PARENT`, so all
/// of them are the CLI's children).
const OCI_RUNTIME_CLIS: [&str; 6] = ["runc", "docker-runc", "crun", "krun", "youki", "runsc"];

/// The names an OCI runtime's setup process has while it sits in the
/// container's cgroup before the container's own program runs: the runtime's
/// name (its memfd re-exec), `exe` (started through `/proc/self/exe`) and
/// runc's and youki's numbered stages, except the last (`…INIT]`), which is
/// the container's init.
fn is_setup_stage(comm: &str) -> bool {
    if OCI_RUNTIME_CLIS.contains(&comm) || comm == "exe" {
        return true;
    }
    ["runc:[", "youki:["].iter().any(|p| comm.starts_with(p)) && !comm.contains("INIT")
}

/// Why a runtime-named process in a container's cgroup is not (provably) the runtime's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    /// Its own or its parent's `status` or `cgroup` could not be read.
    Unreadable(String),
    /// Its parent is inside the container's cgroup: it was forked by the container.
    ParentInside { ppid: u32 },
    /// Its parent is not what runs this kind of process.
    ParentNotRuntime { ppid: u32, parent: String },
    /// Runtimes never run this process in a container's cgroup (shims and
    /// monitors live in cgroups of their own).
    NotInContainerCgroups,
}

impl std::fmt::Display for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unverified::Unreadable(what) => write!(f, "{what} is unreadable"),
            Unverified::ParentInside { ppid } => {
                write!(f, "its parent {ppid} is inside the container's cgroup")
            }
            Unverified::ParentNotRuntime { ppid, parent } => {
                write!(f, "its parent {ppid} ({parent}) is not a runtime")
            }
            Unverified::NotInContainerCgroups => {
                f.write_str("runtimes run no such process in a container's cgroup")
            }
        }
    }
}

/// Confirms that a process in `placement`'s container cgroup is a runtime's
/// own, from facts a process in that cgroup cannot forge:
///
/// - an OCI runtime's setup stage (`runc`, `runc:[0:PARENT]`, `runc:[1:CHILD]`,
///   `crun`, …) whose parent is an OCI runtime CLI (`runc create`/`exec`)
///   *outside* the container's cgroup. A container's init has a shim or
///   monitor as parent, and what it forks has parents inside the cgroup;
///   orphans go to a subreaper (the shim) or PID 1. Nothing in the cgroup can
///   rename a process outside it.
/// - systemd-nspawn's supervisor, which shares `systemd-nspawn@<name>.service`
///   with the payload where systemd makes no `payload`/`supervisor`
///   sub-cgroups (legacy and hybrid hierarchies, systemd before v254): named
///   `systemd-nspawn`, in an nspawn container, started by a `systemd`
///   service manager outside the container's cgroup.
///
/// Shims, conmon and LXC's monitor live in cgroups of their own in every
/// layout pidns knows (`crio-conmon-*`, `libpod-conmon-*`, `/libpod_parent/conmon`,
/// `lxc.monitor.*`, the daemon's cgroup), so one in a container's cgroup is
/// not verified. Anything unverified is a container process.
pub fn verify_runtime_process(
    proc: &ProcRoot,
    pid: u32,
    placement: &Placement,
) -> Result<(), Unverified> {
    let status = proc
        .status(pid)
        .map_err(|e| Unverified::Unreadable(e.path.display().to_string()))?;
    let name = status.name.as_deref().unwrap_or_default();
    let expected_parents: &[&str] = if is_setup_stage(name) {
        &OCI_RUNTIME_CLIS
    } else if name == "systemd-nspawn" && placement.key.runtime == Runtime::SystemdNspawn {
        &["systemd"]
    } else {
        return Err(Unverified::NotInContainerCgroups);
    };
    let ppid = status.ppid.filter(|&p| p > 0 && p != pid).ok_or_else(|| {
        Unverified::Unreadable(format!("{}'s parent", proc.file(pid, "status").display()))
    })?;
    // A lossily decoded path cannot be compared byte for byte.
    if placement.cgroup.contains(char::REPLACEMENT_CHARACTER) {
        return Err(Unverified::Unreadable(format!(
            "the container's cgroup path {:?}",
            placement.cgroup
        )));
    }
    let mut buf = Vec::new();
    proc.read_into(ppid, "cgroup", &mut buf)
        .map_err(|e| Unverified::Unreadable(e.path.display().to_string()))?;
    match cgroup::any_within(&buf, placement.cgroup.as_bytes()) {
        Some(false) => {}
        Some(true) => return Err(Unverified::ParentInside { ppid }),
        None => {
            return Err(Unverified::Unreadable(
                proc.file(ppid, "cgroup").display().to_string(),
            ));
        }
    }
    let parent = proc
        .status(ppid)
        .map_err(|e| Unverified::Unreadable(e.path.display().to_string()))?
        .name
        .unwrap_or_default();
    if !expected_parents.contains(&parent.as_str()) {
        return Err(Unverified::ParentNotRuntime { ppid, parent });
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub proc_root: std::path::PathBuf,
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
    pub state_root: Option<std::path::PathBuf>,
}

/// The default for [`ScanOptions::evidence_detail`] in `pidns scan`: the
/// verdict needs one host-PID process that is not a runtime's, so that is
/// what is read in detail; the others are listed by pid, inode and method.
pub const EVIDENCE_DETAIL: usize = 1;

enum PidnsFact {
    InHost { inode: Option<u64>, method: Method },
    Elsewhere { inode: Option<u64> },
    Unknown(ReadError),
    Vanished,
}

struct Candidate {
    pid: u32,
    placement: Placement,
}

#[derive(Default)]
struct Draft {
    placement: Option<Placement>,
    pids: BTreeSet<u32>,
    inodes: BTreeSet<u64>,
    host: Vec<ProcessEvidence>,
    runtime_pids: Vec<u32>,
    unknown: Vec<ReadError>,
    /// Host-PID processes whose name and children's namespace were read.
    detailed: usize,
}

/// Establishes the host PID namespace of a proc root.
///
/// `pids` is the proc root's listing, when the caller already has one.
pub fn host_pidns(
    proc: &ProcRoot,
    host_pid: Option<u32>,
    pids: Option<&[u32]>,
) -> Result<HostPidns, ScanError> {
    let explicit = host_pid.is_some();
    let host_pid = host_pid.unwrap_or(1);
    let link = proc.ns_inode(host_pid, "pid");
    let status = proc.status(host_pid);
    let procfs_own = matches!(&status, Ok(s) if s.in_procfs_pidns() == Some(true));
    match link {
        Ok(inode) => Ok(HostPidns {
            inode: Some(inode),
            method: HostMethod::NsLink,
            host_pid,
            inode_source_pid: None,
            procfs_own,
        }),
        Err(link_err) => {
            // An evidence tree may lack the link of a process it has.
            if link_err.kind == ReadErrorKind::Vanished && !proc.exists(host_pid) {
                return Err(ScanError::HostPidns {
                    reason: format!(
                        "PID {host_pid} does not exist under {}{}",
                        proc.path().display(),
                        if explicit {
                            ""
                        } else {
                            "; name a process in the host PID namespace with --host-pid"
                        }
                    ),
                });
            }
            let status = status.map_err(|e| ScanError::HostPidns {
                reason: format!(
                    "cannot read {} ({}) nor {} ({})",
                    link_err.path.display(),
                    link_err.kind,
                    e.path.display(),
                    e.kind
                ),
            })?;
            match status.in_procfs_pidns() {
                Some(true) => {
                    let (inode, inode_source_pid) = match pids {
                        Some(pids) => learn_inode(proc, host_pid, pids),
                        None => learn_inode(proc, host_pid, &proc.pids()?),
                    };
                    Ok(HostPidns {
                        inode,
                        method: HostMethod::Nspid,
                        host_pid,
                        inode_source_pid,
                        procfs_own: true,
                    })
                }
                Some(false) => Err(ScanError::HostPidns {
                    reason: format!(
                        "cannot read {} ({}), and PID {host_pid} is not in the proc root's own PID namespace, so NSpid cannot stand in",
                        link_err.path.display(),
                        link_err.kind
                    ),
                }),
                None => Err(ScanError::HostPidns {
                    reason: format!(
                        "cannot read {} ({}), and {} has no NSpid line (Linux 4.1 or later has one)",
                        link_err.path.display(),
                        link_err.kind,
                        proc.file(host_pid, "status").display()
                    ),
                }),
            }
        }
    }
}

/// Finds the inode of the proc root's own PID namespace through any process
/// in it whose link is readable (kernel threads usually are).
fn learn_inode(proc: &ProcRoot, skip: u32, pids: &[u32]) -> (Option<u64>, Option<u32>) {
    const ATTEMPTS: usize = 64;
    // Our own link is readable without CAP_SYS_PTRACE; try it first.
    let own = proc.self_pid();
    let others = pids
        .iter()
        .copied()
        .filter(|&p| p != skip && Some(p) != own)
        .take(ATTEMPTS);
    for pid in own.into_iter().chain(others) {
        let Ok(inode) = proc.ns_inode(pid, "pid") else {
            continue;
        };
        if matches!(proc.status(pid), Ok(s) if s.in_procfs_pidns() == Some(true)) {
            return (Some(inode), Some(pid));
        }
    }
    (None, None)
}

/// Whether `pid` lives in the host PID namespace.
fn pidns_fact(proc: &ProcRoot, host: &HostPidns, pid: u32) -> PidnsFact {
    let link = proc.ns_inode(pid, "pid");
    match (&link, host.inode) {
        (Ok(inode), Some(h)) if *inode == h => {
            return PidnsFact::InHost {
                inode: Some(*inode),
                method: Method::NsLink,
            };
        }
        (Ok(inode), Some(_)) => {
            return PidnsFact::Elsewhere {
                inode: Some(*inode),
            };
        }
        // A live process's link only disappears with the process; an evidence
        // tree may simply lack it, which NSpid can make up for.
        (Err(e), _) if e.kind == ReadErrorKind::Vanished && !proc.exists(pid) => {
            return PidnsFact::Vanished;
        }
        _ => {}
    }
    // The link alone cannot decide; NSpid can when the host namespace is the proc root's own.
    let inode = link.as_ref().ok().copied();
    if !host.procfs_own {
        return match link {
            Err(e) => PidnsFact::Unknown(e),
            Ok(_) => PidnsFact::Unknown(ReadError::malformed(
                proc.file(pid, "ns/pid"),
                "host inode unknown",
            )),
        };
    }
    match proc.status(pid) {
        Ok(s) => match s.in_procfs_pidns() {
            Some(true) => PidnsFact::InHost {
                inode,
                method: Method::Nspid,
            },
            Some(false) => PidnsFact::Elsewhere { inode },
            None => PidnsFact::Unknown(link.err().unwrap_or_else(|| {
                ReadError::malformed(proc.file(pid, "status"), "no NSpid line")
            })),
        },
        Err(e) if e.kind == ReadErrorKind::Vanished && !proc.exists(pid) => PidnsFact::Vanished,
        Err(e) => PidnsFact::Unknown(link.err().unwrap_or(e)),
    }
}

/// Whether a containerd shim is among `pid`'s ancestors: the second signal
/// that confirms the `/<namespace>/<id>` layout.
pub struct Ancestry<'a> {
    proc: &'a ProcRoot,
    memo: HashMap<u32, bool>,
}

impl<'a> Ancestry<'a> {
    pub fn new(proc: &'a ProcRoot) -> Self {
        Ancestry {
            proc,
            memo: HashMap::new(),
        }
    }

    pub fn has_shim_ancestor(&mut self, pid: u32) -> bool {
        let mut chain = Vec::new();
        let mut cur = pid;
        let mut found = false;
        for _ in 0..64 {
            if let Some(&known) = self.memo.get(&cur) {
                found = known;
                break;
            }
            chain.push(cur);
            let Ok(status) = self.proc.status(cur) else {
                break;
            };
            if cur != pid
                && status
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("containerd-shim"))
            {
                found = true;
                break;
            }
            match status.ppid {
                Some(ppid) if ppid > 0 && ppid != cur => cur = ppid,
                _ => break,
            }
        }
        // Only the queried process may not count itself; its ancestors' answers are shared.
        for p in chain.into_iter().skip(1) {
            self.memo.insert(p, found);
        }
        found
    }
}

/// Runs a one-shot scan.
pub fn scan(opts: &ScanOptions) -> Result<ScanReport, ScanError> {
    let started = Instant::now();
    let scanned_at = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    let proc = ProcRoot::open(&opts.proc_root)?;
    let pids = proc.pids()?;
    let host = host_pidns(&proc, opts.host_pid, Some(&pids))?;
    let mut summary = Summary {
        processes_scanned: pids.len(),
        ..Summary::default()
    };
    let mut warnings = Vec::new();

    // Pass 1: which processes sit in a container's cgroup (one read each).
    let mut candidates = Vec::new();
    let mut buf = Vec::with_capacity(4096);
    let mut ancestry = Ancestry::new(&proc);
    for &pid in &pids {
        if let Err(e) = proc.read_into(pid, "cgroup", &mut buf) {
            count_error(&mut summary, &e);
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
            refine_runtime(&mut placement, opts.state_root.as_deref());
        }
        candidates.push(Candidate { pid, placement });
    }

    // pidns's own container (a DaemonSet pod with hostPID, `docker run
    // --pid=host`) is allowed: it shares the host PID namespace by design.
    let own = proc.self_pid();
    let self_key = candidates
        .iter()
        .find(|c| Some(c.pid) == own)
        .map(|c| c.placement.key.clone());

    // Pass 2: each container process's PID namespace.
    let mut drafts: BTreeMap<ContainerKey, Draft> = BTreeMap::new();
    for Candidate { pid, placement } in candidates {
        let fact = pidns_fact(&proc, &host, pid);
        if matches!(fact, PidnsFact::Vanished) {
            summary.processes_vanished += 1;
            continue;
        }
        let draft = drafts.entry(placement.key.clone()).or_default();
        match fact {
            PidnsFact::InHost { inode, method } => {
                // The verdict needs one host-PID process that is not a
                // runtime's; the detail (name, where its children go) is
                // read for the first few of each container unless asked for all.
                let detailed = opts
                    .evidence_detail
                    .is_none_or(|limit| draft.detailed < limit);
                let comm = if detailed { proc.comm(pid).ok() } else { None };
                if let Some(name) = comm.as_deref().filter(|c| is_runtime_process(c)) {
                    match verify_runtime_process(&proc, pid, &placement) {
                        Ok(()) => {
                            draft.runtime_pids.push(pid);
                            continue;
                        }
                        Err(why) => warnings.push(format!(
                            "{} container {}: pid {pid} is named {name:?} like a runtime process, but {why}; it counts as a container process",
                            placement.key.runtime, placement.key.id
                        )),
                    }
                }
                let children_pidns_inode = if detailed {
                    draft.detailed += 1;
                    proc.ns_inode(pid, "pid_for_children").ok()
                } else {
                    None
                };
                draft.host.push(ProcessEvidence {
                    pid,
                    comm,
                    pidns_inode: inode,
                    method,
                    children_pidns_inode,
                });
                draft.inodes.extend(inode);
            }
            PidnsFact::Elsewhere { inode } => draft.inodes.extend(inode),
            PidnsFact::Unknown(e) => {
                count_error(&mut summary, &e);
                draft.unknown.push(e);
            }
            PidnsFact::Vanished => unreachable!("handled above"),
        }
        draft.pids.insert(pid);
        draft.placement.get_or_insert(placement);
    }

    // Containers that share a (non-host) PID namespace with each other.
    let mut by_inode: HashMap<u64, Vec<&ContainerKey>> = HashMap::new();
    for (key, d) in &drafts {
        for inode in &d.inodes {
            if Some(*inode) != host.inode {
                by_inode.entry(*inode).or_default().push(key);
            }
        }
    }

    let mut containers = Vec::new();
    for (key, d) in &drafts {
        let Some(placement) = &d.placement else {
            warnings.push(format!(
                "{} container {} (cgroup {}): only runtime processes ({:?}); it is being set up or torn down",
                key.runtime, key.id, key.cgroup, d.runtime_pids
            ));
            continue;
        };
        let mut shares_with: BTreeSet<&str> = BTreeSet::new();
        for inode in &d.inodes {
            for other in by_inode.get(inode).into_iter().flatten() {
                if *other != key {
                    shares_with.insert(&other.id);
                }
            }
        }
        let (name, pod) = describe(opts.names.as_ref(), placement);
        let enclosed_by: Vec<Enclosing> = placement
            .enclosing
            .iter()
            .map(|e| {
                let (name, pod) = describe_key(opts.names.as_ref(), e, None, None);
                Enclosing {
                    id: e.id.clone(),
                    runtime: e.runtime,
                    name,
                    pod,
                    cgroup: e.cgroup.clone(),
                }
            })
            .collect();
        let mut c = Container {
            id: key.id.clone(),
            runtime: key.runtime,
            name,
            pod,
            containerd_namespace: placement.namespace.clone(),
            cgroup: placement.cgroup.clone(),
            enclosed_by,
            shares_host_pidns: None,
            verdict: Verdict::Unknown,
            pids: d.pids.iter().copied().collect(),
            pidns_inodes: d.inodes.iter().copied().collect(),
            host_pidns_processes: d.host.clone(),
            runtime_pids: d.runtime_pids.clone(),
            shares_pidns_with: shares_with.into_iter().map(str::to_owned).collect(),
            unknown_reason: None,
            allowed_by: None,
        };
        if !c.host_pidns_processes.is_empty() {
            c.shares_host_pidns = Some(true);
            c.allowed_by = if self_key.as_ref() == Some(key) {
                Some("pidns itself".to_owned())
            } else {
                allowed_by(
                    &opts.allow,
                    &c,
                    &placement.enclosing,
                    self_key.as_ref(),
                    &mut warnings,
                )
            };
            c.verdict = if c.allowed_by.is_some() {
                Verdict::Allowed
            } else {
                Verdict::Shares
            };
        } else if let Some(first) = d.unknown.first() {
            c.unknown_reason = Some(format!(
                "{} of {} processes unreadable; first: {first}",
                d.unknown.len(),
                d.pids.len()
            ));
        } else {
            c.shares_host_pidns = Some(false);
            c.verdict = Verdict::Isolated;
        }
        containers.push(c);
    }
    containers.sort_by(|a, b| {
        a.verdict
            .cmp(&b.verdict)
            .then_with(|| a.runtime.cmp(&b.runtime))
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.cgroup.cmp(&b.cgroup))
    });

    summary.containers = containers.len();
    summary.container_processes = containers.iter().map(|c| c.pids.len()).sum();
    for c in &containers {
        match c.verdict {
            Verdict::Shares => summary.sharing += 1,
            Verdict::Allowed => summary.allowed += 1,
            Verdict::Unknown => summary.unknown += 1,
            Verdict::Isolated => summary.isolated += 1,
        }
    }
    for unused in opts.allow.unused(&containers) {
        warnings.push(format!(
            "--allow {unused} matched no container that shares the host PID namespace"
        ));
    }
    if host.method == HostMethod::Nspid && host.inode.is_none() {
        warnings.push("no process in the host PID namespace had a readable ns/pid link; verdicts rest on NSpid".into());
    }

    Ok(ScanReport {
        schema: SCHEMA,
        pidns_version: env!("CARGO_PKG_VERSION"),
        proc_root: proc.path().display().to_string(),
        scanned_at,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        host_pidns: host,
        containers,
        summary,
        warnings,
    })
}

/// Which `--allow` entry allows a sharing container, if any. A container
/// nested in others is allowed only if every enclosing container is allowed
/// too (or is pidns's own), so a process in another container's sub-cgroup
/// named after an allowed container borrows nothing.
fn allowed_by(
    allow: &AllowList,
    c: &Container,
    enclosing: &[ContainerKey],
    self_key: Option<&ContainerKey>,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let entry = allow.matching(c)?;
    let refused: Vec<&Enclosing> = c
        .enclosed_by
        .iter()
        .zip(enclosing)
        .filter(|(e, key)| Some(*key) != self_key && !allow.matches(*e))
        .map(|(e, _)| e)
        .collect();
    if refused.is_empty() {
        return Some(format!("--allow {entry}"));
    }
    warnings.push(format!(
        "--allow {entry} matches {} container {} (cgroup {}), but not the container(s) enclosing it ({}); it is not allowed",
        c.runtime,
        c.id,
        c.cgroup,
        refused
            .iter()
            .map(|e| format!("{} {}", e.runtime, e.id))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    None
}

fn count_error(summary: &mut Summary, e: &ReadError) {
    match e.kind {
        ReadErrorKind::Vanished => summary.processes_vanished += 1,
        ReadErrorKind::PermissionDenied => summary.permission_errors += 1,
        ReadErrorKind::Malformed(_) | ReadErrorKind::Io(_) => summary.malformed_entries += 1,
    }
}

/// A container's name and pod: from runtimes' on-disk state where readable,
/// with the pod UID its cgroup path carries.
pub fn describe(names: Option<&NameResolver>, p: &Placement) -> (Option<String>, Option<Pod>) {
    describe_key(names, &p.key, p.namespace.as_deref(), p.pod_uid.as_deref())
}

/// [`describe`] for a container known by its key alone (an enclosing one).
pub fn describe_key(
    names: Option<&NameResolver>,
    key: &ContainerKey,
    namespace: Option<&str>,
    pod_uid: Option<&str>,
) -> (Option<String>, Option<Pod>) {
    let (name, pod) = names
        .and_then(|r| r.resolve(&key.runtime, &key.id, namespace))
        .map_or((None, None), |n| (n.name, n.pod));
    let pod = match (pod, pod_uid) {
        (Some(mut pod), uid) => {
            pod.uid = pod.uid.or_else(|| uid.map(str::to_owned));
            Some(pod)
        }
        (None, Some(uid)) => Some(Pod {
            uid: Some(uid.to_owned()),
            name: None,
            namespace: None,
        }),
        (None, None) => None,
    };
    (name, pod)
}

/// The container pidns itself runs in, if any: its `self` entry in the proc
/// root, placed like any other process.
pub fn own_container(proc: &ProcRoot) -> Option<ContainerKey> {
    let pid = proc.self_pid()?;
    let mut buf = Vec::new();
    proc.read_into(pid, "cgroup", &mut buf).ok()?;
    placement(&buf)
        .filter(|p| p.role == Role::Container && !p.needs_confirmation)
        .map(|p| p.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "40e9cfb459ea932ec1f41ca728c2afb10676bb793b3ad87f4b67f7873eccbae4";

    #[test]
    fn placement_prefers_unified_then_systemd() {
        let f = format!("9:name=systemd:/docker/{ID}\n4:memory:/docker/{ID}\n0::/docker/{ID}\n");
        let p = placement(f.as_bytes()).unwrap();
        assert_eq!(
            p.key,
            ContainerKey {
                runtime: Runtime::Docker,
                id: ID.into(),
                cgroup: format!("/docker/{ID}"),
            }
        );
        assert_eq!(p.cgroup, format!("/docker/{ID}"));
    }

    #[test]
    fn placement_on_pure_v1() {
        let f = format!("4:memory:/docker/{ID}\n1:cpu:/docker/{ID}\n");
        assert_eq!(placement(f.as_bytes()).unwrap().key.id, ID);
    }

    #[test]
    fn lone_v1_controller_shape_is_not_a_container() {
        // what this very machine's sandbox looks like
        let f = b"9:name=systemd:/\n4:memory:/process_api/b79c7c02d313061df0dc1369957c672c\n0::/\n";
        assert_eq!(placement(f), None);
        // while the same shape on the unified line is a candidate for ancestry to confirm
        let f = b"4:memory:/default/web\n0::/default/web\n";
        assert!(placement(f).unwrap().needs_confirmation);
    }

    #[test]
    fn runtime_processes() {
        for c in [
            "runc",
            "runc:[0:PARENT]",
            "runc:[1:CHILD]",
            "containerd-shim",
            "conmon",
            "lxc-start",
        ] {
            assert!(is_runtime_process(c), "{c}");
        }
        for c in ["runc:[2:INIT]", "sleep", "sh", "docker-init", ""] {
            assert!(!is_runtime_process(c), "{c}");
        }
    }

    #[test]
    fn setup_stages() {
        for c in [
            "runc",
            "runc:[0:PARENT]",
            "runc:[1:CHILD]",
            "exe",
            "crun",
            "youki",
            "youki:[1:INTER]",
        ] {
            assert!(is_setup_stage(c), "{c}");
        }
        // the container's init, shims and monitors are no setup stage
        for c in [
            "runc:[2:INIT]",
            "youki:[2:INIT]",
            "conmon",
            "containerd-shim",
            "lxc-start",
            "systemd-nspawn",
            "runsc-gofer",
            "sleep",
        ] {
            assert!(!is_setup_stage(c), "{c}");
        }
    }

    #[test]
    fn hex_leaf_runtime_from_docker_state() {
        let dir = tempfile::tempdir().unwrap();
        let p = |path: &str| {
            Placement::from_match(layout::classify(path.as_bytes()).unwrap(), path.as_bytes())
        };
        let mut a = p(&format!("/scan-cp/{ID}"));
        refine_runtime(&mut a, Some(dir.path()));
        assert_eq!(
            (a.key.runtime, a.namespace.as_deref()),
            (Runtime::Containerd, Some("scan-cp"))
        );
        std::fs::create_dir_all(dir.path().join("var/lib/docker/containers").join(ID)).unwrap();
        refine_runtime(&mut a, Some(dir.path()));
        assert_eq!(
            (a.key.runtime, a.namespace.as_deref()),
            (Runtime::Docker, None)
        );
        assert_eq!(a.key.cgroup, format!("/scan-cp/{ID}"));
        // only bare hex leaves are refined
        let mut b = p("/default/web");
        refine_runtime(&mut b, Some(dir.path()));
        assert_eq!(b.key.runtime, Runtime::Containerd);
        let mut c = p(&format!("/scan-cp/{ID}"));
        refine_runtime(&mut c, None);
        assert_eq!(c.key.runtime, Runtime::Containerd);
    }

    #[test]
    fn placement_keys_include_the_cgroup_and_enclosers() {
        let inner = "1111111111111111111111111111111111111111111111111111111111111111";
        let f = format!("0::/docker/{ID}/docker/{inner}/init.scope\n");
        let p = placement(f.as_bytes()).unwrap();
        assert_eq!(p.key.id, inner);
        assert_eq!(p.key.cgroup, format!("/docker/{ID}/docker/{inner}"));
        assert_eq!(
            p.enclosing,
            vec![ContainerKey {
                runtime: Runtime::Docker,
                id: ID.into(),
                cgroup: format!("/docker/{ID}"),
            }]
        );
        let top = placement(format!("0::/docker/{inner}\n").as_bytes()).unwrap();
        assert_ne!(top.key, p.key, "same id, other cgroup");
    }
}
