//! The alerting rules of `deploy/prometheus`: promtool's check and the
//! rules' unit tests, and a real Prometheus that scrapes a running
//! `pidns watch` with the rules loaded, as a deployment would.

use std::time::{Duration, Instant};

use pidns_tests::{
    Container, Pid, Rt, Spec,
    pidns::Watch,
    prometheus::{PROMTOOL, Prometheus, SERVER, rules_dir},
    ready, sh, skip, test_name,
};
use serde_json::Value;

/// Generous: with the test server's 1 s intervals an alert fires within
/// a few seconds of its series.
const WAIT: Duration = Duration::from_secs(60);

const RULES: &str = "pidns-rules.yaml";
const RULE_TESTS: &str = "pidns-rules.test.yaml";
const SHARING: &str = "PidnsContainerSharingHostPidns";

/// Prometheus's `program` is installed (`pidns-harness up` installs
/// Debian's `prometheus` package), or the test skips (fails when
/// privileged tests are required).
fn have(test: &str, program: &str) -> Option<()> {
    if sh::have(program) {
        return Some(());
    }
    skip::skip(
        test,
        &format!(
            "{program} is not installed (`pidns-harness up` installs Debian's prometheus package)"
        ),
    );
    None
}

/// Polls `f` until it gives a value, for at most [`WAIT`].
fn poll<T>(what: &str, mut f: impl FnMut() -> anyhow::Result<Option<T>>) -> anyhow::Result<T> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            anyhow::bail!("{what}: not within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn alert_about<'a>(alerts: &'a [Value], container_id: &str) -> Option<&'a Value> {
    alerts.iter().find(|a| {
        a["labels"]["alertname"] == SHARING && a["labels"]["container_id"] == container_id
    })
}

/// `promtool check rules` accepts the rules, and their unit tests (every
/// alert firing and not firing) pass.
#[test]
fn rules_pass_promtool_check_and_their_unit_tests() {
    let Some(()) = have(test_name!(), PROMTOOL) else {
        return;
    };
    let dir = rules_dir();
    for (verb, file) in [("check", RULES), ("test", RULE_TESTS)] {
        let path = dir.join(file);
        let args = [verb, "rules", path.to_str().expect("UTF-8 path")];
        let out = sh::output_with(PROMTOOL, &args, sh::DEFAULT_TIMEOUT).expect("promtool");
        assert!(
            out.status.success(),
            "promtool {verb} rules {file} failed:\n{}{}",
            out.stdout,
            out.stderr
        );
    }
}

