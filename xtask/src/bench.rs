//! `cargo xtask bench`: scan throughput and scaling, and the cost of watch,
//! measured side by side in one run. Benchmarks, not tests: nothing here
//! fails on a number; targets are reported as met or missed.
//!
//! 1. Scan on a loaded host: fake Docker containers as real cgroups
//!    (`/docker/<64 hex>` in the unified hierarchy and the v1 ones), each with
//!    processes half in the host PID namespace and half in their own
//!    (`unshare -p -f`, joining the cgroup from inside). `pidns scan`, `ps -e
//!    -o pid,pidns,cgroup`, `lsns -t pid` and a floor (one cgroup read and one
//!    ns readlink per process) run alternately; medians and ratios are
//!    reported, and the scan's findings are checked against the truth.
//! 2. Scaling: the same at about 1k, 5k and 20k processes.
//! 3. The cost of watch: a fork+exec storm with and without `pidns watch`.
//! 4. Latency and loss: an exec storm inside host-PID fake containers, read
//!    from watch's own `latency_us` and `lost` events.
//!
//! Everything created is removed afterwards, also on Ctrl-C.

use std::{
    collections::HashSet,
    fs,
    io::{BufRead as _, BufReader, Read as _},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use crate::{cmd, workspace_root};

#[derive(clap::Args)]
pub struct Options {
    /// Tiny sizes and one round: proves the benchmark still runs (CI).
    #[arg(long)]
    pub smoke: bool,
    /// Timed runs per tool (the median is reported).
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench/bench.json")]
    pub out: PathBuf,
    /// Run only these parts (default: all).
    #[arg(long = "part", value_enum)]
    pub parts: Vec<Part>,
    /// Parallel spawners in the latency part's exec storm.
    #[arg(long, default_value_t = 2)]
    pub storm_workers: usize,
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

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

pub fn run(opts: Options) -> Result<()> {
    if !cmd::is_root() {
        bail!("the benchmark creates cgroups and namespaces: run it as root");
    }
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    crate::setup::run(crate::setup::Mode::Install)?;
    cmd::cargo(&["build", "--release", "-p", "pidns-user", "-p", "xtask"]).run()?;
    let pidns = workspace_root().join("target/release/pidns");
    let rounds = if opts.smoke { 1 } else { opts.rounds.max(1) };
    let hier = Hierarchies::find()?;

    let machine = machine();
    println!("machine: {}", machine["summary"].as_str().unwrap_or("?"));
    let want = |p: Part| opts.parts.is_empty() || opts.parts.contains(&p);
    let mut report = json!({"machine": machine, "smoke": opts.smoke, "rounds": rounds});

    // 1. Scan on a loaded host: ~2,400 processes in 200 containers.
    let (n, k) = if opts.smoke { (4, 2) } else { (200, 5) };
    if want(Part::Scan) {
        let pop = Population::create(&hier, n, k)?;
        let load = scan_comparison(&pidns, &pop, rounds)?;
        drop(pop);
        print_scan(&load);
        report["scan_loaded_host"] = load;
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
            scaling.push(scan_scaling(&pidns, &pop, rounds)?);
        }
        print_scaling(&scaling);
        report["scan_scaling"] = Value::Array(scaling);
    }

    // 3. The cost of watch on a fork+exec storm.
    let storm = if opts.smoke { 50 } else { 3000 };
    if want(Part::Cost) {
        let cost = watch_cost(&pidns, storm, rounds)?;
        println!(
            "\nwatch cost: fork+exec storm of {storm}: median {:.3}s without, {:.3}s with watch: ratio {:.3} (target <= 1.10)",
            cost["without_s"].as_f64().unwrap_or(0.0),
            cost["with_s"].as_f64().unwrap_or(0.0),
            cost["ratio"].as_f64().unwrap_or(0.0)
        );
        report["watch_cost"] = cost;
    }

    // 4. Latency and loss under an exec storm in host-PID containers.
    let (workers, per) = if opts.smoke {
        (1, 50)
    } else {
        (
            opts.storm_workers.max(1),
            20_000 / opts.storm_workers.max(1),
        )
    };
    if want(Part::Latency) {
        let lat = latency(&pidns, &hier, workers, per)?;
        println!(
            "latency: {} execs at {:.0}/s ({:.0}/s without watch) in host-PID containers: p50 {} us, p99 {} us, max {} us; {} exec findings, {} lost",
            lat["execs"],
            lat["exec_per_s"].as_f64().unwrap_or(0.0),
            lat["exec_per_s_without_watch"].as_f64().unwrap_or(0.0),
            lat["p50_us"],
            lat["p99_us"],
            lat["max_us"],
            lat["exec_findings"],
            lat["lost"]
        );
        report["watch_latency"] = lat;
    }

    let out = if opts.out.is_absolute() {
        opts.out.clone()
    } else {
        workspace_root().join(&opts.out)
    };
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&out, serde_json::to_vec_pretty(&report)?)?;
    println!("\nresults: {}", out.display());
    Ok(())
}

/// Cgroup hierarchies to create fake containers in.
struct Hierarchies {
    unified: PathBuf,
    v1: Vec<PathBuf>,
}

