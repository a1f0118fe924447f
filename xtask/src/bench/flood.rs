//! The flood part: two isolated, unprivileged Docker containers flood the
//! kernel with setns calls (into their own network namespace, every one
//! refused) and forks, as fast as they can, while short-lived `--pid=host`
//! containers start one after the other. Every one of them must be
//! reported with its id, and no finding lost; the agent's CPU and RSS are
//! measured idle and under the flood.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use nix::sys::signal::Signal;
use pidns_tests::{
    Container, Pid, Rt, Spec,
    inside::Tool,
    pidns::{Line, Watch},
    runtimes,
};
use serde_json::{Value, json};

use super::interrupted;

/// CPU time (user + system) and memory of a process, from /proc.
#[derive(Debug, Clone, Copy)]
pub(super) struct Usage {
    pub cpu_s: f64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl Usage {
    pub(super) fn of(pid: u32) -> Result<Usage> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the comm's closing parenthesis: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| -> f64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0.0) };
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100) as f64;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        Ok(Usage {
            cpu_s: (ticks(11) + ticks(12)) / hz,
            rss_kib: kib("VmRSS:"),
            hwm_kib: kib("VmHWM:"),
        })
    }
}

/// The agent idle for `secs`: its RSS and the share of a CPU it used.
pub(super) fn idle(agent: &Watch, secs: u64) -> Result<Value> {
    let pid = agent.pid().context("agent pid")?;
    let before = Usage::of(pid)?;
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let after = Usage::of(pid)?;
    Ok(json!({
        "seconds": t.elapsed().as_secs_f64(),
        "rss_kib": after.rss_kib,
        "cpu_percent": 100.0 * (after.cpu_s - before.cpu_s) / t.elapsed().as_secs_f64(),
    }))
}

/// The flood part: `starts` short-lived host-PID containers under the flood.
pub(super) fn flood(pidns: &Path, synth: &Path, starts: usize) -> Result<Value> {
    if let Err(why) = runtimes::available(Rt::Docker) {
        println!("\nflood: skipped, Docker is not up ({why:#}); `pidns-harness up` brings it up");
        return Ok(json!({"skipped": format!("{why:#}")}));
    }
    let agent = Watch::start_with(pidns, &["--mode", "ebpf"])?;
    let idle = idle(&agent, 5)?;
    let tool = Tool::new(synth)?;
    let mut flooders = Vec::new();
    for _ in 0..2 {
        let mut spec = Spec::new(Rt::Docker);
        for m in tool.mounts()? {
            spec = spec.arg(&m);
        }
        let script = format!(
            "{0} flood setns 3600 & {0} flood fork 3600 & wait",
            tool.path()
        );
        flooders.push(Container::start(&spec.cmd(&["sh", "-c", &script]))?);
    }
    std::thread::sleep(Duration::from_secs(2));
    let pid = agent.pid().context("agent pid")?;
    let before = Usage::of(pid)?;
    let t = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..starts {
        interrupted()?;
        let c = Container::run_to_completion(&Spec::new(Rt::Docker).pid(Pid::Host).cmd(&["true"]))?;
        ids.push(c.id.clone());
    }
    // Every container is reported within a few seconds, or it was not.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && reported(&agent, &ids) < ids.len() {
        std::thread::sleep(Duration::from_millis(200));
    }
    let wall = t.elapsed().as_secs_f64();
    let during = Usage::of(pid)?;
    // A flooder that died (its tool did not run) would make this part pass
    // for nothing.
    for f in &flooders {
        let running = pidns_tests::sh::run(
            "docker",
            &["inspect", "--format", "{{.State.Running}}", &f.name],
        )?;
        if running.trim() != "true" {
            bail!("flooding container {} stopped during the flood", f.name);
        }
    }
    drop(flooders);
    let lines = agent.finish(Signal::SIGTERM)?;
    let seen = reported_in(&lines, &ids);
    let lost = lost_by_stream(&lines);
    let findings_lost = lost["findings"].as_u64().unwrap_or(0);
    let exact = seen == ids.len() && findings_lost == 0;
    if !exact {
        eprintln!(
            "bench: flood: {seen}/{} reported, {findings_lost} findings lost",
            ids.len()
        );
    }
    Ok(json!({
        "host_pid_containers": ids.len(),
        "reported_with_id": seen,
        "lost": lost,
        "seconds": wall,
        "containers_per_s": ids.len() as f64 / wall,
        "agent_idle": idle,
        "agent_under_flood": {
            "cpu_percent": 100.0 * (during.cpu_s - before.cpu_s) / wall,
            "rss_kib": during.rss_kib,
            "peak_rss_kib": during.hwm_kib,
        },
        "verification": {"exact": exact},
        "targets": {"reported": ids.len(), "findings_lost": 0},
    }))
}

fn reported(agent: &Watch, ids: &[String]) -> usize {
    let events = agent.events();
    ids.iter()
        .filter(|id| {
            events
                .iter()
                .any(|e| e["event"] == "host_pidns" && e["container_id"] == id.as_str())
        })
        .count()
}

fn reported_in(lines: &[Line], ids: &[String]) -> usize {
    let events: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(&l.text).ok())
        .collect();
    ids.iter()
        .filter(|id| {
            events
                .iter()
                .any(|e| e["event"] == "host_pidns" && e["container_id"] == id.as_str())
        })
        .count()
}

/// `lost` lines summed by stream.
fn lost_by_stream(lines: &[Line]) -> Value {
    let mut findings = 0;
    let mut other = 0;
    for v in lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(&l.text).ok())
        .filter(|v| v["event"] == "lost")
    {
        let n = v["count"].as_u64().unwrap_or(0);
        match v["stream"].as_str() {
            Some("other") => other += n,
            _ => findings += n,
        }
    }
    json!({"findings": findings, "other": other})
}

/// `pidns-synth`, built next to the release xtask.
pub(super) fn synth() -> Result<std::path::PathBuf> {
    let p = crate::target_dir()?.join("release/pidns-synth");
    if !p.is_file() {
        bail!("{} missing: run through `cargo xtask bench`", p.display());
    }
    Ok(p)
}
