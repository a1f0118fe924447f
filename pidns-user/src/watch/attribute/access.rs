//! Host access events: whose process the target is, and the rate. The
//! first access of a container to a target with one op is its own
//! `host_access` line (up to [`INDIVIDUAL_PER_INTERVAL`] per container and
//! op per interval); everything else of the interval goes into one
//! `host_access_aggregate` line per container and op, with the count and
//! the distinct targets. Host access travels on the kernel's other ring,
//! and the kernel already sends each (container, op, target, result) at
//! most once a second: a sweep costs findings nothing.

use std::collections::{BTreeMap, HashMap};

use pidns_ebpf::{AccessKey, Event, access, cstr, flags};

use super::{Action, Attributor, cgroups::Known, cgroups::Lookup};
use crate::report::{
    AccessTarget, ContainerKey, Envelope, HostAccessAggregate, HostAccessEvent, WatchEvent,
};

/// First accesses reported one by one, per container and op and interval.
pub const INDIVIDUAL_PER_INTERVAL: u32 = 8;
/// First accesses remembered (with their target); beyond, forgotten at
/// once (a target may then be reported one by one again).
const MAX_SEEN: usize = 65_536;

/// What makes an access the first of its kind: the kernel's `AccessKey`
/// with the container named.
type Seen = (ContainerKey, AccessKey);

/// One container's accesses of one op in the current interval.
#[derive(Debug)]
struct Bucket {
    known: Known,
    count: u64,
    individual: u32,
    probes: u64,
    failed: u64,
    targets: BTreeMap<u32, AccessTarget>,
    last: Envelope,
}

/// The rate state (see the module).
#[derive(Debug, Default)]
pub struct AccessRate {
    /// Every first access: its target, `None` for the actor's own container's.
    seen: HashMap<Seen, Option<AccessTarget>>,
    buckets: HashMap<(ContainerKey, u32), Bucket>,
}

/// What one access (or a count of its repeats) adds to an interval.
struct Counted<'a> {
    known: &'a Known,
    key: AccessKey,
    target: AccessTarget,
    n: u64,
    last: Envelope,
}

impl AccessRate {
    fn add(&mut self, c: Counted<'_>) -> &mut Bucket {
        let op = c.key.what & 0xff;
        let bucket = self
            .buckets
            .entry((c.known.identity.key(), op))
            .or_insert_with(|| Bucket {
                known: c.known.clone(),
                count: 0,
                individual: 0,
                probes: 0,
                failed: 0,
                targets: BTreeMap::new(),
                last: c.last.clone(),
            });
        bucket.last = c.last;
        if bucket.targets.len() < HostAccessAggregate::MAX_TARGETS * 16 {
            bucket.targets.entry(c.target.pid).or_insert(c.target);
        }
        bucket.count += c.n;
        if op == access::SIGNAL && c.key.detail == 0 {
            bucket.probes += c.n;
        }
        if c.key.what & access::OK == 0 {
            bucket.failed += c.n;
        }
        bucket
    }
}

