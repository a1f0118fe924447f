//! Setns judging: whether a namespace a container process joined is the
//! host's. The host's are its init's (or a kernel thread's) and those held
//! by host processes (a service's private mount namespace, `unshare -m` on
//! the host); a container's own (held by its init) is no escape.

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use pidns_ebpf::{Event, NS_PID, NS_TYPES, flags, host_ns};

use crate::{
    engine::Ancestry,
    procfs::ProcRoot,
    report::{
        ContainerKey, Envelope, Finding, HostPidns, SetnsEvent, SetnsVia, Trigger, WatchEvent,
    },
    watch::{
        cgroupfs,
        hostns::{self, HostNamespaces, Owner},
    },
};

/// How long "no host process holds this namespace" is believed: a host
/// process may create one at any time. A host-held namespace stays so.
const HOLDER_NEGATIVE_TTL: Duration = Duration::from_secs(1);
const HOLDER_POSITIVE_TTL: Duration = Duration::from_secs(60);
/// Bound on each cache.
const MAX_CACHED: usize = 4096;

pub struct Namespaces {
    proc: ProcRoot,
    host_root: Option<PathBuf>,
    /// The unified hierarchy, to find a container's processes.
    cgroup_root: Option<PathBuf>,
    /// The host's namespaces by [`NS_TYPES`] index; 0 when unknown.
    host_ns: [u32; NS_TYPES.len()],
    /// (namespace type index, inode) → a host process holding it, and when
    /// that was looked up.
    holders: HashMap<(usize, u64), (Option<u32>, Instant)>,
    /// A container's longest-running process (its init), whose namespaces
    /// are the container's own.
    inits: HashMap<ContainerKey, u32>,
}

impl Namespaces {
    pub fn new(proc: ProcRoot, host_root: Option<PathBuf>, host: &HostPidns) -> Self {
        Namespaces {
            host_ns: HostNamespaces::find(&proc, host).inums,
            proc,
            host_root,
            cgroup_root: None,
            holders: HashMap::new(),
            inits: HashMap::new(),
        }
    }

    pub fn set_cgroup_root(&mut self, root: PathBuf) {
        self.cgroup_root = Some(root);
    }

    /// The container's cgroup went: its init is no longer known.
    pub fn forget(&mut self, key: &ContainerKey) {
        self.inits.remove(key);
    }

    /// A container process's setns into one namespace (the kernel sends
    /// one event per namespace, through a namespace file or a pidfd alike,
    /// having dropped no-ops and namespaces not in its host set): reported
    /// when the namespace is the host's and not the container's own, and a
    /// finding too when it joined the host PID namespace from outside it.
    /// `allowed`: the container may share the host PID namespace, which
    /// does not let it join host namespaces; the event says so.
    pub fn judge(&mut self, ev: &Event, at: &Envelope, allowed: bool) -> Vec<WatchEvent> {
        let pidfd = ev.flags & flags::PIDFD != 0;
        let ok = ev.ret == 0;
        let mut out = Vec::new();
        let Some(index) = NS_TYPES.iter().position(|(flag, _)| *flag == ev.nstype) else {
            return out;
        };
        let name = NS_TYPES[index].1;
        let ino = u64::from(ev.ns_inum);
        // The container's own namespace (a `--network=host` container's
        // net, a setns back home) is no escape. The kernel knows a
        // container's own from its first exec, and has dropped those calls
        // already; for a container it does not know (running before the
        // agent), its init holds them, as read now: processes that joined
        // a host namespace together could each pass for the other's init.
        if ev.flags & flags::OWN_NS_KNOWN == 0
            && let Some(init) =
                self.container_init(&at.container.key(), &at.container.cgroup, ev.pid)
            && self.proc.ns_inode(init, name).ok() == Some(ino)
        {
            return out;
        }
        // The kernel's own verdict where it is certain (the host's own, or
        // held by a host process when last verified); else /proc decides.
        let host = match ev.arg as u32 {
            host_ns::OWN | host_ns::HELD => true,
            _ => self.is_host_namespace(index, ino),
        };
        if !host {
            return out;
        }
        if ok && index == NS_PID && ev.flags & flags::CALLER_HOST_PIDNS == 0 && !allowed {
            let mut f = Finding::new(Trigger::Setns, at.clone());
            f.ppid = (ev.ppid != 0).then_some(ev.ppid);
            out.push(WatchEvent::HostPidns(f));
        }
        out.push(WatchEvent::Setns(SetnsEvent {
            nstype: name,
            target: "host",
            ok,
            via: if pidfd {
                SetnsVia::Pidfd
            } else {
                SetnsVia::NsFile
            },
            target_pid: pidfd.then_some(ev.target_pid),
            compat: ev.flags & flags::COMPAT != 0,
            allowed_container: allowed,
            error: (!ok).then(|| format!("{:?}", nix::errno::Errno::from_raw(-ev.ret))),
            at: at.clone(),
            ns_inode: Some(ino),
            latency_us: None,
            enforced: None,
        }));
        out
    }

