//! The cgroup table: every cgroup by its v2 id (from a walk of the unified
//! hierarchy at start-up and from the probes' mkdir events since), classified
//! with the same layout rules as `scan`, and the containers they belong to,
//! named and judged by the allow rule once each. The class goes back to the
//! kernel's `CGROUPS` map.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
};

use pidns_ebpf::class;

use super::Action;
use crate::{
    allow::{AllowList, Subject},
    engine::{self, Ancestry, Placement},
    names::{self, NameResolver},
    parse::{
        cgroup,
        layout::{self, Role},
    },
    procfs::ProcRoot,
    report::{ContainerKey, Identity},
    watch::cgroupfs,
};

/// Bound on the search below a cut-short cgroup path. Each cut mkdir event
/// costs up to this many directories, and a container that can make
/// cgroups can send them in a loop: a few thousand keeps one event to
/// milliseconds. A cgroup not found within it stays unknown until its
/// process shows its path in /proc.
const MAX_DIRS_SEARCHED: usize = 4096;

#[derive(Debug, Clone)]
struct Cgroup {
    class: Option<u32>,
    container: Option<ContainerKey>,
    /// `/<namespace>/<id>`: a container only if a containerd shim confirms it.
    unconfirmed: bool,
    /// The container's own cgroup, not one below it.
    own: bool,
    /// A container's cgroup: its path (where an escape came from).
    path: Option<Box<str>>,
}

/// A container the table has seen: named, and judged once.
#[derive(Debug, Clone)]
pub struct Known {
    pub identity: Identity,
    /// `--allow`: may share the host PID namespace.
    pub allowed: bool,
    /// `--allow-setns`: may join host namespaces.
    pub allowed_setns: bool,
    /// Which container, for judging its claim ([`crate::engine::claim`]).
    pub key: ContainerKey,
    /// containerd's namespace, when that runtime's.
    pub namespace: Option<String>,
}

impl Known {
    /// The kernel's class for the container's cgroups.
    pub fn class(&self) -> u32 {
        let mut c = class::CONTAINER;
        if self.allowed {
            c |= class::ALLOW_SHARE;
        }
        if self.allowed_setns {
            c |= class::ALLOW_SETNS;
        }
        c
    }
}

/// What an event's cgroup says about its process.
#[derive(Debug)]
pub enum Lookup {
    Container(Box<Known>),
    /// Not a container's (or not confirmed as one).
    Host,
    /// A cgroup never seen, whose process is gone: nothing to attribute.
    Unplaced,
}

pub struct CgroupTable {
    allow: AllowList,
    allow_setns: AllowList,
    /// Unqualified allow entries and the runtimes whose containers they
    /// matched by name; said once on stderr when there are two.
    ambiguity: HashMap<String, BTreeSet<crate::report::Runtime>>,
    /// A container's own cgroup id, which its sub-cgroups share budgets with.
    own_ids: HashMap<ContainerKey, u64>,
    /// The container pidns runs in.
    own: Option<ContainerKey>,
    names: Option<NameResolver>,
    host_root: Option<PathBuf>,
    /// The unified hierarchy, to find a cgroup whose path the kernel cut short.
    root: Option<PathBuf>,
    cgroups: HashMap<u64, Cgroup>,
    containers: HashMap<ContainerKey, Known>,
}

impl CgroupTable {
    pub fn new(
        allow: AllowList,
        allow_setns: AllowList,
        own: Option<ContainerKey>,
        names: Option<NameResolver>,
        host_root: Option<PathBuf>,
    ) -> Self {
        CgroupTable {
            allow,
            allow_setns,
            ambiguity: HashMap::new(),
            own_ids: HashMap::new(),
            own,
            names,
            host_root,
            root: None,
            cgroups: HashMap::new(),
            containers: HashMap::new(),
        }
    }

    pub fn set_root(&mut self, root: PathBuf) {
        self.root = Some(root);
    }

