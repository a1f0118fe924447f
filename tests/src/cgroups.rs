//! Cgroups: the hierarchies, the parent directories our containers make a
//! runtime create (removed again with the last container that needed
//! them), and a fake container: a cgroup laid out as Docker's cgroupfs
//! driver would, for synthetic cases no runtime produces on cue.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Component, Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{
    mounts,
    state::{self, Record},
};

/// A cgroup hierarchy, mounted at its root.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mount_point: PathBuf,
    /// cgroup2: the unified hierarchy.
    pub unified: bool,
    /// Its filesystem's options: a v1 hierarchy's controllers (`cpuset`) or name (`name=systemd`).
    pub options: Vec<String>,
}

/// Every cgroup hierarchy (v1 controllers and the unified one) mounted at
/// its root, in mount order; one mounted twice is listed once.
pub fn mounted() -> Result<Vec<Hierarchy>> {
    let mut devices = BTreeSet::new();
    Ok(mounts::mounts()?
        .into_iter()
        .filter(|m| (m.fs_type == "cgroup" || m.fs_type == "cgroup2") && m.root == Path::new("/"))
        .filter(|m| devices.insert(m.device.clone()))
        .map(|m| Hierarchy {
            unified: m.fs_type == "cgroup2",
            mount_point: m.mount_point,
            options: m.super_options,
        })
        .collect())
}

/// Mount points of every cgroup hierarchy (v1 controllers and the unified one).
pub fn hierarchies() -> Result<Vec<PathBuf>> {
    Ok(mounted()?.into_iter().map(|h| h.mount_point).collect())
}

/// The unified (v2) hierarchy's mount point.
pub fn unified_mount() -> Result<PathBuf> {
    mounted()?
        .into_iter()
        .find(|h| h.unified)
        .map(|h| h.mount_point)
        .context("no cgroup2 hierarchy mounted")
}

/// Cgroup directories that containers of this process caused to exist,
/// with how many of this process's live containers lie below each.
static CREATED: Mutex<BTreeMap<PathBuf, usize>> = Mutex::new(BTreeMap::new());

fn created() -> std::sync::MutexGuard<'static, BTreeMap<PathBuf, usize>> {
    CREATED.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cgroup directories one container holds: those of its path that did
/// not exist before it was created (or that another container of this
/// process created and still holds). [`Claim::release`] removes each one
/// when the last container holding it is gone.
#[derive(Debug, Default)]
pub struct Claim {
    dirs: Vec<PathBuf>,
}

/// Which cgroup a claim is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// The path ends with the container's own cgroup (runc, ctr, a fake one).
    Own,
    /// The path ends with the runtime's parent (Docker's `/docker`).
    Parent,
}

/// Before a container is created below cgroup path `rel` (the same below
/// every hierarchy), notes which directories of that path the runtime is
/// about to create. Each is also recorded in the state directory, for a
/// killed run.
pub fn claim(rel: &str, leaf: Leaf) -> Claim {
    match hierarchies() {
        Ok(h) => claim_in(&h, rel, leaf, true),
        Err(e) => {
            eprintln!("pidns-tests: cannot list cgroup hierarchies: {e:#}");
            Claim::default()
        }
    }
}

/// [`claim`] of several paths, held (and released) together.
pub fn claim_all(paths: &[(String, Leaf)]) -> Claim {
    Claim {
        dirs: paths
            .iter()
            .flat_map(|(rel, leaf)| std::mem::take(&mut claim(rel, *leaf).dirs))
            .collect(),
    }
}

/// [`claim`] in the given hierarchies; `record` writes the claimed
/// directories to the state directory's records.
fn claim_in(hierarchies: &[PathBuf], rel: &str, leaf: Leaf, record: bool) -> Claim {
    let mut created = created();
    let mut dirs = Vec::new();
    let parts: Vec<_> = Path::new(rel)
        .components()
        .filter_map(|c| match c {
            Component::Normal(c) => Some(c),
            _ => None,
        })
        .collect();
    for h in hierarchies {
        let mut dir = h.clone();
        for (i, c) in parts.iter().enumerate() {
            dir.push(c);
            if let Some(holders) = created.get_mut(&dir) {
                *holders += 1;
                dirs.push(dir.clone());
            } else if !dir.exists() {
                created.insert(dir.clone(), 1);
                if record {
                    let own = leaf == Leaf::Own && i + 1 == parts.len();
                    state::record(&if own {
                        Record::OwnCgroup(dir.clone())
                    } else {
                        Record::Cgroup(dir.clone())
                    });
                }
                dirs.push(dir.clone());
            }
        }
    }
    Claim { dirs }
}

