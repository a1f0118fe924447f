//! Docker (overlay2): `image/overlay2/layerdb/mounts/<container id>/mount-id`
//! names the layer whose `merged` directory is the container's root.

use std::path::{Path, PathBuf};

use super::{CgroupRecord, Recorded, entries, read_text, safe_id};
use crate::parse::layout::Runtime;

pub const DOCKER_ROOT: &str = "var/lib/docker";
const LAYERDB_MOUNTS: &str = "image/overlay2/layerdb/mounts";

pub fn recorded(root: &Path, out: &mut Vec<Recorded>) {
    let docker = root.join(DOCKER_ROOT);
    let mounts = docker.join(LAYERDB_MOUNTS);
    for id in entries(&mounts) {
        let Some(mount_id) = read_text(&mounts.join(&id).join("mount-id")) else {
            continue;
        };
        if !safe_id(&mount_id) {
            continue;
        }
        out.push(Recorded {
            runtime: Runtime::Docker,
            id,
            namespace: None,
            rootfs: PathBuf::from("/")
                .join(DOCKER_ROOT)
                .join("overlay2")
                .join(mount_id)
                .join("merged"),
            init_pid: None,
            cgroup: CgroupRecord::Layout,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::put;

    #[test]
    fn layers_name_the_merged_root() {
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            &format!("{DOCKER_ROOT}/{LAYERDB_MOUNTS}/c1/mount-id"),
            "700e77f9",
        );
        put(
            dir.path(),
            &format!("{DOCKER_ROOT}/{LAYERDB_MOUNTS}/c2/mount-id"),
            "../../etc",
        );
        let mut out = Vec::new();
        recorded(dir.path(), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].id, "c1");
        assert_eq!(
            out[0].rootfs,
            PathBuf::from("/var/lib/docker/overlay2/700e77f9/merged")
        );
    }
}
