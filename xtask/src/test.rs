//! `cargo xtask test`: every check the project has, in one command.
//!
//! Test binaries are built once with `cargo test --no-run` and then run by
//! xtask itself (the aya model), so that the privileged suite (package
//! `pidns-tests`) can run as root, through `sudo -E` when possible, between
//! the harness's bring-up and teardown of the container runtimes.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, anyhow};

use crate::{cmd, setup, workspace_root};

const PRIVILEGED_PACKAGE: &str = "pidns-tests";
/// Tag of the image the privileged image test runs (removed by the harness's teardown).
const AGENT_IMAGE: &str = "pidnst/pidns:test";
const HARNESS_BIN: &str = "pidns-harness";

#[derive(clap::Args)]
pub struct Options {
    /// Skip `cargo fmt --check` and clippy.
    #[arg(long)]
    no_lint: bool,
    /// Skip the privileged tests.
    #[arg(long)]
    no_privileged: bool,
    /// Passed to every test binary: run only tests whose name contains it.
    filter: Option<String>,
}

struct TestBinary {
    label: String,
    package: String,
    path: PathBuf,
}

#[derive(Default)]
struct Summary {
    steps: Vec<(String, bool)>,
    results: Vec<(String, String)>,
    /// Why a step failed, when the step said so: repeated under the summary
    /// so that the last lines of a red run tell what broke.
    reasons: Vec<(String, String)>,
}

impl Summary {
    fn step(&mut self, name: &str, ok: bool) -> bool {
        self.steps.push((name.to_owned(), ok));
        ok
    }

    fn passed(&self) -> bool {
        self.steps.iter().all(|(_, ok)| *ok)
    }
}

