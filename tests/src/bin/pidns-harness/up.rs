//! `pidns-harness up` (root): snapshot first, then the runtimes installed
//! and running, what a killed run left behind swept, the busybox rootfs and
//! image in place, and every runtime usable.

use std::{fs, time::Instant};

use anyhow::{Context as _, Result};
use pidns_tests::{
    cgroups, runtimes, sh, skip,
    state::{self, DOCKER_IMAGE, Record},
};

use crate::{
    daemons, install,
    snapshot::{self, Snapshot},
    tied,
};

/// Cgroup parents of the cgroupfs drivers of the runtimes `up` brings up.
const RUNTIME_PARENTS: [&str; 2] = ["docker", "libpod_parent"];

pub(crate) fn up() -> Result<()> {
    if !skip::is_root() {
        eprintln!(
            "pidns-harness up: not root; runtimes not brought up (privileged tests will say why they skip)"
        );
        return Ok(());
    }
    let started = Instant::now();
    fs::create_dir_all(state::state_dir())?;
    // Before anything else changes the machine. Keep the oldest: what a
    // killed run left is then reported by this run's `down`.
    let mut snap = match snapshot::load()? {
        Some(s) => s,
        None => {
            let s = Snapshot::take()?;
            snapshot::save(&s)?;
            s
        }
    };
    install::install_packages()?;
    daemons::start_missing(&mut snap)?;
    sweep_killed_run();
    record_runtime_parents()?;
    if snap.mounted.is_empty() {
        snap.mounted = install::hybrid_for_crun()?;
        snapshot::save(&snap)?;
    }
    install::build_rootfs()?;
    if !sh::ok("docker", &["image", "inspect", DOCKER_IMAGE]) {
        install::import_image()?;
    }
    for rt in runtimes::ALL {
        runtimes::available(rt).with_context(|| format!("{rt:?} is not usable after bring-up"))?;
    }
    eprintln!(
        "pidns-harness up: {} ready in {:.1?}",
        versions(),
        started.elapsed()
    );
    Ok(())
}

/// What a killed run left behind.
fn sweep_killed_run() {
    tied::sweep_containers();
    let records = state::records();
    tied::unmount_tied(&records);
    let killed = tied::remove_tied_cgroups(&records);
    if killed > 0 {
        eprintln!("pidns-harness up: killed {killed} processes a previous run left in its cgroups");
    }
}

/// The parents Docker and Podman create for the run's containers, also
/// for those not started through the harness API (the image test's
/// agent): recorded while missing, so that down removes them once empty.
fn record_runtime_parents() -> Result<()> {
    for h in cgroups::hierarchies()? {
        for parent in RUNTIME_PARENTS {
            let dir = h.join(parent);
            if !dir.exists() {
                state::record(&Record::Cgroup(dir));
            }
        }
    }
    Ok(())
}

/// `docker …, podman …, containerd …, runc …, …`: the versions brought up.
fn versions() -> String {
    let first_line = |program: &str, args: &[&str]| {
        sh::run(program, args)
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or("?")
            .to_owned()
    };
    format!(
        "docker {}, podman {}, containerd {}, runc {}, {}, lxc {}, {}, prometheus {}",
        sh::run("docker", &["version", "--format", "{{.Server.Version}}"]).unwrap_or_default(),
        sh::run("podman", &["version", "--format", "{{.Client.Version}}"]).unwrap_or_default(),
        sh::run("containerd", &["--version"])
            .unwrap_or_default()
            .split_whitespace()
            .nth(2)
            .unwrap_or("?"),
        sh::run("runc", &["--version"])
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or("?")
            .trim_start_matches("runc version "),
        first_line("crun", &["--version"]),
        first_line("lxc-create", &["--version"]),
        first_line("systemd-nspawn", &["--version"]),
        // `prometheus, version 2.42.0+ds (branch: …)`
        first_line("prometheus", &["--version"])
            .split_whitespace()
            .nth(2)
            .unwrap_or("?"),
    )
}
