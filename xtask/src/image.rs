//! `cargo xtask image`: the agent's container image, built offline.
//!
//! A static (musl) pidns with its probes, in an image `FROM scratch`
//! (deploy/Dockerfile): no registry is needed to build it.

use std::{fs, path::PathBuf};

use anyhow::{Context as _, Result};

use crate::{cmd, setup, target_dir, workspace_root};

pub const TARGET: &str = "x86_64-unknown-linux-musl";
/// The cargo profile the image's binary is built with: release, stripped.
pub const PROFILE: &str = "image";

#[derive(clap::Args)]
pub struct Options {
    /// Image tag (default: pidns:<version>).
    #[arg(long)]
    pub tag: Option<String>,
}

/// Builds the static binary; returns its path.
pub fn static_binary() -> Result<PathBuf> {
    setup::run(setup::Mode::Install)?;
    let installed = cmd::new("rustup")
        .args(["target", "list", "--installed"])
        .read()?;
    if !installed.lines().any(|l| l.trim() == TARGET) {
        eprintln!("xtask image: adding the {TARGET} target");
        cmd::new("rustup")
            .args(["target", "add", TARGET])
            .run()
            .context("adding the musl target")?;
    }
    cmd::cargo(&[
        "build",
        "--profile",
        PROFILE,
        "--target",
        TARGET,
        "-p",
        "pidns-user",
        "--bin",
        "pidns",
    ])
    // The bundled SQLite (rusqlite) is C: compiled for musl by musl-gcc,
    // which cc-rs does not look for under that name.
    .env("CC_x86_64_unknown_linux_musl", musl_gcc()?)
    .run()?;
    Ok(target_dir()?.join(TARGET).join(PROFILE).join("pidns"))
}

/// `musl-gcc` (Debian's musl-tools), installed when missing and root.
fn musl_gcc() -> Result<PathBuf> {
    if let Ok(p) = which::which("musl-gcc") {
        return Ok(p);
    }
    if !cmd::is_root() {
        anyhow::bail!("musl-gcc is missing: install musl-tools (the bundled SQLite is C)");
    }
    eprintln!("xtask image: installing musl-tools (musl-gcc, for the bundled SQLite)");
    cmd::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "musl-tools"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
        .context("installing musl-tools")?;
    which::which("musl-gcc").context("musl-gcc after installing musl-tools")
}

pub fn run(opts: Options) -> Result<()> {
    let binary = static_binary()?;
    let tag = opts
        .tag
        .unwrap_or_else(|| format!("pidns:{}", env!("CARGO_PKG_VERSION")));
    build(&binary, &tag)?;
    println!("built image {tag}");
    Ok(())
}

/// `docker build` from a context holding only the binary.
pub fn build(binary: &std::path::Path, tag: &str) -> Result<()> {
    let context = target_dir()?.join("image");
    fs::create_dir_all(&context)?;
    fs::copy(binary, context.join("pidns"))
        .with_context(|| format!("copying {}", binary.display()))?;
    let dockerfile = workspace_root().join("deploy/Dockerfile");
    cmd::new("docker")
        .args(["build", "--quiet", "-t", tag, "-f"])
        .args([&dockerfile, &context])
        .run()
        .context("docker build (is dockerd running?)")
}
