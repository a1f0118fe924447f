//! From kernel events to findings: which container an event belongs to, and
//! what to tell the kernel so that it filters the next ones itself.
//!
//! The probes send what may matter; this decides. It knows every cgroup by
//! its v2 id (from a walk of the unified hierarchy at start-up and from the
//! probes' mkdir events since), classifies each path with the same layout
//! rules as `scan`, and hands the class back to the kernel's `CGROUPS` map.
//! Attribution rests on the cgroup id carried in the event, never on reading
//! /proc afterwards; /proc is only a fallback for a cgroup not seen before.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::SystemTime,
};

use pidns_ebpf::{Event, NS_TYPES, class, kind};

use crate::{
    allow::{AllowList, Subject},
    engine::{self, ContainerKey},
    names::NameResolver,
    parse::layout::{self, Role},
    procfs::ProcRoot,
    report::{ScanReport, Verdict},
    watch::events::{ContainerRef, Finding, SetnsEvent, Trigger, WatchEvent},
};

/// What to do after an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Emit(Box<WatchEvent>),
    /// Tell the kernel how to treat a cgroup from now on.
    Classify {
        cgroup_id: u64,
        class: u32,
    },
    /// Report this process's children that stay in the host PID namespace.
    TrackTask {
        pid: u32,
    },
}

impl Action {
    pub fn emit(e: WatchEvent) -> Action {
        Action::Emit(Box::new(e))
    }
}

/// Converts `bpf_ktime_get_ns` (CLOCK_MONOTONIC) to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// realtime − monotonic, in ns.
    offset_ns: i128,
}

impl Clock {
    pub fn now() -> Clock {
        let mono = monotonic_ns();
        let real = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        Clock {
            offset_ns: real - i128::from(mono),
        }
    }

    pub fn wall(&self, ktime_ns: u64) -> SystemTime {
        let ns = i128::from(ktime_ns) + self.offset_ns;
        SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
    }

    pub fn rfc3339(&self, ktime_ns: u64) -> String {
        humantime::format_rfc3339_nanos(self.wall(ktime_ns)).to_string()
    }
}

pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            (t.tv_sec() as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(t.tv_nsec() as u64)
        })
        .unwrap_or(0)
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

#[derive(Debug, Clone)]
struct Cgroup {
    class: Option<u32>,
    container: Option<ContainerKey>,
    /// `/<namespace>/<id>`: a container only if a containerd shim confirms it.
    unconfirmed: bool,
}

#[derive(Debug, Clone)]
struct Known {
    reference: ContainerRef,
    allowed: bool,
}

pub struct Attributor {
    proc: ProcRoot,
    allow: AllowList,
    names: Option<NameResolver>,
    host_root: Option<PathBuf>,
    host_pidns_ino: u64,
    cgroups: HashMap<u64, Cgroup>,
    containers: HashMap<ContainerKey, Known>,
    clock: Clock,
    /// Events whose cgroup could not be placed (the process was gone and the
    /// cgroup never seen).
    pub unattributed: u64,
}

const CONTAINERD_TASKS: &str = "run/containerd/io.containerd.runtime.v2.task";

/// `CLONE_NEW*` flags other than `CLONE_NEWPID`.
const NS_FLAGS_BUT_PID: u64 =
    0x0002_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x4000_0000 | 0x0200_0000 | 0x80;

