//! `cargo xtask bench`: scan throughput and scaling, and the cost of watch,
//! measured side by side in one run. Benchmarks, not tests: no number fails
//! the run (targets are reported as met or missed), but a wrong answer does:
//! when the scan's findings or watch's findings differ from the truth the
//! bench created, it says so and exits non-zero, so the CI smoke run catches
//! a regression.
//!
//! 1. Scan on a loaded host: fake Docker containers as real cgroups
//!    (`/docker/<64 hex>` in the unified hierarchy and the v1 ones), each with
//!    processes half in the host PID namespace (in a mount namespace and on a
//!    root of their own, as a container's) and half in their own PID
//!    namespace (`unshare -p -f`), joining the cgroup from inside. `pidns
//!    scan`, `ps -e -o pid,pidns,cgroup`, `lsns -t pid` and a floor (one
//!    cgroup read per process, then one ns readlink for a container's or one
//!    stat of the root for any other) run alternately; medians and ratios
//!    are reported, and the scan's findings are checked against the truth.
//! 2. Scaling: the same at about 1k, 5k and 20k processes.
//! 3. The cost of watch: a fork()+execve() storm with and without `pidns watch`.
//! 4. Latency and loss: a fork()+execve() storm inside a host-PID fake
//!    container, alternating without and with the agent; latency from watch's
//!    own `latency_us` (kernel event to its line being written) and as the
//!    bench reads the lines; the findings are checked against the execs; the
//!    agent's CPU and RSS under the storm.
//! 5. Flood: two isolated Docker containers flood setns and fork as fast as
//!    they can while short-lived `--pid=host` containers start: each must be
//!    reported with its id, no finding lost; the agent's CPU and RSS idle and
//!    under the flood. Needs Docker up (`pidns-harness up`), else skipped.
//! 6. Enforce: the storm of part 3 with `--enforce setns,host-pidns`, and
//!    the time from a host-PID container's first exec to its death.
//!
//! `--spawn posix-spawn` makes the storms use posix_spawn (vfork) instead,
//! which the probes see as one exec per process rather than a fork and an exec.
//! The JSON is written after each part, so an interrupted run keeps the
//! parts it finished. Everything created is removed afterwards, also on
//! Ctrl-C: processes, the containers' cgroups, and any cgroup parent
//!
//! Here: the options and the order of the parts. [`fixtures`] makes the
//! fake containers, [`scan`] and [`watch`] measure, [`spawn`] starts the
//! storms' processes, [`stats`] sums samples up and [`report`] prints and
//! writes the results.

mod access;
mod enforce;
mod fixtures;
mod flood;
mod report;
mod rotate;
mod scan;
mod spawn;
mod state;
mod stats;
mod watch;

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

pub use scan::floor;
pub use spawn::{SpawnArgs, SpawnMethod, spawn_main};

use crate::{cmd, target_dir, workspace_root};
use fixtures::{Hierarchies, Population};
use report::Report;