    /// The unified hierarchy, when known.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// The class given to a cgroup: `None` when never seen, `Some(None)`
    /// when seen but not decided yet.
    pub fn class(&self, cgroup_id: u64) -> Option<Option<u32>> {
        self.cgroups.get(&cgroup_id).map(|c| c.class)
    }

    /// The container a cgroup was placed in.
    #[cfg(test)]
    pub fn container(&self, cgroup_id: u64) -> Option<ContainerKey> {
        self.cgroups.get(&cgroup_id)?.container.clone()
    }

    /// Records a cgroup's path; returns the class to give the kernel, if decided.
    pub fn learn(&mut self, cgroup_id: u64, path: &[u8]) -> Option<Action> {
        let mut own = false;
        let (class, container, unconfirmed) = match layout::classify(path) {
            None => (Some(class::HOST), None, false),
            Some(m) if m.role == Role::Monitor => (Some(class::HOST), None, false),
            Some(m) => {
                own = m.cgroup_len == path.len();
                let mut placement = Placement::from_match(m, path);
                let unconfirmed = placement.needs_confirmation
                    && !containerd_task_exists(self.host_root.as_deref(), &placement);
                // Named as `scan` names it (`docker run --cgroup-parent`).
                engine::refine_runtime(&mut placement, self.host_root.as_deref());
                let key = placement.key.clone();
                if own {
                    self.own_ids.insert(key.clone(), cgroup_id);
                }
                let known = self.known(&placement).class();
                let class = (!unconfirmed).then_some(known);
                (class, Some(key), unconfirmed)
            }
        };
        let budget = container
            .as_ref()
            .and_then(|k| self.own_ids.get(k).copied())
            .unwrap_or(0);
        let path = container
            .is_some()
            .then(|| String::from_utf8_lossy(path).into());
        self.cgroups.insert(
            cgroup_id,
            Cgroup {
                class,
                container,
                unconfirmed,
                own,
                path,
            },
        );
        class.map(|class| Action::Classify {
            cgroup_id,
            class,
            container: budget,
        })
    }

    /// A new cgroup's path as the kernel sent it, flagged as possibly cut
    /// short: a cut path can name the wrong container (its outer one, or a
    /// prefix of an id), so it is never classified; the full path is looked
    /// up by the cgroup's id instead, and failing that the cgroup stays
    /// unknown until an event's process shows its path in /proc.
    pub fn learn_cut(&mut self, cgroup_id: u64, cut: &[u8]) -> Option<Action> {
        let root = self.root.clone()?;
        let full = cgroupfs::find_by_id(&root, cut, cgroup_id, MAX_DIRS_SEARCHED)?;
        self.learn(cgroup_id, &full)
    }

    /// A cgroup was removed: the container it belonged to, and, when it was
    /// the container's own, the container is gone (it leaves the sharing
    /// gauge now rather than at the next full scan).
    pub fn forget(&mut self, cgroup_id: u64) -> Option<(ContainerKey, Option<Action>)> {
        let Some(Cgroup {
            container: Some(key),
            own,
            ..
        }) = self.cgroups.remove(&cgroup_id)
        else {
            return None;
        };
        let gone = own
            .then(|| self.containers.remove(&key))
            .flatten()
            .map(|known| Action::Gone(known.identity));
        if own {
            self.own_ids.remove(&key);
        }
        Some((key, gone))
    }

    /// The container's identity and allow status, resolved once.
    fn known(&mut self, p: &Placement) -> &Known {
        if !self.containers.contains_key(&p.key) {
            let names = self.names.as_ref();
            let identity = p.identity(names);
            let mut subject = Subject::from(&identity);
            subject.containerd_namespace = p.namespace.as_deref();
            let enclosing = p.enclosing_identities(names);
            let allowed = self
                .allow
                .allowance(self.own.as_ref(), &p.key, subject, &enclosing)
                .allowed();
            // pidns's own container is allowed to share, not to escape.
            let allowed_setns = self
                .allow_setns
                .allowance(None, &p.key, subject, &enclosing)
                .allowed();
            self.note_ambiguity(subject);
            self.containers.insert(
                p.key.clone(),
                Known {
                    identity,
                    allowed,
                    allowed_setns,
                    key: p.key.clone(),
                    namespace: p.namespace.clone(),
                },
            );
        }
        &self.containers[&p.key]
    }

