//! Optional container names from runtimes' on-disk state, read without their
//! APIs. Never needed for a verdict; any failure just leaves the name out.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    parse::layout::Runtime,
    report::{ContainerKey, Identity, Pod},
};

const DOCKER_CONTAINERS: &str = "var/lib/docker/containers";
const CONTAINERD_TASKS: &str = "run/containerd/io.containerd.runtime.v2.task";
const PODMAN_CONTAINERS: &str = "var/lib/containers/storage/overlay-containers";
const CRIO_RUN: &str = "run/containers/storage/overlay-containers";
const PODMAN_RELOAD: Duration = Duration::from_secs(1);

/// Podman's id → name table and when it was read.
type PodmanNames = (HashMap<String, String>, Instant);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub name: Option<String>,
    pub pod: Option<Pod>,
}

/// Reads names below a host root (`/`, or e.g. `/host` inside a pod).
#[derive(Debug, Clone)]
pub struct NameResolver {
    root: PathBuf,
    podman: Arc<Mutex<Option<PodmanNames>>>,
}

impl NameResolver {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        NameResolver {
            root: root.into(),
            podman: Default::default(),
        }
    }

    pub fn resolve(
        &self,
        runtime: &Runtime,
        id: &str,
        containerd_ns: Option<&str>,
    ) -> Option<Names> {
        // Ids come from cgroup path segments; refuse anything that could walk the tree.
        if id.is_empty() || id.contains('/') || id == ".." || id == "." {
            return None;
        }
        match runtime {
            Runtime::Docker => self.docker(id),
            Runtime::Containerd => self.containerd(id, containerd_ns),
            Runtime::CriO => self.crio(id),
            Runtime::Kubernetes => self
                .containerd(id, None)
                .or_else(|| self.crio(id))
                .or_else(|| self.docker(id)),
            Runtime::Podman => self.podman(id),
            Runtime::Unknown => None,
            Runtime::Lxc | Runtime::SystemdNspawn | Runtime::Runc | Runtime::Crun => Some(Names {
                name: Some(id.to_owned()),
                pod: None,
            }),
        }
    }

    fn docker(&self, id: &str) -> Option<Names> {
        let v = read_json(
            &self
                .root
                .join(DOCKER_CONTAINERS)
                .join(id)
                .join("config.v2.json"),
        )?;
        let name = v
            .get("Name")
            .and_then(Value::as_str)
            .map(|n| n.trim_start_matches('/').to_owned());
        let labels = v.pointer("/Config/Labels");
        Some(Names {
            name,
            pod: labels
                .and_then(|l| pod_from(l, "io.kubernetes.pod.name", "io.kubernetes.pod.namespace")),
        })
    }

    fn containerd(&self, id: &str, ns: Option<&str>) -> Option<Names> {
        let tasks = self.root.join(CONTAINERD_TASKS);
        let namespaces: Vec<PathBuf> = match ns {
            Some(ns) if !ns.contains('/') => vec![tasks.join(ns)],
            Some(_) => return None,
            None => fs::read_dir(&tasks)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect(),
        };
        namespaces.iter().find_map(|dir| {
            let spec = read_json(&dir.join(id).join("config.json"))?;
            let ann = spec.get("annotations");
            let cri_name = ann
                .and_then(|a| a.get("io.kubernetes.cri.container-name"))
                .and_then(Value::as_str);
            let pod = ann.and_then(|a| {
                pod_from(
                    a,
                    "io.kubernetes.cri.sandbox-name",
                    "io.kubernetes.cri.sandbox-namespace",
                )
            });
            Some(Names {
                name: Some(cri_name.unwrap_or(id).to_owned()),
                pod,
            })
        })
    }

    fn crio(&self, id: &str) -> Option<Names> {
        [CRIO_RUN, PODMAN_CONTAINERS].iter().find_map(|base| {
            let spec = read_json(&self.root.join(base).join(id).join("userdata/config.json"))?;
            let ann = spec.get("annotations")?;
            let name = ann
                .get("io.kubernetes.container.name")
                .and_then(Value::as_str)
                .map(str::to_owned);
            Some(Names {
                name,
                pod: pod_from(ann, "io.kubernetes.pod.name", "io.kubernetes.pod.namespace"),
            })
        })
    }

    /// Podman keeps every container's names in one file; it is read once and
    /// again when an id is missing from it (at most once a second), so a
    /// long-running watch learns the names of containers created since.
    fn podman(&self, id: &str) -> Option<Names> {
        let mut cache = self.podman.lock().ok()?;
        let stale = cache
            .as_ref()
            .is_none_or(|(map, at)| !map.contains_key(id) && at.elapsed() >= PODMAN_RELOAD);
        if stale {
            *cache = Some((self.read_podman(), Instant::now()));
        }
        let name = cache.as_ref()?.0.get(id)?.clone();
        Some(Names {
            name: Some(name),
            pod: None,
        })
    }

    fn read_podman(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        let Some(Value::Array(list)) =
            read_json(&self.root.join(PODMAN_CONTAINERS).join("containers.json"))
        else {
            return map;
        };
        for c in list {
            let id = c.get("id").and_then(Value::as_str);
            let name = c.pointer("/names/0").and_then(Value::as_str);
            if let (Some(id), Some(name)) = (id, name) {
                map.insert(id.to_owned(), name.to_owned());
            }
        }
        map
    }
}

