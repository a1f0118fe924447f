//! containerd: `io.containerd.metadata.v1.bolt/meta.db`, bucket
//! `v1/<namespace>/containers/<id>`, whose `spec` is the OCI spec as a
//! protobuf `Any` (its value the spec's JSON). Every namespace is read;
//! Docker's (`moby`) are listed under Docker first. Its state: a task's
//! bundle (`io.containerd.runtime.v2.task/<namespace>/<id>`) is a running
//! task, or a created one while runc's `exec.fifo` waits; none is
//! `created` (a container without a task, as `ctr container create` leaves
//! it, or one whose task was deleted).

use std::path::Path;

use prost::Message as _;

use super::{Configs, Configured, PidConfig, bolt, host_path, spec};
use crate::{
    parse::layout::Runtime,
    report::RunState,
    state::{containerd::TASKS, safe_id},
};

pub const META_DB: &str = "var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db";
/// runc's state root for containerd's shims: `<this>/<namespace>/<id>`.
const RUNC_STATE: &str = "run/containerd/runc";

pub fn configured(root: &Path, out: &mut Configs) {
    let path = root.join(META_DB);
    let specs = match specs(&path) {
        Ok(s) => s,
        Err(why) => return out.problems.push(why),
    };
    for (ns, id, spec_bytes) in specs {
        if !safe_id(&ns) || !safe_id(&id) {
            continue;
        }
        let pid = match spec_bytes.as_deref().map(decode) {
            Some(Ok(spec)) => spec::oci(&spec),
            Some(Err(why)) => PidConfig::Unreadable(why),
            None => PidConfig::Unreadable("no spec".into()),
        };
        let state = task_state(root, &ns, &id);
        out.push(Configured {
            runtime: Runtime::Containerd,
            id,
            name: None,
            namespace: Some(ns),
            state,
            pid,
            source: host_path(root, &path),
            init_pid: None,
            pod: None,
        });
    }
}

/// A container's namespace, id and spec (as stored).
type Spec = (String, String, Option<Vec<u8>>);

/// Every container's.
fn specs(path: &Path) -> Result<Vec<Spec>, String> {
    let Some(db) = bolt::Snapshot::open(path)? else {
        return Ok(Vec::new());
    };
    db.read(|tx| {
        let Some(v1) = bolt::root(tx).and_then(|r| bolt::bucket(&r, b"v1")) else {
            return Vec::new();
        };
        let mut all = Vec::new();
        for (ns, b) in bolt::sub_buckets(&v1) {
            let Some(containers) = bolt::bucket(&b, b"containers") else {
                continue;
            };
            for (id, c) in bolt::sub_buckets(&containers) {
                all.push((ns.clone(), id, bolt::get(&c, b"spec")));
            }
        }
        all
    })
    .ok_or_else(|| format!("{}: corrupt Bolt database", path.display()))
}

/// The spec's JSON out of its protobuf `Any`.
pub fn decode(any: &[u8]) -> Result<serde_json::Value, String> {
    let any = prost_types::Any::decode(any).map_err(|e| format!("spec: {e}"))?;
    serde_json::from_slice(&any.value).map_err(|e| format!("spec ({}): {e}", any.type_url))
}

fn task_state(root: &Path, ns: &str, id: &str) -> RunState {
    if !root.join(TASKS).join(ns).join(id).is_dir() {
        return RunState::Created;
    }
    if root
        .join(RUNC_STATE)
        .join(ns)
        .join(id)
        .join("exec.fifo")
        .exists()
    {
        RunState::Created
    } else {
        RunState::Running
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::state::configured::bolt::testdb::{B, build};
    use serde_json::json;

    pub(crate) fn any(spec: &serde_json::Value) -> Vec<u8> {
        prost_types::Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
            value: spec.to_string().into_bytes(),
        }
        .encode_to_vec()
    }

    #[test]
    fn every_namespace_s_specs() {
        let dir = tempfile::tempdir().unwrap();
        let ctr = |spec: Vec<u8>| {
            B::default()
                .val("spec", &spec)
                .bucket("labels", B::default())
        };
        let host = any(&json!({"linux": {"namespaces": [{"type": "mount"}]}}));
        let joined =
            any(&json!({"linux": {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}}));
        let bare = any(&json!({"ociVersion": "1.1.0", "process": {}}));
        let db = build(
            &B::default().bucket(
                "v1",
                B::default()
                    .bucket(
                        "a",
                        B::default().bucket(
                            "containers",
                            B::default().bucket("h", ctr(host)).bucket("j", ctr(joined)),
                        ),
                    )
                    .bucket(
                        "b",
                        B::default().bucket(
                            "containers",
                            B::default()
                                .bucket("n", ctr(bare))
                                .bucket("x", ctr(b"\xff\xff".to_vec())),
                        ),
                    )
                    .bucket("c", B::default().bucket("images", B::default())),
            ),
        );
        let p = dir.path().join(META_DB);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, db).unwrap();
        std::fs::create_dir_all(dir.path().join(TASKS).join("a/h")).unwrap();
        let mut out = Configs::default();
        configured(dir.path(), &mut out);
        let got: Vec<_> = out
            .records
            .iter()
            .map(|r| {
                (
                    r.namespace.as_deref().unwrap(),
                    r.id.as_str(),
                    r.state,
                    r.pid.clone(),
                )
            })
            .collect();
        assert_eq!(got[0], ("a", "h", RunState::Running, PidConfig::Host));
        assert_eq!(
            got[1],
            (
                "a",
                "j",
                RunState::Created,
                PidConfig::Path("/proc/1/ns/pid".into())
            )
        );
        assert_eq!(
            got[2],
            ("b", "n", RunState::Created, PidConfig::Host),
            "a spec without linux"
        );
        assert!(matches!(&got[3].3, PidConfig::Unreadable(_)), "{got:?}");
    }
}