    /// An unqualified allow entry that has now matched containers of two
    /// runtimes is said once on stderr.
    fn note_ambiguity(&mut self, subject: Subject<'_>) {
        let entries: Vec<String> = self
            .allow
            .unqualified_matching(subject)
            .chain(self.allow_setns.unqualified_matching(subject))
            .map(str::to_owned)
            .collect();
        for entry in entries {
            let runtimes = self.ambiguity.entry(entry.clone()).or_default();
            if runtimes.insert(subject.runtime) && runtimes.len() == 2 {
                let runtimes: Vec<_> = runtimes.iter().copied().collect();
                eprintln!(
                    "pidns watch: warning: {}",
                    crate::allow::ambiguity_warning(&entry, &runtimes)
                );
            }
        }
    }

    /// The container an event's cgroup belongs to, and any class to hand back.
    pub fn lookup(
        &mut self,
        proc: &ProcRoot,
        cgroup_id: u64,
        pid: u32,
        actions: &mut Vec<Action>,
    ) -> Lookup {
        if !self.cgroups.contains_key(&cgroup_id) {
            // Not seen at start-up nor created since (or its path was cut
            // short): ask /proc while the process lives.
            let mut buf = Vec::new();
            // As `scan` reads it: a file with lines forged through a
            // cgroup's name places nothing.
            let path = proc.read_into(pid, "cgroup", &mut buf).ok().and_then(|()| {
                cgroup::checked(&buf)
                    .ok()?
                    .iter()
                    .find(|l| l.is_unified())
                    .map(|l| l.path.to_vec())
            });
            match path {
                Some(path) => actions.extend(self.learn(cgroup_id, &path)),
                None => return Lookup::Unplaced,
            }
        }
        let Some(cg) = self.cgroups.get(&cgroup_id).cloned() else {
            return Lookup::Host;
        };
        let Some(key) = cg.container.clone() else {
            return Lookup::Host;
        };
        if cg.unconfirmed && !self.confirm(proc, cgroup_id, &cg, &key, pid, actions) {
            return Lookup::Host;
        }
        match self.containers.get(&key) {
            Some(known) => Lookup::Container(Box::new(known.clone())),
            None => Lookup::Host,
        }
    }

    /// The container a cgroup id was placed in, from the table alone (no
    /// /proc: for an id the kernel kept for a task that left the cgroup).
    pub fn known_of(&self, cgroup_id: u64) -> Option<Known> {
        let cg = self.cgroups.get(&cgroup_id)?;
        if cg.unconfirmed {
            return None;
        }
        self.containers.get(cg.container.as_ref()?).cloned()
    }

    /// A container cgroup's path, as learned.
    pub fn path_of(&self, cgroup_id: u64) -> Option<&str> {
        self.cgroups.get(&cgroup_id)?.path.as_deref()
    }

    /// Every cgroup of a container, with the class to give the kernel for
    /// it: the container's, or the host's for an unverified claim (whose
    /// events then stop at the kernel's first lookup).
    pub fn set_claim(&mut self, key: &ContainerKey, holds: bool) -> Vec<Action> {
        let class = if holds {
            self.containers
                .get(key)
                .map_or(class::CONTAINER, Known::class)
        } else {
            class::HOST
        };
        let container = if holds {
            self.own_ids.get(key).copied().unwrap_or(0)
        } else {
            0
        };
        let mut actions = Vec::new();
        for (&cgroup_id, cg) in &mut self.cgroups {
            if cg.container.as_ref() == Some(key) && !cg.unconfirmed {
                cg.class = Some(class);
                actions.push(Action::Classify {
                    cgroup_id,
                    class,
                    container,
                });
            }
        }
        actions
    }