impl Hierarchies {
    fn find() -> Result<Hierarchies> {
        let info = fs::read_to_string("/proc/self/mountinfo")?;
        let mut unified = None;
        let mut v1 = Vec::new();
        for line in info.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let mut f = pre.split_whitespace();
            let root = f.nth(3).unwrap_or("");
            let mp = PathBuf::from(f.next().unwrap_or(""));
            let fstype = post.split_whitespace().next().unwrap_or("");
            let opts = post.split_whitespace().nth(2).unwrap_or("");
            if root != "/" {
                continue;
            }
            match fstype {
                "cgroup2" => unified = Some(mp),
                // cpuset needs cpus/mems set before it accepts tasks; Docker sets them, we skip it.
                "cgroup" if !opts.split(',').any(|o| o == "cpuset") => v1.push(mp),
                _ => {}
            }
        }
        Ok(Hierarchies {
            unified: unified.context("no cgroup2 hierarchy: watch needs one")?,
            v1,
        })
    }
}

/// Fake Docker containers with processes in them, removed on drop.
struct Population {
    ids: Vec<String>,
    dirs: Vec<PathBuf>,
    groups: Vec<Child>,
    /// Container processes in the host PID namespace (the truth).
    host_pids: HashSet<u32>,
    /// Every container process, to wait for after killing them.
    all_pids: Vec<u32>,
    processes: usize,
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
            dirs: Vec::new(),
            groups: Vec::new(),
            host_pids: HashSet::new(),
            all_pids: Vec::new(),
            processes: 0,
        };
        let script = format!(
            "for f in \"$@\"; do echo 0 > \"$f\" || exit 1; done; i=0; while [ $i -lt {k} ]; do sleep 3600 & i=$((i+1)); done; wait"
        );
        for _ in 0..n {
            interrupted()?;
            let id = random_hex(32);
            let mut procs_files = Vec::new();
            for root in std::iter::once(&h.unified).chain(&h.v1) {
                let dir = root.join("docker").join(&id);
                fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                procs_files.push(dir.join("cgroup.procs").display().to_string());
                pop.dirs.push(dir);
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
            let procs = h.unified.join("docker").join(id).join("cgroup.procs");
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
                        let status =
                            fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                        let nspid = status
                            .lines()
                            .find_map(|l| l.strip_prefix("NSpid:"))
                            .map(|v| v.split_whitespace().count());
                        if nspid == Some(1) {
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
            // SAFETY: kill(2) on our own process group.
            unsafe { libc::kill(-(g.id() as i32), libc::SIGKILL) };
        }
        for g in &mut self.groups {
            let _ = g.wait();
        }
        // Orphaned sleeps are reaped by init in its own time; the next
        // measurement must not count them.
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .all_pids
            .iter()
            .any(|p| Path::new(&format!("/proc/{p}")).exists())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Processes leave their cgroups as they are reaped; retry until empty.
        for dir in self.dirs.iter().rev() {
            for _ in 0..500 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn proc_count() -> usize {
    fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        })
        .unwrap_or(0)
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// The release build of xtask, which runs the floor and the spawner: an
/// unoptimised floor would flatter pidns.
fn xtask_exe() -> Result<PathBuf> {
    let p = workspace_root().join("target/release/xtask");
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
    let medians: Vec<f64> = times.iter().map(|t| median(t.clone())).collect();
    let results: Vec<Value> = tools
        .iter()
        .zip(&medians)
        .map(|((name, _, _), m)| json!({"tool": name, "median_s": m}))
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

fn scan_scaling(pidns: &Path, pop: &Population, rounds: usize) -> Result<Value> {
    let check = verify_scan(pidns, pop)?;
    let mut walls = Vec::new();
    let mut rss = 0;
    timed(pidns, &["scan", "--format", "json"])?;
    for _ in 0..rounds {
        interrupted()?;
        let (w, m) = timed(pidns, &["scan", "--format", "json"])?;
        walls.push(w);
        rss = rss.max(m);
    }
    let m = median(walls);
    Ok(json!({
        "containers": pop.ids.len(),
        "processes": pop.processes,
        "median_s": m,
        "us_per_process": m * 1e6 / pop.processes.max(1) as f64,
        "peak_rss_kib": rss,
        "verification": check,
    }))
}

/// Runs `pidns watch --format json`, collecting its lines until stopped.
struct Agent {
    child: Child,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
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
        let lines: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                let mut ready = false;
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if !ready && line.contains("\"event\":\"ready\"") {
                        ready = true;
                        let _ = tx.send(());
                    }
                    if let Ok(mut l) = lines.lock() {
                        l.push(line);
                    }
                }
            })
        };
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
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

    fn stop(mut self) -> Result<Vec<String>> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
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

fn storm(execs: usize) -> Result<f64> {
    let start = Instant::now();
    let status = Command::new(xtask_exe()?)
        .args(["bench-spawn", "--", &execs.to_string(), "/bin/true"])
        .status()?;
    if !status.success() {
        bail!("fork+exec storm failed");
    }
    Ok(start.elapsed().as_secs_f64())
}

