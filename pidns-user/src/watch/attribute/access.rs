//! Host access events: whose process the target is, and the rate. The
//! first access of a container to a target with one op is its own
//! `host_access` line (up to [`INDIVIDUAL_PER_INTERVAL`] per container and
//! op per interval); everything else of the interval goes into one
//! `host_access_aggregate` line per container and op, with the count and
//! the distinct targets. Host access travels on the kernel's other ring,
//! and the kernel already sends each (container, op, target, result) at
//! most once a second: a sweep costs findings nothing.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    os::unix::fs::MetadataExt as _,
};

use pidns_ebpf::{COMM_LEN, Event, access, cstr, flags};

use super::{Action, Attributor, cgroups::Known, cgroups::Lookup};
use crate::{
    parse::cgroup,
    report::{AccessTarget, ContainerKey, Envelope, HostAccessAggregate, HostAccessEvent, WatchEvent},
};

/// First accesses reported one by one, per container and op and interval.
pub const INDIVIDUAL_PER_INTERVAL: u32 = 8;
/// (container, op, target) remembered as reported; beyond, forgotten at once
/// (a target may then be reported one by one again).
const MAX_SEEN: usize = 65_536;

/// One container's accesses of one op in the current interval.
#[derive(Debug)]
struct Bucket {
    known: Known,
    individual: u32,
    count: u64,
    probes: u64,
    failed: u64,
    targets: BTreeMap<u32, AccessTarget>,
    last: Envelope,
}

/// The rate state (see the module).
#[derive(Debug, Default)]
pub struct AccessRate {
    seen: HashSet<(ContainerKey, u32, u32)>,
    buckets: HashMap<(ContainerKey, u32), Bucket>,
}

impl Attributor {
    /// A kernel `HOST_ACCESS` event: a line, or a count for the interval's
    /// aggregate, or nothing (the target is in the actor's own container).
    pub(super) fn host_access(&mut self, ev: &Event) -> Vec<Action> {
        let mut actions = Vec::new();
        let op = ev.nstype;
        let Some(&op_name) = access::NAMES.get(op as usize).filter(|n| !n.is_empty()) else {
            return actions;
        };
        let actor = match self.cgroups.lookup(&self.proc, ev.cgroup_id, ev.pid, &mut actions) {
            Lookup::Container(known) => known,
            Lookup::Host | Lookup::Unplaced => return actions,
        };
        let Some(target) = self.access_target(ev, &actor, &mut actions) else {
            return actions; // its own container's process
        };
        let at = Envelope {
            pid: ev.pid,
            comm: String::from_utf8_lossy(cstr(&ev.comm)).into_owned(),
            container: actor.identity.clone(),
            ts: self.clock.rfc3339(ev.ktime_ns),
        };
        let ok = ev.ret >= 0;
        let probe = op == access::SIGNAL && ev.arg == 0;
        let accesses = 1 + u64::from(ev.ns_inum);
        let key = actor.identity.key();
        let first = self.access.seen.len() < MAX_SEEN
            && self.access.seen.insert((key.clone(), op, target.pid));
        let bucket = self
            .access
            .buckets
            .entry((key, op))
            .or_insert_with(|| Bucket {
                known: actor.clone(),
                individual: 0,
                count: 0,
                probes: 0,
                failed: 0,
                targets: BTreeMap::new(),
                last: at.clone(),
            });
        bucket.last = at.clone();
        if bucket.targets.len() < HostAccessAggregate::MAX_TARGETS * 16 {
            bucket.targets.entry(target.pid).or_insert_with(|| target.clone());
        }
        let mut counted = accesses;
        if first && bucket.individual < INDIVIDUAL_PER_INTERVAL {
            bucket.individual += 1;
            counted -= 1;
            actions.push(Action::emit(WatchEvent::HostAccess(HostAccessEvent {
                op: op_name,
                signal: (op == access::SIGNAL).then_some(ev.arg as u32),
                ptrace_request: (op == access::PTRACE).then_some(ev.arg),
                file: (op == access::PROC_OPEN).then(|| {
                    String::from_utf8_lossy(cstr(&ev.data[access::PROC_PATH_AT..])).into_owned()
                }),
                path: ev.flags & flags::PATH != 0,
                target,
                group: ev.flags & flags::GROUP != 0,
                ok,
                error: (!ok).then(|| format!("{:?}", nix::errno::Errno::from_raw(-ev.ret))),
                allowed_container: actor.allowed,
                at,
                latency_us: None,
            })));
        }
        bucket.count += counted;
        if probe {
            bucket.probes += counted;
        }
        if !ok {
            bucket.failed += counted;
        }
        actions
    }

