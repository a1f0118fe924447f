//! What host access (issue 15) costs: a fork+exec storm and an
//! open-heavy host workload, each without watch, with it, and with
//! `watch --proc-access`, which hooks every open's exit; and the CPU time
//! the probes themselves spend per open, from the kernel's accounting.

use std::path::Path;

use anyhow::{Context as _, Result};
use nix::sys::signal::Signal;
use pidns_tests::pidns::Watch;
use serde_json::{Value, json};

use super::{
    rotate::rotated,
    spawn::{SpawnMethod, Storm},
    stats::median,
};

/// `pidns watch --format json --mode ebpf` plus `extra`, ready.
fn agent(pidns: &Path, extra: &[&str]) -> Result<Watch> {
    let mut args = vec!["--mode", "ebpf"];
    args.extend_from_slice(extra);
    Watch::start_with(pidns, &args)
}

/// Runs `work` without watch, with it, and with `watch --proc-access`,
/// `rounds` times, the order rotated each round: the samples of each.
fn three_ways(
    pidns: &Path,
    rounds: usize,
    work: impl FnMut() -> Result<f64>,
) -> Result<[Vec<f64>; 3]> {
    const PLAIN: &[&str] = &["--mode", "ebpf"];
    const PROC: &[&str] = &["--mode", "ebpf", "--proc-access"];
    let samples = rotated(pidns, &[None, Some(PLAIN), Some(PROC)], rounds, work)?;
    samples
        .try_into()
        .map_err(|_| anyhow::anyhow!("three set-ups, three sample sets"))
}

/// `kernel.bpf_stats_enabled`: the kernel then times every BPF program run.
const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// CPU time the agent's eBPF programs spent while `work` ran once, with
/// `extra` flags, from the kernel's own accounting (`run_time_ns` in the
/// fdinfo of each program fd the agent holds; `kernel.bpf_stats_enabled`
/// on for that run only, as it costs every program two clock reads).
/// Unlike wall time, this does not move with what else the machine runs.
fn probe_ns(pidns: &Path, extra: &[&str], work: &mut impl FnMut() -> Result<f64>) -> Result<u64> {
    let before = std::fs::read_to_string(BPF_STATS).unwrap_or_else(|_| "0".into());
    std::fs::write(BPF_STATS, "1").context(BPF_STATS)?;
    let result = (|| -> Result<u64> {
        let agent = agent(pidns, extra)?;
        let pid = agent.pid().context("the agent's pid")?;
        let start = bpf_run_ns(pid)?;
        work()?;
        let end = bpf_run_ns(pid)?;
        agent.finish(Signal::SIGTERM)?;
        Ok(end.saturating_sub(start))
    })();
    let _ = std::fs::write(BPF_STATS, before.trim());
    result
}

/// The sum of `run_time_ns` over the BPF program fds of process `pid`.
fn bpf_run_ns(pid: u32) -> Result<u64> {
    let dir = format!("/proc/{pid}/fdinfo");
    let mut total = 0;
    for entry in std::fs::read_dir(&dir).with_context(|| dir.clone())? {
        let Ok(text) = std::fs::read_to_string(entry?.path()) else {
            continue; // closed meanwhile
        };
        if !text.contains("prog_id:") {
            continue;
        }
        total += text
            .lines()
            .find_map(|l| l.strip_prefix("run_time_ns:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

/// The fastest sample: on a shared machine, the one least disturbed by
/// others (medians are reported too).
fn best(samples: &[f64]) -> f64 {
    samples.iter().copied().fold(f64::INFINITY, f64::min)
}

/// A storm of `/bin/true` without watch, with it, and with
/// `--proc-access` (each exec opens the loader's cache and libraries;
/// every child's exit is a SIGCHLD through `signal_generate`).
pub(super) fn storm_cost(
    pidns: &Path,
    execs: usize,
    rounds: usize,
    method: SpawnMethod,
) -> Result<Value> {
    let storm = Storm::serial(execs, method);
    let [without, with, with_proc] = three_ways(pidns, rounds, || storm.run_true())?;
    let (w, wo, wp) = (median(&with), median(&without), median(&with_proc));
    let (bw, bwo, bwp) = (best(&with), best(&without), best(&with_proc));
    Ok(json!({
        "execs": execs,
        "spawn": method.as_str(),
        "with_s": w,
        "without_s": wo,
        "with_proc_access_s": wp,
        "ratio": w / wo,
        "ratio_proc_access": wp / wo,
        "best_ratio": bw / bwo,
        "best_ratio_proc_access": bwp / bwo,
        "samples_with_s": with,
        "samples_without_s": without,
        "samples_with_proc_access_s": with_proc,
        "target_max": 1.03,
    }))
}

/// An open-heavy host workload: `opens` open+close pairs of a small file
/// by a host process (this one), without watch, with it, and with
/// `--proc-access`, which hooks every open's exit.
pub(super) fn open_cost(pidns: &Path, opens: usize, rounds: usize) -> Result<Value> {
    let path = Path::new("/etc/hostname");
    let work = || -> Result<f64> {
        let start = std::time::Instant::now();
        for _ in 0..opens {
            drop(std::fs::File::open(path)?);
        }
        Ok(start.elapsed().as_secs_f64())
    };
    let [without, with, with_proc] = three_ways(pidns, rounds, work)?;
    let (w, wo, wp) = (median(&with), median(&without), median(&with_proc));
    let per_open_ns = |s: f64| s * 1e9 / opens as f64;
    let mut work = work;
    let probe_with = probe_ns(pidns, &[], &mut work)? as f64 / opens as f64;
    let probe_proc = probe_ns(pidns, &["--proc-access"], &mut work)? as f64 / opens as f64;
    Ok(json!({
        "probe_ns_per_open_with": probe_with,
        "probe_ns_per_open_with_proc_access": probe_proc,
        "best_ns_per_open_without": per_open_ns(best(&without)),
        "best_ns_per_open_with": per_open_ns(best(&with)),
        "best_ns_per_open_with_proc_access": per_open_ns(best(&with_proc)),
        "opens": opens,
        "with_s": w,
        "without_s": wo,
        "with_proc_access_s": wp,
        "ns_per_open_without": per_open_ns(wo),
        "ns_per_open_with": per_open_ns(w),
        "ns_per_open_with_proc_access": per_open_ns(wp),
        "ratio": w / wo,
        "ratio_proc_access": wp / wo,
        "samples_with_s": with,
        "samples_without_s": without,
        "samples_with_proc_access_s": with_proc,
    }))
}
