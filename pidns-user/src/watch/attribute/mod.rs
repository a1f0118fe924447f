//! From kernel events to findings: which container an event belongs to, and
//! what to tell the kernel so that it filters the next ones itself.
//!
//! The probes send what may matter; this decides. It knows every cgroup by
//! its v2 id (from a walk of the unified hierarchy at start-up and from the
//! probes' mkdir events since), classifies each path with the same layout
//! rules as `scan`, and hands the class back to the kernel's `CGROUPS` map.
//! Attribution rests on the cgroup id carried in the event, never on reading
//! /proc afterwards; /proc is only a fallback for a cgroup not seen before.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use pidns_ebpf::{CLONE_NEWPID, Event, NS_FLAGS, NS_PID, NS_TYPES, class, flags, kind};

use crate::{
    allow::{AllowList, Subject as AllowSubject},
    engine::{self, ContainerKey},
    names::NameResolver,
    parse::layout::{self, Role},
    procfs::ProcRoot,
    report::{HostPidns, ScanReport, Verdict},
    watch::{
        cgroupfs,
        events::{
            CloneFlags, ContainerRef, Finding, NewPidnsEvent, NewPidnsVia, SetnsEvent, SetnsVia,
            Trigger, WatchEvent,
        },
        hostns::{self, HostNamespaces, Owner},
    },
};

/// What to do after an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Emit(Box<WatchEvent>),
    /// Tell the kernel how to treat a cgroup from now on.
    Classify {
        cgroup_id: u64,
        class: u32,
    },
    /// Report this process's children that stay in the host PID namespace.
    TrackTask {
        pid: u32,
    },
    /// The container's own cgroup is gone: the container stopped.
    Gone(ContainerRef),
}

impl Action {
    pub fn emit(e: WatchEvent) -> Action {
        Action::Emit(Box::new(e))
    }
}

/// Converts `bpf_ktime_get_ns` (CLOCK_MONOTONIC) to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// realtime − monotonic, in ns.
    offset_ns: i128,
}

impl Clock {
    pub fn now() -> Clock {
        let mono = monotonic_ns();
        let real = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        Clock {
            offset_ns: real - i128::from(mono),
        }
    }

    pub fn wall(&self, ktime_ns: u64) -> SystemTime {
        let ns = i128::from(ktime_ns) + self.offset_ns;
        SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
    }

    pub fn rfc3339(&self, ktime_ns: u64) -> String {
        humantime::format_rfc3339_nanos(self.wall(ktime_ns)).to_string()
    }
}

pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            (t.tv_sec() as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(t.tv_nsec() as u64)
        })
        .unwrap_or(0)
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

#[derive(Debug, Clone)]
struct Cgroup {
    class: Option<u32>,
    container: Option<ContainerKey>,
    /// `/<namespace>/<id>`: a container only if a containerd shim confirms it.
    unconfirmed: bool,
    /// The container's own cgroup, not one below it.
    own: bool,
}

#[derive(Debug, Clone)]
struct Known {
    reference: ContainerRef,
    allowed: bool,
}

pub struct Attributor {
    proc: ProcRoot,
    allow: AllowList,
    names: Option<NameResolver>,
    host_root: Option<PathBuf>,
    host_pidns_ino: u64,
    /// The host's namespaces by [`NS_TYPES`] index; 0 when unknown.
    host_ns: [u32; 8],
    /// The unified hierarchy, to find a cgroup whose path the kernel cut
    /// short, and a container's processes.
    cgroup_root: Option<PathBuf>,
    cgroups: HashMap<u64, Cgroup>,
    containers: HashMap<ContainerKey, Known>,
    /// A container's longest-running process (its init), whose namespaces
    /// are the container's own.
    inits: HashMap<ContainerKey, u32>,
    /// (namespace type index, inode) → a host process holding it, and when
    /// that was looked up.
    holders: HashMap<(usize, u64), (Option<u32>, Instant)>,
    clock: Clock,
    /// Kernel events handled.
    events: u64,
    /// Events whose cgroup could not be placed (the process was gone and the
    /// cgroup never seen).
    unattributed: u64,
}

const CONTAINERD_TASKS: &str = "run/containerd/io.containerd.runtime.v2.task";

/// How long "no host process holds this namespace" is believed: a host
/// process may create one at any time. A host-held namespace stays so.
const HOLDER_NEGATIVE_TTL: Duration = Duration::from_secs(1);
const HOLDER_POSITIVE_TTL: Duration = Duration::from_secs(60);
/// Bounds on the caches and on the search below a cut-short cgroup path.
const MAX_CACHED: usize = 4096;
const MAX_DIRS_SEARCHED: usize = 100_000;

/// What the common fields of an event's output are.
struct Subject<'a> {
    ev: &'a Event,
    container: ContainerRef,
    comm: String,
    ts: String,
    latency_us: Option<u64>,
}

impl Subject<'_> {
    fn finding(&self, trigger: Trigger) -> Finding {
        Finding {
            trigger,
            pid: self.ev.pid,
            comm: self.comm.clone(),
            container: self.container.clone(),
            ts: self.ts.clone(),
            ppid: (self.ev.ppid != 0).then_some(self.ev.ppid),
            filename: None,
            clone_flags: None,
            latency_us: self.latency_us,
        }
    }
}

impl Attributor {
    pub fn new(
        proc: ProcRoot,
        allow: AllowList,
        names: Option<NameResolver>,
        host_root: Option<PathBuf>,
        host: &HostPidns,
    ) -> Self {
        let host_ns = HostNamespaces::find(&proc, host).inums;
        Attributor {
            proc,
            allow,
            names,
            host_root,
            host_pidns_ino: host.inode.unwrap_or(0),
            host_ns,
            cgroup_root: None,
            cgroups: HashMap::new(),
            containers: HashMap::new(),
            inits: HashMap::new(),
            holders: HashMap::new(),
            clock: Clock::now(),
            events: 0,
            unattributed: 0,
        }
    }