/// The kernel's `AccessKey::detail` of an event.
fn detail(ev: &Event) -> u64 {
    match ev.nstype {
        access::SIGNAL => ev.arg,
        access::PROC_OPEN if ev.flags & flags::PATH == 0 => {
            let name = cstr(&ev.data[access::PROC_PATH_AT..]);
            // as the kernel reads it: a string of at most 7 bytes and its NUL
            let mut head = [0u8; 8];
            let n = name.len().min(7);
            head[..n].copy_from_slice(&name[..n]);
            u64::from_le_bytes(head)
        }
        _ => 0,
    }
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
        let actor = match self
            .cgroups
            .lookup(&self.proc, ev.cgroup_id, ev.pid, &mut actions)
        {
            Lookup::Container(known) => known,
            Lookup::Host | Lookup::Unplaced => return actions,
        };
        let ok = ev.ret >= 0;
        let key = AccessKey {
            container: 0,
            detail: detail(ev),
            target_pid: ev.target_pid,
            what: op | if ok { access::OK } else { 0 },
        };
        let target = self.access_target(ev, &actor, &mut actions);
        let seen = (actor.identity.key(), key);
        let first = self.access.seen.len() < MAX_SEEN
            && self.access.seen.insert(seen, target.clone()).is_none();
        let Some(target) = target else {
            return actions; // its own container's process
        };
        let at = Envelope {
            pid: ev.pid,
            comm: String::from_utf8_lossy(cstr(&ev.comm)).into_owned(),
            container: actor.identity.clone(),
            ts: self.clock.rfc3339(ev.ktime_ns),
        };
        let line = HostAccessEvent {
            op: op_name,
            signal: (op == access::SIGNAL).then_some(ev.arg as u32),
            ptrace_request: (op == access::PTRACE).then_some(ev.arg),
            file: (op == access::PROC_OPEN).then(|| {
                String::from_utf8_lossy(cstr(&ev.data[access::PROC_PATH_AT..])).into_owned()
            }),
            path: ev.flags & flags::PATH != 0,
            target: target.clone(),
            group: ev.flags & flags::GROUP != 0,
            ok,
            error: (!ok).then(|| format!("{:?}", nix::errno::Errno::from_raw(-ev.ret))),
            allowed_container: actor.allowed,
            at: at.clone(),
            latency_us: None,
        };
        let bucket = self.access.add(Counted {
            known: &actor,
            key,
            target,
            n: 1,
            last: at,
        });
        if first && bucket.individual < INDIVIDUAL_PER_INTERVAL {
            bucket.individual += 1;
            bucket.count -= 1;
            if key.what & access::OK == 0 {
                bucket.failed -= 1;
            }
            if op == access::SIGNAL && key.detail == 0 {
                bucket.probes -= 1;
            }
            actions.push(Action::emit(WatchEvent::HostAccess(line)));
        }
        actions
    }

    /// `n` more repeats the kernel counted of an access it sent (or, over
    /// the budget, did not): into the interval's aggregate.
    pub fn host_access_repeats(&mut self, key: AccessKey, n: u64) {
        let Some(known) = self.container_of(key.container, 0) else {
            return;
        };
        let seen = (
            known.identity.key(),
            AccessKey {
                container: 0,
                ..key
            },
        );
        let target = match self.access.seen.get(&seen) {
            Some(None) => return, // its own container's process
            Some(Some(t)) => t.clone(),
            None => AccessTarget {
                pid: key.target_pid,
                comm: None,
                target: "unknown".into(),
                runtime: None,
                name: None,
            },
        };
        let last = Envelope {
            pid: 0,
            comm: String::new(),
            container: known.identity.clone(),
            ts: super::now_rfc3339(),
        };
        self.access.add(Counted {
            known: &known,
            key,
            target,
            n,
            last,
        });
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
}

#[cfg(test)]
mod tests {
    use pidns_ebpf::{AccessKey, Event, access, flags, kind};

    use super::super::testing::*;
    use super::INDIVIDUAL_PER_INTERVAL;
    use crate::report::WatchEvent;

    const CRON: u64 = 11;
    const OTHER: u64 = 12;

    /// A resolved access by pid 42 of the Docker container (cgroup 10).
    fn access_event(op: u32, target: u32, target_cgroup: u64, comm: &str) -> Event {
        let mut e = event(kind::HOST_ACCESS, 10, 42, "sh", comm);
        e.nstype = op;
        e.arg = 19;
        e.target_pid = target;
        e.target_cgroup_id = target_cgroup;
        e.flags = flags::TARGET_RESOLVED;
        e
    }

    fn setup(dir: &std::path::Path, allow: &[&str]) -> super::Attributor {
        let mut a = attributor(dir, allow);
        a.learn(10, format!("/docker/{ID}").as_bytes());
        a.learn(CRON, b"/system.slice/cron.service");
        a.learn(OTHER, format!("/docker/{}", "d".repeat(64)).as_bytes());
        a
    }