    /// A container found by its root, named and judged by the allow rule
    /// as `scan` judges one: an `unknown` one never allowed (its id is
    /// whatever its mounter chose).
    pub fn known_rooted(&mut self, key: &ContainerKey, namespace: Option<&str>) -> Known {
        if let Some(k) = self.containers.get(key) {
            return k.clone();
        }
        let identity = names::describe(self.names.as_ref(), key, namespace, None);
        let (allowed, allowed_setns) = if key.runtime == crate::report::Runtime::Unknown {
            (false, false)
        } else {
            let mut subject = Subject::from(&identity);
            subject.containerd_namespace = namespace;
            (
                self.allow
                    .allowance(self.own.as_ref(), key, subject, &[])
                    .allowed(),
                self.allow_setns
                    .allowance(None, key, subject, &[])
                    .allowed(),
            )
        };
        let known = Known {
            identity,
            allowed,
            allowed_setns,
            key: key.clone(),
            namespace: namespace.map(str::to_owned),
        };
        self.containers.insert(key.clone(), known.clone());
        known
    }

    /// Confirms a `/<namespace>/<id>` cgroup by a containerd shim among the
    /// process's ancestors. A negative answer is kept too (and handed to the
    /// kernel, which then drops the cgroup's events): otherwise every exec
    /// in it would come here for another walk up its ancestry. A new mkdir
    /// of the cgroup asks again. No answer (the process, or one of its
    /// ancestors, exited before the walk; runc's setup stages do at once) is
    /// not kept: the next event in the cgroup asks again.
    fn confirm(
        &mut self,
        proc: &ProcRoot,
        cgroup_id: u64,
        cg: &Cgroup,
        key: &ContainerKey,
        pid: u32,
        actions: &mut Vec<Action>,
    ) -> bool {
        if cg.class == Some(class::HOST) {
            return false; // judged before: no shim behind it
        }
        let Some(confirmed) = Ancestry::new(proc).shim_ancestor(pid) else {
            return false;
        };
        let class = if confirmed {
            self.containers
                .get(key)
                .map_or(class::CONTAINER, Known::class)
        } else {
            class::HOST
        };
        if let Some(entry) = self.cgroups.get_mut(&cgroup_id) {
            entry.unconfirmed = !confirmed;
            entry.class = Some(class);
        }
        let container = if confirmed {
            self.own_ids.get(key).copied().unwrap_or(0)
        } else {
            0
        };
        actions.push(Action::Classify {
            cgroup_id,
            class,
            container,
        });
        confirmed
    }
}

