//! The kernel's setns filter: the `HOST_NS` map of namespaces that count
//! as the host's, which the setns probe checks every target against.
//!
//! At start-up it gets the host's own namespaces ([`host_ns::OWN`]) and,
//! from one walk of /proc, those held by host processes ([`host_ns::HELD`]).
//! Namespaces that processes in host cgroups create later are added by the
//! probes themselves ([`host_ns::CREATED`]: `task_newtask` and
//! `sys_exit_unshare`) and verified here a second later: held by a host
//! process, they become HELD; held by none (a runtime that made a
//! container's namespaces from a host cgroup and then moved in), they leave
//! the map. Every minute every HELD and CREATED entry is verified again, so
//! that namespaces that died or changed hands leave it too.
//!
//! A full map is never silent: the kernel, or this, sets the overflow flag,
//! the setns probe then sends every setns that is not a no-op (fail open:
//! user space judges each by /proc, as without the filter), and stderr says
//! so once. Once pruning made room, the filter closes again.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    time::{Duration, Instant},
};

use pidns_ebpf::{NS_TYPES, host_ns};

use super::{
    ebpf::Probes,
    hostns::{self, HostNamespaces, Owner},
};
use crate::{engine::Ancestry, procfs::ProcRoot};

/// How long a created namespace waits before it is verified: a runtime
/// moving its setup process into the container's cgroup has done so by then.
const VERIFY_AFTER: Duration = Duration::from_secs(1);
/// How often every HELD and CREATED entry is verified again.
const REVERIFY_EVERY: Duration = Duration::from_secs(60);

pub struct HostNsFilter {
    proc: ProcRoot,
    host_root: Option<PathBuf>,
    /// The host's own, by inode (never removed).
    own: HashSet<u32>,
    /// Created namespaces waiting for verification: inode → (type, since).
    pending: HashMap<u32, (u32, Instant)>,
    last_full: Instant,
    overflow_said: bool,
}

impl HostNsFilter {
    /// Fills the map: the host's own namespaces, and one walk of /proc for
    /// those host processes hold.
    pub fn start(
        proc: ProcRoot,
        host_root: Option<PathBuf>,
        host: &HostNamespaces,
        probes: &mut Probes,
    ) -> HostNsFilter {
        let mut f = HostNsFilter {
            proc,
            host_root,
            own: HashSet::new(),
            pending: HashMap::new(),
            last_full: Instant::now(),
            overflow_said: false,
        };
        for (i, &inum) in host.inums.iter().enumerate() {
            if inum != 0 {
                f.own.insert(inum);
                probes.add_host_ns(inum, NS_TYPES[i].0, host_ns::OWN);
            }
        }
        for (inum, nstype) in f.held_by_host(None) {
            probes.add_host_ns(inum, nstype, host_ns::HELD);
        }
        f.say_overflow(probes);
        f
    }

    /// The kernel added a namespace a host cgroup's process created.
    pub fn created(&mut self, inum: u32, nstype: u32) {
        self.pending.insert(inum, (nstype, Instant::now()));
    }

    /// Verifies what is due; called about once a second.
    pub fn tick(&mut self, probes: &mut Probes) {
        let now = Instant::now();
        if now.duration_since(self.last_full) >= REVERIFY_EVERY || probes.host_ns_overflowed() {
            self.last_full = now;
            self.reverify_all(probes);
        } else {
            let due: HashMap<u32, u32> = self
                .pending
                .iter()
                .filter(|(_, (_, at))| now.duration_since(*at) >= VERIFY_AFTER)
                .map(|(&inum, &(nstype, _))| (inum, nstype))
                .collect();
            if !due.is_empty() {
                self.verify(&due, probes);
            }
        }
        self.say_overflow(probes);
    }

    /// Verifies these entries: HELD if a host process holds them, else out.
    fn verify(&mut self, entries: &HashMap<u32, u32>, probes: &mut Probes) {
        let held: HashMap<u32, u32> = self.held_by_host(Some(entries)).into_iter().collect();
        for (&inum, &nstype) in entries {
            self.pending.remove(&inum);
            if self.own.contains(&inum) {
                continue;
            }
            if held.contains_key(&inum) {
                probes.add_host_ns(inum, nstype, host_ns::HELD);
            } else {
                probes.remove_host_ns(inum);
            }
        }
    }

    /// Every entry but the host's own, verified again; a map that
    /// overflowed and now has room closes the filter again.
    fn reverify_all(&mut self, probes: &mut Probes) {
        let entries: HashMap<u32, u32> = probes
            .host_namespaces()
            .into_iter()
            .filter(|(_, v)| v.provenance != host_ns::OWN)
            .map(|(inum, v)| (inum, v.nstype))
            .collect();
        let before = entries.len();
        self.verify(&entries, probes);
        if probes.host_ns_overflowed() && probes.host_namespaces().len() < before {
            probes.reset_host_ns_overflow();
            if self.overflow_said {
                eprintln!(
                    "pidns watch: the host namespace map has room again; setns filtering is back on"
                );
                self.overflow_said = false;
            }
        }
    }

    fn say_overflow(&mut self, probes: &Probes) {
        if !self.overflow_said && probes.host_ns_overflowed() {
            self.overflow_said = true;
            eprintln!(
                "pidns watch: the host namespace map is full: the kernel now sends every setns by a container process that is not a no-op, and pidns judges each from /proc (nothing goes unreported, but a container flooding setns costs more until entries expire)"
            );
        }
    }

    /// (inode, `CLONE_NEW*` type) of namespaces a host process holds, other
    /// than the host's own: all of them, or only those of `only`. One walk
    /// of /proc, a readlink per process and type, a cgroup read per
    /// process that holds a candidate.
    fn held_by_host(&self, only: Option<&HashMap<u32, u32>>) -> Vec<(u32, u32)> {
        let Ok(pids) = self.proc.pids() else {
            return Vec::new();
        };
        let mut ancestry = Ancestry::new(&self.proc);
        let mut found: HashMap<u32, u32> = HashMap::new();
        let mut owners: HashMap<u32, bool> = HashMap::new();
        for pid in pids {
            for (flag, name) in NS_TYPES {
                if only.is_some_and(|o| !o.values().any(|&t| t == flag)) {
                    continue;
                }
                let Some(inum) = self
                    .proc
                    .ns_inode(pid, name)
                    .ok()
                    .and_then(|i| u32::try_from(i).ok())
                else {
                    continue;
                };
                if self.own.contains(&inum)
                    || found.contains_key(&inum)
                    || only.is_some_and(|o| !o.contains_key(&inum))
                {
                    continue;
                }
                let host = *owners.entry(pid).or_insert_with(|| {
                    hostns::owner(&self.proc, self.host_root.as_deref(), pid, &mut ancestry)
                        == Owner::Host
                });
                if host {
                    found.insert(inum, flag);
                }
            }
        }
        found.into_iter().collect()
    }
}