impl Attributor {
    pub fn new(
        proc: ProcRoot,
        allow: AllowList,
        names: Option<NameResolver>,
        host_root: Option<PathBuf>,
        host_pidns_ino: u64,
    ) -> Self {
        Attributor {
            proc,
            allow,
            names,
            host_root,
            host_pidns_ino,
            cgroups: HashMap::new(),
            containers: HashMap::new(),
            clock: Clock::now(),
            unattributed: 0,
        }
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Records a cgroup's path; returns the class to give the kernel, if decided.
    pub fn learn(&mut self, cgroup_id: u64, path: &[u8]) -> Option<Action> {
        let (class, container, unconfirmed) = match layout::classify(path) {
            None => (Some(class::HOST), None, false),
            Some(m) if m.role == Role::Monitor => (Some(class::HOST), None, false),
            Some(m) => {
                let placement = engine::Placement::from_match(m, path);
                let unconfirmed =
                    placement.needs_confirmation && !self.containerd_task_exists(&placement);
                let key = placement.key.clone();
                let allowed = self.known(&placement).allowed;
                let class = match (unconfirmed, allowed) {
                    (true, _) => None,
                    (false, true) => Some(class::ALLOWED),
                    (false, false) => Some(class::CONTAINER),
                };
                (class, Some(key), unconfirmed)
            }
        };
        self.cgroups.insert(
            cgroup_id,
            Cgroup {
                class,
                container,
                unconfirmed,
            },
        );
        class.map(|class| Action::Classify { cgroup_id, class })
    }

    pub fn forget(&mut self, cgroup_id: u64) {
        self.cgroups.remove(&cgroup_id);
    }

    fn containerd_task_exists(&self, p: &engine::Placement) -> bool {
        match (&self.host_root, &p.namespace) {
            (Some(root), Some(ns)) => root
                .join(CONTAINERD_TASKS)
                .join(ns)
                .join(&p.key.id)
                .is_dir(),
            _ => false,
        }
    }

    /// The container's reference and allow status, resolving names once.
    fn known(&mut self, p: &engine::Placement) -> &Known {
        if !self.containers.contains_key(&p.key) {
            let (name, pod) = engine::describe(self.names.as_ref(), p);
            let reference = ContainerRef {
                container_id: p.key.id.clone(),
                runtime: p.key.runtime,
                name,
                pod,
                cgroup: p.cgroup.clone(),
            };
            let allowed = self.allow.matches(Subject {
                id: &reference.container_id,
                name: reference.name.as_deref(),
                pod: reference.pod.as_ref(),
                containerd_namespace: p.namespace.as_deref(),
            });
            self.containers
                .insert(p.key.clone(), Known { reference, allowed });
        }
        &self.containers[&p.key]
    }

    /// The container an event's cgroup belongs to, and any class to hand back.
    fn container_of(
        &mut self,
        cgroup_id: u64,
        pid: u32,
        actions: &mut Vec<Action>,
    ) -> Option<Known> {
        if !self.cgroups.contains_key(&cgroup_id) {
            // Not seen at start-up nor created since: ask /proc while the process lives.
            let mut buf = Vec::new();
            let path = self
                .proc
                .read_into(pid, "cgroup", &mut buf)
                .ok()
                .and_then(|()| {
                    crate::parse::cgroup::parse(&buf)
                        .find(|l| l.is_unified())
                        .map(|l| l.path.to_vec())
                });
            match path {
                Some(path) => actions.extend(self.learn(cgroup_id, &path)),
                None => {
                    self.unattributed += 1;
                    return None;
                }
            }
        }
        let cg = self.cgroups.get(&cgroup_id)?.clone();
        let key = cg.container?;
        if cg.unconfirmed {
            let mut ancestry = engine::Ancestry::new(&self.proc);
            if !ancestry.has_shim_ancestor(pid) {
                return None;
            }
            let class = if self.containers.get(&key).is_some_and(|k| k.allowed) {
                class::ALLOWED
            } else {
                class::CONTAINER
            };
            if let Some(entry) = self.cgroups.get_mut(&cgroup_id) {
                entry.unconfirmed = false;
                entry.class = Some(class);
            }
            actions.push(Action::Classify { cgroup_id, class });
        }
        self.containers.get(&key).cloned()
    }

    /// Decides what a kernel event means.
    pub fn handle(&mut self, ev: &Event, now_mono_ns: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        match ev.kind {
            kind::CGROUP_MKDIR => {
                actions.extend(self.learn(ev.cgroup_id, cstr(&ev.data)));
                return actions;
            }
            kind::CGROUP_RMDIR => {
                self.forget(ev.cgroup_id);
                return actions;
            }
            kind::EXEC | kind::FORK | kind::ATTACH | kind::SETNS => {}
            _ => return actions,
        }
        let Some(known) = self.container_of(ev.cgroup_id, ev.pid, &mut actions) else {
            return actions;
        };
        if known.allowed {
            return actions;
        }
        // The kernel marks container processes only in cgroups it knows to be
        // containers'; for one it did not know yet, track the process here.
        if ev.flags & pidns_ebpf::flags::UNCLASSIFIED != 0
            && matches!(ev.kind, kind::EXEC | kind::FORK)
        {
            actions.push(Action::TrackTask { pid: ev.pid });
        }
        let container = known.reference;
        let comm = String::from_utf8_lossy(cstr(&ev.comm)).into_owned();
        let ts = self.clock.rfc3339(ev.ktime_ns);
        let latency_us = Some(now_mono_ns.saturating_sub(ev.ktime_ns) / 1000);
        let finding = |trigger: Trigger| Finding {
            trigger,
            pid: ev.pid,
            comm: comm.clone(),
            container: container.clone(),
            ts: ts.clone(),
            ppid: (ev.ppid != 0).then_some(ev.ppid),
            filename: None,
            clone_flags: None,
            latency_us,
        };
        match ev.kind {
            kind::EXEC => {
                let mut f = finding(Trigger::Exec);
                let file = cstr(&ev.data);
                f.filename = (!file.is_empty()).then(|| String::from_utf8_lossy(file).into_owned());
                actions.push(Action::emit(WatchEvent::HostPidns(f)));
            }
            kind::FORK => {
                let trigger = if ev.arg & NS_FLAGS_BUT_PID != 0 {
                    Trigger::Clone
                } else {
                    Trigger::Fork
                };
                let mut f = finding(trigger);
                f.clone_flags = Some(format!("{:#x}", ev.arg));
                actions.push(Action::emit(WatchEvent::HostPidns(f)));
            }
            // Runtimes move their own setup process into the cgroup; the
            // kernel keeps such a task out of the findings until it execs
            // something else.
            kind::ATTACH if !Self::is_runtime_setup(&comm) => {
                actions.push(Action::emit(WatchEvent::HostPidns(finding(
                    Trigger::CgroupAttach,
                ))));
                actions.push(Action::TrackTask { pid: ev.pid });
            }
            kind::SETNS => {
                let nstype = NS_TYPES
                    .iter()
                    .find(|(flag, _)| *flag == ev.nstype)
                    .map_or("unknown", |(_, name)| name);
                let ok = ev.ret == 0;
                if ok && nstype == "pid" {
                    actions.push(Action::emit(WatchEvent::HostPidns(finding(Trigger::Setns))));
                }
                actions.push(Action::emit(WatchEvent::Setns(SetnsEvent {
                    nstype,
                    target: "host",
                    ok,
                    error: (!ok).then(|| format!("{:?}", nix::errno::Errno::from_raw(-ev.ret))),
                    pid: ev.pid,
                    comm,
                    container,
                    ts,
                    ns_inode: ev.ns_inum,
                    latency_us,
                })));
            }
            _ => {}
        }
        actions
    }

    /// Findings (trigger `scan` or `poll`) for every host-PID process of every
    /// container a scan says shares the host PID namespace and is not allowed.
    pub fn scan_findings(report: &ScanReport, trigger: Trigger) -> Vec<Action> {
        let ts = now_rfc3339();
        let mut out = Vec::new();
        for c in report
            .containers
            .iter()
            .filter(|c| c.verdict == Verdict::Shares)
        {
            let container = ContainerRef {
                container_id: c.id.clone(),
                runtime: c.runtime,
                name: c.name.clone(),
                pod: c.pod.clone(),
                cgroup: c.cgroup.clone(),
            };
            for p in &c.host_pidns_processes {
                out.push(Action::emit(WatchEvent::HostPidns(Finding {
                    trigger,
                    pid: p.pid,
                    comm: p.comm.clone().unwrap_or_default(),
                    container: container.clone(),
                    ts: ts.clone(),
                    ppid: None,
                    filename: None,
                    clone_flags: None,
                    latency_us: None,
                })));
                out.push(Action::TrackTask { pid: p.pid });
            }
        }
        out
    }

    /// Whether a process moved into a container cgroup is a runtime's own, by
    /// name: `runc`, its `runc:[N:...]` stages, shims and monitors, and `exe`,
    /// which is what `runc init` is called when started through
    /// `/proc/self/exe`. The kernel keeps such a task out of the findings
    /// until it execs something other than a runtime, and that exec is then
    /// the finding.
    fn is_runtime_setup(comm: &str) -> bool {
        engine::is_runtime_process(comm) || comm.starts_with("runc:[") || comm == "exe"
    }

    pub fn host_pidns_ino(&self) -> u64 {
        self.host_pidns_ino
    }

    pub fn proc_root(&self) -> &Path {
        self.proc.path()
    }
}

/// The bytes before the first NUL.
fn cstr(bytes: &[u8]) -> &[u8] {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes, |n| &bytes[..n])
}

