//! What each runtime's own record configures for its containers' PID
//! namespace, running or not, and the state it recorded: what the CIS
//! audit's `docker ps --all | xargs docker inspect` sees, read from disk
//! (read-only, no API, no socket, no lock taken).
//!
//! - [`docker`]: `containers/<id>/hostconfig.json` (`PidMode`) and
//!   `config.v2.json` (`State`);
//! - [`podman`]: libpod's BoltDB (`libpod/bolt_state.db`) and SQLite
//!   (`db.sql`) databases;
//! - [`crio`]: CRI-O's bundles (`userdata/config.json`) and runc's state;
//! - [`containerd`]: the OCI spec of every container in every namespace
//!   of `io.containerd.metadata.v1.bolt/meta.db`;
//! - [`runc`]: runc's `state.json` (the config it created the container with);
//! - [`kube`]: Kubernetes static pod manifests (`hostPID`);
//! - [`lxc`]: LXC's `config` (`lxc.namespace.keep`, `lxc.namespace.share.pid`);
//! - [`spec`]: what an OCI spec says of the PID namespace.
//!
//! Collectors only read; what a namespace path or another container's
//! configuration means is settled by the engine ([`PidConfig`]).

pub mod bolt;
pub mod containerd;
pub mod crio;
pub mod docker;
pub mod kube;
pub mod lxc;
pub mod podman;
pub mod runc;
pub mod spec;
pub mod sqlite;

use std::{
    io::Read as _,
    path::{Path, PathBuf},
};

use serde_json::Value;

use crate::{
    parse::layout::Runtime,
    report::{Pod, RunState},
};

/// The most of one JSON record read (a hostconfig, a state file).
const MAX_RECORD: u64 = 4 * 1024 * 1024;

/// A container's PID namespace as its runtime's record configures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidConfig {
    /// No PID namespace of its own: the host's.
    Host,
    /// A PID namespace of its own.
    Private,
    /// Another container's (`--pid=container:<ref>`; a name or an id).
    Container(String),
    /// The namespace at this path (an OCI spec's `path`, typically
    /// `/proc/<pid>/ns/pid`): the host's when that process is in it.
    Path(String),
    /// The record is there but says nothing usable (truncated, unknown
    /// value): why.
    Unreadable(String),
}

impl PidConfig {
    /// As the report shows it (`configured_pid_mode`).
    pub fn describe(&self) -> Option<String> {
        match self {
            PidConfig::Host => Some("host".into()),
            PidConfig::Private => Some("private".into()),
            PidConfig::Container(r) => Some(format!("container:{r}")),
            PidConfig::Path(p) => Some(format!("path:{p}")),
            PidConfig::Unreadable(_) => None,
        }
    }
}

/// A container as its runtime's configuration records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    pub runtime: Runtime,
    pub id: String,
    pub name: Option<String>,
    /// containerd's namespace.
    pub namespace: Option<String>,
    pub state: RunState,
    pub pid: PidConfig,
    /// Where it was read, as a host path (a file or a database).
    pub source: PathBuf,
    /// Its init process as recorded (runc's `init_process_pid`): what ties
    /// a runc container, named by its runtime, to the container its cgroup
    /// names (a Kubernetes layout's id).
    pub init_pid: Option<u32>,
    /// A Kubernetes static pod's manifest: the pod whose running containers
    /// it configures (by namespace and name).
    pub pod: Option<Pod>,
}

/// Every runtime's records below a host root, and what could not be read.
#[derive(Debug, Default)]
pub struct Configs {
    pub records: Vec<Configured>,
    /// Files or databases that were there but could not be read whole.
    pub problems: Vec<String>,
}

impl Configs {
    /// Adds a record, but a containerd, runc or crun one only when no
    /// better-informed runtime has that id (Docker's containers are also
    /// containerd's and runc's, Podman's runc's or crun's).
    fn push(&mut self, c: Configured) {
        let lower = matches!(
            c.runtime,
            Runtime::Containerd | Runtime::Runc | Runtime::Crun
        );
        if !(lower && self.records.iter().any(|r| r.id == c.id)) {
            self.records.push(c);
        }
    }
}

/// Reads every runtime's records below `root`, best-informed first.
pub fn configured(root: &Path) -> Configs {
    let mut all = Configs::default();
    docker::configured(root, &mut all);
    podman::configured(root, &mut all);
    crio::configured(root, &mut all);
    containerd::configured(root, &mut all);
    runc::configured(root, &mut all);
    lxc::configured(root, &mut all);
    kube::configured(root, &mut all);
    all
}

/// A JSON record: `Ok(None)` when there is none, `Err(why)` when it is
/// there but not a whole JSON document (truncated, a FIFO, too large).
pub fn json_record(path: &Path) -> Result<Option<Value>, String> {
    let f = match crate::procfs::open_regular(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut buf = Vec::new();
    f.take(MAX_RECORD + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if buf.len() as u64 > MAX_RECORD {
        return Err(format!("{}: larger than 4 MiB", path.display()));
    }
    serde_json::from_slice(&buf)
        .map(Some)
        .map_err(|e| format!("{}: not a whole JSON document ({e})", path.display()))
}

/// The host path of `abs` below `root`, for reports.
pub(crate) fn host_path(root: &Path, abs: &Path) -> PathBuf {
    PathBuf::from("/").join(abs.strip_prefix(root).unwrap_or(abs))
}

/// Reading fixture trees in the readers' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// What `reader` finds below `root`, its records in id order (a
    /// directory lists its entries in no order of its own).
    pub fn read(reader: fn(&Path, &mut Configs), root: &Path) -> Configs {
        let mut out = Configs::default();
        reader(root, &mut out);
        out.records.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// (id, PID namespace setting) of every record.
    pub fn pids(out: &Configs) -> Vec<(&str, PidConfig)> {
        out.records
            .iter()
            .map(|r| (r.id.as_str(), r.pid.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::put;

    #[test]
    fn records_are_missing_whole_or_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        put(dir.path(), "ok.json", r#"{"a":1}"#);
        put(dir.path(), "cut.json", r#"{"a":"#);
        assert_eq!(json_record(&dir.path().join("none.json")), Ok(None));
        assert!(json_record(&dir.path().join("ok.json")).unwrap().is_some());
        let err = json_record(&dir.path().join("cut.json")).unwrap_err();
        assert!(
            err.contains("cut.json") && err.contains("not a whole JSON"),
            "{err}"
        );
    }

    #[test]
    fn a_better_informed_runtime_keeps_its_record() {
        let mut all = Configs::default();
        let rec = |runtime| Configured {
            runtime,
            id: "c1".into(),
            name: None,
            namespace: None,
            state: RunState::Running,
            pid: PidConfig::Private,
            source: "/x".into(),
            init_pid: None,
            pod: None,
        };
        all.push(rec(Runtime::Docker));
        all.push(rec(Runtime::Containerd));
        all.push(rec(Runtime::Runc));
        all.push(rec(Runtime::Crun));
        assert_eq!(all.records.len(), 1);
        assert_eq!(all.records[0].runtime, Runtime::Docker);
        all.push(rec(Runtime::Lxc));
        assert_eq!(all.records.len(), 2, "an LXC name is no other runtime's id");
    }
}
