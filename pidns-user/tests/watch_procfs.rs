//! `pidns watch` without eBPF (procfs mode) on fixture trees: start-up
//! findings, the ready event, formats, exit codes. The eBPF mode is tested
//! against the real kernel in the privileged suite.

mod support;

use predicates::prelude::*;
use serde_json::Value;
use support::*;

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn startup_findings_then_ready_then_clean_exit() {
    let t = Tree::new();
    t.add(600, P::host("agent", 600).v2(&format!("/docker/{ID_B}")));
    t.add(601, P::host("worker", 601).v2(&format!("/docker/{ID_B}")));
    t.add(
        700,
        P::nested("app", 700, 4026532180, 1).v2(&format!("/docker/{ID_A}")),
    );
    let out = pidns()
        .args([
            "watch",
            "--mode",
            "procfs",
            "--format",
            "json",
            "--duration",
            "0.3",
            "--interval",
            "0.1",
            "--proc-root",
            &t.proc_root(),
        ])
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let events = lines(&out.stdout);
    let findings: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "host_pidns")
        .collect();
    assert_eq!(findings.len(), 2, "{events:#?}");
    for f in &findings {
        assert_eq!(
            (
                f["trigger"].as_str(),
                f["container_id"].as_str(),
                f["runtime"].as_str()
            ),
            (Some("scan"), Some(ID_B), Some("docker"))
        );
        assert!(f["ts"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    let ready_at = events
        .iter()
        .position(|e| e["event"] == "ready")
        .expect("ready");
    assert!(
        ready_at > 0,
        "findings of the start-up scan come before ready"
    );
    assert_eq!(events[ready_at]["mode"], "procfs");
    assert_eq!(events[ready_at]["sharing"], 1);
    // polling reports nothing new: the same processes are not repeated
    assert_eq!(events.len(), 3, "{events:#?}");
}

#[test]
fn allowed_containers_are_not_reported() {
    let t = Tree::new();
    t.add(600, P::host("agent", 600).v2(&format!("/docker/{ID_B}")));
    let out = pidns()
        .args([
            "watch",
            "--mode",
            "procfs",
            "--format",
            "json",
            "--duration",
            "0.2",
            "--allow",
            &ID_B[..12],
            "--proc-root",
            &t.proc_root(),
        ])
        .output()
        .expect("run");
    assert!(
        lines(&out.stdout)
            .iter()
            .all(|e| e["event"] != "host_pidns")
    );
}

#[test]
fn human_format() {
    let t = Tree::new();
    t.add(600, P::host("agent", 600).v2(&format!("/docker/{ID_B}")));
    pidns()
        .args([
            "watch",
            "--mode",
            "procfs",
            "--duration",
            "0.2",
            "--proc-root",
            &t.proc_root(),
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("HOST PIDNS"))
        .stdout(predicate::str::contains(format!("docker {}", &ID_B[..12])))
        .stdout(predicate::str::contains("pid 600 agent"))
        .stdout(predicate::str::contains("ready: watching 1 containers"));
}

#[test]
fn bad_arguments_and_roots_exit_2() {
    pidns().args(["watch", "--interval", "0"]).assert().code(2);
    pidns().args(["watch", "--duration", "-1"]).assert().code(2);
    pidns()
        .args(["watch", "--ring-buffer-kib", "3"])
        .assert()
        .code(2);
    pidns().args(["watch", "--mode", "bogus"]).assert().code(2);
    pidns()
        .args([
            "watch",
            "--mode",
            "procfs",
            "--proc-root",
            "/nonexistent/proc",
            "--duration",
            "0.1",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/proc"));
}