    /// Where the unified hierarchy is mounted (`--cgroup-root` or mountinfo).
    pub fn set_cgroup_root(&mut self, root: PathBuf) {
        self.cgroup_root = Some(root);
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Kernel events whose process was gone before its cgroup could be
    /// placed, and which were therefore dropped.
    pub fn unattributed(&self) -> u64 {
        self.unattributed
    }

    /// Kernel events handled.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The line printed when watch stops.
    pub fn stats(&self, lost: u64) -> WatchEvent {
        WatchEvent::Stats {
            events: self.events,
            unattributed: self.unattributed,
            lost,
            ts: now_rfc3339(),
        }
    }

    /// Records a cgroup's path; returns the class to give the kernel, if decided.
    pub fn learn(&mut self, cgroup_id: u64, path: &[u8]) -> Option<Action> {
        let mut own = false;
        let (class, container, unconfirmed) = match layout::classify(path) {
            None => (Some(class::HOST), None, false),
            Some(m) if m.role == Role::Monitor => (Some(class::HOST), None, false),
            Some(m) => {
                own = m.cgroup_len == path.len();
                let mut placement = engine::Placement::from_match(m, path);
                let unconfirmed =
                    placement.needs_confirmation && !self.containerd_task_exists(&placement);
                // Named as `scan` names it (`docker run --cgroup-parent`).
                engine::refine_runtime(&mut placement, self.host_root.as_deref());
                let key = placement.key.clone();
                let allowed = self.known(&placement).allowed;
                let class = match (unconfirmed, allowed) {
                    (true, _) => None,
                    (false, true) => Some(class::ALLOWED),
                    (false, false) => Some(class::CONTAINER),
                };
                (class, Some(key), unconfirmed)
            }
        };
        self.cgroups.insert(
            cgroup_id,
            Cgroup {
                class,
                container,
                unconfirmed,
                own,
            },
        );
        class.map(|class| Action::Classify { cgroup_id, class })
    }

    /// A cgroup was removed. When it was a container's own, the container
    /// is gone: it leaves the sharing gauge now rather than at the next
    /// full scan.
    pub fn forget(&mut self, cgroup_id: u64) -> Option<Action> {
        let Some(Cgroup {
            container: Some(key),
            own,
            ..
        }) = self.cgroups.remove(&cgroup_id)
        else {
            return None;
        };
        self.inits.remove(&key);
        if !own {
            return None;
        }
        let known = self.containers.remove(&key)?;
        Some(Action::Gone(known.reference))
    }

    /// A new cgroup's path as the kernel sent it. One that filled the
    /// event's buffer may have been cut short, and a cut path can name the
    /// wrong container (its outer one, or a prefix of an id): it is never
    /// classified; the full path is looked up by the cgroup's id instead, and
    /// failing that the cgroup stays unknown until an event's process shows
    /// its path in /proc.
    fn learn_from_kernel(&mut self, ev: &Event) -> Option<Action> {
        let path = cstr(&ev.data);
        if ev.flags & pidns_ebpf::flags::TRUNCATED == 0 {
            return self.learn(ev.cgroup_id, path);
        }
        let root = self.cgroup_root.clone()?;
        let full = cgroupfs::find_by_id(&root, path, ev.cgroup_id, MAX_DIRS_SEARCHED)?;
        self.learn(ev.cgroup_id, &full)
    }

    fn containerd_task_exists(&self, p: &engine::Placement) -> bool {
        match (&self.host_root, &p.namespace) {
            (Some(root), Some(ns)) => root
                .join(CONTAINERD_TASKS)
                .join(ns)
                .join(&p.key.id)
                .is_dir(),
            _ => false,
        }
    }

    /// The container's reference and allow status, resolving names once.
    fn known(&mut self, p: &engine::Placement) -> &Known {
        if !self.containers.contains_key(&p.key) {
            let (name, pod) = engine::describe(self.names.as_ref(), p);
            let reference = ContainerRef {
                container_id: p.key.id.clone(),
                runtime: p.key.runtime,
                name,
                pod,
                cgroup: p.cgroup.clone(),
            };
            // As in `scan`: a container nested in others is allowed only if
            // every enclosing one is too, so a sub-cgroup named after an
            // allowed container borrows nothing.
            let allowed = self.allow.matches(AllowSubject {
                id: &reference.container_id,
                name: reference.name.as_deref(),
                pod: reference.pod.as_ref(),
                containerd_namespace: p.namespace.as_deref(),
            }) && p.enclosing.iter().all(|e| {
                let (name, pod) = engine::describe_key(self.names.as_ref(), e, None, None);
                self.allow.matches(AllowSubject {
                    id: &e.id,
                    name: name.as_deref(),
                    pod: pod.as_ref(),
                    containerd_namespace: None,
                })
            });
            self.containers
                .insert(p.key.clone(), Known { reference, allowed });
        }
        &self.containers[&p.key]
    }

    /// The container an event's cgroup belongs to, and any class to hand back.
    fn container_of(
        &mut self,
        cgroup_id: u64,
        pid: u32,
        actions: &mut Vec<Action>,
    ) -> Option<Known> {
        if !self.cgroups.contains_key(&cgroup_id) {
            // Not seen at start-up nor created since (or its path was cut
            // short): ask /proc while the process lives.
            let mut buf = Vec::new();
            let path = self
                .proc
                .read_into(pid, "cgroup", &mut buf)
                .ok()
                .and_then(|()| {
                    crate::parse::cgroup::parse(&buf)
                        .find(|l| l.is_unified())
                        .map(|l| l.path.to_vec())
                });
            match path {
                Some(path) => actions.extend(self.learn(cgroup_id, &path)),
                None => {
                    self.unattributed += 1;
                    return None;
                }
            }
        }
        let cg = self.cgroups.get(&cgroup_id)?.clone();
        let key = cg.container?;
        if cg.unconfirmed {
            if cg.class == Some(class::HOST) {
                return None; // judged before: no shim behind it
            }
            let mut ancestry = engine::Ancestry::new(&self.proc);
            let confirmed = ancestry.has_shim_ancestor(pid);
            let class = if !confirmed {
                class::HOST
            } else if self.containers.get(&key).is_some_and(|k| k.allowed) {
                class::ALLOWED
            } else {
                class::CONTAINER
            };
            if let Some(entry) = self.cgroups.get_mut(&cgroup_id) {
                // A negative answer is kept too (and handed to the kernel,
                // which then drops the cgroup's events): otherwise every exec
                // in it would come here for another walk up its ancestry. A
                // new mkdir of the cgroup asks again.
                entry.unconfirmed = !confirmed;
                entry.class = Some(class);
            }
            actions.push(Action::Classify { cgroup_id, class });
            if !confirmed {
                return None;
            }
        }
        self.containers.get(&key).cloned()
    }

    /// Decides what a kernel event means.
    pub fn handle(&mut self, ev: &Event, now_mono_ns: u64) -> Vec<Action> {
        self.events += 1;
        let mut actions = Vec::new();
        match ev.kind {
            kind::CGROUP_MKDIR => {
                actions.extend(self.learn_from_kernel(ev));
                return actions;
            }
            kind::CGROUP_RMDIR => {
                actions.extend(self.forget(ev.cgroup_id));
                return actions;
            }
            kind::EXEC | kind::FORK | kind::ATTACH | kind::SETNS | kind::NEW_PIDNS => {}
            _ => return actions,
        }
        let Some(known) = self.container_of(ev.cgroup_id, ev.pid, &mut actions) else {
            return actions;
        };
        if known.allowed {
            return actions;
        }
        // The kernel marks container processes only in cgroups it knows to be
        // containers'; for one it did not know yet, track the process here.
        if ev.flags & flags::UNCLASSIFIED != 0 && matches!(ev.kind, kind::EXEC | kind::FORK) {
            actions.push(Action::TrackTask { pid: ev.pid });
        }
        let s = Subject {
            ev,
            comm: String::from_utf8_lossy(cstr(&ev.comm)).into_owned(),
            ts: self.clock.rfc3339(ev.ktime_ns),
            latency_us: Some(now_mono_ns.saturating_sub(ev.ktime_ns) / 1000),
            container: known.reference,
        };
        match ev.kind {
            kind::EXEC => {
                let mut f = s.finding(Trigger::Exec);
                let file = cstr(&ev.data);
                f.filename = (!file.is_empty()).then(|| String::from_utf8_lossy(file).into_owned());
                if ev.flags & flags::CLONE_FLAGS != 0 {
                    f.clone_flags = Some(CloneFlags::new(ev.arg));
                }
                actions.push(Action::emit(WatchEvent::HostPidns(f)));
            }
            kind::FORK => {
                let namespaces = ev.arg & u64::from(NS_FLAGS & !CLONE_NEWPID);
                let mut f = s.finding(if namespaces != 0 {
                    Trigger::Clone
                } else {
                    Trigger::Fork
                });
                f.clone_flags = Some(CloneFlags::new(ev.arg));
                actions.push(Action::emit(WatchEvent::HostPidns(f)));
            }
            kind::NEW_PIDNS => {
                let via = if ev.arg & u64::from(CLONE_NEWPID) != 0 {
                    NewPidnsVia::Clone
                } else {
                    NewPidnsVia::UnshareOrSetns
                };
                actions.push(Action::emit(WatchEvent::NewPidns(NewPidnsEvent {
                    via,
                    pid: ev.ppid,
                    comm: s.comm.clone(),
                    container: s.container.clone(),
                    ts: s.ts.clone(),
                    clone_flags: CloneFlags::new(ev.arg),
                    child_pid: ev.pid,
                    pidns_inode: ev.ns_inum,
                    latency_us: s.latency_us,
                })));
            }
            // A runtime's own setup process (the kernel knows it by its
            // executable: its parent's, or a memfd copy) is not a container
            // process: its first exec of anything else is the finding. Any
            // other task moved in is one now. Where the kernel could not read
            // the executables, the move is reported rather than guessed away.
            kind::ATTACH if ev.flags & flags::RUNTIME_SETUP == 0 => {
                actions.push(Action::emit(WatchEvent::HostPidns(
                    s.finding(Trigger::CgroupAttach),
                )));
                actions.push(Action::TrackTask { pid: ev.pid });
            }
            kind::SETNS => self.setns(&s, &mut actions),
            _ => {}
        }
        actions
    }

    /// A container process's setns: one event per namespace type that is
    /// the host's (and not already the container's own).
    fn setns(&mut self, s: &Subject<'_>, actions: &mut Vec<Action>) {
        let ev = s.ev;
        let pidfd = ev.flags & flags::PIDFD != 0;
        let ok = ev.ret == 0;
        let key = ContainerKey {
            runtime: s.container.runtime,
            id: s.container.container_id.clone(),
            cgroup: s.container.cgroup.clone(),
        };
        // With a pidfd the target is a process: the host's if it is not a
        // container's. Its namespaces are read now (PID 1's links may be
        // unreadable: the host's namespaces stand in for them).
        let target_is_host =
            pidfd.then(|| self.is_host_process(ev.target_pid, ev.target_cgroup_id));
        if target_is_host == Some(false) {
            return;
        }
        let init = self.container_init(&key, &s.container.cgroup, ev.pid);
        for (index, (flag, name)) in NS_TYPES.iter().enumerate() {
            let asked = if pidfd {
                ev.nstype & flag != 0
            } else {
                ev.nstype == *flag
            };
            if !asked {
                continue;
            }
            let ino = if pidfd {
                self.proc
                    .ns_inode(ev.target_pid, name)
                    .ok()
                    .or_else(|| self.host_pid_stand_in(ev.target_pid, index))
            } else {
                Some(u64::from(ev.ns_inum))
            };
            // The container's own namespace (its init holds it: a
            // `--network=host` container's net, `ip netns exec` inside it,
            // a setns back home) is no escape.
            if let (Some(ino), Some(init)) = (ino, init)
                && self.proc.ns_inode(init, name).ok() == Some(ino)
            {
                continue;
            }
            let host = match (target_is_host, ino) {
                (Some(host), _) => host,
                (None, Some(ino)) => self.is_host_namespace(index, ino),
                (None, None) => false,
            };
            if !host {
                continue;
            }
            if ok && index == NS_PID && ev.flags & flags::CALLER_HOST_PIDNS == 0 {
                actions.push(Action::emit(WatchEvent::HostPidns(
                    s.finding(Trigger::Setns),
                )));
            }
            actions.push(Action::emit(WatchEvent::Setns(SetnsEvent {
                nstype: name,
                target: "host",
                ok,
                via: if pidfd {
                    SetnsVia::Pidfd
                } else {
                    SetnsVia::NsFile
                },
                target_pid: pidfd.then_some(ev.target_pid),
                compat: ev.flags & flags::COMPAT != 0,
                error: (!ok).then(|| format!("{:?}", nix::errno::Errno::from_raw(-ev.ret))),
                pid: ev.pid,
                comm: s.comm.clone(),
                container: s.container.clone(),
                ts: s.ts.clone(),
                ns_inode: ino,
                latency_us: s.latency_us,
            })));
        }
    }

    /// The host PID's namespace where its own link is unreadable.
    fn host_pid_stand_in(&self, pid: u32, index: usize) -> Option<u64> {
        let ino = self.host_ns[index];
        (pid == 1 && ino != 0).then_some(u64::from(ino))
    }

    /// Whether a namespace is the host's: one of the host's own (its init's,
    /// a kernel thread's), or held by a host process (a service's private
    /// mount namespace, `unshare -m` on the host).
    fn is_host_namespace(&mut self, index: usize, ino: u64) -> bool {
        if self.host_ns[index] != 0 && u64::from(self.host_ns[index]) == ino {
            return true;
        }
        let now = Instant::now();
        if let Some((holder, at)) = self.holders.get(&(index, ino)) {
            let ttl = if holder.is_some() {
                HOLDER_POSITIVE_TTL
            } else {
                HOLDER_NEGATIVE_TTL
            };
            if now.duration_since(*at) < ttl {
                return holder.is_some();
            }
        }
        let name = NS_TYPES[index].1;
        let mut ancestry = engine::Ancestry::new(&self.proc);
        let holder =
            hostns::host_holder(&self.proc, name, ino, |pid| self.owner(pid, &mut ancestry));
        if self.holders.len() >= MAX_CACHED {
            self.holders.clear();
        }
        self.holders.insert((index, ino), (holder, now));
        holder.is_some()
    }

    /// Whether a process (a pidfd's target) is a host process, by its cgroup.
    fn is_host_process(&mut self, pid: u32, cgroup_id: u64) -> bool {
        if pid == 0 {
            return false;
        }
        if let Some(cg) = self.cgroups.get(&cgroup_id) {
            match cg.class {
                Some(class::HOST) => return true,
                Some(_) => return false,
                None => {}
            }
        }
        let mut ancestry = engine::Ancestry::new(&self.proc);
        self.owner(pid, &mut ancestry) == Owner::Host
    }

    /// Whose a process is, from its cgroup file.
    fn owner(&self, pid: u32, ancestry: &mut engine::Ancestry<'_>) -> Owner {
        let mut buf = Vec::new();
        if self.proc.read_into(pid, "cgroup", &mut buf).is_err() {
            return Owner::Unknown;
        }
        match engine::placement(&buf) {
            None => Owner::Host,
            Some(p) if p.role == Role::Monitor => Owner::Host,
            Some(p)
                if p.needs_confirmation
                    && !self.containerd_task_exists(&p)
                    && !ancestry.has_shim_ancestor(pid) =>
            {
                Owner::Host
            }
            Some(p) => Owner::Container(p.key),
        }
    }

    /// A container's longest-running process other than `caller`: its init,
    /// whose namespaces are the container's own. Found through the
    /// container's cgroup where the hierarchy is known, else /proc; cached
    /// while it lives.
    fn container_init(&mut self, key: &ContainerKey, cgroup: &str, caller: u32) -> Option<u32> {
        if let Some(&pid) = self.inits.get(key)
            && pid != caller
            && self.proc.exists(pid)
        {
            return Some(pid);
        }
        let mut pids = self
            .cgroup_root
            .as_deref()
            .map(|root| cgroupfs::procs(root, cgroup))
            .unwrap_or_default();
        if pids.is_empty() {
            let mut ancestry = engine::Ancestry::new(&self.proc);
            pids = self
                .proc
                .pids()
                .unwrap_or_default()
                .into_iter()
                .filter(|&pid| self.owner(pid, &mut ancestry) == Owner::Container(key.clone()))
                .collect();
        }
        let (init, _) = hostns::oldest(&self.proc, pids.into_iter().filter(|&p| p != caller))?;
        if self.inits.len() >= MAX_CACHED {
            self.inits.clear();
        }
        self.inits.insert(key.clone(), init);
        Some(init)
    }

    /// Findings (trigger `scan` or `poll`) for every host-PID process of every
    /// container a scan says shares the host PID namespace and is not allowed.
    pub fn scan_findings(report: &ScanReport, trigger: Trigger) -> Vec<Action> {
        let ts = now_rfc3339();
        let mut out = Vec::new();
        for c in report
            .containers
            .iter()
            .filter(|c| c.verdict == Verdict::Shares)
        {
            let container = ContainerRef {
                container_id: c.id.clone(),
                runtime: c.runtime,
                name: c.name.clone(),
                pod: c.pod.clone(),
                cgroup: c.cgroup.clone(),
            };
            for p in &c.host_pidns_processes {
                out.push(Action::emit(WatchEvent::HostPidns(Finding {
                    trigger,
                    pid: p.pid,
                    comm: p.comm.clone().unwrap_or_default(),
                    container: container.clone(),
                    ts: ts.clone(),
                    ppid: None,
                    filename: None,
                    clone_flags: None,
                    latency_us: None,
                })));
                out.push(Action::TrackTask { pid: p.pid });
            }
        }
        out
    }

    pub fn host_pidns_ino(&self) -> u64 {
        self.host_pidns_ino
    }

    pub fn proc_root(&self) -> &Path {
        self.proc.path()
    }
}

/// The bytes before the first NUL.
fn cstr(bytes: &[u8]) -> &[u8] {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes, |n| &bytes[..n])
}

