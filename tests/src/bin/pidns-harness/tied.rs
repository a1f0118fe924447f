//! What can be tied to the run, and removing it: containers named
//! `pidnst-…` in every runtime, mounts whose path names the run or one of
//! its recorded containers, cgroups whose path names the run or that its
//! tests recorded. Processes are killed only in the run's own cgroups.

use std::{
    collections::BTreeSet,
    fs,
    path::{Component, Path, PathBuf},
    time::{Duration, Instant},
};

use pidns_tests::{
    cgroups, mounts, runtimes, sh,
    state::{CTR_NAMESPACE, PREFIX, Record},
};

pub(crate) fn sweep_containers() {
    for rt in runtimes::ALL {
        let Ok(names) = runtimes::leftovers(rt) else {
            continue;
        };
        for name in names {
            if let Err(e) = runtimes::remove_named(rt, &name) {
                eprintln!("pidns-harness: cannot remove {rt:?} {name}: {e:#}");
            }
        }
    }
}

pub(crate) fn ctr_namespace_exists() -> bool {
    sh::run("ctr", &["namespaces", "ls", "-q"])
        .is_ok_and(|l| l.lines().any(|n| n.trim() == CTR_NAMESPACE))
}

/// Docker and Podman container ids the tests recorded.
pub(crate) fn container_ids(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::ContainerId(id) => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// A component that names the run: the `pidnst` containerd namespace, or
/// anything carrying the `pidnst-` prefix (`pidnst-<run>-3`,
/// `systemd-nspawn@pidnst-<run>-3.service`, `lxc.payload.pidnst-<run>-3`).
fn names_the_run(component: &str) -> bool {
    component == CTR_NAMESPACE || component.contains(PREFIX)
}

/// A mount of the run's containers: its path names one of them
/// (`/run/containerd/io.containerd.runtime.v2.task/pidnst/pidnst-…/rootfs`,
/// `/var/lib/docker/containers/<id>/mounts/shm`).
pub(crate) fn is_tied_mount(m: &Path, ids: &[String]) -> bool {
    m.components().any(|c| {
        let Component::Normal(c) = c else {
            return false;
        };
        let c = c.to_string_lossy();
        names_the_run(&c) || ids.iter().any(|id| c.contains(id.as_str()))
    })
}

/// Unmounts the mounts of the run's containers that their runtimes left,
/// deepest first. Returns how many.
pub(crate) fn unmount_tied(records: &[Record]) -> usize {
    let ids = container_ids(records);
    let Ok(all) = mounts::mount_points() else {
        return 0;
    };
    let mut tied: Vec<PathBuf> = all.into_iter().filter(|m| is_tied_mount(m, &ids)).collect();
    tied.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for m in &tied {
        if let Err(e) = nix::mount::umount2(m.as_path(), nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("pidns-harness: cannot unmount {}: {e}", m.display());
        }
    }
    tied.len()
}

/// Cgroups of the run, deepest first: those whose path names the run and
/// those the tests recorded (their containers' own and the parents a
/// runtime created for them).
pub(crate) fn tied_cgroups(records: &[Record]) -> Vec<PathBuf> {
    let mut all: BTreeSet<PathBuf> = BTreeSet::new();
    for root in cgroup_mounts() {
        for dir in cgroups::walkdirs(&root) {
            if dir.strip_prefix(&root).is_ok_and(|rel| {
                rel.components()
                    .any(|c| names_the_run(&c.as_os_str().to_string_lossy()))
            }) {
                all.insert(dir);
            }
        }
    }
    for r in records {
        if let Record::Cgroup(p) | Record::OwnCgroup(p) = r {
            all.insert(p.clone());
        }
    }
    let mut v: Vec<PathBuf> = all.into_iter().collect();
    v.sort_by_key(|c| std::cmp::Reverse(c.components().count()));
    v
}

/// Whether processes in a cgroup are the run's to kill: it names the run, or
/// it is one of the run's containers' own. Never a recorded parent, where
/// someone else's containers may live by now.
pub(crate) fn may_kill_in(dir: &Path, records: &[Record]) -> bool {
    records
        .iter()
        .any(|r| matches!(r, Record::OwnCgroup(p) if dir.starts_with(p)))
        || cgroup_mounts().iter().any(|root| {
            dir.strip_prefix(root).is_ok_and(|rel| {
                rel.components()
                    .any(|c| names_the_run(&c.as_os_str().to_string_lossy()))
            })
        })
}

/// Whether a cgroup holds anything the run cannot be tied to: a process, or
/// a child cgroup that is not the run's.
pub(crate) fn in_use_by_others(dir: &Path, tied: &[PathBuf]) -> bool {
    cgroups::walkdirs(dir).iter().any(|d| {
        (d != dir && !tied.contains(d))
            || fs::read_to_string(d.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
    })
}

/// Kills what is left in the run's own cgroups and removes the run's
/// cgroups, deepest first; a recorded parent only when empty. A cgroup can
/// outlive its last process by a moment, so removal is retried briefly.
/// Returns how many processes were killed one by one.
pub(crate) fn remove_tied_cgroups(records: &[Record]) -> usize {
    let tied = tied_cgroups(records);
    let mut killed = 0;
    for c in tied
        .iter()
        .filter(|c| c.exists() && may_kill_in(c, records))
    {
        killed += cgroups::kill_all(c);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut busy = false;
        for c in &tied {
            if fs::remove_dir(c).is_err() && c.exists() {
                busy = true;
            }
        }
        if !busy || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    killed
}

/// Mount points of cgroup hierarchies.
fn cgroup_mounts() -> Vec<PathBuf> {
    cgroups::hierarchies().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_names_the_run_or_was_recorded_is_tied_to_it() {
        let ids = ["c6e94367ab9335599a46308fb7deaf45f923aae7c1e7f971dc89871f499e4cfc".to_owned()];
        for m in [
            "/run/containerd/io.containerd.runtime.v2.task/pidnst/pidnst-0a1b2c-3/rootfs",
            "/var/lib/docker/containers/c6e94367ab9335599a46308fb7deaf45f923aae7c1e7f971dc89871f499e4cfc/mounts/shm",
        ] {
            assert!(is_tied_mount(Path::new(m), &ids), "{m}");
        }
        for m in [
            "/sys/kernel/tracing",
            "/var/lib/docker/overlay2/0123/merged",
            "/run/pidns-tests",
            "/run/containerd/io.containerd.runtime.v2.task/moby/0123/rootfs",
            "/mnt/sandboxing/model_tools_env/v1/python",
        ] {
            assert!(!is_tied_mount(Path::new(m), &ids), "{m}");
        }
        for c in [
            "pidnst",
            "pidnst-0a1b2c-3",
            "systemd-nspawn@pidnst-0a1b2c-3.service",
            "lxc.payload.pidnst-0a1b2c-3",
        ] {
            assert!(names_the_run(c), "{c}");
        }
        for c in [
            "docker",
            "pidns-tests",
            "kubepods.slice",
            "pod1234",
            "machine.slice",
        ] {
            assert!(!names_the_run(c), "{c}");
        }
    }

    #[test]
    fn processes_are_killed_only_in_the_runs_own_cgroups() {
        let records = [
            Record::Cgroup(PathBuf::from("/sys/fs/cgroup/unified/docker")),
            Record::OwnCgroup(PathBuf::from("/sys/fs/cgroup/unified/docker/0123")),
        ];
        assert!(may_kill_in(
            Path::new("/sys/fs/cgroup/unified/docker/0123"),
            &records
        ));
        assert!(!may_kill_in(
            Path::new("/sys/fs/cgroup/unified/docker"),
            &records
        ));
        assert!(!may_kill_in(
            Path::new("/sys/fs/cgroup/unified/docker/4567"),
            &records
        ));
    }
}
