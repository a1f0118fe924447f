//! The eBPF loop: ring buffer → attribution → output and kernel map updates.

use std::{collections::HashSet, time::Duration};

use anyhow::Context as _;

use pidns_ebpf::Event;

use super::{
    Output, Stop, WatchOptions,
    attribute::{Action, Attributor},
    cgroupfs,
    clock::now_rfc3339,
    ebpf::Probes,
};
use crate::{
    engine,
    procfs::ProcRoot,
    report::{ContainerKey, Finding, HostPidns, MissingProbe, Trigger, WatchEvent},
};

const MAX_CGROUPS_WALKED: usize = 200_000;

/// The loop's state besides the probes: what has been reported, so that a
/// rescan reports only what the probes missed.
struct Loop<'a> {
    probes: Probes,
    out: &'a mut Output,
    /// (container id, pid) of every host-PID process reported so far.
    reported: HashSet<(String, u32)>,
}

/// Lines written in one drain before they are flushed, so that a long drain
/// does not hold the first lines back.
const FLUSH_EVERY: usize = 64;

impl Loop<'_> {
    /// Carries actions out. `ktime_ns` is when the kernel event behind them
    /// happened (CLOCK_MONOTONIC); findings then get their `latency_us`
    /// stamped as their line is written.
    fn apply(&mut self, actions: Vec<Action>, ktime_ns: Option<u64>) {
        for a in actions {
            match a {
                Action::Emit(e) => {
                    if let WatchEvent::HostPidns(f) = e.as_ref() {
                        self.reported.insert((f.at.container.id.clone(), f.at.pid));
                    }
                    match ktime_ns {
                        Some(k) => self.out.emit_kernel_event(*e, k),
                        None => self.out.emit(&e),
                    }
                }
                Action::Classify { cgroup_id, class } => self.probes.classify(cgroup_id, class),
                Action::TrackTask { pid } => self.probes.track(pid),
                Action::Gone(c) => self.out.metrics.gone(&c),
            }
        }
    }

    /// Takes every record now in the ring buffer, one at a time: each is
    /// attributed and written before the next is read, so a record's latency
    /// is its own, not the batch's. Returns how many records there were.
    fn drain(&mut self, attr: &mut Attributor) -> anyhow::Result<usize> {
        let mut n = 0;
        // Each record is copied out, which hands its slot back to the kernel.
        while let Some(next) = self
            .probes
            .ring
            .get_mut()
            .next()
            .map(|item| Event::decode(&item))
        {
            n += 1;
            let Some(ev) = next else { continue };
            let actions = attr.handle(&ev);
            self.apply(actions, Some(ev.ktime_ns));
            if n % FLUSH_EVERY == 0 {
                self.out.flush().context("writing to stdout")?;
            }
        }
        self.out.metrics.set_unattributed(attr.unattributed());
        Ok(n)
    }

    /// A full scan: the metrics gauge follows it, and host-PID processes the
    /// probes did not report (lost events, an agent restart) are reported now.
    fn rescan(&mut self, opts: &WatchOptions) {
        let report = match engine::scan(&opts.scan) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("pidns watch: rescan failed: {e}");
                return;
            }
        };
        self.out.metrics.scanned(&report);
        let mut current = HashSet::new();
        let mut fresh = Vec::new();
        for f in Finding::from_scan(&report, Trigger::Scan, &now_rfc3339()) {
            let key = (f.at.container.id.clone(), f.at.pid);
            if !self.reported.contains(&key) {
                fresh.push(f);
            }
            current.insert(key);
        }
        self.report_scanned(fresh);
        // Exited processes drop out, so a reused pid is reported again.
        self.reported = current;
    }

    /// Reports findings of a full scan, and has the kernel report their
    /// processes' children.
    fn report_scanned(&mut self, findings: Vec<Finding>) {
        let actions = findings
            .into_iter()
            .flat_map(|f| {
                let pid = f.at.pid;
                [
                    Action::emit(WatchEvent::HostPidns(f)),
                    Action::TrackTask { pid },
                ]
            })
            .collect();
        self.apply(actions, None);
    }
}

