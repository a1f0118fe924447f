//! Container processes outside container cgroups, live: one that left its
//! container's cgroup (`cgroup_escape`, and its events afterwards, which
//! the kernel sends with its anchor), and a container-like process (a mount
//! namespace and a root not the host's) exec'ing in a cgroup that is not a
//! container's, judged by its root with the engine `scan` uses.
//!
//! Anchors: the kernel keeps, for each container process, the container
//! cgroup it was found in; once the process is in a cgroup that is not a
//! container's, its events carry that id ([`flags::BY_TASK`]). For a
//! container found by its root there is no container cgroup: the anchor is
//! an id made up here ([`SYNTHETIC_ANCHOR`] set), one per container.

use std::{collections::HashMap, os::unix::fs::MetadataExt as _};

use pidns_ebpf::{Event, SYNTHETIC_ANCHOR, class, cstr, flags};

use super::{Action, Attributor, cgroups::Known, cgroups::Lookup};
use crate::{
    engine::container_like,
    parse::cgroup,
    report::{ContainerKey, Envelope, EscapeEvent, Finding, Trigger, WatchEvent},
    state::CgroupRecord,
};

/// Containers kept by anchor beyond the cgroup table: more than this many
/// are not kept (their processes are still reported when found, by /proc).
const MAX_ANCHORS: usize = 65_536;

/// Anchors the kernel holds for tasks outside container cgroups, and the
/// containers they stand for.
#[derive(Default)]
pub struct Anchors {
    known: HashMap<u64, Known>,
    made_up: HashMap<ContainerKey, u64>,
    next: u64,
}

impl Anchors {
    pub fn get(&self, anchor: u64) -> Option<&Known> {
        self.known.get(&anchor)
    }

    /// Keeps what `anchor` stands for (a container cgroup a task left: the
    /// container is still its, also once the cgroup is gone).
    pub fn keep(&mut self, anchor: u64, known: &Known) -> bool {
        if self.known.len() >= MAX_ANCHORS && !self.known.contains_key(&anchor) {
            return false;
        }
        self.known.insert(anchor, known.clone());
        true
    }

    /// The made-up anchor of a container found by its root (one per
    /// container); `None` when no more can be kept.
    pub fn made_up(&mut self, known: &Known) -> Option<u64> {
        if let Some(&a) = self.made_up.get(&known.key) {
            return Some(a);
        }
        self.next += 1;
        let anchor = SYNTHETIC_ANCHOR | self.next;
        self.keep(anchor, known).then(|| {
            self.made_up.insert(known.key.clone(), anchor);
            anchor
        })
    }
}

/// Where an event's process was placed.
pub struct Placed {
    pub known: Known,
    /// What the kernel should keep for it ([`Action::TrackTask`]).
    pub anchor: u64,
    /// Found by its root here: the kernel does not know it yet.
    pub rooted: bool,
    /// Outside its container's cgroup.
    pub outside: bool,
}

impl Attributor {
    /// The container an event's process belongs to: by the anchor the
    /// kernel kept for it, by its cgroup (a claim judged as `scan` judges
    /// it), or by its root. `None`: a host process (or nothing to go by).
    pub(super) fn place(&mut self, ev: &Event, actions: &mut Vec<Action>) -> Option<Placed> {
        if ev.flags & flags::BY_TASK != 0 {
            let Some(known) = self.anchored(ev.cgroup_id) else {
                self.unattributed += 1;
                return None;
            };
            return Some(Placed {
                known,
                anchor: ev.cgroup_id,
                rooted: false,
                outside: ev.cgroup_id & SYNTHETIC_ANCHOR == 0,
            });
        }
        match self
            .cgroups
            .lookup(&self.proc, ev.cgroup_id, ev.pid, actions)
        {
            Lookup::Container(known) => self.claim_holds(&known, ev, actions).then_some(Placed {
                known: *known,
                anchor: ev.cgroup_id,
                rooted: false,
                outside: false,
            }),
            // A cgroup that names no container, or that cannot be placed
            // (a cgroup file the kernel cut, or forged): judged by its root.
            Lookup::Host | Lookup::Unplaced if ev.flags & flags::FOREIGN_MNT != 0 => {
                self.rooted(ev, actions)
            }
            Lookup::Host => None,
            Lookup::Unplaced => {
                self.unattributed += 1;
                None
            }
        }
    }

    /// The container an anchor kept here stands for (not the table's).
    pub(super) fn anchored_only(&self, anchor: u64) -> Option<Known> {
        self.anchors.get(anchor).cloned()
    }

