//! `cargo xtask bench`: scan throughput and scaling, and the cost of watch,
//! measured side by side in one run. Benchmarks, not tests: no number fails
//! the run (targets are reported as met or missed), but a wrong answer does:
//! when the scan's findings or watch's findings differ from the truth the
//! bench created, it says so and exits non-zero, so the CI smoke run catches
//! a regression.
//!
//! 1. Scan on a loaded host: fake Docker containers as real cgroups
//!    (`/docker/<64 hex>` in the unified hierarchy and the v1 ones), each with
//!    processes half in the host PID namespace and half in their own
//!    (`unshare -p -f`, joining the cgroup from inside). `pidns scan`, `ps -e
//!    -o pid,pidns,cgroup`, `lsns -t pid` and a floor (one cgroup read and one
//!    ns readlink per process) run alternately; medians and ratios are
//!    reported, and the scan's findings are checked against the truth.
//! 2. Scaling: the same at about 1k, 5k and 20k processes.
//! 3. The cost of watch: a fork()+execve() storm with and without `pidns watch`.
//! 4. Latency and loss: a fork()+execve() storm inside a host-PID fake
//!    container, alternating without and with the agent; latency from watch's
//!    own `latency_us` (kernel event to its line being written) and as the
//!    bench reads the lines; the findings are checked against the execs.
//!
//! `--spawn posix-spawn` makes the storms use posix_spawn (vfork) instead,
//! which the probes see as one exec per process rather than a fork and an exec.
//! The JSON is written after each part, so an interrupted run keeps the
//! parts it finished. Everything created is removed afterwards, also on
//! Ctrl-C: processes, the containers' cgroups, and any cgroup parent
//! (`/docker`) the bench had to create.

use std::{
    collections::HashSet,
    fs,
    io::{BufRead as _, BufReader, Read as _},
    os::unix::{fs::MetadataExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, bail};
use nix::{
    sys::signal::{Signal, kill, killpg},
    unistd::Pid,
};
use serde_json::{Value, json};

use crate::{cmd, target_dir, workspace_root};

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
}

/// How a storm starts each process.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum SpawnMethod {
    /// fork() then execve() in the child: in a host-PID container the probes
    /// report the fork and then the exec (two findings per process).
    Fork,
    /// posix_spawn(), which glibc implements with vfork semantics: the
    /// probes report only the exec (one finding per process).
    PosixSpawn,
}

impl SpawnMethod {
    fn as_str(self) -> &'static str {
        match self {
            SpawnMethod::Fork => "fork+execve",
            SpawnMethod::PosixSpawn => "posix_spawn",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            SpawnMethod::Fork => "fork",
            SpawnMethod::PosixSpawn => "posix-spawn",
        }
    }
}

/// `xtask bench-spawn [--cgroup DIR] [--method fork|posix-spawn] -- N PROGRAM ARGS...`
#[derive(clap::Args)]
pub struct SpawnArgs {
    /// Join this cgroup first.
    #[arg(long)]
    pub cgroup: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = SpawnMethod::Fork)]
    pub method: SpawnMethod,
    /// N PROGRAM [ARGS...]
    #[arg(last = true, required = true)]
    pub argv: Vec<String>,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

/// The JSON results, written out after every part.
struct Report {
    path: PathBuf,
    doc: Value,
    /// Correctness checks that failed: the run fails at the end.
    failures: Vec<String>,
}

impl Report {
    fn save(&mut self) -> Result<()> {
        self.doc["failures"] = json!(self.failures);
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.partial");
        fs::write(&tmp, serde_json::to_vec_pretty(&self.doc)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &self.path).with_context(|| format!("writing {}", self.path.display()))
    }

    fn part(&mut self, key: &str, value: Value) -> Result<()> {
        self.doc[key] = value;
        self.save()
    }

    /// Records a failed correctness check, from a part's `verification`.
    fn check(&mut self, part: &str, verification: &Value) {
        if verification["exact"] == false {
            let what = format!("{part}: {verification}");
            eprintln!("bench: MISMATCH in {what}");
            self.failures.push(what);
        }
    }
}