pub fn run(opts: Options) -> Result<ExitCode> {
    let started = Instant::now();
    let root = workspace_root();
    let mut summary = Summary::default();
    setup::run(setup::Mode::Install)?;

    if !opts.no_lint {
        let fmt = cmd::cargo(&["fmt", "--all", "--", "--check"]).succeeds()?;
        summary.step("cargo fmt --check", fmt);
        let clippy = cmd::cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .succeeds()?;
        summary.step("clippy (user space, -D warnings)", clippy);
        let target_dir = root.join("target/ebpf-clippy");
        let ebpf = setup::nightly(&[
            "cargo",
            "clippy",
            "-p",
            "pidns-ebpf",
            "--features",
            "ebpf",
            "--bins",
        ])
        .args([
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--release",
            "--target-dir",
        ])
        .args([&target_dir])
        .args(["--", "-D", "warnings"])
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            "--cfg=bpf_target_arch=\"x86_64\"",
        )
        .succeeds()?;
        summary.step("clippy (eBPF, -D warnings)", ebpf);
    }

    cmd::cargo(&["build", "-p", "pidns-user", "--bin", "pidns"]).run()?;
    let pidns_bin = root.join("target/debug/pidns");
    let (tests, harness) = build_tests()?;

    let skip_log = root.join("target/xtask/skipped-tests.txt");
    fs::create_dir_all(skip_log.parent().unwrap_or(&root))?;
    fs::write(&skip_log, "")?;

    for t in tests.iter().filter(|t| t.package != PRIVILEGED_PACKAGE) {
        let ok = run_binary(t, None, &[], opts.filter.as_deref(), &mut summary)?;
        summary.step(&t.label, ok);
    }

    if !opts.no_privileged {
        let runner = privileged_runner();
        let env = [
            ("PIDNS_BIN", pidns_bin.as_os_str()),
            ("PIDNS_SKIP_LOG", skip_log.as_os_str()),
            ("PIDNS_TEST_IMAGE", std::ffi::OsStr::new(AGENT_IMAGE)),
        ];
        let harness = harness.ok_or_else(|| anyhow!("the {HARNESS_BIN} binary was not built"))?;
        let ok = run_harness(&harness, runner.as_deref(), "up", &env, &mut summary)?;
        summary.step("runtime bring-up", ok);
        // The agent's image, for the test that runs it as the DaemonSet would.
        if ok && cmd::is_root() {
            let built = crate::image::static_binary()
                .and_then(|bin| crate::image::build(&bin, AGENT_IMAGE));
            if let Err(e) = &built {
                eprintln!("xtask test: building the agent image failed: {e:#}");
            }
            summary.step("agent image (static binary, FROM scratch)", built.is_ok());
        }
        for t in tests.iter().filter(|t| t.package == PRIVILEGED_PACKAGE) {
            let ok = run_binary(
                t,
                runner.as_deref(),
                &env,
                opts.filter.as_deref(),
                &mut summary,
            )?;
            summary.step(&t.label, ok);
        }
        let ok = run_harness(&harness, runner.as_deref(), "down", &env, &mut summary)?;
        summary.step("runtime teardown (nothing left behind)", ok);
        // Proves the benchmark still runs; its numbers are not checked here.
        if cmd::is_root() {
            let ok = cmd::cargo(&[
                "xtask",
                "bench",
                "--smoke",
                "--out",
                "target/bench/smoke.json",
            ])
            .succeeds()?;
            summary.step("cargo xtask bench --smoke", ok);
        }
    }

    let skipped = fs::read_to_string(&skip_log).unwrap_or_default();
    println!("\n==================== cargo xtask test: summary ====================");
    for (step, ok) in &summary.steps {
        println!("{:<6} {step}", if *ok { "ok" } else { "FAILED" });
    }
    for (label, line) in &summary.results {
        // Binaries without tests (pidns, xtask, the harness) would only add noise.
        if !line.starts_with("test result: ok. 0 passed; 0 failed") {
            println!("{label}: {line}");
        }
    }
    for (step, line) in &summary.reasons {
        println!("{step}: {line}");
    }
    if skipped.trim().is_empty() {
        println!("privileged tests skipped: none");
    } else {
        for line in skipped.lines() {
            println!("privileged test skipped: {line}");
        }
    }
    let verdict = if summary.passed() { "PASSED" } else { "FAILED" };
    println!("cargo xtask test: {verdict} in {:.0?}", started.elapsed());
    Ok(if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Builds every test binary of the workspace without running it.
fn build_tests() -> Result<(Vec<TestBinary>, Option<PathBuf>)> {
    let out = cmd::cargo(&[
        "test",
        "--workspace",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ])
    .output()
    .context("building the tests")?;
    if !out.status.success() {
        return Err(anyhow!(
            "building the tests failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let names = package_names()?;
    let mut tests = Vec::new();
    let mut harness = None;
    for line in out.stdout.split(|&b| b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        let name = msg["target"]["name"].as_str().unwrap_or("?");
        let kind = msg["target"]["kind"][0].as_str().unwrap_or("?");
        let package = msg["manifest_path"]
            .as_str()
            .and_then(|m| names.get(Path::new(m)))
            .cloned()
            .unwrap_or_else(|| name.to_owned());
        if msg["profile"]["test"] == true {
            let label = if kind == "lib" {
                format!("{package} (unit)")
            } else {
                format!("{package} ({kind} {name})")
            };
            tests.push(TestBinary {
                label,
                package,
                path: PathBuf::from(exe),
            });
        } else if name == HARNESS_BIN {
            harness = Some(PathBuf::from(exe));
        }
    }
    tests.sort_by(|a, b| a.label.cmp(&b.label));
    Ok((tests, harness))
}

/// Workspace package names by manifest path.
fn package_names() -> Result<std::collections::HashMap<PathBuf, String>> {
    let meta: serde_json::Value = serde_json::from_str(
        &cmd::cargo(&["metadata", "--no-deps", "--format-version", "1"]).read()?,
    )?;
    Ok(meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                PathBuf::from(p["manifest_path"].as_str()?),
                p["name"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

/// How to run as root: directly when root, `sudo -E` when sudo needs no password.
fn privileged_runner() -> Option<Vec<String>> {
    if cmd::is_root() {
        return None;
    }
    let sudo_ok = cmd::new("sudo")
        .args(["-n", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if sudo_ok {
        Some(vec!["sudo".into(), "-E".into()])
    } else {
        eprintln!(
            "xtask test: not root and no password-less sudo; privileged tests will report why they skip"
        );
        None
    }
}

fn command(runner: Option<&[String]>, program: &Path) -> Command {
    match runner {
        Some([first, rest @ ..]) => {
            let mut c = Command::new(first);
            c.args(rest).arg(program);
            c
        }
        _ => Command::new(program),
    }
}

/// Runs `pidns-harness <verb>`, echoing its stderr as it comes; when it
/// fails, its last words go into the summary.
fn run_harness(
    harness: &Path,
    runner: Option<&[String]>,
    verb: &str,
    env: &[(&str, &std::ffi::OsStr)],
    summary: &mut Summary,
) -> Result<bool> {
    let mut c = command(runner, harness);
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
    if !ok {
        // The harness's error is its last message; keep it and what it lists.
        let start = tail
            .iter()
            .rposition(|l| l.starts_with("pidns-harness "))
            .unwrap_or(tail.len().saturating_sub(10));
        for line in &tail[start..] {
            summary
                .reasons
                .push((format!("pidns-harness {verb}"), line.clone()));
        }
    }
    Ok(ok)
}

/// Runs one test binary, echoing its output and keeping its `test result:` line.
fn run_binary(
    t: &TestBinary,
    runner: Option<&[String]>,
    env: &[(&str, &std::ffi::OsStr)],
    filter: Option<&str>,
    summary: &mut Summary,
) -> Result<bool> {
    println!("\n---- {} ----", t.label);
    let mut c = command(runner, &t.path);
    c.current_dir(workspace_root().join(package_dir(&t.package)));
    c.args(filter).stdout(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c
        .spawn()
        .with_context(|| format!("running {}", t.path.display()))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut result = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if line.starts_with("test result:") {
            result = Some(line);
        }
    }
    let ok = child.wait()?.success();
    summary.results.push((
        t.label.clone(),
        result.unwrap_or_else(|| "no result line (crashed?)".into()),
    ));
    Ok(ok)
}

fn package_dir(package: &str) -> &str {
    match package {
        "pidns-user" => "pidns-user",
        "pidns-ebpf" => "pidns-ebpf",
        "pidns-tests" => "tests",
        "xtask" => "xtask",
        _ => ".",
    }
}
