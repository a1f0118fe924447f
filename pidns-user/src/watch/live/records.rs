//! The kernel's records: each attributed and its actions carried out
//! (lines written, kernel maps updated) before the next is read.

use anyhow::Context as _;

use pidns_ebpf::{Event, stream};

use super::Loop;
use crate::{
    report::WatchEvent,
    watch::attribute::{Action, Attributor},
};

/// Lines written in one drain before they are flushed, so that a long drain
/// does not hold the first lines back.
const FLUSH_EVERY: usize = 64;

/// Records taken from one ring in one drain: a flood of one ring (a
/// container making and removing cgroups as fast as it can) cannot keep
/// the loop from the other ring, the once-a-second work or a stop.
const MAX_PER_DRAIN: usize = 512;

/// Reported host-PID processes remembered for `--rescan` before the exited
/// ones are let go.
const MAX_REMEMBERED: usize = 65_536;

impl Loop<'_> {
    /// Carries actions out. `ktime_ns` is when the kernel event behind them
    /// happened (CLOCK_MONOTONIC); findings then get their `latency_us`
    /// stamped as their line is written.
    pub(super) fn apply(&mut self, actions: Vec<Action>, ktime_ns: Option<u64>) {
        for a in actions {
            match a {
                Action::Emit(mut e) => {
                    if let WatchEvent::HostPidns(f) = e.as_mut() {
                        self.remember(f.at.container.id.clone(), f.at.pid);
                        self.enforcer.finding(f);
                    }
                    match ktime_ns {
                        Some(k) => self.out.emit_kernel_event(*e, k),
                        None => self.out.emit(&e),
                    }
                }
                Action::Classify {
                    cgroup_id,
                    class,
                    container,
                } => {
                    if !self.probes.classify(cgroup_id, class, container) {
                        self.say_cgroups_full();
                    }
                }
                Action::NsCreated { inum, nstype } => self.filter.created(inum, nstype),
                Action::TrackTask { pid, anchor } => self.track(pid, anchor, false),
                Action::TrackOutside { pid, anchor } => self.track(pid, anchor, true),
                Action::Gone(c) => self.out.metrics.gone(&c),
            }
        }
    }

    /// Notes a reported host-PID process, for a rescan to tell what the
    /// probes missed; without `--rescan` nobody asks. A fork storm reports
    /// a pid a fork: past [`MAX_REMEMBERED`], the exited are forgotten
    /// (a rescan then reports again at most those whose pid came back).
    fn remember(&mut self, container: String, pid: u32) {
        if !self.rescans {
            return;
        }
        if self.reported.len() >= MAX_REMEMBERED {
            let proc = &self.proc;
            self.reported.retain(|(_, pid)| proc.exists(*pid));
        }
        self.reported.insert((container, pid));
    }

    /// Takes the records now in the ring buffers, findings first, one at a
    /// time: each is attributed and written before the next is read, so a
    /// record's latency is its own, not the batch's. At most
    /// [`MAX_PER_DRAIN`] of each ring: the rest wait for the next turn of
    /// the loop (the backstop comes back for them). Returns how many
    /// records there were.
    pub(super) fn drain(&mut self, attr: &mut Attributor) -> anyhow::Result<usize> {
        let mut n = self.drain_one(attr, stream::FINDINGS)?;
        n += self.drain_one(attr, stream::OTHER)?;
        self.out.metrics.set_unattributed(attr.unattributed());
        Ok(n)
    }

    /// At the end: what the kernel already handed over, drained until the
    /// rings are empty (or, under a flood that never stops, a bounded
    /// number of rounds).
    pub(super) fn drain_all(&mut self, attr: &mut Attributor) -> anyhow::Result<()> {
        for _ in 0..64 {
            if self.drain(attr)? == 0 {
                break;
            }
        }
        Ok(())
    }

    fn drain_one(&mut self, attr: &mut Attributor, which: u32) -> anyhow::Result<usize> {
        let mut n = 0;
        while n < MAX_PER_DRAIN {
            let ring = if which == stream::FINDINGS {
                &mut self.probes.findings
            } else {
                &mut self.probes.other
            };
            // Each record is copied out, which hands its slot back to the kernel.
            let Some(next) = ring.get_mut().next().map(|item| Event::decode(&item)) else {
                break;
            };
            n += 1;
            let Some(ev) = next else { continue };
            let actions = attr.handle(&ev);
            self.apply(actions, Some(ev.ktime_ns));
            if n % FLUSH_EVERY == 0 {
                self.out.flush().context("writing to stdout")?;
            }
        }
        Ok(n)
    }

    /// Marks a container process in the kernel's task map, unless it is
    /// exiting or gone by then: its exit hook, which takes the entry out
    /// again, may already have run (a process the agent has just killed, a
    /// short-lived one), and a stale entry would hand its container to
    /// whatever process gets the pid next, a host process included, for
    /// `--enforce` to kill. Checked after the insert: a process that was not
    /// exiting then runs its exit hook after it.
    fn track(&mut self, pid: u32, anchor: u64, outside: bool) {
        self.probes.track(pid, anchor, outside);
        if self.proc.group_exiting(pid) {
            self.probes.untrack(pid);
        }
    }

    pub(super) fn say_cgroups_full(&mut self) {
        if !self.cgroups_full_said {
            self.cgroups_full_said = true;
            eprintln!(
                "pidns watch: the kernel's cgroup map is full (--max-cgroups): cgroups beyond it stay unclassified in the kernel, so their events come to user space, which judges them from its own table (nothing goes unreported; host processes in those cgroups cost more, and their events share the findings ring)"
            );
        }
    }
}
