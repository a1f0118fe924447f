//! `pidns watch`, live, against container processes their cgroup does not
//! name (issue 12): a container process that moves itself out of its
//! container's cgroup is a `cgroup_escape`, and keeps its container for
//! everything it does afterwards; a container-like process (another mount
//! namespace and another root, in the host PID namespace) exec'ing in a
//! cgroup nobody named is reported by its root; a cgroup named like a
//! container's is a claim, judged as `scan` judges it. Controls: a host
//! process in a mount namespace of its own, isolated containers.

use std::{
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use pidns_tests::{
    Container, Layout, Pid, Rt, Spec, cgroups,
    homemade::{Homemade, HostProcess, How, Scratch},
    pidns::Watch,
    ready, runtimes, skip, state, test_name, watching,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// These tests move processes between cgroups the watch sees: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Root, the runtimes in `needs` (and the test rootfs), and watch in eBPF mode.
fn watch(test: &str, needs: &[Rt]) -> Option<Watch> {
    ready(test, needs)?;
    if !runtimes::rootfs().join("bin/busybox").is_file() {
        skip::skip(
            test,
            "no test rootfs: `cargo xtask test` builds it (pidns-harness up)",
        );
        return None;
    }
    watching::ebpf(test, &[], &[])
}

#[track_caller]
fn expect(w: &Watch, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    watching::expect(w, WAIT, what, pred, watching::live)
}

fn finding_of(e: &Value, pid: u32) -> bool {
    e["event"] == "host_pidns" && e["pid"] == pid
}

/// A short-lived `--pid=host` Docker container, and its finding: whatever
/// watch says of what came before it, it has said by now.
fn sentinel(w: &Watch) {
    let c = Container::run_to_completion(&Spec::new(Rt::Docker).pid(Pid::Host).cmd(&["true"]))
        .expect("sentinel");
    expect(w, "the sentinel", |e| {
        e["event"] == "host_pidns" && e["container_id"] == c.id.as_str()
    });
}

/// `sh -c "<moves itself into every dir>; exec <argv>"`, as root: the
/// exec happens in those cgroups.
fn spawn_in(dirs: &[std::path::PathBuf], argv: &[&str]) -> Child {
    let script = "for d in $DIRS; do echo $$ > \"$d/cgroup.procs\" || exit 1; done; exec \"$@\"";
    let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Command::new("sh")
        .args(["-c", script, "sh"])
        .args(argv)
        .env("DIRS", dirs.join(" "))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning into the cgroup")
}

/// `rel` in every hierarchy but cpuset, as [`Scratch`] made it.
fn dirs_of(rel: &str) -> Vec<std::path::PathBuf> {
    cgroups::mounted()
        .expect("hierarchies")
        .into_iter()
        .filter(|h| !h.options.iter().any(|o| o == "cpuset"))
        .map(|h| h.mount_point.join(rel))
        .collect()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The attacker of the issue, live: a `--pid=host` container with the
/// host's cgroup namespace, cgroupfs and CAP_SYS_ADMIN (and CAP_SYS_PTRACE,
/// to open a host process's namespace files) writes its pid into the root
/// `cgroup.procs` of every hierarchy, then runs `nsenter` into the host's
/// mount namespace and keeps forking. Watch reports the move as a
/// `cgroup_escape` with the container's id and both cgroups, and then the
/// setns, the execs and the forks with the container's id. A watch started
/// afterwards reports the process at start-up as outside its cgroup, and
/// its forks with the container's id too.
#[test]
fn a_container_leaving_its_cgroup_keeps_its_id_live() {
    let Some(w) = watch(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let _serial = serial();
    let me = std::process::id().to_string();
    let script = format!(
        "for f in /sys/fs/cgroup/*/cgroup.procs; do echo $$ > \"$f\" || exit 1; done; sleep 1; nsenter -t {me} -m true; while :; do sleep 1; done"
    );
    let c = Container::start(
        &Spec::new(Rt::Docker)
            .pid(Pid::Host)
            .arg("--cgroupns=host")
            .arg("-v")
            .arg("/sys/fs/cgroup:/sys/fs/cgroup")
            .cap("SYS_ADMIN")
            .cap("SYS_PTRACE")
            .cmd(&["sh", "-c", &script]),
    )
    .expect("cgroup-leaving container");
    let pid = c.init_pid();
    let id = c.id.as_str();
    let escape = expect(&w, "the cgroup escape", |e| {
        e["event"] == "cgroup_escape" && e["pid"] == pid
    });
    assert_eq!(escape["container_id"], id, "{escape}");
    assert_eq!(escape["runtime"], "docker", "{escape}");
    assert_eq!(escape["to_cgroup"], "/", "{escape}");
    assert!(
        escape["from_cgroup"]
            .as_str()
            .is_some_and(|from| from.contains(id)),
        "{escape}"
    );
    let setns = expect(&w, "the setns from outside its cgroup", |e| {
        e["event"] == "setns" && e["nstype"] == "mnt" && e["container_id"] == id
    });
    assert_eq!(
        (setns["ok"].as_bool(), setns["target"].as_str()),
        (Some(true), Some("host")),
        "{setns}"
    );
    // busybox runs its applets through /proc/self/exe: the nsenter is the
    // setns caller's exec
    expect(&w, "the exec of nsenter", |e| {
        e["event"] == "host_pidns"
            && e["container_id"] == id
            && e["trigger"] == "exec"
            && e["pid"] == setns["pid"]
    });
    expect(&w, "a fork of the escaped shell", |e| {
        e["event"] == "host_pidns"
            && e["container_id"] == id
            && e["trigger"] == "fork"
            && e["ppid"] == pid
    });
    drop(w);

    // Started afterwards: the start-up scan finds it outside its cgroup,
    // and the kernel keeps reporting what it does with its id.
    let Some(w) = watch(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let found = expect(&w, "the start-up finding", |e| {
        e["event"] == "host_pidns" && e["trigger"] == "scan" && e["pid"] == pid
    });
    assert_eq!(
        (
            found["container_id"].as_str(),
            found["outside_cgroup"].as_bool()
        ),
        (Some(id), Some(true)),
        "{found}"
    );
    expect(&w, "a fork of the escaped shell, after start-up", |e| {
        e["event"] == "host_pidns"
            && e["container_id"] == id
            && e["trigger"] == "fork"
            && e["ppid"] == pid
    });
}

/// A container-like process (a mount namespace and a root not the host's,
/// the host PID namespace) exec'ing in a cgroup no layout names is reported
/// by its root: runc with no `cgroupsPath` (`/<id>`), named from runc's
/// state, and a home-made container, runtime `unknown`, exec'ing in a
/// cgroup of an arbitrary name. Not reported: a host process in a mount
/// namespace of its own (`unshare -m`, on the host's root), isolated
/// containers.
#[test]
fn container_like_execs_in_cgroups_nobody_named_are_reported() {
    let Some(w) = watch(test_name!(), &[Rt::Runc, Rt::Docker]) else {
        return;
    };
    let _serial = serial();
    let spec = Spec::new(Rt::Runc).layout(Layout::NoCgroupsPath);
    let runc = Container::start(&spec.clone().pid(Pid::Host)).expect("host-pid runc container");
    let isolated = Container::start(&spec).expect("isolated runc container");
    let docker_isolated = Container::start(&Spec::new(Rt::Docker)).expect("isolated docker");
    let e = expect(&w, "the runc container's exec", |e| {
        finding_of(e, runc.init_pid())
    });
    assert_eq!(
        (
            e["container_id"].as_str(),
            e["runtime"].as_str(),
            e["trigger"].as_str()
        ),
        (Some(runc.name.as_str()), Some("runc"), Some("exec")),
        "{e}"
    );

    let home = Homemade::start().expect("home-made container");
    let scratch = Scratch::new(&format!("{}-home", state::unique_name())).expect("cgroup");
    let root = format!("/proc/{}/root", home.pid);
    let inside = Killed(spawn_in(
        &dirs_of(&scratch.rel),
        &[
            "nsenter",
            "-t",
            &home.pid.to_string(),
            "-m",
            &format!("--root={root}"),
            "--wd=/",
            "/bin/sleep",
            "30",
        ],
    ));
    let e = expect(&w, "the exec inside the home-made container", |e| {
        finding_of(e, inside.0.id())
    });
    assert_eq!(
        (e["runtime"].as_str(), e["trigger"].as_str()),
        (Some("unknown"), Some("exec")),
        "{e}"
    );
    assert_eq!(e["cgroup"], format!("/{}", scratch.rel), "{e}");
    let rel = home.rootfs.strip_prefix("/").expect("absolute");
    assert!(
        e["container_id"]
            .as_str()
            .is_some_and(|id| id.ends_with(&*rel.to_string_lossy())),
        "named after its root mount: {e}"
    );

    let unshared = HostProcess::start(How::OwnMountNamespace, 0).expect("unshare -m");
    sentinel(&w);
    for (what, pid) in [
        ("unshare -m", unshared.pid),
        ("isolated runc", isolated.init_pid()),
        ("isolated docker", docker_isolated.init_pid()),
    ] {
        let flagged: Vec<Value> = w
            .events()
            .into_iter()
            .filter(|e| finding_of(e, pid))
            .collect();
        assert!(flagged.is_empty(), "{what} reported: {flagged:#?}");
    }
}

/// A cgroup named like a Docker container's under `user.slice` holding a
/// plain host process is a claim with no container evidence: its exec is
/// no finding live, as it is none in `scan`; nor, for a watch started
/// while it exists, at start-up or afterwards (the start-up scan judged it).
#[test]
fn a_claimed_cgroup_is_no_finding_live() {
    let Some(w) = watch(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let _serial = serial();
    let id = state::random_hex(32);
    let scratch = Scratch::claimed_docker_scope(&id).expect("claimed cgroup");
    let claimed = Killed(spawn_in(&dirs_of(&scratch.rel), &["/bin/sleep", "30"]));
    sentinel(&w);
    let flagged: Vec<Value> = w
        .events()
        .into_iter()
        .filter(|e| finding_of(e, claimed.0.id()) || e["container_id"] == id.as_str())
        .collect();
    assert!(
        flagged.is_empty(),
        "a claim reported as a container: {flagged:#?}"
    );
    drop(w);

    let Some(w) = watch(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let later = Killed(spawn_in(&dirs_of(&scratch.rel), &["/bin/sleep", "30"]));
    sentinel(&w);
    let flagged: Vec<Value> = w
        .events()
        .into_iter()
        .filter(|e| {
            finding_of(e, claimed.0.id())
                || finding_of(e, later.0.id())
                || e["container_id"] == id.as_str()
        })
        .collect();
    assert!(
        flagged.is_empty(),
        "a claim judged at start-up reported: {flagged:#?}"
    );
}
