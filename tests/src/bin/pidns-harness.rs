//! `pidns-harness up|down|status`: brings the container runtimes up for the
//! privileged tests and takes everything down again. `cargo xtask test` runs
//! `up` before the privileged suite and `down` after it, pass or fail.
//!
//! - `up` (root only): installs missing runtimes from Debian packages, starts
//!   containerd and dockerd when they are not running (reusing them when they
//!   are), builds a busybox rootfs and imports it into Docker, and sweeps
//!   whatever a killed run left behind. It first records which cgroups and
//!   mounts exist, so that `down` can tell what the run created.
//! - `down`: removes every `pidnst-` container from all four runtimes, the
//!   test image and containerd namespace, stops the daemons `up` started,
//!   unmounts and removes what the run created, and fails if anything is left.

use std::{
    collections::BTreeSet,
    fs,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use pidns_tests::{
    runtimes, sh, skip,
    state::{self, CTR_NAMESPACE, DOCKER_IMAGE},
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

/// Where runtimes mount things; mounts that appear here during a run are the run's.
const RUNTIME_MOUNT_ROOTS: [&str; 9] = [
    // pidns watch mounts tracefs when nothing is mounted there
    "/sys/kernel/tracing",
    "/run/pidns-tests",
    "/run/docker",
    "/var/lib/docker",
    "/run/containerd",
    "/var/lib/containerd",
    "/run/containers",
    "/var/lib/containers",
    "/run/netns",
];

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
    install_packages()?;
    // Keep the oldest snapshot: a killed run's leftovers are then this run's to clean.
    let mut snap = match load_snapshot()? {
        Some(s) => s,
        None => {
            let s = Snapshot {
                cgroups: cgroup_dirs()?,
                mounts: mount_points()?,
                started: Vec::new(),
            };
            save_snapshot(&s)?;
            s
        }
    };
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
    sweep_containers();
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
    let snap = load_snapshot()?.unwrap_or_default();
    sweep_containers();
    if sh::ok("docker", &["version"]) {
        let _ = sh::run("docker", &["rmi", "-f", DOCKER_IMAGE, state::AGENT_IMAGE]);
    }
    if sh::ok("ctr", &["version"]) {
        let _ = sh::run("ctr", &["namespaces", "rm", CTR_NAMESPACE]);
    }
    for (name, pid) in snap.started.iter().rev() {
        stop_daemon(name, *pid);
    }
    // What the run created: mounts first (deepest first), then cgroups.
    let mut new_mounts: Vec<PathBuf> = mount_points()?
        .difference(&snap.mounts)
        .filter(|m| is_runtime_mount(m))
        .cloned()
        .collect();
    new_mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for m in &new_mounts {
        let _ = nix::mount::umount2(m.as_path(), nix::mount::MntFlags::MNT_DETACH);
    }
    // A container's cgroup can outlive its last process by a moment, so
    // removal is retried briefly before anything counts as left behind.
    let mut new_cgroups: Vec<PathBuf> = cgroup_dirs()?.difference(&snap.cgroups).cloned().collect();
    new_cgroups.sort_by_key(|c| std::cmp::Reverse(c.components().count()));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut busy = false;
        for c in &new_cgroups {
            if fs::remove_dir(c).is_err() && c.exists() {
                busy = true;
            }
        }
        if !busy || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Check.
    let mut left = Vec::new();
    for rt in runtimes::ALL {
        if let Ok(names) = runtimes::leftovers(rt) {
            left.extend(names.into_iter().map(|n| format!("{rt:?} container {n}")));
        }
    }
    left.extend(
        cgroup_dirs()?
            .difference(&snap.cgroups)
            .map(|c| format!("cgroup {}", c.display())),
    );
    left.extend(
        mount_points()?
            .difference(&snap.mounts)
            .filter(|m| is_runtime_mount(m))
            .map(|m| format!("mount {}", m.display())),
    );
    for (name, pid) in &snap.started {
        if process_alive(*pid) {
            left.push(format!("{name} (pid {pid}) still running"));
        }
    }
    let _ = fs::remove_dir_all(state::state_dir());
    if !left.is_empty() {
        bail!("left behind:\n  {}", left.join("\n  "));
    }
    eprintln!(
        "pidns-harness down: removed all test containers, {} cgroups, {} mounts; stopped {:?}",
        new_cgroups.len(),
        new_mounts.len(),
        snap.started.iter().map(|(n, _)| n).collect::<Vec<_>>()
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

fn stop_daemon(name: &str, pid: u32) {
    use nix::{sys::signal, unistd::Pid};
    if !process_alive(pid) {
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

/// Mount points of cgroup hierarchies, from our mountinfo.
fn cgroup_mounts() -> Result<Vec<PathBuf>> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split_whitespace().next()?;
            (fstype == "cgroup" || fstype == "cgroup2")
                .then(|| pre.split_whitespace().nth(4).map(PathBuf::from))
                .flatten()
        })
        .collect())
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
fn cgroup_dirs() -> Result<BTreeSet<PathBuf>> {
    let mut out = BTreeSet::new();
    for root in cgroup_mounts()? {
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

fn mount_points() -> Result<BTreeSet<PathBuf>> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(PathBuf::from))
        .collect())
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
