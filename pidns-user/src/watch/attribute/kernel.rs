//! Each kind of kernel event, handled: exec, fork and clone, children in new
//! PID namespaces, cgroup attach, setns, and the cgroup mkdir/rmdir events
//! that keep the cgroup table current.

use pidns_ebpf::{CLONE_NEWPID, Event, NS_FLAGS, cstr, flags, kind};

use super::{Action, Attributor, outside::Placed};
use crate::report::{
    CloneFlags, Enforced, Envelope, Finding, NewPidnsEvent, NewPidnsVia, Trigger, WatchEvent,
};

impl Attributor {
    /// Decides what a kernel event means.
    pub fn handle(&mut self, ev: &Event) -> Vec<Action> {
        self.handled += 1;
        match ev.kind {
            kind::CGROUP_MKDIR | kind::CGROUP_RMDIR | kind::NS_CREATED => self.bookkeeping(ev),
            kind::CGROUP_ESCAPE => self.escape(ev),
            kind::HOST_ACCESS => self.host_access(ev),
            kind::EXEC | kind::FORK | kind::ATTACH | kind::SETNS | kind::NEW_PIDNS => {
                self.process_event(ev)
            }
            _ => Vec::new(),
        }
    }

    /// Cgroups and namespaces coming and going: tables to keep, nothing
    /// to report.
    fn bookkeeping(&mut self, ev: &Event) -> Vec<Action> {
        match ev.kind {
            kind::CGROUP_MKDIR => {
                let path = cstr(&ev.data);
                if ev.flags & flags::TRUNCATED == 0 {
                    self.cgroups.learn(ev.cgroup_id, path)
                } else {
                    self.cgroups.learn_cut(ev.cgroup_id, path)
                }
                .into_iter()
                .collect()
            }
            kind::CGROUP_RMDIR => match self.cgroups.forget(ev.cgroup_id) {
                Some((key, gone)) => {
                    self.namespaces.forget(&key);
                    gone.into_iter().collect()
                }
                None => Vec::new(),
            },
            kind::NS_CREATED => vec![Action::NsCreated {
                inum: ev.ns_inum,
                nstype: ev.nstype,
            }],
            _ => Vec::new(),
        }
    }

    /// A process's exec, fork, move, setns or new PID namespace: placed in
    /// its container (by its anchor, its cgroup, a claim judged, or its
    /// root), then reported unless allowed.
    fn process_event(&mut self, ev: &Event) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(Placed {
            known,
            anchor,
            rooted,
            outside,
        }) = self.place(ev, &mut actions)
        else {
            return actions;
        };
        // Allowed to share the host PID namespace is not allowed to join
        // host namespaces: only `--allow-setns` silences a setns.
        let silenced = if ev.kind == kind::SETNS {
            known.allowed_setns
        } else {
            known.allowed
        };
        if silenced {
            return actions;
        }
        let allowed = known.allowed;
        // The kernel marks container processes only in cgroups it knows to be
        // containers'; for one it did not know yet, track the process here.
        if (rooted || ev.flags & flags::UNCLASSIFIED != 0 && ev.flags & flags::BY_TASK == 0)
            && matches!(ev.kind, kind::EXEC | kind::FORK)
        {
            actions.push(Action::TrackTask {
                pid: ev.pid,
                anchor,
            });
        }
        let at = Envelope {
            pid: ev.pid,
            comm: String::from_utf8_lossy(cstr(&ev.comm)).into_owned(),
            container: known.identity,
            ts: self.clock.rfc3339(ev.ktime_ns),
        };
        self.report(ev, at, anchor, allowed, outside, &mut actions);
        actions
    }

    /// The lines a placed, unsilenced process event makes.
    fn report(
        &mut self,
        ev: &Event,
        at: Envelope,
        anchor: u64,
        allowed: bool,
        outside: bool,
        actions: &mut Vec<Action>,
    ) {
        match ev.kind {
            kind::EXEC => actions.push(Action::emit(exec(ev, at, outside))),
            kind::FORK => actions.push(Action::emit(fork(ev, at, outside))),
            kind::NEW_PIDNS => actions.push(Action::emit(new_pidns(ev, at))),
            // A runtime's own setup process (the kernel knows it by its
            // executable: its parent's, or a memfd copy) is not a container
            // process: its first exec of anything else is the finding. Any
            // other task moved in is one now. Where the kernel could not read
            // the executables, the move is reported rather than guessed away.
            kind::ATTACH if ev.flags & flags::RUNTIME_SETUP == 0 => {
                let f = finding(ev, Trigger::CgroupAttach, at);
                actions.push(Action::emit(WatchEvent::HostPidns(f)));
                actions.push(Action::TrackTask {
                    pid: ev.pid,
                    anchor,
                });
            }
            kind::SETNS => actions.extend(
                self.namespaces
                    .judge(ev, &at, allowed)
                    .into_iter()
                    .map(|e| Action::emit(enforced(ev, e))),
            ),
            _ => {}
        }
    }
}

