//! Installing missing runtimes from Debian packages, and the busybox rootfs
//! and image the tests' containers run.

use std::{
    collections::BTreeSet,
    fs,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use pidns_tests::{runtimes, sh, state::DOCKER_IMAGE};

const PACKAGES: [(&str, &str); 7] = [
    ("dockerd", "docker.io"),
    ("docker", "docker.io"),
    ("containerd", "containerd"),
    ("ctr", "containerd"),
    ("runc", "runc"),
    ("podman", "podman"),
    ("busybox", "busybox-static"),
];

pub(crate) fn install_packages() -> Result<()> {
    let busybox_static =
        sh::have("busybox") && !sh::ok("ldd", &[which("busybox").unwrap_or_default()]);
    let missing: BTreeSet<&str> = PACKAGES
        .iter()
        .filter(|(bin, _)| !sh::have(bin) || (*bin == "busybox" && !busybox_static))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !sh::have("apt-get") {
        bail!(
            "missing {missing:?} and this is not a Debian system (no apt-get); install them by hand"
        );
    }
    eprintln!("pidns-harness up: installing {missing:?} from Debian packages");
    let install = |update: bool| -> Result<()> {
        if update {
            sh::output_with("apt-get", &["update", "-q"], Duration::from_secs(600))?;
        }
        let mut args = vec!["install", "-y", "-q"];
        args.extend(missing.iter());
        let out = Command::new("apt-get")
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "apt-get install failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    install(false).or_else(|_| install(true))
}

fn which(program: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

pub(crate) fn build_rootfs() -> Result<()> {
    let root = runtimes::rootfs();
    if root.join("bin/busybox").is_file() {
        return Ok(());
    }
    let busybox = which("busybox").ok_or_else(|| anyhow!("busybox not found"))?;
    for dir in ["bin", "proc", "sys", "dev", "etc", "tmp", "run"] {
        fs::create_dir_all(root.join(dir))?;
    }
    fs::copy(&busybox, root.join("bin/busybox")).with_context(|| format!("copying {busybox}"))?;
    for applet in [
        "sh", "sleep", "true", "cat", "ls", "ps", "nsenter", "unshare", "echo", "kill", "readlink",
        "grep",
    ] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n")?;
    Ok(())
}

pub(crate) fn import_image() -> Result<()> {
    let mut tar = Command::new("tar")
        .args(["-C", &runtimes::rootfs().display().to_string(), "-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("running tar")?;
    let tar_out = tar.stdout.take().ok_or_else(|| anyhow!("tar stdout"))?;
    let out = Command::new("docker")
        .args(["import", "-", DOCKER_IMAGE])
        .stdin(tar_out)
        .output()
        .context("docker import")?;
    tar.wait()?;
    if !out.status.success() {
        bail!(
            "docker import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
