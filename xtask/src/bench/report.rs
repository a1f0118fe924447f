//! The results: the JSON document, written out after every part, and what
//! is printed of each part.

use std::{fs, path::PathBuf};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use super::Bench;

/// The JSON results, written out after every part.
pub(super) struct Report {
    path: PathBuf,
    doc: Value,
    /// Correctness checks that failed: the run fails at the end.
    failures: Vec<String>,
}

impl Report {
    /// The header (machine, options), written at once.
    pub(super) fn start(bench: &Bench) -> Result<Report> {
        let mut report = Report {
            path: bench.out()?,
            doc: bench.header(),
            failures: Vec::new(),
        };
        report.save()?;
        Ok(report)
    }

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

    pub(super) fn part(&mut self, key: &str, value: Value) -> Result<()> {
        self.doc[key] = value;
        self.save()
    }

    /// Records a failed correctness check, from a part's `verification`.
    pub(super) fn check(&mut self, part: &str, verification: &Value) {
        if verification["exact"] == false {
            let what = format!("{part}: {verification}");
            eprintln!("bench: MISMATCH in {what}");
            self.failures.push(what);
        }
    }

    /// Marks the results complete; fails when a correctness check did.
    pub(super) fn finish(mut self) -> Result<()> {
        self.doc["complete"] = json!(true);
        self.save()?;
        println!("\nresults: {}", self.path.display());
        if !self.failures.is_empty() {
            bail!(
                "{} correctness check(s) failed:\n  {}",
                self.failures.len(),
                self.failures.join("\n  ")
            );
        }
        Ok(())
    }
}

pub(super) fn machine() -> Value {
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

pub(super) fn print_scan(r: &Value) {
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

pub(super) fn print_scaling(rows: &[Value]) {
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

pub(super) fn print_cost(cost: &Value) {
    println!(
        "\nwatch cost: {} storm of {} x /bin/true: median {:.3}s without, {:.3}s with watch: ratio {:.3} (target <= 1.03)",
        cost["spawn"].as_str().unwrap_or("?"),
        cost["execs"],
        cost["without_s"].as_f64().unwrap_or(0.0),
        cost["with_s"].as_f64().unwrap_or(0.0),
        cost["ratio"].as_f64().unwrap_or(0.0)
    );
}

pub(super) fn print_access_storm(cost: &Value) {
    let f = |k: &str| cost[k].as_f64().unwrap_or(0.0);
    println!(
        "host access, {} storm of {} x /bin/true: median {:.3}s without, {:.3}s with watch (ratio {:.3}), {:.3}s with --proc-access (ratio {:.3}); best of each: ratio {:.3} with watch, {:.3} with --proc-access",
        cost["spawn"].as_str().unwrap_or("?"),
        cost["execs"],
        f("without_s"),
        f("with_s"),
        f("ratio"),
        f("with_proc_access_s"),
        f("ratio_proc_access"),
        f("best_ratio"),
        f("best_ratio_proc_access")
    );
}

pub(super) fn print_open_cost(cost: &Value) {
    let ns = |k: &str| cost[k].as_f64().unwrap_or(0.0);
    println!(
        "open cost: {} open+close by a host process: {:.0} ns each without watch, {:.0} ns with (ratio {:.3}), {:.0} ns with --proc-access (ratio {:.3})",
        cost["opens"],
        ns("ns_per_open_without"),
        ns("ns_per_open_with"),
        ns("ratio"),
        ns("ns_per_open_with_proc_access"),
        ns("ratio_proc_access")
    );
    println!(
        "  best of each: {:.0} ns without, {:.0} ns with watch, {:.0} ns with --proc-access",
        ns("best_ns_per_open_without"),
        ns("best_ns_per_open_with"),
        ns("best_ns_per_open_with_proc_access")
    );
    println!(
        "  CPU time in the probes (kernel's accounting): {:.1} ns per open with watch, {:.1} ns with --proc-access",
        ns("probe_ns_per_open_with"),
        ns("probe_ns_per_open_with_proc_access")
    );
}

pub(super) fn print_enforce(cost: &Value, death: &Value) {
    println!(
        "\nenforce cost: {} storm of {} x /bin/true: median {:.3}s without an agent, {:.3}s with --enforce setns,host-pidns: ratio {:.3} (target <= 1.03)",
        cost["spawn"].as_str().unwrap_or("?"),
        cost["execs"],
        cost["without_s"].as_f64().unwrap_or(0.0),
        cost["with_s"].as_f64().unwrap_or(0.0),
        cost["ratio"].as_f64().unwrap_or(0.0)
    );
    let p = |k: &str, q: &str| death[k][q].as_u64().unwrap_or(0);
    println!(
        "  host-PID first exec to death: {}/{} killed (reported {}): p50 {} us, p99 {} us, max {} us; exec to exit without the agent p50 {} us",
        death["killed"],
        death["processes"],
        death["reported_killed"],
        p("exec_to_death", "p50_us"),
        p("exec_to_death", "p99_us"),
        p("exec_to_death", "max_us"),
        p("exec_to_exit_without_agent", "p50_us"),
    );
}

pub(super) fn print_latency(l: &Value) {
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
        "  lost {}; aggregated beyond the budget {}; findings against execs: {}",
        l["lost"], l["aggregated"], l["verification"]
    );
    println!(
        "  agent under the storm: {:.1}% CPU (median), peak RSS {} KiB",
        l["agent_cpu_percent"].as_f64().unwrap_or(0.0),
        l["agent_peak_rss_kib"]
    );
}

pub(super) fn print_flood(f: &Value) {
    println!(
        "\nflood: {}/{} short-lived --pid=host containers reported with their id under a setns+fork flood from 2 isolated containers ({:.1} s); lost: {}",
        f["reported_with_id"],
        f["host_pid_containers"],
        f["seconds"].as_f64().unwrap_or(0.0),
        f["lost"]
    );
    println!(
        "  agent idle: {} KiB RSS, {:.2}% CPU; under the flood: {} KiB RSS (peak {}), {:.1}% CPU",
        f["agent_idle"]["rss_kib"],
        f["agent_idle"]["cpu_percent"].as_f64().unwrap_or(0.0),
        f["agent_under_flood"]["rss_kib"],
        f["agent_under_flood"]["peak_rss_kib"],
        f["agent_under_flood"]["cpu_percent"]
            .as_f64()
            .unwrap_or(0.0)
    );
}