/// A finding about the event's process, with its parent (exec, fork) or the
/// process that moved it (attach).
fn finding(ev: &Event, trigger: Trigger, at: Envelope) -> Finding {
    let mut f = Finding::new(trigger, at);
    f.ppid = (ev.ppid != 0).then_some(ev.ppid);
    f.enforced = killed(ev);
    f
}

/// Whether the probe killed the event's subject (`--enforce`).
fn killed(ev: &Event) -> Option<Enforced> {
    (ev.flags & flags::ENFORCED != 0).then_some(Enforced::Killed)
}

/// A setns event (and the finding a setns into the host PID namespace
/// makes) says whether the probe killed its caller.
fn enforced(ev: &Event, mut e: WatchEvent) -> WatchEvent {
    match &mut e {
        WatchEvent::Setns(s) => s.enforced = killed(ev),
        WatchEvent::HostPidns(f) => f.enforced = killed(ev),
        _ => {}
    }
    e
}

fn exec(ev: &Event, at: Envelope, outside: bool) -> WatchEvent {
    let mut f = finding(ev, Trigger::Exec, at);
    f.outside_cgroup = outside;
    let file = cstr(&ev.data);
    f.filename = (!file.is_empty()).then(|| String::from_utf8_lossy(file).into_owned());
    if ev.flags & flags::CLONE_FLAGS != 0 {
        f.clone_flags = Some(CloneFlags::new(ev.arg));
    }
    WatchEvent::HostPidns(f)
}

fn fork(ev: &Event, at: Envelope, outside: bool) -> WatchEvent {
    let namespaces = ev.arg & u64::from(NS_FLAGS & !CLONE_NEWPID);
    let trigger = if namespaces != 0 {
        Trigger::Clone
    } else {
        Trigger::Fork
    };
    let mut f = finding(ev, trigger, at);
    f.clone_flags = Some(CloneFlags::new(ev.arg));
    f.exited = ev.flags & flags::EXITED != 0;
    f.outside_cgroup = outside;
    WatchEvent::HostPidns(f)
}

/// The event's subject is the child; the envelope names the parent.
fn new_pidns(ev: &Event, mut at: Envelope) -> WatchEvent {
    let via = if ev.arg & u64::from(CLONE_NEWPID) != 0 {
        NewPidnsVia::Clone
    } else {
        NewPidnsVia::UnshareOrSetns
    };
    at.pid = ev.ppid;
    WatchEvent::NewPidns(NewPidnsEvent {
        via,
        at,
        clone_flags: CloneFlags::new(ev.arg),
        child_pid: ev.pid,
        pidns_inode: ev.ns_inum,
        latency_us: None,
    })
}

#[cfg(test)]
mod tests {
    use pidns_ebpf::{flags, kind};

    use super::super::testing::*;
    use crate::{
        report::{Envelope, Finding, NewPidnsEvent, NewPidnsVia, Trigger, WatchEvent},
        watch::attribute::Action,
    };

