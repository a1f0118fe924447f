//! `pidns-harness down` (root): removes what can be tied to the run, checks
//! that none of it is left, removes the state directory, and reports what
//! appeared during the run and stayed (untouched).

use std::path::PathBuf;

use anyhow::{Result, bail};
use pidns_tests::{
    mounts, runtimes, sh, skip,
    state::{self, CTR_NAMESPACE, DOCKER_IMAGE, Record},
};

use crate::{
    daemons,
    snapshot::{self, Snapshot},
    tied,
};

pub(crate) fn down() -> Result<()> {
    if !skip::is_root() {
        return Ok(());
    }
    let snap = snapshot::load()?;
    let records = state::records();
    let started = snap.as_ref().map(|s| s.started.as_slice()).unwrap_or(&[]);

    let (mut left, unmounted) = remove(snap.as_ref(), &records);
    left.extend(still_tied(&records, started)?);
    remove_state_dir(&mut left)?;
    // Report, never remove: what appeared during the run and stayed.
    match &snap {
        Some(snap) => {
            for a in snap.appeared()? {
                let already = a
                    .strip_suffix(" (appeared during the run)")
                    .is_some_and(|base| left.iter().any(|l| l == base));
                if !already {
                    left.push(a);
                }
            }
        }
        None => eprintln!(
            "pidns-harness down: no snapshot at {}: `up` did not record one, so nothing was compared; \
             removed only what carries the run's names or was recorded by its tests",
            snapshot::path().display()
        ),
    }
    if !left.is_empty() {
        bail!("left behind:\n  {}", left.join("\n  "));
    }
    eprintln!(
        "pidns-harness down: removed all test containers, {} tied mounts, {} tied cgroups; stopped {:?}",
        unmounted,
        tied::tied_cgroups(&records).len(),
        started.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    Ok(())
}

/// Removes the run's containers, images, containerd namespace, the daemons
/// `up` started, and the mounts and cgroups tied to the run. Returns what
/// could not be removed and how many mounts were unmounted.
fn remove(snap: Option<&Snapshot>, records: &[Record]) -> (Vec<String>, usize) {
    let mut left = Vec::new();
    tied::sweep_containers();
    if sh::ok("docker", &["version"]) {
        for image in [DOCKER_IMAGE, state::AGENT_IMAGE] {
            if sh::ok("docker", &["image", "inspect", image]) {
                if let Err(e) = sh::run("docker", &["rmi", "-f", image]) {
                    left.push(format!("docker image {image}: {e:#}"));
                } else if sh::ok("docker", &["image", "inspect", image]) {
                    left.push(format!("docker image {image}"));
                }
            }
        }
    }
    if sh::ok("ctr", &["version"]) && tied::ctr_namespace_exists() {
        if let Err(e) = sh::run("ctr", &["namespaces", "rm", CTR_NAMESPACE]) {
            left.push(format!("containerd namespace {CTR_NAMESPACE}: {e:#}"));
        } else if tied::ctr_namespace_exists() {
            left.push(format!("containerd namespace {CTR_NAMESPACE}"));
        }
    }
    let started = snap.map(|s| s.started.as_slice()).unwrap_or(&[]);
    for (name, pid) in started.iter().rev() {
        daemons::stop_daemon(name, *pid);
    }
    let mut unmounted = tied::unmount_tied(records);
    if let Some(snap) = snap {
        unmounted += daemons::unmount_daemon_state(snap);
    }
    tied::remove_tied_cgroups(records);
    if let Some(snap) = snap {
        for at in snap.mounted.iter().rev() {
            match nix::mount::umount(at.as_path()) {
                Ok(()) => {
                    let _ = std::fs::remove_dir(at);
                }
                Err(e) => left.push(format!(
                    "cgroup hierarchy {} (mounted by up): {e}",
                    at.display()
                )),
            }
        }
    }
    (left, unmounted)
}

/// What is tied to the run and still there: containers, cgroups (a
/// recorded parent that others' containers use by now is theirs), mounts,
/// daemons `up` started.
fn still_tied(records: &[Record], started: &[(String, u32)]) -> Result<Vec<String>> {
    let mut left = Vec::new();
    for rt in runtimes::ALL {
        // A runtime whose daemon is gone (stopped above) has no containers left.
        if let Ok(names) = runtimes::leftovers(rt) {
            left.extend(names.into_iter().map(|n| format!("{rt:?} container {n}")));
        }
    }
    let all_tied = tied::tied_cgroups(records);
    let tied: Vec<&PathBuf> = all_tied
        .iter()
        .filter(|c| {
            c.exists() && (tied::may_kill_in(c, records) || !tied::in_use_by_others(c, &all_tied))
        })
        .collect();
    left.extend(tied.iter().map(|c| format!("cgroup {}", c.display())));
    let ids = tied::container_ids(records);
    left.extend(
        mounts::mount_points()?
            .into_iter()
            .filter(|m| tied::is_tied_mount(m, &ids))
            .map(|m| format!("mount {}", m.display())),
    );
    for (name, pid) in started {
        if daemons::is_daemon(name, *pid) {
            left.push(format!("{name} (pid {pid}) still running"));
        }
    }
    Ok(left)
}

/// The harness's own files.
fn remove_state_dir(left: &mut Vec<String>) -> Result<()> {
    let dir = state::state_dir();
    for kept in mounts::remove_tree(&dir)? {
        left.push(format!(
            "mount point {} in {}: not the run's, kept (with the directories above it)",
            kept.display(),
            dir.display()
        ));
    }
    Ok(())
}
