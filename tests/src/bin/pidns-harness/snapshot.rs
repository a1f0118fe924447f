//! What existed before the run (runtime cgroups and mounts) and which
//! daemons the run started, in the state directory; `down` reports what
//! appeared since and stayed, and never removes it on that ground.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use pidns_tests::{cgroups, mounts, state};
use serde::{Deserialize, Serialize};

/// What existed before the run, and which daemons the run started.
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub cgroups: BTreeSet<PathBuf>,
    pub mounts: BTreeSet<PathBuf>,
    pub started: Vec<(String, u32)>,
    /// Cgroup hierarchies `up` mounted (for crun), unmounted by `down`.
    #[serde(default)]
    pub mounted: Vec<PathBuf>,
}

/// Where runtimes mount things: mounts that appear here during a run and
/// stay are reported by `down`.
const RUNTIME_MOUNT_ROOTS: [&str; 8] = [
    // pidns watch mounts tracefs when nothing is mounted there
    "/sys/kernel/tracing",
    "/run/docker",
    "/var/lib/docker",
    "/run/containerd",
    "/var/lib/containerd",
    "/run/containers",
    "/var/lib/containers",
    "/run/netns",
];

pub(crate) fn path() -> PathBuf {
    state::state_dir().join("snapshot.json")
}

pub(crate) fn load() -> Result<Option<Snapshot>> {
    match fs::read(path()) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).context("reading the harness snapshot")?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn save(s: &Snapshot) -> Result<()> {
    fs::write(path(), serde_json::to_vec_pretty(s)?).context("writing the harness snapshot")
}

impl Snapshot {
    /// The runtime cgroups and mounts there are now; no daemon started yet.
    pub(crate) fn take() -> Result<Snapshot> {
        Ok(Snapshot {
            cgroups: runtime_cgroups()?,
            mounts: mounts::mount_points()?,
            started: Vec::new(),
            mounted: Vec::new(),
        })
    }

    /// What appeared during the run and is still there: runtime cgroups and
    /// mounts the snapshot did not have.
    pub(crate) fn appeared(&self) -> Result<Vec<String>> {
        let mut appeared: Vec<String> = runtime_cgroups()?
            .difference(&self.cgroups)
            .map(|c| format!("cgroup {} (appeared during the run)", c.display()))
            .collect();
        appeared.extend(
            mounts::mount_points()?
                .difference(&self.mounts)
                .filter(|m| is_runtime_mount(m))
                .map(|m| format!("mount {} (appeared during the run)", m.display())),
        );
        Ok(appeared)
    }
}

fn is_runtime_mount(m: &Path) -> bool {
    RUNTIME_MOUNT_ROOTS.iter().any(|r| m.starts_with(r))
}

/// Names that mark a cgroup as the runtimes' (or the tests'): Docker,
/// Podman and conmon, containerd and ctr's `pidnst` namespace, and the
/// Kubernetes, CRI-O, nspawn and LXC layouts that the runc tests reproduce.
const RUNTIME_CGROUP_MARKERS: [&str; 9] = [
    "docker",
    "libpod",
    "conmon",
    "containerd",
    state::CTR_NAMESPACE,
    "kubepods",
    "crio",
    "machine",
    "lxc",
];

/// Whether a cgroup, by its path below the hierarchy's mount point, lies in
/// runtime territory. Cgroups that other managers create while the tests
/// run (a supervisor's per-command cgroups, a systemd timer's unit) are
/// theirs: neither removed nor counted as left behind.
fn is_runtime_cgroup(rel: &Path) -> bool {
    rel.components().any(|c| {
        let name = c.as_os_str().to_string_lossy();
        RUNTIME_CGROUP_MARKERS.iter().any(|m| name.contains(m))
    })
}

/// Every runtime cgroup, in every hierarchy.
fn runtime_cgroups() -> Result<BTreeSet<PathBuf>> {
    let mut out = BTreeSet::new();
    for root in cgroups::hierarchies()? {
        walk(&root, &root, 0, &mut out);
    }
    Ok(out)
}

fn walk(root: &Path, dir: &Path, depth: usize, out: &mut BTreeSet<PathBuf>) {
    if depth > 8 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let p = e.path();
            walk(root, &p, depth + 1, out);
            if p.strip_prefix(root).is_ok_and(is_runtime_cgroup) {
                out.insert(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_cgroups_are_told_from_other_managers() {
        for rel in [
            "docker/0123abcd",
            "libpod_parent/conmon",
            "pidnst/pidnst-ctr-1",
            "kubepods/burstable/pod1234/abcd",
            "kubepods-besteffort-pod12_34.slice:cri-containerd:abcd",
            "machine.slice/systemd-nspawn@pidnst-n.service/payload",
            "lxc.payload.pidnst-l",
            "system.slice/docker-0123.scope",
        ] {
            assert!(is_runtime_cgroup(Path::new(rel)), "{rel}");
        }
        for rel in [
            "process_api/b0d249309c04dfe917154ef8c4b8e6fd",
            "system.slice/apt-daily.service",
            "user.slice/user-1000.slice/session-3.scope",
        ] {
            assert!(!is_runtime_cgroup(Path::new(rel)), "{rel}");
        }
    }
}
