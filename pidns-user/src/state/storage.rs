//! containers/storage, Podman's and CRI-O's: `overlay-containers/containers.json`
//! lists the containers, and each one's OCI spec
//! (`overlay-containers/<id>/userdata/config.json`) names its root (its
//! layer's `merged` directory, or the directory given with `--rootfs`).
//! CRI-O's containers carry their pod in `metadata`; Podman's do not.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{CgroupRecord, Recorded, read_json, read_text, safe_id};
use crate::parse::layout::Runtime;

/// Rootful graph root and run root.
pub const GRAPH_ROOT: &str = "var/lib/containers/storage";
pub const RUN_ROOT: &str = "run/containers/storage";

pub fn recorded(root: &Path, out: &mut Vec<Recorded>) {
    let containers = root.join(GRAPH_ROOT).join("overlay-containers");
    let Some(Value::Array(list)) = read_json(&containers.join("containers.json")) else {
        return;
    };
    for c in list {
        let Some(id) = c.get("id").and_then(Value::as_str).filter(|id| safe_id(id)) else {
            continue;
        };
        let spec = [&containers, &root.join(RUN_ROOT).join("overlay-containers")]
            .iter()
            .find_map(|base| read_json(&base.join(id).join("userdata/config.json")));
        let Some(spec) = spec else { continue };
        let Some(rootfs) = spec.pointer("/root/path").and_then(Value::as_str) else {
            continue;
        };
        let init_pid = read_text(
            &root
                .join(RUN_ROOT)
                .join("overlay-containers")
                .join(id)
                .join("userdata/pidfile"),
        )
        .and_then(|p| p.parse().ok());
        // CRI-O's metadata is its CRI request's: it names the pod.
        let crio = c
            .get("metadata")
            .and_then(Value::as_str)
            .is_some_and(|m| m.contains("\"pod-id\""));
        out.push(Recorded {
            runtime: if crio { Runtime::CriO } else { Runtime::Podman },
            id: id.to_owned(),
            namespace: None,
            rootfs: PathBuf::from(rootfs),
            init_pid,
            cgroup: super::oci::spec_cgroup(&spec).unwrap_or(CgroupRecord::Layout),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::put;

    #[test]
    fn podman_and_crio_containers_by_their_spec() {
        let dir = tempfile::tempdir().unwrap();
        let base = format!("{GRAPH_ROOT}/overlay-containers");
        put(
            dir.path(),
            &format!("{base}/containers.json"),
            r#"[{"id":"p1","layer":"l1","metadata":"{\"name\":\"web\"}"},
                {"id":"c1","layer":"l2","metadata":"{\"pod-name\":\"x\",\"pod-id\":\"y\"}"},
                {"id":"../x"}, {"id":"nospec"}]"#,
        );
        put(
            dir.path(),
            &format!("{base}/p1/userdata/config.json"),
            r#"{"root":{"path":"/var/lib/containers/storage/overlay/l1/merged"},"linux":{"cgroupsPath":"/libpod_parent/libpod-p1"}}"#,
        );
        put(
            dir.path(),
            &format!("{RUN_ROOT}/overlay-containers/p1/userdata/pidfile"),
            "77",
        );
        put(
            dir.path(),
            &format!("{RUN_ROOT}/overlay-containers/c1/userdata/config.json"),
            r#"{"root":{"path":"/srv/c1"}}"#,
        );
        let mut out = Vec::new();
        recorded(dir.path(), &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(
            (out[0].runtime, out[0].init_pid),
            (Runtime::Podman, Some(77))
        );
        assert_eq!(
            out[0].cgroup,
            CgroupRecord::Path("/libpod_parent/libpod-p1".into())
        );
        assert_eq!((out[1].runtime, out[1].id.as_str()), (Runtime::CriO, "c1"));
        assert_eq!(out[1].cgroup, CgroupRecord::Layout);
    }
}
