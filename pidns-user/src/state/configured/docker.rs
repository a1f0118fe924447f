//! Docker: `containers/<id>/hostconfig.json` (`PidMode`: `""`, `host`,
//! `container:<id or name>`) and `config.v2.json` (`Name`, `State`), what
//! `docker inspect` prints as `.HostConfig.PidMode` and `.State`. A
//! container directory without `config.v2.json` is one dockerd is still
//! creating (or removing), whose hostconfig may still be the defaults.

use std::path::Path;

use serde_json::Value;

use super::{Configs, Configured, PidConfig, host_path, json_record};
use crate::{
    parse::layout::Runtime,
    report::RunState,
    state::{docker::DOCKER_ROOT, entries},
};

pub fn configured(root: &Path, out: &mut Configs) {
    let dir = root.join(DOCKER_ROOT).join("containers");
    for id in entries(&dir) {
        let hostconfig = dir.join(&id).join("hostconfig.json");
        let config = dir.join(&id).join("config.v2.json");
        let (state, name) = match json_record(&config) {
            Ok(Some(v)) => (state(&v), name(&v)),
            // dockerd writes a hostconfig.json of defaults (PidMode "")
            // first, then the real one, then config.v2.json: without it, a
            // container being created (or removed) says nothing yet.
            Ok(None) => continue,
            Err(why) => {
                out.problems.push(why);
                (RunState::Unknown, None)
            }
        };
        let pid = match json_record(&hostconfig) {
            Ok(Some(v)) => pid_mode(&v),
            Ok(None) => PidConfig::Unreadable("no hostconfig.json".into()),
            Err(why) => {
                out.problems.push(why.clone());
                PidConfig::Unreadable(why)
            }
        };
        out.push(Configured {
            runtime: Runtime::Docker,
            id,
            name,
            namespace: None,
            state,
            pid,
            source: host_path(root, &hostconfig),
            init_pid: None,
            pod: None,
        });
    }
}

/// `HostConfig.PidMode`.
pub fn pid_mode(hostconfig: &Value) -> PidConfig {
    match hostconfig.get("PidMode") {
        None | Some(Value::Null) => PidConfig::Private,
        Some(Value::String(m)) => match m.as_str() {
            "" | "private" => PidConfig::Private,
            "host" => PidConfig::Host,
            m => match m.strip_prefix("container:") {
                Some(r) if !r.is_empty() => PidConfig::Container(r.to_owned()),
                _ => PidConfig::Unreadable(format!("PidMode {m:?}")),
            },
        },
        Some(v) => PidConfig::Unreadable(format!("PidMode {v}")),
    }
}

/// `State`, as `docker ps` words it: a container never started is
/// `created` (its `StartedAt` is Go's zero time).
pub fn state(config: &Value) -> RunState {
    let Some(s) = config.get("State") else {
        return RunState::Unknown;
    };
    let flag = |k: &str| s.get(k).and_then(Value::as_bool).unwrap_or(false);
    if flag("Running") && flag("Paused") {
        return RunState::Paused;
    }
    if flag("Running") || flag("Restarting") {
        return RunState::Running;
    }
    match s.get("StartedAt").and_then(Value::as_str) {
        None => RunState::Unknown,
        Some(t) if t.is_empty() || t.starts_with("0001-01-01") => RunState::Created,
        Some(_) => RunState::Exited,
    }
}

fn name(config: &Value) -> Option<String> {
    let n = config.get("Name")?.as_str()?;
    Some(n.strip_prefix('/').unwrap_or(n).to_owned()).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{configured::testing::read, tests::put};
    use serde_json::json;

    const ZERO: &str = "0001-01-01T00:00:00Z";

    #[test]
    fn pid_modes() {
        assert_eq!(pid_mode(&json!({"PidMode": ""})), PidConfig::Private);
        assert_eq!(pid_mode(&json!({})), PidConfig::Private);
        assert_eq!(pid_mode(&json!({"PidMode": "host"})), PidConfig::Host);
        assert_eq!(
            pid_mode(&json!({"PidMode": "container:abc", "NewField": [1]})),
            PidConfig::Container("abc".into())
        );
        assert!(matches!(
            pid_mode(&json!({"PidMode": "container:"})),
            PidConfig::Unreadable(_)
        ));
        assert!(matches!(
            pid_mode(&json!({"PidMode": 3})),
            PidConfig::Unreadable(_)
        ));
    }

    #[test]
    fn states_as_docker_ps_words_them() {
        let st = |running: bool, paused: bool, started: &str| {
            state(&json!({"State": {"Running": running, "Paused": paused, "StartedAt": started}}))
        };
        assert_eq!(st(true, false, "2026-01-01T00:00:00Z"), RunState::Running);
        assert_eq!(st(true, true, "2026-01-01T00:00:00Z"), RunState::Paused);
        assert_eq!(st(false, false, ZERO), RunState::Created);
        assert_eq!(st(false, false, "2026-01-01T00:00:00Z"), RunState::Exited);
        assert_eq!(state(&json!({})), RunState::Unknown);
    }

    #[test]
    fn containers_on_disk_including_a_truncated_hostconfig() {
        let dir = tempfile::tempdir().unwrap();
        let c = |id: &str, file: &str, body: &str| {
            put(
                dir.path(),
                &format!("{DOCKER_ROOT}/containers/{id}/{file}"),
                body,
            )
        };
        let v2 = |name: &str| {
            json!({"Name": format!("/{name}"), "State": {"Running": false, "StartedAt": ZERO}})
                .to_string()
        };
        c("h", "hostconfig.json", r#"{"PidMode":"host"}"#);
        c("h", "config.v2.json", &v2("web"));
        c("t", "hostconfig.json", r#"{"PidMode":"ho"#);
        c("t", "config.v2.json", &v2("cut"));
        std::fs::create_dir_all(dir.path().join(DOCKER_ROOT).join("containers/empty")).unwrap();
        // `docker run --pid=host` as dockerd writes it: first a hostconfig
        // of defaults (PidMode ""), then the real one, then config.v2.json.
        c("n", "hostconfig.json", r#"{"PidMode":""}"#);
        let out = read(configured, dir.path());
        assert_eq!(out.records.len(), 2, "{:?}", out.records);
        let h = &out.records[0];
        assert_eq!(
            (h.pid.clone(), h.state, h.name.as_deref()),
            (PidConfig::Host, RunState::Created, Some("web"))
        );
        assert_eq!(
            h.source,
            Path::new("/var/lib/docker/containers/h/hostconfig.json")
        );
        assert!(
            matches!(&out.records[1].pid, PidConfig::Unreadable(w) if w.contains("not a whole JSON"))
        );
        assert_eq!(out.problems.len(), 1, "{:?}", out.problems);
    }
}