    /// The container an anchor stands for.
    pub(super) fn anchored(&self, anchor: u64) -> Option<Known> {
        self.anchors
            .get(anchor)
            .cloned()
            .or_else(|| self.cgroups.known_of(anchor))
    }

    /// A process exec'ing in the host PID namespace and another mount
    /// namespace than the host's, in a cgroup that is not a container's:
    /// container-like by its root (as `scan` decides), attributed by its
    /// root filesystem. A host service's private mount namespace keeps the
    /// host's root, and is nothing. A process gone before its root could be
    /// read is counted as unattributed.
    fn rooted(&mut self, ev: &Event, actions: &mut Vec<Action>) -> Option<Placed> {
        if !self.identity.usable() {
            return None;
        }
        let Some(a) = container_like(&self.proc, ev.pid, &self.identity, &mut self.roots) else {
            if !self.proc.exists(ev.pid) {
                self.unattributed += 1;
            }
            return None;
        };
        let cgroup = match &a.cgroup {
            CgroupRecord::Path(p) => p.clone(),
            _ => self.shown_cgroup(ev.pid).unwrap_or_default(),
        };
        let key = ContainerKey {
            runtime: a.runtime,
            id: a.id,
            cgroup,
        };
        let known = self.cgroups.known_rooted(&key, a.namespace.as_deref());
        if known.allowed {
            return None;
        }
        let anchor = self.anchors.made_up(&known)?;
        actions.push(Action::Classify {
            cgroup_id: anchor,
            class: class::CONTAINER,
            container: anchor,
        });
        Some(Placed {
            known,
            anchor,
            rooted: true,
            outside: false,
        })
    }

    /// A process's unified cgroup as /proc shows it (well-formed only).
    fn shown_cgroup(&self, pid: u32) -> Option<String> {
        let mut buf = Vec::new();
        self.proc.read_into(pid, "cgroup", &mut buf).ok()?;
        let lines = cgroup::checked(&buf).ok()?;
        let line = lines.iter().find(|l| l.is_unified())?;
        Some(String::from_utf8_lossy(line.path).into_owned())
    }

