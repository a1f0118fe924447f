//! `pidns scan` and the runtimes' records of their containers'
//! configuration (a host root laid out like Docker's), running or not:
//! stopped containers configured to share fail as in the CIS audit's
//! `docker ps --all`, `--running-only` leaves them out, a configuration the
//! kernel contradicts is a warning in every format, `--offline` reads the
//! records alone.

mod support;

use serde_json::{Value, json};
use support::*;

const NESTED_NS: u64 = 4026532190;
/// Created with --pid=host, never started.
const CREATED_HOST: &str = ID_B;
/// `--pid=container:<CREATED_HOST>`, exited.
const CHAINED: &str = ID_C;
const EXITED_OWN: &str = "0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7";
const CUT: &str = "7777777777777777777777777777777777777777777777777777777777777777";
const STARTED: &str = "2026-11-30T10:00:00Z";
const NEVER: &str = "0001-01-01T00:00:00Z";

fn docker(t: &Tree, id: &str, pid_mode: &str, name: &str, running: bool, started: &str) {
    t.write(
        &format!("roots/state/var/lib/docker/containers/{id}/hostconfig.json"),
        json!({"PidMode": pid_mode, "Privileged": false, "SomethingNew": {"x": 1}}).to_string(),
    );
    t.write(
        &format!("roots/state/var/lib/docker/containers/{id}/config.v2.json"),
        json!({"ID": id, "Name": format!("/{name}"), "State": {"Running": running, "Paused": false, "StartedAt": started}})
            .to_string(),
    );
}

/// A running container (ID_A) in its own PID namespace whose record says
/// `--pid=host`; a created `--pid=host` one, one chained to it, an exited
/// isolated one, one with a truncated hostconfig.
fn host() -> (Tree, String) {
    let t = Tree::new();
    t.add(
        500,
        P::nested("sleep", 500, NESTED_NS, 1).v2(&format!("/docker/{ID_A}")),
    );
    docker(&t, ID_A, "host", "claims-host", true, STARTED);
    docker(&t, CREATED_HOST, "host", "waiting", false, NEVER);
    docker(
        &t,
        CHAINED,
        &format!("container:{CREATED_HOST}"),
        "chained",
        false,
        STARTED,
    );
    docker(&t, EXITED_OWN, "", "done", false, STARTED);
    docker(&t, CUT, "", "cut", false, STARTED);
    t.write(
        &format!("roots/state/var/lib/docker/containers/{CUT}/hostconfig.json"),
        r#"{"PidMode":"ho"#,
    );
    let root = t.root_dir("state").display().to_string();
    (t, root)
}

