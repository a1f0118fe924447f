//! `cargo xtask test`: every check the project has, in one command.
//!
//! Test binaries are built once with `cargo test --no-run` and then run by
//! xtask itself (the aya model), so that the privileged suite (package
//! `pidns-tests`) can run as root, through `sudo -E` when possible, between
//! the harness's bring-up and teardown of the container runtimes.
//!
//! Whatever happens, the run ends with its summary: every step, every test
//! binary's result line, why each failure happened (failing tests by name
//! with their first panic line), and every privileged test that skipped.

use std::{
    ffi::OsString,
    fs,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, anyhow};
use cargo_metadata::{Message, TargetKind};

use crate::{
    cmd::{self, Stream},
    setup, target_dir, workspace_root,
};

const PRIVILEGED_PACKAGE: &str = "pidns-tests";
/// Tag of the image the privileged image test runs (removed by the harness's teardown).
const AGENT_IMAGE: &str = "pidnst/pidns:test";
const HARNESS_BIN: &str = "pidns-harness";
const REQUIRE_ENV: &str = "PIDNS_REQUIRE_PRIVILEGED";
/// Why the runtimes could not be brought up, for the privileged tests' skip reasons.
const BRINGUP_ERROR_ENV: &str = "PIDNS_BRINGUP_ERROR";
/// How many lines of explanation one failed step may add to the summary.
const MAX_REASONS: usize = 12;

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

fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

struct TestBinary {
    label: String,
    package: String,
    path: PathBuf,
    /// The package's directory: libtest binaries run there, as under `cargo test`.
    dir: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Failed,
    Skipped,
}

#[derive(Default)]
struct Summary {
    steps: Vec<(String, Status)>,
    results: Vec<(String, String)>,
    /// Why a step failed or skipped: repeated under the summary so that the
    /// last lines of a red run tell what broke.
    reasons: Vec<(String, String)>,
    skip_log: Option<PathBuf>,
}

impl Summary {
    fn step(&mut self, name: &str, ok: bool) -> bool {
        self.steps.push((
            name.to_owned(),
            if ok { Status::Ok } else { Status::Failed },
        ));
        ok
    }

    fn reason(&mut self, step: &str, why: impl Into<String>) {
        self.reasons.push((step.to_owned(), why.into()));
    }

    fn fail(&mut self, step: &str, why: impl Into<String>) {
        self.step(step, false);
        self.reason(step, why);
    }

    /// A privileged step that cannot run here: skipped, or failed under
    /// `PIDNS_REQUIRE_PRIVILEGED=1`.
    fn skip(&mut self, step: &str, why: impl Into<String>) {
        let why = why.into();
        if required() {
            self.fail(
                step,
                format!("{why} ({REQUIRE_ENV}=1 turns this skip into a failure)"),
            );
        } else {
            self.steps.push((step.to_owned(), Status::Skipped));
            self.reason(step, why);
        }
    }

    fn passed(&self) -> bool {
        self.steps.iter().all(|(_, s)| *s != Status::Failed)
    }

    fn print(&self, started: Instant) {
        println!("\n==================== cargo xtask test: summary ====================");
        for (step, status) in &self.steps {
            let tag = match status {
                Status::Ok => "ok",
                Status::Failed => "FAILED",
                Status::Skipped => "skip",
            };
            println!("{tag:<6} {step}");
        }
        for (label, line) in &self.results {
            // Binaries without tests (pidns, xtask, the harness) would only add noise.
            if !line.starts_with("test result: ok. 0 passed; 0 failed") {
                println!("{label}: {line}");
            }
        }
        for (step, line) in &self.reasons {
            println!("{step}: {line}");
        }
        let skipped = self
            .skip_log
            .as_ref()
            .and_then(|p| fs::read_to_string(p).ok())
            .unwrap_or_default();
        if skipped.trim().is_empty() {
            println!("privileged tests skipped: none");
        } else {
            for line in skipped.lines() {
                println!("privileged test skipped: {line}");
            }
        }
        let verdict = if self.passed() { "PASSED" } else { "FAILED" };
        println!("cargo xtask test: {verdict} in {:.0?}", started.elapsed());
    }
}

