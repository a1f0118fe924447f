//! `pidns-harness up|down|status`: brings the container runtimes up for the
//! privileged tests and takes down what the run created. `cargo xtask test`
//! runs `up` before the privileged suite and `down` after it, pass or fail.
//!
//! - `up` (root): first records which runtime cgroups and mounts exist (the
//!   snapshot), then installs missing runtimes from Debian packages, starts
//!   containerd and dockerd when they are not running (reusing them when
//!   they are), sweeps what a killed run left behind, builds a busybox rootfs
//!   and imports it into Docker.
//! - `down` (root): removes only what can be tied to the run: containers
//!   named `pidnst-…` in all four runtimes, the test images, the `pidnst`
//!   containerd namespace, the daemons `up` started (and the mounts they
//!   leave under their own state directories), mounts whose path names
//!   one of the run's containers, cgroups named after the run or recorded by
//!   the tests as created for their containers (processes are killed only in
//!   the run's own cgroups), and the harness's state directory, never
//!   reaching into a mount. The snapshot is then used only to report: a
//!   runtime cgroup or mount that appeared during the run and is still there
//!   fails `down`, listed, but is not touched. Without a snapshot (`up` did
//!   not run) nothing is compared.
//!
//! `PIDNS_TEST_STATE_DIR` moves the state directory (default
//! `/run/pidns-tests`) elsewhere.

