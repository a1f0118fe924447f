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
    let t = sharing_tree();
    std::fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .expect("chmod");
    // Root reads everything, so as root pidns runs as nobody, without the
    // capabilities that bypass file permissions.
    let mut cmd = if nix_is_root() {
        let mut c = assert_cmd::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(assert_cmd::cargo::cargo_bin("pidns"));
        c
    } else {
        pidns()
    };
    let assert = cmd
        .env_remove("PIDNS_PROC_ROOT")
        .args(["scan", "--proc-root", &t.proc_root()])
        .assert();
    std::fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    assert.code(2).stderr(predicate::str::contains(format!(
        "cannot read proc root {}: Permission denied",
        t.proc_root()
    )));
}

#[test]
fn error_reasons_are_given_once() {
    let out = pidns()
        .args(["scan", "--proc-root", "/nonexistent/proc"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 2);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(err.contains("/nonexistent/proc"), "{err}");
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    })
}

/// A tree whose names, comms and cgroup paths carry terminal escapes.
fn hostile_tree() -> Tree {
    let t = Tree::new();
    t.add(
        600,
        P::host("\x1b]0;pwned\x07", 600).v2(&format!("/docker/{ID_B}")),
    );
    // systemd unescapes \x1b in unit names; the cgroup path carries it too.
    t.add(
        601,
        P::host("sh\u{9b}2J", 601)
            .v2("/machine.slice/systemd-nspawn@ev\\x1b[31mil.service/payload"),
    );
    // an unknown one, whose reason quotes the path
    t.add(900, P::nested("init", 900, 4026532400, 1));
    t.write(
        &format!("root/var/lib/docker/containers/{ID_B}/config.v2.json"),
        "{\"Name\":\"/x\\u001b[2Jname\\u202egpj\"}",
    );
    t
}

#[test]
fn control_characters_never_reach_the_terminal() {
    let t = hostile_tree();
    let root = format!("{}/root", t.proc_root());
    for format in ["table", "cis"] {
        let out = pidns()
            .args(["--color", "never", "scan", "--format", format])
            .args(["--proc-root", &t.proc_root(), "--host-root", &root])
            .output()
            .expect("run");
        assert_eq!(code(&out), 1);
        let text = String::from_utf8(out.stdout).expect("utf8");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{format}: raw control characters in\n{text:?}"
        );
        assert!(
            !text.contains('\u{202e}'),
            "{format}: bidi override in {text:?}"
        );
        assert!(
            text.contains("\\u{1b}"),
            "{format}: escaped, not dropped: {text}"
        );
        if format == "table" {
            assert!(text.contains("pid 600 \\u{1b}]0;pwned\\u{7}"), "{text}");
            assert!(text.contains("ev\\u{1b}[31mil"), "{text}");
            assert!(text.contains("x\\u{1b}[2Jname\\u{202e}gpj"), "{text}");
        }
    }
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
        .stdout(predicate::str::contains("Remediation"))
        .stdout(predicate::str::contains("Score: -1"));
    let clean = Tree::new();
    pidns()
        .args(["scan", "--format", "cis", "--proc-root", &clean.proc_root()])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("[PASS] 5.16"))
        .stdout(predicate::str::contains("Score: 1"));
}

#[test]
fn cis_never_passes_unchecked_containers() {
    // The host is PID 900's namespace; PID 901's link is unreadable, so its
    // container cannot be checked.
    let t = Tree::new();
    t.add(900, P::nested("init", 900, 4026532400, 1));
    t.add(
        901,
        P::nested("sleep", 901, 4026532400, 2)
            .v2(&format!("/docker/{ID_A}"))
            .link(Link::Unreadable),
    );
    let out = pidns()
        .args(["scan", "--format", "cis", "--host-pid", "900"])
        .args(["--proc-root", &t.proc_root()])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 0, "unknowns do not fail the scan: {text}");
    assert!(text.contains("[WARN] 5.16"), "{text}");
    assert!(!text.contains("[PASS]"), "{text}");
    assert!(
        text.contains(&format!(
            "[WARN]      * Could not be checked: {} (docker {})",
            &ID_A[..12],
            &ID_A[..12]
        )),
        "{text}"
    );
    assert!(text.contains("901/ns/pid"), "the reason: {text}");
    assert!(text.contains("0 of 1 containers checked"), "{text}");
    assert!(text.contains("Score: -1"), "{text}");
}

#[test]
fn cis_lists_allowed_containers_as_allowed() {
    let t = sharing_tree();
    let out = pidns()
        .args(["scan", "--format", "cis", "--allow", &ID_B[..12]])
        .args(["--proc-root", &t.proc_root()])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 0, "{text}");
    assert!(text.contains("[PASS] 5.16"), "{text}");
    assert!(
        text.contains(&format!(
            "[INFO]      * Allowed to share the host PID namespace: {} (docker {}), --allow {}",
            &ID_B[..12],
            &ID_B[..12],
            &ID_B[..12]
        )),
        "{text}"
    );
    assert!(
        text.contains("2 of 2 containers checked: 0 in the host PID namespace without being allowed, 1 allowed"),
        "{text}"
    );
    assert!(!text.contains("none in the host PID namespace"), "{text}");
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

#[test]
fn cis_and_sarif_carry_the_scans_warnings() {
    let t = sharing_tree();
    let out = pidns()
        .args(["scan", "--format", "cis", "--allow", "no-such-container"])
        .args(["--proc-root", &t.proc_root()])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[NOTE]      * --allow no-such-container matched no container"),
        "{text}"
    );
    let out = pidns()
        .args(["scan", "--format", "sarif", "--allow", "no-such-container"])
        .args(["--proc-root", &t.proc_root()])
        .output()
        .expect("run");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sarif json");
    let notes = &doc["runs"][0]["invocations"][0]["toolExecutionNotifications"];
    assert_eq!(notes[0]["level"], "warning", "{doc:#}");
    assert!(
        notes[0]["message"]["text"]
            .as_str()
            .is_some_and(|m| m.contains("--allow no-such-container matched no container")),
        "{doc:#}"
    );
}