    #[test]
    fn targets_are_the_host_another_container_or_unknown_never_its_own() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = setup(dir.path(), &[]);
        let out = a.handle(&access_event(access::SIGNAL, 77, CRON, "cron"));
        let [WatchEvent::HostAccess(h)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (
                h.op,
                h.signal,
                h.target.pid,
                h.target.comm.as_deref(),
                h.target.target.as_str(),
                h.ok,
                h.at.container.id.as_str()
            ),
            ("signal", Some(19), 77, Some("cron"), "host", true, ID)
        );
        let json = serde_json::to_value(WatchEvent::HostAccess(h.clone())).expect("json");
        assert_eq!(
            (
                json["event"].as_str(),
                json["target_pid"].as_u64(),
                json["container_id"].as_str()
            ),
            (Some("host_access"), Some(77), Some(ID))
        );

        // its own container's process: nothing
        assert!(findings(&a.handle(&access_event(access::SIGNAL, 43, 10, "sleep"))).is_empty());

        // another container's, refused
        let mut e = access_event(access::PTRACE, 88, OTHER, "db");
        e.arg = 16;
        e.ret = -1;
        let out = a.handle(&e);
        let [WatchEvent::HostAccess(h)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (
                h.target.target.len(),
                h.ptrace_request,
                h.signal,
                h.ok,
                h.error.as_deref()
            ),
            (64, Some(16), None, false, Some("EPERM"))
        );

        // not resolved in the kernel, and gone: unknown
        let mut e = access_event(access::VM_READ, 4242, 0, "");
        e.flags = 0;
        let out = a.handle(&e);
        let [WatchEvent::HostAccess(h)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (h.target.target.as_str(), h.target.comm.as_deref()),
            ("unknown", None)
        );
    }

    #[test]
    fn a_sweep_is_a_few_lines_and_one_aggregate_per_interval() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = setup(dir.path(), &[]);
        let mut single = 0;
        for target in 100..130 {
            let mut e = access_event(access::SIGNAL, target, CRON, "cron");
            e.arg = 0; // a probe
            single += findings(&a.handle(&e)).len();
        }
        assert_eq!(single, INDIVIDUAL_PER_INTERVAL as usize);
        // a target's repeats, counted in the kernel
        let key = AccessKey {
            container: 10,
            detail: 0,
            target_pid: 100,
            what: access::SIGNAL | access::OK,
        };
        a.host_access_repeats(key, 5);
        let lines = a.host_access_interval(1);
        let [WatchEvent::HostAccessAggregate(g)] = &lines[..] else {
            panic!("{lines:?}")
        };
        assert_eq!(
            (
                g.op,
                g.count,
                g.probes,
                g.failed,
                g.targets_total,
                g.targets.len()
            ),
            ("signal", 30 - 8 + 5, 27, 0, 30, 30)
        );
        assert!(g.targets.iter().all(|t| t.target == "host"));
        // the next interval starts empty; targets reported before stay so
        assert!(a.host_access_interval(1).is_empty());
        let mut e = access_event(access::SIGNAL, 100, CRON, "cron");
        e.arg = 0;
        assert!(
            findings(&a.handle(&e)).is_empty(),
            "a probe of 100 seen already"
        );
        e.arg = 9;
        assert_eq!(findings(&a.handle(&e)).len(), 1, "SIGKILL is another kind");
        let lines = a.host_access_interval(1);
        assert!(matches!(&lines[..], [WatchEvent::HostAccessAggregate(g)] if g.count == 1));
    }

    #[test]
    fn an_allowed_container_is_reported_marked_allowed() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = setup(dir.path(), &[ID]);
        let out = a.handle(&access_event(access::PIDFD_GETFD, 77, CRON, "cron"));
        let [WatchEvent::HostAccess(h)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert!(h.allowed_container);
        assert_eq!(h.op, "pidfd_getfd");
    }

    #[test]
    fn proc_open_carries_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = setup(dir.path(), &[]);
        let mut e = access_event(access::PROC_OPEN, 77, CRON, "cron");
        e.data[access::PROC_PATH_AT..access::PROC_PATH_AT + 7].copy_from_slice(b"environ");
        let out = a.handle(&e);
        let [WatchEvent::HostAccess(h)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (h.file.as_deref(), h.path, h.signal),
            (Some("environ"), false, None)
        );
    }
}
