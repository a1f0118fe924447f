//! Builds the eBPF probes (`pidns-ebpf`) with aya-build and embeds them into the
//! `pidns` binary.
//!
//! The probes need a nightly toolchain with `rust-src` and `bpf-linker`. Where
//! those are missing the user-space crate still builds: the build prints one
//! warning, the `pidns_ebpf` cfg stays unset, and `pidns watch` explains at run
//! time how to get eBPF support. `cargo xtask setup` installs the toolchain,
//! and the script watches where it lands, so that the next build has probes.

use std::{env, path::PathBuf, process::Command};

use anyhow::{Context as _, anyhow};

const EBPF_PACKAGE: &str = "pidns-ebpf";
const SKIP_ENV: &str = "PIDNS_SKIP_EBPF";

fn main() -> anyhow::Result<()> {
    println!("cargo::rustc-check-cfg=cfg(pidns_ebpf)");
    println!("cargo:rerun-if-env-changed={SKIP_ENV}");
    for var in ["PATH", "CARGO_HOME", "RUSTUP_HOME"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let sysroot = nightly_sysroot();
    watch_toolchain_locations(sysroot.as_ref().ok());

    if env::var_os(SKIP_ENV).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        println!(
            "cargo:warning=pidns: eBPF probes not built ({SKIP_ENV} is set); `pidns watch` will poll /proc instead."
        );
        return Ok(());
    }
    if let Some(reason) = missing_toolchain(&sysroot) {
        println!(
            "cargo:warning=pidns: eBPF probes not built ({reason}); `pidns watch` will poll /proc instead. \
             Run `cargo xtask setup` to install the eBPF toolchain, then build again."
        );
        return Ok(());
    }

    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = metadata
        .packages
        .into_iter()
        .find(|p| p.name.as_str() == EBPF_PACKAGE)
        .ok_or_else(|| anyhow!("{EBPF_PACKAGE} package not found in the workspace"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", ebpf.manifest_path))?;
    let package = aya_build::Package {
        name: EBPF_PACKAGE,
        root_dir: root_dir.as_str(),
        features: &["ebpf"],
        ..Default::default()
    };
    // aya-build forwards every line the nested cargo prints as a cargo warning;
    // keep a successful build silent (errors are still printed).
    // SAFETY: the build script is single-threaded at this point.
    unsafe { env::set_var("CARGO_TERM_QUIET", "true") };
    aya_build::build_ebpf([package], aya_build::Toolchain::Nightly)
        .context("building the eBPF probes failed; `PIDNS_SKIP_EBPF=1` builds without them")?;
    println!("cargo:rustc-cfg=pidns_ebpf");
    Ok(())
}

/// Makes cargo run this script again when the toolchain may have changed
/// under an existing build: so that a pidns built without probes is rebuilt
/// with them once `cargo xtask setup` has installed what was missing (and a
/// nightly update is noticed). Only paths that exist are given: cargo would
/// rerun the script, and rebuild pidns, on every build for a missing one.
fn watch_toolchain_locations(nightly_sysroot: Option<&PathBuf>) {
    let home = env::var_os("HOME").map(PathBuf::from);
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".cargo")));
    let rustup_home = env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".rustup")));
    let mut watched = Vec::new();
    // Where `cargo install bpf-linker` puts it.
    if let Some(bin) = cargo_home.map(|c| c.join("bin")) {
        watched.push(bin);
    }
    // One file per installed toolchain, rewritten when it is installed or updated.
    if let Some(hashes) = rustup_home.map(|r| r.join("update-hashes")) {
        watched.push(hashes);
    }
    // Where bpf-linker is, if it is elsewhere on PATH.
    if let Ok(linker) = which::which("bpf-linker") {
        watched.push(linker);
    }
    // The nightly's component list: `rustup component add rust-src` rewrites it.
    if let Some(sysroot) = nightly_sysroot {
        watched.push(sysroot.join("lib/rustlib/components"));
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The nightly toolchain's sysroot, or why there is none.
fn nightly_sysroot() -> Result<PathBuf, String> {
    match Command::new("rustup")
        .args(["run", "nightly", "rustc", "--print", "sysroot"])
        .env("RUSTUP_AUTO_INSTALL", "0")
        .output()
    {
        Ok(out) if out.status.success() => {
            Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        }
        Ok(_) => Err("no nightly toolchain".into()),
        Err(e) => Err(format!("rustup not runnable: {e}")),
    }
}

/// Returns why the eBPF toolchain is unusable, or `None` when it is complete.
fn missing_toolchain(nightly_sysroot: &Result<PathBuf, String>) -> Option<String> {
    let Ok(linker) = which::which("bpf-linker") else {
        return Some("bpf-linker is not on PATH".into());
    };
    // A bpf-linker whose libLLVM went away (a nightly update removes the one
    // it was built against) is on PATH but cannot link anything.
    match Command::new(&linker).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr.lines().next().unwrap_or("").trim();
            return Some(format!(
                "{} does not run: {}",
                linker.display(),
                if first.is_empty() { "no output" } else { first }
            ));
        }
        Err(e) => return Some(format!("{} does not run: {e}", linker.display())),
    }
    let sysroot = match nightly_sysroot {
        Ok(s) => s,
        Err(why) => return Some(why.clone()),
    };
    if !sysroot.join("lib/rustlib/src/rust/library/core").is_dir() {
        return Some("the nightly toolchain lacks the rust-src component".into());
    }
    None
}
