//! What the loop does on a clock rather than on a record: lost events,
//! the budgets' aggregate lines, host access repeats, the setns filter's
//! upkeep, and `--rescan`.

use std::collections::HashSet;

use pidns_ebpf::stream;

use super::Loop;
use crate::{
    engine,
    report::{Finding, Trigger, WatchEvent},
    watch::{WatchOptions, attribute::Attributor, clock::now_rfc3339},
};

impl Loop<'_> {
    /// Once a second: lost events, the budgets' counts, the filter's upkeep.
    pub(super) fn tick(&mut self, attr: &mut Attributor) {
        self.report_lost();
        self.out.metrics.set_kernel_enforced(self.probes.enforced());
        self.flush_aggregates(attr);
        self.flush_host_access(attr);
        self.filter.tick(&mut self.probes);
    }

    /// The kernel's counts of repeated host accesses, then one aggregate
    /// line per container and op of the interval.
    pub(super) fn flush_host_access(&mut self, attr: &mut Attributor) {
        if self.access_repeats.moved(self.probes.access_repeats()) {
            let counts = self.probes.access_counts();
            for &(key, total) in &counts {
                let n = self.access_repeats.delta(key, total);
                if n > 0 {
                    attr.host_access_repeats(key, n);
                }
            }
            self.access_repeats
                .retain(&counts.iter().map(|(k, _)| *k).collect());
        }
        for e in attr.host_access_interval(1) {
            self.out.emit(&e);
        }
    }

    /// One `aggregate` line per container and kind whose budget held events
    /// back since the last one.
    pub(super) fn flush_aggregates(&mut self, attr: &mut Attributor) {
        if !self.aggregates.moved(self.probes.suppressed()) {
            return;
        }
        for s in self.probes.aggregates() {
            let count = self.aggregates.delta(s.key, s.total);
            if let Some(e) = attr.aggregate(&s, count) {
                self.out.emit(&e);
            }
        }
    }

    pub(super) fn report_lost(&mut self) {
        let totals = self.probes.lost();
        for (i, &total) in totals.iter().enumerate() {
            if total > self.lost_seen[i] {
                self.out.emit(&WatchEvent::Lost {
                    stream: stream::NAMES[i],
                    count: total - self.lost_seen[i],
                    total,
                    ts: now_rfc3339(),
                });
                self.lost_seen[i] = total;
            }
        }
    }

    /// A full scan: the metrics gauge follows it, and host-PID processes the
    /// probes did not report (lost events, an agent restart) are reported now.
    pub(super) fn rescan(&mut self, opts: &WatchOptions, attr: &mut Attributor) {
        let report = match engine::scan(&opts.scan) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("pidns watch: rescan failed: {e}");
                return;
            }
        };
        self.out.metrics.scanned(&report);
        let claims = attr.judged_by_scan(&report);
        self.apply(claims, None);
        let mut current = HashSet::new();
        let mut fresh = Vec::new();
        for f in Finding::from_scan(&report, Trigger::Scan, &now_rfc3339()) {
            let key = (f.at.container.id.clone(), f.at.pid);
            if !self.reported.contains(&key) {
                fresh.push(f);
            }
            current.insert(key);
        }
        let actions = attr.scanned(fresh);
        self.apply(actions, None);
        // Exited processes drop out, so a reused pid is reported again.
        self.reported = current;
    }
}
