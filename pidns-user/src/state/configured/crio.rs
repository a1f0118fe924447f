//! CRI-O: its containers in containers/storage's `containers.json` (those
//! whose metadata names a pod: CRI-O's, not Podman's), each with its OCI
//! spec in its bundle (`overlay-containers/<id>/userdata/config.json`,
//! under the run root or the graph root). Its state is runc's (`/run/runc/<id>`:
//! `exec.fifo` while created, else started); without runc's record it is
//! `unknown`.

use std::path::Path;

use serde_json::Value;

use super::{Configs, Configured, PidConfig, host_path, json_record, spec};
use crate::{
    parse::layout::Runtime,
    report::RunState,
    state::{
        oci::RUNC_ROOT,
        read_json, safe_id,
        storage::{GRAPH_ROOT, RUN_ROOT},
    },
};

pub fn configured(root: &Path, out: &mut Configs) {
    let graph = root.join(GRAPH_ROOT).join("overlay-containers");
    let Some(Value::Array(list)) = read_json(&graph.join("containers.json")) else {
        return;
    };
    for c in list {
        let Some(id) = c.get("id").and_then(Value::as_str).filter(|id| safe_id(id)) else {
            continue;
        };
        let Some(meta) = c
            .get("metadata")
            .and_then(Value::as_str)
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
            .filter(|m| m.get("pod-id").is_some())
        else {
            continue;
        };
        let bundles = [
            root.join(RUN_ROOT).join("overlay-containers"),
            graph.clone(),
        ];
        let mut found = None;
        for base in &bundles {
            let path = base.join(id).join("userdata/config.json");
            match json_record(&path) {
                Ok(Some(spec)) => found = Some((spec::oci(&spec), path)),
                Ok(None) => continue,
                Err(why) => {
                    out.problems.push(why.clone());
                    found = Some((PidConfig::Unreadable(why), path));
                }
            }
            break;
        }
        let Some((pid, source)) = found else {
            continue;
        };
        let runc = root.join(RUNC_ROOT).join(id);
        let state = if runc.join("exec.fifo").exists() {
            RunState::Created
        } else if runc.join("state.json").exists() {
            RunState::Running
        } else {
            RunState::Unknown
        };
        out.push(Configured {
            runtime: Runtime::CriO,
            id: id.to_owned(),
            name: meta.get("name").and_then(Value::as_str).map(str::to_owned),
            namespace: None,
            state,
            pid,
            source: host_path(root, &source),
            init_pid: None,
            pod: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::put;

    #[test]
    fn crio_bundles_not_podman_s() {
        let dir = tempfile::tempdir().unwrap();
        let base = format!("{GRAPH_ROOT}/overlay-containers");
        put(
            dir.path(),
            &format!("{base}/containers.json"),
            r#"[{"id":"p1","metadata":"{\"name\":\"web\"}"},
                {"id":"c1","metadata":"{\"name\":\"k8s_app\",\"pod-name\":\"x\",\"pod-id\":\"y\"}"},
                {"id":"c2","metadata":"{\"pod-id\":\"y\"}","new":1},
                {"id":"c3","metadata":"{\"pod-id\":\"y\"}"}]"#,
        );
        let host = r#"{"linux":{"namespaces":[{"type":"network"}]}}"#;
        put(dir.path(), &format!("{base}/p1/userdata/config.json"), host);
        put(
            dir.path(),
            &format!("{RUN_ROOT}/overlay-containers/c1/userdata/config.json"),
            host,
        );
        put(dir.path(), &format!("{RUNC_ROOT}/c1/state.json"), "{}");
        put(
            dir.path(),
            &format!("{base}/c2/userdata/config.json"),
            r#"{"linux":{"namespaces":[{"type":"pid"}]}}"#,
        );
        put(
            dir.path(),
            &format!("{base}/c3/userdata/config.json"),
            r#"{"linux":{"namesp"#,
        );
        let mut out = Configs::default();
        configured(dir.path(), &mut out);
        let got: Vec<_> = out
            .records
            .iter()
            .map(|r| (r.id.as_str(), r.state, r.pid.clone()))
            .collect();
        assert_eq!(got[0], ("c1", RunState::Running, PidConfig::Host));
        assert_eq!(got[1], ("c2", RunState::Unknown, PidConfig::Private));
        assert!(
            matches!(&got[2].2, PidConfig::Unreadable(_)),
            "a truncated spec: {got:?}"
        );
        assert_eq!(got.len(), 3, "Podman's are the database's: {got:?}");
        assert_eq!(out.records[0].name.as_deref(), Some("k8s_app"));
    }
}
