//! Placement: which container a process's cgroup file puts it in, with the
//! containers enclosing that one, and the runtime a bare hex id belongs to.

use std::path::Path;

use crate::{
    names::{self, NameResolver},
    parse::{
        cgroup,
        layout::{self, Match, Role, Runtime},
    },
    procfs::ProcRoot,
    report::{ContainerKey, Identity},
};

/// A process's container, from its cgroup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub key: ContainerKey,
    pub pod_uid: Option<String>,
    pub namespace: Option<String>,
    pub cgroup: String,
    pub role: Role,
    pub needs_confirmation: bool,
    /// A full 64-hex id under a path no layout names; see [`refine_runtime`].
    pub hex_leaf: bool,
    /// Containers whose cgroups enclose this one, outermost first.
    pub enclosing: Vec<ContainerKey>,
}

impl Placement {
    pub fn from_match(m: Match, path: &[u8]) -> Self {
        let cgroup_of = |len: usize| String::from_utf8_lossy(&path[..len]).into_owned();
        let cgroup = cgroup_of(m.cgroup_len);
        Placement {
            enclosing: m
                .enclosing
                .into_iter()
                .map(|e| ContainerKey {
                    runtime: e.runtime,
                    id: e.id,
                    cgroup: cgroup_of(e.cgroup_len),
                })
                .collect(),
            key: ContainerKey {
                runtime: m.runtime,
                id: m.id,
                cgroup: cgroup.clone(),
            },
            cgroup,
            pod_uid: m.pod_uid,
            namespace: m.namespace,
            role: m.role,
            needs_confirmation: m.needs_confirmation,
            hex_leaf: m.hex_leaf,
        }
    }

    /// The container, named from runtimes' on-disk state where readable.
    pub fn identity(&self, names: Option<&NameResolver>) -> Identity {
        names::describe(
            names,
            &self.key,
            self.namespace.as_deref(),
            self.pod_uid.as_deref(),
        )
    }

    /// The containers enclosing this one, named, outermost first.
    pub fn enclosing_identities(&self, names: Option<&NameResolver>) -> Vec<Identity> {
        self.enclosing
            .iter()
            .map(|e| names::describe(names, e, None, None))
            .collect()
    }
}

/// Names a confirmed [`Placement::hex_leaf`] container's runtime: Docker when
/// Docker's state for that id exists under the host root (`docker run
/// --cgroup-parent=…`), else containerd. Without a host root it stays
/// containerd.
pub fn refine_runtime(p: &mut Placement, state_root: Option<&Path>) {
    if p.hex_leaf
        && p.key.runtime == Runtime::Containerd
        && state_root.is_some_and(|root| names::docker_state_exists(root, &p.key.id))
    {
        p.key.runtime = Runtime::Docker;
        p.namespace = None;
    }
}

/// The container a process's cgroup file places it in, or why the file is not
/// one the kernel wrote ([`cgroup::malformed`]): a file with lines forged
/// through a cgroup's name places nothing.
///
/// The unified (v2) line is preferred, then systemd's named v1 hierarchy, then
/// any other v1 hierarchy. The `/<namespace>/<id>` shape is only trusted on
/// the first two: a lone v1 controller path such as `/process_api/<hex>` is
/// how host tools partition memory, not a container.
pub fn place(cgroup_file: &[u8]) -> Result<Option<Placement>, &'static str> {
    cgroup::checked(cgroup_file).map(|lines| from_lines(&lines))
}