pub async fn run(
    opts: &WatchOptions,
    proc: ProcRoot,
    host: HostPidns,
    own: Option<ContainerKey>,
    mut probes: Probes,
    out: &mut Output,
) -> anyhow::Result<()> {
    let mut stop = Stop::new(opts.duration)?;
    // The probes are attached (and any tracefs pidns mounted is unmounted
    // again): from here on, reading /proc and the maps' fds is all it takes.
    // Dropped before `ready`, so that `ready` means attached and least-privileged.
    super::privileges::shed_privileges();
    let mut attr = Attributor::new(
        proc,
        opts.scan.allow.clone(),
        own,
        opts.scan.names.clone(),
        opts.host_root.clone(),
        &host,
    );
    classify_existing(opts, &mut attr, &mut probes);
    let missing = missing_probes(&probes);

    let report = engine::scan(&opts.scan).context("start-up scan")?;
    out.metrics.scanned(&report);
    let attached = probes.attached.clone();
    let mut lp = Loop {
        probes,
        out,
        reported: HashSet::new(),
    };
    lp.report_scanned(Finding::from_scan(&report, Trigger::Scan, &now_rfc3339()).collect());
    let addr = lp.out.metrics_addr.map(|a| a.to_string());
    lp.out.emit(&WatchEvent::ready(
        "ebpf",
        attached,
        missing,
        &report,
        addr,
        now_rfc3339(),
    ));
    lp.out.flush().context("writing to stdout")?;

    // Counted from zero: events lost while the start-up scan ran are lost
    // too, and reading a baseline here would race with a burst that fills
    // the ring between `ready` and this line.
    let mut lost_seen = 0;
    lp.watch(opts, &mut attr, &mut stop, &mut lost_seen).await?;
    // Flush what the kernel already handed over, then detach (dropping the probes).
    lp.drain(&mut attr)?;
    report_lost(&lp.probes, &mut lost_seen, lp.out);
    lp.out.emit(&attr.stats(lost_seen));
    lp.out.flush().context("writing to stdout")?;
    drop(lp);
    Ok(())
}

impl Loop<'_> {
    /// Until stopped: drain the ring buffer as it fills, report lost
    /// events each second, and rescan if asked to.
    async fn watch(
        &mut self,
        opts: &WatchOptions,
        attr: &mut Attributor,
        stop: &mut Stop,
        lost_seen: &mut u64,
    ) -> anyhow::Result<()> {
        let mut lost_tick = tokio::time::interval(Duration::from_secs(1));
        let mut rescan = opts
            .rescan
            .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
        // The kernel wakes us at most once a millisecond per CPU; after a drain
        // that found events, drain again shortly for those that did not wake us.
        let drain_after = Duration::from_nanos(pidns_ebpf::DRAIN_AFTER_NS);
        let mut backstop: Option<tokio::time::Instant> = None;
        loop {
            let backstop_due = async {
                match backstop {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let rescan_due = async {
                match rescan.as_mut() {
                    Some(every) => {
                        every.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                guard = self.probes.ring.readable_mut() => {
                    // Readiness is cleared before draining: a record that arrives
                    // during the drain wakes us again instead of waiting.
                    guard.context("waiting on the ring buffer")?.clear_ready();
                    self.drain(attr)?;
                    backstop = Some(tokio::time::Instant::now() + drain_after);
                }
                () = backstop_due => {
                    let n = self.drain(attr)?;
                    backstop = (n > 0).then(|| tokio::time::Instant::now() + drain_after);
                }
                () = rescan_due => self.rescan(opts),
                _ = lost_tick.tick() => report_lost(&self.probes, lost_seen, self.out),
                () = stop.wait() => return Ok(()),
            }
            self.out.flush().context("writing to stdout")?;
        }
    }
}

/// Classifies every cgroup that exists now; new ones arrive as mkdir events.
fn classify_existing(opts: &WatchOptions, attr: &mut Attributor, probes: &mut Probes) {
    match opts
        .cgroup_root
        .as_deref()
        .map(cgroupfs::resolve_root)
        .or_else(cgroupfs::unified_mount)
    {
        Some(root) => {
            attr.set_cgroup_root(root.clone());
            for (id, path) in cgroupfs::walk(&root, MAX_CGROUPS_WALKED) {
                if let Some(Action::Classify { cgroup_id, class }) = attr.learn(id, &path) {
                    probes.classify(cgroup_id, class);
                }
            }
        }
        None => eprintln!(
            "pidns watch: no cgroup v2 hierarchy mounted here (--cgroup-root); existing cgroups are classified as their processes show up"
        ),
    }
}

/// The optional probes that could not be attached, each said on stderr
/// with what goes unseen without it.
fn missing_probes(probes: &Probes) -> Vec<MissingProbe> {
    let missing: Vec<MissingProbe> = probes
        .skipped
        .iter()
        .map(|(name, why)| MissingProbe::new(name, why))
        .collect();
    for m in &missing {
        eprintln!(
            "pidns watch: optional probe {} not attached, so {} will not be reported: {}{}",
            m.probe,
            m.unseen,
            m.reason,
            if m.probe.starts_with("sys_") {
                " (syscall tracepoints need tracefs: mount it on the host with `mount -t tracefs nodev /sys/kernel/tracing`, or let pidns mount it with CAP_SYS_ADMIN)"
            } else {
                ""
            }
        );
    }
    missing
}

fn report_lost(probes: &Probes, seen: &mut u64, out: &mut Output) {
    let total = probes.lost();
    if total > *seen {
        out.emit(&WatchEvent::Lost {
            count: total - *seen,
            total,
            ts: now_rfc3339(),
        });
        *seen = total;
    }
}
