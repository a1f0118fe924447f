//! What reading the runtimes' records costs the scan: `pidns scan` with the
//! records of stopped Docker containers under its host root (half created
//! with `--pid=host`, half exited with their own PID namespace, as
//! `hostconfig.json` and `config.v2.json` lay them out) against the same
//! scan with an empty host root, alternately on the live host; and
//! `--offline` on those records alone. Checked: every stopped container is
//! reported, the `--pid=host` half as sharing.

use std::{fs, path::Path};

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use super::{interrupted, scan::timed, stats::median};

/// A host root of `n` stopped containers' records, removed on drop.
struct Records {
    dir: std::path::PathBuf,
}

impl Records {
    fn create(n: usize) -> Result<Records> {
        let dir = std::env::temp_dir().join(format!("pidns-bench-state-{}", std::process::id()));
        let r = Records { dir };
        fs::create_dir_all(r.dir.join("empty"))?;
        for i in 0..n {
            let c = r.host().join(format!("var/lib/docker/containers/{i:064x}"));
            fs::create_dir_all(&c)?;
            let (mode, started) = if i % 2 == 0 {
                ("host", "0001-01-01T00:00:00Z")
            } else {
                ("", "2026-12-04T10:00:00Z")
            };
            fs::write(
                c.join("hostconfig.json"),
                json!({"PidMode": mode}).to_string(),
            )?;
            fs::write(
                c.join("config.v2.json"),
                json!({"Name": format!("/bench-{i}"), "State": {"Running": false, "StartedAt": started}})
                    .to_string(),
            )?;
        }
        Ok(r)
    }

    fn host(&self) -> std::path::PathBuf {
        self.dir.join("host")
    }
}

impl Drop for Records {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn scan_json(pidns: &Path, args: &[&str]) -> Result<Value> {
    let out = std::process::Command::new(pidns)
        .args(["scan", "--format", "json"])
        .args(args)
        .output()?;
    serde_json::from_slice(&out.stdout).context("pidns scan JSON")
}

/// The scan with `n` stopped containers' records, without, and offline.
pub(super) fn stopped(pidns: &Path, n: usize, rounds: usize) -> Result<Value> {
    let records = Records::create(n)?;
    let host = records.host().display().to_string();
    let empty = records.dir.join("empty").display().to_string();
    let runs: [(&str, Vec<&str>); 3] = [
        ("scan, empty host root", vec!["--host-root", &empty]),
        (
            "scan, host root with the records",
            vec!["--host-root", &host],
        ),
        (
            "scan --offline on the records",
            vec!["--offline", "--host-root", &host],
        ),
    ];
    let live = scan_json(pidns, &runs[1].1)?;
    let offline = scan_json(pidns, &runs[2].1)?;
    let counts = |j: &Value| {
        (
            j["summary"]["not_running"].clone(),
            j["summary"]["sharing"].clone(),
        )
    };
    let want = (json!(n), json!(n.div_ceil(2)));
    let exact = counts(&offline) == want && counts(&live).0 == want.0;
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    for (_, a) in &runs {
        let mut args = vec!["scan", "--format", "json"];
        args.extend(a);
        timed(pidns, &args)?;
    }
    for r in 0..rounds {
        for i in 0..runs.len() {
            interrupted()?;
            let t = (i + r) % runs.len();
            let mut args = vec!["scan", "--format", "json"];
            args.extend(&runs[t].1);
            times[t].push(timed(pidns, &args)?.0);
        }
    }
    let medians: Vec<f64> = times.iter().map(|t| median(t)).collect();
    Ok(json!({
        "stopped_containers": n,
        "runs": runs.iter().zip(&medians).zip(&times).map(|(((name, _), m), s)| {
            json!({"run": name, "median_s": m, "samples_s": s})
        }).collect::<Vec<_>>(),
        "cost_s": medians[1] - medians[0],
        "cost_per_container_us": (medians[1] - medians[0]) / n as f64 * 1e6,
        "verification": {
            "exact": exact,
            "offline_not_running_sharing": [counts(&offline).0, counts(&offline).1],
            "live_not_running": counts(&live).0,
            "want": [want.0, want.1],
        },
    }))
}

pub(super) fn print(r: &Value) {
    println!(
        "\nscan with {} stopped containers' records:",
        r["stopped_containers"]
    );
    for t in r["runs"].as_array().into_iter().flatten() {
        println!(
            "  {:<36} {:>9.2} ms",
            t["run"].as_str().unwrap_or("?"),
            t["median_s"].as_f64().unwrap_or(0.0) * 1000.0
        );
    }
    println!(
        "  cost of the records: {:.2} ms ({:.1} us per stopped container)",
        r["cost_s"].as_f64().unwrap_or(0.0) * 1000.0,
        r["cost_per_container_us"].as_f64().unwrap_or(0.0)
    );
    println!("  verification: {}", r["verification"]);
}
