//! The eBPF loop: the two ring buffers → attribution → output and kernel
//! map updates; each second, lost events by stream, the budgets' aggregate
//! lines and the setns filter's upkeep.

use std::{collections::HashSet, time::Duration};

use anyhow::Context as _;

use pidns_ebpf::{Event, stream};

use super::{
    Output, Stop, WatchOptions,
    attribute::{Action, Aggregates, Attributor, Counts},
    cgroupfs,
    clock::now_rfc3339,
    ebpf::Probes,
    enforce::AgentKills,
    filter::HostNsFilter,
    hostns::HostNamespaces,
};
use crate::{
    engine,
    procfs::ProcRoot,
    report::{ContainerKey, Finding, HostPidns, MissingProbe, Trigger, WatchEvent},
};

/// The loop's state besides the probes: what has been reported, so that a
/// rescan reports only what the probes missed.
struct Loop<'a> {
    probes: Probes,
    proc: ProcRoot,
    out: &'a mut Output,
    /// (container id, pid) of every host-PID process reported so far.
    reported: HashSet<(String, u32)>,
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
                Action::Emit(mut e) => {
                    if let WatchEvent::HostPidns(f) = e.as_mut() {
                        self.reported.insert((f.at.container.id.clone(), f.at.pid));
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

    /// Takes every record now in the ring buffers, findings first, one at a
    /// time: each is attributed and written before the next is read, so a
    /// record's latency is its own, not the batch's. Returns how many
    /// records there were.
    fn drain(&mut self, attr: &mut Attributor) -> anyhow::Result<usize> {
        let mut n = self.drain_one(attr, stream::FINDINGS)?;
        n += self.drain_one(attr, stream::OTHER)?;
        self.out.metrics.set_unattributed(attr.unattributed());
        Ok(n)
    }

    fn drain_one(&mut self, attr: &mut Attributor, which: u32) -> anyhow::Result<usize> {
        let mut n = 0;
        loop {
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

    /// Once a second: lost events, the budgets' counts, the filter's upkeep.
    fn tick(&mut self, attr: &mut Attributor) {
        self.report_lost();
        self.out.metrics.set_kernel_enforced(self.probes.enforced());
        self.flush_aggregates(attr);
        self.flush_host_access(attr);
        self.filter.tick(&mut self.probes);
    }

    /// The kernel's counts of repeated host accesses, then one aggregate
    /// line per container and op of the interval.
    fn flush_host_access(&mut self, attr: &mut Attributor) {
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
    fn flush_aggregates(&mut self, attr: &mut Attributor) {
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

    fn report_lost(&mut self) {
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

    fn say_cgroups_full(&mut self) {
        if !self.cgroups_full_said {
            self.cgroups_full_said = true;
            eprintln!(
                "pidns watch: the kernel's cgroup map is full (--max-cgroups): cgroups beyond it stay unclassified in the kernel, so their events come to user space, which judges them from its own table (nothing goes unreported; host processes in those cgroups cost more, and their events share the findings ring)"
            );
        }
    }

    /// A full scan: the metrics gauge follows it, and host-PID processes the
    /// probes did not report (lost events, an agent restart) are reported now.
    fn rescan(&mut self, opts: &WatchOptions, attr: &mut Attributor) {
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
    let missing = missing_probes(&lp.probes);

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
    lp.drain(&mut attr)?;
    lp.report_lost();
    lp.flush_aggregates(&mut attr);
    lp.flush_host_access(&mut attr);
    let lost = lp.lost_seen.iter().sum();
    lp.out.emit(&attr.stats(lost));
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
                biased;
                guard = self.probes.findings.readable_mut() => {
                    // Readiness is cleared before draining: a record that arrives
                    // during the drain wakes us again instead of waiting.
                    guard.context("waiting on the findings ring")?.clear_ready();
                    self.drain(attr)?;
                    backstop = Some(tokio::time::Instant::now() + drain_after);
                }
                guard = self.probes.other.readable_mut() => {
                    guard.context("waiting on the other ring")?.clear_ready();
                    self.drain(attr)?;
                    backstop = Some(tokio::time::Instant::now() + drain_after);
                }
                () = backstop_due => {
                    let n = self.drain(attr)?;
                    backstop = (n > 0).then(|| tokio::time::Instant::now() + drain_after);
                }
                () = rescan_due => self.rescan(opts, attr),
                _ = lost_tick.tick() => self.tick(attr),
                () = stop.wait() => return Ok(()),
            }
            self.out.flush().context("writing to stdout")?;
        }
    }
}

impl Loop<'_> {
    /// Classifies every cgroup that exists now (as many as the kernel's map
    /// holds); new ones arrive as mkdir events.
    fn classify_existing(&mut self, opts: &WatchOptions, attr: &mut Attributor) {
        let Some(root) = opts
            .cgroup_root
            .as_deref()
            .map(cgroupfs::resolve_root)
            .or_else(cgroupfs::unified_mount)
        else {
            eprintln!(
                "pidns watch: no cgroup v2 hierarchy mounted here (--cgroup-root); existing cgroups are classified as their processes show up"
            );
            return;
        };
        attr.set_cgroup_root(root.clone());
        let limit = opts.max_cgroups as usize;
        let walked = cgroupfs::walk(&root, limit);
        if walked.len() >= limit {
            eprintln!(
                "pidns watch: more than {limit} cgroups (--max-cgroups): those beyond are classified as their processes show up"
            );
        }
        for (id, path) in walked {
            if let Some(Action::Classify {
                cgroup_id,
                class,
                container,
            }) = attr.learn(id, &path)
                && !self.probes.classify(cgroup_id, class, container)
            {
                self.say_cgroups_full();
            }
        }
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
