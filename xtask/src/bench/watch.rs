//! The cost of watch (a fork+exec storm with and without it) and its
//! latency and loss (a storm inside a host-PID fake container, every exec a
//! finding). The agent is the test crate's [`Watch`]: its lines come with
//! the time the bench read them.

use std::{path::Path, time::Duration};

use anyhow::Result;
use nix::sys::signal::Signal;
use pidns_tests::{
    cgroups::FakeContainer,
    pidns::{Line, Watch},
};
use serde_json::{Value, json};

use super::{
    flood::Usage,
    interrupted,
    rotate::rotated,
    spawn::{SpawnMethod, Storm, tiny_true},
    stats::{median, percentiles},
};

/// A storm of `/bin/true` with and without watch, alternating which goes first.
pub(super) fn cost(
    pidns: &Path,
    execs: usize,
    rounds: usize,
    method: SpawnMethod,
) -> Result<Value> {
    cost_with(pidns, &["--mode", "ebpf"], execs, rounds, method)
}

/// [`cost`] with the agent started with `args`.
pub(super) fn cost_with(
    pidns: &Path,
    args: &[&str],
    execs: usize,
    rounds: usize,
    method: SpawnMethod,
) -> Result<Value> {
    let storm = Storm::serial(execs, method);
    let run = || storm.run_true();
    let [with, without]: [Vec<f64>; 2] = rotated(pidns, &[Some(args), None], rounds, run)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("two set-ups, two sample sets"))?;
    let (w, wo) = (median(&with), median(&without));
    Ok(json!({
        "execs": execs,
        "spawn": method.as_str(),
        "with_s": w,
        "without_s": wo,
        "ratio": w / wo,
        "samples_with_s": with,
        "samples_without_s": without,
        "target_max": 1.03,
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
    /// Findings the kernel counted beyond the container's budget (reported
    /// in `aggregate` lines, included in `exec`/`fork`/`attach` above).
    aggregated: u64,
    /// The agent's `latency_us`: kernel event to its line being written.
    agent_us: Vec<u64>,
    /// Kernel event (the line's `ts`) to the bench reading the line.
    observed_us: Vec<u64>,
}

fn seen(lines: &[Line], id: &str) -> Seen {
    let mut s = Seen::default();
    for line in lines {
        let Ok(v) = serde_json::from_str::<Value>(&line.text) else {
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
                        line.read_at
                            .duration_since(ts)
                            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
                    );
                }
            }
            Some("aggregate") if v["container_id"] == id && v["of"] == "host_pidns" => {
                let n = v["count"].as_u64().unwrap_or(0);
                s.aggregated += n;
                match v["trigger"].as_str() {
                    Some("exec") => s.exec += n,
                    Some("fork") => s.fork += n,
                    Some("cgroup_attach") => s.attach += n,
                    _ => s.other += n,
                }
            }
            Some("lost") => s.lost += v["count"].as_u64().unwrap_or(0),
            _ => {}
        }
    }
    s
}

/// The findings a storm in a host-PID container must produce, per round.
struct Expected {
    exec: u64,
    fork: u64,
    attach: u64,
}

impl Expected {
    /// fork() then execve() in a host-PID container is a fork and an exec
    /// finding; a vfork child only its exec. Each spawner joining the
    /// cgroup is a cgroup_attach finding, and its exec there (see
    /// `spawn_main`) one more exec.
    fn of(storm: &Storm) -> Expected {
        let execs = storm.execs() as u64;
        Expected {
            exec: execs + storm.workers as u64,
            fork: match storm.method {
                SpawnMethod::Fork => execs,
                SpawnMethod::PosixSpawn => 0,
            },
            attach: storm.workers as u64,
        }
    }

    fn matches(&self, s: &Seen) -> bool {
        s.exec == self.exec && s.fork == self.fork && s.attach == self.attach && s.other == 0
    }
}

/// The rounds of the latency part, as they come.
struct Rounds {
    walls_with: Vec<f64>,
    walls_without: Vec<f64>,
    agent_us: Vec<u64>,
    observed_us: Vec<u64>,
    per_round: Vec<Value>,
    verification: Value,
    /// The agent's CPU share and peak RSS in each round with it.
    agent_cpu_percent: Vec<f64>,
    agent_peak_rss_kib: u64,
}

impl Rounds {
    fn new() -> Rounds {
        Rounds {
            walls_with: Vec::new(),
            walls_without: Vec::new(),
            agent_us: Vec::new(),
            observed_us: Vec::new(),
            per_round: Vec::new(),
            verification: json!({"exact": true, "checked_rounds": 0, "unchecked_rounds": 0}),
            agent_cpu_percent: Vec::new(),
            agent_peak_rss_kib: 0,
        }
    }

