//! `cargo xtask setup`: the eBPF toolchain, installed when missing.
//!
//! The probes are built with the nightly toolchain (`-Z build-std=core` needs
//! its `rust-src`) and linked by bpf-linker. No distribution ships an LLVM as
//! new as nightly's, so bpf-linker is built against the nightly toolchain's own
//! libLLVM: a prefix directory whose `lib/` links to that library stands in for
//! an LLVM install. Versions and paths are read from the toolchain each time.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::cmd;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Check,
    Install,
}

/// bpf-linker releases that build against LLVM 22 with this workspace's MSRV.
const BPF_LINKER_VERSION: &str = "^0.13";

pub struct Toolchain {
    pub sysroot: PathBuf,
    pub llvm_major: u32,
}

pub fn run(mode: Mode) -> Result<Toolchain> {
    if which::which("rustup").is_err() {
        bail!(
            "rustup is not on PATH: the eBPF build needs rustup with a nightly toolchain (see https://rustup.rs), then run `cargo xtask setup`"
        );
    }
    let mut missing = Vec::new();

    if nightly(&["rustc", "-vV"]).read().is_err() {
        if mode == Mode::Check {
            missing.push("the nightly toolchain (rustup toolchain install nightly --profile minimal --component rust-src)");
        } else {
            eprintln!("xtask setup: installing the nightly toolchain");
            cmd::new("rustup")
                .args(["toolchain", "install", "nightly", "--profile", "minimal", "--component", "rust-src"])
                .run()
                .context("installing the nightly toolchain; check network access to static.rust-lang.org")?;
        }
    }
    let toolchain = match inspect() {
        Ok(t) => t,
        Err(e) if mode == Mode::Check => {
            report(&missing)?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };

    if !toolchain
        .sysroot
        .join("lib/rustlib/src/rust/library/core")
        .is_dir()
    {
        if mode == Mode::Check {
            missing
                .push("rust-src for nightly (rustup component add rust-src --toolchain nightly)");
        } else {
            eprintln!("xtask setup: adding rust-src to the nightly toolchain");
            cmd::new("rustup")
                .args(["component", "add", "rust-src", "--toolchain", "nightly"])
                .run()
                .context("adding rust-src; check network access to static.rust-lang.org")?;
        }
    }

    if !bpf_linker_works() {
        if mode == Mode::Check {
            missing.push("bpf-linker built against nightly's libLLVM (cargo xtask setup)");
        } else {
            install_bpf_linker(&toolchain)?;
            if !bpf_linker_works() {
                bail!(
                    "bpf-linker was installed but `bpf-linker --version` still fails; is {} on PATH?",
                    cargo_bin().display()
                );
            }
        }
    }
    report(&missing)?;
    Ok(toolchain)
}

fn report(missing: &[&str]) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    for m in missing {
        eprintln!("xtask setup: missing {m}");
    }
    bail!("the eBPF toolchain is incomplete; run `cargo xtask setup`")
}

/// `rustup run nightly <args>`, never auto-installing anything behind our back.
pub fn nightly(args: &[&str]) -> cmd::Cmd {
    let mut c = cmd::new("rustup");
    c.args(["run", "nightly"])
        .args(args)
        .env("RUSTUP_AUTO_INSTALL", "0");
    c
}

fn inspect() -> Result<Toolchain> {
    let vv = nightly(&["rustc", "-vV"])
        .read()
        .context("the nightly toolchain is not installed")?;
    let llvm = vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .ok_or_else(|| anyhow!("`rustc +nightly -vV` reports no LLVM version"))?;
    let llvm_major = llvm
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| anyhow!("cannot parse LLVM version {llvm:?}"))?;
    let sysroot = PathBuf::from(nightly(&["rustc", "--print", "sysroot"]).read()?);
    Ok(Toolchain {
        sysroot,
        llvm_major,
    })
}

fn bpf_linker_works() -> bool {
    which::which("bpf-linker").is_ok()
        && cmd::new("bpf-linker")
            .args(["--version"])
            .output()
            .is_ok_and(|o| o.status.success())
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
}

fn cargo_bin() -> PathBuf {
    cargo_home().join("bin")
}

/// The shared libLLVM that ships inside the nightly toolchain
/// (`lib/libLLVM.so.<ver>-rust-<ver>-nightly`; the unversioned `.so` there is a linker script).
fn nightly_libllvm(sysroot: &Path) -> Result<PathBuf> {
    let lib = sysroot.join("lib");
    let entries = fs::read_dir(&lib).with_context(|| format!("reading {}", lib.display()))?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM.so."))
        })
        .ok_or_else(|| {
            anyhow!(
                "no libLLVM.so.* in {}: this nightly does not ship a shared LLVM, so bpf-linker \
                 cannot be built against it. Reinstall nightly (`rustup toolchain uninstall nightly` \
                 then `cargo xtask setup`), or install bpf-linker against an LLVM of your own (see \
                 DEVELOPERS.md). Meanwhile `PIDNS_SKIP_EBPF=1 cargo build -p pidns-user` builds pidns without probes.",
                lib.display()
            )
        })
}

fn install_bpf_linker(t: &Toolchain) -> Result<()> {
    let libllvm = nightly_libllvm(&t.sysroot)?;
    let file_name = libllvm
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("odd file name {}", libllvm.display()))?;
    // bpf-linker keeps this directory as its RUNPATH, so it must outlive the build.
    let prefix = cargo_home()
        .join("pidns")
        .join(format!("llvm-prefix-{file_name}"));
    let lib = prefix.join("lib");
    fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    for link in ["libLLVM.so", file_name] {
        let path = lib.join(link);
        let _ = fs::remove_file(&path);
        std::os::unix::fs::symlink(&libllvm, &path)
            .with_context(|| format!("linking {}", path.display()))?;
    }
    let feature = format!("llvm-{}", t.llvm_major);
    eprintln!(
        "xtask setup: building bpf-linker {BPF_LINKER_VERSION} against {} (about a minute)",
        libllvm.display()
    );
    cmd::new("cargo")
        .args([
            "install",
            "bpf-linker",
            "--version",
            BPF_LINKER_VERSION,
            "--no-default-features",
            "--features",
            &feature,
            "--locked",
            "--force",
        ])
        .env("LLVM_PREFIX", &prefix)
        .env_remove("RUSTUP_TOOLCHAIN")
        .run()
        .with_context(|| {
            format!(
                "building bpf-linker {BPF_LINKER_VERSION} with LLVM_PREFIX={} and feature {feature} \
                 failed (the compiler's errors are above). Check that crates.io is reachable and run \
                 `cargo xtask setup` again; if no bpf-linker {BPF_LINKER_VERSION} supports LLVM {}, raise \
                 BPF_LINKER_VERSION in xtask/src/setup.rs. Meanwhile `PIDNS_SKIP_EBPF=1 cargo build -p \
                 pidns-user` builds pidns without probes.",
                prefix.display(),
                t.llvm_major
            )
        })
}
