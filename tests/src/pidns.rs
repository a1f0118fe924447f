//! Running the pidns binary under test.

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::sh;

/// The binary: `$PIDNS_BIN` (set by `cargo xtask test`), else the workspace's debug build.
pub fn bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PIDNS_BIN") {
        return Ok(PathBuf::from(p));
    }
    let fallback = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/pidns");
    if fallback.is_file() {
        return Ok(fallback);
    }
    bail!("pidns binary not found: set PIDNS_BIN or build it with `cargo build -p pidns-user`")
}

/// A `pidns scan --format json` run.
pub struct Scan {
    pub code: i32,
    pub json: Value,
    pub stderr: String,
}

impl Scan {
    pub fn run(extra: &[&str]) -> Result<Scan> {
        let bin = bin()?;
        let mut args = vec!["scan", "--format", "json"];
        args.extend_from_slice(extra);
        let out = sh::output_with(&bin.display().to_string(), &args, sh::DEFAULT_TIMEOUT)?;
        let json = serde_json::from_str(&out.stdout).with_context(|| {
            format!(
                "pidns scan printed no JSON (exit {:?}): {}",
                out.status.code(),
                out.stderr
            )
        })?;
        Ok(Scan {
            code: out.status.code().unwrap_or(-1),
            json,
            stderr: out.stderr,
        })
    }

    pub fn containers(&self) -> &[Value] {
        self.json["containers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The container pidns reported with this id, if any.
    pub fn container(&self, id: &str) -> Option<&Value> {
        self.containers().iter().find(|c| c["id"] == id)
    }
}

/// A running `pidns watch --format json`, whose lines are collected as they come.
pub struct Watch {
    child: Option<Child>,
    lines: Arc<(Mutex<Vec<Value>>, Condvar)>,
    stderr: Arc<Mutex<String>>,
}

impl Watch {
    /// Starts watch and waits for its `ready` event.
    pub fn start(extra: &[&str]) -> Result<Watch> {
        let mut child = Command::new(bin()?)
            .args(["watch", "--format", "json"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting pidns watch")?;
        let lines: Arc<(Mutex<Vec<Value>>, Condvar)> = Arc::default();
        let stderr: Arc<Mutex<String>> = Arc::default();
        let out = child.stdout.take().context("stdout")?;
        let err = child.stderr.take().context("stderr")?;
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let v = serde_json::from_str(&line).unwrap_or(Value::String(line));
                    let (lock, cv) = &*lines;
                    lock.lock().unwrap_or_else(|e| e.into_inner()).push(v);
                    cv.notify_all();
                }
            });
        }
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut s = stderr.lock().unwrap_or_else(|e| e.into_inner());
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        let w = Watch {
            child: Some(child),
            lines,
            stderr,
        };
        if w.wait_for(Duration::from_secs(60), |e| e["event"] == "ready")
            .is_none()
        {
            bail!("pidns watch never became ready; stderr:\n{}", w.stderr());
        }
        Ok(w)
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn events(&self) -> Vec<Value> {
        self.lines
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until an event matches, returning it.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.lines;
        let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(v) = guard.iter().find(|v| pred(v)) {
                return Some(v.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            guard = cv
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Host-PID findings about one container.
    pub fn findings_for(&self, container_id: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == "host_pidns" && e["container_id"] == container_id)
            .collect()
    }

    /// Sends a signal and waits for the exit status.
    pub fn stop_with(
        &mut self,
        signal: nix::sys::signal::Signal,
    ) -> Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("already stopped")?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("pidns watch did not exit within 30s of {signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `pidns-synth`, built next to the test binaries.
pub fn synth() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .context("test binary location")?;
    let p = dir.join("pidns-synth");
    if p.is_file() {
        return Ok(p);
    }
    bail!("pidns-synth not found next to the tests at {}", p.display())
}
