//! What a scan found. Serialized as the stable `--format json` schema
//! (documented in docs/json-schema.md).

use serde::Serialize;

use super::{Identity, Pod, Runtime};

pub const SCHEMA: &str = "pidns.scan/v1";

#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    pub schema: &'static str,
    pub pidns_version: &'static str,
    pub proc_root: String,
    /// RFC 3339, UTC.
    pub scanned_at: String,
    pub duration_ms: f64,
    pub host_pidns: HostPidns,
    pub containers: Vec<Container>,
    pub summary: Summary,
    pub warnings: Vec<String>,
    /// `--offline`: no procfs was read, only the runtimes' records under
    /// the host root (a mounted disk image); every container is as recorded.
    pub offline: bool,
}

impl ScanReport {
    /// Containers that fail the scan: those that share the host PID
    /// namespace and are not allowed, and those with a process outside the
    /// container's cgroup (allowed or not: runtimes never move their
    /// containers' processes out, attackers do).
    pub fn violations(&self) -> impl Iterator<Item = &Container> {
        self.containers
            .iter()
            .filter(|c| c.verdict == Verdict::Shares || !c.outside_cgroup_pids.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostPidns {
    /// Inode of the host PID namespace; `null` when no process in it had a
    /// readable `ns/pid` link (the verdicts then rest on `NSpid` alone).
    pub inode: Option<u64>,
    pub method: HostMethod,
    /// The process whose namespace is the host's (PID 1 unless `--host-pid`).
    pub host_pid: u32,
    /// With `method: nspid`, the process in the same namespace whose link gave the inode.
    pub inode_source_pid: Option<u32>,
    /// Whether the host PID namespace is the proc root's own, so that `NSpid`
    /// can stand in for unreadable links.
    #[serde(skip)]
    pub procfs_own: bool,
}

/// How the host PID namespace was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostMethod {
    /// Read from the host PID's `ns/pid` link.
    NsLink,
    /// That link was unreadable (EACCES on hardened hosts); the host PID's
    /// `NSpid` has one entry, so the host namespace is the proc root's own.
    Nspid,
    /// `--offline`: no procfs, so no host PID namespace was read.
    Offline,
}

/// How one process's PID namespace was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Its `ns/pid` link compared with the host inode.
    NsLink,
    /// The number of entries in its `NSpid` (one: the proc root's namespace).
    Nspid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Shares the host PID namespace and is not allowed: fails the scan.
    Shares,
    /// Shares it, but was listed with `--allow`.
    Allowed,
    /// Could not be established; see `unknown_reason`.
    Unknown,
    /// Its processes live in the host PID namespace, but nothing but its
    /// cgroup's name says it is a container: they run on the host's root,
    /// in the host's mount namespace, its runtime has no record of its id,
    /// and no runtime process is among their ancestors. Any local user can
    /// name a cgroup like a container's (`systemd-run --user --scope
    /// --unit=docker-<id>`); see `unverified_reason` and `owner_uid`. Does
    /// not fail the scan.
    Unverified,
    /// Every process lives in a PID namespace other than the host's.
    Isolated,
}

#[derive(Debug, Clone, Serialize)]
pub struct Container {
    /// The full id as the runtime knows it (a name for LXC and systemd-nspawn).
    pub id: String,
    pub runtime: Runtime,
    pub name: Option<String>,
    pub pod: Option<Pod>,
    /// containerd namespace, for containers created through containerd directly.
    pub containerd_namespace: Option<String>,
    /// The container's cgroup as seen in /proc/<pid>/cgroup. For a
    /// container found by its root, the cgroup its runtime recorded for it,
    /// else the one its first process is in.
    pub cgroup: String,
    /// How pidns found it: by its cgroup's name, or by the root its
    /// processes run on (their own mount namespace and root, whatever their
    /// cgroup).
    pub found_by: FoundBy,
    /// For a container found by its root: the mount its root is on, as its
    /// first process's mountinfo shows it.
    pub root_mount: Option<RootMountReport>,
    /// For a container found by its root: the root filesystem its runtime
    /// recorded, which the process's root was matched with (by device and
    /// inode, never by name).
    pub rootfs: Option<String>,
    /// Containers whose cgroups enclose this one (Docker in Docker, a kind
    /// node around its pods), outermost first; empty when not nested.
    pub enclosed_by: Vec<Identity>,
    /// `null` when unknown.
    pub shares_host_pidns: Option<bool>,
    pub verdict: Verdict,
    /// Every container process, ascending.
    pub pids: Vec<u32>,
    /// Distinct PID namespace inodes of the container's processes, where readable.
    pub pidns_inodes: Vec<u64>,
    /// Evidence: the container's processes that live in the host PID namespace.
    pub host_pidns_processes: Vec<ProcessEvidence>,
    /// Runtime processes found in the container's cgroup (shims, monitors,
    /// runc's setup stages). They do not count towards the verdict.
    pub runtime_pids: Vec<u32>,
    /// Other containers that share this container's (non-host) PID namespace,
    /// e.g. `--pid=container:<id>`.
    pub shares_pidns_with: Vec<String>,
    pub unknown_reason: Option<String>,
    /// Why an `unverified` container is: the evidence that was looked for.
    pub unverified_reason: Option<String>,
    /// With `unverified`: the real uid of its first host-PID process, the
    /// user who named a cgroup like a container's.
    pub owner_uid: Option<u32>,
    /// Its processes outside its container's cgroup (found by their root),
    /// ascending. Any fails the scan.
    pub outside_cgroup_pids: Vec<u32>,
    /// Why an `allowed` container is: `--allow <entry>`, or `pidns itself`
    /// (the container pidns runs in, e.g. its DaemonSet pod).
    pub allowed_by: Option<String>,
    /// Running (the kernel shows its processes), else as its runtime
    /// recorded it; `unknown` when no record says.
    pub state: RunState,
    /// What its runtime's record configures: `true` to share the host PID
    /// namespace (Docker's `PidMode=host`, or `container:<id>` of one that
    /// does; an OCI spec without a `pid` namespace, or one whose path is a
    /// host process's), `false` a namespace of its own, `null` no record
    /// found or readable.
    pub configured_host_pidns: Option<bool>,
    /// The configuration as recorded (`host`, `private`, `container:<id>`,
    /// `path:/proc/<pid>/ns/pid`), where a record was read.
    pub configured_pid_mode: Option<String>,
    /// The file (or database) the record was read from, as a host path.
    pub configured_in: Option<String>,
}

impl Container {
    /// Which container this is, as watch events name it.
    pub fn identity(&self) -> Identity {
        Identity {
            id: self.id.clone(),
            runtime: self.runtime,
            name: self.name.clone(),
            pod: self.pod.clone(),
            cgroup: self.cgroup.clone(),
        }
    }
}

/// How a container was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// Its cgroup path is laid out as a runtime lays out a container's.
    Cgroup,
    /// Its processes run in a mount namespace and on a root that are not the
    /// host's, in a cgroup no layout names (or none that can be read).
    Root,
    /// Only its runtime's record on disk: it is not running (or the scan
    /// was `--offline`).
    State,
}

