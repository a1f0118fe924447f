//! `pidns watch` against the containers it watches, each attack done as an
//! attacker inside a real container would (issue 13): a flood of no-op
//! setns calls, a payload named like a runtime's memfd, a setns laundered
//! through a pidfd of another container's process, an escape from a
//! container allowed to share the host PID namespace, the runtime's own
//! executable as the entrypoint, and two processes joining the host's
//! mount namespace at once. Each ends in a finding with the container's id.

use std::{path::Path, time::Duration};

use pidns_tests::{
    Container, Pid, Rt, Spec,
    inside::Tool,
    pidns::{Watch, synth},
    ready, sh, test_name, watching,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Root, the runtimes in `needs`, and watch in eBPF mode with `extra`.
fn watch(test: &str, needs: &[Rt], extra: &[&str]) -> Option<Watch> {
    watching::ebpf(test, needs, extra)
}

#[track_caller]
fn expect(w: &Watch, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    watching::expect(w, WAIT, what, pred, watching::live)
}

fn finding(e: &Value, id: &str) -> bool {
    e["event"] == "host_pidns" && e["container_id"] == id
}

/// `pidns-synth` with its libraries, mounted into a container.
fn tool() -> Tool {
    Tool::new(&synth().expect("pidns-synth")).expect("tool")
}

fn with_tool<'a>(mut spec: Spec<'a>, tool: &Tool) -> Spec<'a> {
    for m in tool.mounts().expect("mounts") {
        spec = spec.arg(&m);
    }
    spec
}

/// An isolated, unprivileged container calling setns on its own network
/// namespace in a tight loop (every call refused) must not hide short-lived
/// host-PID containers started meanwhile: each is reported with its id, and
/// no finding is lost.
#[test]
fn a_setns_flood_hides_no_short_lived_host_pid_container() {
    let Some(w) = watch(test_name!(), &[Rt::Docker], &[]) else {
        return;
    };
    let tool = tool();
    let flood =
        with_tool(Spec::new(Rt::Docker), &tool).cmd(&[&tool.path(), "flood", "setns", "600"]);
    let _flooder = Container::start(&flood).expect("flooding container");
    std::thread::sleep(Duration::from_secs(2));
    let mut ids = Vec::new();
    for _ in 0..6 {
        let c = Container::run_to_completion(&Spec::new(Rt::Docker).pid(Pid::Host).cmd(&["true"]))
            .expect("short-lived host-PID container");
        ids.push(c.id.clone());
    }
    for id in &ids {
        expect(&w, &format!("short-lived container {id}"), |e| {
            finding(e, id)
        });
    }
    let lost: Vec<Value> = w
        .events()
        .into_iter()
        .filter(|e| e["event"] == "lost" && e["stream"] != "other")
        .collect();
    assert!(lost.is_empty(), "findings lost under the flood: {lost:#?}");
}

/// A file named `memfd:*` on the container's own tmpfs is no memfd copy of
/// the runtime: run from `docker exec`, it is the payload, and its setns
/// into the host's mount namespace is reported.
#[test]
fn a_tmpfs_file_named_memfd_is_no_runtime_copy() {
    let Some(w) = watch(test_name!(), &[Rt::Docker], &[]) else {
        return;
    };
    let me = std::process::id().to_string();
    let c = Container::start(
        &Spec::new(Rt::Docker)
            .pid(Pid::Host)
            .cap("SYS_ADMIN")
            .cap("SYS_PTRACE"),
    )
    .expect("host-PID container");
    let out = c
        .exec(&[
            "sh",
            "-c",
            "cp /bin/busybox /dev/memfd:bb && chmod 755 /dev/memfd:bb && ln -s memfd:bb /dev/nsenter",
        ])
        .expect("copy");
    assert!(out.status.success(), "{}", out.stderr);
    let out = c
        .exec(&["/dev/nsenter", "-t", &me, "-m", "/bin/true"])
        .expect("nsenter");
    assert!(
        out.status.success(),
        "the escape itself failed: {}",
        out.stderr
    );
    let e = expect(&w, "the setns into the host's mount namespace", |e| {
        e["event"] == "setns" && e["container_id"] == c.id.as_str() && e["nstype"] == "mnt"
    });
    assert_eq!(
        (e["ok"].as_bool(), e["target"].as_str()),
        (Some(true), Some("host")),
        "{e}"
    );
    expect(&w, "the exec of the memfd-named file", |e| {
        finding(e, &c.id) && e["trigger"] == "exec" && e["filename"] == "/dev/nsenter"
    });
}

/// setns through a pidfd of another container's process that shares the
/// host's network namespace joins the host's network namespace: judged by
/// the namespace joined, not by whose process the pidfd names.
#[test]
fn a_pidfd_of_another_container_is_judged_by_the_namespace_joined() {
    let Some(w) = watch(test_name!(), &[Rt::Docker], &[]) else {
        return;
    };
    let tool = tool();
    let target = Container::start(&Spec::new(Rt::Docker).arg("--network=host"))
        .expect("isolated --network=host container");
    let attacker = Container::start(
        &with_tool(Spec::new(Rt::Docker), &tool)
            .pid(Pid::Host)
            .cap("SYS_ADMIN")
            .cap("SYS_PTRACE")
            .arg("--security-opt=seccomp=unconfined"),
    )
    .expect("host-PID container");
    let out = attacker
        .exec(&[
            &tool.path(),
            "pidfd-setns",
            &target.init_pid().to_string(),
            "net",
        ])
        .expect("pidfd setns");
    assert!(
        out.status.success(),
        "the escape itself failed: {}",
        out.stderr
    );
    let e = expect(&w, "the setns into the host's network namespace", |e| {
        e["event"] == "setns" && e["container_id"] == attacker.id.as_str() && e["nstype"] == "net"
    });
    assert_eq!(
        (
            e["ok"].as_bool(),
            e["via"].as_str(),
            e["target_pid"].as_u64()
        ),
        (
            Some(true),
            Some("pidfd"),
            Some(u64::from(target.init_pid()))
        ),
        "{e}"
    );
}