impl Claim {
    /// After the container is gone: removes the directories no other
    /// container of this process still holds, deepest first. One still busy
    /// (another process's container below it) is left for `pidns-harness
    /// down`, which finds it in the records.
    pub fn release(&mut self) {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        let mut created = created();
        for dir in dirs {
            match created.get_mut(&dir) {
                Some(holders) if *holders > 1 => *holders -= 1,
                Some(_) => {
                    created.remove(&dir);
                    if let Err(e) = remove(&dir, Duration::from_secs(2)) {
                        eprintln!("pidns-tests: {e:#} (left for pidns-harness down)");
                    }
                }
                None => {}
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.release();
    }
}

/// Removes an empty cgroup, retrying while it is busy: a cgroup can outlive
/// its last process by a moment.
pub fn remove(dir: &Path, patience: Duration) -> Result<()> {
    let deadline = Instant::now() + patience;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                bail!("cannot remove cgroup {}: {e}", dir.display())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Kills every process in a cgroup and below it (`cgroup.kill` where the
/// hierarchy has it, SIGKILL one by one otherwise). Returns how many it
/// signalled one by one.
pub fn kill_all(dir: &Path) -> usize {
    // Never created: only a cgroup v2 directory has it.
    let kill = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.kill"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"1"));
    if kill.is_ok() {
        return 0;
    }
    let mut n = 0;
    for entry in walkdirs(dir) {
        let Ok(procs) = std::fs::read_to_string(entry.join("cgroup.procs")) else {
            continue;
        };
        for pid in procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
            if nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            )
            .is_ok()
            {
                n += 1;
            }
        }
    }
    n
}

/// `dir` and every directory below it, deepest first.
pub fn walkdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
        out.push(d);
    }
    out.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    out
}

/// `/docker/<64 hex>`, laid out as Docker's cgroupfs driver would, removed
/// on drop (with `/docker` where it made it exist, once no other fake or
/// real container of this process is below it).
pub struct FakeContainer {
    pub id: String,
    /// The container's cgroup in the first hierarchy it was created in.
    pub dir: PathBuf,
    /// Its cgroup in every hierarchy, with that hierarchy's mount point.
    dirs: Vec<(PathBuf, PathBuf)>,
    claim: Claim,
}

impl FakeContainer {
    /// In the unified hierarchy. Recorded, so that processes a killed run
    /// left in it are killed at the next `pidns-harness up`.
    pub fn docker() -> Result<FakeContainer> {
        FakeContainer::docker_in(&[unified_mount()?], true)
    }

    /// In each of `hierarchies` (mount points, the first one's cgroup is
    /// [`FakeContainer::dir`]); `record` writes what it creates to the
    /// state directory's records, for `pidns-harness`.
    pub fn docker_in(hierarchies: &[PathBuf], record: bool) -> Result<FakeContainer> {
        let id = state::random_hex(32);
        let claim = claim_in(hierarchies, &format!("docker/{id}"), Leaf::Own, record);
        let dirs: Vec<(PathBuf, PathBuf)> = hierarchies
            .iter()
            .map(|h| (h.join("docker").join(&id), h.clone()))
            .collect();
        let dir = dirs
            .first()
            .map(|(d, _)| d.clone())
            .context("no hierarchy")?;
        let fake = FakeContainer {
            id,
            dir,
            dirs,
            claim,
        };
        for (dir, _) in &fake.dirs {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(fake)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Its cgroup in every hierarchy it was created in.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|(d, _)| d.as_path())
    }