/// Whether containerd has a task for a `/<namespace>/<id>` placement.
pub fn containerd_task_exists(host_root: Option<&Path>, p: &Placement) -> bool {
    match (host_root, &p.namespace) {
        (Some(root), Some(ns)) => names::containerd_task_exists(root, ns, &p.key.id),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use pidns_ebpf::{DATA_LEN, class, cstr, flags, kind};

    use super::super::testing::*;
    use crate::{parse::layout, report::WatchEvent, watch::attribute::Action};

    #[test]
    fn cgroups_are_classified_for_the_kernel() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &[]);
        assert_eq!(
            a.learn(10, format!("/docker/{ID}").as_bytes()),
            Some(Action::Classify {
                cgroup_id: 10,
                class: class::CONTAINER,
                container: 10
            })
        );
        assert_eq!(
            a.learn(11, b"/system.slice/cron.service"),
            Some(Action::Classify {
                cgroup_id: 11,
                class: class::HOST,
                container: 0
            })
        );
        assert_eq!(
            a.learn(12, b"/libpod_parent/conmon"),
            Some(Action::Classify {
                cgroup_id: 12,
                class: class::HOST,
                container: 0
            })
        );
        // ctr's /<namespace>/<id> waits for confirmation
        assert_eq!(a.learn(13, b"/default/web"), None);
        let mut b = attributor(dir.path(), &[&ID[..12]]);
        assert_eq!(
            b.learn(10, format!("/docker/{ID}").as_bytes()),
            Some(Action::Classify {
                cgroup_id: 10,
                class: class::CONTAINER | class::ALLOW_SHARE,
                container: 10
            })
        );
    }

    #[test]
    fn a_nested_container_named_after_an_allowed_one_is_not_allowed() {
        let dir = tempfile::tempdir().expect("tmp");
        let outer = "a".repeat(64);
        let nested = format!("/docker/{outer}/docker/{ID}");
        let mut a = attributor(dir.path(), &[ID]);
        assert_eq!(
            a.learn(20, nested.as_bytes()),
            Some(Action::Classify {
                cgroup_id: 20,
                class: class::CONTAINER,
                container: 20
            }),
            "the enclosing container is not allowed"
        );
        let mut b = attributor(dir.path(), &[ID, &outer]);
        assert_eq!(
            b.learn(20, nested.as_bytes()),
            Some(Action::Classify {
                cgroup_id: 20,
                class: class::CONTAINER | class::ALLOW_SHARE,
                container: 20
            }),
            "both allowed"
        );
    }

    #[test]
    fn removing_a_containers_own_cgroup_says_it_is_gone() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &[]);
        docker(&mut a);
        let sub = format!("/docker/{ID}/init.scope");
        assert!(a.learn(11, sub.as_bytes()).is_some());
        let rmdir = |id| event(kind::CGROUP_RMDIR, id, 5, "runc", "");
        assert_eq!(a.handle(&rmdir(11)), vec![], "a cgroup below it");
        let out = a.handle(&rmdir(10));
        let [Action::Gone(c)] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(c.id, ID);
        assert_eq!(a.handle(&rmdir(10)), vec![], "once");
    }

    #[test]
    fn cut_cgroup_paths_are_never_classified_from_the_cut() {
        let dir = tempfile::tempdir().expect("tmp");
        let cg = tempfile::tempdir().expect("cgroupfs");
        let outer = format!("system.slice/docker-{ID}.scope");
        let inner = "e".repeat(64);
        let full = format!(
            "/{outer}/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod0123abcd_4567_89ef_0123_456789abcdef.slice/cri-containerd-{inner}.scope"
        );
        std::fs::create_dir_all(cg.path().join(&full[1..])).expect("dirs");
        let id = std::os::unix::fs::MetadataExt::ino(
            &std::fs::metadata(cg.path().join(&full[1..])).expect("stat"),
        );
        let mut mkdir = event(kind::CGROUP_MKDIR, id, 5, "runc", &full);
        mkdir.flags = flags::TRUNCATED;
        assert_eq!(cstr(&mkdir.data).len(), DATA_LEN - 1);
        // without the hierarchy to look in: left unknown, not the outer container
        let mut a = attributor(dir.path(), &[]);
        assert!(a.handle(&mkdir).is_empty());
        assert_eq!(a.cgroups.class(id), None);
        // with it: the inner container, found by its id
        a.set_cgroup_root(cg.path().to_path_buf());
        assert_eq!(
            a.handle(&mkdir),
            vec![Action::Classify {
                cgroup_id: id,
                class: class::CONTAINER,
                container: id
            }]
        );
        let key = a.cgroups.container(id).expect("container");
        assert_eq!(
            (key.runtime, key.id.as_str()),
            (layout::Runtime::Containerd, inner.as_str())
        );
    }

    #[test]
    fn host_cgroups_and_allowed_containers_emit_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = attributor(dir.path(), &["c6e94367ab93"]);
        a.learn(11, b"/user.slice");
        assert!(
            a.handle(&event(kind::EXEC, 11, 42, "ls", "/bin/ls"))
                .is_empty()
        );
        a.learn(10, format!("/docker/{ID}").as_bytes());
        assert!(findings(&a.handle(&event(kind::EXEC, 10, 42, "ls", "/bin/ls"))).is_empty());
    }

    #[test]
    fn unknown_cgroups_are_placed_through_proc_while_the_process_lives() {
        let dir = tempfile::tempdir().expect("tmp");
        process(dir.path(), 42, "sleep", 1, &format!("/docker/{ID}"), &[], 1);
        let mut a = attributor(dir.path(), &[]);
        let mut e = event(kind::EXEC, 99, 42, "sleep", "/bin/sleep");
        e.flags = flags::UNCLASSIFIED;
        let out = a.handle(&e);
        assert!(
            out.contains(&Action::Classify {
                cgroup_id: 99,
                class: class::CONTAINER,
                container: 99
            }),
            "{out:?}"
        );
        assert!(
            out.contains(&Action::TrackTask {
                pid: 42,
                anchor: 99
            }),
            "{out:?}"
        );
        assert_eq!(findings(&out).len(), 1);
        // gone, never seen: nothing to attribute, and it is counted
        let gone = event(kind::EXEC, 100, 4242, "x", "");
        assert!(a.handle(&gone).is_empty());
        assert_eq!(a.unattributed(), 1);
        let WatchEvent::Stats {
            events,
            unattributed,
            lost,
            ..
        } = a.stats(7)
        else {
            panic!("not stats")
        };
        assert_eq!((events, unattributed, lost), (2, 1, 7));
    }

    #[test]
    fn a_confirmation_that_found_the_process_gone_is_asked_again() {
        let dir = tempfile::tempdir().expect("tmp");
        process(dir.path(), 70, "containerd-shim", 1, "/", &[], 1);
        let mut a = attributor(dir.path(), &[]);
        assert_eq!(a.learn(20, b"/default/web"), None);
        // runc's setup stage, moved in and gone before user space looked
        let out = a.handle(&event(kind::ATTACH, 20, 4300, "runc:[0:PARENT]", ""));
        assert!(out.is_empty(), "no verdict, none cached: {out:?}");
        // the container's init, alive: confirmed now
        process(dir.path(), 71, "sleep", 70, "/default/web", &[], 1);
        let out = a.handle(&event(kind::EXEC, 20, 71, "sleep", "/bin/sleep"));
        assert!(
            out.contains(&Action::Classify {
                cgroup_id: 20,
                class: class::CONTAINER,
                container: 20
            }),
            "{out:?}"
        );
        assert_eq!(findings(&out).len(), 1);
    }

    #[test]
    fn containerd_namespace_layout_is_confirmed_by_a_shim() {
        let dir = tempfile::tempdir().expect("tmp");
        process(dir.path(), 70, "containerd-shim", 1, "/", &[], 1);
        process(dir.path(), 71, "sleep", 70, "/default/web", &[], 1);
        let mut a = attributor(dir.path(), &[]);
        assert_eq!(a.learn(20, b"/default/web"), None);
        let out = a.handle(&event(kind::EXEC, 20, 71, "sleep", "/bin/sleep"));
        assert!(
            out.contains(&Action::Classify {
                cgroup_id: 20,
                class: class::CONTAINER,
                container: 20
            }),
            "{out:?}"
        );
        assert_eq!(findings(&out).len(), 1);
        // with no shim behind it, the same shape is not a container ...
        process(dir.path(), 4000, "job", 1, "/actions_job/abc", &[], 1);
        assert_eq!(a.learn(21, b"/actions_job/abc"), None);
        assert_eq!(
            a.handle(&event(kind::EXEC, 21, 4000, "job", "")),
            vec![Action::Classify {
                cgroup_id: 21,
                class: class::HOST,
                container: 0
            }],
            "the negative answer goes to the kernel"
        );
        // ... and is kept: no second walk up the ancestry, even if one would now say yes
        process(dir.path(), 4001, "job", 70, "/actions_job/abc", &[], 1);
        assert!(a.handle(&event(kind::EXEC, 21, 4001, "job", "")).is_empty());
        // a new mkdir asks again
        assert_eq!(a.learn(21, b"/actions_job/abc"), None);
        assert_eq!(
            findings(&a.handle(&event(kind::EXEC, 21, 4001, "job", ""))).len(),
            1
        );
    }
}
