//! `--allow`: containers that legitimately need the host PID namespace
//! (monitoring agents, pidns itself in a DaemonSet), and the one rule that
//! scan and watch apply to them: [`AllowList::allowance`]. `--allow-setns`
//! uses the same entries for a container's setns into host namespaces.
//!
//! An entry may be qualified by runtime, as pidns names runtimes
//! (`docker:web`, `podman:web`, `containerd:…`, `cri-o:…`, `lxc:…`,
//! `systemd-nspawn:…`, `kubernetes:…`), or name a Kubernetes pod as
//! `k8s:namespace/pod`. An unqualified name matches that name in every
//! runtime: [`AllowList::ambiguous`] says when it did in two.

use std::collections::{BTreeMap, BTreeSet};

use crate::report::{Container, ContainerKey, Identity, Pod, Runtime};

/// Short hex ids (`docker ps` prints 12 characters) match as prefixes.
const MIN_PREFIX: usize = 12;

#[derive(Debug, Clone, Default)]
pub struct AllowList {
    entries: Vec<String>,
}

/// The parts of a container an allow entry can name.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub runtime: Runtime,
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub pod: Option<&'a Pod>,
    pub containerd_namespace: Option<&'a str>,
}

impl<'a> From<&'a Container> for Subject<'a> {
    fn from(c: &'a Container) -> Self {
        Subject {
            runtime: c.runtime,
            id: &c.id,
            name: c.name.as_deref(),
            pod: c.pod.as_ref(),
            containerd_namespace: c.containerd_namespace.as_deref(),
        }
    }
}

impl<'a> From<&'a Identity> for Subject<'a> {
    fn from(e: &'a Identity) -> Self {
        Subject {
            runtime: e.runtime,
            id: &e.id,
            name: e.name.as_deref(),
            pod: e.pod.as_ref(),
            containerd_namespace: None,
        }
    }
}

impl AllowList {
    pub fn new(entries: impl IntoIterator<Item = String>) -> Self {
        AllowList {
            entries: entries.into_iter().filter(|e| !e.is_empty()).collect(),
        }
    }

    /// The first entry that matches, if any.
    pub fn matching<'a>(&self, subject: impl Into<Subject<'a>>) -> Option<&str> {
        let s = subject.into();
        self.entries
            .iter()
            .map(String::as_str)
            .find(|e| entry_matches(e, &s))
    }

    /// An entry matches a full id, a prefix of at least 12 characters of a
    /// hex id (both hex), the container's name, its pod's name,
    /// `namespace/pod`, the pod UID, or `<containerd namespace>/<id>`.
    /// Everything but hex ids matches exactly: `--allow monitoring-agent`
    /// does not allow `monitoring-agent-evil`.
    pub fn matches<'a>(&self, subject: impl Into<Subject<'a>>) -> bool {
        self.matching(subject).is_some()
    }

    /// The allow rule, for scan and watch alike. pidns's own container (`own`)
    /// is allowed. Any other container is allowed when an entry names it and
    /// every container enclosing it is allowed too (or is pidns's own), so a
    /// process in another container's sub-cgroup named after an allowed
    /// container borrows nothing.
    pub fn allowance<'a>(
        &self,
        own: Option<&ContainerKey>,
        key: &ContainerKey,
        subject: impl Into<Subject<'a>>,
        enclosing: &[Identity],
    ) -> Allowance {
        if own == Some(key) {
            return Allowance::Own;
        }
        let Some(entry) = self.matching(subject) else {
            return Allowance::No;
        };
        let refused: Vec<Identity> = enclosing
            .iter()
            .filter(|e| own != Some(&e.key()) && !self.matches(*e))
            .cloned()
            .collect();
        if refused.is_empty() {
            Allowance::Entry(entry.to_owned())
        } else {
            Allowance::Refused {
                entry: entry.to_owned(),
                enclosing: refused,
            }
        }
    }

    /// The unqualified entries that match this container.
    pub fn unqualified_matching<'s>(
        &'s self,
        subject: Subject<'s>,
    ) -> impl Iterator<Item = &'s str> + 's {
        self.entries
            .iter()
            .map(String::as_str)
            .filter(move |e| qualifier(e).is_none() && entry_matches(e, &subject))
    }

    /// Unqualified entries that match containers of more than one runtime
    /// among `subjects` by name (`--allow web` with a Docker and a Podman
    /// container called `web`): each with the runtimes, for a warning that
    /// recommends the qualified form.
    pub fn ambiguous<'c>(
        &self,
        subjects: impl IntoIterator<Item = Subject<'c>>,
    ) -> Vec<(String, Vec<Runtime>)> {
        let mut seen: BTreeMap<&str, BTreeSet<Runtime>> = BTreeMap::new();
        let subjects: Vec<Subject<'c>> = subjects.into_iter().collect();
        for e in self.entries.iter().filter(|e| qualifier(e).is_none()) {
            for s in subjects.iter().filter(|s| entry_matches(e, s)) {
                seen.entry(e.as_str()).or_default().insert(s.runtime);
            }
        }
        seen.into_iter()
            .filter(|(_, rts)| rts.len() > 1)
            .map(|(e, rts)| (e.to_owned(), rts.into_iter().collect()))
            .collect()
    }

    /// Entries that matched none of the containers that share the host PID
    /// namespace in this scan, nor any container enclosing one.
    pub fn unused<'c>(&'c self, containers: &'c [Container]) -> impl Iterator<Item = &'c str> + 'c {
        self.entries.iter().map(String::as_str).filter(move |e| {
            !containers
                .iter()
                .filter(|c| {
                    c.shares_host_pidns == Some(true) || c.configured_host_pidns == Some(true)
                })
                .any(|c| {
                    entry_matches(e, &Subject::from(c))
                        || c.enclosed_by
                            .iter()
                            .any(|o| entry_matches(e, &Subject::from(o)))
                })
        })
    }
}

