//! Judge: each container's verdict, and the tally.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Gathered, Scan};
use crate::{
    allow::Allowance,
    engine::ScanOptions,
    engine::{
        Ancestry,
        claim::{Claims, Evidence},
    },
    names,
    parse::layout::Runtime,
    report::{Container, ContainerKey, FoundBy, HostMethod, HostPidns, RunState, Summary, Verdict},
};

impl Scan<'_> {
    /// Each container's verdict, in report order.
    pub(super) fn judge(
        &mut self,
        gathered: &BTreeMap<ContainerKey, Gathered>,
        own: Option<&ContainerKey>,
    ) -> Vec<Container> {
        let peers = pidns_peers(gathered, self.host.inode);
        let proc = self.proc.clone();
        let mut ancestry = Ancestry::new(&proc);
        let mut containers = Vec::new();
        for (key, g) in gathered {
            if g.placement.is_none() && g.rooted.is_none() {
                self.warnings.push(format!(
                    "{} container {} (cgroup {}): only runtime processes ({:?}); it is being set up or torn down",
                    key.runtime, key.id, key.cgroup, g.runtime_pids
                ));
                continue;
            }
            let mut c = self.container(key, g, &peers);
            self.verdict(&mut c, key, g, own, &mut ancestry);
            containers.push(c);
        }
        super::sort(&mut containers);
        containers
    }

    /// A container's report entry, named, without its verdict yet.
    fn container(
        &self,
        key: &ContainerKey,
        g: &Gathered,
        peers: &HashMap<u64, Vec<&ContainerKey>>,
    ) -> Container {
        let mut shares_with: BTreeSet<&str> = BTreeSet::new();
        for inode in &g.inodes {
            for other in peers.get(inode).into_iter().flatten() {
                if *other != key {
                    shares_with.insert(&other.id);
                }
            }
        }
        let names = self.opts.names.as_ref();
        let (identity, enclosed_by, namespace, cgroup) = match &g.placement {
            Some(p) => (
                p.identity(names),
                p.enclosing_identities(names),
                p.namespace.clone(),
                p.cgroup.clone(),
            ),
            None => {
                let namespace = g.rooted.as_ref().and_then(|r| r.namespace.clone());
                (
                    names::describe(names, key, namespace.as_deref(), None),
                    Vec::new(),
                    namespace,
                    g.rooted
                        .as_ref()
                        .map_or_else(|| key.cgroup.clone(), |r| r.cgroup.clone()),
                )
            }
        };
        let rooted = g.placement.is_none().then_some(g.rooted.as_ref()).flatten();
        Container {
            id: key.id.clone(),
            runtime: key.runtime,
            name: identity.name,
            pod: identity.pod,
            containerd_namespace: namespace,
            cgroup,
            found_by: if rooted.is_some() {
                FoundBy::Root
            } else {
                FoundBy::Cgroup
            },
            root_mount: rooted.and_then(|r| r.root_mount.clone()),
            rootfs: rooted.and_then(|r| r.rootfs.clone()),
            enclosed_by,
            shares_host_pidns: None,
            verdict: Verdict::Unknown,
            state: RunState::Running,
            configured_host_pidns: None,
            configured_pid_mode: None,
            configured_in: None,
            pids: g.pids.iter().copied().collect(),
            pidns_inodes: g.inodes.iter().copied().collect(),
            host_pidns_processes: g.host.clone(),
            runtime_pids: g.runtime_pids.clone(),
            shares_pidns_with: shares_with.into_iter().map(str::to_owned).collect(),
            unknown_reason: None,
            unverified_reason: None,
            owner_uid: None,
            outside_cgroup_pids: g.outside.iter().copied().collect(),
            allowed_by: None,
        }
    }

    /// Sets a container's verdict: sharing (allowed or not), an unverified
    /// claim, unknown or isolated.
    fn verdict(
        &mut self,
        c: &mut Container,
        key: &ContainerKey,
        g: &Gathered,
        own: Option<&ContainerKey>,
        ancestry: &mut Ancestry<'_>,
    ) {
        if c.host_pidns_processes.is_empty() {
            if let Some(first) = g.unknown.first() {
                c.unknown_reason = Some(format!(
                    "{} of {} processes unreadable; first: {first}",
                    g.unknown.len(),
                    g.pids.len()
                ));
            } else {
                c.shares_host_pidns = Some(false);
                c.verdict = Verdict::Isolated;
            }
            return;
        }
        if let Some(placement) = &g.placement {
            let claims = Claims {
                proc: &self.proc,
                host: &self.identity,
                state_root: self.opts.state_root.as_deref(),
            };
            let pids: Vec<u32> = c
                .host_pidns_processes
                .iter()
                .filter(|p| !p.outside_cgroup)
                .map(|p| p.pid)
                .collect();
            if let Evidence::None { reason, owner_uid } =
                claims.judge(key, placement.namespace.as_deref(), &pids, ancestry)
            {
                c.verdict = Verdict::Unverified;
                c.unverified_reason = Some(reason);
                c.owner_uid = owner_uid;
                return;
            }
        }
        c.shares_host_pidns = Some(true);
        c.allowed_by = self.allowance(c, key, own);
        c.verdict = if c.allowed_by.is_some() {
            Verdict::Allowed
        } else {
            Verdict::Shares
        };
    }

    /// Why a sharing container may share, if it may. A container of the
    /// `unknown` runtime never may: its id is its root mount's source, which
    /// whoever mounted it chose.
    fn allowance(
        &mut self,
        c: &Container,
        key: &ContainerKey,
        own: Option<&ContainerKey>,
    ) -> Option<String> {
        if key.runtime == Runtime::Unknown && own != Some(key) {
            return None;
        }
        let allowance = self.opts.allow.allowance(own, key, c, &c.enclosed_by);
        if let Allowance::Refused { entry, enclosing } = &allowance {
            self.warnings.push(format!(
                "--allow {entry} matches {} container {} (cgroup {}), but not the container(s) enclosing it ({}); it is not allowed",
                c.runtime,
                c.id,
                c.cgroup,
                enclosing
                    .iter()
                    .map(|e| format!("{} {}", e.runtime, e.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        allowance.reason()
    }

    /// The summary's counts, and what the user should know about the scan as a whole.
    pub(super) fn tally(&mut self, containers: &[Container]) {
        tally(
            self.opts,
            &self.host,
            containers,
            &mut self.summary,
            &mut self.warnings,
        );
    }
}

/// The summary's counts, and what the user should know about the scan as a
/// whole (also of an `--offline` scan, which has no [`Scan`]).
pub(super) fn tally(
    opts: &ScanOptions,
    host: &HostPidns,
    containers: &[Container],
    summary: &mut Summary,
    warnings: &mut Vec<String>,
) {
    summary.containers = containers.len();
    summary.container_processes = containers.iter().map(|c| c.pids.len()).sum();
    summary.outside_cgroup = containers.iter().map(|c| c.outside_cgroup_pids.len()).sum();
    summary.not_running = containers
        .iter()
        .filter(|c| c.found_by == FoundBy::State)
        .count();
    for c in containers {
        match c.verdict {
            Verdict::Shares => summary.sharing += 1,
            Verdict::Allowed => summary.allowed += 1,
            Verdict::Unknown => summary.unknown += 1,
            Verdict::Unverified => summary.unverified += 1,
            Verdict::Isolated => summary.isolated += 1,
        }
    }
    for unused in opts.allow.unused(containers) {
        warnings.push(format!(
            "--allow {unused} matched no container that shares the host PID namespace"
        ));
    }
    for (entry, runtimes) in opts.allow.ambiguous(containers.iter().map(Into::into)) {
        warnings.push(crate::allow::ambiguity_warning(&entry, &runtimes));
    }
    if summary.cgroup_unreadable > 0 {
        warnings.push(format!(
            "{} processes had a cgroup file the kernel could not print whole (a path longer than PATH_MAX, cut or refused) or that is malformed: they were judged by their namespaces and root",
            summary.cgroup_unreadable
        ));
    }
    if host.method == HostMethod::Nspid && host.inode.is_none() {
        warnings.push("no process in the host PID namespace had a readable ns/pid link; verdicts rest on NSpid".into());
    }
}

/// Containers by the (non-host) PID namespaces their processes live in, so
/// that containers sharing one (`--pid=container:<id>`) can name each other.
fn pidns_peers(
    gathered: &BTreeMap<ContainerKey, Gathered>,
    host_inode: Option<u64>,
) -> HashMap<u64, Vec<&ContainerKey>> {
    let mut by_inode: HashMap<u64, Vec<&ContainerKey>> = HashMap::new();
    for (key, g) in gathered {
        for inode in &g.inodes {
            if Some(*inode) != host_inode {
                by_inode.entry(*inode).or_default().push(key);
            }
        }
    }
    by_inode
}
