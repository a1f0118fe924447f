//! Small helpers for running commands with readable errors.

use std::{
    ffi::OsStr,
    io::{BufRead as _, BufReader},
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::{Context as _, Result, bail};

#[derive(Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

pub struct Cmd {
    inner: Command,
    display: String,
}

pub fn new(program: impl AsRef<OsStr>) -> Cmd {
    let display = program.as_ref().to_string_lossy().into_owned();
    Cmd {
        inner: Command::new(program),
        display,
    }
}

static SKIP_EBPF: AtomicBool = AtomicBool::new(false);

/// From now on, every cargo this process starts builds pidns without its
/// eBPF probes (`PIDNS_SKIP_EBPF=1`).
pub fn skip_ebpf() {
    SKIP_EBPF.store(true, Ordering::Relaxed);
}

/// `cargo` from the current toolchain, run in the workspace root.
pub fn cargo(args: &[&str]) -> Cmd {
    let mut c = new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.inner.current_dir(crate::workspace_root());
    if SKIP_EBPF.load(Ordering::Relaxed) {
        c.env("PIDNS_SKIP_EBPF", "1");
    }
    c.args(args);
    c
}

impl Cmd {
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.display.push(' ');
            self.display.push_str(&a.as_ref().to_string_lossy());
            self.inner.arg(a);
        }
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.inner.env(key, value);
        self
    }

    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.inner.env_remove(key);
        self
    }

    /// Runs with inherited stdio; fails on a non-zero exit.
    pub fn run(&mut self) -> Result<()> {
        let status = self
            .inner
            .status()
            .with_context(|| format!("cannot start `{}`", self.display))?;
        if !status.success() {
            bail!("`{}` failed ({status})", self.display);
        }
        Ok(())
    }

    /// Runs with one stream piped and echoed line by line as it comes (the
    /// other inherited); returns whether it succeeded and that stream's lines,
    /// so that a failure can be explained afterwards.
    pub fn tee(&mut self, stream: Stream) -> Result<(bool, Vec<String>)> {
        match stream {
            Stream::Stdout => self.inner.stdout(Stdio::piped()),
            Stream::Stderr => self.inner.stderr(Stdio::piped()),
        };
        let mut child = self
            .inner
            .spawn()
            .with_context(|| format!("cannot start `{}`", self.display))?;
        let mut lines = Vec::new();
        let pipe: Option<Box<dyn std::io::Read>> = match stream {
            Stream::Stdout => child.stdout.take().map(|p| Box::new(p) as _),
            Stream::Stderr => child.stderr.take().map(|p| Box::new(p) as _),
        };
        if let Some(pipe) = pipe {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                match stream {
                    Stream::Stdout => println!("{line}"),
                    Stream::Stderr => eprintln!("{line}"),
                }
                lines.push(line);
            }
        }
        let status = child
            .wait()
            .with_context(|| format!("waiting for `{}`", self.display))?;
        Ok((status.success(), lines))
    }

    /// Starts it with stdout piped (stderr inherited) and returns the child.
    pub fn spawn_stdout(&mut self) -> Result<std::process::Child> {
        self.inner
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{}`", self.display))
    }

    /// Runs quietly and returns its output, whatever the exit status.
    pub fn output(&mut self) -> Result<Output> {
        self.inner
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot start `{}`", self.display))
    }

    /// Runs quietly; returns trimmed stdout on success, or fails with stderr.
    pub fn read(&mut self) -> Result<String> {
        let out = self.output()?;
        if !out.status.success() {
            bail!(
                "`{}` failed ({}): {}",
                self.display,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
