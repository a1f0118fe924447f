//! A fake container: a cgroup laid out as a runtime would (here Docker's
//! cgroupfs layout), for synthetic cases no runtime produces on cue.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::state;

/// The unified (v2) hierarchy's mount point.
pub fn unified_mount() -> Result<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    info.lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mut f = pre.split_whitespace();
            let root = f.nth(3)?;
            let mp = f.next()?;
            (post.starts_with("cgroup2 ") && root == "/").then(|| PathBuf::from(mp))
        })
        .context("no cgroup2 hierarchy mounted")
}

/// `/docker/<64 hex>` in the unified hierarchy, removed on drop.
pub struct FakeContainer {
    pub id: String,
    pub dir: PathBuf,
}

impl FakeContainer {
    pub fn docker() -> Result<FakeContainer> {
        let id = state::random_hex(32);
        let dir = unified_mount()?.join("docker").join(&id);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(FakeContainer { id, dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Moves every process left in the cgroup out (to the root) and removes it.
    fn remove(&self) -> Result<()> {
        let root = unified_mount()?;
        if let Ok(procs) = std::fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in procs.lines() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid.parse().unwrap_or(0)),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = std::fs::write(root.join("cgroup.procs"), pid);
            }
        }
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        bail!("cannot remove {}", self.dir.display())
    }
}

impl Drop for FakeContainer {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("{e:#}");
        }
    }
}
