//! The daemons `up` starts when they are not running (containerd,
//! dockerd), and `down` stops: only those, only while their pid is still
//! theirs, and with the mounts they leave in their own state directories.

use std::{
    collections::BTreeSet,
    fs,
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use pidns_tests::{mounts, sh, state};

use crate::snapshot::{self, Snapshot};

/// Starts containerd and dockerd unless they already answer (then they are
/// reused, and never stopped), noting in the snapshot each one it started.
pub(crate) fn start_missing(snap: &mut Snapshot) -> Result<()> {
    if !sh::ok("ctr", &["version"]) {
        let pid = spawn_daemon("containerd", &[])?;
        snap.started.push(("containerd".into(), pid));
        snapshot::save(snap)?;
        wait_until("containerd", pid, || sh::ok("ctr", &["version"]))?;
    }
    if !sh::ok("docker", &["version", "--format", "{{.Server.Version}}"]) {
        let args = [
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--containerd=/run/containerd/containerd.sock",
        ];
        let pid = spawn_daemon("dockerd", &args)?;
        snap.started.push(("dockerd".into(), pid));
        snapshot::save(snap)?;
        wait_until("dockerd", pid, || {
            sh::ok("docker", &["version", "--format", "{{.Server.Version}}"])
        })?;
    }
    Ok(())
}

fn spawn_daemon(program: &str, args: &[&str]) -> Result<u32> {
    let log_path = state::state_dir().join(format!("{program}.log"));
    let log = fs::File::create(&log_path)?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; the daemon must outlive this process.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let child = cmd.spawn().with_context(|| format!("starting {program}"))?;
    eprintln!(
        "pidns-harness up: started {program} (pid {}), log {}",
        child.id(),
        log_path.display()
    );
    Ok(child.id())
}

fn wait_until(name: &str, pid: u32, ready: impl Fn() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        if !process_alive(pid) || Instant::now() > deadline {
            let log = fs::read_to_string(state::state_dir().join(format!("{name}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            bail!("{name} did not come up; its log ends:\n{}", tail.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

fn process_alive(pid: u32) -> bool {
    // A zombie is as good as gone: its parent is init, which reaps it.
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Whether `pid` is still the daemon `name` (and not a process that got its pid since).
pub(crate) fn is_daemon(name: &str, pid: u32) -> bool {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    process_alive(pid) && comm.trim() == name.get(..15).unwrap_or(name)
}

/// Stops a daemon `up` started, if that pid is still that daemon.
pub(crate) fn stop_daemon(name: &str, pid: u32) {
    use nix::{sys::signal, unistd::Pid};
    if !is_daemon(name, pid) {
        if process_alive(pid) {
            eprintln!(
                "pidns-harness down: pid {pid} is no longer the {name} this run started; left alone"
            );
        }
        return;
    }
    let _ = signal::kill(Pid::from_raw(pid as i32), signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    while process_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if process_alive(pid) {
        eprintln!("pidns-harness down: {name} ignored SIGTERM; killing it");
        let _ = signal::kill(Pid::from_raw(pid as i32), signal::Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Where a daemon keeps the mounts it makes for itself (dockerd's
/// `/run/docker/netns/default`), which it leaves behind when stopped.
fn daemon_state_roots(daemon: &str) -> &'static [&'static str] {
    match daemon {
        "dockerd" => &["/run/docker", "/var/lib/docker"],
        "containerd" => &["/run/containerd", "/var/lib/containerd"],
        _ => &[],
    }
}

/// Unmounts what the daemons `up` started left under their own state
/// directories once stopped; see [`daemon_leftovers`].
pub(crate) fn unmount_daemon_state(snap: &Snapshot) -> usize {
    let Ok(now) = mounts::mount_points() else {
        return 0;
    };
    let theirs = daemon_leftovers(snap, &now, |name, pid| !is_daemon(name, pid));
    for m in &theirs {
        if let Err(e) = nix::mount::umount2(m.as_path(), nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("pidns-harness: cannot unmount {}: {e}", m.display());
        }
    }
    theirs.len()
}

/// Mounts under the state directories of a daemon `up` started and that is
/// stopped now, which the snapshot did not have: the daemon's, so the
/// run's. A daemon someone else started is never in `snap.started`.
/// Deepest first.
fn daemon_leftovers(
    snap: &Snapshot,
    now: &BTreeSet<PathBuf>,
    stopped: impl Fn(&str, u32) -> bool,
) -> Vec<PathBuf> {
    let mut theirs: Vec<PathBuf> = now
        .difference(&snap.mounts)
        .filter(|m| {
            snap.started.iter().any(|(name, pid)| {
                stopped(name, *pid)
                    && daemon_state_roots(name)
                        .iter()
                        .any(|root| m.starts_with(root))
            })
        })
        .cloned()
        .collect();
    theirs.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    theirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_a_stopped_daemon_of_the_run_left_are_the_runs() {
        let snap = Snapshot {
            mounts: ["/run/docker/netns/old".into()].into_iter().collect(),
            started: vec![("dockerd".into(), 10)],
            ..Snapshot::default()
        };
        let now: BTreeSet<PathBuf> = [
            "/run/docker/netns/old",
            "/run/docker/netns/default",
            "/run/containerd/io.containerd.runtime.v2.task/x/rootfs",
            "/sys/kernel/tracing",
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(
            daemon_leftovers(&snap, &now, |_, _| true),
            vec![PathBuf::from("/run/docker/netns/default")],
            "only new mounts under the stopped dockerd's own directories"
        );
        assert!(
            daemon_leftovers(&snap, &now, |_, _| false).is_empty(),
            "nothing while the daemon still runs"
        );
        let theirs = Snapshot {
            started: Vec::new(),
            ..snap
        };
        assert!(
            daemon_leftovers(&theirs, &now, |_, _| true).is_empty(),
            "nothing of a daemon the run did not start"
        );
    }
}
