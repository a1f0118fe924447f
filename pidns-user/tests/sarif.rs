//! `pidns scan --format sarif` is valid SARIF 2.1.0 and says what the scan found.

mod support;

use serde_json::Value;
use support::*;

fn sarif(tree: &Tree, extra: &[&str]) -> (i32, Value) {
    let out = pidns()
        .args([
            "scan",
            "--format",
            "sarif",
            "--proc-root",
            &tree.proc_root(),
        ])
        .args(extra)
        .output()
        .expect("run");
    (
        code(&out),
        serde_json::from_slice(&out.stdout).expect("SARIF is JSON"),
    )
}

fn validate(doc: &Value) {
    let mut schema: Value =
        serde_json::from_str(include_str!("data/sarif-schema-2.1.0.json")).expect("schema");
    // The published 2.1.0 schema's `language` patterns have a stray `]` (a
    // known erratum) and are not valid regexes, so the schema would fail its
    // own meta-schema. Correct those; everything else is as published.
    fix_language_patterns(&mut schema);
    let validator = jsonschema::validator_for(&schema).expect("the SARIF schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not valid SARIF 2.1.0:\n{}",
        errors.join("\n")
    );
}

fn fix_language_patterns(v: &mut Value) {
    const BROKEN: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "pattern" && value == BROKEN {
                    *value = Value::from("^[a-zA-Z]{2}(-[a-zA-Z]{2})?$");
                } else {
                    fix_language_patterns(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fix_language_patterns),
        _ => {}
    }
}

/// A container whose evidence cannot be read: `unknown`.
const ID_D: &str = "d0d0cafe00000000000000000000000000000000000000000000000000000001";

fn result_for<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["locations"][0]["logicalLocations"][0]["name"] == id)
        .unwrap_or_else(|| panic!("no result for {id}: {doc:#}"))
}

#[test]
fn valid_sarif_with_sharing_allowed_and_unknown_containers() {
    let t = Tree::new();
    t.add(600, P::host("agent", 600).v2(&format!("/docker/{ID_B}")));
    t.add(
        601,
        P::nested("app", 601, 4026532180, 1).v2(&format!("/docker/{ID_A}")),
    );
    t.add(700, P::host("exporter", 700).v2(&format!("/docker/{ID_C}")));
    t.add(
        800,
        P::host("mystery", 800)
            .v2(&format!("/docker/{ID_D}"))
            .link(Link::Unreadable)
            .no_nspid(),
    );
    let (code, doc) = sarif(&t, &["--allow", &ID_C[..12]]);
    assert_eq!(code, 1);
    validate(&doc);
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "pidns");
    assert_eq!(run["tool"]["driver"]["rules"][0]["id"], "CIS-DOCKER-5.16");
    let results = run["results"].as_array().expect("results");
    assert_eq!(
        results.len(),
        3,
        "the isolated container is not a result: {results:#?}"
    );
    let unknown = result_for(&doc, ID_D);
    assert_eq!(unknown["level"], "warning", "{unknown:#}");
    assert!(unknown.get("suppressions").is_none());
    let shares = results
        .iter()
        .find(|r| r["locations"][0]["logicalLocations"][0]["name"] == ID_B)
        .expect("sharing result");
    assert_eq!(shares["level"], "error");
    assert!(shares.get("suppressions").is_none());
    assert!(
        shares["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .is_some_and(|u| u.ends_with("/600/ns/pid"))
    );
    let allowed = results
        .iter()
        .find(|r| r["locations"][0]["logicalLocations"][0]["name"] == ID_C)
        .expect("allowed result");
    assert_eq!(allowed["suppressions"][0]["kind"], "external");
}

#[test]
fn clean_host_is_valid_and_empty() {
    let t = Tree::new();
    let (code, doc) = sarif(&t, &[]);
    assert_eq!(code, 0);
    validate(&doc);
    assert_eq!(doc["runs"][0]["results"], serde_json::json!([]));
    assert_eq!(
        doc["runs"][0]["invocations"][0]["executionSuccessful"],
        true
    );
}

#[test]
fn the_validator_rejects_broken_sarif() {
    let t = Tree::new();
    t.add(600, P::host("agent", 600).v2(&format!("/docker/{ID_B}")));
    let (_, mut doc) = sarif(&t, &[]);
    doc["runs"][0]["results"][0]["level"] = Value::from("fatal");
    let result = std::panic::catch_unwind(|| validate(&doc));
    assert!(result.is_err(), "an invalid level must fail validation");
}

