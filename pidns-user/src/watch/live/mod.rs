//! The eBPF loop: the two ring buffers → attribution → output and kernel
//! map updates; each second, lost events by stream, the budgets' aggregate
//! lines and the setns filter's upkeep.
//!
//! `run` starts it (start-up scan, `ready`) and ends it (last drain,
//! `stats`); [`records`] takes the kernel's records, [`periodic`] does the
//! once-a-second and rescan work, [`wait`] is the loop itself, and
//! [`startup`] classifies the cgroups that exist before it.

mod periodic;
mod records;
mod startup;
mod wait;

use std::collections::HashSet;

use anyhow::Context as _;

use pidns_ebpf::stream;

use super::{
    Output, Stop, WatchOptions,
    attribute::{Aggregates, Attributor, Counts},
    clock::now_rfc3339,
    ebpf::Probes,
    enforce::AgentKills,
    filter::HostNsFilter,
    hostns::HostNamespaces,
};
use crate::{
    engine,
    procfs::ProcRoot,
    report::{ContainerKey, Finding, HostPidns, Trigger, WatchEvent},
};

/// rescan reports only what the probes missed.
struct Loop<'a> {
    probes: Probes,
    proc: ProcRoot,
    out: &'a mut Output,
    /// (container id, pid) of every host-PID process reported so far,
    /// kept for `--rescan` (`rescans`) only.
    reported: HashSet<(String, u32)>,
    rescans: bool,
    filter: HostNsFilter,
    aggregates: Aggregates,
    access_repeats: Counts<pidns_ebpf::AccessKey>,
    /// Lost events already reported, by stream.
    lost_seen: [u64; stream::COUNT],
    /// Whether a full `CGROUPS` map was said on stderr.
    cgroups_full_said: bool,
    /// `--enforce`, for the findings the kernel could not kill itself.
    enforcer: AgentKills,
}

/// Watches until stopped: the start-up scan's findings, `ready`, the loop,
/// then what the kernel already handed over and the closing `stats`.
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
    // Killing a process of another uid takes CAP_KILL.
    let keep: &[caps::Capability] = if opts.enforce.any() {
        &[caps::Capability::CAP_KILL]
    } else {
        &[]
    };
    super::privileges::shed_privileges_keeping(keep);
    let mut attr = Attributor::new(
        proc.clone(),
        opts.scan.allow.clone(),
        opts.allow_setns.clone(),
        own,
        opts.scan.names.clone(),
        opts.host_root.clone(),
        &host,
    );
    attr.set_state_root(opts.scan.state_root.clone());
    let filter = HostNsFilter::start(
        proc.clone(),
        opts.host_root.clone(),
        &HostNamespaces::find(&proc, &host),
        &mut probes,
    );
    let enforcer = AgentKills {
        enforce: opts.enforce,
        proc: proc.clone(),
        host_inode: host.inode,
        starting: true,
    };
    let mut lp = Loop {
        proc: proc.clone(),
        enforcer,
        probes,
        out,
        reported: HashSet::new(),
        rescans: opts.rescan.is_some(),
        filter,
        aggregates: Aggregates::default(),
        access_repeats: Counts::default(),
        // Counted from zero: events lost while the start-up scan ran are
        // lost too, and reading a baseline here would race with a burst
        // that fills a ring between `ready` and this line.
        lost_seen: [0; stream::COUNT],
        cgroups_full_said: false,
    };
    lp.classify_existing(opts, &mut attr);
    let missing = startup::missing_probes(&lp.probes);

    let report = engine::scan(&opts.scan).context("start-up scan")?;
    lp.out.metrics.scanned(&report);
    let attached = lp.probes.attached.clone();
    // The scan's verdicts on claims, then its findings, each tracked by
    // the kernel with its container's anchor.
    let claims = attr.judged_by_scan(&report);
    lp.apply(claims, None);
    let found = attr.scanned(Finding::from_scan(&report, Trigger::Scan, &now_rfc3339()).collect());
    lp.apply(found, None);
    lp.enforcer.starting = false;
    let addr = lp.out.metrics_addr.map(|a| a.to_string());
    lp.out.emit(
        &WatchEvent::ready("ebpf", attached, missing, &report, addr, now_rfc3339())
            .with_enforce(opts.enforce.names()),
    );
    lp.out.flush().context("writing to stdout")?;

    lp.watch(opts, &mut attr, &mut stop).await?;
    // Flush what the kernel already handed over, then detach (dropping the probes).
    lp.drain_all(&mut attr)?;
    lp.report_lost();
    lp.flush_aggregates(&mut attr);
    lp.flush_host_access(&mut attr);
    let lost = lp.lost_seen.iter().sum();
    lp.out.emit(&attr.stats(lost));
    lp.out.flush().context("writing to stdout")?;
    drop(lp);
    Ok(())
}