pub fn run(opts: Options) -> Result<()> {
    if !cmd::is_root() {
        bail!("the benchmark creates cgroups and namespaces: run it as root");
    }
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    crate::setup::run(crate::setup::Mode::Install)?;
    cmd::cargo(&["build", "--release", "-p", "pidns-user", "-p", "xtask"]).run()?;
    let pidns = target_dir()?.join("release/pidns");
    let rounds = if opts.smoke { 1 } else { opts.rounds.max(1) };
    let hier = Hierarchies::find()?;
    let want = |p: Part| opts.parts.is_empty() || opts.parts.contains(&p);
    if (want(Part::Cost) || want(Part::Latency)) && hier.unified.is_none() {
        bail!(
            "no cgroup2 hierarchy is mounted: watch needs one (run `--part scan --part scaling` without it)"
        );
    }

    let machine = machine();
    println!("machine: {}", machine["summary"].as_str().unwrap_or("?"));
    let mut report = Report {
        path: match &opts.out {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => workspace_root().join(p),
            None => target_dir()?.join("bench/bench.json"),
        },
        doc: json!({
            "machine": machine,
            "smoke": opts.smoke,
            "rounds": rounds,
            "spawn": opts.spawn.as_str(),
            "complete": false,
        }),
        failures: Vec::new(),
    };
    report.save()?;

    // 1. Scan on a loaded host: ~2,400 processes in 200 containers.
    let (n, k) = if opts.smoke { (4, 2) } else { (200, 5) };
    if want(Part::Scan) {
        let pop = Population::create(&hier, n, k)?;
        let load = scan_comparison(&pidns, &pop, rounds)?;
        drop(pop);
        print_scan(&load);
        report.check("scan on a loaded host", &load["verification"]);
        report.part("scan_loaded_host", load)?;
    }

    // 2. Scaling.
    let sizes: &[(usize, usize)] = if opts.smoke {
        &[(4, 2), (8, 2)]
    } else {
        &[(80, 5), (400, 5), (1600, 5)]
    };
    if want(Part::Scaling) {
        let mut scaling = Vec::new();
        for &(n, k) in sizes {
            interrupted()?;
            let pop = Population::create(&hier, n, k)?;
            let row = scan_scaling(&pidns, &pop, rounds)?;
            drop(pop);
            report.check(
                &format!("scan scaling at {} processes", row["processes"]),
                &row["verification"],
            );
            scaling.push(row);
            report.part("scan_scaling", Value::Array(scaling.clone()))?;
        }
        print_scaling(&scaling);
    }

    // 3. The cost of watch on a fork+exec storm.
    let storm = if opts.smoke { 50 } else { 3000 };
    if want(Part::Cost) {
        let cost = watch_cost(&pidns, storm, rounds, opts.spawn)?;
        println!(
            "\nwatch cost: {} storm of {storm} x /bin/true: median {:.3}s without, {:.3}s with watch: ratio {:.3} (target <= 1.10)",
            opts.spawn.as_str(),
            cost["without_s"].as_f64().unwrap_or(0.0),
            cost["with_s"].as_f64().unwrap_or(0.0),
            cost["ratio"].as_f64().unwrap_or(0.0)
        );
        report.part("watch_cost", cost)?;
    }

    // 4. Latency and loss under an exec storm in a host-PID container.
    let (workers, per) = if opts.smoke {
        (1, 50)
    } else {
        (
            opts.storm_workers.max(1),
            20_000 / opts.storm_workers.max(1),
        )
    };
    if want(Part::Latency)
        && let Some(unified) = &hier.unified
    {
        let lat = latency(&pidns, unified, workers, per, rounds, opts.spawn)?;
        print_latency(&lat);
        report.check(
            "watch latency (findings against execs)",
            &lat["verification"],
        );
        report.part("watch_latency", lat)?;
    }

    report.doc["complete"] = json!(true);
    report.save()?;
    println!("\nresults: {}", report.path.display());
    if !report.failures.is_empty() {
        bail!(
            "{} correctness check(s) failed:\n  {}",
            report.failures.len(),
            report.failures.join("\n  ")
        );
    }
    Ok(())
}

/// Cgroup hierarchies to create fake containers in.
struct Hierarchies {
    unified: Option<PathBuf>,
    v1: Vec<PathBuf>,
}

impl Hierarchies {
    fn find() -> Result<Hierarchies> {
        // /proc/self/mounts, mount points unescaped by procfs; a hierarchy
        // mounted twice (same device) is used once.
        let mounts = procfs::mounts().context("reading /proc/self/mounts")?;
        let mut devices = HashSet::new();
        let mut unified = None;
        let mut v1 = Vec::new();
        for m in mounts {
            let v2 = match m.fs_vfstype.as_str() {
                "cgroup2" => true,
                // cpuset needs cpus/mems set before it accepts tasks; Docker sets them, we skip it.
                "cgroup" if !m.fs_mntops.contains_key("cpuset") => false,
                _ => continue,
            };
            let mp = PathBuf::from(&m.fs_file);
            if !fs::metadata(&mp).is_ok_and(|md| devices.insert(md.dev())) {
                continue;
            }
            match v2 {
                true if unified.is_none() => unified = Some(mp),
                true => {}
                false => v1.push(mp),
            }
        }
        if unified.is_none() && v1.is_empty() {
            bail!("no cgroup hierarchy is mounted");
        }
        Ok(Hierarchies { unified, v1 })
    }

    fn all(&self) -> impl Iterator<Item = &PathBuf> {
        self.unified.iter().chain(&self.v1)
    }
}

/// Cgroup directories the bench created, removed on drop in reverse order:
/// the containers' (retrying while their processes are reaped), then any
/// parent (`/docker`) that did not exist before, unless something else
/// (a real Docker container) has appeared under it meanwhile.
#[derive(Default)]
struct Cgroups {
    /// (directory, is a container's leaf)
    created: Vec<(PathBuf, bool)>,
}

