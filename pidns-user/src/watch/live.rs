//! The eBPF loop: ring buffer → attribution → output and kernel map updates.

use std::time::Duration;

use anyhow::Context as _;

use super::{
    Output, Stop, WatchOptions,
    attribute::{Action, Attributor, decode, monotonic_ns, now_rfc3339},
    cgroupfs,
    ebpf::Probes,
    events::{Trigger, WatchEvent},
};
use crate::{engine, procfs::ProcRoot, report::HostPidns};

const MAX_CGROUPS_WALKED: usize = 200_000;

fn apply(actions: Vec<Action>, probes: &mut Probes, out: &mut Output) {
    for a in actions {
        match a {
            Action::Emit(e) => out.emit(&e),
            Action::Classify { cgroup_id, class } => probes.classify(cgroup_id, class),
            Action::TrackTask { pid } => probes.track(pid),
        }
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
    let mut attr = Attributor::new(
        proc,
        opts.scan.allow.clone(),
        opts.scan.names.clone(),
        opts.host_root.clone(),
        host.inode.unwrap_or(0),
    );
    // Classify every cgroup that exists now; new ones arrive as mkdir events.
    match opts.cgroup_root.clone().or_else(cgroupfs::unified_mount) {
        Some(root) => {
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
    for (name, why) in &probes.skipped {
        eprintln!("pidns watch: optional probe {name} not attached: {why}");
    }

    let report = engine::scan(&opts.scan).context("start-up scan")?;
    apply(
        Attributor::scan_findings(&report, Trigger::Scan),
        &mut probes,
        out,
    );
    out.emit(&WatchEvent::Ready {
        mode: "ebpf",
        probes: probes.attached.clone(),
        host_pidns: report.host_pidns.clone(),
        containers: report.summary.containers,
        sharing: report.summary.sharing,
        pidns_version: env!("CARGO_PKG_VERSION"),
        ts: now_rfc3339(),
    });
    out.flush().context("writing to stdout")?;

    let mut lost_seen = probes.lost();
    let mut lost_tick = tokio::time::interval(Duration::from_secs(1));
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
        tokio::select! {
            guard = probes.ring.readable_mut() => {
                let mut guard = guard.context("waiting on the ring buffer")?;
                let actions = take(&mut attr, guard.get_inner_mut());
                guard.clear_ready();
                backstop = Some(tokio::time::Instant::now() + drain_after);
                apply(actions, &mut probes, out);
                out.flush().context("writing to stdout")?;
            }
            () = backstop_due => {
                let actions = take(&mut attr, probes.ring.get_mut());
                backstop = (!actions.is_empty()).then(|| tokio::time::Instant::now() + drain_after);
                apply(actions, &mut probes, out);
                out.flush().context("writing to stdout")?;
            }
            _ = lost_tick.tick() => {
                report_lost(&probes, &mut lost_seen, out);
                out.flush().context("writing to stdout")?;
            }
            () = stop.wait() => break,
        }
    }
    // Flush what the kernel already handed over, then detach (dropping the probes).
    let actions = take(&mut attr, probes.ring.get_mut());
    apply(actions, &mut probes, out);
    report_lost(&probes, &mut lost_seen, out);
    out.flush().context("writing to stdout")?;
    drop(probes);
    Ok(())
}

fn take(attr: &mut Attributor, ring: &mut aya::maps::RingBuf<aya::maps::MapData>) -> Vec<Action> {
    let now = monotonic_ns();
    let mut actions = Vec::new();
    Probes::drain(ring, |bytes| {
        if let Some(ev) = decode(bytes) {
            actions.extend(attr.handle(&ev, now));
        }
    });
    actions
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
