//! Podman: its state database, BoltDB (`libpod/bolt_state.db`, Podman 4)
//! or SQLite (`db.sql`, Podman ≥ 4.8 and 5); both are read when both are
//! there. Each container's `config` is libpod's JSON (`id`, `name`, the OCI
//! `spec`, `pidNsCtr` for `--pid=container:<id>`), its `state` JSON holds
//! libpod's state number.

use std::path::Path;

use serde_json::Value;

use super::{Configs, Configured, PidConfig, bolt, host_path, spec, sqlite};
use crate::{parse::layout::Runtime, report::RunState, state::storage::GRAPH_ROOT};

pub const BOLT_DB: &str = "libpod/bolt_state.db";
pub const SQLITE_DB: &str = "db.sql";

pub fn configured(root: &Path, out: &mut Configs) {
    let graph = root.join(GRAPH_ROOT);
    let sql = graph.join(SQLITE_DB);
    match sqlite_records(&sql) {
        Ok(rows) => add(root, &sql, rows, out),
        Err(why) => out.problems.push(why),
    }
    let bolt = graph.join(BOLT_DB);
    match bolt_records(&bolt) {
        Ok(rows) => add(root, &bolt, rows, out),
        Err(why) => out.problems.push(why),
    }
}

/// One container's `(config, state)` JSON, as stored.
type Row = (Vec<u8>, Option<Vec<u8>>);

fn add(root: &Path, db: &Path, rows: Vec<Row>, out: &mut Configs) {
    for (config, state) in rows {
        let Ok(config) = serde_json::from_slice::<Value>(&config) else {
            out.problems.push(format!(
                "{}: a container's config is not JSON",
                db.display()
            ));
            continue;
        };
        let Some(id) = config.get("id").and_then(Value::as_str) else {
            continue;
        };
        let state = state
            .and_then(|s| serde_json::from_slice::<Value>(&s).ok())
            .map_or(RunState::Unknown, |s| libpod_state(&s));
        out.push(Configured {
            runtime: Runtime::Podman,
            id: id.to_owned(),
            name: config
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            namespace: None,
            state,
            pid: pid_config(&config),
            source: host_path(root, db),
            init_pid: None,
            pod: None,
        });
    }
}

/// `pidNsCtr` (another container's namespace), else the spec's.
pub fn pid_config(config: &Value) -> PidConfig {
    if let Some(other) = config
        .get("pidNsCtr")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return PidConfig::Container(other.to_owned());
    }
    match config.get("spec") {
        Some(s) if s.is_object() => spec::oci(s),
        _ => PidConfig::Unreadable("no OCI spec in the container's config".into()),
    }
}

/// libpod's `define.ContainerStatus` number.
pub fn libpod_state(state: &Value) -> RunState {
    match state.get("state").and_then(Value::as_u64) {
        Some(3 | 8) => RunState::Running, // running, stopping
        Some(5) => RunState::Paused,
        Some(1 | 2) => RunState::Created, // configured, created
        Some(4 | 6) => RunState::Exited,  // stopped, exited
        _ => RunState::Unknown,
    }
}

fn sqlite_records(path: &Path) -> Result<Vec<Row>, String> {
    let Some(copy) = sqlite::open_copy(path)? else {
        return Ok(Vec::new());
    };
    let why = |e: rusqlite::Error| format!("{}: {e}", path.display());
    let mut stmt = copy
        .conn
        .prepare(
            "SELECT ContainerConfig.JSON, ContainerState.JSON FROM ContainerConfig \
             LEFT JOIN ContainerState ON ContainerState.ID = ContainerConfig.ID",
        )
        .map_err(why)?;
    let rows = stmt
        .query_map([], |r| Ok((blob(r, 0)?.unwrap_or_default(), blob(r, 1)?)))
        .map_err(why)?;
    rows.collect::<Result<Vec<Row>, _>>().map_err(why)
}