    #[test]
    fn exec_fork_and_new_pid_namespaces() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);

        let out = a.handle(&event(kind::EXEC, 10, 42, "sleep", "/bin/sleep"));
        let [WatchEvent::HostPidns(f)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (f.trigger, f.at.pid, f.at.comm.as_str()),
            (Trigger::Exec, 42, "sleep")
        );
        assert_eq!(f.at.container.id, ID);
        assert_eq!(f.filename.as_deref(), Some("/bin/sleep"));
        // stamped by the output as the line is written, not here
        assert_eq!(f.latency_us, None);
        assert_eq!(f.clone_flags, None);

        // a vfork child, reported at its exec with the flags it was created with
        let mut exec = event(kind::EXEC, 10, 44, "true", "/bin/true");
        exec.flags = flags::CLONE_FLAGS;
        exec.arg = 0x4100;
        let out = a.handle(&exec);
        let [WatchEvent::HostPidns(f)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        let flags = f.clone_flags.as_ref().expect("flags");
        assert_eq!(
            (flags.hex.as_str(), &flags.names[..]),
            ("0x4100", &["CLONE_VM", "CLONE_VFORK"][..])
        );

        // glibc's fork(): clone(CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID, SIGCHLD)
        let mut fork = event(kind::FORK, 10, 43, "sh", "");
        fork.arg = 0x1200000;
        let out = a.handle(&fork);
        let [WatchEvent::HostPidns(f)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(f.trigger, Trigger::Fork);
        let flags = f.clone_flags.as_ref().expect("flags");
        assert_eq!(flags.hex, "0x1200000");
        assert_eq!(flags.names, ["CLONE_CHILD_CLEARTID", "CLONE_CHILD_SETTID"]);
        let json = serde_json::to_value(WatchEvent::HostPidns(f.clone())).expect("json");
        assert_eq!(json["clone_flags"], "0x1200000");
        assert_eq!(json["clone_flag_names"][1], "CLONE_CHILD_SETTID");
        // musl's fork: no flag at all
        fork.arg = 0;
        assert!(matches!(
            findings(&a.handle(&fork))[..],
            [WatchEvent::HostPidns(Finding {
                trigger: Trigger::Fork,
                ..
            })]
        ));
        fork.arg = 0x1200000 | u64::from(MNT);
        assert!(matches!(
            findings(&a.handle(&fork))[..],
            [WatchEvent::HostPidns(Finding {
                trigger: Trigger::Clone,
                ..
            })]
        ));

        // children in another PID namespace: informational, with how they got there
        let mut child = event(kind::NEW_PIDNS, 10, 50, "unshare", "");
        child.ppid = 49;
        child.ns_inum = 4026532999;
        child.arg = u64::from(PID | MNT);
        let out = a.handle(&child);
        let [WatchEvent::NewPidns(n)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (
                n.via,
                n.at.pid,
                n.child_pid,
                n.pidns_inode,
                n.at.comm.as_str()
            ),
            (NewPidnsVia::Clone, 49, 50, 4026532999, "unshare")
        );
        let json = serde_json::to_value(WatchEvent::NewPidns(n.clone())).expect("json");
        assert_eq!(
            (
                json["event"].as_str(),
                json["via"].as_str(),
                json["clone_flags"].as_str()
            ),
            (Some("new_pidns"), Some("clone"), Some("0x20020000"))
        );
        assert_eq!(json["container_id"], ID);
        child.arg = 0;
        assert!(matches!(
            findings(&a.handle(&child))[..],
            [WatchEvent::NewPidns(NewPidnsEvent {
                via: NewPidnsVia::UnshareOrSetns,
                ..
            })]
        ));
    }

    #[test]
    fn what_the_probe_killed_says_so() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        for (kind, trigger) in [
            (kind::EXEC, Trigger::Exec),
            (kind::FORK, Trigger::Fork),
            (kind::ATTACH, Trigger::CgroupAttach),
        ] {
            let mut e = event(kind, 10, 60, "sh", "/bin/sh");
            let out = a.handle(&e);
            let [WatchEvent::HostPidns(f)] = findings(&out)[..] else {
                panic!("{out:?}")
            };
            assert_eq!((f.trigger, f.enforced), (trigger, None));
            e.flags = flags::ENFORCED;
            let out = a.handle(&e);
            let [WatchEvent::HostPidns(f)] = findings(&out)[..] else {
                panic!("{out:?}")
            };
            assert_eq!(f.enforced, Some(crate::report::Enforced::Killed));
            let json = serde_json::to_value(WatchEvent::HostPidns(f.clone())).expect("json");
            assert_eq!(json["enforced"], "killed");
        }
        // a setns the probe killed, and one it did not
        namespaces_fixture(dir.path());
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        let mut e = setns(10, 201, MNT, HOST_NS[0], 0);
        let out = a.handle(&e);
        let [WatchEvent::Setns(s)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(s.enforced, None);
        e.flags |= flags::ENFORCED;
        let out = a.handle(&e);
        let [WatchEvent::Setns(s)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(s.enforced, Some(crate::report::Enforced::Killed));
    }

    #[test]
    fn runtime_setup_is_the_kernels_verdict_not_a_name() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        // judged a runtime's setup process: nothing, whatever it is called
        for comm in ["runc:[0:PARENT]", "runc-alt", "bash"] {
            let mut e = event(kind::ATTACH, 10, 50, comm, "");
            e.flags = flags::RUNTIME_SETUP;
            assert!(findings(&a.handle(&e)).is_empty(), "{comm}");
            e.flags |= flags::INTO_CGROUP;
            assert!(findings(&a.handle(&e)).is_empty(), "{comm}");
        }
        // anything else moved in is a container process now, even if named like a runtime
        for (comm, extra) in [("bash", 0), ("runc", 0), ("exe", flags::EXE_UNKNOWN)] {
            let mut e = event(kind::ATTACH, 10, 51, comm, "");
            e.flags = extra;
            let out = a.handle(&e);
            assert!(
                matches!(
                    findings(&out)[..],
                    [WatchEvent::HostPidns(Finding {
                        trigger: Trigger::CgroupAttach,
                        at: Envelope { pid: 51, .. },
                        ..
                    })]
                ),
                "{comm}: {out:?}"
            );
            assert!(out.contains(&Action::TrackTask {
                pid: 51,
                anchor: 10
            }));
        }
        // and a payload called runc is an exec like any other
        let out = a.handle(&event(kind::EXEC, 10, 52, "runc", "/tmp/runc"));
        assert_eq!(findings(&out).len(), 1, "{out:?}");
    }
}