fn run(args: &[&str]) -> (i32, String, String) {
    let o = pidns().args(args).output().expect("run pidns");
    (
        code(&o),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_stopped_container_configured_to_share_fails_like_docker_ps_all() {
    let (t, root) = host();
    let (code, j) = scan_json(&t, &["--host-root", &root]);
    assert_eq!(code, 1, "{j:#}");
    let created = container(&j, CREATED_HOST);
    assert_eq!(created["verdict"], "shares");
    assert_eq!(created["state"], "created");
    assert_eq!(created["found_by"], "state");
    assert_eq!(created["configured_host_pidns"], true);
    assert_eq!(
        created["shares_host_pidns"],
        Value::Null,
        "the kernel says nothing"
    );
    assert_eq!(created["name"], "waiting");
    assert_eq!(
        created["configured_in"],
        format!("/var/lib/docker/containers/{CREATED_HOST}/hostconfig.json")
    );
    let chained = container(&j, CHAINED);
    assert_eq!(
        (
            &chained["verdict"],
            &chained["state"],
            &chained["configured_host_pidns"]
        ),
        (&json!("shares"), &json!("exited"), &json!(true)),
        "container:<id> of one that shares"
    );
    assert_eq!(
        chained["configured_pid_mode"],
        format!("container:{CREATED_HOST}")
    );
    let own = container(&j, EXITED_OWN);
    assert_eq!(
        (&own["verdict"], &own["configured_host_pidns"]),
        (&json!("isolated"), &json!(false))
    );
    let cut = container(&j, CUT);
    assert_eq!(cut["verdict"], "unknown");
    assert_eq!(cut["configured_host_pidns"], Value::Null);
    assert_eq!(j["summary"]["not_running"], 4, "{j:#}");
    assert_eq!(j["summary"]["sharing"], 3);

    let running = container(&j, ID_A);
    assert_eq!(running["state"], "running");
    assert_eq!(
        (&running["verdict"], &running["shares_host_pidns"]),
        (&json!("shares"), &json!(false)),
        "configured to share fails, as the audit's PidMode does, whatever the kernel shows"
    );
    assert_eq!(running["configured_host_pidns"], true);
    let warnings = j["warnings"].to_string();
    assert!(
        warnings.contains(&format!(
            "docker container {ID_A}: configured to share the host PID namespace (host), but the kernel shows none of its processes in it"
        )),
        "{warnings}"
    );
    assert!(
        warnings.contains("hostconfig.json: not a whole JSON document"),
        "{warnings}"
    );
}

#[test]
fn running_only_leaves_stopped_containers_out() {
    let (t, root) = host();
    let (code, j) = scan_json(&t, &["--host-root", &root, "--running-only"]);
    assert_eq!(code, 1, "the running one is configured to share: {j:#}");
    let allow = ["--host-root", &root, "--allow", "claims-host"];
    assert_eq!(scan_json(&t, &allow).0, 1, "the stopped ones fail");
    let (code, j) = scan_json(&t, &[&allow[..], &["--running-only"]].concat());
    assert_eq!(code, 0, "--running-only: {j:#}");
    assert_eq!(j["containers"].as_array().unwrap().len(), 1, "{j:#}");
    assert_eq!(j["containers"][0]["id"], ID_A);
    assert_eq!(j["summary"]["not_running"], 0);
}

#[test]
fn an_allowed_stopped_container_passes() {
    let (t, root) = host();
    let (code, j) = scan_json(
        &t,
        &[
            "--host-root",
            &root,
            "--allow",
            "waiting",
            "--allow",
            "chained",
            "--allow",
            "claims-host",
        ],
    );
    assert_eq!(container(&j, CREATED_HOST)["verdict"], "allowed");
    assert_eq!(container(&j, CREATED_HOST)["allowed_by"], "--allow waiting");
    assert_eq!(code, 0, "{j:#}");
    assert!(
        !j["warnings"].to_string().contains("matched no container"),
        "{j:#}"
    );
}

#[test]
fn every_format_names_the_stopped_and_the_disagreement() {
    let (t, root) = host();
    let base = [
        "scan",
        "--proc-root",
        &t.proc_root(),
        "--host-root",
        &root,
        "--format",
    ];
    let with = |f: &str| {
        let mut a = base.to_vec();
        a.push(f);
        run(&a)
    };
    let (code, cis, _) = with("cis");
    assert_eq!(code, 1);
    assert!(cis.contains("[WARN] 5.16"), "{cis}");
    assert!(
        cis.contains("[WARN]      * Configured to share the host PID namespace, not running (created): waiting (docker ee1ce7f35ea8), configured host (in /var/lib/docker/containers/"),
        "{cis}"
    );
    assert!(
        cis.contains("(2 of them by their configuration alone, not running)"),
        "{cis}"
    );
    assert!(cis.contains("[NOTE]      * docker container 40e9"), "{cis}");
    let (_, table, _) = with("table");
    assert!(table.contains("STATE"), "{table}");
    assert!(
        table.contains("not running (created), configured host (in /var/lib/docker"),
        "{table}"
    );
    assert!(
        table.contains("share the host PID namespace or are configured to"),
        "{table}"
    );
    assert!(table.contains("warning: docker container 40e9"), "{table}");
    let (_, sarif, _) = with("sarif");
    assert!(
        sarif.contains("is configured to share the host PID namespace: not running (created)"),
        "{sarif}"
    );
    assert!(
        sarif.contains("but the kernel shows none of its processes in it"),
        "{sarif}"
    );
}

#[test]
fn offline_reads_the_records_alone() {
    let (t, root) = host();
    let (code, out, err) = run(&[
        "scan",
        "--offline",
        "--host-root",
        &root,
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["offline"], true);
    assert_eq!(j["host_pidns"]["method"], "offline");
    assert_eq!(j["summary"]["processes_scanned"], 0);
    let running = container(&j, ID_A);
    assert_eq!(
        (&running["verdict"], &running["state"], &running["found_by"]),
        (&json!("shares"), &json!("running"), &json!("state")),
        "offline, its record is all there is"
    );
    assert_eq!(container(&j, CREATED_HOST)["verdict"], "shares");
    assert_eq!(container(&j, CHAINED)["verdict"], "shares");
    assert_eq!(container(&j, EXITED_OWN)["verdict"], "isolated");
    let (code, out, _) = run(&[
        "scan",
        "--offline",
        "--host-root",
        &root,
        "--running-only",
        "--format",
        "json",
    ]);
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (code, j["summary"]["containers"].clone()),
        (1, json!(1)),
        "running as recorded"
    );
    let (_, table, _) = run(&["scan", "--offline", "--host-root", &root]);
    assert!(table.contains("not read (--offline"), "{table}");
    drop(t);
}

#[test]
fn offline_needs_a_host_root_that_is_there_and_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-mounted");
    let (code, _, err) = run(&[
        "scan",
        "--offline",
        "--host-root",
        &missing.display().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
    let (code, _, err) = run(&[
        "scan",
        "--offline",
        "--host-root",
        &dir.path().display().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("empty"), "{err}");
    let (code, _, err) = run(&["scan", "--offline"]);
    assert_eq!(code, 2, "clap: --host-root is required; {err}");
    assert!(err.contains("--host-root"), "{err}");
}

#[test]
fn a_container_configured_private_but_in_the_host_s_namespace_is_a_warning() {
    let t = Tree::new();
    t.add(600, P::host("sh", 600).v2(&format!("/docker/{ID_A}")));
    docker(&t, ID_A, "", "joined", true, STARTED);
    let root = t.root_dir("state").display().to_string();
    let (code, j) = scan_json(&t, &["--host-root", &root]);
    assert_eq!(code, 1, "the kernel decides: {j:#}");
    let c = container(&j, ID_A);
    assert_eq!(
        (&c["verdict"], &c["configured_host_pidns"]),
        (&json!("shares"), &json!(false))
    );
    assert!(
        j["warnings"].to_string().contains(&format!(
            "docker container {ID_A}: configured with its own PID namespace (private), but the kernel shows its processes in the host's"
        )),
        "{j:#}"
    );
}

#[test]
fn a_runc_record_names_the_container_that_holds_its_init() {
    let t = Tree::new();
    let pod = format!("/kubepods/besteffort/pod{POD_UID}/{ID_C}");
    // its own mount namespace and root: a container, not a claim
    t.add(
        700,
        P::host("sleep", 700).v2(&pod).on_root("ctr", 4026532600),
    );
    t.write(
        "roots/state/run/runc/pidnst-r/state.json",
        json!({"id": "pidnst-r", "init_process_pid": 700, "config": {"rootfs": "/nonexistent", "namespaces": [{"type": "NEWNS", "path": ""}]}})
            .to_string(),
    );
    let root = t.root_dir("state").display().to_string();
    let (_, j) = scan_json(&t, &["--host-root", &root]);
    let c = container(&j, ID_C);
    assert_eq!(c["configured_host_pidns"], true, "{j:#}");
    assert_eq!(c["configured_in"], "/run/runc/pidnst-r/state.json");
    assert_eq!(
        j["summary"]["containers"], 1,
        "no second entry for the runc record: {j:#}"
    );
}

/// `crun create` (or `runc create`) leaves the container's init waiting
/// for `start`, in the container's namespaces: the kernel shows it, and the
/// runtime's record says it is created, not running.
#[test]
fn a_created_oci_container_the_kernel_shows_is_created() {
    let t = Tree::new();
    let pod = format!("/kubepods/besteffort/pod{POD_UID}/{ID_C}");
    t.add(
        700,
        P::host("crun", 700).v2(&pod).on_root("ctr", 4026532600),
    );
    t.write(
        "roots/state/run/crun/pidnst-c/config.json",
        json!({"linux": {"namespaces": [{"type": "mount"}]}}).to_string(),
    );
    t.write(
        "roots/state/run/crun/pidnst-c/status",
        json!({"pid": 700, "rootfs": "/nonexistent"}).to_string(),
    );
    t.write("roots/state/run/crun/pidnst-c/exec.fifo", "");
    let root = t.root_dir("state").display().to_string();
    let (_, j) = scan_json(&t, &["--host-root", &root]);
    let c = container(&j, ID_C);
    assert_eq!(
        (
            &c["state"],
            &c["configured_host_pidns"],
            &c["configured_in"]
        ),
        (
            &json!("created"),
            &json!(true),
            &json!("/run/crun/pidnst-c/config.json")
        ),
        "{j:#}"
    );
}

#[test]
fn static_pod_manifests_configure_their_running_containers_or_stand_alone() {
    let t = Tree::new();
    // the running static pod `agent` (mirror pod agent-node1), in its own PID namespace
    let pod = format!("/kubepods/besteffort/pod{POD_UID}/{ID_A}");
    t.add(
        900,
        P::nested("agent", 900, NESTED_NS, 1)
            .v2(&pod)
            .on_root("agent", 4026532700),
    );
    t.write(
        &format!("roots/state/run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID_A}/config.json"),
        r#"{"root":{"path":"/nonexistent"},"annotations":{"io.kubernetes.cri.container-name":"agent","io.kubernetes.cri.sandbox-name":"agent-node1","io.kubernetes.cri.sandbox-namespace":"kube-system"}}"#,
    );
    t.write(
        "roots/state/etc/kubernetes/manifests/agent.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: agent\n  namespace: kube-system\nspec:\n  hostPID: true\n  containers:\n  - name: agent\n    image: x\n",
    );
    t.write(
        "roots/state/etc/kubernetes/manifests/idle.yaml",
        "kind: Pod\nmetadata:\n  name: idle\n  namespace: kube-system\nspec:\n  hostPID: true\n",
    );
    let root = t.root_dir("state").display().to_string();
    let (code, j) = scan_json(&t, &["--host-root", &root]);
    assert_eq!(code, 1, "{j:#}");
    let running = container(&j, ID_A);
    assert_eq!(
        (
            &running["configured_host_pidns"],
            &running["verdict"],
            &running["state"]
        ),
        (&json!(true), &json!("shares"), &json!("running")),
        "{j:#}"
    );
    assert!(
        j["warnings"].to_string().contains(
            "configured to share the host PID namespace (host), but the kernel shows none"
        ),
        "{j:#}"
    );
    let idle = container(&j, "kube-system/idle");
    assert_eq!(
        (&idle["verdict"], &idle["found_by"], &idle["pod"]["name"]),
        (&json!("shares"), &json!("state"), &json!("idle"))
    );
    assert!(
        j["containers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != "kube-system/agent"),
        "the running pod's manifest is not reported apart: {j:#}"
    );
    let (code, _) = scan_json(
        &t,
        &[
            "--host-root",
            &root,
            "--allow",
            "k8s:kube-system/agent-node1",
            "--allow",
            "k8s:kube-system/idle",
        ],
    );
    assert_eq!(code, 0);
}
