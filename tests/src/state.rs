//! Where the harness keeps its files, and the names it gives things.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
};

/// Everything a run creates is named with this prefix, so the next
/// bring-up or teardown can sweep what a killed run left behind.
pub const PREFIX: &str = "pidnst-";
/// containerd namespace for `ctr` containers (their cgroups are `/<ns>/<id>`).
pub const CTR_NAMESPACE: &str = "pidnst";
/// Image imported into Docker for the tests.
pub const DOCKER_IMAGE: &str = "pidnst/busybox:latest";
/// The agent's own image, built by `cargo xtask test` for the image test.
pub const AGENT_IMAGE: &str = "pidnst/pidns:test";

const DEFAULT_STATE_DIR: &str = "/run/pidns-tests";

/// `/run/pidns-tests`, or [`env::STATE_DIR`](crate::env::STATE_DIR).
pub fn state_dir() -> PathBuf {
    std::env::var_os(crate::env::STATE_DIR)
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_STATE_DIR), PathBuf::from)
}

/// runc's own default root: pidns reads runc's containers' state there.
/// The run's containers are told from others' by their `pidnst-` names.
pub fn runc_root() -> PathBuf {
    PathBuf::from("/run/runc")
}

/// Random hex from the kernel.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .is_err()
    {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        return format!(
            "{:0width$x}",
            nanos ^ u128::from(std::process::id()),
            width = bytes * 2
        )
        .chars()
        .take(bytes * 2)
        .collect();
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh name: `pidnst-<run>-<n>`.
pub fn unique_name() -> String {
    static RUN: OnceLock<String> = OnceLock::new();
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let run = RUN.get_or_init(|| random_hex(3));
    format!("{PREFIX}{run}-{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Something a run created that no name prefix marks, written down as it is
/// created so that `pidns-harness` can remove it even after a killed run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A cgroup directory that did not exist before a container of ours was
    /// created: a runtime's parent (`/docker`, a pod's `pod<uid>`, a
    /// `kubepods*.slice`). Others may use it later: it is removed when
    /// empty, and nothing in it is ever killed.
    Cgroup(PathBuf),
    /// A cgroup that is one of our containers' own (a runc container's, a
    /// synthetic one's): whatever a killed run left in it is ours to kill.
    OwnCgroup(PathBuf),
    /// A Docker or Podman container id, whose mounts carry it in their paths.
    ContainerId(String),
}

fn records_path() -> PathBuf {
    state_dir().join("records")
}

impl Record {
    fn line(&self) -> String {
        match self {
            Record::Cgroup(p) => format!("cgroup\t{}\n", p.display()),
            Record::OwnCgroup(p) => format!("own-cgroup\t{}\n", p.display()),
            Record::ContainerId(id) => format!("container\t{id}\n"),
        }
    }

    fn parse(line: &str) -> Option<Record> {
        match line.split_once('\t')? {
            ("cgroup", p) if p.starts_with('/') => Some(Record::Cgroup(PathBuf::from(p))),
            ("own-cgroup", p) if p.starts_with('/') => Some(Record::OwnCgroup(PathBuf::from(p))),
            ("container", id) if !id.is_empty() => Some(Record::ContainerId(id.to_owned())),
            _ => None,
        }
    }
}

/// Appends a record: one write on an O_APPEND file, so that records from
/// tests running at the same time do not interleave.
pub fn record(r: &Record) {
    let path = records_path();
    let result = std::fs::create_dir_all(state_dir()).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?
            .write_all(r.line().as_bytes())
    });
    if let Err(e) = result {
        eprintln!(
            "pidns-tests: cannot record {r:?} in {}: {e}",
            path.display()
        );
    }
}

/// Every record of this state directory, in the order written.
pub fn records() -> Vec<Record> {
    records_in(&records_path())
}

fn records_in(path: &Path) -> Vec<Record> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(Record::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_junk_is_ignored() {
        let rs = [
            Record::Cgroup(PathBuf::from("/sys/fs/cgroup/unified/docker")),
            Record::OwnCgroup(PathBuf::from("/sys/fs/cgroup/unified/docker/0123")),
            Record::ContainerId("0123abcd".into()),
        ];
        let text: String =
            rs.iter().map(Record::line).collect::<String>() + "junk\ncgroup\trelative\n";
        let parsed: Vec<Record> = text.lines().filter_map(Record::parse).collect();
        assert_eq!(parsed, rs);
    }

    #[test]
    fn names_carry_the_prefix() {
        let a = unique_name();
        let b = unique_name();
        assert!(a.starts_with(PREFIX) && b.starts_with(PREFIX));
        assert_ne!(a, b);
    }
}
