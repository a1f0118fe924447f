//! The alerting rules in `deploy/prometheus` name the metrics the agent
//! exports: a metric renamed here would otherwise leave an alert that
//! never fires, and promtool's unit tests (which feed the rules their own
//! series) cannot see that.

use std::{collections::BTreeSet, path::PathBuf};

use pidns::{
    report::{Envelope, Finding, Identity, Runtime, Trigger, WatchEvent},
    watch::metrics::Metrics,
};
use serde_yaml_ng::Value;

/// Metrics the rules use that come from work merged separately: issue 14's
/// enforcement adds `pidns_enforced_total{mode,runtime}`, and counts it only
/// when it kills, so no event this test can make produces it.
const ELSEWHERE: [&str; 1] = ["pidns_enforced_total"];

fn rules() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/pidns-rules.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).expect("valid YAML")
}

/// Every `pidns_*` name in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("pidns_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The sample names of an exposition in which every family the agent
/// always exports, and the ones a finding and a loss create, have samples.
fn exported() -> BTreeSet<String> {
    let m = Metrics::new();
    let container = Identity {
        id: "c0ffee".into(),
        runtime: Runtime::Docker,
        name: Some("web".into()),
        pod: None,
        cgroup: "/docker/c0ffee".into(),
    };
    let at = Envelope {
        pid: 7,
        comm: "sh".into(),
        container,
        ts: String::new(),
    };
    m.record(&WatchEvent::HostPidns(Finding::new(Trigger::Exec, at)));
    m.record(&WatchEvent::Lost {
        stream: "findings",
        count: 1,
        total: 1,
        ts: String::new(),
    });
    m.encode()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_metric_the_rules_use_is_one_the_agent_exports() {
    let exported = exported();
    let doc = rules();
    let mut used = BTreeSet::new();
    for group in doc["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let expr = rule["expr"].as_str().expect("expr");
            for name in metric_names(expr) {
                assert!(
                    exported.contains(&name) || ELSEWHERE.contains(&name.as_str()),
                    "{} uses {name}, which the agent does not export; it exports {exported:?}",
                    rule["alert"].as_str().unwrap_or("?")
                );
                used.insert(name);
            }
        }
    }
    // The alerts the rules are for: a container sharing, an escape, a kill,
    // lost findings (and `up` for the agent itself).
    for name in [
        "pidns_containers_sharing_host_pidns",
        "pidns_findings_total",
        "pidns_enforced_total",
        "pidns_lost_events_total",
    ] {
        assert!(used.contains(name), "no rule on {name}");
    }
}

#[test]
fn names_in_an_expression() {
    assert_eq!(
        metric_names(
            "increase(pidns_findings_total{event=\"setns\"}[10m]) > 0 or pidns_x_total > 0"
        ),
        BTreeSet::from([
            "pidns_findings_total".to_owned(),
            "pidns_x_total".to_owned()
        ])
    );
}
