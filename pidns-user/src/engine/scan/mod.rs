//! `pidns scan`, as its steps:
//!
//! - [`place`]: every process in its container by its cgroup (one read
//!   each); a process in no container's cgroup is container-like or not by
//!   its root (one `stat`, and a readlink for the few not on the host's);
//! - [`gather`]: each container's evidence (the PID namespace of each of its
//!   processes); container-like processes attributed by their root;
//! - [`judge`]: each container's verdict (a claim checked), and the tally.

mod configured;
mod gather;
mod judge;
mod place;
mod resolve;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Instant,
};

use super::{ScanOptions, host::HostIdentity, host_pidns, rootfs::RootAttribution};
use crate::{
    error::{ReadError, ReadErrorKind, ScanError},
    procfs::{FileId, ProcRoot},
    report::{
        ContainerKey, HostMethod, HostPidns, ProcessEvidence, RootMountReport, SCHEMA, ScanReport,
        Summary,
    },
    state::{self, CgroupRecord},
};

use super::Placement;

/// Runs a one-shot scan.
pub fn scan(opts: &ScanOptions) -> Result<ScanReport, ScanError> {
    let started = Instant::now();
    let scanned_at = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    if opts.offline {
        return offline(opts, started, scanned_at);
    }
    let proc = ProcRoot::open(&opts.proc_root)?;
    let pids = proc.pids()?;
    let host = host_pidns(&proc, opts.host_pid, Some(&pids))?;
    let identity = HostIdentity::find(&proc, &host);
    let mut s = Scan {
        opts,
        roots: RootAttribution::new(opts.state_root.clone()),
        proc,
        host,
        identity,
        summary: Summary {
            processes_scanned: pids.len(),
            ..Summary::default()
        },
        warnings: Vec::new(),
    };
    let (candidates, rooted) = s.place(&pids);
    let mut gathered = s.gather(candidates);
    s.gather_rooted(rooted, &mut gathered);
    let own = s.own_container(&gathered);
    let mut containers = s.judge(&gathered, own.as_ref());
    if let (true, Some(root)) = (opts.configured, &opts.state_root) {
        let merge = configured::Merge {
            allow: &opts.allow,
            own: own.as_ref(),
            running_only: opts.running_only,
            live: true,
            names: opts.names.is_some(),
        };
        let paths = configured::LivePaths {
            proc: &s.proc,
            host: &s.host,
        };
        merge.merge(
            state::configured::configured(root),
            &paths,
            &mut containers,
            &mut s.warnings,
        );
        sort(&mut containers);
    }
    s.tally(&containers);
    Ok(ScanReport {
        schema: SCHEMA,
        pidns_version: env!("CARGO_PKG_VERSION"),
        proc_root: s.proc.path().display().to_string(),
        scanned_at,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        host_pidns: s.host,
        containers,
        summary: s.summary,
        warnings: s.warnings,
        offline: false,
    })
}

/// `--offline`: the runtimes' records under the host root, no procfs.
fn offline(
    opts: &ScanOptions,
    started: Instant,
    scanned_at: String,
) -> Result<ScanReport, ScanError> {
    let root = opts.state_root.clone().unwrap_or_default();
    let bad = |reason: String| ScanError::HostRoot {
        path: root.clone(),
        reason,
    };
    let mut entries = std::fs::read_dir(&root).map_err(|e| bad(e.to_string()))?;
    if entries.next().is_none() {
        return Err(bad("it is empty (is the disk image mounted?)".into()));
    }
    let host = HostPidns {
        inode: None,
        method: HostMethod::Offline,
        host_pid: opts.host_pid.unwrap_or(1),
        inode_source_pid: None,
        procfs_own: false,
    };
    let merge = configured::Merge {
        allow: &opts.allow,
        own: None,
        running_only: opts.running_only,
        live: false,
        names: opts.names.is_some(),
    };
    let (mut containers, mut warnings) = (Vec::new(), Vec::new());
    merge.merge(
        state::configured::configured(&root),
        &resolve::Offline,
        &mut containers,
        &mut warnings,
    );
    sort(&mut containers);
    let mut summary = Summary::default();
    judge::tally(opts, &host, &containers, &mut summary, &mut warnings);
    Ok(ScanReport {
        schema: SCHEMA,
        pidns_version: env!("CARGO_PKG_VERSION"),
        proc_root: String::new(),
        scanned_at,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        host_pidns: host,
        containers,
        summary,
        warnings,
        offline: true,
    })
}

