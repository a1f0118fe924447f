//! The steps of `cargo xtask test` other than running test binaries: the
//! eBPF toolchain, formatting and clippy, the runtimes' bring-up and
//! teardown, the agent's image and the benchmark's smoke run.

use std::{fs, path::Path};

use anyhow::{Context as _, Result, anyhow};
use pidns_tests::{env, state::AGENT_IMAGE};

use super::{
    failures::{compiler_errors, fmt_files},
    runner::{Env, Runner, run_harness},
    summary::Summary,
};
use crate::{
    cmd::{self, Stream},
    setup, target_dir, workspace_root,
};

/// Installs the eBPF toolchain when missing. `Some(false)`: it cannot be,
/// and the run goes on without probes; `None`: it cannot be and
/// `PIDNS_REQUIRE_PRIVILEGED=1` makes that the end.
pub(super) fn ebpf_toolchain(summary: &mut Summary) -> Option<bool> {
    const SETUP: &str = "eBPF toolchain (cargo xtask setup)";
    match setup::run(setup::Mode::Install) {
        Ok(_) => Some(true),
        // The watch tests need the probes: under REQUIRE this is the end.
        Err(e) if env::required() => {
            summary.fail(SETUP, format!("{e:#}"));
            None
        }
        Err(e) => {
            summary.skipped(
                SETUP,
                format!("{e:#}; building without probes (PIDNS_SKIP_EBPF=1), eBPF tests will skip"),
            );
            cmd::skip_ebpf();
            Some(false)
        }
    }
}

/// `cargo fmt --check` and clippy (user space, then the eBPF crate).
pub(super) fn lint(ebpf: bool, target: &Path, summary: &mut Summary) -> Result<()> {
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
        summary.skipped(EBPF, "needs the eBPF toolchain");
        return Ok(());
    }
    let bpf = BpfTarget::host();
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
        bpf.target,
        "-Z",
        "build-std=core",
        "--release",
        "--target-dir",
    ])
    .args([target.join("ebpf-clippy")])
    .args(["--", "-D", "warnings"])
    .env("CARGO_ENCODED_RUSTFLAGS", bpf.rustflags())
    .tee(Stream::Stderr)?;
    summary.step(EBPF, ok);
    if !ok {
        for line in compiler_errors(&err) {
            summary.reason(EBPF, line);
        }
    }
    Ok(())
}

/// The BPF target the probes are built for on this host, as aya-build
/// derives it when `pidns-user/build.rs` builds them: its endianness
/// (`bpfel`/`bpfeb`) and `bpf_target_arch`, the architecture whose
/// registers and syscall ABI the probes read (xtask runs on that host).
struct BpfTarget {
    target: &'static str,
    arch: &'static str,
}

impl BpfTarget {
    fn host() -> BpfTarget {
        let arch = std::env::consts::ARCH;
        BpfTarget {
            target: if cfg!(target_endian = "big") {
                "bpfeb-unknown-none"
            } else {
                "bpfel-unknown-none"
            },
            // aya-build's own fix-up: riscv64gc and friends are riscv64.
            arch: if arch.starts_with("riscv64") {
                "riscv64"
            } else {
                arch
            },
        }
    }

    fn rustflags(&self) -> String {
        format!("--cfg=bpf_target_arch=\"{}\"", self.arch)
    }
}

/// `pidns-harness up`. Without PIDNS_REQUIRE_PRIVILEGED a machine that
/// cannot run the runtimes (no apt, offline) is not a red run: the tests
/// that need them skip and say why, with the harness's error in `env`.
pub(super) fn bring_up(
    harness: &Path,
    runner: &Runner,
    env: &mut Env,
    summary: &mut Summary,
) -> Result<bool> {
    const BRINGUP: &str = "runtime bring-up";
    let (up, why) = if runner.privileged() {
        run_harness(harness, runner, "up", env)?
    } else {
        (false, vec!["needs root (or password-less sudo)".to_owned()])
    };
    if up {
        summary.step(BRINGUP, true);
    } else {
        let last = why
            .last()
            .cloned()
            .unwrap_or_else(|| "pidns-harness up failed".into());
        env.push((env::BRINGUP_ERROR, last.into()));
        summary.skip(BRINGUP, why.join(" | "));
    }
    Ok(up)
}

/// The agent's image, for the test that runs it as the DaemonSet would.
/// Not privileged: the image test skips with its own reason ("needs root").
/// Not built: PIDNS_TEST_IMAGE stays unset and the image test says so.
pub(super) fn agent_image(
    runner: &Runner,
    up: bool,
    ebpf: bool,
    env: &mut Env,
    summary: &mut Summary,
) {
    const IMAGE: &str = "agent image (static binary, FROM scratch)";
    if !runner.privileged() {
        return;
    }
    if !up {
        summary.skip(IMAGE, "the runtimes are not up");
    } else if !ebpf {
        summary.skip(IMAGE, "needs the eBPF toolchain");
    } else {
        match build_agent_image(runner) {
            Ok(()) => {
                summary.step(IMAGE, true);
                env.push((env::TEST_IMAGE, AGENT_IMAGE.into()));
            }
            Err(e) => summary.fail(IMAGE, format!("{e:#}")),
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

/// `cargo xtask bench --smoke`, before the teardown, so that what the
/// benchmark leaves behind is caught by the teardown's check rather than
/// inherited by the next run.
pub(super) fn bench_smoke(runner: &Runner, ebpf: bool, target: &Path, summary: &mut Summary) {
    const BENCH: &str = "cargo xtask bench --smoke";
    if !runner.privileged() {
        summary.skip(BENCH, "needs root (or password-less sudo)");
    } else if !ebpf {
        summary.skip(BENCH, "needs the eBPF toolchain");
    } else if let Err(e) = run_bench_smoke(runner, target).map(|ok| summary.step(BENCH, ok)) {
        summary.fail(BENCH, format!("{e:#}"));
    }
}

/// Proves the benchmark still runs; its numbers are not checked here.
fn run_bench_smoke(runner: &Runner, target: &Path) -> Result<bool> {
    // Built as this user, so that a sudo'ed benchmark finds nothing to rebuild.
    cmd::cargo(&["build", "--release", "-p", "pidns-user", "-p", "xtask"]).run()?;
    let xtask = std::env::current_exe().context("locating the xtask binary")?;
    let mut c = runner.command_with_path(&xtask);
    c.args(["bench", "--smoke", "--out"])
        .arg(target.join("bench/smoke.json"))
        .current_dir(workspace_root());
    Ok(c.status().context("running the benchmark")?.success())
}

/// `pidns-harness down`, even after a failed bring-up: it removes only what
/// is tied to the run.
pub(super) fn teardown(
    harness: &Path,
    runner: &Runner,
    env: &Env,
    summary: &mut Summary,
) -> Result<()> {
    const TEARDOWN: &str = "runtime teardown (nothing left behind)";
    if runner.privileged() {
        let (ok, why) = run_harness(harness, runner, "down", env)?;
        summary.step(TEARDOWN, ok);
        for line in why {
            summary.reason(TEARDOWN, line);
        }
    }
    Ok(())
}
