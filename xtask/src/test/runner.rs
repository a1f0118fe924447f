//! Building the test binaries once and running them (the aya model): as
//! this user, or privileged (root, or `sudo -E`) for the privileged suite
//! and the harness.

use std::{
    collections::HashMap,
    ffi::OsString,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, anyhow};
use cargo_metadata::{Message, TargetKind};

use super::{
    HARNESS_BIN,
    failures::Failures,
    summary::{MAX_REASONS, Summary},
};
use crate::{cmd, workspace_root};

/// Environment variables for the programs a [`Runner`] starts.
pub(super) type Env = Vec<(&'static str, OsString)>;

pub(super) struct TestBinary {
    pub label: String,
    pub package: String,
    path: PathBuf,
    /// The package's directory: libtest binaries run there, as under `cargo test`.
    dir: PathBuf,
}

/// Every test binary of the workspace, sorted by label, and the harness.
pub(super) struct Built {
    pub tests: Vec<TestBinary>,
    pub harness: Option<PathBuf>,
}

/// Builds every test binary of the workspace without running it.
pub(super) fn build_tests() -> Result<Built> {
    let mut child = cmd::cargo(&[
        "test",
        "--workspace",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ])
    .spawn_stdout()
    .context("building the tests")?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout from cargo"))?;
    let packages: HashMap<_, _> = crate::metadata()?
        .packages
        .iter()
        .map(|p| (p.id.clone(), p.name.to_string()))
        .collect();
    let mut built = Built {
        tests: Vec::new(),
        harness: None,
    };
    for msg in Message::parse_stream(BufReader::new(stdout)) {
        let Message::CompilerArtifact(art) = msg.context("reading cargo's messages")? else {
            continue;
        };
        let Some(exe) = art.executable.clone() else {
            continue;
        };
        if art.profile.test {
            built.tests.push(test_binary(&art, &packages, exe.into()));
        } else if art.target.name == HARNESS_BIN {
            built.harness = Some(exe.into_std_path_buf());
        }
    }
    if !child.wait()?.success() {
        // rustc's rendered errors went to stderr, above.
        return Err(anyhow!(
            "building the tests failed (`cargo test --workspace --no-run`; the errors are above)"
        ));
    }
    built.tests.sort_by(|a, b| a.label.cmp(&b.label));
    Ok(built)
}

/// A test binary cargo built, labelled `<package> (unit)` or `<package> (<kind> <name>)`.
fn test_binary(
    art: &cargo_metadata::Artifact,
    packages: &HashMap<cargo_metadata::PackageId, String>,
    path: PathBuf,
) -> TestBinary {
    let name = art.target.name.clone();
    let package = packages
        .get(&art.package_id)
        .cloned()
        .unwrap_or_else(|| name.clone());
    let label = if art.target.kind.contains(&TargetKind::Lib) {
        format!("{package} (unit)")
    } else {
        let kind = art
            .target
            .kind
            .first()
            .map_or_else(|| "?".to_owned(), ToString::to_string);
        format!("{package} ({kind} {name})")
    };
    let dir = art
        .manifest_path
        .parent()
        .map_or_else(workspace_root, |d| d.as_std_path().to_owned());
    TestBinary {
        label,
        package,
        path,
        dir,
    }
}

/// How the privileged steps run.
pub(super) enum Runner {
    /// xtask itself is root.
    Root,
    /// `sudo -E`, which needs no password here.
    Sudo,
    /// Neither: privileged tests will say why they skip.
    Unprivileged,
}

impl Runner {
    pub fn find() -> Runner {
        if cmd::is_root() {
            return Runner::Root;
        }
        let sudo_ok = cmd::new("sudo")
            .args(["-n", "true"])
            .output()
            .is_ok_and(|o| o.status.success());
        if sudo_ok {
            Runner::Sudo
        } else {
            eprintln!(
                "xtask test: not root and no password-less sudo; privileged tests will report why they skip"
            );
            Runner::Unprivileged
        }
    }

    pub fn privileged(&self) -> bool {
        !matches!(self, Runner::Unprivileged)
    }

    pub fn command(&self, program: &Path) -> Command {
        match self {
            Runner::Sudo => {
                let mut c = Command::new("sudo");
                c.arg("-E").arg(program);
                c
            }
            Runner::Root | Runner::Unprivileged => Command::new(program),
        }
    }

    /// Like [`Runner::command`], for a program that needs this user's PATH
    /// (cargo and rustup), which sudo would replace with its secure path.
    pub fn command_with_path(&self, program: &Path) -> Command {
        match self {
            Runner::Sudo => {
                let mut c = Command::new("sudo");
                c.args(["-E", "env"]);
                if let Some(path) = std::env::var_os("PATH") {
                    let mut kv = OsString::from("PATH=");
                    kv.push(path);
                    c.arg(kv);
                }
                c.arg(program);
                c
            }
            Runner::Root | Runner::Unprivileged => Command::new(program),
        }
    }
}

/// Runs `pidns-harness <verb>`, echoing its stderr as it comes. Returns
/// whether it succeeded and, when it failed, its last words (its error and
/// what that lists), for the summary.
pub(super) fn run_harness(
    harness: &Path,
    runner: &Runner,
    verb: &str,
    env: &Env,
) -> Result<(bool, Vec<String>)> {
    let mut c = runner.command(harness);
    c.arg(verb)
        .current_dir(workspace_root())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c
        .spawn()
        .with_context(|| format!("running {} {verb}", harness.display()))?;
    let mut tail: Vec<String> = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            eprintln!("{line}");
            tail.push(line);
        }
    }
    let ok = child.wait()?.success();
    if ok {
        return Ok((true, Vec::new()));
    }
    // The harness's error is its last message; keep it and what it lists.
    let start = tail
        .iter()
        .rposition(|l| l.starts_with("pidns-harness "))
        .unwrap_or(tail.len().saturating_sub(10));
    let mut why: Vec<String> = tail.split_off(start);
    why.truncate(MAX_REASONS * 2);
    if why.is_empty() {
        why.push(format!("pidns-harness {verb} failed without a message"));
    }
    Ok((false, why))
}

/// Runs one test binary, echoing its output and keeping its `test result:`
/// line and, for each failed test, its name and first panic line.
pub(super) fn run_binary(
    t: &TestBinary,
    runner: &Runner,
    env: &Env,
    filter: Option<&str>,
    summary: &mut Summary,
) -> Result<bool> {
    println!("\n---- {} ----", t.label);
    let mut c = runner.command(&t.path);
    c.current_dir(&t.dir);
    c.args(filter).stdout(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c
        .spawn()
        .with_context(|| format!("running {}", t.path.display()))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut result = None;
    let mut failures = Failures::default();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        failures.feed(&line);
        if line.starts_with("test result:") {
            result = Some(line);
        }
    }
    let status = child.wait()?;
    let ok = status.success();
    summary.results.push((
        t.label.clone(),
        result.unwrap_or_else(|| format!("no result line ({status}; crashed?)")),
    ));
    if !ok {
        for line in failures.lines().into_iter().take(MAX_REASONS) {
            summary.reason(&t.label, line);
        }
    }
    Ok(ok)
}