    /// Whether a namespace is the host's: one of the host's own (its init's,
    /// a kernel thread's), or held by a host process (a service's private
    /// mount namespace, `unshare -m` on the host).
    fn is_host_namespace(&mut self, index: usize, ino: u64) -> bool {
        if self.host_ns[index] != 0 && u64::from(self.host_ns[index]) == ino {
            return true;
        }
        let now = Instant::now();
        if let Some((holder, at)) = self.holders.get(&(index, ino)) {
            let ttl = if holder.is_some() {
                HOLDER_POSITIVE_TTL
            } else {
                HOLDER_NEGATIVE_TTL
            };
            if now.duration_since(*at) < ttl {
                return holder.is_some();
            }
        }
        let name = NS_TYPES[index].1;
        let mut ancestry = Ancestry::new(&self.proc);
        let holder =
            hostns::host_holder(&self.proc, name, ino, |pid| self.owner(pid, &mut ancestry));
        if self.holders.len() >= MAX_CACHED {
            self.holders.clear();
        }
        self.holders.insert((index, ino), (holder, now));
        holder.is_some()
    }

    /// Whose a process is, from its cgroup file.
    fn owner(&self, pid: u32, ancestry: &mut Ancestry<'_>) -> Owner {
        hostns::owner(&self.proc, self.host_root.as_deref(), pid, ancestry)
    }

    /// A container's longest-running process other than `caller`: its init,
    /// whose namespaces are the container's own. Found through the
    /// container's cgroup where the hierarchy is known, else /proc; cached
    /// while it lives.
    fn container_init(&mut self, key: &ContainerKey, cgroup: &str, caller: u32) -> Option<u32> {
        if let Some(&pid) = self.inits.get(key)
            && pid != caller
            && self.proc.exists(pid)
        {
            return Some(pid);
        }
        let mut pids = self
            .cgroup_root
            .as_deref()
            .map(|root| cgroupfs::procs(root, cgroup))
            .unwrap_or_default();
        if pids.is_empty() {
            let mut ancestry = Ancestry::new(&self.proc);
            pids = self
                .proc
                .pids()
                .unwrap_or_default()
                .into_iter()
                .filter(|&pid| self.owner(pid, &mut ancestry) == Owner::Container(key.clone()))
                .collect();
        }
        let (init, _) = hostns::oldest(&self.proc, pids.into_iter().filter(|&p| p != caller))?;
        if self.inits.len() >= MAX_CACHED {
            self.inits.clear();
        }
        self.inits.insert(key.clone(), init);
        Some(init)
    }
}

#[cfg(test)]
mod tests {
    use pidns_ebpf::{flags, kind};

    use super::super::testing::*;
    use crate::report::{Finding, SetnsEvent, SetnsVia, Trigger, WatchEvent};

    #[test]
    fn setns_is_reported_when_the_target_is_the_hosts() {
        let dir = tempfile::tempdir().expect("tmp");
        namespaces_fixture(dir.path());
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        // into the host's own mount namespace, refused by seccomp: reported, failed
        let out = a.handle(&setns(10, 201, MNT, HOST_NS[0], -1));
        let [WatchEvent::Setns(s)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (
                s.nstype,
                s.target,
                s.ok,
                s.error.as_deref(),
                s.via,
                s.ns_inode
            ),
            (
                "mnt",
                "host",
                false,
                Some("EPERM"),
                SetnsVia::NsFile,
                Some(HOST_NS[0])
            )
        );
        // into a host service's private mount namespace: the host's too
        assert_eq!(
            setns_events(&a.handle(&setns(10, 201, MNT, 4026532300, 0))),
            [("mnt", true)]
        );
        // into another container's: not the host's
        assert!(findings(&a.handle(&setns(10, 201, MNT, 4026532400, 0))).is_empty());
        // into one nobody holds (`ip netns exec` inside the container): not the host's
        assert!(findings(&a.handle(&setns(10, 201, NET, 4026532999, 0))).is_empty());
        // into the container's own (its init's), even one it shares with the host
        assert!(findings(&a.handle(&setns(10, 201, UTS, 4026532201, 0))).is_empty());
        assert!(findings(&a.handle(&setns(10, 201, NET, HOST_NS[5], 0))).is_empty());
        // The init itself joins the host's mount namespace: its link, read
        // afterwards, shows the host's; the container's own is what its next
        // oldest process still has.
        process(
            dir.path(),
            200,
            "sleep",
            1,
            &format!("/docker/{ID}"),
            &[("mnt", HOST_NS[0])],
            100,
        );
        assert_eq!(
            setns_events(&a.handle(&setns(10, 200, MNT, HOST_NS[0], 0))),
            [("mnt", true)]
        );
    }