/// What scan (in `warnings`) and watch (on stderr, once) say of an
/// unqualified entry that matches containers of several runtimes.
pub fn ambiguity_warning(entry: &str, runtimes: &[Runtime]) -> String {
    let names: Vec<&str> = runtimes.iter().map(|r| r.as_str()).collect();
    format!(
        "--allow {entry} matches containers of {} runtimes ({}): qualify it, e.g. --allow {}:{entry}",
        names.len(),
        names.join(", "),
        names.first().copied().unwrap_or("docker")
    )
}

/// Whether, and why, a container may share the host PID namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowance {
    /// pidns's own container.
    Own,
    /// Allowed by this `--allow` entry.
    Entry(String),
    /// An entry names it, but not these containers enclosing it: not allowed.
    Refused {
        entry: String,
        enclosing: Vec<Identity>,
    },
    /// No entry names it.
    No,
}

impl Allowance {
    pub fn allowed(&self) -> bool {
        matches!(self, Allowance::Own | Allowance::Entry(_))
    }

    /// Why an allowed container is (`allowed_by` in a scan's JSON).
    pub fn reason(&self) -> Option<String> {
        match self {
            Allowance::Own => Some("pidns itself".to_owned()),
            Allowance::Entry(entry) => Some(format!("--allow {entry}")),
            Allowance::Refused { .. } | Allowance::No => None,
        }
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What an entry is qualified by: a runtime (`docker:`) or `k8s:` (a pod).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    Runtime(Runtime),
    Pod,
}

/// The runtimes an entry may be qualified by, as pidns names them.
const RUNTIMES: [Runtime; 7] = [
    Runtime::Docker,
    Runtime::Containerd,
    Runtime::CriO,
    Runtime::Podman,
    Runtime::Kubernetes,
    Runtime::Lxc,
    Runtime::SystemdNspawn,
];

/// The entry's qualifier and the rest, if it has one. `default/web` (a
/// containerd namespace) has none: qualifiers end in `:`.
fn qualifier(e: &str) -> Option<(Qualifier, &str)> {
    let (q, rest) = e.split_once(':')?;
    if q == "k8s" {
        return Some((Qualifier::Pod, rest));
    }
    RUNTIMES
        .into_iter()
        .find(|r| r.as_str() == q)
        .map(|r| (Qualifier::Runtime(r), rest))
}

fn entry_matches(e: &str, s: &Subject<'_>) -> bool {
    match qualifier(e) {
        Some((Qualifier::Runtime(rt), rest)) => rt == s.runtime && unqualified_matches(rest, s),
        Some((Qualifier::Pod, rest)) => s.pod.is_some_and(|pod| {
            matches!((pod.namespace.as_deref(), pod.name.as_deref(), rest.split_once('/')),
                (Some(ns), Some(name), Some((ens, ename))) if ns == ens && name == ename)
        }),
        None => unqualified_matches(e, s),
    }
}

fn unqualified_matches(e: &str, s: &Subject<'_>) -> bool {
    let hex_prefix = e.len() >= MIN_PREFIX && is_hex(e) && is_hex(s.id) && s.id.starts_with(e);
    if e == s.id || hex_prefix || Some(e) == s.name {
        return true;
    }
    if let Some(ns) = s.containerd_namespace
        && e.split_once('/') == Some((ns, s.id))
    {
        return true;
    }
    let Some(pod) = s.pod else { return false };
    if pod.uid.as_deref() == Some(e) || pod.name.as_deref() == Some(e) {
        return true;
    }
    matches!((pod.namespace.as_deref(), pod.name.as_deref(), e.split_once('/')),
        (Some(ns), Some(name), Some((ens, ename))) if ns == ens && name == ename)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "40e9cfb459ea932ec1f41ca728c2afb10676bb793b3ad87f4b67f7873eccbae4";

    fn subject<'a>(pod: Option<&'a Pod>) -> Subject<'a> {
        Subject {
            runtime: Runtime::Containerd,
            id: ID,
            name: Some("node-exporter"),
            pod,
            containerd_namespace: Some("k8s.io"),
        }
    }

    #[test]
    fn ids_names_and_pods() {
        let pod = Pod {
            uid: Some("u-1".into()),
            name: Some("pidns-x7".into()),
            namespace: Some("kube-system".into()),
        };
        let yes = [
            "40e9cfb459ea",
            ID,
            "node-exporter",
            "pidns-x7",
            "kube-system/pidns-x7",
            "u-1",
            &format!("k8s.io/{ID}"),
        ];
        for e in yes {
            assert!(
                AllowList::new([e.to_string()]).matches(subject(Some(&pod))),
                "{e}"
            );
        }
        let no = [
            "40e9cf",
            "node",
            "node-exporte",
            &ID[..63].to_uppercase(),
            "default/pidns-x7",
            "kube-system/other",
            "",
            "moby/x",
        ];
        for e in no {
            assert!(
                !AllowList::new([e.to_string()]).matches(subject(Some(&pod))),
                "{e}"
            );
        }
        assert!(!AllowList::default().matches(subject(None)));
    }

    fn identity(id: &str, cgroup: &str) -> Identity {
        Identity {
            id: id.into(),
            runtime: Runtime::Docker,
            name: None,
            pod: None,
            cgroup: cgroup.into(),
        }
    }

    #[test]
    fn the_allow_rule_covers_own_entries_and_enclosers() {
        let outer = identity(&"a".repeat(64), &format!("/docker/{}", "a".repeat(64)));
        let inner = identity(ID, &format!("{}/docker/{ID}", outer.cgroup));
        let list = AllowList::new([ID.to_string()]);
        // pidns's own container, whatever the list says
        assert_eq!(
            list.allowance(Some(&inner.key()), &inner.key(), &inner, &[]),
            Allowance::Own
        );
        // named, but its encloser is not allowed
        assert_eq!(
            list.allowance(None, &inner.key(), &inner, std::slice::from_ref(&outer)),
            Allowance::Refused {
                entry: ID.into(),
                enclosing: vec![outer.clone()]
            }
        );
        // unless the encloser is pidns's own, or allowed too
        let a = list.allowance(
            Some(&outer.key()),
            &inner.key(),
            &inner,
            std::slice::from_ref(&outer),
        );
        assert_eq!(
            a.reason().as_deref(),
            Some(format!("--allow {ID}").as_str())
        );
        let both = AllowList::new([ID.to_string(), outer.id.clone()]);
        assert!(
            both.allowance(None, &inner.key(), &inner, std::slice::from_ref(&outer))
                .allowed()
        );
        assert_eq!(
            AllowList::default().allowance(None, &inner.key(), &inner, &[]),
            Allowance::No
        );
    }

    #[test]
    fn only_hex_ids_match_by_prefix() {
        // LXC, nspawn and ctr ids are names; a name never matches as a prefix.
        for id in ["monitoring-agent-evil", "monitoring-agent-1234567890"] {
            let s = Subject {
                runtime: Runtime::Lxc,
                id,
                name: Some(id),
                pod: None,
                containerd_namespace: None,
            };
            for e in ["monitoring-agent", "monitoring-agent-"] {
                assert!(!AllowList::new([e.to_string()]).matches(s), "{e} vs {id}");
            }
            assert!(AllowList::new([id.to_string()]).matches(s));
        }
        // pod names and UIDs match exactly, too
        let pod = Pod {
            uid: Some("1c0ffee0-1234-4abc-9def-0123456789ab".into()),
            name: Some("monitoring-agent-x7".into()),
            namespace: Some("kube-system".into()),
        };
        let s = subject(Some(&pod));
        for e in [
            "monitoring-agent",
            "1c0ffee0-1234",
            "kube-system/monitoring",
        ] {
            assert!(!AllowList::new([e.to_string()]).matches(s), "{e}");
        }
        // a 12-character hex prefix of a name that happens to be hex-like is refused too
        let s = Subject {
            runtime: Runtime::Lxc,
            id: "deadbeefcafe-web",
            name: None,
            pod: None,
            containerd_namespace: None,
        };
        assert!(!AllowList::new(["deadbeefcafe".to_string()]).matches(s));
    }

    #[test]
    fn entries_qualified_by_runtime_or_pod() {
        let web = |runtime| Subject {
            runtime,
            id: "1111111111111111",
            name: Some("web"),
            pod: None,
            containerd_namespace: None,
        };
        let docker = AllowList::new(["docker:web".to_string()]);
        assert!(docker.matches(web(Runtime::Docker)));
        assert!(
            !docker.matches(web(Runtime::Podman)),
            "another runtime's web"
        );
        assert!(AllowList::new(["podman:web".to_string()]).matches(web(Runtime::Podman)));
        assert!(
            AllowList::new(["docker:1111111111111111".to_string()]).matches(web(Runtime::Docker))
        );
        // not a runtime: the whole entry, as before (here: matches nothing)
        assert!(!AllowList::new(["rkt:web".to_string()]).matches(web(Runtime::Docker)));
        let pod = Pod {
            uid: Some("u-1".into()),
            name: Some("agent-x7".into()),
            namespace: Some("kube-system".into()),
        };
        let s = subject(Some(&pod));
        assert!(AllowList::new(["k8s:kube-system/agent-x7".to_string()]).matches(s));
        assert!(!AllowList::new(["k8s:default/agent-x7".to_string()]).matches(s));
        assert!(
            !AllowList::new(["k8s:agent-x7".to_string()]).matches(s),
            "namespace/pod only"
        );
        assert!(!AllowList::new(["k8s:kube-system/agent-x7".to_string()]).matches(subject(None)));
    }

    #[test]
    fn an_unqualified_name_in_two_runtimes_is_ambiguous() {
        let mk = |runtime, id| Subject {
            runtime,
            id,
            name: Some("web"),
            pod: None,
            containerd_namespace: None,
        };
        let list = AllowList::new(["web".to_string(), "docker:web".to_string()]);
        let subjects = [mk(Runtime::Docker, "a1"), mk(Runtime::Podman, "b2")];
        assert_eq!(
            list.ambiguous(subjects),
            [("web".to_owned(), vec![Runtime::Docker, Runtime::Podman])]
        );
        assert!(list.ambiguous([mk(Runtime::Docker, "a1")]).is_empty());
    }
}