fn watch_cost(pidns: &Path, execs: usize, rounds: usize) -> Result<Value> {
    let (mut with, mut without) = (Vec::new(), Vec::new());
    storm(execs)?;
    for r in 0..rounds {
        interrupted()?;
        let run_with = |with: &mut Vec<f64>| -> Result<()> {
            let agent = Agent::start(pidns, &[])?;
            with.push(storm(execs)?);
            agent.stop()?;
            Ok(())
        };
        if r % 2 == 0 {
            run_with(&mut with)?;
            without.push(storm(execs)?);
        } else {
            without.push(storm(execs)?);
            run_with(&mut with)?;
        }
    }
    let (w, wo) = (median(with), median(without));
    Ok(json!({"execs": execs, "with_s": w, "without_s": wo, "ratio": w / wo, "target_max": 1.10}))
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
    let path = workspace_root().join("target/bench/true");
    fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    fs::write(&path, &elf)?;
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok((path.display().to_string(), Vec::new()))
}

fn latency(pidns: &Path, h: &Hierarchies, workers: usize, per_worker: usize) -> Result<Value> {
    let id = random_hex(32);
    let dir = h.unified.join("docker").join(&id);
    fs::create_dir_all(&dir)?;
    let _cleanup = RemoveDir(dir.clone());
    let (program, args) = tiny_true()?;
    let storm = || -> Result<f64> {
        let start = Instant::now();
        let mut spawners = Vec::new();
        for _ in 0..workers {
            let mut c = Command::new(xtask_exe()?);
            c.args([
                "bench-spawn",
                "--cgroup",
                &dir.display().to_string(),
                "--",
                &per_worker.to_string(),
                &program,
            ]);
            c.args(&args);
            spawners.push(c.spawn()?);
        }
        for mut s in spawners {
            if !s.wait()?.success() {
                bail!("exec storm worker failed");
            }
        }
        Ok(start.elapsed().as_secs_f64())
    };
    // The same storm without the agent: the cost of the worst case, where
    // every exec is a finding.
    let wall_without = storm()?;
    let agent = Agent::start(pidns, &[])?;
    let wall = storm()?;
    // Let the agent drain what the kernel already handed over.
    std::thread::sleep(Duration::from_millis(500));
    let lines = agent.stop()?;
    let mut lat = Vec::new();
    let (mut execs_seen, mut lost) = (0u64, 0u64);
    for line in &lines {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match v["event"].as_str() {
            Some("host_pidns") if v["container_id"] == id.as_str() => {
                if let Some(us) = v["latency_us"].as_u64() {
                    lat.push(us);
                }
                if v["trigger"] == "exec" {
                    execs_seen += 1;
                }
            }
            Some("lost") => lost += v["count"].as_u64().unwrap_or(0),
            _ => {}
        }
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let execs = workers * per_worker;
    Ok(json!({
        "execs": execs,
        "workers": workers,
        "wall_s": wall,
        "exec_per_s": execs as f64 / wall,
        "exec_per_s_without_watch": execs as f64 / wall_without,
        "slowdown_every_exec_a_finding": wall / wall_without,
        "events": lat.len(),
        "exec_findings": execs_seen,
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
        "max_us": lat.last().copied().unwrap_or(0),
        "lost": lost,
        "targets": {"p99_us_max": 10_000, "lost_max": 0, "exec_per_s": 10_000},
    }))
}

struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        for _ in 0..500 {
            if fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
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
        "  {:>10} {:>10} {:>12} {:>12} {:>12}",
        "processes", "containers", "median ms", "us/process", "peak RSS KiB"
    );
    for r in rows {
        println!(
            "  {:>10} {:>10} {:>12.2} {:>12.2} {:>12} {}",
            r["processes"],
            r["containers"],
            r["median_s"].as_f64().unwrap_or(0.0) * 1000.0,
            r["us_per_process"].as_f64().unwrap_or(0.0),
            r["peak_rss_kib"],
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

/// `xtask bench-spawn [--cgroup DIR] -- N PROGRAM ARGS...`: joins DIR, then
/// spawns PROGRAM N times, one after the other (posix_spawn, which glibc
/// does with vfork semantics, then wait), with an empty environment.
pub fn spawn(cgroup: Option<PathBuf>, n: usize, program: &str, args: &[String]) -> Result<()> {
    use std::ffi::CString;
    if let Some(dir) = cgroup {
        fs::write(dir.join("cgroup.procs"), "0")
            .with_context(|| format!("joining {}", dir.display()))?;
    }
    let path = CString::new(program)?;
    let argv: Vec<CString> = std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(CString::new)
        .collect::<Result<_, _>>()?;
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
                "posix_spawn {program}: {}",
                std::io::Error::from_raw_os_error(rc)
            );
        }
        let mut status = 0;
        // SAFETY: waiting for the child just spawned.
        if unsafe { libc::waitpid(pid, &mut status, 0) } < 0
            || !libc::WIFEXITED(status)
            || libc::WEXITSTATUS(status) != 0
        {
            bail!("{program} failed");
        }
    }
    Ok(())
}