/// A container's identity: its key, named from runtimes' on-disk state where
/// readable (`names`), with the pod UID its cgroup path carries and, for
/// containerd, the namespace it was found in.
pub fn describe(
    names: Option<&NameResolver>,
    key: &ContainerKey,
    namespace: Option<&str>,
    pod_uid: Option<&str>,
) -> Identity {
    let (name, pod) = names
        .and_then(|r| r.resolve(&key.runtime, &key.id, namespace))
        .map_or((None, None), |n| (n.name, n.pod));
    let pod = match (pod, pod_uid) {
        (Some(mut pod), uid) => {
            pod.uid = pod.uid.or_else(|| uid.map(str::to_owned));
            Some(pod)
        }
        (None, Some(uid)) => Some(Pod {
            uid: Some(uid.to_owned()),
            name: None,
            namespace: None,
        }),
        (None, None) => None,
    };
    Identity {
        id: key.id.clone(),
        runtime: key.runtime,
        name,
        pod,
        cgroup: key.cgroup.clone(),
    }
}

fn pod_from(map: &Value, name_key: &str, ns_key: &str) -> Option<Pod> {
    let name = map.get(name_key).and_then(Value::as_str)?;
    let namespace = map.get(ns_key).and_then(Value::as_str);
    Some(Pod {
        uid: None,
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
    })
}

/// Whether Docker keeps state for this container id under `root`
/// (`var/lib/docker/containers/<id>`), which tells a Docker container whose
/// cgroup names no runtime (`--cgroup-parent`) from a containerd one.
pub fn docker_state_exists(root: &Path, id: &str) -> bool {
    crate::parse::layout::is_full_hex_id(id)
        && fs::symlink_metadata(root.join(DOCKER_CONTAINERS).join(id)).is_ok_and(|m| m.is_dir())
}

/// Whether containerd keeps a task for `<namespace>/<id>` under `root`: the
/// second signal that confirms a `/<namespace>/<id>` cgroup as a container's.
pub fn containerd_task_exists(root: &Path, namespace: &str, id: &str) -> bool {
    root.join(CONTAINERD_TASKS)
        .join(namespace)
        .join(id)
        .is_dir()
}

