//! systemd-nspawn, isolated: a copy of the test rootfs as a machine
//! directory (`/var/lib/machines/<name>`), run with `--register=no
//! --keep-unit` (there is no system bus here). nspawn then stays in its
//! caller's cgroup and makes `payload` and `supervisor` below it, so it is
//! started from a cgroup of its own (`/<name>`, in the unified and
//! systemd hierarchies), removed with it.

use std::{
    fs,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::{Container, Pid, Spec, rootfs};
use crate::{cgroups, mounts, sh, state};

pub const MACHINES: &str = "/var/lib/machines";

pub(super) fn available() -> Result<()> {
    sh::run("systemd-nspawn", &["--version"])
        .context("systemd-nspawn is not installed")
        .map(drop)
}

/// The cgroup hierarchies nspawn needs its caller in: the unified one and
/// systemd's named one.
fn hierarchies() -> Result<Vec<PathBuf>> {
    Ok(cgroups::mounted()?
        .into_iter()
        .filter(|h| h.unified || h.options.iter().any(|o| o == "name=systemd"))
        .map(|h| h.mount_point)
        .collect())
}

pub(super) fn start(spec: &Spec<'_>, c: &mut Container) -> Result<()> {
    if !matches!(spec.pid, Pid::Private) {
        bail!("systemd-nspawn always gives its container a PID namespace of its own");
    }
    let name = c.name.clone();
    let dir = PathBuf::from(MACHINES).join(&name);
    sh::run(
        "cp",
        &[
            "-a",
            &rootfs().display().to_string(),
            &dir.display().to_string(),
        ],
    )?;
    c.bundle = Some(dir.clone());
    fs::create_dir_all(dir.join("usr/lib"))?;
    fs::write(dir.join("usr/lib/os-release"), "ID=busybox\nNAME=pidnst\n")?;
    c.claim = cgroups::claim(&name, cgroups::Leaf::Own);
    let mut join = String::new();
    for h in hierarchies()? {
        let cg = h.join(&name);
        fs::create_dir_all(&cg)?;
        join.push_str(&format!("echo $$ > '{}/cgroup.procs' && ", cg.display()));
    }
    let log = fs::File::create(state::state_dir().join(format!("{name}.log")))?;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{join}exec systemd-nspawn \"$@\""))
        .arg("sh")
        .args(["--register=no", "--keep-unit", "-q", "-M", &name, "-D"])
        .arg(&dir)
        .args(&spec.cmd)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; nspawn must not share our session.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().context("starting systemd-nspawn")?;
    c.supervisor = Some(child.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    c.init_pid = loop {
        if let Some(pid) = first_child(child.id()) {
            break pid;
        }
        if child.try_wait()?.is_some() || Instant::now() > deadline {
            let log = fs::read_to_string(state::state_dir().join(format!("{name}.log")))
                .unwrap_or_default();
            bail!("systemd-nspawn did not start its container: {}", log.trim());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // reaped by whoever waits for it: dropping the handle leaves it to init
    std::mem::forget(child);
    c.id = name;
    c.runtime = "systemd-nspawn";
    Ok(())
}

/// The container's init: the child of nspawn in a PID namespace other than
/// ours. nspawn's first child is its "outer child", which sets the
/// container up in our PID namespace and exits once it has started the
/// init (a child of nspawn too, by CLONE_PARENT): taking it for the init
/// made the scan tests look for a pid that was gone.
fn first_child(pid: u32) -> Option<u32> {
    let ours = fs::read_link("/proc/self/ns/pid").ok()?;
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .find(|c: &u32| fs::read_link(format!("/proc/{c}/ns/pid")).is_ok_and(|ns| ns != ours))
}

/// Stops the machine (its supervisor and everything in its cgroups),
/// removes its cgroups below `/<name>` and its directory.
pub(super) fn remove_named(name: &str, supervisor: Option<u32>) -> Result<()> {
    if let Some(pid) = supervisor.filter(|&p| is_nspawn(p, name)) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    for h in hierarchies()? {
        let top = h.join(name);
        if top.exists() {
            cgroups::kill_all(&top);
            for d in cgroups::walkdirs(&top) {
                if d != top {
                    let _ = cgroups::remove(&d, Duration::from_secs(2));
                }
            }
        }
    }
    let dir = Path::new(MACHINES).join(name);
    if dir.exists() {
        mounts::remove_tree(&dir)?;
    }
    Ok(())
}

/// Whether `pid` is still the nspawn that runs machine `name`.
fn is_nspawn(pid: u32, name: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let args: Vec<&[u8]> = c.split(|&b| b == 0).collect();
        args.first().is_some_and(|a| a.ends_with(b"systemd-nspawn"))
            && args
                .windows(2)
                .any(|w| w[0] == b"-M" && w[1] == name.as_bytes())
    })
}

/// Machines of ours: their directories.
pub(super) fn leftovers() -> String {
    fs::read_dir(MACHINES)
        .map(|it| {
            it.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}
