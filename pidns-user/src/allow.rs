//! `--allow`: containers that legitimately need the host PID namespace
//! (monitoring agents, pidns itself in a DaemonSet), and the one rule that
//! scan and watch apply to them: [`AllowList::allowance`].

use crate::report::{Container, ContainerKey, Identity, Pod};

/// Short hex ids (`docker ps` prints 12 characters) match as prefixes.
const MIN_PREFIX: usize = 12;

#[derive(Debug, Clone, Default)]
pub struct AllowList {
    entries: Vec<String>,
}

/// The parts of a container an allow entry can name.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub pod: Option<&'a Pod>,
    pub containerd_namespace: Option<&'a str>,
}

impl<'a> From<&'a Container> for Subject<'a> {
    fn from(c: &'a Container) -> Self {
        Subject {
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

    /// Entries that matched none of the containers that share the host PID
    /// namespace in this scan, nor any container enclosing one.
    pub fn unused<'c>(&'c self, containers: &'c [Container]) -> impl Iterator<Item = &'c str> + 'c {
        self.entries.iter().map(String::as_str).filter(move |e| {
            !containers
                .iter()
                .filter(|c| c.shares_host_pidns == Some(true))
                .any(|c| {
                    entry_matches(e, &Subject::from(c))
                        || c.enclosed_by
                            .iter()
                            .any(|o| entry_matches(e, &Subject::from(o)))
                })
        })
    }
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

fn entry_matches(e: &str, s: &Subject<'_>) -> bool {
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
            runtime: crate::report::Runtime::Docker,
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
            id: "deadbeefcafe-web",
            name: None,
            pod: None,
            containerd_namespace: None,
        };
        assert!(!AllowList::new(["deadbeefcafe".to_string()]).matches(s));
    }
}
