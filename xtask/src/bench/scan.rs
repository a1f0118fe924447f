//! Scan throughput: `pidns scan` against ps, lsns and the floor on a
//! loaded host, and per process at several sizes; its findings checked
//! against the population's truth.

use std::{
    collections::HashSet,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use super::{Population, interrupted, stats::median, xtask_exe};

/// Runs a command to completion; returns (wall seconds, peak RSS in KiB).
pub(super) fn timed(program: &Path, args: &[&str]) -> Result<(f64, i64)> {
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

/// Checks that the scan reported exactly the host-PID half of our processes.
fn verify(pidns: &Path, pop: &Population) -> Result<Value> {
    let out = Command::new(pidns)
        .args(["scan", "--format", "json"])
        .output()?;
    let report: Value = serde_json::from_slice(&out.stdout).context("pidns scan JSON")?;
    let ours: HashSet<&str> = pop.ids().collect();
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
    let exact = reported == pop.host_pids && containers == ours.len();
    Ok(json!({
        "containers_found": containers,
        "containers_created": ours.len(),
        "host_pidns_processes_reported": reported.len(),
        "host_pidns_processes_true": pop.host_pids.len(),
        "exact": exact,
    }))
}

/// pidns, ps, lsns and the floor, run alternately on one population.
pub(super) fn comparison(pidns: &Path, pop: &Population, rounds: usize) -> Result<Value> {
    let check = verify(pidns, pop)?;
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
            "floor (cgroup read + ns readlink or root stat)",
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
        "containers": pop.containers.len(),
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
pub(super) fn scaling(pidns: &Path, pop: &Population, rounds: usize) -> Result<Value> {
    let check = verify(pidns, pop)?;
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
        "containers": pop.containers.len(),
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

/// `xtask bench-floor`: the least a scan must do per process: one cgroup
/// read (open, one read into a fixed buffer, close), then one `readlink` of
/// `ns/pid` for a process whose cgroup names a container (`/docker/` here:
/// its PID namespace decides), or one `stat` of its root for any other (is
/// it container-like?). Nothing else, as its own process like the tools it
/// is compared with.
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
        // SAFETY: plain syscalls on valid, NUL-terminated paths and buffers.
        let len = unsafe {
            let fd = libc::open(cgroup.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                continue;
            }
            let len = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            libc::close(fd);
            usize::try_from(len).unwrap_or(0)
        };
        let in_container = buf[..len].windows(8).any(|w| w == b"/docker/");
        if in_container {
            let ns = std::ffi::CString::new(format!("/proc/{pid}/ns/pid"))?;
            // SAFETY: as above.
            if unsafe { libc::readlink(ns.as_ptr(), link.as_mut_ptr().cast(), link.len()) } > 0 {
                n += 1;
            }
        } else {
            let root = std::ffi::CString::new(format!("/proc/{pid}/root"))?;
            // SAFETY: as above; `st` is plain data the kernel fills in.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::stat(root.as_ptr(), &mut st) } == 0 {
                n += 1;
            }
        }
    }
    println!("{n}");
    Ok(())
}
