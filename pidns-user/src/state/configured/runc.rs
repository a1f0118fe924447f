//! OCI runtimes on their own. runc: `/run/runc/<id>/state.json`, the
//! libcontainer config it created the container with (`config.namespaces`).
//! crun: `/run/crun/<id>/config.json`, the OCI spec it keeps of the
//! container, and `status` beside it. `exec.fifo` in either's directory
//! means created, not started; otherwise the runtime recorded it as
//! started, and whether it still runs is the kernel's to say (the engine).
//! Containers that Docker, Podman or containerd run through them are listed
//! under those first.

use std::path::Path;

use serde_json::Value;

use super::{Configs, Configured, PidConfig, host_path, json_record, spec};
use crate::{
    parse::layout::Runtime,
    report::RunState,
    state::{
        entries,
        oci::{CRUN_ROOT, RUNC_ROOT},
    },
};

pub fn configured(root: &Path, out: &mut Configs) {
    runc(root, out);
    crun(root, out);
}

fn runc(root: &Path, out: &mut Configs) {
    let dir = root.join(RUNC_ROOT);
    for id in entries(&dir) {
        let path = dir.join(&id).join("state.json");
        let (pid, init_pid) = match json_record(&path) {
            Ok(Some(state)) => (
                match state.get("config") {
                    Some(c) if c.is_object() => spec::libcontainer(c),
                    _ => PidConfig::Unreadable("no config in state.json".into()),
                },
                pid_in(&state, "init_process_pid"),
            ),
            Ok(None) => continue,
            Err(why) => {
                out.problems.push(why.clone());
                (PidConfig::Unreadable(why), None)
            }
        };
        let state = started_or_created(&dir.join(&id));
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

fn crun(root: &Path, out: &mut Configs) {
    let dir = root.join(CRUN_ROOT);
    for id in entries(&dir) {
        let at = dir.join(&id);
        let path = at.join("config.json");
        let pid = match json_record(&path) {
            Ok(Some(spec)) => spec::oci(&spec),
            Ok(None) => continue,
            Err(why) => {
                out.problems.push(why.clone());
                PidConfig::Unreadable(why)
            }
        };
        let init_pid = json_record(&at.join("status"))
            .ok()
            .flatten()
            .and_then(|status| pid_in(&status, "pid"));
        out.push(Configured {
            runtime: Runtime::Crun,
            id,
            name: None,
            namespace: None,
            state: started_or_created(&at),
            pid,
            source: host_path(root, &path),
            init_pid,
            pod: None,
        });
    }
}

/// A pid recorded under `key`.
fn pid_in(record: &Value, key: &str) -> Option<u32> {
    record
        .get(key)
        .and_then(Value::as_u64)
        .and_then(|p| u32::try_from(p).ok())
}

/// Created while the runtime's `exec.fifo` waits for `start`.
fn started_or_created(state_dir: &Path) -> RunState {
    if state_dir.join("exec.fifo").exists() {
        RunState::Created
    } else {
        RunState::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{configured::testing::read, oci::CRUN_ROOT, tests::put};

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

    #[test]
    fn crun_state_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let status = |pid: u32| format!(r#"{{"pid":{pid},"rootfs":"rootfs","bundle":"/b"}}"#);
        put(
            dir.path(),
            &format!("{CRUN_ROOT}/host/config.json"),
            r#"{"linux":{"namespaces":[{"type":"mount"}]},"x-new":1}"#,
        );
        put(dir.path(), &format!("{CRUN_ROOT}/host/status"), &status(42));
        put(dir.path(), &format!("{CRUN_ROOT}/host/exec.fifo"), "");
        put(
            dir.path(),
            &format!("{CRUN_ROOT}/own/config.json"),
            r#"{"linux":{"namespaces":[{"type":"pid"}]}}"#,
        );
        put(
            dir.path(),
            &format!("{CRUN_ROOT}/cut/config.json"),
            r#"{"linux":{"names"#,
        );
        std::fs::create_dir_all(dir.path().join(CRUN_ROOT).join("empty")).unwrap();
        let out = read(configured, dir.path());
        let got: Vec<_> = out
            .records
            .iter()
            .map(|r| (r.id.as_str(), r.runtime, r.state, r.init_pid))
            .collect();
        assert_eq!(
            got,
            [
                ("cut", Runtime::Crun, RunState::Running, None),
                ("host", Runtime::Crun, RunState::Created, Some(42)),
                ("own", Runtime::Crun, RunState::Running, None),
            ]
        );
        assert!(matches!(out.records[0].pid, PidConfig::Unreadable(_)));
        assert_eq!(out.records[1].pid, PidConfig::Host);
        assert_eq!(out.records[2].pid, PidConfig::Private);
        assert!(
            out.records[1].source.ends_with("run/crun/host/config.json"),
            "{:?}",
            out.records[1].source
        );
    }
}