/// A container allowed to share the host PID namespace is not allowed to
/// escape: its setns into the host's mount namespace is reported, marked
/// `allowed_container`; `--allow-setns` silences it, for that container
/// only. Entries qualified by runtime (`docker:NAME`) allow it.
#[test]
fn an_allowed_container_escaping_is_reported() {
    let Some(()) = ready(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let me = std::process::id().to_string();
    let c = Container::start(
        &Spec::new(Rt::Docker)
            .pid(Pid::Host)
            .cap("SYS_ADMIN")
            .cap("SYS_PTRACE"),
    )
    .expect("host-PID container");
    // The form first: a bare name.
    let Some(w) = watch(test_name!(), &[Rt::Docker], &["--allow", &c.name]) else {
        return;
    };
    let out = c
        .exec(&["nsenter", "-t", &me, "-m", "true"])
        .expect("nsenter");
    assert!(
        out.status.success(),
        "the escape itself failed: {}",
        out.stderr
    );
    let e = expect(&w, "the allowed container's setns", |e| {
        e["event"] == "setns" && e["container_id"] == c.id.as_str() && e["nstype"] == "mnt"
    });
    assert_eq!(e["allowed_container"].as_bool(), Some(true), "{e}");
    // Allowed to share: its processes are no findings.
    let shared: Vec<Value> = w
        .events()
        .into_iter()
        .filter(|e| finding(e, &c.id))
        .collect();
    assert!(
        shared.is_empty(),
        "an allowed container reported: {shared:#?}"
    );
    drop(w);

    // --allow-setns: an agent that must nsenter the host (kured); the
    // qualified form.
    let allow = format!("docker:{}", c.name);
    let Some(w) = watch(
        test_name!(),
        &[Rt::Docker],
        &["--allow", &allow, "--allow-setns", &allow],
    ) else {
        return;
    };
    let out = c
        .exec(&["nsenter", "-t", &me, "-m", "true"])
        .expect("nsenter");
    assert!(out.status.success(), "{}", out.stderr);
    let sentinel =
        Container::run_to_completion(&Spec::new(Rt::Docker).pid(Pid::Host).cmd(&["true"]))
            .expect("sentinel");
    expect(&w, "the sentinel", |e| finding(e, &sentinel.id));
    let setns: Vec<Value> = w
        .events()
        .into_iter()
        .filter(|e| e["event"] == "setns" && e["container_id"] == c.id.as_str())
        .collect();
    assert!(
        setns.is_empty(),
        "--allow-setns did not silence it: {setns:#?}"
    );
}

/// `--entrypoint /proc/self/exe`: the container's payload is the runtime's
/// own executable (runc's memfd copy of itself), run in the container's
/// root, where the loader and libraries are the container's to choose: code
/// of the container's in the host PID namespace. It is the payload, not the
/// runtime re-executing itself, so it is a finding like any other exec.
#[test]
fn the_runtime_s_own_executable_as_the_entrypoint_is_a_finding() {
    let Some(w) = watch(test_name!(), &[Rt::Docker], &[]) else {
        return;
    };
    let runc = sh::run("sh", &["-c", "command -v runc"]).expect("runc on PATH");
    let tool = Tool::new(Path::new(runc.trim())).expect("runc and its libraries");
    let spec = with_tool(Spec::new(Rt::Docker).pid(Pid::Host), &tool)
        .arg("--entrypoint=/proc/self/exe")
        .cmd(&["--version"]);
    let c = Container::run_to_completion(&spec).expect("runc --version as the payload");
    let e = expect(&w, "the payload's exec", |e| {
        finding(e, &c.id) && e["trigger"] == "exec"
    });
    assert_eq!(e["comm"], "exe", "{e}");
}

/// Two processes of a host-PID container join the host's mount namespace
/// at once, its init among them (`nsenter … & exec nsenter …`). Judged by
/// the namespaces the container's init holds when user space reads them,
/// each call hid the other: by then the "init" was in the host's mount
/// namespace too. The container's own namespaces are the kernel's record of
/// its first exec: both calls are reported.
#[test]
fn two_processes_joining_the_host_together_are_both_reported() {
    let Some(w) = watch(test_name!(), &[Rt::Docker], &[]) else {
        return;
    };
    let me = std::process::id();
    let script = format!("nsenter -t {me} -m sleep 60 & exec nsenter -t {me} -m sleep 60");
    let c = Container::start(
        &Spec::new(Rt::Docker)
            .pid(Pid::Host)
            .cap("SYS_ADMIN")
            .cap("SYS_PTRACE")
            .arg("--security-opt=seccomp=unconfined")
            .cmd(&["sh", "-c", &script]),
    )
    .expect("host-PID container");
    let joined = |e: &Value| {
        e["event"] == "setns" && e["container_id"] == c.id.as_str() && e["nstype"] == "mnt"
    };
    expect(&w, "a setns into the host's mount namespace", joined);
    w.settle(Duration::from_millis(500), Duration::from_secs(5));
    let pids: std::collections::BTreeSet<u64> = w
        .events()
        .iter()
        .filter(|e| joined(e))
        .filter_map(|e| e["pid"].as_u64())
        .collect();
    assert_eq!(
        pids.len(),
        2,
        "both joins reported\n{}",
        watching::dump(&w, watching::live)
    );
}
