//! From kernel events to findings: which container an event belongs to, and
//! what to tell the kernel so that it filters the next ones itself.
//!
//! The probes send what may matter; this decides. Attribution rests on the
//! cgroup id carried in the event, never on reading /proc afterwards; /proc
//! is only a fallback for a cgroup not seen before.
//!
//! - [`cgroups`]: the cgroup table (learn, forget, look up by id), classified
//!   with the same layout and allow rules as `scan`;
//! - [`setns`]: whether a namespace a container process joined is the host's;
//! - `kernel`: each kind of kernel event, handled;
//! - `aggregate`: the kernel's budgets, as one line per container and kind;
//! - `access`: host access (signals, ptrace, ... aimed outside the
//!   container) and its rate; `target`: whose process it aimed at;
//!   `counts`: reading the kernel's cumulative counts.

mod access;
mod aggregate;
pub mod cgroups;
mod claims;
mod counts;
mod kernel;
mod outside;
pub mod setns;
mod target;
#[cfg(test)]
mod testing;

use std::{collections::HashSet, path::PathBuf};

pub use aggregate::{Aggregates, Suppressed};
use cgroups::CgroupTable;
pub use counts::Counts;
use setns::Namespaces;

use super::clock::{Clock, now_rfc3339};
use crate::{
    allow::AllowList,
    engine::{HostIdentity, RootAttribution},
    names::NameResolver,
    procfs::ProcRoot,
    report::{ContainerKey, Finding, HostPidns, Identity, WatchEvent},
};
use outside::Anchors;

/// What to do after an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Emit(Box<WatchEvent>),
    /// Tell the kernel how to treat a cgroup from now on; `container` is
    /// the container's own cgroup id (0: unknown), whose budgets its
    /// sub-cgroups share.
    Classify {
        cgroup_id: u64,
        class: u32,
        container: u64,
    },
    /// A process in a host cgroup created a namespace, which the kernel now
    /// counts as the host's: verify that a host process holds it.
    NsCreated {
        inum: u32,
        nstype: u32,
    },
    /// Report this process's children that stay in the host PID namespace;
    /// `anchor` is the container it belongs to wherever its cgroup
    /// (`pidns_ebpf::TaskState::container`; 0: none but its cgroup).
    TrackTask {
        pid: u32,
        anchor: u64,
    },
    /// [`Action::TrackTask`] for a process already outside its container's
    /// cgroup (found so by a scan): its leaving is not news, no
    /// `cgroup_escape` when it moves again.
    TrackOutside {
        pid: u32,
        anchor: u64,
    },
    /// The container's own cgroup is gone: the container stopped.
    Gone(Identity),
}

impl Action {
    pub fn emit(e: WatchEvent) -> Action {
        Action::Emit(Box::new(e))
    }
}

pub struct Attributor {
    proc: ProcRoot,
    cgroups: CgroupTable,
    namespaces: Namespaces,
    clock: Clock,
    /// Kernel events handled.
    handled: u64,
    /// Events whose cgroup could not be placed (the process was gone and the
    /// cgroup never seen).
    unattributed: u64,
    /// The host's mount namespace and root, and containers by their root:
    /// the engine `scan` uses, for processes outside container cgroups.
    identity: HostIdentity,
    roots: RootAttribution,
    /// Where runtimes keep their state (claims look for records there).
    state_root: Option<PathBuf>,
    /// Containers the kernel knows tasks by outside container cgroups.
    anchors: Anchors,
    /// Claims judged: a container by its cgroup's name, or not.
    verified: HashSet<ContainerKey>,
    unverified: HashSet<ContainerKey>,
    /// Host access: what was reported, the interval's counts.
    access: access::AccessRate,
    /// The unified hierarchy, where a host access target's cgroup id is read.
    cgroup_root: Option<PathBuf>,
}

impl Attributor {
    /// `own`: the container pidns runs in, allowed as `scan` allows it.
    pub fn new(
        proc: ProcRoot,
        allow: AllowList,
        allow_setns: AllowList,
        own: Option<ContainerKey>,
        names: Option<NameResolver>,
        host_root: Option<PathBuf>,
        host: &HostPidns,
    ) -> Self {
        Attributor {
            namespaces: Namespaces::new(proc.clone(), host_root.clone(), host),
            identity: HostIdentity::find(&proc, host),
            roots: RootAttribution::new(host_root.clone()),
            state_root: host_root.clone(),
            anchors: Anchors::default(),
            verified: HashSet::new(),
            unverified: HashSet::new(),
            cgroups: CgroupTable::new(allow, allow_setns, own, names, host_root),
            proc,
            clock: Clock::now(),
            handled: 0,
            unattributed: 0,
            access: access::AccessRate::default(),
            cgroup_root: None,
        }
    }

    /// Where runtimes keep their state, when not where names are read
    /// (`--no-names`): claims and roots are judged from it.
    pub fn set_state_root(&mut self, state_root: Option<PathBuf>) {
        self.roots = RootAttribution::new(state_root.clone());
        self.state_root = state_root;
    }

    /// What to do with the findings of a scan (start-up, rescan): each
    /// reported, and its process tracked by the kernel with its anchor.
    pub fn scanned(&mut self, findings: Vec<Finding>) -> Vec<Action> {
        let mut actions = Vec::new();
        for f in findings {
            let (pid, outside) = (f.at.pid, f.outside_cgroup);
            let anchor = self.anchor_for(&f);
            actions.push(Action::emit(WatchEvent::HostPidns(f)));
            actions.push(if outside {
                Action::TrackOutside { pid, anchor }
            } else {
                Action::TrackTask { pid, anchor }
            });
        }
        actions
    }

    /// Where the unified hierarchy is mounted (`--cgroup-root` or mountinfo).
    pub fn set_cgroup_root(&mut self, root: PathBuf) {
        self.cgroup_root = Some(root.clone());
        self.namespaces.set_cgroup_root(root.clone());
        self.cgroups.set_root(root);
    }

    /// Records a cgroup's path (the start-up walk); returns the class to give
    /// the kernel, if decided.
    pub fn learn(&mut self, cgroup_id: u64, path: &[u8]) -> Option<Action> {
        self.cgroups.learn(cgroup_id, path)
    }

    /// The container a cgroup id belongs to (a budget's key), looked up in
    /// /proc through `pid` if never seen.
    pub fn container_of(&mut self, cgroup_id: u64, pid: u32) -> Option<cgroups::Known> {
        if let Some(known) = self.anchors.get(cgroup_id) {
            return Some(known.clone());
        }
        let mut ignored = Vec::new();
        match self
            .cgroups
            .lookup(&self.proc, cgroup_id, pid, &mut ignored)
        {
            cgroups::Lookup::Container(known) => Some(*known),
            cgroups::Lookup::Host | cgroups::Lookup::Unplaced => None,
        }
    }

    /// Kernel events whose process was gone before its cgroup could be
    /// placed, and which were therefore dropped.
    pub fn unattributed(&self) -> u64 {
        self.unattributed
    }

    /// The line printed when watch stops.
    pub fn stats(&self, lost: u64) -> WatchEvent {
        WatchEvent::Stats {
            events: self.handled,
            unattributed: self.unattributed,
            lost,
            ts: now_rfc3339(),
        }
    }
}