/// A running agent (eBPF mode, metrics on a loopback port, `extra`) and a
/// real Prometheus that scrapes it as job `pidns` with the shipped rules,
/// once it has scraped it. `None` after a skip.
fn agent_and_prometheus(test: &str, extra: &[&str]) -> Option<(Watch, Prometheus)> {
    have(test, SERVER)?;
    let mut args = vec!["--mode", "ebpf", "--metrics-addr", "0"];
    args.extend_from_slice(extra);
    let w = match Watch::start(&args) {
        Ok(w) => w,
        Err(e) => {
            skip::skip(test, &format!("eBPF watch cannot start here: {e:#}"));
            return None;
        }
    };
    let agent = w.wait_for(WAIT, |e| e["event"] == "ready").expect("ready")["metrics_addr"]
        .as_str()
        .expect("metrics_addr")
        .to_owned();
    let prom =
        Prometheus::start("pidns", &[agent], &[rules_dir().join(RULES)]).expect("prometheus");
    poll("Prometheus's first scrape of the agent", || {
        Ok((!prom.query("up{job=\"pidns\"} == 1")?.is_empty()).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e:#}\nPrometheus's log:\n{}", prom.log()));
    Some((w, prom))
}

/// Polls Prometheus's active alerts until one named `alertname` whose
/// labels satisfy `pred` is firing; panics, with the evidence, if none is
/// within [`WAIT`].
fn firing(prom: &Prometheus, w: &Watch, alertname: &str, pred: impl Fn(&Value) -> bool) -> Value {
    poll(&format!("{alertname}, firing"), || {
        Ok(prom.alerts()?.into_iter().find(|a| {
            a["labels"]["alertname"] == alertname && a["state"] == "firing" && pred(&a["labels"])
        }))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e:#}\nalerts: {:?}\nagent's lines: {:?}\nPrometheus's log:\n{}",
            prom.alerts(),
            w.events(),
            prom.log()
        )
    })
}

/// A real Prometheus, scraping a running agent with the shipped rules,
/// fires the sharing alert for a `--pid=host` container, with its labels,
/// and resolves it when the container goes; an `--allow`ed `--pid=host`
/// container, in the same gauge throughout, never raises it.
#[test]
fn prometheus_fires_the_sharing_alert_for_a_host_pid_container_not_an_allowed_one() {
    let test = test_name!();
    let Some(()) = ready(test, &[Rt::Docker]) else {
        return;
    };
    // Running before the agent, so that its start-up scan puts it in the
    // gauge, as allowed="true".
    let allowed =
        Container::start(&Spec::new(Rt::Docker).pid(Pid::Host)).expect("allowed container");
    let allow = format!("docker:{}", allowed.name);
    let Some((w, prom)) = agent_and_prometheus(test, &["--allow", &allow]) else {
        return;
    };

    // Prometheus has the allowed container, as allowed, and has evaluated
    // the rules with it.
    let allowed_series = format!(
        "pidns_containers_sharing_host_pidns{{allowed=\"true\",container_id=\"{}\"}}",
        allowed.id
    );
    poll("the allowed container's series in Prometheus", || {
        Ok((!prom.query(&allowed_series)?.is_empty()).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e:#}\nagent's lines: {:?}", w.events()));

    let started = Instant::now();
    let mut intruder =
        Container::start(&Spec::new(Rt::Docker).pid(Pid::Host)).expect("host-pid container");
    let alert = firing(&prom, &w, SHARING, |l| {
        l["container_id"] == intruder.id.as_str()
    });
    // Reported, not asserted: how long a deployment with 1 s intervals takes.
    eprintln!(
        "{test}: the sharing alert fired {:.1?} after `docker run --pid=host` was started",
        started.elapsed()
    );
    let labels = &alert["labels"];
    assert_eq!(labels["runtime"], "docker", "{alert}");
    assert_eq!(labels["name"], intruder.name.as_str(), "{alert}");
    assert_eq!(labels["allowed"], "false", "{alert}");
    assert_eq!(labels["severity"], "critical", "{alert}");
    assert_eq!(labels["job"], "pidns", "{alert}");
    let summary = alert["annotations"]["summary"].as_str().unwrap_or_default();
    assert!(summary.contains(&intruder.id), "{alert}");

    // The allowed container was in the gauge on every evaluation since
    // before the intruder started: no alert about it, in any state.
    let alerts = prom.alerts().expect("alerts");
    assert!(
        alert_about(&alerts, &allowed.id).is_none(),
        "an alert about the allowed container: {alerts:?}"
    );
    assert!(
        !prom.query(&allowed_series).expect("query").is_empty(),
        "the allowed container left the gauge"
    );
    // Every rule of the file loaded and evaluates without error.
    let rules = prom.alerting_rules().expect("rules");
    assert!(rules.len() >= 7, "rules not loaded: {rules:?}");
    for r in &rules {
        assert_eq!(r["health"], "ok", "{r}");
    }

    // The container goes: its series goes with its cgroup, and the alert
    // resolves.
    intruder.remove().expect("remove");
    poll("the sharing alert resolved", || {
        Ok(alert_about(&prom.alerts()?, &intruder.id)
            .is_none()
            .then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e:#}\nPrometheus's log:\n{}", prom.log()));
}

/// The escape, end to end: `nsenter` into the host's mount namespace from
/// a `--pid=host` container with CAP_SYS_ADMIN is the agent's first setns,
/// so its counter series appears already at 1, and the escape alert fires
/// on it.
#[test]
fn prometheus_fires_the_escape_alert_at_a_containers_setns_into_the_host() {
    let test = test_name!();
    let Some(()) = ready(test, &[Rt::Docker]) else {
        return;
    };
    let Some((w, prom)) = agent_and_prometheus(test, &[]) else {
        return;
    };
    let escaping = Container::start(
        &Spec::new(Rt::Docker)
            .pid(Pid::Host)
            .cap("SYS_ADMIN")
            .cap("SYS_PTRACE"),
    )
    .expect("container");
    // None yet: the agent has counted no setns.
    assert!(
        prom.query("pidns_findings_total{event=\"setns\"}")
            .expect("query")
            .is_empty(),
        "a setns counted before the test's"
    );
    let me = std::process::id().to_string();
    let out = escaping
        .exec(&["nsenter", "-t", &me, "-m", "true"])
        .expect("nsenter");
    assert!(out.status.success(), "nsenter: {}", out.stderr);
    let alert = firing(&prom, &w, "PidnsSetnsIntoHostNamespace", |_| true);
    assert_eq!(alert["labels"]["event"], "setns", "{alert}");
    assert_eq!(alert["labels"]["severity"], "critical", "{alert}");
}