    /// A container process left its container's cgroup (`cgroup_id`, its
    /// anchor) for `target_cgroup_id`. Moved into another container's
    /// cgroup after all (one classified late), it is that container's,
    /// like any task moved in.
    pub(super) fn escape(&mut self, ev: &Event) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(known) = self.anchored(ev.cgroup_id) else {
            self.unattributed += 1;
            return actions;
        };
        let at = |container| Envelope {
            pid: ev.pid,
            comm: String::from_utf8_lossy(cstr(&ev.comm)).into_owned(),
            container,
            ts: self.clock.rfc3339(ev.ktime_ns),
        };
        let target = ev.target_cgroup_id;
        if let Lookup::Container(other) =
            self.cgroups
                .lookup(&self.proc, target, ev.pid, &mut actions)
            && other.key != known.key
        {
            if !other.allowed {
                let mut f = Finding::new(Trigger::CgroupAttach, at(other.identity.clone()));
                f.ppid = (ev.ppid != 0).then_some(ev.ppid);
                actions.push(Action::emit(WatchEvent::HostPidns(f)));
                actions.push(Action::TrackTask {
                    pid: ev.pid,
                    anchor: target,
                });
            }
            return actions;
        }
        self.anchors.keep(ev.cgroup_id, &known);
        let from_cgroup = self
            .cgroups
            .path_of(ev.cgroup_id)
            .map_or_else(|| known.identity.cgroup.clone(), str::to_owned);
        let to_cgroup = self
            .shown_cgroup(ev.pid)
            .or_else(|| self.cgroups.path_of(target).map(str::to_owned));
        actions.push(Action::emit(WatchEvent::CgroupEscape(EscapeEvent {
            at: at(known.identity),
            from_cgroup,
            to_cgroup,
            moved_by: ev.ppid,
            latency_us: None,
        })));
        actions
    }

    /// The anchor to give the kernel for a process a scan found: its
    /// container's own cgroup when it exists and the table places it in
    /// that container, else one made up. Kept here when the process is
    /// outside that cgroup, or the anchor is made up.
    pub(super) fn anchor_for(&mut self, f: &Finding) -> u64 {
        let c = &f.at.container;
        let key = ContainerKey {
            runtime: c.runtime,
            id: c.id.clone(),
            cgroup: c.cgroup.clone(),
        };
        let by_cgroup = self.cgroups.root().and_then(|root| {
            let dir = root.join(c.cgroup.trim_start_matches('/'));
            let id = std::fs::metadata(dir).ok()?.ino();
            let known = self.cgroups.known_of(id)?;
            (known.identity.id == c.id && known.identity.runtime == c.runtime)
                .then_some((id, known))
        });
        match by_cgroup {
            Some((id, known)) => {
                if f.outside_cgroup {
                    self.anchors.keep(id, &known);
                }
                id
            }
            None => {
                let known = Known {
                    identity: c.clone(),
                    allowed: false,
                    allowed_setns: false,
                    key,
                    namespace: None,
                };
                self.anchors.made_up(&known).unwrap_or(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pidns_ebpf::{SYNTHETIC_ANCHOR, class, flags, kind};

    use super::super::testing::*;
    use crate::{
        report::{Runtime, Trigger, WatchEvent},
        watch::attribute::Action,
    };

    #[test]
    fn an_escape_keeps_the_container_for_what_follows() {
        let dir = tempfile::tempdir().expect("tmp");
        // the shell, now in the root cgroup
        process(dir.path(), 42, "sh", 1, "/", &[], 5);
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        a.learn(1, b"/");
        let mut esc = event(kind::CGROUP_ESCAPE, 10, 42, "sh", "");
        esc.flags = flags::BY_TASK;
        esc.target_cgroup_id = 1;
        esc.ppid = 42;
        let out = a.handle(&esc);
        let [WatchEvent::CgroupEscape(x)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (
                x.at.container.id.as_str(),
                x.from_cgroup.as_str(),
                x.to_cgroup.as_deref(),
                x.moved_by
            ),
            (ID, format!("/docker/{ID}").as_str(), Some("/"), 42)
        );
        let json = serde_json::to_value(WatchEvent::CgroupEscape(x.clone())).expect("json");
        assert_eq!(json["event"], "cgroup_escape");
        // its container's cgroup goes (the container stopped, or was
        // emptied): what it does next is still the container's
        assert!(
            a.handle(&event(kind::CGROUP_RMDIR, 10, 5, "runc", ""))
                .len()
                <= 1
        );
        let mut exec = event(kind::EXEC, 10, 42, "nsenter", "/bin/nsenter");
        exec.flags = flags::BY_TASK | flags::UNCLASSIFIED;
        let out = a.handle(&exec);
        let [WatchEvent::HostPidns(f)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (f.trigger, f.at.container.id.as_str(), f.outside_cgroup),
            (Trigger::Exec, ID, true)
        );
        assert!(
            !out.iter().any(|a| matches!(a, Action::TrackTask { .. })),
            "the kernel keeps it already: {out:?}"
        );
        let mut setns = setns(10, 42, MNT, HOST_NS[0], 0);
        setns.flags = flags::BY_TASK;
        let out = a.handle(&setns);
        assert_eq!(setns_events(&out), [("mnt", true)], "{out:?}");
        // an anchor nothing stands for is counted, not guessed
        let mut stray = event(kind::EXEC, 77, 42, "x", "");
        stray.flags = flags::BY_TASK;
        assert!(a.handle(&stray).is_empty());
        assert_eq!(a.unattributed(), 1);
    }

    #[test]
    fn a_move_into_another_containers_cgroup_is_an_attach_there() {
        let dir = tempfile::tempdir().expect("tmp");
        let other = "d".repeat(64);
        process(dir.path(), 42, "sh", 1, &format!("/docker/{other}"), &[], 5);
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        let mut esc = event(kind::CGROUP_ESCAPE, 10, 42, "sh", "");
        esc.flags = flags::BY_TASK;
        esc.target_cgroup_id = 20;
        let out = a.handle(&esc);
        let [WatchEvent::HostPidns(f)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (f.trigger, f.at.container.id.as_str()),
            (Trigger::CgroupAttach, other.as_str())
        );
        assert!(out.contains(&Action::TrackTask {
            pid: 42,
            anchor: 20
        }));
    }

    /// A host with a root; a home-made container (another root, another
    /// mount namespace) and a service in a private mount namespace on the
    /// host's root, both in host cgroups.
    fn rooted_fixture(dir: &std::path::Path) {
        for d in ["hostroot", "ctr"] {
            std::fs::create_dir(dir.join(d)).expect("dir");
        }
        crate::testutil::process(dir, 1, "init", 0, "/", &host_ns(), 1).root(&dir.join("hostroot"));
        crate::testutil::process(
            dir,
            60,
            "sleep",
            1,
            "/pidnst-home",
            &[("mnt", 4026532600)],
            9,
        )
        .root(&dir.join("ctr"))
        .file(
            "mountinfo",
            "300 200 254:0 /srv/home / rw,relatime - ext4 /dev/vda rw\n",
        );
        crate::testutil::process(
            dir,
            61,
            "svc",
            1,
            "/system.slice/svc.service",
            &[("mnt", 4026532601)],
            9,
        )
        .root(&dir.join("hostroot"));
    }

    #[test]
    fn a_container_like_exec_in_a_host_cgroup_is_found_by_its_root() {
        let dir = tempfile::tempdir().expect("tmp");
        rooted_fixture(dir.path());
        let mut a = attributor(dir.path(), &[]);
        a.learn(30, b"/pidnst-home");
        a.learn(31, b"/system.slice/svc.service");
        let mut exec = event(kind::EXEC, 30, 60, "sleep", "/bin/sleep");
        exec.flags = flags::FOREIGN_MNT;
        let out = a.handle(&exec);
        let [WatchEvent::HostPidns(f)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        let c = &f.at.container;
        assert_eq!(
            (
                c.runtime,
                c.id.as_str(),
                c.cgroup.as_str(),
                f.outside_cgroup
            ),
            (
                Runtime::Unknown,
                "/dev/vda:/srv/home",
                "/pidnst-home",
                false
            )
        );
        let anchor = out
            .iter()
            .find_map(|a| match a {
                Action::TrackTask { pid: 60, anchor } => Some(*anchor),
                _ => None,
            })
            .expect("tracked");
        assert_ne!(anchor & SYNTHETIC_ANCHOR, 0);
        assert!(out.contains(&Action::Classify {
            cgroup_id: anchor,
            class: class::CONTAINER,
            container: anchor
        }));
        // its fork, sent with the anchor: the same container
        let mut fork = event(kind::FORK, anchor, 62, "sleep", "");
        fork.flags = flags::BY_TASK;
        let out = a.handle(&fork);
        let [WatchEvent::HostPidns(f)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (f.at.container.id.as_str(), f.outside_cgroup),
            ("/dev/vda:/srv/home", false)
        );
        // a service in a private mount namespace keeps the host's root: nothing
        let mut svc = event(kind::EXEC, 31, 61, "svc", "/usr/bin/svc");
        svc.flags = flags::FOREIGN_MNT;
        assert!(a.handle(&svc).is_empty());
        // in a cgroup never seen whose file cannot be trusted: by its root
        crate::testutil::process(dir.path(), 65, "sh", 1, "/", &[("mnt", 4026532600)], 9)
            .root(&dir.path().join("ctr"))
            .file("cgroup", "0::/x\n0::/y\n")
            .file(
                "mountinfo",
                "300 200 254:0 /srv/home / rw,relatime - ext4 /dev/vda rw\n",
            );
        let mut forged = event(kind::EXEC, 99, 65, "sh", "/bin/sh");
        forged.flags = flags::FOREIGN_MNT;
        let out = a.handle(&forged);
        assert!(
            matches!(findings(&out)[..], [WatchEvent::HostPidns(f)] if f.at.container.id == "/dev/vda:/srv/home"),
            "{out:?}"
        );
        // gone before its root could be read: counted
        let mut gone = event(kind::EXEC, 30, 63, "true", "/bin/true");
        gone.flags = flags::FOREIGN_MNT;
        assert!(findings(&a.handle(&gone)).is_empty());
        assert_eq!(a.unattributed(), 1);
    }

    #[test]
    fn scan_findings_are_tracked_with_their_anchor() {
        use crate::report::{Envelope, Finding, Identity};
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &[]);
        let container = Identity {
            id: ID.into(),
            runtime: Runtime::Docker,
            name: None,
            pod: None,
            cgroup: "/".into(),
        };
        let mut f = Finding::new(
            Trigger::Scan,
            Envelope {
                pid: 42,
                comm: "sh".into(),
                container,
                ts: "T".into(),
            },
        );
        f.outside_cgroup = true;
        let out = a.scanned(vec![f.clone()]);
        let anchor = out
            .iter()
            .find_map(|x| match x {
                Action::TrackOutside { pid: 42, anchor } => Some(*anchor),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{out:?}"));
        assert_ne!(anchor & SYNTHETIC_ANCHOR, 0, "no container cgroup: made up");
        // what the kernel then sends with it is the scan's container
        let mut exec = event(kind::EXEC, anchor, 42, "sleep", "/bin/sleep");
        exec.flags = flags::BY_TASK;
        let out2 = a.handle(&exec);
        let [WatchEvent::HostPidns(g)] = findings(&out2)[..] else {
            panic!("{out2:?}")
        };
        assert_eq!(g.at.container.id, ID);
        // one inside its cgroup is tracked as any container process
        f.outside_cgroup = false;
        assert!(
            a.scanned(vec![f])
                .iter()
                .any(|x| matches!(x, Action::TrackTask { pid: 42, .. }))
        );
    }
}
