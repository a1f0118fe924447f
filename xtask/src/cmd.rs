//! Small helpers for running commands with readable errors.

use std::{
    ffi::OsStr,
    process::{Command, Output, Stdio},
};

use anyhow::{Context as _, Result, bail};

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

/// `cargo` from the current toolchain, run in the workspace root.
pub fn cargo(args: &[&str]) -> Cmd {
    let mut c = new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.inner.current_dir(crate::workspace_root());
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

    /// Runs and returns whether it succeeded, with inherited stdio.
    pub fn succeeds(&mut self) -> Result<bool> {
        Ok(self
            .inner
            .status()
            .with_context(|| format!("cannot start `{}`", self.display))?
            .success())
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
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
