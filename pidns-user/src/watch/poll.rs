//! Without eBPF: the scan engine, every `--interval`. New host-PID processes
//! of sharing containers are reported with trigger `poll`.

use std::collections::HashSet;

use anyhow::Context as _;

use super::{Output, Stop, WatchOptions, clock::now_rfc3339};
use crate::{
    engine,
    report::{Finding, Trigger, WatchEvent},
};

pub async fn run(opts: &WatchOptions, out: &mut Output) -> anyhow::Result<()> {
    let mut stop = Stop::new(opts.duration)?;
    if opts.proc_access {
        eprintln!(
            "pidns watch: --proc-access needs the eBPF probes; polling /proc sees no host access (no signal, ptrace, memory or /proc access is reported)"
        );
    }
    // Polling needs only to read /proc: drop the rest now, before `ready`.
    super::privileges::shed_privileges();
    let report = engine::scan(&opts.scan).context("start-up scan")?;
    out.metrics.scanned(&report);
    let mut seen = HashSet::new();
    for f in Finding::from_scan(&report, Trigger::Scan, &now_rfc3339()) {
        seen.insert((f.at.container.id.clone(), f.at.pid));
        out.emit(&WatchEvent::HostPidns(f));
    }
    let addr = out.metrics_addr.map(|a| a.to_string());
    out.emit(&WatchEvent::ready(
        "procfs",
        Vec::new(),
        Vec::new(),
        &report,
        addr,
        now_rfc3339(),
    ));
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
                for f in Finding::from_scan(&report, Trigger::Poll, &now_rfc3339()) {
                    let key = (f.at.container.id.clone(), f.at.pid);
                    if !seen.contains(&key) {
                        out.emit(&WatchEvent::HostPidns(f));
                    }
                    now.insert(key);
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