/// A container's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    /// Created, never started.
    Created,
    /// Started once, stopped now.
    Exited,
    Paused,
    #[default]
    Unknown,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Created => "created",
            RunState::Exited => "exited",
            RunState::Paused => "paused",
            RunState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The mount a container process's root is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootMountReport {
    /// `major:minor`, the kernel's.
    pub device: String,
    pub fs_type: String,
    /// As the mounter gave it: a claim, never used to attribute.
    pub source: Option<String>,
    /// The directory of the filesystem that is the mount's top.
    pub root: String,
    pub upperdir: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessEvidence {
    pub pid: u32,
    pub comm: Option<String>,
    /// `null` when decided by `NSpid` without a readable link.
    pub pidns_inode: Option<u64>,
    pub method: Method,
    /// Its `ns/pid_for_children`: where its future children will live.
    pub children_pidns_inode: Option<u64>,
    /// Found outside its container's cgroup (by its root): a finding of its own.
    pub outside_cgroup: bool,
    /// With `outside_cgroup`: the cgroup it is in (`null` when unreadable).
    pub cgroup: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub containers: usize,
    pub sharing: usize,
    pub allowed: usize,
    pub unknown: usize,
    pub unverified: usize,
    pub isolated: usize,
    pub processes_scanned: usize,
    pub container_processes: usize,
    /// Processes that exited during the walk (normal on a live host).
    pub processes_vanished: usize,
    /// Reads refused with EACCES/EPERM.
    pub permission_errors: usize,
    /// Entries that are not laid out like a process (junk in a supplied tree).
    pub malformed_entries: usize,
    /// Processes whose cgroup file the kernel could not print whole (a path
    /// longer than PATH_MAX: cut at 4095 bytes, or ENAMETOOLONG on older
    /// kernels) or that was malformed: judged by their namespaces and root
    /// instead.
    pub cgroup_unreadable: usize,
    /// Container processes outside their container's cgroup.
    pub outside_cgroup: usize,
    /// Processes outside container cgroups whose root could not be read
    /// (not root, or an evidence tree without `root` entries): judged by
    /// their cgroup alone.
    pub roots_unreadable: usize,
    /// Containers reported from their runtime's record alone (not running,
    /// or `--offline`).
    pub not_running: usize,
}