    /// The interval's aggregate lines, one per container and op that did
    /// more than its individual lines said; the interval starts again.
    pub fn host_access_interval(&mut self, interval_s: u64) -> Vec<WatchEvent> {
        let mut out = Vec::new();
        for ((_, op), b) in self.access.buckets.drain() {
            if b.count == 0 {
                continue;
            }
            let targets_total = b.targets.len();
            out.push(WatchEvent::HostAccessAggregate(HostAccessAggregate {
                op: access::NAMES.get(op as usize).copied().unwrap_or("unknown"),
                count: b.count,
                probes: b.probes,
                failed: b.failed,
                targets: b
                    .targets
                    .into_values()
                    .take(HostAccessAggregate::MAX_TARGETS)
                    .collect(),
                targets_total,
                interval_s,
                allowed_container: b.known.allowed,
                at: b.last,
            }));
        }
        if self.access.seen.len() >= MAX_SEEN {
            self.access.seen.clear();
        }
        out
    }

    /// Whose process the target is; `None` when it is the actor's own
    /// container's. The kernel names the target's cgroup when it read the
    /// task (a signal it generated, a pidfd); otherwise it is read from
    /// /proc now, and a target gone by then is `unknown`.
    fn access_target(&mut self, ev: &Event, actor: &Known, actions: &mut Vec<Action>) -> Option<AccessTarget> {
        let pid = ev.target_pid;
        let (cgroup_id, comm) = if ev.flags & flags::TARGET_RESOLVED != 0 {
            let comm = cstr(&ev.data[..COMM_LEN]);
            (Some(ev.target_cgroup_id), Some(String::from_utf8_lossy(comm).into_owned()))
        } else if pid == 0 {
            (None, None)
        } else {
            (self.cgroup_id_of(pid), self.proc.comm(pid).ok())
        };
        let mut target = AccessTarget {
            pid,
            comm,
            target: "unknown".into(),
            runtime: None,
            name: None,
        };
        let Some(cgroup_id) = cgroup_id else {
            return Some(target);
        };
        match self.cgroups.lookup(&self.proc, cgroup_id, pid, actions) {
            Lookup::Container(k) if k.identity.key() == actor.identity.key() => return None,
            Lookup::Container(k) => {
                target.target = k.identity.id;
                target.runtime = Some(k.identity.runtime);
                target.name = k.identity.name;
            }
            Lookup::Host => target.target = "host".into(),
            Lookup::Unplaced => {}
        }
        Some(target)
    }

    /// A live process's cgroup v2 id: the inode of its unified cgroup's
    /// directory.
    fn cgroup_id_of(&self, pid: u32) -> Option<u64> {
        let root = self.cgroup_root.as_ref()?;
        let mut buf = Vec::new();
        self.proc.read_into(pid, "cgroup", &mut buf).ok()?;
        let line = cgroup::parse(&buf).find(|l| l.is_unified())?;
        let rel = String::from_utf8_lossy(line.path).into_owned();
        let dir = root.join(rel.trim_start_matches('/'));
        std::fs::metadata(dir).ok().map(|m| m.ino())
    }
}
