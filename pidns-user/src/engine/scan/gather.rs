//! Gather: each container process's PID namespace, and the container of
//! each container-like process found by its root.

use std::collections::BTreeMap;

use super::{Candidate, Gathered, Rooted, RootedBy, Scan, count_error, is_outside};
use crate::{
    engine::{
        Placement,
        host::{PidnsFact, pidns_fact},
        rootfs::Attribution,
        runtime_process::{is_runtime_process, verify_runtime_process},
    },
    error::ReadErrorKind,
    parse::layout::Runtime,
    procfs::ProcRoot,
    report::{ContainerKey, Method, ProcessEvidence},
    state::CgroupRecord,
};

impl Scan<'_> {
    /// Each container process's PID namespace.
    pub(super) fn gather(
        &mut self,
        candidates: Vec<Candidate>,
    ) -> BTreeMap<ContainerKey, Gathered> {
        let mut gathered: BTreeMap<ContainerKey, Gathered> = BTreeMap::new();
        let facts = self.pidns_facts(&candidates);
        for (Candidate { pid, placement }, fact) in candidates.into_iter().zip(facts) {
            let key = placement.key.clone();
            if matches!(fact, PidnsFact::Vanished) {
                self.summary.processes_vanished += 1;
                continue;
            }
            let g = gathered.entry(key).or_default();
            let counted = self.record(g, fact, |s, g, inode, method| {
                s.host_process(g, pid, Some(&placement), inode, method)
            });
            if !counted {
                continue; // a runtime's own process
            }
            g.pids.insert(pid);
            g.placement.get_or_insert(placement);
        }
        gathered
    }

    /// Each candidate's PID namespace (a readlink each), on both cores when
    /// there are many, in order.
    fn pidns_facts(&self, candidates: &[Candidate]) -> Vec<PidnsFact> {
        super::place::on_cores(candidates, |share| {
            share
                .iter()
                .map(|c| pidns_fact(&self.proc, &self.host, c.pid))
                .collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect()
    }

    /// Container-like processes, each with its container by its root: the
    /// one its cgroup names when that is one of the containers found by
    /// cgroup (it left its cgroup), else one of its own.
    pub(super) fn gather_rooted(
        &mut self,
        rooted: Vec<Rooted>,
        gathered: &mut BTreeMap<ContainerKey, Gathered>,
    ) {
        for Rooted {
            pid,
            root,
            mnt_ns,
            cgroup,
        } in rooted
        {
            let fact = pidns_fact(&self.proc, &self.host, pid);
            if matches!(fact, PidnsFact::Vanished) {
                self.summary.processes_vanished += 1;
                continue;
            }
            let a = self.roots.attribute(&self.proc, pid, root, mnt_ns);
            let outside = is_outside(&a.cgroup, cgroup.as_deref());
            let key = key_for(&a, gathered);
            let g = gathered.entry(key).or_default();
            if g.placement.is_none() && g.rooted.is_none() {
                g.rooted = Some(rooted_by(&a, cgroup.as_deref()));
                if let Some(note) = &a.note {
                    self.warnings
                        .push(format!("pid {pid}: {note}; it is reported as `unknown`"));
                }
            }
            let shown = cgroup.clone();
            let counted = self.record(g, fact, |s, g, inode, method| {
                let mut e = s.host_process(g, pid, None, inode, method)?;
                e.outside_cgroup = outside;
                e.cgroup = outside.then_some(shown).flatten();
                Some(e)
            });
            if !counted {
                continue; // exited meanwhile
            }
            g.pids.insert(pid);
            if outside {
                g.outside.insert(pid);
            }
        }
    }

    /// Records one process's PID namespace in `g`; for one in the host's,
    /// `evidence` makes its evidence (`None`: a runtime's own process).
    /// Returns whether it counts as a container process (not a runtime's).
    fn record(
        &mut self,
        g: &mut Gathered,
        fact: PidnsFact,
        evidence: impl FnOnce(&mut Self, &mut Gathered, Option<u64>, Method) -> Option<ProcessEvidence>,
    ) -> bool {
        match fact {
            PidnsFact::InHost { inode, method } => {
                let Some(e) = evidence(self, g, inode, method) else {
                    return false;
                };
                g.host.push(e);
                g.inodes.extend(inode);
            }
            PidnsFact::Elsewhere { inode } => g.inodes.extend(inode),
            PidnsFact::Unknown(e) => {
                count_error(&mut self.summary, &e);
                g.unknown.push(e);
            }
            PidnsFact::Vanished => {}
        }
        true
    }

    /// The evidence of a process in the host PID namespace, or `None` for a
    /// runtime's own process (one in a container's cgroup, `placement`,
    /// proven to be the runtime's) and for one that exited meanwhile. The verdict needs one host-PID process
    /// that is not a runtime's; the detail (name, where its children go) is
    /// read for the first few of each container unless asked for all.
    fn host_process(
        &mut self,
        g: &mut Gathered,
        pid: u32,
        placement: Option<&Placement>,
        inode: Option<u64>,
        method: Method,
    ) -> Option<ProcessEvidence> {
        let detailed = self
            .opts
            .evidence_detail
            .is_none_or(|limit| g.detailed < limit);
        let comm = if detailed {
            match read_comm(&self.proc, pid) {
                Comm::Read(c) => Some(c),
                Comm::Unread => None,
                Comm::Gone => {
                    // It was in the host's PID namespace a moment ago and
                    // is gone now (a runtime's setup stage exiting, say):
                    // what no longer runs is no evidence either way.
                    self.summary.processes_vanished += 1;
                    return None;
                }
            }
        } else {
            None
        };
        if let (Some(name), Some(placement)) =
            (comm.as_deref().filter(|c| is_runtime_process(c)), placement)
        {
            match verify_runtime_process(&self.proc, pid, placement) {
                Ok(()) => {
                    g.runtime_pids.push(pid);
                    return None;
                }
                Err(why) => self.warnings.push(format!(
                    "{} container {}: pid {pid} is named {name:?} like a runtime process, but {why}; it counts as a container process",
                    placement.key.runtime, placement.key.id
                )),
            }
        }
        let children_pidns_inode = if detailed {
            g.detailed += 1;
            self.proc.ns_inode(pid, "pid_for_children").ok()
        } else {
            None
        };
        Some(ProcessEvidence {
            pid,
            comm,
            pidns_inode: inode,
            method,
            children_pidns_inode,
            outside_cgroup: false,
            cgroup: None,
        })
    }
}

/// A process's name, as far as it could be read.
#[derive(Debug, PartialEq)]
enum Comm {
    Read(String),
    /// Refused or malformed: the process is still there.
    Unread,
    /// The process exited.
    Gone,
}

fn read_comm(proc: &ProcRoot, pid: u32) -> Comm {
    match proc.comm(pid) {
        Ok(c) => Comm::Read(c),
        Err(e) if e.kind == ReadErrorKind::Vanished && !proc.exists(pid) => Comm::Gone,
        Err(_) => Comm::Unread,
    }
}

/// The container a container-like process is counted in: a container found
/// by its cgroup with the same id (its processes left that cgroup), else
/// one keyed by its attribution alone.
fn key_for(a: &Attribution, gathered: &BTreeMap<ContainerKey, Gathered>) -> ContainerKey {
    let compatible = |r: Runtime| {
        r == a.runtime
            || (r == Runtime::Kubernetes
                && matches!(
                    a.runtime,
                    Runtime::Containerd | Runtime::CriO | Runtime::Docker
                ))
    };
    if a.runtime != Runtime::Unknown {
        let by_cgroup: Vec<&ContainerKey> = gathered
            .iter()
            .filter(|(k, g)| g.placement.is_some() && k.id == a.id && compatible(k.runtime))
            .map(|(k, _)| k)
            .collect();
        if let [one] = by_cgroup.as_slice() {
            return (*one).clone();
        }
    }
    ContainerKey {
        runtime: a.runtime,
        id: a.id.clone(),
        cgroup: match &a.cgroup {
            CgroupRecord::Path(p) => p.clone(),
            _ => String::new(),
        },
    }
}

fn rooted_by(a: &Attribution, cgroup: Option<&str>) -> RootedBy {
    RootedBy {
        namespace: a.namespace.clone(),
        cgroup: match &a.cgroup {
            CgroupRecord::Path(p) => p.clone(),
            _ => cgroup.unwrap_or_default().to_owned(),
        },
        root_mount: a.root_mount.clone(),
        rootfs: a.rootfs.as_ref().map(|p| p.display().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Tree;

    #[test]
    fn a_name_that_cannot_be_read_is_gone_only_when_the_process_is() {
        let t = Tree::new();
        t.pid(10).file("comm", "sleep\n");
        t.pid(11).file("comm/not-a-file", ""); // comm is a directory
        let proc = t.proc();
        assert_eq!(read_comm(&proc, 10), Comm::Read("sleep".into()));
        assert_eq!(read_comm(&proc, 11), Comm::Unread, "still there");
        assert_eq!(read_comm(&proc, 12), Comm::Gone);
    }
}