use std::{
    collections::BTreeSet,
    fs,
    os::unix::process::CommandExt as _,
    path::{Component, Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use pidns_tests::{
    cgroups, mounts, runtimes, sh, skip,
    state::{self, CTR_NAMESPACE, DOCKER_IMAGE, PREFIX, Record},
};
use serde::{Deserialize, Serialize};

/// What existed before the run, and which daemons the run started.
#[derive(Default, Serialize, Deserialize)]
struct Snapshot {
    cgroups: BTreeSet<PathBuf>,
    mounts: BTreeSet<PathBuf>,
    started: Vec<(String, u32)>,
}

const PACKAGES: [(&str, &str); 7] = [
    ("dockerd", "docker.io"),
    ("docker", "docker.io"),
    ("containerd", "containerd"),
    ("ctr", "containerd"),
    ("runc", "runc"),
    ("podman", "podman"),
    ("busybox", "busybox-static"),
];

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

/// Cgroup parents of the cgroupfs drivers of the runtimes `up` brings up.
const RUNTIME_PARENTS: [&str; 2] = ["docker", "libpod_parent"];

fn main() -> ExitCode {
    let verb = std::env::args().nth(1).unwrap_or_default();
    let result = match verb.as_str() {
        "up" => up(),
        "down" => down(),
        "status" => status(),
        _ => Err(anyhow!("usage: pidns-harness up|down|status")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pidns-harness {verb}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn snapshot_path() -> PathBuf {
    state::state_dir().join("snapshot.json")
}

fn load_snapshot() -> Result<Option<Snapshot>> {
    match fs::read(snapshot_path()) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).context("reading the harness snapshot")?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn save_snapshot(s: &Snapshot) -> Result<()> {
    fs::write(snapshot_path(), serde_json::to_vec_pretty(s)?)
        .context("writing the harness snapshot")
}

fn up() -> Result<()> {
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
    let mut snap = match load_snapshot()? {
        Some(s) => s,
        None => {
            let s = Snapshot {
                cgroups: runtime_cgroups()?,
                mounts: mounts::mount_points()?,
                started: Vec::new(),
            };
            save_snapshot(&s)?;
            s
        }
    };
    install_packages()?;
    if !sh::ok("ctr", &["version"]) {
        let pid = spawn_daemon("containerd", &[])?;
        snap.started.push(("containerd".into(), pid));
        save_snapshot(&snap)?;
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
        save_snapshot(&snap)?;
        wait_until("dockerd", pid, || {
            sh::ok("docker", &["version", "--format", "{{.Server.Version}}"])
        })?;
    }
    // What a killed run left behind.
    sweep_containers();
    let records = state::records();
    unmount_tied(&records);
    let killed = remove_tied_cgroups(&records);
    if killed > 0 {
        eprintln!("pidns-harness up: killed {killed} processes a previous run left in its cgroups");
    }
    // The parents Docker and Podman create for the run's containers, also
    // for those not started through the harness API (the image test's
    // agent): recorded while missing, so that down removes them once empty.
    for h in cgroups::hierarchies()? {
        for parent in RUNTIME_PARENTS {
            let dir = h.join(parent);
            if !dir.exists() {
                state::record(&Record::Cgroup(dir));
            }
        }
    }
    build_rootfs()?;
    if !sh::ok("docker", &["image", "inspect", DOCKER_IMAGE]) {
        import_image()?;
    }
    for rt in runtimes::ALL {
        runtimes::available(rt).with_context(|| format!("{rt:?} is not usable after bring-up"))?;
    }
    eprintln!(
        "pidns-harness up: docker {}, podman {}, containerd {}, runc {} ready in {:.1?}",
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
        started.elapsed()
    );
    Ok(())
}

fn down() -> Result<()> {
    if !skip::is_root() {
        return Ok(());
    }
    let snap = load_snapshot()?;
    let records = state::records();
    let mut left = Vec::new();

    sweep_containers();
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
    if sh::ok("ctr", &["version"]) && ctr_namespace_exists() {
        if let Err(e) = sh::run("ctr", &["namespaces", "rm", CTR_NAMESPACE]) {
            left.push(format!("containerd namespace {CTR_NAMESPACE}: {e:#}"));
        } else if ctr_namespace_exists() {
            left.push(format!("containerd namespace {CTR_NAMESPACE}"));
        }
    }
    let started = snap.as_ref().map(|s| s.started.as_slice()).unwrap_or(&[]);
    for (name, pid) in started.iter().rev() {
        stop_daemon(name, *pid);
    }
    let mut unmounted = unmount_tied(&records);
    if let Some(snap) = &snap {
        unmounted += unmount_daemon_state(snap);
    }
    remove_tied_cgroups(&records);

    // Check what is tied to the run.
    for rt in runtimes::ALL {
        // A runtime whose daemon is gone (stopped above) has no containers left.
        if let Ok(names) = runtimes::leftovers(rt) {
            left.extend(names.into_iter().map(|n| format!("{rt:?} container {n}")));
        }
    }
    let runc_left = left.iter().any(|l| l.starts_with("Runc container"));
    // A recorded parent that others' containers use by now is theirs.
    let all_tied = tied_cgroups(&records);
    let tied: Vec<&PathBuf> = all_tied
        .iter()
        .filter(|c| c.exists() && (may_kill_in(c, &records) || !in_use_by_others(c, &all_tied)))
        .collect();
    left.extend(tied.iter().map(|c| format!("cgroup {}", c.display())));
    let ids = container_ids(&records);
    left.extend(
        mounts::mount_points()?
            .into_iter()
            .filter(|m| is_tied_mount(m, &ids))
            .map(|m| format!("mount {}", m.display())),
    );
    for (name, pid) in started {
        if is_daemon(name, *pid) {
            left.push(format!("{name} (pid {pid}) still running"));
        }
    }
    // The harness's own files, unless runc still has a container there.
    let dir = state::state_dir();
    if runc_left {
        left.push(format!(
            "{} kept: runc still lists containers in its root there",
            dir.display()
        ));
    } else {
        for kept in mounts::remove_tree(&dir)? {
            left.push(format!(
                "mount point {} in {}: not the run's, kept (with the directories above it)",
                kept.display(),
                dir.display()
            ));
        }
    }

    // Report, never remove: what appeared during the run and stayed.
    match &snap {
        Some(snap) => {
            let mut appeared: Vec<String> = runtime_cgroups()?
                .difference(&snap.cgroups)
                .map(|c| format!("cgroup {} (appeared during the run)", c.display()))
                .collect();
            appeared.extend(
                mounts::mount_points()?
                    .difference(&snap.mounts)
                    .filter(|m| is_runtime_mount(m))
                    .map(|m| format!("mount {} (appeared during the run)", m.display())),
            );
            for a in appeared {
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
            snapshot_path().display()
        ),
    }
    if !left.is_empty() {
        bail!("left behind:\n  {}", left.join("\n  "));
    }
    eprintln!(
        "pidns-harness down: removed all test containers, {} tied mounts, {} tied cgroups; stopped {:?}",
        unmounted,
        tied_cgroups(&records).len(),
        started.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    Ok(())
}

fn status() -> Result<()> {
    for rt in runtimes::ALL {
        match runtimes::available(rt) {
            Ok(()) => println!("{rt:?}: ready"),
            Err(e) => println!("{rt:?}: {e:#}"),
        }
    }
    Ok(())
}

fn ctr_namespace_exists() -> bool {
    sh::run("ctr", &["namespaces", "ls", "-q"])
        .is_ok_and(|l| l.lines().any(|n| n.trim() == CTR_NAMESPACE))
}

/// Docker and Podman container ids the tests recorded.
fn container_ids(records: &[Record]) -> Vec<String> {
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
fn is_tied_mount(m: &Path, ids: &[String]) -> bool {
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
fn unmount_tied(records: &[Record]) -> usize {
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
fn unmount_daemon_state(snap: &Snapshot) -> usize {
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

/// Cgroups of the run, deepest first: those whose path names the run and
/// those the tests recorded (their containers' own and the parents a
/// runtime created for them).
fn tied_cgroups(records: &[Record]) -> Vec<PathBuf> {
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
fn may_kill_in(dir: &Path, records: &[Record]) -> bool {
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
fn in_use_by_others(dir: &Path, tied: &[PathBuf]) -> bool {
    cgroups::walkdirs(dir).iter().any(|d| {
        (d != dir && !tied.contains(d))
            || fs::read_to_string(d.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
    })
}

/// Kills what is left in the run's own cgroups and removes the run's
/// cgroups, deepest first; a recorded parent only when empty. A cgroup can
/// outlive its last process by a moment, so removal is retried briefly.
/// Returns how many processes were killed one by one.
fn remove_tied_cgroups(records: &[Record]) -> usize {
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

fn install_packages() -> Result<()> {
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
fn is_daemon(name: &str, pid: u32) -> bool {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    process_alive(pid) && comm.trim() == name.get(..15).unwrap_or(name)
}

/// Stops a daemon `up` started, if that pid is still that daemon.
fn stop_daemon(name: &str, pid: u32) {
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

fn sweep_containers() {
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

fn build_rootfs() -> Result<()> {
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

fn import_image() -> Result<()> {
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

fn is_runtime_mount(m: &Path) -> bool {
    RUNTIME_MOUNT_ROOTS.iter().any(|r| m.starts_with(r))
}

/// Mount points of cgroup hierarchies.
fn cgroup_mounts() -> Vec<PathBuf> {
    cgroups::hierarchies().unwrap_or_default()
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