/// Decodes one ring-buffer record. The kernel writes [`Event`]s only, so a
/// record of another size is the other side of a layout mismatch (an object
/// built from another version of [`Event`]): refused rather than misread.
pub fn decode(bytes: &[u8]) -> Option<Event> {
    if bytes.len() != std::mem::size_of::<Event>() {
        return None;
    }
    // SAFETY: Event is plain old data (integers and byte arrays); any bit
    // pattern is valid, and read_unaligned copes with the record's alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Event>()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pidns_ebpf::{COMM_LEN, DATA_LEN};

    const ID: &str = "c6e94367ab9335599a46308fb7deaf45f923aae7c1e7f971dc89871f499e4cfc";
    const HOST: u64 = 4026531836;
    /// The host's namespaces in the fixture, by NS_TYPES index.
    const HOST_NS: [u64; 8] = [
        4026531840, 4026531838, 4026531839, 4026531837, HOST, 4026531992, 4026531835, 4026531834,
    ];
    const MNT: u32 = 0x0002_0000;
    const UTS: u32 = 0x0400_0000;
    const NET: u32 = 0x4000_0000;
    const PID: u32 = 0x2000_0000;

    fn event(kind: u32, cgroup_id: u64, pid: u32, comm: &str, data: &str) -> Event {
        let mut c = [0u8; COMM_LEN];
        c[..comm.len()].copy_from_slice(comm.as_bytes());
        let mut d = [0u8; DATA_LEN];
        let n = data.len().min(DATA_LEN - 1);
        d[..n].copy_from_slice(&data.as_bytes()[..n]);
        Event {
            kind,
            flags: 0,
            ktime_ns: 1_000_000,
            cgroup_id,
            pid,
            tid: pid,
            ppid: 1,
            nstype: 0,
            ns_inum: 0,
            ret: 0,
            arg: 0,
            target_pid: 0,
            _reserved: 0,
            target_cgroup_id: 0,
            comm: c,
            data: d,
        }
    }

    /// A process in a fixture proc tree: its cgroup, namespaces (by name),
    /// parent and start time.
    fn process(
        root: &Path,
        pid: u32,
        name: &str,
        ppid: u32,
        cgroup: &str,
        ns: &[(&str, u64)],
        start: u64,
    ) {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(dir.join("ns")).expect("pid dir");
        std::fs::write(dir.join("cgroup"), format!("0::{cgroup}\n")).expect("cgroup");
        std::fs::write(
            dir.join("status"),
            format!("Name:\t{name}\nPPid:\t{ppid}\nNSpid:\t{pid}\n"),
        )
        .expect("status");
        std::fs::write(
            dir.join("stat"),
            format!("{pid} ({name}) S {ppid} 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"),
        )
        .expect("stat");
        for (ty, ino) in ns {
            let _ = std::fs::remove_file(dir.join("ns").join(ty));
            std::os::unix::fs::symlink(format!("{ty}:[{ino}]"), dir.join("ns").join(ty))
                .expect("ln");
        }
    }

    fn host_ns() -> Vec<(&'static str, u64)> {
        NS_TYPES
            .iter()
            .zip(HOST_NS)
            .map(|((_, name), ino)| (*name, ino))
            .collect()
    }

    fn attributor(proc: &Path, allow: &[&str]) -> Attributor {
        if !proc.join("1").exists() {
            process(proc, 1, "init", 0, "/", &host_ns(), 1);
        }
        let root = ProcRoot::open(proc).expect("proc root");
        let host = HostPidns {
            inode: Some(HOST),
            method: crate::report::HostMethod::NsLink,
            host_pid: 1,
            inode_source_pid: None,
            procfs_own: true,
        };
        Attributor::new(
            root,
            AllowList::new(allow.iter().map(|s| s.to_string())),
            None,
            None,
            &host,
        )
    }

    fn findings(actions: &[Action]) -> Vec<&WatchEvent> {
        actions
            .iter()
            .filter_map(|a| {
                if let Action::Emit(e) = a {
                    Some(&**e)
                } else {
                    None
                }
            })
            .collect()
    }

    fn bytes(e: &Event) -> Vec<u8> {
        // SAFETY: reading the bytes of a plain-data struct.
        unsafe {
            std::slice::from_raw_parts(
                (e as *const Event).cast::<u8>(),
                std::mem::size_of::<Event>(),
            )
        }
        .to_vec()
    }

    #[test]
    fn decode_takes_events_of_the_exact_size_only() {
        let e = event(kind::EXEC, 7, 42, "sleep", "/bin/sleep");
        let mut b = bytes(&e);
        let d = decode(&b).expect("decodes");
        assert_eq!(
            (d.kind, d.cgroup_id, d.pid, cstr(&d.comm)),
            (kind::EXEC, 7, 42, &b"sleep"[..])
        );
        assert!(decode(&b[..b.len() - 1]).is_none(), "short");
        b.push(0);
        assert!(decode(&b).is_none(), "long: another layout");
        assert!(decode(&[]).is_none());
    }

    #[test]
    fn cgroups_are_classified_for_the_kernel() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &[]);
        assert_eq!(
            a.learn(10, format!("/docker/{ID}").as_bytes()),
            Some(Action::Classify {
                cgroup_id: 10,
                class: class::CONTAINER
            })
        );
        assert_eq!(
            a.learn(11, b"/system.slice/cron.service"),
            Some(Action::Classify {
                cgroup_id: 11,
                class: class::HOST
            })
        );
        assert_eq!(
            a.learn(12, b"/libpod_parent/conmon"),
            Some(Action::Classify {
                cgroup_id: 12,
                class: class::HOST
            })
        );
        // ctr's /<namespace>/<id> waits for confirmation
        assert_eq!(a.learn(13, b"/default/web"), None);
        let mut b = attributor(dir.path(), &[&ID[..12]]);
        assert_eq!(
            b.learn(10, format!("/docker/{ID}").as_bytes()),
            Some(Action::Classify {
                cgroup_id: 10,
                class: class::ALLOWED
            })
        );
    }

    #[test]
    fn a_nested_container_named_after_an_allowed_one_is_not_allowed() {
        let dir = tempfile::tempdir().expect("tmp");
        let outer = "a".repeat(64);
        let nested = format!("/docker/{outer}/docker/{ID}");
        let mut a = attributor(dir.path(), &[ID]);
        assert_eq!(
            a.learn(20, nested.as_bytes()),
            Some(Action::Classify {
                cgroup_id: 20,
                class: class::CONTAINER
            }),
            "the enclosing container is not allowed"
        );
        let mut b = attributor(dir.path(), &[ID, &outer]);
        assert_eq!(
            b.learn(20, nested.as_bytes()),
            Some(Action::Classify {
                cgroup_id: 20,
                class: class::ALLOWED
            }),
            "both allowed"
        );
    }

    fn docker(a: &mut Attributor) {
        let mkdir = event(kind::CGROUP_MKDIR, 10, 5, "runc", &format!("/docker/{ID}"));
        assert_eq!(
            a.handle(&mkdir, 0),
            vec![Action::Classify {
                cgroup_id: 10,
                class: class::CONTAINER
            }]
        );
    }

    #[test]
    fn removing_a_containers_own_cgroup_says_it_is_gone() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        let sub = format!("/docker/{ID}/init.scope");
        assert!(a.learn(11, sub.as_bytes()).is_some());
        let rmdir = |id| event(kind::CGROUP_RMDIR, id, 5, "runc", "");
        assert_eq!(a.handle(&rmdir(11), 0), vec![], "a cgroup below it");
        let out = a.handle(&rmdir(10), 0);
        let [Action::Gone(c)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(c.container_id, ID);
        assert_eq!(a.handle(&rmdir(10), 0), vec![], "once");
    }

    #[test]
    fn exec_fork_and_new_pid_namespaces() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);

        let out = a.handle(&event(kind::EXEC, 10, 42, "sleep", "/bin/sleep"), 3_000_000);
        let [WatchEvent::HostPidns(f)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (f.trigger, f.pid, f.comm.as_str()),
            (Trigger::Exec, 42, "sleep")
        );
        assert_eq!(f.container.container_id, ID);
        assert_eq!(f.filename.as_deref(), Some("/bin/sleep"));
        assert_eq!(f.latency_us, Some(2000));
        assert_eq!(f.clone_flags, None);

        // a vfork child, reported at its exec with the flags it was created with
        let mut exec = event(kind::EXEC, 10, 44, "true", "/bin/true");
        exec.flags = flags::CLONE_FLAGS;
        exec.arg = 0x4100;
        let out = a.handle(&exec, 0);
        let [WatchEvent::HostPidns(f)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        let flags = f.clone_flags.as_ref().expect("flags");
        assert_eq!(
            (flags.hex.as_str(), &flags.names[..]),
            ("0x4100", &["CLONE_VM", "CLONE_VFORK"][..])
        );

        // glibc's fork(): clone(CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID, SIGCHLD)
        let mut fork = event(kind::FORK, 10, 43, "sh", "");
        fork.arg = 0x1200000;
        let out = a.handle(&fork, 0);
        let [WatchEvent::HostPidns(f)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(f.trigger, Trigger::Fork);
        let flags = f.clone_flags.as_ref().expect("flags");
        assert_eq!(flags.hex, "0x1200000");
        assert_eq!(flags.names, ["CLONE_CHILD_CLEARTID", "CLONE_CHILD_SETTID"]);
        let json = serde_json::to_value(WatchEvent::HostPidns(f.clone())).expect("json");
        assert_eq!(json["clone_flags"], "0x1200000");
        assert_eq!(json["clone_flag_names"][1], "CLONE_CHILD_SETTID");
        // musl's fork: no flag at all
        fork.arg = 0;
        assert!(matches!(
            findings(&a.handle(&fork, 0))[..],
            [WatchEvent::HostPidns(Finding {
                trigger: Trigger::Fork,
                ..
            })]
        ));
        fork.arg = 0x1200000 | u64::from(MNT);
        assert!(matches!(
            findings(&a.handle(&fork, 0))[..],
            [WatchEvent::HostPidns(Finding {
                trigger: Trigger::Clone,
                ..
            })]
        ));

        // children in another PID namespace: informational, with how they got there
        let mut child = event(kind::NEW_PIDNS, 10, 50, "unshare", "");
        child.ppid = 49;
        child.ns_inum = 4026532999;
        child.arg = u64::from(PID | MNT);
        let out = a.handle(&child, 0);
        let [WatchEvent::NewPidns(n)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (n.via, n.pid, n.child_pid, n.pidns_inode, n.comm.as_str()),
            (NewPidnsVia::Clone, 49, 50, 4026532999, "unshare")
        );
        let json = serde_json::to_value(WatchEvent::NewPidns(n.clone())).expect("json");
        assert_eq!(
            (
                json["event"].as_str(),
                json["via"].as_str(),
                json["clone_flags"].as_str()
            ),
            (Some("new_pidns"), Some("clone"), Some("0x20020000"))
        );
        assert_eq!(json["container_id"], ID);
        child.arg = 0;
        assert!(matches!(
            findings(&a.handle(&child, 0))[..],
            [WatchEvent::NewPidns(NewPidnsEvent {
                via: NewPidnsVia::UnshareOrSetns,
                ..
            })]
        ));
    }

    #[test]
    fn runtime_setup_is_the_kernels_verdict_not_a_name() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        // judged a runtime's setup process: nothing, whatever it is called
        for comm in ["runc:[0:PARENT]", "runc-alt", "bash"] {
            let mut e = event(kind::ATTACH, 10, 50, comm, "");
            e.flags = flags::RUNTIME_SETUP;
            assert!(findings(&a.handle(&e, 0)).is_empty(), "{comm}");
            e.flags |= flags::INTO_CGROUP;
            assert!(findings(&a.handle(&e, 0)).is_empty(), "{comm}");
        }
        // anything else moved in is a container process now, even if named like a runtime
        for (comm, extra) in [("bash", 0), ("runc", 0), ("exe", flags::EXE_UNKNOWN)] {
            let mut e = event(kind::ATTACH, 10, 51, comm, "");
            e.flags = extra;
            let out = a.handle(&e, 0);
            assert!(
                matches!(
                    findings(&out)[..],
                    [WatchEvent::HostPidns(Finding {
                        trigger: Trigger::CgroupAttach,
                        pid: 51,
                        ..
                    })]
                ),
                "{comm}: {out:?}"
            );
            assert!(out.contains(&Action::TrackTask { pid: 51 }));
        }
        // and a payload called runc is an exec like any other
        let out = a.handle(&event(kind::EXEC, 10, 52, "runc", "/tmp/runc"), 0);
        assert_eq!(findings(&out).len(), 1, "{out:?}");
    }

    fn setns(cgroup: u64, pid: u32, nstype: u32, ino: u64, ret: i32) -> Event {
        let mut e = event(kind::SETNS, cgroup, pid, "nsenter", "");
        e.nstype = nstype;
        e.ns_inum = ino as u32;
        e.ret = ret;
        e
    }

    fn setns_events(out: &[Action]) -> Vec<(&'static str, bool)> {
        findings(out)
            .into_iter()
            .filter_map(|e| match e {
                WatchEvent::Setns(s) => Some((s.nstype, s.ok)),
                _ => None,
            })
            .collect()
    }

    /// A container (init 200, own mnt/uts/net, the host's net as with
    /// `--network=host`), a host service in a mount namespace of its own
    /// (300), and another container's process (400).
    fn namespaces_fixture(root: &Path) {
        process(root, 1, "init", 0, "/", &host_ns(), 1);
        let own = [
            ("mnt", 4026532200),
            ("uts", 4026532201),
            ("net", HOST_NS[5]),
            ("pid", HOST),
        ];
        process(root, 200, "sleep", 1, &format!("/docker/{ID}"), &own, 100);
        process(
            root,
            201,
            "nsenter",
            200,
            &format!("/docker/{ID}"),
            &own,
            500,
        );
        process(
            root,
            300,
            "svc",
            1,
            "/system.slice/svc.service",
            &[
                ("mnt", 4026532300),
                ("uts", HOST_NS[1]),
                ("net", HOST_NS[5]),
            ],
            50,
        );
        let other = format!("/docker/{}", "d".repeat(64));
        process(
            root,
            400,
            "db",
            1,
            &other,
            &[
                ("mnt", 4026532400),
                ("uts", 4026532401),
                ("net", 4026532402),
            ],
            60,
        );
    }

    #[test]
    fn setns_is_reported_when_the_target_is_the_hosts() {
        let dir = tempfile::tempdir().expect("tmp");
        namespaces_fixture(dir.path());
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        // into the host's own mount namespace, refused by seccomp: reported, failed
        let out = a.handle(&setns(10, 201, MNT, HOST_NS[0], -1), 0);
        let [WatchEvent::Setns(s)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (
                s.nstype,
                s.target,
                s.ok,
                s.error.as_deref(),
                s.via,
                s.ns_inode
            ),
            (
                "mnt",
                "host",
                false,
                Some("EPERM"),
                SetnsVia::NsFile,
                Some(HOST_NS[0])
            )
        );
        // into a host service's private mount namespace: the host's too
        assert_eq!(
            setns_events(&a.handle(&setns(10, 201, MNT, 4026532300, 0), 0)),
            [("mnt", true)]
        );
        // into another container's: not the host's
        assert!(findings(&a.handle(&setns(10, 201, MNT, 4026532400, 0), 0)).is_empty());
        // into one nobody holds (`ip netns exec` inside the container): not the host's
        assert!(findings(&a.handle(&setns(10, 201, NET, 4026532999, 0), 0)).is_empty());
        // into the container's own (its init's), even one it shares with the host
        assert!(findings(&a.handle(&setns(10, 201, UTS, 4026532201, 0), 0)).is_empty());
        assert!(findings(&a.handle(&setns(10, 201, NET, HOST_NS[5], 0), 0)).is_empty());
        // The init itself joins the host's mount namespace: its link, read
        // afterwards, shows the host's; the container's own is what its next
        // oldest process still has.
        process(
            dir.path(),
            200,
            "sleep",
            1,
            &format!("/docker/{ID}"),
            &[("mnt", HOST_NS[0])],
            100,
        );
        assert_eq!(
            setns_events(&a.handle(&setns(10, 200, MNT, HOST_NS[0], 0), 0)),
            [("mnt", true)]
        );
    }

    #[test]
    fn setns_into_the_host_pid_namespace_is_a_finding_for_callers_outside_it() {
        let dir = tempfile::tempdir().expect("tmp");
        namespaces_fixture(dir.path());
        // an isolated container this time: its init has a PID namespace of its own
        process(
            dir.path(),
            200,
            "sleep",
            1,
            &format!("/docker/{ID}"),
            &[("pid", 4026532210)],
            100,
        );
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        let out = a.handle(&setns(10, 201, PID, HOST, 0), 0);
        assert!(
            matches!(
                findings(&out)[..],
                [
                    WatchEvent::HostPidns(Finding {
                        trigger: Trigger::Setns,
                        ..
                    }),
                    WatchEvent::Setns(SetnsEvent {
                        nstype: "pid",
                        ok: true,
                        ..
                    })
                ]
            ),
            "{out:?}"
        );
        // a caller already in the host PID namespace gains nothing new there
        let mut e = setns(10, 201, PID, HOST, 0);
        e.flags = flags::CALLER_HOST_PIDNS;
        let out = a.handle(&e, 0);
        assert_eq!(setns_events(&out), [("pid", true)]);
        assert!(
            !findings(&out)
                .iter()
                .any(|e| matches!(e, WatchEvent::HostPidns(_)))
        );
        // refused: no finding either
        let out = a.handle(&setns(10, 201, PID, HOST, -1), 0);
        assert_eq!(setns_events(&out), [("pid", false)]);
        assert_eq!(findings(&out).len(), 1);
    }

    #[test]
    fn setns_through_a_pidfd_reports_each_type_with_the_target() {
        let dir = tempfile::tempdir().expect("tmp");
        namespaces_fixture(dir.path());
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        a.learn(20, b"/system.slice/svc.service");
        let mut e = setns(10, 201, MNT | UTS | NET, 0, 0);
        e.flags = flags::PIDFD;
        e.target_pid = 300;
        e.target_cgroup_id = 20;
        let out = a.handle(&e, 0);
        // net is the container's own already (--network=host)
        assert_eq!(setns_events(&out), [("mnt", true), ("uts", true)]);
        let WatchEvent::Setns(s) = findings(&out)[0] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (s.via, s.target_pid, s.ns_inode),
            (SetnsVia::Pidfd, Some(300), Some(4026532300))
        );
        let json = serde_json::to_value(WatchEvent::Setns(s.clone())).expect("json");
        assert_eq!(
            (json["via"].as_str(), json["target_pid"].as_u64()),
            (Some("pidfd"), Some(300))
        );
        // PID 1, whose links are unreadable on hardened hosts: the host's namespaces stand in
        std::fs::remove_dir_all(dir.path().join("1/ns")).expect("rm");
        e.target_pid = 1;
        e.target_cgroup_id = 0;
        e.nstype = MNT;
        let out = a.handle(&e, 0);
        let [WatchEvent::Setns(s)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(s.ns_inode, Some(HOST_NS[0]));
        // a pidfd of another container's process: not the host
        e.target_pid = 400;
        e.nstype = MNT | UTS;
        assert!(findings(&a.handle(&e, 0)).is_empty());
        // compat calls say so
        e.target_pid = 300;
        e.nstype = MNT;
        e.flags |= flags::COMPAT;
        let out = a.handle(&e, 0);
        assert!(matches!(
            findings(&out)[..],
            [WatchEvent::Setns(SetnsEvent { compat: true, .. })]
        ));
    }

    #[test]
    fn cut_cgroup_paths_are_never_classified_from_the_cut() {
        let dir = tempfile::tempdir().expect("tmp");
        let cg = tempfile::tempdir().expect("cgroupfs");
        let outer = format!("system.slice/docker-{ID}.scope");
        let inner = "e".repeat(64);
        let full = format!(
            "/{outer}/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod0123abcd_4567_89ef_0123_456789abcdef.slice/cri-containerd-{inner}.scope"
        );
        std::fs::create_dir_all(cg.path().join(&full[1..])).expect("dirs");
        let id = std::os::unix::fs::MetadataExt::ino(
            &std::fs::metadata(cg.path().join(&full[1..])).expect("stat"),
        );
        let mut mkdir = event(kind::CGROUP_MKDIR, id, 5, "runc", &full);
        mkdir.flags = flags::TRUNCATED;
        assert_eq!(cstr(&mkdir.data).len(), DATA_LEN - 1);
        // without the hierarchy to look in: left unknown, not the outer container
        let mut a = attributor(dir.path(), &[]);
        assert!(a.handle(&mkdir, 0).is_empty());
        assert!(!a.cgroups.contains_key(&id));
        // with it: the inner container, found by its id
        a.set_cgroup_root(cg.path().to_path_buf());
        assert_eq!(
            a.handle(&mkdir, 0),
            vec![Action::Classify {
                cgroup_id: id,
                class: class::CONTAINER
            }]
        );
        let key = a.cgroups[&id].container.clone().expect("container");
        assert_eq!(
            (key.runtime, key.id.as_str()),
            (layout::Runtime::Containerd, inner.as_str())
        );
    }

    #[test]
    fn host_cgroups_and_allowed_containers_emit_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &["c6e94367ab93"]);
        a.learn(11, b"/user.slice");
        assert!(
            a.handle(&event(kind::EXEC, 11, 42, "ls", "/bin/ls"), 0)
                .is_empty()
        );
        a.learn(10, format!("/docker/{ID}").as_bytes());
        assert!(findings(&a.handle(&event(kind::EXEC, 10, 42, "ls", "/bin/ls"), 0)).is_empty());
    }

    #[test]
    fn unknown_cgroups_are_placed_through_proc_while_the_process_lives() {
        let dir = tempfile::tempdir().expect("tmp");
        process(dir.path(), 42, "sleep", 1, &format!("/docker/{ID}"), &[], 1);
        let mut a = attributor(dir.path(), &[]);
        let mut e = event(kind::EXEC, 99, 42, "sleep", "/bin/sleep");
        e.flags = flags::UNCLASSIFIED;
        let out = a.handle(&e, 0);
        assert!(
            out.contains(&Action::Classify {
                cgroup_id: 99,
                class: class::CONTAINER
            }),
            "{out:?}"
        );
        assert!(out.contains(&Action::TrackTask { pid: 42 }), "{out:?}");
        assert_eq!(findings(&out).len(), 1);
        // gone, never seen: nothing to attribute, and it is counted
        let gone = event(kind::EXEC, 100, 4242, "x", "");
        assert!(a.handle(&gone, 0).is_empty());
        assert_eq!(a.unattributed(), 1);
        assert_eq!(a.events(), 2);
        let WatchEvent::Stats {
            events,
            unattributed,
            lost,
            ..
        } = a.stats(7)
        else {
            panic!("not stats")
        };
        assert_eq!((events, unattributed, lost), (2, 1, 7));
    }

    #[test]
    fn containerd_namespace_layout_is_confirmed_by_a_shim() {
        let dir = tempfile::tempdir().expect("tmp");
        process(dir.path(), 70, "containerd-shim", 1, "/", &[], 1);
        process(dir.path(), 71, "sleep", 70, "/default/web", &[], 1);
        let mut a = attributor(dir.path(), &[]);
        assert_eq!(a.learn(20, b"/default/web"), None);
        let out = a.handle(&event(kind::EXEC, 20, 71, "sleep", "/bin/sleep"), 0);
        assert!(
            out.contains(&Action::Classify {
                cgroup_id: 20,
                class: class::CONTAINER
            }),
            "{out:?}"
        );
        assert_eq!(findings(&out).len(), 1);
        // with no shim behind it, the same shape is not a container ...
        process(dir.path(), 4000, "job", 1, "/actions_job/abc", &[], 1);
        assert_eq!(a.learn(21, b"/actions_job/abc"), None);
        assert_eq!(
            a.handle(&event(kind::EXEC, 21, 4000, "job", ""), 0),
            vec![Action::Classify {
                cgroup_id: 21,
                class: class::HOST
            }],
            "the negative answer goes to the kernel"
        );
        // ... and is kept: no second walk up the ancestry, even if one would now say yes
        process(dir.path(), 4001, "job", 70, "/actions_job/abc", &[], 1);
        assert!(
            a.handle(&event(kind::EXEC, 21, 4001, "job", ""), 0)
                .is_empty()
        );
        // a new mkdir asks again
        assert_eq!(a.learn(21, b"/actions_job/abc"), None);
        assert_eq!(
            findings(&a.handle(&event(kind::EXEC, 21, 4001, "job", ""), 0)).len(),
            1
        );
    }

    #[test]
    fn scan_findings_cover_each_host_process() {
        use crate::report::*;
        let mk = |verdict: Verdict| Container {
            id: ID.into(),
            runtime: crate::parse::layout::Runtime::Docker,
            name: Some("hp".into()),
            pod: None,
            containerd_namespace: None,
            cgroup: format!("/docker/{ID}"),
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
                },
                ProcessEvidence {
                    pid: 2,
                    comm: Some("b".into()),
                    pidns_inode: Some(HOST),
                    method: Method::NsLink,
                    children_pidns_inode: None,
                },
            ],
            runtime_pids: vec![],
            shares_pidns_with: vec![],
            unknown_reason: None,
            allowed_by: None,
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
        };
        let out = Attributor::scan_findings(&report(mk(Verdict::Shares)), Trigger::Scan);
        assert_eq!(findings(&out).len(), 2);
        assert!(out.contains(&Action::TrackTask { pid: 2 }));
        assert!(Attributor::scan_findings(&report(mk(Verdict::Allowed)), Trigger::Scan).is_empty());
    }
}