#[derive(clap::Args)]
pub struct Options {
    /// Tiny sizes and one round: proves the benchmark still runs (CI).
    #[arg(long)]
    pub smoke: bool,
    /// Timed runs per tool (the median is reported).
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
    /// Where to write the JSON results [default: <target dir>/bench/bench.json].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only these parts (default: all).
    #[arg(long = "part", value_enum)]
    pub parts: Vec<Part>,
    /// Parallel spawners in the latency part's exec storm.
    #[arg(long, default_value_t = 2)]
    pub storm_workers: usize,
    /// How the storms start their processes.
    #[arg(long, value_enum, default_value_t = SpawnMethod::Fork)]
    pub spawn: SpawnMethod,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Scan on a loaded host, against ps, lsns and the floor.
    Scan,
    /// Scan time per process at about 1k, 5k and 20k processes.
    Scaling,
    /// A fork+exec storm with and without watch.
    Cost,
    /// Event-to-line latency and loss under an exec storm.
    Latency,
    /// Short-lived host-PID containers under a setns and fork flood.
    Flood,
    /// `--enforce setns,host-pidns`: its cost on the storm, exec to death.
    Enforce,
    /// The scan with 200 stopped containers' records under its host root:
    /// what reading the runtimes' state costs.
    State,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

/// What every part is run with.
struct Bench {
    opts: Options,
    pidns: PathBuf,
    rounds: usize,
    hier: Hierarchies,
}

pub fn run(opts: Options) -> Result<()> {
    if !cmd::is_root() {
        bail!("the benchmark creates cgroups and namespaces: run it as root");
    }
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    crate::setup::run(crate::setup::Mode::Install)?;
    cmd::cargo(&[
        "build",
        "--release",
        "-p",
        "pidns-user",
        "-p",
        "xtask",
        "-p",
        "pidns-tests",
        "--bins",
    ])
    .run()?;
    let b = Bench {
        pidns: target_dir()?.join("release/pidns"),
        rounds: if opts.smoke { 1 } else { opts.rounds.max(1) },
        hier: Hierarchies::find()?,
        opts,
    };
    if (b.wants(Part::Cost)
        || b.wants(Part::Latency)
        || b.wants(Part::Flood)
        || b.wants(Part::Enforce))
        && b.hier.unified.is_none()
    {
        bail!(
            "no cgroup2 hierarchy is mounted: watch needs one (run `--part scan --part scaling` without it)"
        );
    }
    let mut report = Report::start(&b)?;
    if b.wants(Part::Scan) {
        b.scan_loaded_host(&mut report)?;
    }
    if b.wants(Part::Scaling) {
        b.scan_scaling(&mut report)?;
    }
    if b.wants(Part::Cost) {
        b.watch_cost(&mut report)?;
        b.access_cost(&mut report)?;
    }
    if b.wants(Part::Latency)
        && let Some(unified) = &b.hier.unified
    {
        b.watch_latency(unified, &mut report)?;
    }
    if b.wants(Part::Flood) {
        b.watch_flood(&mut report)?;
    }
    if b.wants(Part::Enforce)
        && let Some(unified) = &b.hier.unified
    {
        b.enforce(unified, &mut report)?;
    }
    if b.wants(Part::State) {
        b.scan_stopped(&mut report)?;
    }
    report.finish()
}

impl Bench {
    fn wants(&self, p: Part) -> bool {
        self.opts.parts.is_empty() || self.opts.parts.contains(&p)
    }

    /// Where the JSON goes.
    fn out(&self) -> Result<PathBuf> {
        Ok(match &self.opts.out {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => workspace_root().join(p),
            None => target_dir()?.join("bench/bench.json"),
        })
    }

    /// 1. Scan on a loaded host: ~2,400 processes in 200 containers.
    fn scan_loaded_host(&self, report: &mut Report) -> Result<()> {
        let (n, k) = if self.opts.smoke { (4, 2) } else { (200, 5) };
        let pop = Population::create(&self.hier, n, k)?;
        let load = scan::comparison(&self.pidns, &pop, self.rounds)?;
        drop(pop);
        report::print_scan(&load);
        report.check("scan on a loaded host", &load["verification"]);
        report.part("scan_loaded_host", load)
    }

    /// 2. Scaling.
    fn scan_scaling(&self, report: &mut Report) -> Result<()> {
        let sizes: &[(usize, usize)] = if self.opts.smoke {
            &[(4, 2), (8, 2)]
        } else {
            &[(80, 5), (400, 5), (1600, 5)]
        };
        let mut scaling = Vec::new();
        for &(n, k) in sizes {
            interrupted()?;
            let pop = Population::create(&self.hier, n, k)?;
            let row = scan::scaling(&self.pidns, &pop, self.rounds)?;
            drop(pop);
            report.check(
                &format!("scan scaling at {} processes", row["processes"]),
                &row["verification"],
            );
            scaling.push(row);
            report.part("scan_scaling", Value::Array(scaling.clone()))?;
        }
        report::print_scaling(&scaling);
        Ok(())
    }

