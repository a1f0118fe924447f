//! The eBPF loop: ring buffer → attribution → output and kernel map updates.

use std::{collections::HashSet, time::Duration};

use anyhow::Context as _;

use super::{
    Output, Stop, WatchOptions,
    attribute::{Action, Attributor, decode, monotonic_ns, now_rfc3339},
    cgroupfs,
    ebpf::Probes,
    events::{MissingProbe, Trigger, WatchEvent},
};
use crate::{engine, procfs::ProcRoot, report::HostPidns};

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
                        self.reported
                            .insert((f.container.container_id.clone(), f.pid));
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
        while let Some(next) = self.probes.ring.get_mut().next().map(|item| decode(&item)) {
            n += 1;
            let Some(ev) = next else { continue };
            let actions = attr.handle(&ev, monotonic_ns());
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
        let mut actions = Vec::new();
        for a in Attributor::scan_findings(&report, Trigger::Scan) {
            if let Action::Emit(e) = &a
                && let WatchEvent::HostPidns(f) = e.as_ref()
            {
                let key = (f.container.container_id.clone(), f.pid);
                let new = !self.reported.contains(&key);
                current.insert(key);
                if !new {
                    continue;
                }
            }
            actions.push(a);
        }
        self.apply(actions, None);
        // Exited processes drop out, so a reused pid is reported again.
        self.reported = current;
    }
}

pub async fn run(
    opts: &WatchOptions,
    proc: ProcRoot,
    host: HostPidns,
    mut probes: Probes,
    out: &mut Output,
) -> anyhow::Result<()> {
    let mut stop = Stop::new(opts.duration)?;
    // The probes are attached (and any tracefs pidns mounted is unmounted
    // again): from here on, reading /proc and the maps' fds is all it takes.
    // Dropped before `ready`, so that `ready` means attached and least-privileged.
    super::shed_privileges();
    let mut attr = Attributor::new(
        proc,
        opts.scan.allow.clone(),
        opts.scan.names.clone(),
        opts.host_root.clone(),
        &host,
    );
    // Classify every cgroup that exists now; new ones arrive as mkdir events.
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

    let report = engine::scan(&opts.scan).context("start-up scan")?;
    out.metrics.scanned(&report);
    let attached = probes.attached.clone();
    let mut lp = Loop {
        probes,
        out,
        reported: HashSet::new(),
    };
    lp.apply(Attributor::scan_findings(&report, Trigger::Scan), None);
    lp.out.emit(&WatchEvent::Ready {
        mode: "ebpf",
        probes: attached,
        probes_missing: missing,
        host_pidns: report.host_pidns.clone(),
        containers: report.summary.containers,
        sharing: report.summary.sharing,
        metrics_addr: lp.out.metrics_addr.map(|a| a.to_string()),
        pidns_version: env!("CARGO_PKG_VERSION"),
        ts: now_rfc3339(),
    });
    lp.out.flush().context("writing to stdout")?;

    // Counted from zero: events lost while the start-up scan ran are lost
    // too, and reading a baseline here would race with a burst that fills
    // the ring between `ready` and this line.
    let mut lost_seen = 0;
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
            guard = lp.probes.ring.readable_mut() => {
                // Readiness is cleared before draining: a record that arrives
                // during the drain wakes us again instead of waiting.
                guard.context("waiting on the ring buffer")?.clear_ready();
                lp.drain(&mut attr)?;
                backstop = Some(tokio::time::Instant::now() + drain_after);
            }
            () = backstop_due => {
                let n = lp.drain(&mut attr)?;
                backstop = (n > 0).then(|| tokio::time::Instant::now() + drain_after);
            }
            () = rescan_due => lp.rescan(opts),
            _ = lost_tick.tick() => report_lost(&lp.probes, &mut lost_seen, lp.out),
            () = stop.wait() => break,
        }
        lp.out.flush().context("writing to stdout")?;
    }
    // Flush what the kernel already handed over, then detach (dropping the probes).
    lp.drain(&mut attr)?;
    report_lost(&lp.probes, &mut lost_seen, lp.out);
    lp.out.emit(&attr.stats(lost_seen));
    lp.out.flush().context("writing to stdout")?;
    drop(lp);
    Ok(())
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