fn read_json(path: &Path) -> Option<Value> {
    crate::state::read_json(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "40e9cfb459ea932ec1f41ca728c2afb10676bb793b3ad87f4b67f7873eccbae4";

    fn put(root: &Path, rel: &str, body: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }

    #[test]
    fn docker_containerd_podman_crio() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        put(
            r,
            &format!("var/lib/docker/containers/{ID}/config.v2.json"),
            r#"{"Name":"/web","Config":{"Labels":{}}}"#,
        );
        put(
            r,
            &format!("{CONTAINERD_TASKS}/k8s.io/{ID}/config.json"),
            r#"{"annotations":{"io.kubernetes.cri.container-name":"agent","io.kubernetes.cri.sandbox-name":"agent-x1","io.kubernetes.cri.sandbox-namespace":"kube-system"}}"#,
        );
        put(
            r,
            &format!("{PODMAN_CONTAINERS}/containers.json"),
            &format!(r#"[{{"id":"{ID}","names":["db"]}}]"#),
        );
        put(
            r,
            &format!("{CRIO_RUN}/{ID}/userdata/config.json"),
            r#"{"annotations":{"io.kubernetes.container.name":"c","io.kubernetes.pod.name":"p","io.kubernetes.pod.namespace":"n"}}"#,
        );
        let res = NameResolver::new(r);
        assert_eq!(
            res.resolve(&Runtime::Docker, ID, None)
                .unwrap()
                .name
                .as_deref(),
            Some("web")
        );
        let k = res.resolve(&Runtime::Containerd, ID, None).unwrap();
        assert_eq!(k.name.as_deref(), Some("agent"));
        assert_eq!(k.pod.unwrap().namespace.as_deref(), Some("kube-system"));
        assert_eq!(
            res.resolve(&Runtime::Podman, ID, None)
                .unwrap()
                .name
                .as_deref(),
            Some("db")
        );
        let c = res.resolve(&Runtime::CriO, ID, None).unwrap();
        assert_eq!(
            (c.name.as_deref(), c.pod.unwrap().name.as_deref()),
            (Some("c"), Some("p"))
        );
        assert_eq!(
            res.resolve(&Runtime::Lxc, "web", None)
                .unwrap()
                .name
                .as_deref(),
            Some("web")
        );
    }

    #[test]
    fn podman_names_are_reread_for_new_containers() {
        let dir = tempfile::tempdir().unwrap();
        let file = format!("{PODMAN_CONTAINERS}/containers.json");
        put(dir.path(), &file, "[]");
        let res = NameResolver::new(dir.path());
        assert_eq!(res.resolve(&Runtime::Podman, ID, None), None);
        put(
            dir.path(),
            &file,
            &format!(r#"[{{"id":"{ID}","names":["late"]}}]"#),
        );
        std::thread::sleep(PODMAN_RELOAD);
        assert_eq!(
            res.resolve(&Runtime::Podman, ID, None)
                .unwrap()
                .name
                .as_deref(),
            Some("late")
        );
    }

    #[test]
    fn docker_state_tells_docker_from_containerd() {
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            &format!("{DOCKER_CONTAINERS}/{ID}/config.v2.json"),
            "{}",
        );
        assert!(docker_state_exists(dir.path(), ID));
        let other = "ee1ce7f35ea818835a188ca162e83d4161ff729138d981a1e6d1b304aea23448";
        assert!(!docker_state_exists(dir.path(), other));
        // ids from cgroup paths are never used to walk elsewhere
        assert!(!docker_state_exists(dir.path(), ".."));
        assert!(!docker_state_exists(dir.path(), "../containers"));
    }

    #[test]
    fn a_fifo_in_the_state_is_no_name_and_no_hang() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join(format!("{DOCKER_CONTAINERS}/{ID}"));
        fs::create_dir_all(&d).unwrap();
        nix::unistd::mkfifo(&d.join("config.v2.json"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(
            NameResolver::new(dir.path()).resolve(&Runtime::Docker, ID, None),
            None
        );
    }

    #[test]
    fn missing_or_broken_state_is_no_name() {
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            &format!("var/lib/docker/containers/{ID}/config.v2.json"),
            "{not json",
        );
        let res = NameResolver::new(dir.path());
        assert_eq!(res.resolve(&Runtime::Docker, ID, None), None);
        assert_eq!(res.resolve(&Runtime::Podman, ID, None), None);
        assert_eq!(res.resolve(&Runtime::Containerd, "../../etc", None), None);
        assert_eq!(res.resolve(&Runtime::Containerd, "x", Some("../..")), None);
    }
}
