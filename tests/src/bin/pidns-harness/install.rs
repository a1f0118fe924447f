//! Installing missing runtimes (and Prometheus, for the alerting rules' tests)
//! from Debian packages, and the busybox rootfs and image the tests' containers run.

use std::{
    collections::BTreeSet,
    fs,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, anyhow, bail};
use pidns_tests::{cgroups, runtimes, sh, state::DOCKER_IMAGE};

const PACKAGES: [(&str, &str); 10] = [
    ("dockerd", "docker.io"),
    ("docker", "docker.io"),
    ("containerd", "containerd"),
    ("ctr", "containerd"),
    ("runc", "runc"),
    ("podman", "podman"),
    ("busybox", "busybox-static"),
    ("crun", "crun"),
    ("lxc-create", "lxc"),
    ("systemd-nspawn", "systemd-container"),
];

/// Tools the tests run rather than runtimes: Prometheus's server and
/// `promtool`, for the alerting rules in `deploy/prometheus`
/// (`tests/tests/alerting.rs`). Installed without their recommends:
/// `prometheus` recommends `prometheus-node-exporter`, a daemon the tests
/// have no use for. The tests start their own Prometheus on a port of their
/// own; on a systemd host Debian also starts its `prometheus` service
/// (where `policy-rc.d` lets it), which they leave alone.
const TOOLS: [(&str, &str); 2] = [("prometheus", "prometheus"), ("promtool", "prometheus")];

pub(crate) fn install_packages() -> Result<()> {
    let busybox_static =
        sh::have("busybox") && !sh::ok("ldd", &[which("busybox").unwrap_or_default()]);
    let missing = |list: &[(&'static str, &'static str)]| -> BTreeSet<&'static str> {
        list.iter()
            .filter(|(bin, _)| !sh::have(bin) || (*bin == "busybox" && !busybox_static))
            .map(|(_, pkg)| *pkg)
            .collect()
    };
    let (runtime_pkgs, tool_pkgs) = (missing(&PACKAGES), missing(&TOOLS));
    if runtime_pkgs.is_empty() && tool_pkgs.is_empty() {
        return Ok(());
    }
    if !sh::have("apt-get") {
        let all: BTreeSet<_> = runtime_pkgs.union(&tool_pkgs).collect();
        bail!("missing {all:?} and this is not a Debian system (no apt-get); install them by hand");
    }
    let mut updated = false;
    for (packages, extra) in [
        (runtime_pkgs, &[][..]),
        (tool_pkgs, &["--no-install-recommends"][..]),
    ] {
        if packages.is_empty() {
            continue;
        }
        eprintln!("pidns-harness up: installing {packages:?} from Debian packages");
        // Package lists may be missing or old: update them once, on failure.
        match apt_install(&packages, extra) {
            Ok(()) => {}
            Err(e) if updated => return Err(e),
            Err(_) => {
                sh::output_with("apt-get", &["update", "-q"], Duration::from_secs(600))?;
                updated = true;
                apt_install(&packages, extra)?;
            }
        }
    }
    Ok(())
}

/// `apt-get install` of these packages, without questions.
fn apt_install(packages: &BTreeSet<&str>, extra: &[&str]) -> Result<()> {
    let mut args = vec!["install", "-y", "-q"];
    args.extend_from_slice(extra);
    args.extend(packages.iter());
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
}

fn which(program: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

/// crun refuses a hybrid host while the unified hierarchy holds a
/// controller ("cgroups in hybrid mode not supported, drop all controllers
/// from cgroupv2"). Each such controller (here: hugetlb) is mounted as a v1
/// hierarchy of its own, which takes it off the unified one; so is one
/// still bound to a v1 hierarchy that is no longer mounted (a previous
/// run's, which the kernel releases in its own time, handing the controller
/// back to the unified hierarchy in the middle of this run). `down`
/// unmounts them again. Returns the mount points made.
pub(crate) fn hybrid_for_crun() -> Result<Vec<PathBuf>> {
    let hierarchies = cgroups::mounted()?;
    let Some(unified) = hierarchies.iter().find(|h| h.unified) else {
        return Ok(Vec::new());
    };
    if hierarchies.iter().all(|h| h.unified) {
        return Ok(Vec::new()); // v2 only: crun is at home
    }
    let on_v2 = fs::read_to_string(unified.mount_point.join("cgroup.controllers"))?;
    let mounted_v1 = |c: &str| hierarchies.iter().any(|h| h.options.iter().any(|o| o == c));
    let unmounted_v1: Vec<String> = fs::read_to_string("/proc/cgroups")?
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [name, hierarchy, _, "1"] if *hierarchy != "0" && !mounted_v1(name) => {
                    Some((*name).to_owned())
                }
                _ => None,
            }
        })
        .collect();
    let base = unified
        .mount_point
        .parent()
        .context("the unified hierarchy's parent")?
        .to_owned();
    let mut made = Vec::new();
    for controller in on_v2
        .split_whitespace()
        .map(str::to_owned)
        .chain(unmounted_v1)
    {
        let at = base.join(&controller);
        fs::create_dir_all(&at)?;
        nix::mount::mount(
            Some("cgroup"),
            &at,
            Some("cgroup"),
            nix::mount::MsFlags::empty(),
            Some(controller.as_str()),
        )
        .with_context(|| {
            format!(
                "mounting the {controller} controller as v1 at {}",
                at.display()
            )
        })?;
        eprintln!(
            "pidns-harness up: mounted {controller} as a v1 hierarchy at {} (for crun)",
            at.display()
        );
        made.push(at);
    }
    Ok(made)
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
