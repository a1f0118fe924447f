//! containerd: each task's bundle (`/run/containerd/io.containerd.runtime.v2.task/<namespace>/<id>`)
//! holds its OCI `config.json`, whose `root.path` (relative to the bundle,
//! or absolute with `ctr run --rootfs`) is the container's root, and its
//! init's pid (`init.pid`). Docker's containers are containerd's in the
//! `moby` namespace.

use std::path::{Path, PathBuf};

use super::{CgroupRecord, Recorded, entries, read_json, read_text, under};
use crate::parse::layout::Runtime;

pub const TASKS: &str = "run/containerd/io.containerd.runtime.v2.task";

pub fn recorded(root: &Path, out: &mut Vec<Recorded>) {
    let tasks = root.join(TASKS);
    for ns in entries(&tasks) {
        for id in entries(&tasks.join(&ns)) {
            let bundle = PathBuf::from("/").join(TASKS).join(&ns).join(&id);
            let Some(spec) = read_json(&under(root, &bundle).join("config.json")) else {
                continue;
            };
            let Some(rootfs) = spec.pointer("/root/path").and_then(|p| p.as_str()) else {
                continue;
            };
            let cgroup = super::oci::spec_cgroup(&spec);
            let init_pid =
                read_text(&under(root, &bundle).join("init.pid")).and_then(|p| p.parse().ok());
            let (runtime, namespace) = if ns == "moby" {
                (Runtime::Docker, None)
            } else {
                (Runtime::Containerd, Some(ns.clone()))
            };
            out.push(Recorded {
                runtime,
                id,
                namespace,
                rootfs: bundle.join(rootfs),
                init_pid,
                cgroup: cgroup.unwrap_or(CgroupRecord::Layout),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::put;

    #[test]
    fn bundles_name_their_root_relative_or_absolute() {
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            &format!("{TASKS}/pidnst/web/config.json"),
            r#"{"root":{"path":"/srv/rootfs"},"linux":{"cgroupsPath":"/pidnst/web"}}"#,
        );
        put(
            dir.path(),
            &format!("{TASKS}/pidnst/web/init.pid"),
            "4242\n",
        );
        put(
            dir.path(),
            &format!("{TASKS}/moby/abc/config.json"),
            r#"{"root":{"path":"rootfs"}}"#,
        );
        let mut out = Vec::new();
        recorded(dir.path(), &mut out);
        out.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(out[0].runtime, Runtime::Docker);
        assert_eq!(
            out[0].rootfs,
            PathBuf::from(format!("/{TASKS}/moby/abc/rootfs"))
        );
        assert_eq!(out[1].namespace.as_deref(), Some("pidnst"));
        assert_eq!(out[1].rootfs, PathBuf::from("/srv/rootfs"));
        assert_eq!(out[1].init_pid, Some(4242));
        assert_eq!(out[1].cgroup, CgroupRecord::Path("/pidnst/web".into()));
    }
}