/// Decodes one ring-buffer record. The kernel writes [`Event`]s only; a
/// record of another size is refused rather than misread.
pub fn decode(bytes: &[u8]) -> Option<Event> {
    if bytes.len() < std::mem::size_of::<Event>() {
        return None;
    }
    // SAFETY: Event is plain old data (integers and byte arrays); any bit
    // pattern is valid, and read_unaligned copes with the record's alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Event>()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pidns_ebpf::{COMM_LEN, DATA_LEN};

    const ID: &str = "c6e94367ab9335599a46308fb7deaf45f923aae7c1e7f971dc89871f499e4cfc";
    const HOST: u64 = 4026531836;

    fn event(kind: u32, cgroup_id: u64, pid: u32, comm: &str, data: &str) -> Event {
        let mut c = [0u8; COMM_LEN];
        c[..comm.len()].copy_from_slice(comm.as_bytes());
        let mut d = [0u8; DATA_LEN];
        d[..data.len()].copy_from_slice(data.as_bytes());
        Event {
            kind,
            flags: 0,
            ktime_ns: 1_000_000,
            cgroup_id,
            pid,
            tid: pid,
            ppid: 1,
            nstype: 0,
            ns_inum: 0,
            ret: 0,
            arg: 0,
            comm: c,
            data: d,
        }
    }

    fn attributor(proc: &Path, allow: &[&str]) -> Attributor {
        let proc = ProcRoot::open(proc).expect("proc root");
        Attributor::new(
            proc,
            AllowList::new(allow.iter().map(|s| s.to_string())),
            None,
            None,
            HOST,
        )
    }

    fn findings(actions: &[Action]) -> Vec<&WatchEvent> {
        actions
            .iter()
            .filter_map(|a| {
                if let Action::Emit(e) = a {
                    Some(&**e)
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn decode_round_trip_and_short_records() {
        let e = event(kind::EXEC, 7, 42, "sleep", "/bin/sleep");
        // SAFETY: reading the bytes of a plain-data struct.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&e as *const Event).cast::<u8>(),
                std::mem::size_of::<Event>(),
            )
        };
        let d = decode(bytes).expect("decodes");
        assert_eq!(
            (d.kind, d.cgroup_id, d.pid, cstr(&d.comm)),
            (kind::EXEC, 7, 42, &b"sleep"[..])
        );
        assert!(decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode(&[]).is_none());
    }

    #[test]
    fn cgroups_are_classified_for_the_kernel() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &[]);
        assert_eq!(
            a.learn(10, format!("/docker/{ID}").as_bytes()),
            Some(Action::Classify {
                cgroup_id: 10,
                class: class::CONTAINER
            })
        );
        assert_eq!(
            a.learn(11, b"/system.slice/cron.service"),
            Some(Action::Classify {
                cgroup_id: 11,
                class: class::HOST
            })
        );
        assert_eq!(
            a.learn(12, b"/libpod_parent/conmon"),
            Some(Action::Classify {
                cgroup_id: 12,
                class: class::HOST
            })
        );
        // ctr's /<namespace>/<id> waits for confirmation
        assert_eq!(a.learn(13, b"/default/web"), None);
        let mut b = attributor(dir.path(), &[&ID[..12]]);
        assert_eq!(
            b.learn(10, format!("/docker/{ID}").as_bytes()),
            Some(Action::Classify {
                cgroup_id: 10,
                class: class::ALLOWED
            })
        );
    }

    #[test]
    fn exec_fork_attach_and_setns() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &[]);
        let mkdir = event(kind::CGROUP_MKDIR, 10, 5, "runc", &format!("/docker/{ID}"));
        assert_eq!(
            a.handle(&mkdir, 0),
            vec![Action::Classify {
                cgroup_id: 10,
                class: class::CONTAINER
            }]
        );

        let out = a.handle(&event(kind::EXEC, 10, 42, "sleep", "/bin/sleep"), 3_000_000);
        let [WatchEvent::HostPidns(f)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (f.trigger, f.pid, f.comm.as_str()),
            (Trigger::Exec, 42, "sleep")
        );
        assert_eq!(f.container.container_id, ID);
        assert_eq!(f.filename.as_deref(), Some("/bin/sleep"));
        assert_eq!(f.latency_us, Some(2000));

        let mut fork = event(kind::FORK, 10, 43, "sh", "");
        fork.arg = 0x1200011;
        let out = a.handle(&fork, 0);
        let [WatchEvent::HostPidns(f)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (f.trigger, f.clone_flags.as_deref()),
            (Trigger::Fork, Some("0x1200011"))
        );
        fork.arg = 0x1200011 | 0x0002_0000;
        assert!(matches!(
            findings(&a.handle(&fork, 0))[..],
            [WatchEvent::HostPidns(Finding {
                trigger: Trigger::Clone,
                ..
            })]
        ));

        // runc's own setup process being moved in is not a finding; anything else is
        assert!(findings(&a.handle(&event(kind::ATTACH, 10, 50, "runc", ""), 0)).is_empty());
        assert!(
            findings(&a.handle(&event(kind::ATTACH, 10, 50, "runc:[2:INIT]", ""), 0)).is_empty()
        );
        assert!(findings(&a.handle(&event(kind::ATTACH, 10, 50, "exe", ""), 0)).is_empty());
        let out = a.handle(&event(kind::ATTACH, 10, 51, "bash", ""), 0);
        assert!(matches!(
            findings(&out)[..],
            [WatchEvent::HostPidns(Finding {
                trigger: Trigger::CgroupAttach,
                pid: 51,
                ..
            })]
        ));
        assert!(out.contains(&Action::TrackTask { pid: 51 }));

        let mut setns = event(kind::SETNS, 10, 60, "nsenter", "");
        setns.nstype = 0x0002_0000;
        setns.ret = -1;
        let out = a.handle(&setns, 0);
        let [WatchEvent::Setns(s)] = findings(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(
            (s.nstype, s.ok, s.error.as_deref()),
            ("mnt", false, Some("EPERM"))
        );
        setns.nstype = 0x2000_0000;
        setns.ret = 0;
        let out = a.handle(&setns, 0);
        assert!(matches!(
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
        ));
    }

    #[test]
    fn host_cgroups_and_allowed_containers_emit_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &["c6e94367ab93"]);
        a.learn(11, b"/user.slice");
        assert!(
            a.handle(&event(kind::EXEC, 11, 42, "ls", "/bin/ls"), 0)
                .is_empty()
        );
        a.learn(10, format!("/docker/{ID}").as_bytes());
        assert!(findings(&a.handle(&event(kind::EXEC, 10, 42, "ls", "/bin/ls"), 0)).is_empty());
    }

    #[test]
    fn unknown_cgroups_are_placed_through_proc_while_the_process_lives() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(dir.path().join("42")).expect("pid dir");
        std::fs::write(
            dir.path().join("42/cgroup"),
            format!("4:memory:/docker/{ID}\n0::/docker/{ID}\n"),
        )
        .expect("cgroup");
        let mut a = attributor(dir.path(), &[]);
        let mut e = event(kind::EXEC, 99, 42, "sleep", "/bin/sleep");
        e.flags = pidns_ebpf::flags::UNCLASSIFIED;
        let out = a.handle(&e, 0);
        assert!(
            out.contains(&Action::Classify {
                cgroup_id: 99,
                class: class::CONTAINER
            }),
            "{out:?}"
        );
        assert!(out.contains(&Action::TrackTask { pid: 42 }), "{out:?}");
        assert_eq!(findings(&out).len(), 1);
        // gone, never seen: nothing to attribute, and it is counted
        let gone = event(kind::EXEC, 100, 4242, "x", "");
        assert!(a.handle(&gone, 0).is_empty());
        assert_eq!(a.unattributed, 1);
    }

    #[test]
    fn containerd_namespace_layout_is_confirmed_by_a_shim() {
        let dir = tempfile::tempdir().expect("tmp");
        for (pid, name, ppid) in [(70, "containerd-shim", 1), (71, "sleep", 70)] {
            std::fs::create_dir(dir.path().join(pid.to_string())).expect("pid dir");
            std::fs::write(
                dir.path().join(format!("{pid}/status")),
                format!("Name:\t{name}\nPPid:\t{ppid}\nNSpid:\t{pid}\n"),
            )
            .expect("status");
        }
        let mut a = attributor(dir.path(), &[]);
        assert_eq!(a.learn(20, b"/default/web"), None);
        let out = a.handle(&event(kind::EXEC, 20, 71, "sleep", "/bin/sleep"), 0);
        assert!(
            out.contains(&Action::Classify {
                cgroup_id: 20,
                class: class::CONTAINER
            }),
            "{out:?}"
        );
        assert_eq!(findings(&out).len(), 1);
        // with no shim behind it, the same shape is not a container
        assert_eq!(a.learn(21, b"/actions_job/abc"), None);
        assert!(
            a.handle(&event(kind::EXEC, 21, 4000, "job", ""), 0)
                .is_empty()
        );
    }

    #[test]
    fn scan_findings_cover_each_host_process() {
        use crate::report::*;
        let mk = |verdict: Verdict| Container {
            id: ID.into(),
            runtime: crate::parse::layout::Runtime::Docker,
            name: Some("hp".into()),
            pod: None,
            containerd_namespace: None,
            cgroup: format!("/docker/{ID}"),
            enclosed_by: Vec::new(),
            shares_host_pidns: Some(true),
            verdict,
            pids: vec![1, 2],
            pidns_inodes: vec![HOST],
            host_pidns_processes: vec![
                ProcessEvidence {
                    pid: 1,
                    comm: Some("a".into()),
                    pidns_inode: Some(HOST),
                    method: Method::NsLink,
                    children_pidns_inode: None,
                },
                ProcessEvidence {
                    pid: 2,
                    comm: Some("b".into()),
                    pidns_inode: Some(HOST),
                    method: Method::NsLink,
                    children_pidns_inode: None,
                },
            ],
            runtime_pids: vec![],
            shares_pidns_with: vec![],
            unknown_reason: None,
            allowed_by: None,
        };
        let report = |c: Container| ScanReport {
            schema: SCHEMA,
            pidns_version: "x",
            proc_root: "/proc".into(),
            scanned_at: String::new(),
            duration_ms: 0.0,
            host_pidns: HostPidns {
                inode: Some(HOST),
                method: HostMethod::NsLink,
                host_pid: 1,
                inode_source_pid: None,
                procfs_own: true,
            },
            containers: vec![c],
            summary: Summary::default(),
            warnings: vec![],
        };
        let out = Attributor::scan_findings(&report(mk(Verdict::Shares)), Trigger::Scan);
        assert_eq!(findings(&out).len(), 2);
        assert!(out.contains(&Action::TrackTask { pid: 2 }));
        assert!(Attributor::scan_findings(&report(mk(Verdict::Allowed)), Trigger::Scan).is_empty());
    }
}
