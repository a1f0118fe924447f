//! Running commands with a deadline and readable errors.

use std::{
    ffi::OsStr,
    io::Read as _,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Out {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to completion (killing it after `timeout`).
pub fn output_with<S: AsRef<OsStr>>(program: &str, args: &[S], timeout: Duration) -> Result<Out> {
    let shown = format!(
        "{program} {}",
        args.iter()
            .map(|a| a.as_ref().to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let out_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{shown}` timed out after {timeout:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Ok(Out {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

/// Runs a command and returns its trimmed stdout; fails with its stderr.
pub fn run<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<String> {
    let out = output_with(program, args, DEFAULT_TIMEOUT)?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.iter()
                .map(|a| a.as_ref().to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            out.status,
            out.stderr.trim()
        );
    }
    Ok(out.stdout.trim().to_owned())
}

/// Runs a command whose children may keep its stdio open (`runc run -d`
/// passes its own stdio on to the detached container): output goes through
/// files rather than pipes, so nothing waits for an EOF that never comes.
pub fn run_detaching<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<String> {
    let dir = crate::state::state_dir().join("out");
    std::fs::create_dir_all(&dir)?;
    let base = dir.join(crate::state::random_hex(8));
    let (out_path, err_path) = (base.with_extension("out"), base.with_extension("err"));
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?)
        .status()
        .with_context(|| format!("cannot start {program}"))?;
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    if !status.success() {
        bail!("`{program}` failed ({status}): {}", stderr.trim());
    }
    Ok(stdout.trim().to_owned())
}

/// Whether a command exits 0 (within a short deadline).
pub fn ok<S: AsRef<OsStr>>(program: &str, args: &[S]) -> bool {
    output_with(program, args, Duration::from_secs(20)).is_ok_and(|o| o.status.success())
}

pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}
