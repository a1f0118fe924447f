//! What the scans are measured on: fake Docker containers (`/docker/<64
//! hex>` cgroups, made and removed by the test crate's
//! [`FakeContainer`]), each with processes half in the host PID namespace
//! and half in a namespace of their own. The host-PID half runs, as a real
//! container's processes do, in a mount namespace of its own on a root of
//! its own (a busybox tree): a cgroup's name alone is only a claim to pidns.

use std::{
    collections::HashSet,
    fs,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use pidns_tests::cgroups::{self, FakeContainer};

use super::interrupted;

/// The cgroup hierarchies fake containers are created in.
pub(super) struct Hierarchies {
    pub unified: Option<PathBuf>,
    /// The unified one first, then every v1 one but cpuset: that needs
    /// cpus/mems set before it accepts tasks; Docker sets them, we skip it.
    pub all: Vec<PathBuf>,
}

impl Hierarchies {
    pub fn find() -> Result<Hierarchies> {
        let mounted = cgroups::mounted()?;
        let unified = mounted
            .iter()
            .find(|h| h.unified)
            .map(|h| h.mount_point.clone());
        let v1 = mounted
            .into_iter()
            .filter(|h| !h.unified && !h.options.iter().any(|o| o == "cpuset"))
            .map(|h| h.mount_point);
        let all: Vec<PathBuf> = unified.iter().cloned().chain(v1).collect();
        if all.is_empty() {
            bail!("no cgroup hierarchy is mounted");
        }
        Ok(Hierarchies { unified, all })
    }
}

/// A busybox tree the host-PID half of every fake container runs on, with
/// an empty regular `dev/null` (busybox's shell opens it for background
/// jobs). Removed on drop.
pub(super) struct Root(PathBuf);

impl Root {
    fn create() -> Result<Root> {
        let busybox = which::which("busybox").context("busybox (busybox-static) is needed")?;
        let dir = std::env::temp_dir().join(format!("pidns-bench-root-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin"))?;
        fs::create_dir_all(dir.join("dev"))?;
        fs::copy(&busybox, dir.join("bin/busybox"))?;
        for applet in ["sh", "sleep"] {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet))?;
        }
        fs::write(dir.join("dev/null"), "")?;
        let root = Root(dir);
        let ok = Command::new("chroot")
            .arg(&root.0)
            .args(["/bin/sh", "-c", "true"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            bail!(
                "{} does not run chrooted (not a static busybox?)",
                busybox.display()
            );
        }
        Ok(root)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Fake Docker containers with processes in them, removed on drop.
pub(super) struct Population {
    groups: Vec<Child>,
    /// Container processes in the host PID namespace (the truth).
    pub host_pids: HashSet<u32>,
    /// Every container process, to wait for after killing them.
    all_pids: Vec<u32>,
    pub processes: usize,
    /// Dropped after the processes are gone (fields drop after `drop()`).
    pub containers: Vec<FakeContainer>,
    root: Root,
}

impl Population {
    /// `n` containers, each with a shell and `k` sleeps in the host PID
    /// namespace and a shell and `k` sleeps in a PID namespace of its own.
    pub fn create(h: &Hierarchies, n: usize, k: usize) -> Result<Population> {
        let mut pop = Population {
            groups: Vec::new(),
            host_pids: HashSet::new(),
            all_pids: Vec::new(),
            processes: 0,
            containers: Vec::new(),
            root: Root::create()?,
        };
        for _ in 0..n {
            interrupted()?;
            // Not recorded for pidns-harness: the bench removes its own.
            let fake = FakeContainer::docker_in(&h.all, false)?;
            pop.containers.push(fake);
            pop.spawn_into(pop.containers.len() - 1, k)?;
        }
        // Wait until every container holds its 2k+2 processes.
        let deadline = Instant::now() + Duration::from_secs(300);
        for i in 0..pop.containers.len() {
            pop.wait_for_processes(i, 2 * k + 2, deadline)?;
        }
        pop.processes = proc_count();
        Ok(pop)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.containers.iter().map(|c| c.id.as_str())
    }

    /// Starts container `i`'s shells, each joining the container's cgroups
    /// from inside and starting `k` sleeps: one in the host PID namespace,
    /// which then enters a mount namespace of its own on the busybox root
    /// (`unshare -m -R`, the same process), and one in a PID namespace of
    /// its own (`unshare -p -f`).
    fn spawn_into(&mut self, i: usize, k: usize) -> Result<()> {
        let sleeps = format!("i=0; while [ $i -lt {k} ]; do sleep 3600 & i=$((i+1)); done; wait");
        let join = "for f in \"$@\"; do echo 0 > \"$f\" || exit 1; done";
        let contained = format!(
            "{join}; exec unshare -m --propagation private -R '{}' /bin/sh -c '{sleeps}'",
            self.root.0.display()
        );
        let isolated = format!("{join}; {sleeps}");
        let procs_files: Vec<String> = self.containers[i]
            .dirs()
            .map(|d| d.join("cgroup.procs").display().to_string())
            .collect();
        for in_own_pidns in [false, true] {
            let mut c = if in_own_pidns {
                let mut c = Command::new("unshare");
                c.args(["-p", "-f", "sh", "-c", &isolated, "sh"]);
                c
            } else {
                let mut c = Command::new("sh");
                c.args(["-c", &contained, "sh"]);
                c
            };
            c.args(&procs_files)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0);
            self.groups
                .push(c.spawn().context("spawning container processes")?);
        }
        Ok(())
    }

    /// Waits until container `i` holds `want` processes; notes which of
    /// them are in the host PID namespace.
    fn wait_for_processes(&mut self, i: usize, want: usize, deadline: Instant) -> Result<()> {
        let fake = &self.containers[i];
        let procs = fake.dir.join("cgroup.procs");
        loop {
            interrupted()?;
            let pids: Vec<u32> = fs::read_to_string(&procs)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.parse().ok())
                .collect();
            if pids.len() >= want {
                self.all_pids.extend(&pids);
                for pid in pids {
                    // One NSpid entry: the process lives in the host PID namespace.
                    let nspid = procfs::process::Process::new(pid as i32)
                        .and_then(|p| p.status())
                        .ok()
                        .and_then(|s| s.nspid);
                    if nspid.is_some_and(|v| v.len() == 1) {
                        self.host_pids.insert(pid);
                    }
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("container {} never got its processes", fake.id);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Population {
    fn drop(&mut self) {
        for g in &mut self.groups {
            // Each shell leads its own process group, with its sleeps in it.
            if let Ok(pgid) = i32::try_from(g.id()) {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
        }
        for g in &mut self.groups {
            let _ = g.wait();
        }
        // Orphaned sleeps are reaped by init in its own time; the next
        // measurement must not count them, and their cgroups cannot go before.
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .all_pids
            .iter()
            .any(|p| Path::new(&format!("/proc/{p}")).exists())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn proc_count() -> usize {
    procfs::process::all_processes().map_or(0, |all| all.count())
}
