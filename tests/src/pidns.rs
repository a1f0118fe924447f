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

/// The binary: `$PIDNS_BIN` (set by `cargo xtask test`), else `pidns` built
/// next to this test binary (`<target dir>/<profile>/pidns`, wherever
/// `CARGO_TARGET_DIR` put it).
pub fn bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PIDNS_BIN") {
        return Ok(PathBuf::from(p));
    }
    let fallback = profile_dir()?.join("pidns");
    if fallback.is_file() {
        return Ok(fallback);
    }
    bail!(
        "pidns binary not found at {}: set PIDNS_BIN or build it with `cargo build -p pidns-user`",
        fallback.display()
    )
}

/// `<target dir>/<profile>`: test binaries live in its `deps/`.
fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .context("test binary location")
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
    lines: Arc<(Mutex<Lines>, Condvar)>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Lines {
    events: Vec<Value>,
    /// Stdout reached EOF: pidns exited (or closed it); nothing more will come.
    closed: bool,
}

impl Watch {
    /// Starts watch and waits for its `ready` event. If pidns exits first
    /// (no BPF here: exit 2), this returns at once with what it printed.
    pub fn start(extra: &[&str]) -> Result<Watch> {
        let mut child = Command::new(bin()?)
            .args(["watch", "--format", "json"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting pidns watch")?;
        let lines: Arc<(Mutex<Lines>, Condvar)> = Arc::default();
        let stderr: Arc<Mutex<String>> = Arc::default();
        let out = child.stdout.take().context("stdout")?;
        let err = child.stderr.take().context("stderr")?;
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                let (lock, cv) = &*lines;
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let v = serde_json::from_str(&line).unwrap_or(Value::String(line));
                    lock.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .events
                        .push(v);
                    cv.notify_all();
                }
                lock.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
                cv.notify_all();
            });
        }
        let stderr_reader = {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut s = stderr.lock().unwrap_or_else(|e| e.into_inner());
                    s.push_str(&line);
                    s.push('\n');
                }
            })
        };
        let mut w = Watch {
            child: Some(child),
            lines,
            stderr,
            stderr_reader: Some(stderr_reader),
        };
        if w.wait_for(Duration::from_secs(60), |e| e["event"] == "ready")
            .is_some()
        {
            return Ok(w);
        }
        if w.closed() {
            // It exited: its status and all it said are the reason. Taken
            // out of `w`, so that Drop never signals a reaped (reusable) pid.
            let status = w.child.take().and_then(|mut c| c.wait().ok());
            if let Some(reader) = w.stderr_reader.take() {
                let _ = reader.join();
            }
            let status = status.map_or_else(|| "unknown status".into(), |s| s.to_string());
            bail!(
                "pidns watch exited ({status}) before `ready`: {}",
                w.stderr().trim()
            );
        }
        bail!(
            "pidns watch never became ready within 60s; stderr:\n{}",
            w.stderr()
        );
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
            .events
            .clone()
    }

    /// Whether watch's stdout is closed (it exited).
    pub fn closed(&self) -> bool {
        self.lines
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed
    }

    /// Waits until an event matches, returning it; `None` at the timeout,
    /// or at once when watch has exited and no event matched.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.lines;
        let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(v) = guard.events.iter().find(|v| pred(v)) {
                return Some(v.clone());
            }
            let now = Instant::now();
            if guard.closed || now >= deadline {
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
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal) {
            // Already exited (a zombie still takes signals; this is a race at most).
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e).context("signalling pidns watch");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
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
    /// SIGTERM first, so that watch detaches its probes and undoes what it
    /// set up (a tracefs it mounted); SIGKILL if it does not exit.
    fn drop(&mut self) {
        if self.child.is_some() && self.stop_with(nix::sys::signal::Signal::SIGTERM).is_ok() {
            return;
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `pidns-synth`, built next to the test binaries.
pub fn synth() -> Result<PathBuf> {
    let p = profile_dir()?.join("pidns-synth");
    if p.is_file() {
        return Ok(p);
    }
    bail!("pidns-synth not found next to the tests at {}", p.display())
}
