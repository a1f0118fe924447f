//! Without eBPF: the scan engine, every `--interval`. New host-PID processes
//! of sharing containers are reported with trigger `poll`.

use std::collections::HashSet;

use anyhow::Context as _;

use super::{
    Output, Stop, WatchOptions,
    attribute::{Action, Attributor, now_rfc3339},
    events::{Trigger, WatchEvent},
};
use crate::engine;

fn host_processes(actions: Vec<Action>) -> Vec<(String, u32, WatchEvent)> {
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Emit(e) => match *e {
                WatchEvent::HostPidns(f) => Some((
                    f.container.container_id.clone(),
                    f.pid,
                    WatchEvent::HostPidns(f),
                )),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

pub async fn run(opts: &WatchOptions, out: &mut Output) -> anyhow::Result<()> {
    let mut stop = Stop::new(opts.duration)?;
    // Polling needs only to read /proc: drop the rest now, before `ready`.
    super::shed_privileges();
    let report = engine::scan(&opts.scan).context("start-up scan")?;
    out.metrics.scanned(&report);
    let mut seen = HashSet::new();
    for (id, pid, event) in host_processes(Attributor::scan_findings(&report, Trigger::Scan)) {
        out.emit(&event);
        seen.insert((id, pid));
    }
    out.emit(&WatchEvent::Ready {
        mode: "procfs",
        probes: Vec::new(),
        probes_missing: Vec::new(),
        host_pidns: report.host_pidns.clone(),
        containers: report.summary.containers,
        sharing: report.summary.sharing,
        metrics_addr: out.metrics_addr.map(|a| a.to_string()),
        pidns_version: env!("CARGO_PKG_VERSION"),
        ts: now_rfc3339(),
    });
    out.flush().context("writing to stdout")?;

    let mut tick = tokio::time::interval(opts.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let report = match engine::scan(&opts.scan) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("pidns watch: scan failed: {e}");
                        continue;
                    }
                };
                out.metrics.scanned(&report);
                let mut now = HashSet::new();
                for (id, pid, event) in host_processes(Attributor::scan_findings(&report, Trigger::Poll)) {
                    if !seen.contains(&(id.clone(), pid)) {
                        out.emit(&event);
                    }
                    now.insert((id, pid));
                }
                seen = now;
                out.flush().context("writing to stdout")?;
            }
            () = stop.wait() => break,
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(())
}
