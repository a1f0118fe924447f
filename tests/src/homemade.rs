//! What no runtime makes on cue, as an attacker or a user would make it:
//!
//! - [`Homemade`]: a home-made container, a process in a private mount
//!   namespace on a bind-mounted copy of the test rootfs (`pivot_root`), in
//!   the host PID namespace;
//! - [`Scratch`]: a cgroup of any name, in every hierarchy (but cpuset);
//! - [`Deep`]: a cgroup whose path is longer than PATH_MAX, so that the
//!   kernel refuses to print `/proc/<pid>/cgroup` (ENAMETOOLONG) for a
//!   process in it;
//! - [`HostProcess`]: a plain host process (`sleep`), as any uid, optionally
//!   in a mount namespace of its own (`unshare -m`) or chrooted.
//!
//! Everything is removed on drop, also on panic.

use std::{
    fs,
    os::{fd::OwnedFd, unix::process::CommandExt as _},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use nix::{
    fcntl::{OFlag, openat},
    sys::stat::{Mode, mkdirat},
    unistd::{UnlinkatFlags, unlinkat},
};

use crate::{cgroups, mounts, runtimes, sh, state};

/// A cgroup of any name (`rel`, below each hierarchy's root), created in
/// every hierarchy but cpuset (which wants cpus and mems set first) and
/// recorded for `pidns-harness`.
pub struct Scratch {
    pub rel: String,
    dirs: Vec<PathBuf>,
    _claim: cgroups::Claim,
}

impl Scratch {
    pub fn new(rel: &str) -> Result<Scratch> {
        let rel = rel.trim_start_matches('/').to_owned();
        let claim = cgroups::claim(&rel, cgroups::Leaf::Own);
        let mut dirs = Vec::new();
        for h in cgroups::mounted()? {
            if h.options.iter().any(|o| o == "cpuset") {
                continue;
            }
            let dir = h.mount_point.join(&rel);
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            dirs.push(dir);
        }
        Ok(Scratch {
            rel,
            dirs,
            _claim: claim,
        })
    }

    /// What `systemd-run --user --scope --unit=docker-<id>` gives any local
    /// user: a cgroup named like Docker container `id`'s under uid 1000's
    /// `user.slice`, with no container in it.
    pub fn claimed_docker_scope(id: &str) -> Result<Scratch> {
        Scratch::new(&format!(
            "user.slice/user-1000.slice/user@1000.service/{}.slice/docker-{id}.scope",
            state::unique_name()
        ))
    }

    /// Moves `pid` into it, in every hierarchy.
    pub fn enter(&self, pid: u32) -> Result<()> {
        for d in &self.dirs {
            fs::write(d.join("cgroup.procs"), pid.to_string())
                .with_context(|| format!("moving {pid} into {}", d.display()))?;
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for d in &self.dirs {
            cgroups::kill_all(d);
            if let Err(e) = cgroups::remove(d, Duration::from_secs(5)) {
                eprintln!("pidns-tests: {e:#}");
            }
        }
    }
}

/// A cgroup path longer than PATH_MAX in the unified hierarchy: `top`
/// (named for the run) and below it directories of 250 characters until the
/// path is over 4096 bytes. Made and removed through directory file
/// descriptors, as no path that long can be opened.
pub struct Deep {
    top: PathBuf,
    /// Each level's descriptor and name, outermost first.
    levels: Vec<(OwnedFd, String)>,
    _claim: cgroups::Claim,
}

impl Deep {
    pub fn new(name: &str) -> Result<Deep> {
        let unified = cgroups::unified_mount()?;
        let claim = cgroups::claim(name, cgroups::Leaf::Own);
        let top = unified.join(name);
        fs::create_dir(&top).with_context(|| format!("creating {}", top.display()))?;
        let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let top_fd = nix::fcntl::open(&top, dir_flags, Mode::empty())?;
        let mut levels = vec![(top_fd, name.to_owned())];
        let mut len = name.len() + 1;
        let segment = "p".repeat(250);
        while len <= 4200 {
            let parent = &levels.last().context("a level")?.0;
            mkdirat(parent, segment.as_str(), Mode::from_bits_truncate(0o755))?;
            let fd = openat(parent, segment.as_str(), dir_flags, Mode::empty())?;
            levels.push((fd, segment.clone()));
            len += segment.len() + 1;
        }
        Ok(Deep {
            top,
            levels,
            _claim: claim,
        })
    }

    /// Moves `pid` into the deepest cgroup.
    pub fn enter(&self, pid: u32) -> Result<()> {
        let deepest = &self.levels.last().context("a level")?.0;
        let fd = openat(
            deepest,
            "cgroup.procs",
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        nix::unistd::write(&fd, pid.to_string().as_bytes())
            .with_context(|| format!("moving {pid} into the deep cgroup"))?;
        Ok(())
    }
}

impl Drop for Deep {
    fn drop(&mut self) {
        // Whatever is left in it goes back to the root, then the levels
        // are removed deepest first, each through its parent's descriptor.
        if let Some((fd, _)) = self.levels.last()
            && let Ok(procs) = openat(fd, "cgroup.procs", OFlag::O_RDONLY, Mode::empty())
        {
            let mut buf = [0u8; 4096];
            let n = nix::unistd::read(&procs, &mut buf).unwrap_or(0);
            let root = self.top.parent().map(|p| p.join("cgroup.procs"));
            for pid in String::from_utf8_lossy(&buf[..n]).lines() {
                if let Some(root) = &root {
                    let _ = fs::write(root, pid);
                }
            }
        }
        while self.levels.len() > 1 {
            let Some((_, name)) = self.levels.pop() else {
                break;
            };
            let Some((parent, _)) = self.levels.last() else {
                break;
            };
            let deadline = Instant::now() + Duration::from_secs(5);
            while unlinkat(parent, name.as_str(), UnlinkatFlags::RemoveDir).is_err()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.levels.clear();
        if let Err(e) = cgroups::remove(&self.top, Duration::from_secs(5)) {
            eprintln!("pidns-tests: {e:#}");
        }
    }
}

/// A home-made container: `sleep` in a mount namespace of its own, on a
/// bind-mounted copy of the test rootfs made its root with `pivot_root`,
/// in the host PID namespace.
pub struct Homemade {
    pub pid: u32,
    /// Its root filesystem on the host.
    pub rootfs: PathBuf,
    child: Child,
}

impl Homemade {
    pub fn start() -> Result<Homemade> {
        let rootfs = state::state_dir()
            .join("homemade")
            .join(state::unique_name());
        fs::create_dir_all(rootfs.parent().context("parent")?)?;
        sh::run(
            "cp",
            &[
                "-a",
                &runtimes::rootfs().display().to_string(),
                &rootfs.display().to_string(),
            ],
        )?;
        fs::create_dir_all(rootfs.join(".old"))?;
        let script =
            "mount --bind \"$1\" \"$1\" && cd \"$1\" && pivot_root . .old && exec /bin/sleep 3600";
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
            .arg(&rootfs)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .context("starting a home-made container")?;
        let mut h = Homemade {
            pid: child.id(),
            rootfs,
            child,
        };
        h.wait_for_its_root()?;
        Ok(h)
    }

    /// Until its root is its rootfs (it has pivoted).
    fn wait_for_its_root(&mut self) -> Result<()> {
        use std::os::unix::fs::MetadataExt as _;
        let want = fs::metadata(&self.rootfs)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(m) = fs::metadata(format!("/proc/{}/root", self.pid))
                && (m.dev(), m.ino()) == (want.dev(), want.ino())
            {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                bail!("the home-made container exited ({status}): {}", err.trim());
            }
            if Instant::now() > deadline {
                bail!("the home-made container never pivoted into its root");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Homemade {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // its mounts went with its mount namespace; the copy is plain files
        if let Err(e) = mounts::remove_tree(&self.rootfs) {
            eprintln!("pidns-tests: removing {}: {e:#}", self.rootfs.display());
        }
    }
}

/// A host process (`sleep 3600`), killed on drop.
pub struct HostProcess {
    pub pid: u32,
    child: Child,
}

/// How a [`HostProcess`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// As it is.
    Plain,
    /// In a mount namespace of its own, on the host's root (`unshare -m`).
    OwnMountNamespace,
    /// Chrooted into a directory of the host's filesystem, in the host's
    /// mount namespace (as sshd's privilege separation is).
    Chroot,
    /// Without any capability, bounding set included (`setpriv`): a root
    /// process a default-capability container may signal, trace and read.
    NoCaps,
}

impl HostProcess {
    pub fn start(how: How, uid: u32) -> Result<HostProcess> {
        let sleep = ["/bin/sleep", "3600"];
        let mut cmd = match how {
            How::Plain => Command::new(sleep[0]),
            How::OwnMountNamespace => {
                let mut c = Command::new("unshare");
                c.args(["-m", "--propagation", "private"]).arg(sleep[0]);
                c
            }
            How::Chroot => {
                let mut c = Command::new("chroot");
                c.arg(runtimes::rootfs()).arg(sleep[0]);
                c
            }
            How::NoCaps => {
                let mut c = Command::new("setpriv");
                c.args(["--inh-caps=-all", "--bounding-set=-all"])
                    .arg(sleep[0]);
                c
            }
        };
        cmd.arg(sleep[1])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if uid != 0 {
            cmd.uid(uid).gid(uid);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {how:?} sleep"))?;
        let p = HostProcess {
            pid: child.id(),
            child,
        };
        // until it is sleep (unshare and chroot exec it)
        let deadline = Instant::now() + Duration::from_secs(10);
        while fs::read_to_string(format!("/proc/{}/comm", p.pid))
            .map(|c| c.trim() != "sleep")
            .unwrap_or(true)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(p)
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
