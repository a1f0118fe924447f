//! A real Prometheus (the server of Debian's `prometheus` package, which
//! `pidns-harness up` installs) for the alerting tests: a configuration,
//! data directory and loopback port of its own, scraping its targets and
//! evaluating its rule files every second. Stopped, and its directory
//! removed, on drop.

use std::{
    fs,
    net::TcpListener,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::state;

/// The server's binary.
pub const SERVER: &str = "prometheus";
/// Its rule checker and unit-test runner.
pub const PROMTOOL: &str = "promtool";

/// How often the test server scrapes and evaluates its rules.
pub const INTERVAL: &str = "1s";

/// `deploy/prometheus` in this repository: the rules and their unit tests.
pub fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

/// A running Prometheus.
pub struct Prometheus {
    child: Option<Child>,
    dir: PathBuf,
    /// `127.0.0.1:<port>`, its HTTP API.
    pub addr: String,
}

impl Prometheus {
    /// Starts a server that scrapes `targets` (`host:port`) as job `job`
    /// and loads `rule_files`, and waits until it is ready.
    pub fn start(job: &str, targets: &[String], rule_files: &[PathBuf]) -> Result<Prometheus> {
        let dir = std::env::temp_dir().join(format!("{}-prometheus", state::unique_name()));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Created first, so that Drop removes the directory whatever fails next.
        let mut p = Prometheus {
            child: None,
            dir,
            addr: String::new(),
        };
        let config = p.dir.join("prometheus.yml");
        fs::write(&config, config_yaml(job, targets, rule_files)?)
            .with_context(|| format!("writing {}", config.display()))?;
        p.addr = format!("127.0.0.1:{}", free_port()?);
        let log = fs::File::create(p.log_path()).context("creating Prometheus's log")?;
        let mut cmd = Command::new(SERVER);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                p.dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={}", p.addr))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        // Prometheus dies with the test thread that started it, even when the
        // test binary is killed before Drop runs.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        p.child = Some(cmd.spawn().with_context(|| format!("starting {SERVER}"))?);
        p.wait_ready(Duration::from_secs(60))?;
        Ok(p)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("prometheus.log")
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if ureq::get(&format!("http://{}/-/ready", self.addr))
                .call()
                .is_ok()
            {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "{SERVER} exited ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                bail!("{SERVER} not ready within {timeout:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET /api/v1/<path>` with query parameters: its `data`, once the
    /// API said `success`.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value> {
        let mut req = ureq::get(&format!("http://{}/api/v1/{path}", self.addr));
        for (k, v) in params {
            req = req.query(*k, *v);
        }
        let body = req
            .call()
            .with_context(|| format!("GET /api/v1/{path}"))?
            .into_body()
            .read_to_string()
            .with_context(|| format!("reading /api/v1/{path}"))?;
        let v: Value = serde_json::from_str(&body)
            .with_context(|| format!("/api/v1/{path} answered no JSON: {body}"))?;
        if v["status"] != "success" {
            bail!("/api/v1/{path}: {body}");
        }
        Ok(v["data"].clone())
    }

    /// An instant query's result: one element per series.
    pub fn query(&self, promql: &str) -> Result<Vec<Value>> {
        let data = self.api("query", &[("query", promql)])?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// The active alerts (pending and firing).
    pub fn alerts(&self) -> Result<Vec<Value>> {
        let data = self.api("alerts", &[])?;
        Ok(data["alerts"].as_array().cloned().unwrap_or_default())
    }

    /// Every alerting rule as the server last evaluated it (`health`,
    /// `lastError`, its active alerts).
    pub fn alerting_rules(&self) -> Result<Vec<Value>> {
        let data = self.api("rules", &[("type", "alert")])?;
        Ok(data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The server's configuration: one scrape job, the rule files, every
/// interval [`INTERVAL`]. JSON is YAML, and serde_json quotes the paths.
fn config_yaml(job: &str, targets: &[String], rule_files: &[PathBuf]) -> Result<String> {
    let rule_files = rule_files
        .iter()
        .map(|p| {
            p.canonicalize()
                .with_context(|| format!("rule file {}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let config = serde_json::json!({
        "global": {
            "scrape_interval": INTERVAL,
            "scrape_timeout": INTERVAL,
            "evaluation_interval": INTERVAL,
        },
        "rule_files": rule_files,
        "scrape_configs": [{
            "job_name": job,
            "static_configs": [{ "targets": targets }],
        }],
    });
    Ok(serde_json::to_string_pretty(&config)?)
}

/// A loopback port nobody listens on now (another process may take it
/// before Prometheus does: then it exits, and says so).
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    Ok(l.local_addr()?.port())
}
