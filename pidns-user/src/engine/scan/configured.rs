//! Configured: each runtime's record of its containers' PID namespace,
//! running or not, set beside what the kernel says. A container the kernel
//! shows gets its record's configuration (a disagreement is a warning);
//! one it does not show (created, exited; every one `--offline`) is
//! reported from its record alone, and fails the scan when it is configured
//! to share and not allowed, as the CIS audit's `docker ps --all` does.

use super::resolve::{self, PathJudge};
use crate::{
    allow::AllowList,
    engine::host::{PidnsFact, pidns_fact},
    parse::layout::Runtime,
    procfs::ProcRoot,
    report::{Container, ContainerKey, FoundBy, HostPidns, Pod, RunState, Verdict},
    state::configured::{Configs, Configured},
};

/// How the records are merged.
pub(super) struct Merge<'a> {
    pub allow: &'a AllowList,
    pub own: Option<&'a ContainerKey>,
    /// `--running-only`: a container the kernel does not show is left out.
    pub running_only: bool,
    /// The kernel was asked (not `--offline`): a container it does not show
    /// is not running, whatever its record says.
    pub live: bool,
    /// Names are wanted (not `--no-names`): a record's name fills in.
    pub names: bool,
}

/// The live host: a `/proc/<pid>/ns/pid` path is the host's when that
/// process lives in the host PID namespace.
pub(super) struct LivePaths<'a> {
    pub proc: &'a ProcRoot,
    pub host: &'a HostPidns,
}

impl PathJudge for LivePaths<'_> {
    fn host_pidns_at(&self, path: &str) -> Option<bool> {
        match pidns_fact(self.proc, self.host, resolve::proc_pid(path)?) {
            PidnsFact::InHost { .. } => Some(true),
            PidnsFact::Elsewhere { .. } => Some(false),
            PidnsFact::Unknown(_) | PidnsFact::Vanished => None,
        }
    }
}

impl Merge<'_> {
    /// Sets each record beside its running container, or adds it.
    pub(super) fn merge(
        &self,
        configs: Configs,
        paths: &dyn PathJudge,
        containers: &mut Vec<Container>,
        warnings: &mut Vec<String>,
    ) {
        for why in &configs.problems {
            warnings.push(format!("a runtime's record could not be read: {why}"));
        }
        let records = &configs.records;
        for (i, rec) in records.iter().enumerate() {
            let configured = resolve::host_pidns(records, i, paths);
            let running: Vec<usize> = match &rec.pod {
                // A static pod's manifest: each of its running containers.
                Some(pod) => (0..containers.len())
                    .filter(|&i| in_pod(&containers[i], pod))
                    .collect(),
                None => (containers.iter().position(|c| is_running_as(c, rec)))
                    .or_else(|| containers.iter().position(|c| runs_init_of(c, rec)))
                    .into_iter()
                    .collect(),
            };
            for &at in &running {
                self.running(&mut containers[at], rec, &configured, warnings);
            }
            if !running.is_empty()
                // Offline, "running" is what the record says.
                || (self.running_only && (self.live || rec.state != RunState::Running))
            {
                continue;
            }
            containers.push(self.not_running(rec, &configured, warnings));
        }
    }

    /// A running container, with its record.
    fn running(
        &self,
        c: &mut Container,
        rec: &Configured,
        configured: &Result<bool, String>,
        warnings: &mut Vec<String>,
    ) {
        annotate(c, rec, configured, self.names);
        // An OCI runtime's created container has its init in place,
        // waiting for `start`: the kernel shows it, and it is not running.
        c.state = match rec.state {
            RunState::Paused | RunState::Created => rec.state,
            _ => RunState::Running,
        };
        if let Some(w) = disagreement(c) {
            warnings.push(w);
        }
        if *configured == Ok(true) && c.verdict == Verdict::Isolated {
            // The benchmark's audit fails it by its PidMode; and a cgroup
            // named after a stopped container's id must not hide that
            // container's configuration.
            self.judge_configured(c);
        }
    }

    /// A container the kernel does not show, from its record.
    fn not_running(
        &self,
        rec: &Configured,
        configured: &Result<bool, String>,
        warnings: &mut Vec<String>,
    ) -> Container {
        let mut c = record_container(rec);
        annotate(&mut c, rec, configured, self.names);
        if self.live && matches!(rec.state, RunState::Running | RunState::Paused) {
            warnings.push(format!(
                "{} container {} is recorded as {} in {}, but no process of it was found: it is reported as exited",
                rec.runtime,
                rec.id,
                rec.state,
                rec.source.display()
            ));
            c.state = RunState::Exited;
        }
        match configured {
            Ok(true) => self.judge_configured(&mut c),
            Ok(false) => c.verdict = Verdict::Isolated,
            Err(why) => {
                c.unknown_reason = Some(format!(
                    "{}, and its configuration says nothing certain: {why}",
                    if self.live {
                        "not running"
                    } else {
                        "read offline"
                    }
                ));
            }
        }
        c
    }
}

