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
//!
//! Here: the order of the steps. [`steps`] holds each step, [`runner`]
//! builds and runs the test binaries, [`summary`] keeps and prints what
//! happened, [`failures`] reads why a step failed out of its output.

mod failures;
mod runner;
mod steps;
mod summary;

use std::{
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Instant,
};

use anyhow::{Context as _, Result, anyhow};
use pidns_tests::env;

use crate::{cmd, target_dir};
use runner::{Built, Env, Runner, run_binary};
use summary::Summary;

/// The privileged suite's package: its binaries run between bring-up and teardown.
const PRIVILEGED_PACKAGE: &str = pidns_tests::PACKAGE;
const HARNESS_BIN: &str = pidns_tests::HARNESS_BIN;

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

pub fn run(opts: Options) -> Result<ExitCode> {
    let started = Instant::now();
    let mut summary = Summary::default();
    // An error here is a step that could not even run (a build, a spawn):
    // it still ends in the summary, as its last reason.
    if let Err(e) = all_steps(&opts, &mut summary) {
        summary.fail("cargo xtask test stopped early", format!("{e:#}"));
    }
    summary.print(started);
    Ok(if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn all_steps(opts: &Options, summary: &mut Summary) -> Result<()> {
    let Some(ebpf) = steps::ebpf_toolchain(summary) else {
        return Ok(());
    };
    let target = target_dir()?;
    if !opts.no_lint {
        steps::lint(ebpf, &target, summary)?;
    }
    cmd::cargo(&["build", "-p", "pidns-user", "--bin", "pidns"])
        .run()
        .context("building pidns")?;
    let pidns_bin = target.join("debug/pidns");
    let built = runner::build_tests()?;

    let skip_log = target.join("xtask/skipped-tests.txt");
    fs::create_dir_all(skip_log.parent().unwrap_or(&target))?;
    fs::write(&skip_log, "")?;
    summary.skip_log = Some(skip_log.clone());

    for t in built
        .tests
        .iter()
        .filter(|t| t.package != PRIVILEGED_PACKAGE)
    {
        let ok = run_binary(
            t,
            &Runner::Unprivileged,
            &Vec::new(),
            opts.filter.as_deref(),
            summary,
        )?;
        summary.step(&t.label, ok);
    }
    if opts.no_privileged {
        return Ok(());
    }
    let env: Env = vec![
        (env::BIN, pidns_bin.into_os_string()),
        (env::SKIP_LOG, skip_log.into_os_string()),
    ];
    privileged(opts, &built, env, ebpf, &target, summary)
}

/// Bring-up, the agent's image, the privileged tests, the benchmark's smoke
/// run and the teardown.
fn privileged(
    opts: &Options,
    built: &Built,
    mut env: Env,
    ebpf: bool,
    target: &Path,
    summary: &mut Summary,
) -> Result<()> {
    let runner = Runner::find();
    let harness: &PathBuf = built
        .harness
        .as_ref()
        .ok_or_else(|| anyhow!("the {HARNESS_BIN} binary was not built"))?;
    let up = steps::bring_up(harness, &runner, &mut env, summary)?;
    steps::agent_image(&runner, up, ebpf, &mut env, summary);

    // Errors past this point must not skip the teardown.
    for t in built
        .tests
        .iter()
        .filter(|t| t.package == PRIVILEGED_PACKAGE)
    {
        match run_binary(t, &runner, &env, opts.filter.as_deref(), summary) {
            Ok(ok) => {
                summary.step(&t.label, ok);
            }
            Err(e) => {
                summary.fail(&t.label, format!("{e:#}"));
            }
        }
    }
    steps::bench_smoke(&runner, ebpf, target, summary);
    steps::teardown(harness, &runner, &env, summary)
}