    /// Round `r`: its walls with and without the agent and what the agent saw.
    /// A round that lost events is not checked: its counts cannot be exact.
    fn add(&mut self, r: usize, wall_with: f64, wall_without: f64, s: Seen, want: &Expected) {
        let key = if s.lost == 0 {
            "checked_rounds"
        } else {
            "unchecked_rounds"
        };
        let v = &mut self.verification;
        v[key] = json!(v[key].as_u64().unwrap_or(0) + 1);
        if s.lost == 0 && !want.matches(&s) {
            v["exact"] = json!(false);
        }
        self.per_round.push(json!({
            "round": r,
            "order": if r.is_multiple_of(2) { "with first" } else { "without first" },
            "wall_with_s": wall_with,
            "wall_without_s": wall_without,
            "findings": {"exec": s.exec, "fork": s.fork, "cgroup_attach": s.attach, "other": s.other},
            "expected": {"exec": want.exec, "fork": want.fork, "cgroup_attach": want.attach, "other": 0},
            "lost": s.lost,
            "aggregated": s.aggregated,
            "agent_latency_us": s.agent_us,
            "observed_latency_us": s.observed_us,
        }));
        self.walls_with.push(wall_with);
        self.walls_without.push(wall_without);
        self.agent_us.extend(s.agent_us);
        self.observed_us.extend(s.observed_us);
    }

    fn summary(mut self, storm: &Storm) -> Value {
        let execs = storm.execs();
        let sum = |key: &str| -> u64 {
            self.per_round
                .iter()
                .map(|r| r[key].as_u64().unwrap_or(0))
                .sum()
        };
        let (lost, aggregated) = (sum("lost"), sum("aggregated"));
        let (w, wo) = (median(&self.walls_with), median(&self.walls_without));
        json!({
            "execs_per_round": execs,
            "workers": storm.workers,
            "spawn": storm.method.as_str(),
            "rounds": self.per_round.len(),
            "exec_per_s_with_watch": execs as f64 / w,
            "exec_per_s_without_watch": execs as f64 / wo,
            "slowdown_every_exec_a_finding": w / wo,
            "agent_latency": percentiles(&mut self.agent_us),
            "observed_latency": percentiles(&mut self.observed_us),
            "lost": lost,
            "aggregated": aggregated,
            "verification": self.verification,
            "agent_cpu_percent": median(&self.agent_cpu_percent),
            "agent_peak_rss_kib": self.agent_peak_rss_kib,
            "per_round": self.per_round,
            "targets": {"p99_us_max": 10_000, "lost_max": 0, "exec_per_s": 10_000},
        })
    }
}

/// Exec storms in a host-PID fake container in the unified hierarchy,
/// alternating without and with the agent; its findings checked against
/// the execs.
pub(super) fn latency(pidns: &Path, unified: &Path, storm: &Storm, rounds: usize) -> Result<Value> {
    // Not recorded for pidns-harness: the bench removes its own.
    let fake = FakeContainer::docker_in(&[unified.to_path_buf()], false)?;
    let record = DockerRecord::new(&fake.id)?;
    let argv = tiny_true()?;
    let run = || storm.run(Some(&fake.dir), &argv);
    let want = Expected::of(storm);
    run()?;
    let mut all = Rounds::new();
    for r in 0..rounds {
        interrupted()?;
        let with_agent = || -> Result<(f64, Seen, Usage, Usage)> {
            let root = record.host_root();
            let agent = Watch::start_with(pidns, &["--mode", "ebpf", "--host-root", &root])?;
            let pid = agent.pid().unwrap_or(0);
            let before = Usage::of(pid)?;
            let wall = run()?;
            agent.settle(Duration::from_millis(300), Duration::from_secs(10));
            let after = Usage::of(pid)?;
            let lines = agent.finish(Signal::SIGTERM)?;
            Ok((wall, seen(&lines, &fake.id), before, after))
        };
        let ((wall_with, s, before, after), wall_without) = if r % 2 == 0 {
            let w = with_agent()?;
            (w, run()?)
        } else {
            let wo = run()?;
            (with_agent()?, wo)
        };
        all.agent_cpu_percent
            .push(100.0 * (after.cpu_s - before.cpu_s) / wall_with);
        all.agent_peak_rss_kib = all.agent_peak_rss_kib.max(after.hwm_kib);
        all.add(r, wall_with, wall_without, s, &want);
    }
    Ok(all.summary(storm))
}

/// The Docker record a real container has, for the fake one, in a host
/// root of its own that the agent reads runtimes' state from
/// (`--host-root`): a cgroup's name alone is a claim, which watch does not
/// report. Removed on drop.
pub(super) struct DockerRecord(std::path::PathBuf);

impl DockerRecord {
    pub(super) fn new(id: &str) -> Result<DockerRecord> {
        let root = std::env::temp_dir().join(format!("pidns-bench-root-{}", std::process::id()));
        std::fs::create_dir_all(root.join("var/lib/docker/containers").join(id))?;
        Ok(DockerRecord(root))
    }

    pub(super) fn host_root(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for DockerRecord {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
