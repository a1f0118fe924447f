//! Kubernetes static pods: the kubelet's manifests
//! (`/etc/kubernetes/manifests/*`, YAML or JSON, files not starting with a
//! dot, as the kubelet reads them). `spec.hostPID: true` shares the host PID
//! namespace, for every container of the pod. A manifest is a pod, not a
//! container: the engine sets it beside each running container of that pod
//! (the mirror pod is `<name>-<node>`), or reports the pod on its own.

use std::{io::Read as _, path::Path};

use serde_json::Value;

use super::{Configs, Configured, PidConfig, host_path};
use crate::{
    parse::layout::Runtime,
    report::{Pod, RunState},
    state::entries,
};

pub const MANIFESTS: &str = "etc/kubernetes/manifests";
const MAX_MANIFEST: u64 = 1024 * 1024;

pub fn configured(root: &Path, out: &mut Configs) {
    let dir = root.join(MANIFESTS);
    let mut files = entries(&dir);
    files.sort();
    for file in files.into_iter().filter(|f| !f.starts_with('.')) {
        let path = dir.join(&file);
        let pod = match manifest(&path) {
            Ok(Some(pod)) => pod,
            Ok(None) => continue,
            Err(why) => {
                out.problems.push(why);
                continue;
            }
        };
        let (Some(name), namespace) = (
            pod.pointer("/metadata/name").and_then(Value::as_str),
            pod.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default"),
        ) else {
            continue;
        };
        let pid = match pod.pointer("/spec/hostPID") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => PidConfig::Private,
            Some(Value::Bool(true)) => PidConfig::Host,
            Some(v) => PidConfig::Unreadable(format!("hostPID: {v}")),
        };
        out.push(Configured {
            runtime: Runtime::Kubernetes,
            id: format!("{namespace}/{name}"),
            name: Some(name.to_owned()),
            namespace: None,
            state: RunState::Unknown,
            pid,
            source: host_path(root, &path),
            init_pid: None,
            pod: Some(Pod {
                uid: None,
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
            }),
        });
    }
}

/// A manifest's pod: `Ok(None)` for what is not a regular file or not a
/// `Pod`, `Err` for one that does not parse.
fn manifest(path: &Path) -> Result<Option<Value>, String> {
    let Ok(f) = crate::procfs::open_regular(path) else {
        return Ok(None);
    };
    let mut text = String::new();
    f.take(MAX_MANIFEST)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| format!("{}: not a whole manifest ({e})", path.display()))?;
    Ok((doc.get("kind").and_then(Value::as_str) == Some("Pod")).then_some(doc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{
        configured::testing::{pids, read},
        tests::put,
    };

    #[test]
    fn static_pod_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let m = |f: &str, body: &str| put(dir.path(), &format!("{MANIFESTS}/{f}"), body);
        m(
            "etcd.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\n  x-new: 1\nspec:\n  hostNetwork: true\n  containers: []\n",
        );
        m(
            "agent.yaml",
            "kind: Pod\nmetadata: {name: agent}\nspec: {hostPID: true}\n",
        );
        m(
            "agent.json",
            r#"{"kind":"Pod","metadata":{"name":"j"},"spec":{"hostPID":true}}"#,
        );
        m(
            ".hidden.yaml",
            "kind: Pod\nmetadata: {name: h}\nspec: {hostPID: true}\n",
        );
        m("cut.yaml", "kind: Pod\nmetadata:\n  name: [cut");
        m("cm.yaml", "kind: ConfigMap\nmetadata: {name: c}\n");
        let out = read(configured, dir.path());
        assert_eq!(
            pids(&out),
            [
                ("default/agent", PidConfig::Host),
                ("default/j", PidConfig::Host),
                ("kube-system/etcd", PidConfig::Private),
            ]
        );
        assert_eq!(out.problems.len(), 1, "{:?}", out.problems);
        assert!(out.problems[0].contains("cut.yaml"));
    }
}