/// A TEXT or BLOB column's bytes.
fn blob(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<Vec<u8>>> {
    use rusqlite::types::ValueRef;
    Ok(match r.get_ref(i)? {
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(t.to_vec()),
        _ => None,
    })
}

fn bolt_records(path: &Path) -> Result<Vec<Row>, String> {
    let Some(db) = bolt::Snapshot::open(path)? else {
        return Ok(Vec::new());
    };
    db.read(|tx| {
        let Some(ctrs) = bolt::root(tx).and_then(|r| bolt::bucket(&r, b"ctr")) else {
            return Vec::new();
        };
        bolt::sub_buckets(&ctrs)
            .into_iter()
            .filter_map(|(_, c)| Some((bolt::get(&c, b"config")?, bolt::get(&c, b"state"))))
            .collect()
    })
    .ok_or_else(|| format!("{}: corrupt Bolt database", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::configured::bolt::testdb::{B, build};
    use serde_json::json;

    fn config(id: &str, spec: Value, pid_ns_ctr: Option<&str>) -> Vec<u8> {
        let mut c =
            json!({"id": id, "name": format!("n-{id}"), "spec": spec, "newField": {"a": 1}});
        if let Some(o) = pid_ns_ctr {
            c["pidNsCtr"] = json!(o);
        }
        c.to_string().into_bytes()
    }

    fn host_spec() -> Value {
        json!({"linux": {"namespaces": [{"type": "mount"}]}})
    }

    fn private_spec() -> Value {
        json!({"linux": {"namespaces": [{"type": "pid"}]}})
    }

    #[test]
    fn bolt_state_database() {
        let dir = tempfile::tempdir().unwrap();
        let ctr = |cfg: Vec<u8>, st: u64| {
            B::default()
                .val("config", &cfg)
                .val("state", json!({"state": st}).to_string().as_bytes())
        };
        let db = build(
            &B::default().bucket(
                "ctr",
                B::default()
                    .bucket("h1", ctr(config("h1", host_spec(), None), 2))
                    .bucket("p1", ctr(config("p1", private_spec(), None), 6))
                    .bucket("c1", ctr(config("c1", private_spec(), Some("h1")), 3)),
            ),
        );
        crate::state::tests::put(dir.path(), &format!("{GRAPH_ROOT}/{BOLT_DB}"), "");
        std::fs::write(dir.path().join(GRAPH_ROOT).join(BOLT_DB), db).unwrap();
        let mut out = Configs::default();
        configured(dir.path(), &mut out);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        let mut got: Vec<_> = out
            .records
            .iter()
            .map(|r| (r.id.as_str(), r.state, r.pid.clone()))
            .collect();
        got.sort_by_key(|g| g.0);
        assert_eq!(
            got,
            [
                ("c1", RunState::Running, PidConfig::Container("h1".into())),
                ("h1", RunState::Created, PidConfig::Host),
                ("p1", RunState::Exited, PidConfig::Private),
            ]
        );
        assert_eq!(
            out.records[0].source,
            Path::new("/var/lib/containers/storage/libpod/bolt_state.db")
        );
    }

    #[test]
    fn sqlite_database_in_podman_5s_schema() {
        let dir = tempfile::tempdir().unwrap();
        let graph = dir.path().join(GRAPH_ROOT);
        std::fs::create_dir_all(&graph).unwrap();
        let c = rusqlite::Connection::open(graph.join(SQLITE_DB)).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE ContainerConfig (ID TEXT PRIMARY KEY NOT NULL, Name TEXT NOT NULL, PodID TEXT, JSON TEXT NOT NULL);
             CREATE TABLE ContainerState (ID TEXT PRIMARY KEY NOT NULL, JSON TEXT NOT NULL);",
        )
        .unwrap();
        for (id, spec, st) in [("h2", host_spec(), 1), ("p2", private_spec(), 4)] {
            c.execute(
                "INSERT INTO ContainerConfig VALUES (?1, ?1, NULL, ?2)",
                (id, String::from_utf8(config(id, spec, None)).unwrap()),
            )
            .unwrap();
            c.execute(
                "INSERT INTO ContainerState VALUES (?1, ?2)",
                (id, json!({"state": st}).to_string()),
            )
            .unwrap();
        }
        let mut out = Configs::default();
        configured(dir.path(), &mut out);
        drop(c);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        let mut got: Vec<_> = out
            .records
            .iter()
            .map(|r| (r.id.as_str(), r.state, r.pid.clone(), r.name.clone()))
            .collect();
        got.sort_by_key(|g| g.0);
        assert_eq!(
            got,
            [
                (
                    "h2",
                    RunState::Created,
                    PidConfig::Host,
                    Some("n-h2".into())
                ),
                (
                    "p2",
                    RunState::Exited,
                    PidConfig::Private,
                    Some("n-p2".into())
                ),
            ]
        );
    }

    #[test]
    fn a_truncated_bolt_file_is_a_problem_named_by_its_path() {
        let dir = tempfile::tempdir().unwrap();
        crate::state::tests::put(dir.path(), &format!("{GRAPH_ROOT}/{BOLT_DB}"), "\0\0\0bolt");
        let mut out = Configs::default();
        configured(dir.path(), &mut out);
        assert!(out.records.is_empty());
        assert!(
            out.problems[0].contains("bolt_state.db"),
            "{:?}",
            out.problems
        );
    }
}
