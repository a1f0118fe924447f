//! The command line: exit codes, formats, colour, errors.

mod support;

use predicates::prelude::*;
use support::*;

fn sharing_tree() -> Tree {
    let t = Tree::new();
    t.add(600, P::host("sleep", 600).v2(&format!("/docker/{ID_B}")));
    t.add(
        601,
        P::nested("sleep", 601, 4026532180, 1).v2(&format!("/docker/{ID_A}")),
    );
    t
}

#[test]
fn exit_codes() {
    let t = sharing_tree();
    pidns()
        .args(["scan", "--proc-root", &t.proc_root()])
        .assert()
        .code(1);
    let clean = Tree::new();
    pidns()
        .args(["scan", "--proc-root", &clean.proc_root()])
        .assert()
        .code(0);
    // could not run: missing root, a file, no processes, bad flags, no such host pid
    pidns()
        .args(["scan", "--proc-root", "/nonexistent/proc"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/proc"));
    let f = t.write("plain-file", "x");
    pidns()
        .args(["scan", "--proc-root", f.to_str().expect("utf8")])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("plain-file"));
    let empty = Tree::empty();
    pidns()
        .args(["scan", "--proc-root", &empty.proc_root()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a procfs root"));
    pidns().args(["scan", "--format", "yaml"]).assert().code(2);
    pidns().args(["scan", "--host-pid", "0"]).assert().code(2);
    pidns().args(["scan", "--bogus"]).assert().code(2);
    pidns()
        .args(["scan", "--proc-root", &t.proc_root(), "--host-pid", "4242"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("PID 4242 does not exist"));
}

#[test]
fn unreadable_proc_root_is_exit_2() {
    if nix_is_root() {
        // root reads everything; the other exit-2 paths are covered in exit_codes
        return;
    }
    let t = sharing_tree();
    std::fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .expect("chmod");
    pidns()
        .args(["scan", "--proc-root", &t.proc_root()])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("permission denied")
                .or(predicate::str::contains("Permission denied")),
        );
    std::fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    })
}

#[test]
fn table_is_the_default_and_plain_when_piped() {
    let t = sharing_tree();
    let out = pidns()
        .args(["scan", "--proc-root", &t.proc_root()])
        .output()
        .expect("run");
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        !text.contains('\u{1b}'),
        "no colour when stdout is not a terminal:\n{text}"
    );
    assert!(text.contains("VERDICT"), "{text}");
    assert!(
        text.contains("SHARES") && text.contains(&ID_B[..12]) && text.contains("isolated"),
        "{text}"
    );
    assert!(
        text.contains("Evidence") && text.contains("pid 600 sleep"),
        "{text}"
    );
    assert!(
        text.contains("1 of 2 containers share the host PID namespace"),
        "{text}"
    );
}

#[test]
fn colour_on_request_and_never_with_no_color() {
    let t = sharing_tree();
    let forced = pidns()
        .args(["--color", "always", "scan", "--proc-root", &t.proc_root()])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&forced.stdout).contains('\u{1b}'));
    // CLICOLOR_FORCE would colour a pipe; NO_COLOR still wins.
    let no = pidns()
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .args(["scan", "--proc-root", &t.proc_root()])
        .output()
        .expect("run");
    assert!(!String::from_utf8_lossy(&no.stdout).contains('\u{1b}'));
}

#[test]
fn json_schema_fields() {
    let t = sharing_tree();
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1);
    assert_eq!(json["schema"], "pidns.scan/v1");
    for key in ["inode", "method", "host_pid"] {
        assert!(json["host_pidns"].get(key).is_some(), "host_pidns.{key}");
    }
    for key in [
        "id",
        "runtime",
        "shares_host_pidns",
        "verdict",
        "pids",
        "cgroup",
        "pidns_inodes",
        "host_pidns_processes",
    ] {
        assert!(
            container(&json, ID_B).get(key).is_some(),
            "containers[].{key}"
        );
    }
    for key in [
        "containers",
        "sharing",
        "allowed",
        "unknown",
        "isolated",
        "processes_scanned",
        "permission_errors",
        "processes_vanished",
    ] {
        assert!(json["summary"].get(key).is_some(), "summary.{key}");
    }
    assert_eq!(container(&json, ID_B)["id"], ID_B, "full ids");
}

#[test]
fn cis_format() {
    let t = sharing_tree();
    pidns()
        .args(["scan", "--format", "cis", "--proc-root", &t.proc_root()])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "[WARN] 5.16 - Ensure that the host's process namespace is not shared",
        ))
        .stdout(predicate::str::contains("5.15"))
        .stdout(predicate::str::contains(&ID_B[..12]))
        .stdout(predicate::str::contains("Remediation"));
    let clean = Tree::new();
    pidns()
        .args(["scan", "--format", "cis", "--proc-root", &clean.proc_root()])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("[PASS] 5.16"));
}

#[test]
fn proc_root_from_the_environment() {
    let t = sharing_tree();
    pidns()
        .env("PIDNS_PROC_ROOT", t.proc_root())
        .args(["scan"])
        .assert()
        .code(1);
}
