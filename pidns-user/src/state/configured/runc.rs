//! runc on its own: `/run/runc/<id>/state.json`, the libcontainer config it
//! created the container with (`config.namespaces`). `exec.fifo` beside it
//! means created, not started; otherwise runc recorded it as started, and
//! whether it still runs is the kernel's to say (the engine). Containers
//! that Docker, Podman or containerd run through runc are listed under
//! those first.

use std::path::Path;

use super::{Configs, Configured, PidConfig, host_path, json_record, spec};
use crate::{
    parse::layout::Runtime,
    report::RunState,
    state::{entries, oci::RUNC_ROOT},
};

pub fn configured(root: &Path, out: &mut Configs) {
    let dir = root.join(RUNC_ROOT);
    for id in entries(&dir) {
        let path = dir.join(&id).join("state.json");
        let (pid, init_pid) = match json_record(&path) {
            Ok(Some(state)) => (
                match state.get("config") {
                    Some(c) if c.is_object() => spec::libcontainer(c),
                    _ => PidConfig::Unreadable("no config in state.json".into()),
                },
                state
                    .get("init_process_pid")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|p| u32::try_from(p).ok()),
            ),
            Ok(None) => continue,
            Err(why) => {
                out.problems.push(why.clone());
                (PidConfig::Unreadable(why), None)
            }
        };
        let state = if dir.join(&id).join("exec.fifo").exists() {
            RunState::Created
        } else {
            RunState::Running
        };
        out.push(Configured {
            runtime: Runtime::Runc,
            id,
            name: None,
            namespace: None,
            state,
            pid,
            source: host_path(root, &path),
            init_pid,
            pod: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{configured::testing::read, tests::put};

    #[test]
    fn runc_state_files() {
        let dir = tempfile::tempdir().unwrap();
        let st = |ns: &str| {
            format!(
                r#"{{"id":"x","init_process_pid":42,"config":{{"rootfs":"/r","namespaces":[{ns}]}},"x-new":1}}"#
            )
        };
        put(
            dir.path(),
            &format!("{RUNC_ROOT}/host/state.json"),
            &st(r#"{"type":"NEWNS","path":""}"#),
        );
        put(
            dir.path(),
            &format!("{RUNC_ROOT}/own/state.json"),
            &st(r#"{"type":"NEWPID","path":""}"#),
        );
        put(dir.path(), &format!("{RUNC_ROOT}/own/exec.fifo"), "");
        put(
            dir.path(),
            &format!("{RUNC_ROOT}/cut/state.json"),
            r#"{"config":{"names"#,
        );
        let out = read(configured, dir.path());
        let got: Vec<_> = out
            .records
            .iter()
            .map(|r| (r.id.as_str(), r.state, r.pid.clone()))
            .collect();
        assert!(matches!(&got[0].2, PidConfig::Unreadable(_)));
        assert_eq!(got[1], ("host", RunState::Running, PidConfig::Host));
        assert_eq!(got[2], ("own", RunState::Created, PidConfig::Private));
        assert_eq!(out.problems.len(), 1);
        assert_eq!(out.records[1].init_pid, Some(42));
    }
}
