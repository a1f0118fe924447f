//! Builds the eBPF probes (`pidns-ebpf`) with aya-build and embeds them into the
//! `pidns` binary.
//!
//! The probes need a nightly toolchain with `rust-src` and `bpf-linker`. Where
//! those are missing the user-space crate still builds: the build prints one
//! warning, the `pidns_ebpf` cfg stays unset, and `pidns watch` explains at run
//! time how to get eBPF support. `cargo xtask setup` installs the toolchain.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, anyhow};

const EBPF_PACKAGE: &str = "pidns-ebpf";
const SKIP_ENV: &str = "PIDNS_SKIP_EBPF";

fn main() -> anyhow::Result<()> {
    println!("cargo::rustc-check-cfg=cfg(pidns_ebpf)");
    println!("cargo:rerun-if-env-changed={SKIP_ENV}");
    println!("cargo:rerun-if-env-changed=PATH");

    if let Some(reason) = missing_toolchain() {
        println!(
            "cargo:warning=pidns: eBPF probes not built ({reason}); `pidns watch` will use procfs \
             polling. Run `cargo xtask setup` to install the eBPF toolchain."
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

/// Returns why the eBPF toolchain is unusable, or `None` when it is complete.
fn missing_toolchain() -> Option<String> {
    if env::var_os(SKIP_ENV).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        return Some(format!("{SKIP_ENV} is set"));
    }
    let Ok(linker) = which::which("bpf-linker") else {
        return Some("bpf-linker is not on PATH".into());
    };
    println!("cargo:rerun-if-changed={}", linker.display());
    let sysroot = match Command::new("rustup")
        .args(["run", "nightly", "rustc", "--print", "sysroot"])
        .env("RUSTUP_AUTO_INSTALL", "0")
        .output()
    {
        Ok(out) if out.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
        Ok(_) => return Some("no nightly toolchain".into()),
        Err(e) => return Some(format!("rustup not runnable: {e}")),
    };
    let core_src = sysroot.join("lib/rustlib/src/rust/library/core");
    if !Path::new(&core_src).is_dir() {
        return Some("the nightly toolchain lacks the rust-src component".into());
    }
    None
}