/// Report order: by verdict (sharing first), runtime, id, cgroup.
fn sort(containers: &mut [crate::report::Container]) {
    containers.sort_by(|a, b| {
        a.verdict
            .cmp(&b.verdict)
            .then_with(|| a.runtime.cmp(&b.runtime))
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.cgroup.cmp(&b.cgroup))
    });
}

/// A process in a container's cgroup.
struct Candidate {
    pid: u32,
    placement: Placement,
}

/// A container-like process outside every container's cgroup.
struct Rooted {
    pid: u32,
    root: FileId,
    mnt_ns: Option<u64>,
    /// Its cgroup as shown (`None`: unreadable or malformed).
    cgroup: Option<String>,
}

/// What the walk learned of one container.
#[derive(Default)]
struct Gathered {
    /// Its first container (not runtime) process's placement, for one
    /// found by its cgroup.
    placement: Option<Placement>,
    /// For one found by its root: what its root says.
    rooted: Option<RootedBy>,
    pids: BTreeSet<u32>,
    inodes: BTreeSet<u64>,
    host: Vec<ProcessEvidence>,
    runtime_pids: Vec<u32>,
    unknown: Vec<ReadError>,
    /// Its processes outside its cgroup.
    outside: BTreeSet<u32>,
    /// Host-PID processes whose name and children's namespace were read.
    detailed: usize,
}

/// How a container found by its root was attributed.
struct RootedBy {
    namespace: Option<String>,
    cgroup: String,
    root_mount: Option<RootMountReport>,
    rootfs: Option<String>,
}

/// One scan in progress.
struct Scan<'a> {
    opts: &'a ScanOptions,
    proc: ProcRoot,
    host: HostPidns,
    identity: HostIdentity,
    roots: RootAttribution,
    summary: Summary,
    warnings: Vec<String>,
}

impl Scan<'_> {
    /// pidns's own container (a DaemonSet pod with hostPID, `docker run
    /// --pid=host`), which shares the host PID namespace by design.
    fn own_container(&self, gathered: &BTreeMap<ContainerKey, Gathered>) -> Option<ContainerKey> {
        let own = self.proc.self_pid()?;
        gathered
            .iter()
            .find(|(_, g)| g.pids.contains(&own))
            .map(|(k, _)| k.clone())
    }
}

/// Whether a container-like process is outside its container's cgroup: its
/// cgroup was read and is not where its runtime puts its containers.
fn is_outside(record: &CgroupRecord, cgroup: Option<&str>) -> bool {
    let Some(cgroup) = cgroup else {
        return false;
    };
    match record {
        CgroupRecord::Path(p) => !crate::parse::cgroup::is_within(cgroup.as_bytes(), p.as_bytes()),
        // Its runtime only ever uses cgroups laid out as pidns knows, and
        // this process is in none of them.
        CgroupRecord::Layout => true,
        CgroupRecord::Unknown => false,
    }
}

fn count_error(summary: &mut Summary, e: &ReadError) {
    match e.kind {
        ReadErrorKind::Vanished => summary.processes_vanished += 1,
        ReadErrorKind::PermissionDenied => summary.permission_errors += 1,
        ReadErrorKind::TooLong => summary.cgroup_unreadable += 1,
        ReadErrorKind::Malformed(_) | ReadErrorKind::Io(_) => summary.malformed_entries += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_is_where_its_runtime_does_not_put_it() {
        let path = CgroupRecord::Path("/pidnst-r".into());
        assert!(!is_outside(&path, Some("/pidnst-r")));
        assert!(!is_outside(&path, Some("/pidnst-r/sub")));
        assert!(is_outside(&path, Some("/")));
        assert!(is_outside(&path, Some("/pidnst-rx")));
        assert!(is_outside(&CgroupRecord::Layout, Some("/")));
        assert!(!is_outside(&CgroupRecord::Unknown, Some("/")));
        assert!(
            !is_outside(&CgroupRecord::Layout, None),
            "unreadable: cannot tell"
        );
    }
}