fn from_lines(lines: &[cgroup::Line<'_>]) -> Option<Placement> {
    let ranked = lines
        .iter()
        .filter(|l| l.is_unified())
        .map(|l| (l, true))
        .chain(lines.iter().filter(|l| l.is_systemd()).map(|l| (l, true)))
        .chain(
            lines
                .iter()
                .filter(|l| !l.is_unified() && !l.is_systemd())
                .map(|l| (l, false)),
        );
    for (line, trusted_shape) in ranked {
        if let Some(m) = layout::classify(line.path) {
            if m.needs_confirmation && !trusted_shape {
                continue;
            }
            return Some(Placement::from_match(m, line.path));
        }
    }
    None
}

/// The container pidns itself runs in, if any: its `self` entry in the proc
/// root, placed like any other process.
pub fn own_container(proc: &ProcRoot) -> Option<ContainerKey> {
    let pid = proc.self_pid()?;
    let mut buf = Vec::new();
    proc.read_into(pid, "cgroup", &mut buf).ok()?;
    place(&buf)
        .ok()
        .flatten()
        .filter(|p| p.role == Role::Container && !p.needs_confirmation)
        .map(|p| p.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`place`] of a file the kernel could have written.
    fn placement(cgroup_file: &[u8]) -> Option<Placement> {
        place(cgroup_file).expect("a well-formed cgroup file")
    }

    const ID: &str = "40e9cfb459ea932ec1f41ca728c2afb10676bb793b3ad87f4b67f7873eccbae4";

    #[test]
    fn placement_prefers_unified_then_systemd() {
        let f = format!("9:name=systemd:/docker/{ID}\n4:memory:/docker/{ID}\n0::/docker/{ID}\n");
        let p = placement(f.as_bytes()).unwrap();
        assert_eq!(
            p.key,
            ContainerKey {
                runtime: Runtime::Docker,
                id: ID.into(),
                cgroup: format!("/docker/{ID}"),
            }
        );
        assert_eq!(p.cgroup, format!("/docker/{ID}"));
    }

    #[test]
    fn placement_on_pure_v1() {
        let f = format!("4:memory:/docker/{ID}\n1:cpu:/docker/{ID}\n");
        assert_eq!(placement(f.as_bytes()).unwrap().key.id, ID);
    }

    #[test]
    fn lone_v1_controller_shape_is_not_a_container() {
        // what this very machine's sandbox looks like
        let f = b"9:name=systemd:/\n4:memory:/process_api/b79c7c02d313061df0dc1369957c672c\n0::/\n";
        assert_eq!(placement(f), None);
        // while the same shape on the unified line is a candidate for ancestry to confirm
        let f = b"4:memory:/default/web\n0::/default/web\n";
        assert!(placement(f).unwrap().needs_confirmation);
    }

    #[test]
    fn hex_leaf_runtime_from_docker_state() {
        let dir = tempfile::tempdir().unwrap();
        let p = |path: &str| {
            Placement::from_match(layout::classify(path.as_bytes()).unwrap(), path.as_bytes())
        };
        let mut a = p(&format!("/scan-cp/{ID}"));
        refine_runtime(&mut a, Some(dir.path()));
        assert_eq!(
            (a.key.runtime, a.namespace.as_deref()),
            (Runtime::Containerd, Some("scan-cp"))
        );
        std::fs::create_dir_all(dir.path().join("var/lib/docker/containers").join(ID)).unwrap();
        refine_runtime(&mut a, Some(dir.path()));
        assert_eq!(
            (a.key.runtime, a.namespace.as_deref()),
            (Runtime::Docker, None)
        );
        assert_eq!(a.key.cgroup, format!("/scan-cp/{ID}"));
        // only bare hex leaves are refined
        let mut b = p("/default/web");
        refine_runtime(&mut b, Some(dir.path()));
        assert_eq!(b.key.runtime, Runtime::Containerd);
        let mut c = p(&format!("/scan-cp/{ID}"));
        refine_runtime(&mut c, None);
        assert_eq!(c.key.runtime, Runtime::Containerd);
    }

    #[test]
    fn placement_keys_include_the_cgroup_and_enclosers() {
        let inner = "1111111111111111111111111111111111111111111111111111111111111111";
        let f = format!("0::/docker/{ID}/docker/{inner}/init.scope\n");
        let p = placement(f.as_bytes()).unwrap();
        assert_eq!(p.key.id, inner);
        assert_eq!(p.key.cgroup, format!("/docker/{ID}/docker/{inner}"));
        assert_eq!(
            p.enclosing,
            vec![ContainerKey {
                runtime: Runtime::Docker,
                id: ID.into(),
                cgroup: format!("/docker/{ID}"),
            }]
        );
        let top = placement(format!("0::/docker/{inner}\n").as_bytes()).unwrap();
        assert_ne!(top.key, p.key, "same id, other cgroup");
    }
}
