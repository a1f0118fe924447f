//! The kernel's budgets: what a container did beyond them, counted in the
//! `AGG` map, becomes one `aggregate` line per container and kind.

use std::collections::HashMap;

use pidns_ebpf::{AggKey, NS_TYPES, kind};

use super::{Attributor, cgroups::Lookup};
use crate::report::{AggregateEvent, Envelope, Trigger, WatchEvent};

/// One budget's counts, summed over the CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppressed {
    pub key: AggKey,
    /// Events held back since the key was created.
    pub total: u64,
    /// The latest of them: when (CLOCK_MONOTONIC), which process, which cgroup.
    pub last_ns: u64,
    pub last_pid: u32,
    pub last_cgroup_id: u64,
    /// setns: the namespace types, ORed.
    pub nstypes: u32,
}

/// What has been reported of each budget's cumulative count.
#[derive(Debug, Default)]
pub struct Aggregates {
    reported: HashMap<AggKey, u64>,
    /// The kernel's total when last looked at: `AGG` is walked only when it moved.
    seen_total: u64,
}

impl Aggregates {
    /// Whether the kernel's total moved since the last walk.
    pub fn moved(&mut self, total: u64) -> bool {
        let moved = total != self.seen_total;
        self.seen_total = total;
        moved
    }

    /// The count of `key` not reported yet (an evicted key starts again from 0).
    pub fn delta(&mut self, key: AggKey, total: u64) -> u64 {
        let before = self.reported.insert(key, total).unwrap_or(0);
        if total >= before {
            total - before
        } else {
            total
        }
    }
}

impl Attributor {
    /// One line for `count` more events of `s`'s budget; `None` for a host
    /// cgroup's (an unclassified one's budget) or one that cannot be placed.
    pub fn aggregate(&mut self, s: &Suppressed, count: u64) -> Option<WatchEvent> {
        if count == 0 {
            return None;
        }
        let (key, pid, nstypes) = (s.key, s.last_pid, s.nstypes);
        let cgroup_id = s.last_cgroup_id;
        let mut ignored = Vec::new();
        let cgroup = if cgroup_id != 0 {
            cgroup_id
        } else {
            key.cgroup_id
        };
        let known = match self.anchored_only(key.cgroup_id) {
            Some(known) => known,
            None => match self.cgroups.lookup(&self.proc, cgroup, pid, &mut ignored) {
                Lookup::Container(known) => *known,
                Lookup::Host | Lookup::Unplaced => return None,
            },
        };
        let (of, trigger, ok) = match key.kind {
            kind::EXEC => ("host_pidns", Some(Trigger::Exec), None),
            kind::FORK => ("host_pidns", Some(Trigger::Fork), None),
            kind::ATTACH => ("host_pidns", Some(Trigger::CgroupAttach), None),
            kind::SETNS => ("setns", None, Some(key.ok != 0)),
            kind::NEW_PIDNS => ("new_pidns", None, None),
            kind::HOST_ACCESS => ("host_access", None, None),
            _ => return None,
        };
        if known.allowed && of != "setns" && of != "host_access" {
            return None;
        }
        Some(WatchEvent::Aggregate(AggregateEvent {
            of,
            trigger,
            ok,
            nstypes: NS_TYPES
                .iter()
                .filter(|(flag, _)| nstypes & flag != 0)
                .map(|(_, name)| *name)
                .collect(),
            count,
            at: Envelope {
                pid,
                comm: String::new(),
                container: known.identity,
                ts: self.clock.rfc3339(s.last_ns),
            },
            allowed_container: known.allowed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use pidns_ebpf::{AggKey, kind};

    use super::super::testing::*;
    use super::{Aggregates, Suppressed};
    use crate::report::{Trigger, WatchEvent};

    #[test]
    fn budgets_become_one_line_per_container_and_kind() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        let key = AggKey {
            cgroup_id: 10,
            kind: kind::FORK,
            ok: 0,
        };
        let mut agg = Aggregates::default();
        assert!(agg.moved(5));
        assert!(!agg.moved(5));
        assert_eq!(agg.delta(key, 5000), 5000);
        assert_eq!(agg.delta(key, 5200), 200);
        let fork = |key, pid, nstypes| Suppressed {
            key,
            total: 0,
            last_ns: 1_000_000,
            last_pid: pid,
            last_cgroup_id: key.cgroup_id,
            nstypes,
        };
        let Some(WatchEvent::Aggregate(e)) = a.aggregate(&fork(key, 77, 0), 200) else {
            panic!("no line")
        };
        assert_eq!(
            (
                e.of,
                e.trigger,
                e.count,
                e.at.pid,
                e.at.container.id.as_str()
            ),
            ("host_pidns", Some(Trigger::Fork), 200, 77, ID)
        );
        let json = serde_json::to_value(WatchEvent::Aggregate(e)).expect("json");
        assert_eq!(json["event"], "aggregate");
        assert_eq!(json["container_id"], ID);
        // refused setns calls into the host's network namespace
        let setns = AggKey {
            kind: kind::SETNS,
            ..key
        };
        let Some(WatchEvent::Aggregate(e)) = a.aggregate(&fork(setns, 78, NET), 3) else {
            panic!("no line")
        };
        assert_eq!(
            (e.of, e.ok, &e.nstypes[..]),
            ("setns", Some(false), &["net"][..])
        );
        // a host cgroup's budget says nothing
        a.learn(11, b"/system.slice/cron.service");
        let host = AggKey {
            cgroup_id: 11,
            ..key
        };
        assert!(a.aggregate(&fork(host, 79, 0), 9).is_none());
    }
}
