//! OCI runtimes on their own: runc's `/run/runc/<id>/state.json` (the
//! container's init pid, root filesystem and cgroups) and crun's
//! `/run/crun/<id>/status`. Containers that Docker, Podman or containerd
//! run through them are listed under those first.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{CgroupRecord, Recorded, cgroup_below_mount, entries, read_json};
use crate::parse::layout::Runtime;

pub const RUNC_ROOT: &str = "run/runc";
pub const CRUN_ROOT: &str = "run/crun";

pub fn recorded(root: &Path, out: &mut Vec<Recorded>) {
    let runc = root.join(RUNC_ROOT);
    for id in entries(&runc) {
        let Some(state) = read_json(&runc.join(&id).join("state.json")) else {
            continue;
        };
        let Some(rootfs) = state.pointer("/config/rootfs").and_then(Value::as_str) else {
            continue;
        };
        out.push(Recorded {
            runtime: Runtime::Runc,
            id,
            namespace: None,
            rootfs: PathBuf::from(rootfs),
            init_pid: pid(state.get("init_process_pid")),
            cgroup: runc_cgroup(&state),
        });
    }
    let crun = root.join(CRUN_ROOT);
    for id in entries(&crun) {
        let Some(status) = read_json(&crun.join(&id).join("status")) else {
            continue;
        };
        let Some(rootfs) = crun_rootfs(&status) else {
            continue;
        };
        let cgroup = status
            .get("cgroup-path")
            .and_then(Value::as_str)
            .filter(|p| p.starts_with('/'))
            .map_or(CgroupRecord::Unknown, |p| CgroupRecord::Path(p.into()));
        out.push(Recorded {
            runtime: Runtime::Crun,
            id,
            namespace: None,
            rootfs,
            init_pid: pid(status.get("pid")),
            cgroup,
        });
    }
}

/// crun's `rootfs` is the spec's `root.path` as given: relative to the
/// bundle when it is not absolute.
fn crun_rootfs(status: &Value) -> Option<PathBuf> {
    let rootfs = Path::new(status.get("rootfs").and_then(Value::as_str)?);
    if rootfs.is_absolute() {
        return Some(rootfs.to_path_buf());
    }
    let bundle = Path::new(status.get("bundle").and_then(Value::as_str)?);
    bundle.is_absolute().then(|| bundle.join(rootfs))
}

fn pid(v: Option<&Value>) -> Option<u32> {
    v.and_then(Value::as_u64)
        .and_then(|p| u32::try_from(p).ok())
}

/// runc's `cgroup_paths`, by hierarchy: the unified one's (key ``), else
/// systemd's named one's, as `/proc/<pid>/cgroup` would show it.
fn runc_cgroup(state: &Value) -> CgroupRecord {
    let paths = state.get("cgroup_paths");
    let at = |key: &str| paths.and_then(|p| p.get(key)).and_then(Value::as_str);
    at("")
        .and_then(|p| cgroup_below_mount(p, true))
        .or_else(|| at("name=systemd").and_then(|p| cgroup_below_mount(p, false)))
        .map_or(CgroupRecord::Unknown, CgroupRecord::Path)
}

/// An OCI spec's `linux.cgroupsPath`, when it is a cgroupfs path (systemd's
/// `slice:prefix:name` form is left to the cgroup layouts).
pub fn spec_cgroup(spec: &Value) -> Option<CgroupRecord> {
    let path = spec.pointer("/linux/cgroupsPath").and_then(Value::as_str)?;
    (path.starts_with('/') && !path.contains(':')).then(|| CgroupRecord::Path(path.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::put;

    #[test]
    fn runc_state_and_crun_status() {
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            &format!("{RUNC_ROOT}/pidnst-r/state.json"),
            r#"{"id":"pidnst-r","init_process_pid":18379,"config":{"rootfs":"/run/pidns-tests/rootfs","cgroups":{"path":""}},
                "cgroup_paths":{"":"/sys/fs/cgroup/unified/pidnst-r","memory":"/sys/fs/cgroup/memory/process_api/x/pidnst-r"}}"#,
        );
        put(
            dir.path(),
            &format!("{CRUN_ROOT}/0b43/status"),
            r#"{"pid":18295,"cgroup-path":"/libpod_parent/libpod-0b43","rootfs":"/srv/r"}"#,
        );
        put(dir.path(), &format!("{RUNC_ROOT}/broken/state.json"), "{");
        // `crun create` of a bundle whose root.path is relative
        put(
            dir.path(),
            &format!("{CRUN_ROOT}/direct/status"),
            r#"{"pid":7,"cgroup-path":"/direct","rootfs":"rootfs","bundle":"/tmp/b"}"#,
        );
        put(
            dir.path(),
            &format!("{CRUN_ROOT}/nobundle/status"),
            r#"{"pid":8,"rootfs":"rootfs"}"#,
        );
        let mut out = Vec::new();
        recorded(dir.path(), &mut out);
        let direct = out.iter().find(|r| r.id == "direct").expect("direct");
        assert_eq!(direct.rootfs, PathBuf::from("/tmp/b/rootfs"));
        assert!(
            out.iter().all(|r| r.id != "nobundle"),
            "a relative root without its bundle is no root: {out:?}"
        );
        out.retain(|r| r.id != "direct");
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(
            (out[0].runtime, out[0].id.as_str(), out[0].init_pid),
            (Runtime::Runc, "pidnst-r", Some(18379))
        );
        assert_eq!(out[0].rootfs, PathBuf::from("/run/pidns-tests/rootfs"));
        assert_eq!(out[0].cgroup, CgroupRecord::Path("/pidnst-r".into()));
        assert_eq!(
            (out[1].runtime, out[1].init_pid),
            (Runtime::Crun, Some(18295))
        );
        assert_eq!(
            out[1].cgroup,
            CgroupRecord::Path("/libpod_parent/libpod-0b43".into())
        );
    }

    #[test]
    fn spec_cgroups_only_as_cgroupfs_paths() {
        let spec = |p: &str| serde_json::json!({"linux": {"cgroupsPath": p}});
        assert_eq!(
            spec_cgroup(&spec("/pidnst/web")),
            Some(CgroupRecord::Path("/pidnst/web".into()))
        );
        assert_eq!(spec_cgroup(&spec("system.slice:docker:abc")), None);
        assert_eq!(spec_cgroup(&spec("relative")), None);
        assert_eq!(spec_cgroup(&serde_json::json!({})), None);
    }
}