    /// Kills every process left in the cgroups and removes them.
    fn remove(&mut self) -> Result<()> {
        let mut result = Ok(());
        for (dir, root) in &self.dirs {
            if dir.exists() {
                kill_all(dir);
                // A process the test has not reaped yet could hold the cgroup:
                // move whatever is still listed out to the root.
                if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                    for pid in procs.lines() {
                        let _ = std::fs::write(root.join("cgroup.procs"), pid);
                    }
                }
            }
            let removed = remove(dir, Duration::from_secs(2));
            if result.is_ok() {
                result = removed;
            }
        }
        self.claim.release();
        result
    }
}

impl Drop for FakeContainer {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("{e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain directories stand in for hierarchies: what matters is which
    /// directories a claim takes and which a release removes.
    #[test]
    fn a_claim_takes_what_did_not_exist_and_the_last_release_removes_it() {
        let base = std::env::temp_dir().join(format!(
            "pidns-tests-claim-{}-{}",
            std::process::id(),
            state::random_hex(4)
        ));
        let h1 = base.join("h1");
        let h2 = base.join("h2");
        std::fs::create_dir_all(h1.join("kubepods")).expect("mkdir");
        std::fs::create_dir_all(&h2).expect("mkdir");
        // Not recorded: the state directory may be a live run's.
        let hs = [h1.clone(), h2.clone()];

        let mut a = claim_in(&hs, "/kubepods/burstable/podA/c1", Leaf::Own, false);
        let mut b = claim_in(&hs, "/kubepods/burstable/podA/c2", Leaf::Own, false);
        // h1 had kubepods already: not ours.
        assert!(!a.dirs.contains(&h1.join("kubepods")));
        assert!(a.dirs.contains(&h1.join("kubepods/burstable")));
        assert!(a.dirs.contains(&h2.join("kubepods")));
        // the runtime creates the directories
        for h in &hs {
            std::fs::create_dir_all(h.join("kubepods/burstable/podA/c1")).expect("mkdir");
            std::fs::create_dir_all(h.join("kubepods/burstable/podA/c2")).expect("mkdir");
        }
        // b came second, but holds the shared parents too
        assert!(b.dirs.contains(&h2.join("kubepods/burstable/podA")));

        // the runtime removes c1; releasing a keeps what b still holds
        for h in &hs {
            std::fs::remove_dir(h.join("kubepods/burstable/podA/c1")).expect("rmdir");
        }
        a.release();
        assert!(h2.join("kubepods/burstable/podA").is_dir());
        for h in &hs {
            std::fs::remove_dir(h.join("kubepods/burstable/podA/c2")).expect("rmdir");
        }
        b.release();
        assert!(!h2.join("kubepods").exists());
        assert!(!h1.join("kubepods/burstable").exists());
        assert!(h1.join("kubepods").is_dir(), "pre-existing, not ours");
        std::fs::remove_dir_all(&base).expect("cleanup");
    }

    /// Plain directories stand in for hierarchies here too.
    #[test]
    fn fake_containers_remove_what_they_created_and_no_more() {
        let tmp = std::env::temp_dir().join(format!(
            "pidns-tests-fake-{}-{}",
            std::process::id(),
            state::random_hex(4)
        ));
        std::fs::create_dir_all(&tmp).expect("tmp");
        let hs = [tmp.clone()];
        let docker = tmp.join("docker");
        {
            let a = FakeContainer::docker_in(&hs, false).expect("create a");
            let b = FakeContainer::docker_in(&hs, false).expect("create b");
            assert!(a.dir.is_dir() && b.dir.is_dir());
            assert_eq!(a.dir, docker.join(&a.id));
        }
        // The parent it created goes too; the root it found stays.
        assert!(!docker.exists());
        assert!(tmp.is_dir());

        // A parent that existed before is left alone ...
        std::fs::create_dir(&docker).expect("docker");
        let a = FakeContainer::docker_in(&hs, false).expect("create a");
        let a_dir = a.dir.clone();
        drop(a);
        assert!(!a_dir.exists() && docker.is_dir());
        std::fs::remove_dir(&docker).expect("rmdir");

        // ... and so is one it created but something else moved into.
        let a = FakeContainer::docker_in(&hs, false).expect("create a");
        let a_dir = a.dir.clone();
        std::fs::create_dir(docker.join("real")).expect("real");
        drop(a);
        assert!(!a_dir.exists() && docker.join("real").is_dir());
        std::fs::remove_dir_all(&tmp).expect("cleanup");
    }
}
