//! `cargo xtask`: the project's developer and CI tasks.
//!
//! - `setup`: install what the eBPF build needs (idempotent, quiet when done).
//! - `build`: setup, then build the `pidns` binary with its probes.
//! - `run -- <args>`: setup, release build, run pidns (under sudo when not
//!   root and sudo exists; without eBPF probes when setup cannot install them).
//! - `test`: setup, then formatting, clippy (user space and eBPF), unit and
//!   CLI tests, and the privileged tests against the real kernel and runtimes.

mod bench;
mod cmd;
mod image;
mod setup;
mod test;

use std::{ffi::OsString, path::PathBuf, process::ExitCode, sync::OnceLock};

use anyhow::{Context as _, Result, anyhow};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "pidns developer and CI tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the eBPF toolchain when missing: nightly rust-src and bpf-linker
    /// built against the nightly toolchain's own libLLVM.
    Setup {
        /// Only report what is missing; install nothing.
        #[arg(long)]
        check: bool,
    },
    /// Build the pidns binary (release) with its eBPF probes.
    Build {
        /// Debug profile instead of release.
        #[arg(long)]
        debug: bool,
    },
    /// Build in release mode and run pidns; arguments after `--` go to pidns.
    Run {
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Run every check and test: fmt, clippy, unit, CLI and privileged tests.
    Test(test::Options),
    /// Benchmarks: scan throughput and scaling, the cost and latency of watch (root).
    Bench(bench::Options),
    /// Build the agent's container image (static binary, FROM scratch, offline).
    Image(image::Options),
    /// (bench helper) one cgroup read and one ns readlink per process.
    #[command(hide = true)]
    BenchFloor,
    /// (bench helper) join a cgroup, then spawn a program N times.
    #[command(hide = true)]
    BenchSpawn(bench::SpawnArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Setup { check } => setup::run(if check {
            setup::Mode::Check
        } else {
            setup::Mode::Install
        })
        .map(|_| ExitCode::SUCCESS),
        Task::Build { debug } => setup::run(setup::Mode::Install)
            .and_then(|_| build(!debug))
            .map(|_| ExitCode::SUCCESS),
        Task::Run { args } => run(args),
        Task::Test(opts) => test::run(opts),
        Task::Bench(opts) => bench::run(opts).map(|_| ExitCode::SUCCESS),
        Task::Image(opts) => image::run(opts).map(|_| ExitCode::SUCCESS),
        Task::BenchFloor => bench::floor().map(|_| ExitCode::SUCCESS),
        Task::BenchSpawn(args) => bench::spawn_main(args).map(|_| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// `cargo metadata --no-deps` for the workspace, read once.
pub fn metadata() -> Result<&'static cargo_metadata::Metadata> {
    static META: OnceLock<cargo_metadata::Metadata> = OnceLock::new();
    if let Some(m) = META.get() {
        return Ok(m);
    }
    let mut command = cargo_metadata::MetadataCommand::new();
    command.current_dir(workspace_root()).no_deps();
    if let Some(cargo) = std::env::var_os("CARGO") {
        command.cargo_path(cargo);
    }
    let meta = command.exec().context("running `cargo metadata`")?;
    Ok(META.get_or_init(|| meta))
}

/// Where cargo puts build output: `CARGO_TARGET_DIR`, `build.target-dir` or
/// `<workspace>/target`, as cargo itself resolves it. Every path to a built
/// artifact starts here.
pub fn target_dir() -> Result<PathBuf> {
    Ok(metadata()?.target_directory.clone().into_std_path_buf())
}

fn build(release: bool) -> Result<PathBuf> {
    let mut args = vec!["build", "-p", "pidns-user", "--bin", "pidns"];
    if release {
        args.push("--release");
    }
    cmd::cargo(&args).run().context("building pidns")?;
    Ok(target_dir()?
        .join(if release { "release" } else { "debug" })
        .join("pidns"))
}

fn run(args: Vec<OsString>) -> Result<ExitCode> {
    // `scan` needs no eBPF: when the toolchain cannot be installed (offline,
    // no rustup), build without probes rather than not at all.
    if let Err(e) = setup::run(setup::Mode::Install) {
        eprintln!("xtask: warning: the eBPF toolchain is not available: {e:#}");
        eprintln!(
            "xtask: warning: building pidns without eBPF probes (PIDNS_SKIP_EBPF=1); `scan` is complete, `watch` will poll /proc"
        );
        cmd::skip_ebpf();
    }
    let bin = build(true)?;
    if !bin.is_file() {
        return Err(anyhow!(
            "cargo built pidns but {} does not exist",
            bin.display()
        ));
    }
    let mut command = if cmd::is_root() {
        std::process::Command::new(&bin)
    } else if which::which("sudo").is_ok() {
        eprintln!("xtask: not root; running pidns through sudo for complete results");
        let mut c = std::process::Command::new("sudo");
        c.arg("-E").arg(&bin);
        c
    } else {
        eprintln!(
            "xtask: warning: not root and sudo is not installed; running pidns unprivileged. \
             Other users' namespace links are unreadable, so their containers may come out as `unknown`; \
             run as root for complete results."
        );
        std::process::Command::new(&bin)
    };
    let status = command
        .args(&args)
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    // Pass pidns's own exit code (0/1/2) through.
    Ok(ExitCode::from(
        status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(2),
    ))
}