    /// 3. The cost of watch on a fork+exec storm.
    fn watch_cost(&self, report: &mut Report) -> Result<()> {
        let storm = if self.opts.smoke { 50 } else { 3000 };
        let cost = watch::cost(&self.pidns, storm, self.rounds, self.opts.spawn)?;
        report::print_cost(&cost);
        report.part("watch_cost", cost)
    }

    /// 3b. What host access and `--proc-access` cost: the storm again, and
    /// an open-heavy host workload.
    fn access_cost(&self, report: &mut Report) -> Result<()> {
        let storm = if self.opts.smoke { 50 } else { 3000 };
        let cost = access::storm_cost(&self.pidns, storm, self.rounds, self.opts.spawn)?;
        report::print_access_storm(&cost);
        report.part("access_storm_cost", cost)?;
        let opens = if self.opts.smoke { 1_000 } else { 200_000 };
        let cost = access::open_cost(&self.pidns, opens, self.rounds)?;
        report::print_open_cost(&cost);
        report.part("access_open_cost", cost)
    }

    /// 4. Latency and loss under an exec storm in a host-PID container.
    fn watch_latency(&self, unified: &Path, report: &mut Report) -> Result<()> {
        let workers = self.opts.storm_workers.max(1);
        let storm = if self.opts.smoke {
            spawn::Storm {
                workers: 1,
                per_worker: 50,
                method: self.opts.spawn,
            }
        } else {
            spawn::Storm {
                workers,
                per_worker: 20_000 / workers,
                method: self.opts.spawn,
            }
        };
        let lat = watch::latency(&self.pidns, unified, &storm, self.rounds)?;
        report::print_latency(&lat);
        report.check(
            "watch latency (findings against execs)",
            &lat["verification"],
        );
        report.part("watch_latency", lat)
    }

    /// 5. Short-lived host-PID containers under a flood.
    fn watch_flood(&self, report: &mut Report) -> Result<()> {
        let starts = if self.opts.smoke { 5 } else { 100 };
        let flood = flood::flood(&self.pidns, &flood::synth()?, starts)?;
        if flood.get("skipped").is_none() {
            report::print_flood(&flood);
            report.check("watch under a flood", &flood["verification"]);
        }
        report.part("watch_flood", flood)
    }

    /// Part 7, `--enforce setns,host-pidns`: its cost on the storm of
    /// part 3, and a host-PID container's first exec to its death.
    fn enforce(&self, unified: &Path, report: &mut Report) -> Result<()> {
        let (storm, n) = if self.opts.smoke {
            (50, 5)
        } else {
            (3000, 200)
        };
        let cost = enforce::cost(&self.pidns, storm, self.rounds, self.opts.spawn)?;
        let death = enforce::exec_to_death(&self.pidns, unified, n)?;
        report::print_enforce(&cost, &death);
        report.check(
            "enforce (every host-PID exec killed)",
            &death["verification"],
        );
        report.part("enforce", json!({"cost": cost, "exec_to_death": death}))
    }

    /// Part 6, the scan with stopped containers' records (the runtimes' state).
    fn scan_stopped(&self, report: &mut Report) -> Result<()> {
        let n = if self.opts.smoke { 4 } else { 200 };
        let r = state::stopped(&self.pidns, n, self.rounds)?;
        state::print(&r);
        report.check("scan with stopped containers' records", &r["verification"]);
        report.part("scan_stopped_records", r)
    }

    /// The document the parts are added to.
    fn header(&self) -> Value {
        let machine = report::machine();
        println!("machine: {}", machine["summary"].as_str().unwrap_or("?"));
        json!({
            "machine": machine,
            "smoke": self.opts.smoke,
            "rounds": self.rounds,
            "spawn": self.opts.spawn.as_str(),
            "complete": false,
        })
    }
}

/// The release build of xtask, which runs the floor and the spawner: an
/// unoptimised floor would flatter pidns.
fn xtask_exe() -> Result<PathBuf> {
    let p = target_dir()?.join("release/xtask");
    if p.is_file() {
        return Ok(p);
    }
    bail!("{} missing: run through `cargo xtask bench`", p.display())
}
