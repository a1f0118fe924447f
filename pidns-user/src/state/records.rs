//! Whether a runtime keeps a record of a container id on disk: what a
//! process in a cgroup named like a container's, but showing no other
//! container evidence, is asked for before it is called an unverified claim.
//! A container cannot remove its runtime's record of itself.

use std::path::Path;

use super::{
    containerd::TASKS,
    docker::DOCKER_ROOT,
    entries,
    lxc::LXC_PATH,
    nspawn::MACHINES,
    oci::{CRUN_ROOT, RUNC_ROOT},
    safe_id,
    storage::{GRAPH_ROOT, RUN_ROOT},
};
use crate::parse::layout::Runtime;

/// Whether `runtime` has a record of container `id` (in containerd
/// `namespace`, any when `None`) below the host root `root`.
pub fn has_record(root: &Path, runtime: Runtime, id: &str, namespace: Option<&str>) -> bool {
    if !safe_id(id) || namespace.is_some_and(|ns| !safe_id(ns)) {
        return false;
    }
    let dir = |rel: &str| root.join(rel).join(id).is_dir();
    let docker = || dir(&format!("{DOCKER_ROOT}/containers"));
    let storage = || {
        dir(&format!("{GRAPH_ROOT}/overlay-containers"))
            || dir(&format!("{RUN_ROOT}/overlay-containers"))
    };
    let containerd = || match namespace {
        Some(ns) => root.join(TASKS).join(ns).join(id).is_dir(),
        None => entries(&root.join(TASKS))
            .iter()
            .any(|ns| root.join(TASKS).join(ns).join(id).is_dir()),
    };
    match runtime {
        Runtime::Docker => docker(),
        Runtime::Podman | Runtime::CriO => storage(),
        Runtime::Containerd => containerd(),
        Runtime::Kubernetes => containerd() || storage() || docker(),
        Runtime::Lxc => dir(LXC_PATH),
        Runtime::SystemdNspawn => dir(MACHINES),
        Runtime::Runc => dir(RUNC_ROOT),
        Runtime::Crun => dir(CRUN_ROOT),
        Runtime::Unknown => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_by_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for rel in [
            "var/lib/docker/containers/d1",
            "var/lib/containers/storage/overlay-containers/p1",
            "run/containerd/io.containerd.runtime.v2.task/k8s.io/k1",
            "var/lib/lxc/web",
        ] {
            std::fs::create_dir_all(r.join(rel)).unwrap();
        }
        assert!(has_record(r, Runtime::Docker, "d1", None));
        assert!(!has_record(r, Runtime::Docker, "p1", None));
        assert!(has_record(r, Runtime::Podman, "p1", None));
        assert!(has_record(r, Runtime::Containerd, "k1", None));
        assert!(has_record(r, Runtime::Containerd, "k1", Some("k8s.io")));
        assert!(!has_record(r, Runtime::Containerd, "k1", Some("moby")));
        assert!(has_record(r, Runtime::Kubernetes, "k1", None));
        assert!(has_record(r, Runtime::Lxc, "web", None));
        assert!(!has_record(r, Runtime::Unknown, "web", None));
        assert!(!has_record(r, Runtime::Docker, "..", None));
        assert!(!has_record(r, Runtime::Containerd, "k1", Some("..")));
    }
}