pub fn run(opts: Options) -> Result<ExitCode> {
    let started = Instant::now();
    let mut summary = Summary::default();
    // An error here is a step that could not even run (a build, a spawn):
    // it still ends in the summary, as its last reason.
    if let Err(e) = steps(&opts, &mut summary) {
        summary.fail("cargo xtask test stopped early", format!("{e:#}"));
    }
    summary.print(started);
    Ok(if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn steps(opts: &Options, summary: &mut Summary) -> Result<()> {
    const SETUP: &str = "eBPF toolchain (cargo xtask setup)";
    let ebpf = match setup::run(setup::Mode::Install) {
        Ok(_) => true,
        // The watch tests need the probes: under REQUIRE this is the end.
        Err(e) if required() => {
            summary.fail(SETUP, format!("{e:#}"));
            return Ok(());
        }
        Err(e) => {
            summary.steps.push((SETUP.to_owned(), Status::Skipped));
            summary.reason(
                SETUP,
                format!("{e:#}; building without probes (PIDNS_SKIP_EBPF=1), eBPF tests will skip"),
            );
            cmd::skip_ebpf();
            false
        }
    };
    let target = target_dir()?;

    if !opts.no_lint {
        lint(ebpf, &target, summary)?;
    }

    cmd::cargo(&["build", "-p", "pidns-user", "--bin", "pidns"])
        .run()
        .context("building pidns")?;
    let pidns_bin = target.join("debug/pidns");
    let (tests, harness) = build_tests()?;

    let skip_log = target.join("xtask/skipped-tests.txt");
    fs::create_dir_all(skip_log.parent().unwrap_or(&target))?;
    fs::write(&skip_log, "")?;
    summary.skip_log = Some(skip_log.clone());

    for t in tests.iter().filter(|t| t.package != PRIVILEGED_PACKAGE) {
        let ok = run_binary(
            t,
            &Runner::Unprivileged,
            &[],
            opts.filter.as_deref(),
            summary,
        )?;
        summary.step(&t.label, ok);
    }

    if opts.no_privileged {
        return Ok(());
    }
    let runner = Runner::find();
    let mut env: Vec<(&str, OsString)> = vec![
        ("PIDNS_BIN", pidns_bin.into_os_string()),
        ("PIDNS_SKIP_LOG", skip_log.into_os_string()),
    ];
    let harness = harness.ok_or_else(|| anyhow!("the {HARNESS_BIN} binary was not built"))?;

    const BRINGUP: &str = "runtime bring-up";
    let (up, why) = if runner.privileged() {
        run_harness(&harness, &runner, "up", &env)?
    } else {
        (false, vec!["needs root (or password-less sudo)".to_owned()])
    };
    if up {
        summary.step(BRINGUP, true);
    } else {
        // Without PIDNS_REQUIRE_PRIVILEGED a machine that cannot run the
        // runtimes (no apt, offline) is not a red run: the tests that need
        // them skip and say why.
        let last = why
            .last()
            .cloned()
            .unwrap_or_else(|| "pidns-harness up failed".into());
        env.push((BRINGUP_ERROR_ENV, last.into()));
        summary.skip(BRINGUP, why.join(" | "));
    }

    // The agent's image, for the test that runs it as the DaemonSet would.
    // Not privileged: the image test skips with its own reason ("needs root").
    // Not built: PIDNS_TEST_IMAGE stays unset and the image test says so.
    const IMAGE: &str = "agent image (static binary, FROM scratch)";
    if runner.privileged() && !up {
        summary.skip(IMAGE, "the runtimes are not up");
    } else if runner.privileged() && !ebpf {
        summary.skip(IMAGE, "needs the eBPF toolchain");
    } else if runner.privileged() {
        match build_agent_image(&runner) {
            Ok(()) => {
                summary.step(IMAGE, true);
                env.push(("PIDNS_TEST_IMAGE", AGENT_IMAGE.into()));
            }
            Err(e) => summary.fail(IMAGE, format!("{e:#}")),
        }
    }

    // Errors past this point must not skip the teardown.
    for t in tests.iter().filter(|t| t.package == PRIVILEGED_PACKAGE) {
        match run_binary(t, &runner, &env, opts.filter.as_deref(), summary) {
            Ok(ok) => {
                summary.step(&t.label, ok);
            }
            Err(e) => {
                summary.fail(&t.label, format!("{e:#}"));
            }
        }
    }

    // Before the teardown, so that what the benchmark leaves behind is
    // caught by the teardown's check rather than inherited by the next run.
    const BENCH: &str = "cargo xtask bench --smoke";
    if !runner.privileged() {
        summary.skip(BENCH, "needs root (or password-less sudo)");
    } else if !ebpf {
        summary.skip(BENCH, "needs the eBPF toolchain");
    } else if let Err(e) = bench_smoke(&runner, &target).map(|ok| summary.step(BENCH, ok)) {
        summary.fail(BENCH, format!("{e:#}"));
    }

    // Even after a failed bring-up: down removes only what is tied to the run.
    const TEARDOWN: &str = "runtime teardown (nothing left behind)";
    if runner.privileged() {
        let (ok, why) = run_harness(&harness, &runner, "down", &env)?;
        summary.step(TEARDOWN, ok);
        for line in why {
            summary.reason(TEARDOWN, line);
        }
    }
    Ok(())
}

/// `cargo fmt --check` and clippy (user space, then the eBPF crate).
fn lint(ebpf: bool, target: &Path, summary: &mut Summary) -> Result<()> {
    const FMT: &str = "cargo fmt --check";
    let (ok, out) = cmd::cargo(&["fmt", "--all", "--", "--check"]).tee(Stream::Stdout)?;
    summary.step(FMT, ok);
    if !ok {
        for file in fmt_files(&out) {
            summary.reason(FMT, format!("not formatted: {file}"));
        }
    }

    const CLIPPY: &str = "clippy (user space, -D warnings)";
    let (ok, err) = cmd::cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])
    .tee(Stream::Stderr)?;
    summary.step(CLIPPY, ok);
    if !ok {
        for line in compiler_errors(&err) {
            summary.reason(CLIPPY, line);
        }
    }

    const EBPF: &str = "clippy (eBPF, -D warnings)";
    if !ebpf {
        summary.steps.push((EBPF.to_owned(), Status::Skipped));
        summary.reason(EBPF, "needs the eBPF toolchain");
        return Ok(());
    }
    let (ok, err) = setup::nightly(&[
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
    .args([target.join("ebpf-clippy")])
    .args(["--", "-D", "warnings"])
    .env(
        "CARGO_ENCODED_RUSTFLAGS",
        "--cfg=bpf_target_arch=\"x86_64\"",
    )
    .tee(Stream::Stderr)?;
    summary.step(EBPF, ok);
    if !ok {
        for line in compiler_errors(&err) {
            summary.reason(EBPF, line);
        }
    }
    Ok(())
}

/// Files `cargo fmt --check` would change (its `Diff in <file>:<line>:` lines).
fn fmt_files(stdout: &[String]) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for line in stdout {
        if let Some(rest) = line.strip_prefix("Diff in ") {
            let file = rest
                .trim_end_matches(':')
                .rsplit_once(':')
                .map_or(rest, |(f, _line)| f)
                .to_owned();
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    files.truncate(MAX_REASONS);
    files
}

/// Compiler errors as `message (file:line:col)`, from rustc's rendered
/// diagnostics; the closing "could not compile" lines add nothing.
fn compiler_errors(stderr: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in stderr.iter().enumerate() {
        if !line.starts_with("error") || line.starts_with("error: could not compile") {
            continue;
        }
        if line.starts_with("error: aborting") {
            continue;
        }
        let at = stderr[i + 1..]
            .iter()
            .take(3)
            .find_map(|l| l.trim_start().strip_prefix("--> "));
        out.push(match at {
            Some(at) => format!("{line} ({at})"),
            None => line.clone(),
        });
        if out.len() == MAX_REASONS {
            break;
        }
    }
    out
}

/// Builds every test binary of the workspace without running it.
fn build_tests() -> Result<(Vec<TestBinary>, Option<PathBuf>)> {
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
    let packages: std::collections::HashMap<_, _> = crate::metadata()?
        .packages
        .iter()
        .map(|p| (p.id.clone(), p.name.to_string()))
        .collect();
    let mut tests = Vec::new();
    let mut harness = None;
    for msg in Message::parse_stream(BufReader::new(stdout)) {
        let Message::CompilerArtifact(art) = msg.context("reading cargo's messages")? else {
            continue;
        };
        let Some(exe) = art.executable else { continue };
        let name = art.target.name.clone();
        let package = packages
            .get(&art.package_id)
            .cloned()
            .unwrap_or_else(|| name.clone());
        if art.profile.test {
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
            tests.push(TestBinary {
                label,
                package,
                path: exe.into_std_path_buf(),
                dir,
            });
        } else if name == HARNESS_BIN {
            harness = Some(exe.into_std_path_buf());
        }
    }
    if !child.wait()?.success() {
        // rustc's rendered errors went to stderr, above.
        return Err(anyhow!(
            "building the tests failed (`cargo test --workspace --no-run`; the errors are above)"
        ));
    }
    tests.sort_by(|a, b| a.label.cmp(&b.label));
    Ok((tests, harness))
}

/// How the privileged steps run.
enum Runner {
    /// xtask itself is root.
    Root,
    /// `sudo -E`, which needs no password here.
    Sudo,
    /// Neither: privileged tests will say why they skip.
    Unprivileged,
}

impl Runner {
    fn find() -> Runner {
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

    fn privileged(&self) -> bool {
        !matches!(self, Runner::Unprivileged)
    }

    fn command(&self, program: &Path) -> Command {
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
    fn command_with_path(&self, program: &Path) -> Command {
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

/// The agent's image: the static binary is built as this user, only
/// `docker build` runs privileged.
fn build_agent_image(runner: &Runner) -> Result<()> {
    let binary = crate::image::static_binary()?;
    match runner {
        Runner::Root => crate::image::build(&binary, AGENT_IMAGE),
        Runner::Sudo | Runner::Unprivileged => {
            // The same build as image::build, with docker through sudo.
            let context = target_dir()?.join("image");
            fs::create_dir_all(&context)?;
            fs::copy(&binary, context.join("pidns"))
                .with_context(|| format!("copying {}", binary.display()))?;
            let status = runner
                .command(Path::new("docker"))
                .args(["build", "--quiet", "-t", AGENT_IMAGE, "-f"])
                .arg(workspace_root().join("deploy/Dockerfile"))
                .arg(&context)
                .status()
                .context("running sudo docker build")?;
            if !status.success() {
                return Err(anyhow!("sudo docker build failed ({status})"));
            }
            Ok(())
        }
    }
}

/// Proves the benchmark still runs; its numbers are not checked here.
fn bench_smoke(runner: &Runner, target: &Path) -> Result<bool> {
    // Built as this user, so that a sudo'ed benchmark finds nothing to rebuild.
    cmd::cargo(&["build", "--release", "-p", "pidns-user", "-p", "xtask"]).run()?;
    let xtask = std::env::current_exe().context("locating the xtask binary")?;
    let mut c = runner.command_with_path(&xtask);
    c.args(["bench", "--smoke", "--out"])
        .arg(target.join("bench/smoke.json"))
        .current_dir(workspace_root());
    Ok(c.status().context("running the benchmark")?.success())
}

/// Runs `pidns-harness <verb>`, echoing its stderr as it comes. Returns
/// whether it succeeded and, when it failed, its last words (its error and
/// what that lists), for the summary.
fn run_harness(
    harness: &Path,
    runner: &Runner,
    verb: &str,
    env: &[(&str, OsString)],
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
fn run_binary(
    t: &TestBinary,
    runner: &Runner,
    env: &[(&str, OsString)],
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

/// What libtest prints about failed tests: a first `failures:` heading
/// over `---- <name> stdout ----` sections of captured output (the panic
/// among it), then a second `failures:` heading over the names.
#[derive(Default)]
struct Failures {
    headings: usize,
    /// The test whose captured output is being read.
    section: Option<String>,
    /// A panic's location, whose message is on the next line.
    location: Option<String>,
    /// The first panic per test: (test, "message (at location)").
    panics: Vec<(String, String)>,
    names: Vec<String>,
}

impl Failures {
    fn feed(&mut self, line: &str) {
        if line == "failures:" {
            self.headings += 1;
            self.section = None;
            self.location = None;
            return;
        }
        match self.headings {
            1 => self.feed_output(line),
            2 => {
                if let Some(name) = line.strip_prefix("    ")
                    && !name.trim().is_empty()
                {
                    self.names.push(name.trim().to_owned());
                }
            }
            _ => {}
        }
    }

    fn feed_output(&mut self, line: &str) {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            self.section = Some(name.to_owned());
            self.location = None;
            return;
        }
        let Some(test) = self.section.clone() else {
            return;
        };
        if self.panics.iter().any(|(t, _)| *t == test) {
            return;
        }
        if let Some(location) = self.location.take() {
            self.panics
                .push((test, format!("{} (at {location})", line.trim())));
        } else if let Some(error) = line.strip_prefix("Error: ") {
            // A test returning Err prints it like this.
            self.panics.push((test, format!("returned Err: {error}")));
        } else if let Some((_, after)) = line
            .strip_prefix("thread '")
            .and_then(|l| l.split_once(" panicked at "))
        {
            // The thread's name may be followed by its id: `thread 'x' (123) panicked at`.
            match after.strip_suffix(':') {
                // Rust 1.73+: `thread 'x' panicked at file:line:col:`, message next.
                Some(location) => self.location = Some(location.to_owned()),
                // Before: `thread 'x' panicked at 'message', file:line:col`.
                None => self.panics.push((test, after.to_owned())),
            }
        }
    }

    /// `test: first panic line (at location)` for every failed test.
    fn lines(&self) -> Vec<String> {
        let panic_of = |name: &str| {
            self.panics
                .iter()
                .find(|(t, _)| t == name)
                .map(|(_, p)| p.clone())
        };
        if self.names.is_empty() {
            return self
                .panics
                .iter()
                .map(|(t, p)| format!("{t}: {p}"))
                .collect();
        }
        self.names
            .iter()
            .map(|n| match panic_of(n) {
                Some(p) => format!("{n}: {p}"),
                None => format!("{n}: failed (no panic message captured)"),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(text: &str) -> Failures {
        let mut f = Failures::default();
        for line in text.lines() {
            f.feed(line);
        }
        f
    }

    #[test]
    fn failing_tests_are_named_with_their_first_panic_line() {
        let out = "\
running 3 tests
test ok_one ... ok
test scan_one ... FAILED
test watch_two ... FAILED

failures:

---- scan_one stdout ----
SKIPPED nothing

thread 'scan_one' (15584) panicked at tests/tests/scan.rs:93:5:
assertion `left == right` failed: a host-pid container must fail the scan
  left: 0
 right: 1
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

---- watch_two stdout ----
thread '<unnamed>' panicked at 'old style message', src/x.rs:1:2

---- returns_err stdout ----
Error: \"bad\"


failures:
    scan_one
    watch_two
    returns_err

test result: FAILED. 1 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s
";
        assert_eq!(
            feed(out).lines(),
            [
                "scan_one: assertion `left == right` failed: a host-pid container must fail the scan (at tests/tests/scan.rs:93:5)",
                "watch_two: 'old style message', src/x.rs:1:2",
                "returns_err: returned Err: \"bad\"",
            ]
        );
    }

    #[test]
    fn a_failure_without_output_is_still_named() {
        let out = "\
test quiet ... FAILED

failures:

failures:
    quiet

test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        assert_eq!(
            feed(out).lines(),
            ["quiet: failed (no panic message captured)"]
        );
    }

    #[test]
    fn passing_runs_name_nothing() {
        let out = "running 1 test\ntest a ... ok\n\ntest result: ok. 1 passed; 0 failed\n";
        assert!(feed(out).lines().is_empty());
    }

    #[test]
    fn fmt_and_clippy_failures_say_where() {
        let fmt = [
            "Diff in /w/xtask/src/test.rs:12:".to_owned(),
            " fn x() {".to_owned(),
            "Diff in /w/xtask/src/test.rs:40:".to_owned(),
            "Diff in /w/tests/src/skip.rs:3:".to_owned(),
        ];
        assert_eq!(
            fmt_files(&fmt),
            ["/w/xtask/src/test.rs", "/w/tests/src/skip.rs"]
        );
        let clippy: Vec<String> = "\
    Checking xtask v0.1.0 (/w/xtask)
error: unused variable: `x`
  --> xtask/src/test.rs:12:9
   |
error[E0308]: mismatched types
   --> tests/src/skip.rs:3:1
error: could not compile `xtask` (bin \"xtask\") due to 2 previous errors"
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(
            compiler_errors(&clippy),
            [
                "error: unused variable: `x` (xtask/src/test.rs:12:9)",
                "error[E0308]: mismatched types (tests/src/skip.rs:3:1)",
            ]
        );
    }
}