impl Merge<'_> {
    /// A container configured to share: `shares`, or `allowed`.
    fn judge_configured(&self, c: &mut Container) {
        let key = ContainerKey {
            runtime: c.runtime,
            id: c.id.clone(),
            cgroup: c.cgroup.clone(),
        };
        c.allowed_by = self.allow.allowance(self.own, &key, &*c, &[]).reason();
        c.verdict = if c.allowed_by.is_some() {
            Verdict::Allowed
        } else {
            Verdict::Shares
        };
    }
}

/// Whether running container `c` is the one `rec` records (a top-level
/// one: a nested container's records are inside its enclosing container).
fn is_running_as(c: &Container, rec: &Configured) -> bool {
    let runtime = c.runtime == rec.runtime
        || (matches!(rec.runtime, Runtime::Containerd | Runtime::CriO)
            && c.runtime == Runtime::Kubernetes);
    runtime
        && c.found_by != FoundBy::State
        && c.enclosed_by.is_empty()
        && c.verdict != Verdict::Unverified
        && c.id == rec.id
        && (c.containerd_namespace.is_none() || c.containerd_namespace == rec.namespace)
}

/// Whether running container `c` holds `rec`'s recorded init process (a
/// runc container, named by runc, whose cgroup names another id). The
/// record is the runtime's, out of the containers' reach.
fn runs_init_of(c: &Container, rec: &Configured) -> bool {
    c.found_by != FoundBy::State
        && c.enclosed_by.is_empty()
        && c.verdict != Verdict::Unverified
        && rec.init_pid.is_some_and(|p| c.pids.contains(&p))
}

/// Whether running container `c` belongs to static pod `pod` (its mirror
/// pod is `<name>-<node name>`, in the manifest's namespace).
fn in_pod(c: &Container, pod: &Pod) -> bool {
    let (Some(cp), Some(name)) = (&c.pod, &pod.name) else {
        return false;
    };
    c.found_by != FoundBy::State
        && c.enclosed_by.is_empty()
        && c.verdict != Verdict::Unverified
        && cp.namespace == pod.namespace
        && cp.name.as_deref().is_some_and(|n| {
            n == name
                || n.strip_prefix(name.as_str())
                    .is_some_and(|r| r.starts_with('-'))
        })
}

fn annotate(c: &mut Container, rec: &Configured, configured: &Result<bool, String>, names: bool) {
    c.configured_host_pidns = configured.as_ref().ok().copied();
    c.configured_pid_mode = rec.pid.describe();
    c.configured_in = Some(rec.source.display().to_string());
    if names && c.name.is_none() {
        c.name.clone_from(&rec.name);
    }
}

/// The warning when the configuration and the kernel disagree.
fn disagreement(c: &Container) -> Option<String> {
    let (Some(kernel), Some(configured)) = (c.shares_host_pidns, c.configured_host_pidns) else {
        return None;
    };
    if kernel == configured {
        return None;
    }
    let mode = c.configured_pid_mode.as_deref().unwrap_or("?");
    Some(if kernel {
        format!(
            "{} container {}: configured with its own PID namespace ({mode}), but the kernel shows its processes in the host's (a process joined it with setns, or it was started some other way)",
            c.runtime, c.id
        )
    } else {
        format!(
            "{} container {}: configured to share the host PID namespace ({mode}), but the kernel shows none of its processes in it",
            c.runtime, c.id
        )
    })
}

/// A not-running container's report entry, before its verdict.
fn record_container(rec: &Configured) -> Container {
    Container {
        id: rec.id.clone(),
        runtime: rec.runtime,
        name: None,
        pod: rec.pod.clone(),
        containerd_namespace: rec.namespace.clone(),
        cgroup: String::new(),
        found_by: FoundBy::State,
        root_mount: None,
        rootfs: None,
        enclosed_by: Vec::new(),
        shares_host_pidns: None,
        verdict: Verdict::Unknown,
        pids: Vec::new(),
        pidns_inodes: Vec::new(),
        host_pidns_processes: Vec::new(),
        runtime_pids: Vec::new(),
        shares_pidns_with: Vec::new(),
        unknown_reason: None,
        unverified_reason: None,
        owner_uid: None,
        outside_cgroup_pids: Vec::new(),
        allowed_by: None,
        state: rec.state,
        configured_host_pidns: None,
        configured_pid_mode: None,
        configured_in: None,
    }
}