#[test]
fn fingerprints_are_stable_across_runs_with_other_pids() {
    // The same containers on two runs, their processes under other pids.
    let first = Tree::new();
    first.add(600, P::host("agent", 600).v2(&format!("/docker/{ID_B}")));
    first.add(700, P::host("exporter", 700).v2(&format!("/docker/{ID_C}")));
    let second = Tree::new();
    second.add(4242, P::host("agent", 4242).v2(&format!("/docker/{ID_B}")));
    second.add(
        5151,
        P::host("exporter", 5151).v2(&format!("/docker/{ID_C}")),
    );
    let (_, a) = sarif(&first, &[]);
    let (_, b) = sarif(&second, &[]);
    validate(&a);
    validate(&b);
    for id in [ID_B, ID_C] {
        let (ra, rb) = (result_for(&a, id), result_for(&b, id));
        assert_ne!(
            ra["locations"][0]["physicalLocation"], rb["locations"][0]["physicalLocation"],
            "the evidence file names the pid"
        );
        let fp = &ra["partialFingerprints"]["pidnsContainer/v1"];
        assert_eq!(fp, &Value::from(format!("CIS-DOCKER-5.16:docker:{id}")));
        assert_eq!(ra["partialFingerprints"], rb["partialFingerprints"]);
        assert_eq!(
            ra["locations"][0]["logicalLocations"],
            rb["locations"][0]["logicalLocations"]
        );
    }
    // Different containers, different fingerprints.
    assert_ne!(
        result_for(&a, ID_B)["partialFingerprints"],
        result_for(&a, ID_C)["partialFingerprints"]
    );
}

#[test]
fn warnings_are_valid_tool_execution_notifications() {
    let t = Tree::new();
    let (code, doc) = sarif(&t, &["--allow", "no-such-container"]);
    assert_eq!(code, 0);
    validate(&doc);
    let notes = &doc["runs"][0]["invocations"][0]["toolExecutionNotifications"];
    assert_eq!(notes.as_array().map(Vec::len), Some(1), "{doc:#}");
}

/// The second rule (a process outside its container's cgroup) and the
/// `note` of an unverified claim are valid SARIF too.
#[test]
fn outside_cgroup_results_and_claims_are_valid() {
    let t = Tree::new();
    t.root_dir("web");
    t.write(
        "roots/run/runc/web/state.json",
        r#"{"init_process_pid":900,"config":{"rootfs":"/web"},"cgroup_paths":{"":"/sys/fs/cgroup/unified/web"}}"#,
    );
    t.add(
        900,
        P::host("sleep", 900).v2("/").on_root("web", 4026532500),
    );
    t.add(
        970,
        P::host("sleep", 970)
            .v2(&format!("/user.slice/docker-{ID_C}.scope"))
            .uid(1000),
    );
    let root = t.path().join("roots").display().to_string();
    let (code, doc) = sarif(&t, &["--host-root", &root]);
    assert_eq!(code, 1);
    validate(&doc);
    let results = doc["runs"][0]["results"].as_array().expect("results");
    let rules: Vec<(&str, &str)> = results
        .iter()
        .filter_map(|r| Some((r["ruleId"].as_str()?, r["level"].as_str()?)))
        .collect();
    assert!(
        rules.contains(&("PIDNS-OUTSIDE-CGROUP", "error")),
        "{doc:#}"
    );
    assert!(
        rules.contains(&("CIS-DOCKER-5.16", "note")),
        "the claim: {doc:#}"
    );
    assert!(
        rules.contains(&("CIS-DOCKER-5.16", "error")),
        "runc web shares: {doc:#}"
    );
    let ids: Vec<&str> = doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, ["CIS-DOCKER-5.16", "PIDNS-OUTSIDE-CGROUP"]);
}

#[test]
fn a_stopped_container_configured_to_share_is_a_valid_result_at_its_record() {
    let t = Tree::new();
    t.write(
        &format!("roots/state/var/lib/docker/containers/{ID_B}/hostconfig.json"),
        r#"{"PidMode":"host"}"#,
    );
    t.write(
        &format!("roots/state/var/lib/docker/containers/{ID_B}/config.v2.json"),
        r#"{"Name":"/waiting","State":{"Running":false,"StartedAt":"0001-01-01T00:00:00Z"}}"#,
    );
    let root = t.root_dir("state").display().to_string();
    let (code, doc) = sarif(&t, &["--host-root", &root]);
    assert_eq!(code, 1);
    validate(&doc);
    let result = &doc["runs"][0]["results"][0];
    assert_eq!(result["level"], "error");
    assert!(
        result["message"]["text"].as_str().is_some_and(
            |m| m.contains("configured to share") && m.contains("not running (created)")
        ),
        "{result:#}"
    );
    assert_eq!(
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        format!("/var/lib/docker/containers/{ID_B}/hostconfig.json")
    );
}