    #[test]
    fn the_kernels_record_of_a_containers_own_namespaces_decides_over_its_init() {
        let dir = tempfile::tempdir().expect("tmp");
        namespaces_fixture(dir.path());
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        // The init and its child joined the host's mount namespace together:
        // each one's link shows the host's by the time either call is judged.
        for pid in [200, 201] {
            process(
                dir.path(),
                pid,
                "nsenter",
                1,
                &format!("/docker/{ID}"),
                &[("mnt", HOST_NS[0])],
                100 + u64::from(pid),
            );
        }
        let mut e = setns(10, 201, MNT, HOST_NS[0], 0);
        assert!(
            findings(&a.handle(&e)).is_empty(),
            "without the kernel's record, the init's link decides"
        );
        e.flags |= flags::OWN_NS_KNOWN;
        assert_eq!(setns_events(&a.handle(&e)), [("mnt", true)]);
    }

    #[test]
    fn setns_into_the_host_pid_namespace_is_a_finding_for_callers_outside_it() {
        let dir = tempfile::tempdir().expect("tmp");
        namespaces_fixture(dir.path());
        // an isolated container this time: its init has a PID namespace of its own
        process(
            dir.path(),
            200,
            "sleep",
            1,
            &format!("/docker/{ID}"),
            &[("pid", 4026532210)],
            100,
        );
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        let out = a.handle(&setns(10, 201, PID, HOST, 0));
        assert!(
            matches!(
                findings(&out)[..],
                [
                    WatchEvent::HostPidns(Finding {
                        trigger: Trigger::Setns,
                        ..
                    }),
                    WatchEvent::Setns(SetnsEvent {
                        nstype: "pid",
                        ok: true,
                        ..
                    })
                ]
            ),
            "{out:?}"
        );
        // a caller already in the host PID namespace gains nothing new there
        let mut e = setns(10, 201, PID, HOST, 0);
        e.flags = flags::CALLER_HOST_PIDNS;
        let out = a.handle(&e);
        assert_eq!(setns_events(&out), [("pid", true)]);
        assert!(
            !findings(&out)
                .iter()
                .any(|e| matches!(e, WatchEvent::HostPidns(_)))
        );
        // refused: no finding either
        let out = a.handle(&setns(10, 201, PID, HOST, -1));
        assert_eq!(setns_events(&out), [("pid", false)]);
        assert_eq!(findings(&out).len(), 1);
    }

    #[test]
    fn setns_through_a_pidfd_is_judged_by_the_namespace_joined() {
        let dir = tempfile::tempdir().expect("tmp");
        namespaces_fixture(dir.path());
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        // The kernel sends one event per namespace, read from the target's
        // nsproxy: here a host service's private mount namespace ...
        let mut e = setns(10, 201, MNT, 4026532300, 0);
        e.flags = flags::PIDFD;
        e.target_pid = 300;
        let out = a.handle(&e);
        let [WatchEvent::Setns(s)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (s.nstype, s.via, s.target_pid, s.ns_inode),
            ("mnt", SetnsVia::Pidfd, Some(300), Some(4026532300))
        );
        let json = serde_json::to_value(WatchEvent::Setns(s.clone())).expect("json");
        assert_eq!(
            (json["via"].as_str(), json["target_pid"].as_u64()),
            (Some("pidfd"), Some(300))
        );
        // ... and the host's network namespace through another container's
        // process (one with --network=host): whoever the target is, the
        // namespace joined decides.
        let mut e = setns(10, 201, NET, HOST_NS[5], 0);
        e.flags = flags::PIDFD;
        e.target_pid = 400;
        // (the caller's container has the host's net itself in the fixture:
        // take it away, as for an isolated container)
        process(
            dir.path(),
            200,
            "sleep",
            1,
            &format!("/docker/{ID}"),
            &[("net", 4026532210)],
            100,
        );
        assert_eq!(setns_events(&a.handle(&e)), [("net", true)]);
        // what the kernel vouches for (the host's own, arg 1) needs no /proc
        let mut e = setns(10, 201, UTS, 4026539999, 0);
        e.arg = u64::from(pidns_ebpf::host_ns::OWN);
        assert_eq!(setns_events(&a.handle(&e)), [("uts", true)]);
        // compat calls say so
        let mut e = setns(10, 201, MNT, 4026532300, 0);
        e.flags = flags::PIDFD | flags::COMPAT;
        e.target_pid = 300;
        let out = a.handle(&e);
        assert!(matches!(
            findings(&out)[..],
            [WatchEvent::Setns(SetnsEvent { compat: true, .. })]
        ));
    }

    #[test]
    fn an_allowed_containers_setns_is_reported_and_marked() {
        let dir = tempfile::tempdir().expect("tmp");
        namespaces_fixture(dir.path());
        let mut a = attributor(dir.path(), &[ID]);
        let mkdir = event(kind::CGROUP_MKDIR, 10, 5, "runc", &format!("/docker/{ID}"));
        a.handle(&mkdir);
        let out = a.handle(&setns(10, 201, MNT, HOST_NS[0], 0));
        let [WatchEvent::Setns(s)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert!(s.allowed_container);
        // its processes are no findings
        assert!(findings(&a.handle(&event(kind::EXEC, 10, 202, "sh", "/bin/sh"))).is_empty());
    }
}
