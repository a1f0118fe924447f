//! Running the pidns binary under test.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::sh;

/// The binary: `$PIDNS_BIN` (set by `cargo xtask test`), else `pidns` built
/// next to this test binary (`<target dir>/<profile>/pidns`, wherever
/// `CARGO_TARGET_DIR` put it).
pub fn bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(crate::env::BIN) {
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

/// A running `pidns watch --format json`, whose lines are collected as they
/// come, each with the time it was read: the benchmark's latency as seen
/// from outside (`cargo xtask bench`) is that time against the line's `ts`.
pub struct Watch {
    child: Option<Child>,
    lines: Arc<(Mutex<Lines>, Condvar)>,
    stdout_reader: Option<std::thread::JoinHandle<()>>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

/// One line of watch's stdout and when it was read.
#[derive(Debug, Clone)]
pub struct Line {
    pub read_at: SystemTime,
    pub text: String,
}

/// What the reader thread collected. It only stores and timestamps lines:
/// they are parsed when asked for (`parsed` catches up with `raw`), so that
/// reading keeps up with an exec storm without competing with it for CPU.
#[derive(Default)]
struct Lines {
    raw: Vec<Line>,
    parsed: Vec<Value>,
    /// Stdout reached EOF: pidns exited (or closed it); nothing more will come.
    closed: bool,
    /// Threads in [`Watch::wait_for`]: the reader wakes them only when there are some.
    waiters: usize,
}

impl Lines {
    /// Every line as JSON (a line that is not JSON as a string).
    fn events(&mut self) -> &[Value] {
        for line in &self.raw[self.parsed.len()..] {
            self.parsed.push(
                serde_json::from_str(&line.text)
                    .unwrap_or_else(|_| Value::String(line.text.clone())),
            );
        }
        &self.parsed
    }
}

impl Watch {
    /// Starts watch (the binary under test, [`bin`]) and waits for its
    /// `ready` event. If pidns exits first (no BPF here: exit 2), this
    /// returns at once with what it printed.
    pub fn start(extra: &[&str]) -> Result<Watch> {
        Watch::start_with(&bin()?, extra)
    }

    /// [`Watch::start`] with the given pidns binary.
    pub fn start_with(bin: &Path, extra: &[&str]) -> Result<Watch> {
        let mut child = Command::new(bin)
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
        let stdout_reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                let (lock, cv) = &*lines;
                for text in BufReader::new(out).lines().map_while(Result::ok) {
                    let read_at = SystemTime::now();
                    let mut l = lock.lock().unwrap_or_else(|e| e.into_inner());
                    l.raw.push(Line { read_at, text });
                    if l.waiters > 0 {
                        cv.notify_all();
                    }
                }
                lock.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
                cv.notify_all();
            })
        };
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
            stdout_reader: Some(stdout_reader),
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Lines> {
        self.lines.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn events(&self) -> Vec<Value> {
        self.lock().events().to_vec()
    }

    /// How many lines watch has written so far.
    pub fn line_count(&self) -> usize {
        self.lock().raw.len()
    }

    /// Waits until no line has come for `quiet`, at most `max`: watch has
    /// written what the kernel handed it.
    pub fn settle(&self, quiet: Duration, max: Duration) {
        let deadline = Instant::now() + max;
        let mut last = self.line_count();
        let mut since = Instant::now();
        while Instant::now() < deadline && since.elapsed() < quiet {
            std::thread::sleep(Duration::from_millis(20));
            let n = self.line_count();
            if n != last {
                last = n;
                since = Instant::now();
            }
        }
    }

    /// Whether watch's stdout is closed (it exited).
    pub fn closed(&self) -> bool {
        self.lock().closed
    }

    /// Waits until an event matches, returning it; `None` at the timeout,
    /// or at once when watch has exited and no event matched.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        let cv = &self.lines.1;
        let mut guard = self.lock();
        loop {
            if let Some(v) = guard.events().iter().find(|v| pred(v)) {
                return Some(v.clone());
            }
            let now = Instant::now();
            if guard.closed || now >= deadline {
                return None;
            }
            guard.waiters += 1;
            guard = cv
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            guard.waiters -= 1;
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

    /// Stops watch with `signal` and returns every line it wrote, with
    /// when each was read.
    pub fn finish(mut self, signal: nix::sys::signal::Signal) -> Result<Vec<Line>> {
        self.stop_with(signal)?;
        if let Some(reader) = self.stdout_reader.take() {
            let _ = reader.join();
        }
        Ok(std::mem::take(&mut self.lock().raw))
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