impl Cgroups {
    fn create(&mut self, dir: &Path) -> Result<()> {
        let missing: Vec<&Path> = dir.ancestors().take_while(|p| !p.exists()).collect();
        for d in missing.into_iter().rev() {
            match fs::create_dir(d) {
                Ok(()) => self.created.push((d.to_path_buf(), d == dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("creating {}", d.display())),
            }
        }
        Ok(())
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for (dir, leaf) in self.created.drain(..).rev() {
            let has_children = || {
                fs::read_dir(&dir).is_ok_and(|mut d| {
                    d.any(|e| e.and_then(|e| e.file_type()).is_ok_and(|t| t.is_dir()))
                })
            };
            if !leaf && has_children() {
                eprintln!(
                    "bench: leaving {}: something else now has cgroups under it",
                    dir.display()
                );
                continue;
            }
            let mut removed = false;
            for _ in 0..500 {
                if fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    removed = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if !removed {
                eprintln!("bench: could not remove {}", dir.display());
            }
        }
    }
}

/// Fake Docker containers with processes in them, removed on drop.
struct Population {
    ids: Vec<String>,
    groups: Vec<Child>,
    /// Container processes in the host PID namespace (the truth).
    host_pids: HashSet<u32>,
    /// Every container process, to wait for after killing them.
    all_pids: Vec<u32>,
    processes: usize,
    /// Dropped after the processes are gone (fields drop after `drop()`).
    cgroups: Cgroups,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let _ = fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl Population {
    /// `n` containers, each with a shell and `k` sleeps in the host PID
    /// namespace and a shell and `k` sleeps in a PID namespace of its own.
    fn create(h: &Hierarchies, n: usize, k: usize) -> Result<Population> {
        let mut pop = Population {
            ids: Vec::new(),
            groups: Vec::new(),
            host_pids: HashSet::new(),
            all_pids: Vec::new(),
            processes: 0,
            cgroups: Cgroups::default(),
        };
        let script = format!(
            "for f in \"$@\"; do echo 0 > \"$f\" || exit 1; done; i=0; while [ $i -lt {k} ]; do sleep 3600 & i=$((i+1)); done; wait"
        );
        let first = h.all().next().context("no cgroup hierarchy")?.clone();
        for _ in 0..n {
            interrupted()?;
            let id = random_hex(32);
            let mut procs_files = Vec::new();
            for root in h.all() {
                let dir = root.join("docker").join(&id);
                pop.cgroups.create(&dir)?;
                procs_files.push(dir.join("cgroup.procs").display().to_string());
            }
            for isolated in [false, true] {
                let mut c = if isolated {
                    let mut c = Command::new("unshare");
                    c.args(["-p", "-f", "sh", "-c", &script, "sh"]);
                    c
                } else {
                    let mut c = Command::new("sh");
                    c.args(["-c", &script, "sh"]);
                    c
                };
                c.args(&procs_files)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .process_group(0);
                pop.groups
                    .push(c.spawn().context("spawning container processes")?);
            }
            pop.ids.push(id);
        }
        // Wait until every container holds its 2k+2 processes.
        let deadline = Instant::now() + Duration::from_secs(300);
        for id in &pop.ids {
            let procs = first.join("docker").join(id).join("cgroup.procs");
            loop {
                interrupted()?;
                let pids: Vec<u32> = fs::read_to_string(&procs)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.parse().ok())
                    .collect();
                if pids.len() >= 2 * k + 2 {
                    pop.all_pids.extend(&pids);
                    for pid in pids {
                        // One NSpid entry: the process lives in the host PID namespace.
                        let nspid = procfs::process::Process::new(pid as i32)
                            .and_then(|p| p.status())
                            .ok()
                            .and_then(|s| s.nspid);
                        if nspid.is_some_and(|v| v.len() == 1) {
                            pop.host_pids.insert(pid);
                        }
                    }
                    break;
                }
                if Instant::now() > deadline {
                    bail!("container {id} never got its processes");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        pop.processes = proc_count();
        Ok(pop)
    }
}

impl Drop for Population {
    fn drop(&mut self) {
        for g in &mut self.groups {
            // Each shell leads its own process group, with its sleeps in it.
            if let Ok(pgid) = i32::try_from(g.id()) {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
        }
        for g in &mut self.groups {
            let _ = g.wait();
        }
        // Orphaned sleeps are reaped by init in its own time; the next
        // measurement must not count them, and their cgroups cannot go before.
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .all_pids
            .iter()
            .any(|p| Path::new(&format!("/proc/{p}")).exists())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn proc_count() -> usize {
    procfs::process::all_processes().map_or(0, |all| all.count())
}

/// Runs a command to completion; returns (wall seconds, peak RSS in KiB).
fn timed(program: &Path, args: &[&str]) -> Result<(f64, i64)> {
    let start = Instant::now();
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", program.display()))?;
    let mut status = 0;
    // SAFETY: rusage is plain data filled in by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child with valid pointers.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = start.elapsed().as_secs_f64();
    if pid < 0 {
        bail!("wait4 failed for {}", program.display());
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    // pidns scan exits 1 when a container shares the host PID namespace: expected here.
    if !(code == 0 || code == 1) {
        bail!("{} {args:?} exited with {code}", program.display());
    }
    Ok((wall, usage.ru_maxrss))
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
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

/// Checks that the scan reported exactly the host-PID half of our processes.
fn verify_scan(pidns: &Path, pop: &Population) -> Result<Value> {
    let out = Command::new(pidns)
        .args(["scan", "--format", "json"])
        .output()?;
    let report: Value = serde_json::from_slice(&out.stdout).context("pidns scan JSON")?;
    let ours: HashSet<&str> = pop.ids.iter().map(String::as_str).collect();
    let mut reported = HashSet::new();
    let mut containers = 0;
    for c in report["containers"].as_array().into_iter().flatten() {
        if !ours.contains(c["id"].as_str().unwrap_or("")) {
            continue;
        }
        containers += 1;
        for p in c["host_pidns_processes"].as_array().into_iter().flatten() {
            reported.insert(p["pid"].as_u64().unwrap_or(0) as u32);
        }
    }
    let exact = reported == pop.host_pids && containers == pop.ids.len();
    Ok(json!({
        "containers_found": containers,
        "containers_created": pop.ids.len(),
        "host_pidns_processes_reported": reported.len(),
        "host_pidns_processes_true": pop.host_pids.len(),
        "exact": exact,
    }))
}

fn scan_comparison(pidns: &Path, pop: &Population, rounds: usize) -> Result<Value> {
    let check = verify_scan(pidns, pop)?;
    let xtask = xtask_exe()?;
    let tools: [(&str, PathBuf, Vec<&str>); 4] = [
        (
            "pidns scan --format json",
            pidns.to_path_buf(),
            vec!["scan", "--format", "json"],
        ),
        (
            "ps -e -o pid,pidns,cgroup",
            PathBuf::from("ps"),
            vec!["-e", "-o", "pid,pidns,cgroup"],
        ),
        ("lsns -t pid", PathBuf::from("lsns"), vec!["-t", "pid"]),
        (
            "floor (cgroup read + ns readlink)",
            xtask,
            vec!["bench-floor"],
        ),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); tools.len()];
    // Warm the caches once, then alternate, rotating the order each round.
    for (_, p, a) in &tools {
        timed(&which(p), a)?;
    }
    for r in 0..rounds {
        for i in 0..tools.len() {
            interrupted()?;
            let t = (i + r) % tools.len();
            let (_, p, a) = &tools[t];
            times[t].push(timed(&which(p), a)?.0);
        }
    }
    let medians: Vec<f64> = times.iter().map(|t| median(t)).collect();
    let results: Vec<Value> = tools
        .iter()
        .zip(&medians)
        .zip(&times)
        .map(|(((name, _, _), m), samples)| json!({"tool": name, "median_s": m, "samples_s": samples}))
        .collect();
    Ok(json!({
        "containers": pop.ids.len(),
        "processes": pop.processes,
        "tools": results,
        "pidns_vs_ps": medians[0] / medians[1],
        "pidns_vs_lsns": medians[0] / medians[2],
        "pidns_vs_floor": medians[0] / medians[3],
        "targets": {"pidns_vs_ps_max": 0.25, "pidns_vs_floor_max": 1.5},
        "verification": check,
    }))
}

fn which(p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    which::which(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The scan at one size, alternating with the floor: what the kernel itself
/// costs per process grows with the process count (larger pid lookups, colder
/// caches), so per-process time is judged against the floor at each size too.
fn scan_scaling(pidns: &Path, pop: &Population, rounds: usize) -> Result<Value> {
    let check = verify_scan(pidns, pop)?;
    let xtask = xtask_exe()?;
    let mut walls = Vec::new();
    let mut floors = Vec::new();
    let mut rss = 0;
    timed(pidns, &["scan", "--format", "json"])?;
    timed(&xtask, &["bench-floor"])?;
    for _ in 0..rounds {
        interrupted()?;
        let (w, m) = timed(pidns, &["scan", "--format", "json"])?;
        walls.push(w);
        rss = rss.max(m);
        floors.push(timed(&xtask, &["bench-floor"])?.0);
    }
    let m = median(&walls);
    let f = median(&floors);
    let per = |t: f64| t * 1e6 / pop.processes.max(1) as f64;
    Ok(json!({
        "containers": pop.ids.len(),
        "processes": pop.processes,
        "median_s": m,
        "samples_s": walls,
        "us_per_process": per(m),
        "floor_median_s": f,
        "floor_samples_s": floors,
        "floor_us_per_process": per(f),
        "pidns_vs_floor": m / f,
        "peak_rss_kib": rss,
        "verification": check,
    }))
}

/// A line of watch's output and when the bench read it.
type Line = (SystemTime, String);

/// Runs `pidns watch --format json`, collecting its lines until stopped.
struct Agent {
    child: Child,
    lines: Arc<Mutex<Vec<Line>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Agent {
    fn start(pidns: &Path, extra: &[&str]) -> Result<Agent> {
        let mut child = Command::new(pidns)
            .args(["watch", "--format", "json", "--mode", "ebpf"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting pidns watch")?;
        let out = child.stdout.take().context("stdout")?;
        let lines: Arc<Mutex<Vec<Line>>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                let mut ready = false;
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let at = SystemTime::now();
                    if !ready && line.contains("\"event\":\"ready\"") {
                        ready = true;
                        let _ = tx.send(());
                    }
                    if let Ok(mut l) = lines.lock() {
                        l.push((at, line));
                    }
                }
            })
        };
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "pidns watch did not become ready (is eBPF available? try `pidns watch --mode ebpf`)"
            );
        }
        Ok(Agent {
            child,
            lines,
            reader: Some(reader),
        })
    }

    fn line_count(&self) -> usize {
        self.lines.lock().map_or(0, |l| l.len())
    }

    /// Waits until no line has come for `quiet`, at most `max`: the agent has
    /// written what the kernel handed it.
    fn settle(&self, quiet: Duration, max: Duration) {
        let deadline = Instant::now() + max;
        let mut last = self.line_count();
        let mut since = Instant::now();
        while Instant::now() < deadline && since.elapsed() < quiet {
            std::thread::sleep(Duration::from_millis(20));
            let n = self.line_count();
            if n != last {
                last = n;
                since = Instant::now();
            }
        }
    }

    fn stop(mut self) -> Result<Vec<Line>> {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            kill(Pid::from_raw(pid), Signal::SIGTERM).context("stopping pidns watch")?;
        }
        self.child.wait()?;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        Ok(std::mem::take(
            &mut *self.lines.lock().map_err(|_| anyhow::anyhow!("poisoned"))?,
        ))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `workers` spawners at once, each starting `per_worker` processes
/// (joining `cgroup` first); returns the wall time.
fn storm(
    workers: usize,
    per_worker: usize,
    cgroup: Option<&Path>,
    method: SpawnMethod,
    argv: &[String],
) -> Result<f64> {
    let xtask = xtask_exe()?;
    let start = Instant::now();
    let mut spawners = Vec::new();
    for _ in 0..workers {
        let mut c = Command::new(&xtask);
        c.arg("bench-spawn").args(["--method", method.flag()]);
        if let Some(dir) = cgroup {
            c.arg("--cgroup").arg(dir);
        }
        c.arg("--").arg(per_worker.to_string()).args(argv);
        spawners.push(c.spawn().context("starting a spawner")?);
    }
    // Every spawner is waited for, also when one fails: none may outlive
    // the storm in a cgroup that is about to be removed.
    let mut ok = true;
    for mut s in spawners {
        ok &= s.wait().is_ok_and(|st| st.success());
    }
    if !ok {
        bail!("exec storm spawner failed");
    }
    Ok(start.elapsed().as_secs_f64())
}

fn watch_cost(pidns: &Path, execs: usize, rounds: usize, method: SpawnMethod) -> Result<Value> {
    let argv = ["/bin/true".to_owned()];
    let run = || storm(1, execs, None, method, &argv);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    run()?;
    for r in 0..rounds {
        interrupted()?;
        let run_with = |with: &mut Vec<f64>| -> Result<()> {
            let agent = Agent::start(pidns, &[])?;
            with.push(run()?);
            agent.stop()?;
            Ok(())
        };
        if r % 2 == 0 {
            run_with(&mut with)?;
            without.push(run()?);
        } else {
            without.push(run()?);
            run_with(&mut with)?;
        }
    }
    let (w, wo) = (median(&with), median(&without));
    Ok(json!({
        "execs": execs,
        "spawn": method.as_str(),
        "with_s": w,
        "without_s": wo,
        "ratio": w / wo,
        "samples_with_s": with,
        "samples_without_s": without,
        "target_max": 1.10,
    }))
}

/// What one round with the agent saw of the storm's container.
#[derive(Default)]
struct Seen {
    exec: u64,
    fork: u64,
    attach: u64,
    other: u64,
    lost: u64,
    /// The agent's `latency_us`: kernel event to its line being written.
    agent_us: Vec<u64>,
    /// Kernel event (the line's `ts`) to the bench reading the line.
    observed_us: Vec<u64>,
}

fn seen(lines: &[Line], id: &str) -> Seen {
    let mut s = Seen::default();
    for (at, line) in lines {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match v["event"].as_str() {
            Some("host_pidns") if v["container_id"] == id => {
                match v["trigger"].as_str() {
                    Some("exec") => s.exec += 1,
                    Some("fork") => s.fork += 1,
                    Some("cgroup_attach") => s.attach += 1,
                    _ => s.other += 1,
                }
                if let Some(us) = v["latency_us"].as_u64() {
                    s.agent_us.push(us);
                }
                if let Some(ts) = v["ts"]
                    .as_str()
                    .and_then(|t| humantime::parse_rfc3339(t).ok())
                {
                    s.observed_us.push(
                        at.duration_since(ts)
                            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
                    );
                }
            }
            Some("lost") => s.lost += v["count"].as_u64().unwrap_or(0),
            _ => {}
        }
    }
    s
}

fn percentiles(v: &mut [u64]) -> Value {
    v.sort_unstable();
    let pct = |p: f64| {
        v.get(((v.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    json!({"p50_us": pct(0.50), "p99_us": pct(0.99), "max_us": v.last().copied().unwrap_or(0), "n": v.len()})
}

fn latency(
    pidns: &Path,
    unified: &Path,
    workers: usize,
    per_worker: usize,
    rounds: usize,
    method: SpawnMethod,
) -> Result<Value> {
    let mut cgroups = Cgroups::default();
    let id = random_hex(32);
    let dir = unified.join("docker").join(&id);
    cgroups.create(&dir)?;
    let (program, args) = tiny_true()?;
    let argv: Vec<String> = std::iter::once(program).chain(args).collect();
    let execs = workers * per_worker;
    let run = || storm(workers, per_worker, Some(&dir), method, &argv);
    // What each process is reported as: fork() then execve() in a host-PID
    // container is a fork and an exec finding; a vfork child only its exec.
    // Each spawner joining the cgroup is a cgroup_attach finding, and its
    // exec there (see `spawn_main`) one more exec.
    let want_exec = (execs + workers) as u64;
    let want_fork = match method {
        SpawnMethod::Fork => execs as u64,
        SpawnMethod::PosixSpawn => 0,
    };
    run()?;
    let (mut walls_with, mut walls_without) = (Vec::new(), Vec::new());
    let (mut agent_us, mut observed_us) = (Vec::new(), Vec::new());
    let mut per_round = Vec::new();
    let mut verification = json!({"exact": true, "checked_rounds": 0, "unchecked_rounds": 0});
    for r in 0..rounds {
        interrupted()?;
        let with_agent = || -> Result<(f64, Seen)> {
            let agent = Agent::start(pidns, &[])?;
            let wall = run()?;
            agent.settle(Duration::from_millis(300), Duration::from_secs(10));
            let lines = agent.stop()?;
            Ok((wall, seen(&lines, &id)))
        };
        let (wall_with, s, wall_without) = if r % 2 == 0 {
            let (w, s) = with_agent()?;
            (w, s, run()?)
        } else {
            let wo = run()?;
            let (w, s) = with_agent()?;
            (w, s, wo)
        };
        let counts_ok = s.exec == want_exec
            && s.fork == want_fork
            && s.attach == workers as u64
            && s.other == 0;
        let key = if s.lost == 0 {
            "checked_rounds"
        } else {
            "unchecked_rounds"
        };
        verification[key] = json!(verification[key].as_u64().unwrap_or(0) + 1);
        if s.lost == 0 && !counts_ok {
            verification["exact"] = json!(false);
        }
        per_round.push(json!({
            "round": r,
            "order": if r % 2 == 0 { "with first" } else { "without first" },
            "wall_with_s": wall_with,
            "wall_without_s": wall_without,
            "findings": {"exec": s.exec, "fork": s.fork, "cgroup_attach": s.attach, "other": s.other},
            "expected": {"exec": want_exec, "fork": want_fork, "cgroup_attach": workers, "other": 0},
            "lost": s.lost,
            "agent_latency_us": s.agent_us,
            "observed_latency_us": s.observed_us,
        }));
        walls_with.push(wall_with);
        walls_without.push(wall_without);
        agent_us.extend(s.agent_us);
        observed_us.extend(s.observed_us);
    }
    let lost: u64 = per_round
        .iter()
        .map(|r| r["lost"].as_u64().unwrap_or(0))
        .sum();
    let (w, wo) = (median(&walls_with), median(&walls_without));
    Ok(json!({
        "execs_per_round": execs,
        "workers": workers,
        "spawn": method.as_str(),
        "rounds": rounds,
        "exec_per_s_with_watch": execs as f64 / w,
        "exec_per_s_without_watch": execs as f64 / wo,
        "slowdown_every_exec_a_finding": w / wo,
        "agent_latency": percentiles(&mut agent_us),
        "observed_latency": percentiles(&mut observed_us),
        "lost": lost,
        "verification": verification,
        "per_round": per_round,
        "targets": {"p99_us_max": 10_000, "lost_max": 0, "exec_per_s": 10_000},
    }))
}

fn print_latency(l: &Value) {
    let p = |k: &str, q: &str| l[k][q].as_u64().unwrap_or(0);
    println!(
        "latency: {} rounds of {} {} in a host-PID container: {:.0}/s with watch, {:.0}/s without",
        l["rounds"],
        l["execs_per_round"],
        l["spawn"].as_str().unwrap_or("?"),
        l["exec_per_s_with_watch"].as_f64().unwrap_or(0.0),
        l["exec_per_s_without_watch"].as_f64().unwrap_or(0.0),
    );
    println!(
        "  event to line (agent's latency_us): p50 {} us, p99 {} us, max {} us",
        p("agent_latency", "p50_us"),
        p("agent_latency", "p99_us"),
        p("agent_latency", "max_us")
    );
    println!(
        "  event to line read by the bench:    p50 {} us, p99 {} us, max {} us",
        p("observed_latency", "p50_us"),
        p("observed_latency", "p99_us"),
        p("observed_latency", "max_us")
    );
    println!(
        "  lost {}; findings against execs: {}",
        l["lost"], l["verification"]
    );
}

/// A minimal static x86_64 executable that exits 0 (129 bytes: ELF header,
/// one PT_LOAD, `mov eax, 60; xor edi, edi; syscall`). Exec storms need the
/// cheapest possible exec to reach 10k/s on a small machine; `/bin/true`'s
/// dynamic loading costs ~0.4 ms. Other architectures use busybox's `true`.
fn tiny_true() -> Result<(String, Vec<String>)> {
    if std::env::consts::ARCH != "x86_64" {
        let busybox = which::which("busybox").context("busybox for the exec storm")?;
        return Ok((busybox.display().to_string(), vec!["true".into()]));
    }
    const BASE: u64 = 0x40_0000;
    let code: [u8; 9] = [0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05];
    let size = (64 + 56 + code.len()) as u64;
    let mut elf = Vec::with_capacity(size as usize);
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(BASE + 64 + 56).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // phoff
    elf.extend_from_slice(&0u64.to_le_bytes()); // shoff
    elf.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, 1, 0, 0, 0] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for v in [0u64, BASE, BASE, size, size, 0x1000] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&code);
    let path = target_dir()?.join("bench/true");
    fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    fs::write(&path, &elf)?;
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok((path.display().to_string(), Vec::new()))
}

fn machine() -> Value {
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|s| s.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    json!({
        "cpu": cpu,
        "cpus": cpus,
        "memory_gib": mem_kib / 1024 / 1024,
        "kernel": kernel,
        "summary": format!("{cpus} x {cpu}, {} GiB, Linux {kernel}", mem_kib / 1024 / 1024),
    })
}

fn print_scan(r: &Value) {
    println!(
        "\nscan on a loaded host: {} containers, {} processes",
        r["containers"], r["processes"]
    );
    for t in r["tools"].as_array().into_iter().flatten() {
        println!(
            "  {:<36} {:>9.2} ms",
            t["tool"].as_str().unwrap_or("?"),
            t["median_s"].as_f64().unwrap_or(0.0) * 1000.0
        );
    }
    println!(
        "  pidns / ps = {:.3} (target <= 0.25); pidns / floor = {:.2} (target <= 1.5); pidns / lsns = {:.3}",
        r["pidns_vs_ps"].as_f64().unwrap_or(0.0),
        r["pidns_vs_floor"].as_f64().unwrap_or(0.0),
        r["pidns_vs_lsns"].as_f64().unwrap_or(0.0)
    );
    println!("  verification: {}", r["verification"]);
}

fn print_scaling(rows: &[Value]) {
    println!("\nscan scaling:");
    println!(
        "  {:>10} {:>10} {:>12} {:>12} {:>12} {:>8} {:>12}",
        "processes",
        "containers",
        "median ms",
        "us/process",
        "floor us/p",
        "/floor",
        "peak RSS KiB"
    );
    for r in rows {
        println!(
            "  {:>10} {:>10} {:>12.2} {:>12.2} {:>12.2} {:>8.2} {:>12} {}",
            r["processes"].as_u64().unwrap_or(0),
            r["containers"].as_u64().unwrap_or(0),
            r["median_s"].as_f64().unwrap_or(0.0) * 1000.0,
            r["us_per_process"].as_f64().unwrap_or(0.0),
            r["floor_us_per_process"].as_f64().unwrap_or(0.0),
            r["pidns_vs_floor"].as_f64().unwrap_or(0.0),
            r["peak_rss_kib"].as_i64().unwrap_or(0),
            if r["verification"]["exact"] == true {
                "exact"
            } else {
                "MISMATCH"
            }
        );
    }
}

/// `xtask bench-floor`: the least a scan must do, one cgroup read and one
/// ns readlink per process (open, one read into a fixed buffer, close,
/// readlink: nothing else), as its own process like the tools it is compared with.
pub fn floor() -> Result<()> {
    let mut buf = [0u8; 4096];
    let mut link = [0u8; 64];
    let mut n = 0usize;
    for e in fs::read_dir("/proc")?.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let cgroup = std::ffi::CString::new(format!("/proc/{pid}/cgroup"))?;
        let ns = std::ffi::CString::new(format!("/proc/{pid}/ns/pid"))?;
        // SAFETY: plain syscalls on valid, NUL-terminated paths and buffers.
        unsafe {
            let fd = libc::open(cgroup.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                libc::close(fd);
            }
            if libc::readlink(ns.as_ptr(), link.as_mut_ptr().cast(), link.len()) > 0 {
                n += 1;
            }
        }
    }
    println!("{n}");
    Ok(())
}

/// `xtask bench-spawn`: joins a cgroup, then starts PROGRAM N times, one
/// after the other, with an empty environment, waiting for each.
pub fn spawn_main(a: SpawnArgs) -> Result<()> {
    let [n, program, args @ ..] = a.argv.as_slice() else {
        bail!(
            "usage: bench-spawn [--cgroup DIR] [--method fork|posix-spawn] -- N PROGRAM [ARGS...]"
        );
    };
    let n: usize = n.parse().with_context(|| format!("bad count {n}"))?;
    if let Some(dir) = &a.cgroup {
        fs::write(dir.join("cgroup.procs"), "0")
            .with_context(|| format!("joining {}", dir.display()))?;
        // Then exec, as a container's first process does: a task moved into
        // a container's cgroup counts as the runtime's until it execs, so
        // its children's forks are findings only from here on.
        let err = Command::new("/proc/self/exe")
            .args(["bench-spawn", "--method", a.method.flag(), "--"])
            .args(&a.argv)
            .exec();
        return Err(err).context("re-executing bench-spawn in the cgroup");
    }
    let path = std::ffi::CString::new(program.as_str())?;
    let argv: Vec<std::ffi::CString> = std::iter::once(program)
        .chain(args)
        .map(|s| std::ffi::CString::new(s.as_str()))
        .collect::<Result<_, _>>()?;
    match a.method {
        SpawnMethod::Fork => fork_exec(n, &path, &argv),
        SpawnMethod::PosixSpawn => posix_spawn(n, &path, &argv),
    }
}

/// fork() and execve() in the child, `n` times.
fn fork_exec(n: usize, path: &std::ffi::CStr, argv: &[std::ffi::CString]) -> Result<()> {
    use nix::{
        sys::wait::{WaitStatus, waitpid},
        unistd::{ForkResult, execve, fork},
    };
    let env: [&std::ffi::CStr; 0] = [];
    for _ in 0..n {
        // SAFETY: this process is single-threaded (bench-spawn starts no
        // threads), so the child may do anything before execve.
        match unsafe { fork() }.context("fork")? {
            ForkResult::Child => {
                let _ = execve(path, argv, &env);
                // SAFETY: leaving the forked child without running the parent's atexit handlers.
                unsafe { libc::_exit(127) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).context("waitpid")? {
                WaitStatus::Exited(_, 0) => {}
                other => bail!("{} failed: {other:?}", path.to_string_lossy()),
            },
        }
    }
    Ok(())
}

/// posix_spawn (vfork semantics in glibc) then wait, `n` times.
fn posix_spawn(n: usize, path: &std::ffi::CStr, argv: &[std::ffi::CString]) -> Result<()> {
    let mut argv_ptrs: Vec<*mut libc::c_char> =
        argv.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv_ptrs.push(std::ptr::null_mut());
    let envp: [*mut libc::c_char; 1] = [std::ptr::null_mut()];
    for _ in 0..n {
        let mut pid: libc::pid_t = 0;
        // SAFETY: valid NUL-terminated path and NULL-terminated argv/envp that outlive the call.
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                argv_ptrs.as_ptr(),
                envp.as_ptr(),
            )
        };
        if rc != 0 {
            bail!(
                "posix_spawn {}: {}",
                path.to_string_lossy(),
                std::io::Error::from_raw_os_error(rc)
            );
        }
        match nix::sys::wait::waitpid(Pid::from_raw(pid), None).context("waitpid")? {
            nix::sys::wait::WaitStatus::Exited(_, 0) => {}
            other => bail!("{} failed: {other:?}", path.to_string_lossy()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_remove_what_they_created_and_no_more() {
        let tmp = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        fs::create_dir_all(&tmp).expect("tmp");
        let a = tmp.join("docker").join("aaaa");
        let b = tmp.join("docker").join("bbbb");
        {
            let mut cg = Cgroups::default();
            cg.create(&a).expect("create a");
            cg.create(&b).expect("create b");
            assert!(a.is_dir() && b.is_dir());
        }
        // The parent the bench created goes too; the root it found stays.
        assert!(!tmp.join("docker").exists());
        assert!(tmp.is_dir());

        // A parent that existed before is left alone ...
        fs::create_dir(tmp.join("docker")).expect("docker");
        {
            let mut cg = Cgroups::default();
            cg.create(&a).expect("create a");
        }
        assert!(!a.exists() && tmp.join("docker").is_dir());
        fs::remove_dir(tmp.join("docker")).expect("rmdir");

        // ... and so is one the bench created but something else moved into.
        {
            let mut cg = Cgroups::default();
            cg.create(&a).expect("create a");
            fs::create_dir(tmp.join("docker").join("real")).expect("real");
        }
        assert!(!a.exists() && tmp.join("docker").join("real").is_dir());
        fs::remove_dir_all(&tmp).expect("cleanup");
    }
}
