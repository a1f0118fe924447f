//! `pidns watch` against the real kernel and real runtimes: every way a
//! container process lands in the host PID namespace is reported with its
//! container id, isolated containers produce nothing, and setns into host
//! namespaces is reported, failed attempts included.

use std::{process::Command, time::Duration};

use nix::sys::signal::Signal;
use pidns_tests::{
    Container, Layout, Pid, Rt, Spec,
    cgroups::FakeContainer,
    pidns::{Watch, synth},
    ready, require_root, test_name, watching,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

fn watch(test: &str, needs: &[Rt], extra: &[&str]) -> Option<Watch> {
    watching::ebpf(test, needs, extra)
}

#[track_caller]
fn expect(w: &Watch, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    watching::expect(w, WAIT, what, pred, |_| true)
}

fn finding(e: &Value, id: &str) -> bool {
    e["event"] == "host_pidns" && e["container_id"] == id
}

/// Where a sentinel runs.
enum Sentinel<'a> {
    /// A short-lived host-PID container of this runtime.
    Runtime(Rt),
    /// A process moved into the fake container, that execs there.
    Fake(&'a Synthetic),
}

/// Proves the watcher live up to now: the kernel hands events over in
/// order, so once a host-PID process started now is reported, any event
/// about what came before would already be here, and its absence means
/// something.
fn sentinel(w: &Watch, at: Sentinel) {
    match at {
        Sentinel::Runtime(rt) => {
            let sentinel =
                Container::run_to_completion(&Spec::new(rt).pid(Pid::Host).cmd(&["true"]))
                    .expect("sentinel");
            expect(w, "the sentinel", |e| finding(e, &sentinel.id));
        }
        Sentinel::Fake(s) => {
            let child = Command::new(&s.synth)
                .args(["join-cgroup", &s.dir, "--", "/bin/true", "sentinel"])
                .spawn()
                .expect("spawn");
            let pid = child.id();
            assert!(child.wait_with_output().expect("wait").status.success());
            expect(w, "the sentinel", |e| {
                finding(e, &s.fake.id) && e["trigger"] == "exec" && e["pid"] == pid
            });
        }
    }
}

fn runtime_host_pid_cases(rt: Rt, test: &str) {
    let Some(w) = watch(test, &[rt], &[]) else {
        return;
    };
    let c = Container::start(&Spec::new(rt).pid(Pid::Host)).expect("host-pid container");
    let f = expect(&w, "the container's init", |e| {
        finding(e, &c.id) && e["comm"] == "sleep"
    });
    assert_eq!(f["runtime"], c.runtime);
    assert_eq!(f["trigger"], "exec");
    assert_eq!(f["pid"], c.init_pid());
    // exec into it
    let out = c.exec(&["sh", "-c", "true"]).expect("exec");
    assert!(out.status.success(), "{}", out.stderr);
    expect(&w, "an exec into the container", |e| {
        finding(e, &c.id) && e["comm"] == "sh" && e["trigger"] == "exec"
    });
    // a process that exits at once, attributed from the kernel event alone
    let short = Container::run_to_completion(&Spec::new(rt).pid(Pid::Host).cmd(&["true"]))
        .expect("short-lived container");
    expect(&w, "a short-lived container", |e| {
        finding(e, &short.id) && e["comm"] == "true" && e["trigger"] == "exec"
    });
    // The runtime's own setup processes (runc:[1:CHILD] joining the host PID
    // namespace for ctr --with-ns) are no container processes: no setns
    // event, no `setns` finding. Everything about `c` came before `short`.
    assert_no_runtime_noise(&w, &c.id);
}

/// `docker run --cgroup-parent=/a/b`: the container's cgroup is
/// `/a/b/<id>`, which no layout names; it is reported, as `scan` reports
/// it, as Docker's (the id's state is on disk), with its full id.
#[test]
fn docker_cgroup_parent_container_is_reported_as_dockers() {
    let Some(w) = watch(test_name!(), &[Rt::Docker], &[]) else {
        return;
    };
    let parent = format!("/{}-cpa/sub", pidns_tests::state::unique_name());
    let c = Container::start(
        &Spec::new(Rt::Docker)
            .pid(Pid::Host)
            .arg(&format!("--cgroup-parent={parent}")),
    )
    .expect("--cgroup-parent container");
    let f = expect(&w, "the container's init", |e| {
        finding(e, &c.id) && e["comm"] == "sleep"
    });
    assert_eq!(f["runtime"], "docker", "{f}");
    assert_eq!(f["cgroup"], format!("{parent}/{}", c.id), "{f}");
}

/// No setns event and no finding with trigger `setns` or `cgroup_attach`
/// for a container started by a runtime.
#[track_caller]
fn assert_no_runtime_noise(w: &Watch, id: &str) {
    let noise: Vec<Value> = w
        .events()
        .into_iter()
        .filter(|e| e["container_id"] == id)
        .filter(|e| {
            e["event"] == "setns"
                || (e["event"] == "host_pidns"
                    && matches!(e["trigger"].as_str(), Some("setns" | "cgroup_attach")))
        })
        .collect();
    assert!(noise.is_empty(), "runtime setup reported: {noise:#?}");
}

#[test]
fn docker_run_exec_and_short_lived() {
    runtime_host_pid_cases(Rt::Docker, test_name!());
}

#[test]
fn podman_run_exec_and_short_lived() {
    runtime_host_pid_cases(Rt::Podman, test_name!());
}

#[test]
fn containerd_with_ns_into_the_host_pid_namespace() {
    // ctr run --with-ns pid:/proc/<host pid>/ns/pid: runc setns-es into the host's.
    runtime_host_pid_cases(Rt::Ctr, test_name!());
}

#[test]
fn kubernetes_host_pid_pods_in_every_layout() {
    let Some(w) = watch(test_name!(), &[Rt::Runc], &[]) else {
        return;
    };
    for layout in Layout::ALL {
        let c = Container::start(&Spec::new(Rt::Runc).layout(layout).pid(Pid::Host))
            .expect("hostPID pod container");
        let f = expect(&w, &format!("{layout:?}"), |e| finding(e, &c.id));
        assert_eq!(f["runtime"], c.runtime, "{layout:?}");
        assert_eq!(
            (f["trigger"].as_str(), f["pid"].as_u64(), f["comm"].as_str()),
            (Some("exec"), Some(u64::from(c.init_pid())), Some("sleep")),
            "{layout:?}: {f}"
        );
        if let Some(uid) = &c.pod_uid {
            assert_eq!(f["pod"]["uid"], uid.as_str(), "{layout:?}: {f}");
        }
    }
    let short = Container::run_to_completion(
        &Spec::new(Rt::Runc)
            .layout(Layout::KubepodsSystemdContainerd)
            .pid(Pid::Host)
            .cmd(&["true"]),
    )
    .expect("short-lived pod container");
    expect(&w, "a short-lived hostPID pod container", |e| {
        finding(e, &short.id) && e["comm"] == "true" && e["trigger"] == "exec"
    });
}

#[test]
fn runc_and_podman_joining_the_host_pid_namespace_by_path() {
    let Some(w) = watch(test_name!(), &[Rt::Runc, Rt::Podman], &[]) else {
        return;
    };
    for rt in [Rt::Runc, Rt::Podman] {
        // runc:[1:CHILD] setns-es into /proc/<host pid>/ns/pid: that is the
        // runtime at work; the container's init exec'ing there is the finding.
        let c = Container::start(&Spec::new(rt).pid(Pid::HostPath)).expect("container");
        let f = expect(&w, &format!("{rt:?} joining by path"), |e| {
            finding(e, &c.id)
        });
        assert_eq!(
            (f["trigger"].as_str(), f["pid"].as_u64(), f["comm"].as_str()),
            (Some("exec"), Some(u64::from(c.init_pid())), Some("sleep")),
            "{rt:?}: {f}"
        );
        sentinel(&w, Sentinel::Runtime(rt));
        assert_no_runtime_noise(&w, &c.id);
    }
}

#[test]
fn a_payload_named_like_a_runtime_is_reported() {
    let Some(w) = watch(test_name!(), &[Rt::Docker], &[]) else {
        return;
    };
    let c = Container::start(&Spec::new(Rt::Docker).pid(Pid::Host)).expect("host-pid container");
    let out = c
        .exec(&[
            "sh",
            "-c",
            "cat /bin/busybox > /tmp/runc && busybox chmod 755 /tmp/runc",
        ])
        .expect("copy");
    assert!(out.status.success(), "{}", out.stderr);
    // busybox has no applet called runc: it fails, but it ran.
    c.exec(&["/tmp/runc", "true"]).expect("exec");
    let f = expect(&w, "the exec of /tmp/runc", |e| {
        finding(e, &c.id) && e["comm"] == "runc"
    });
    assert_eq!(
        (f["trigger"].as_str(), f["filename"].as_str()),
        (Some("exec"), Some("/tmp/runc")),
        "{f}"
    );
}

/// cgroup directories a runc container left above its own (runc removes
/// only the container's), in every hierarchy, deepest first.
struct CgroupChain(Vec<std::path::PathBuf>);

impl Drop for CgroupChain {
    fn drop(&mut self) {
        for dir in &self.0 {
            for _ in 0..50 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn long_cgroup_paths_name_the_innermost_container() {
    let Some(w) = watch(test_name!(), &[Rt::Runc], &[]) else {
        return;
    };
    // kind: a Kubernetes node in a Docker container, whose pods' cgroups
    // nest below the node container's; longer than the probe's 256 bytes.
    let outer = format!("docker-{}.scope", pidns_tests::state::random_hex(32));
    let pod = pidns_tests::state::random_hex(16);
    let pod = format!(
        "{}_{}_{}_{}_{}",
        &pod[..8],
        &pod[8..12],
        &pod[12..16],
        &pod[16..20],
        &pod[20..]
    );
    let id = pidns_tests::state::random_hex(32);
    let nested = [
        "kubelet.slice".to_owned(),
        "kubelet-kubepods.slice".to_owned(),
        "kubelet-kubepods-besteffort.slice".to_owned(),
        format!("kubelet-kubepods-besteffort-pod{pod}.slice"),
    ];
    let path = format!(
        "/system.slice/{outer}/{}/cri-containerd-{id}.scope",
        nested.join("/")
    );
    assert!(path.len() > 300, "{} bytes", path.len());
    // What runc will create and leave behind, deepest first.
    let mut chain = Vec::new();
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .expect("cgroupfs")
        .flatten()
    {
        let mut dirs = vec![hierarchy.path().join("system.slice").join(&outer)];
        for n in &nested {
            let next = dirs.last().expect("dir").join(n);
            dirs.push(next);
        }
        if !hierarchy.path().join("system.slice").exists() {
            dirs.insert(0, hierarchy.path().join("system.slice"));
        }
        chain.extend(dirs.into_iter().rev());
    }
    let _chain = CgroupChain(chain);
    let c = Container::start(&Spec::new(Rt::Runc).pid(Pid::Host).cgroups_path(
        &path,
        "containerd",
        &id,
    ))
    .expect("runc container");
    let f = expect(&w, "the container with a long cgroup path", |e| {
        e["event"] == "host_pidns" && e["pid"] == c.init_pid()
    });
    assert_eq!(
        (
            f["container_id"].as_str(),
            f["runtime"].as_str(),
            f["trigger"].as_str()
        ),
        (Some(id.as_str()), Some("containerd"), Some("exec")),
        "{f}"
    );
}

#[test]
fn isolated_containers_produce_nothing() {
    let Some(w) = watch(
        test_name!(),
        &[Rt::Docker, Rt::Podman, Rt::Ctr, Rt::Runc],
        &[],
    ) else {
        return;
    };
    let mut ids = Vec::new();
    for rt in [Rt::Docker, Rt::Podman, Rt::Ctr] {
        let c = Container::start(&Spec::new(rt)).expect("isolated container");
        let shared = Container::start(&Spec::new(rt).pid(Pid::Container(&c)))
            .expect("container-pid container");
        let out = c.exec(&["sh", "-c", "sleep 0.1 & wait"]).expect("exec");
        assert!(out.status.success(), "{:?}: {}", rt, out.stderr);
        let short =
            Container::run_to_completion(&Spec::new(rt).cmd(&["true"])).expect("short-lived");
        ids.extend([c.id.clone(), shared.id.clone(), short.id.clone()]);
    }
    for layout in Layout::ALL {
        let c =
            Container::start(&Spec::new(Rt::Runc).layout(layout)).expect("isolated pod container");
        c.exec(&["sh", "-c", "true"]).expect("exec");
        ids.push(c.id.clone());
    }
    // Everything above is done and removed.
    assert_nothing_about(&w, &ids);
}

/// No event names any of `ids`, once a sentinel (a host-PID Docker
/// container started afterwards) proved the watcher live.
fn assert_nothing_about(w: &Watch, ids: &[String]) {
    sentinel(w, Sentinel::Runtime(Rt::Docker));
    let wrong: Vec<Value> = w
        .events()
        .into_iter()
        .filter(|e| ids.iter().any(|id| e["container_id"] == id.as_str()))
        .collect();
    assert!(
        wrong.is_empty(),
        "events for isolated containers: {wrong:#?}"
    );
}

#[test]
fn isolated_containers_sharing_other_host_namespaces_produce_nothing() {
    let Some(w) = watch(test_name!(), &[Rt::Docker, Rt::Podman, Rt::Ctr], &[]) else {
        return;
    };
    let me = std::process::id();
    let ns = |ty: &str| format!("/proc/{me}/ns/{ty}");
    // Each runtime joins host namespaces for these (runc:[1:CHILD] setns-es
    // into them) while the container keeps a PID namespace of its own.
    let specs = [
        Spec::new(Rt::Docker).arg("--network=host"),
        Spec::new(Rt::Ctr)
            .arg("--with-ns")
            .arg(&format!("network:{}", ns("net"))),
        Spec::new(Rt::Podman)
            .arg(&format!("--uts=ns:{}", ns("uts")))
            .arg(&format!("--ipc=ns:{}", ns("ipc"))),
    ];
    let mut ids = Vec::new();
    for spec in &specs {
        let c = Container::start(spec).expect("container");
        let out = c.exec(&["sh", "-c", "sleep 0.1 & wait"]).expect("exec");
        assert!(out.status.success(), "{:?}: {}", spec.rt, out.stderr);
        ids.push(c.id.clone());
    }
    assert_nothing_about(&w, &ids);
}

#[test]
fn setns_into_host_namespaces_including_refused_attempts() {
    let Some(w) = watch(test_name!(), &[Rt::Docker], &[]) else {
        return;
    };
    let me = std::process::id().to_string();
    let able = Container::start(
        &Spec::new(Rt::Docker)
            .pid(Pid::Host)
            .cap("SYS_ADMIN")
            .cap("SYS_PTRACE"),
    )
    .expect("container");
    let out = able
        .exec(&["nsenter", "-t", &me, "-m", "-u", "true"])
        .expect("nsenter");
    assert!(
        out.status.success(),
        "nsenter with CAP_SYS_ADMIN: {}",
        out.stderr
    );
    for ns in ["mnt", "uts"] {
        let e = expect(&w, &format!("setns into the host's {ns}"), |e| {
            e["event"] == "setns" && e["container_id"] == able.id.as_str() && e["nstype"] == ns
        });
        assert_eq!(
            (e["ok"].as_bool(), e["target"].as_str(), e["comm"].as_str()),
            (Some(true), Some("host"), Some("nsenter"))
        );
    }
    // Without CAP_SYS_ADMIN the kernel (here Docker's seccomp profile) refuses: still reported.
    let unable = Container::start(&Spec::new(Rt::Docker).pid(Pid::Host).cap("SYS_PTRACE"))
        .expect("container");
    let out = unable
        .exec(&["nsenter", "-t", &me, "-m", "true"])
        .expect("nsenter");
    assert!(
        !out.status.success(),
        "nsenter without CAP_SYS_ADMIN should fail"
    );
    let e = expect(&w, "the refused setns", |e| {
        e["event"] == "setns" && e["container_id"] == unable.id.as_str()
    });
    assert_eq!(
        (e["ok"].as_bool(), e["error"].as_str()),
        (Some(false), Some("EPERM")),
        "{e}"
    );
}

fn run_synth(args: &[&str]) -> std::process::Output {
    let out = Command::new(synth().expect("pidns-synth"))
        .args(args)
        .output()
        .expect("pidns-synth");
    assert!(
        out.status.success(),
        "pidns-synth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn synthetic_attach_exec_fork_clone_and_setns() {
    let Some((w, s)) = synthetic(test_name!(), &[]) else {
        return;
    };
    let Synthetic { fake, dir, synth } = s;

    // A host process moves itself into the container's cgroup, then execs.
    let child = Command::new(&synth)
        .args(["join-cgroup", &dir, "--", "/bin/sleep", "0.2"])
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let f = expect(&w, "the move into the cgroup", |e| {
        finding(e, &fake.id) && e["trigger"] == "cgroup_attach"
    });
    assert_eq!(
        (f["pid"].as_u64(), f["runtime"].as_str()),
        (Some(u64::from(pid)), Some("docker"))
    );
    expect(&w, "its exec", |e| {
        finding(e, &fake.id) && e["trigger"] == "exec" && e["pid"] == pid
    });

    // A plain fork stays in the host PID namespace.
    run_synth(&[
        "join-cgroup",
        &dir,
        "--",
        "/bin/sh",
        "-c",
        "/bin/sleep 0.1 & wait",
    ]);
    let f = expect(&w, "a fork", |e| {
        finding(e, &fake.id) && e["trigger"] == "fork"
    });
    assert!(
        f["clone_flags"]
            .as_str()
            .is_some_and(|s| s.starts_with("0x")),
        "{f}"
    );

    // clone with CLONE_NEWNS but not CLONE_NEWPID: left in the host's, says how.
    run_synth(&[
        "join-cgroup",
        &dir,
        "--",
        &synth,
        "clone",
        "newns",
        "--",
        "/bin/sleep",
        "0.1",
    ]);
    let f = expect(&w, "a clone(CLONE_NEWNS)", |e| {
        finding(e, &fake.id) && e["trigger"] == "clone"
    });
    let flags = u64::from_str_radix(
        f["clone_flags"]
            .as_str()
            .unwrap_or("0x0")
            .trim_start_matches("0x"),
        16,
    )
    .unwrap_or(0);
    assert_ne!(flags & 0x0002_0000, 0, "CLONE_NEWNS in {f}");

    // CLONE_NEWPID: the child gets an isolated namespace and is not a finding.
    let child = Command::new(&synth)
        .args([
            "join-cgroup",
            &dir,
            "--",
            &synth,
            "clone",
            "newpid",
            "--",
            "/bin/sleep",
            "0.1",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let parent = child.id();
    assert!(child.wait_with_output().expect("wait").status.success());

    // setns into a host namespace from inside the container's cgroup, by a
    // process in a UTS namespace of its own (setns into the one it is in
    // is a no-op, dropped in the kernel).
    let host_uts = format!("/proc/{}/ns/uts", std::process::id());
    run_synth(&[
        "join-cgroup",
        &dir,
        "--",
        "unshare",
        "-u",
        &synth,
        "setns",
        "uts",
        &host_uts,
    ]);
    let e = expect(&w, "setns uts", |e| {
        e["event"] == "setns" && e["container_id"] == fake.id.as_str()
    });
    assert_eq!(
        (e["nstype"].as_str(), e["ok"].as_bool()),
        (Some("uts"), Some(true))
    );

    let isolated_child: Vec<Value> = w
        .events()
        .into_iter()
        .filter(|e| {
            finding(e, &fake.id)
                && e["ppid"] == parent
                && matches!(e["trigger"].as_str(), Some("fork" | "clone"))
        })
        .collect();
    assert!(
        isolated_child.is_empty(),
        "a CLONE_NEWPID child is not in the host PID namespace: {isolated_child:#?}"
    );
}

/// A process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs pidns-synth and returns the child PID it printed.
fn synth_child(args: &[&str]) -> u32 {
    let out = run_synth(args);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("pidns-synth {args:?} printed no child pid"))
}

fn all_for(w: &Watch, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    w.events().into_iter().filter(|e| pred(e)).collect()
}

/// The prologue of a synthetic test: [`watch`] (root, eBPF, `extra`), then
/// a fake container to act in. `None` after a skip. Watch reads runtimes'
/// state from [`fake_host_root`], where each fake container has the Docker
/// record a real one has: a cgroup's name alone is a claim, which pidns
/// does not report (a real container's processes carry other evidence).
fn synthetic(test: &str, extra: &[&str]) -> Option<(Watch, Synthetic)> {
    let root = fake_host_root();
    let root = root.display().to_string();
    let mut args = vec!["--host-root", root.as_str()];
    args.extend_from_slice(extra);
    let w = watch(test, &[], &args)?;
    Some((w, Synthetic::new()))
}

/// The host root the synthetic tests' watch reads runtimes' state from (in
/// the harness's state directory, which its teardown removes).
fn fake_host_root() -> std::path::PathBuf {
    pidns_tests::state::state_dir().join("synthetic-host-root")
}

/// A fake container, where `pidns-synth` runs on cue; its sentinel
/// ([`Sentinel::Fake`]) is a process moved into it that execs.
struct Synthetic {
    fake: FakeContainer,
    dir: String,
    synth: String,
}

impl Synthetic {
    fn new() -> Synthetic {
        let fake = FakeContainer::docker().expect("fake container cgroup");
        let record = fake_host_root()
            .join("var/lib/docker/containers")
            .join(&fake.id);
        std::fs::create_dir_all(&record).expect("the fake container's Docker record");
        let dir = fake.path().display().to_string();
        let synth = synth().expect("pidns-synth").display().to_string();
        Synthetic { fake, dir, synth }
    }

    /// Runs `pidns-synth ARGS` inside the container.
    fn inside(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["join-cgroup", &self.dir, "--", &self.synth];
        all.extend_from_slice(args);
        run_synth(&all)
    }

    fn inside_child(&self, args: &[&str]) -> u32 {
        let mut all = vec!["join-cgroup", &self.dir, "--", &self.synth];
        all.extend_from_slice(args);
        synth_child(&all)
    }
}

fn flags_of(e: &Value) -> u64 {
    e["clone_flags"]
        .as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| panic!("no clone_flags in {e}"))
}

#[test]
fn synthetic_vfork_fork_and_new_pid_namespaces() {
    let Some((w, s)) = synthetic(test_name!(), &[]) else {
        return;
    };
    // posix_spawn: glibc vforks (CLONE_VM|CLONE_VFORK); the child is
    // reported once, at its exec, with the flags it was created with.
    let spawned = s.inside_child(&["spawn", "--", "/bin/true"]);
    // the bare fork syscall (musl's fork): no flag at all
    let forked = s.inside_child(&["fork", "--", "/bin/true"]);
    // unshare(CLONE_NEWPID) then fork: the child is the new namespace's init
    let unshared = s.inside_child(&["unshare-pid", "--", "/bin/true"]);
    // clone(CLONE_NEWPID)
    let cloned = s.inside_child(&["clone", "newpid", "--", "/bin/true"]);
    sentinel(&w, Sentinel::Fake(&s));

    let about = |pid: u32| all_for(&w, |e| e["pid"] == pid || e["child_pid"] == pid);
    let spawned_events = about(spawned);
    let [e] = &spawned_events[..] else {
        panic!("the vfork child once, at its exec: {spawned_events:#?}")
    };
    assert_eq!(
        (e["trigger"].as_str(), e["comm"].as_str()),
        (Some("exec"), Some("true")),
        "{e}"
    );
    assert_eq!(flags_of(e) & 0x4100, 0x4100, "CLONE_VM|CLONE_VFORK in {e}");

    let forked_events = about(forked);
    let triggers: Vec<&str> = forked_events
        .iter()
        .filter_map(|e| e["trigger"].as_str())
        .collect();
    assert_eq!(triggers, ["fork", "exec"], "{forked_events:#?}");
    assert_eq!(flags_of(&forked_events[0]), 0, "{}", forked_events[0]);

    for (child, via, flag) in [
        (unshared, "unshare_or_setns", 0),
        (cloned, "clone", 0x2000_0000),
    ] {
        let events = about(child);
        let [e] = &events[..] else {
            panic!("one new_pidns event for {child} and no finding: {events:#?}")
        };
        assert_eq!(
            (
                e["event"].as_str(),
                e["via"].as_str(),
                e["container_id"].as_str()
            ),
            (Some("new_pidns"), Some(via), Some(s.fake.id.as_str())),
            "{e}"
        );
        assert_eq!(flags_of(e) & 0x2000_0000, flag, "{e}");
        assert!(e["pidns_inode"].as_u64().is_some_and(|i| i > 0), "{e}");
    }
}

#[test]
fn synthetic_clone_into_a_container_cgroup_is_reported_at_exec() {
    let Some((w, s)) = synthetic(test_name!(), &[]) else {
        return;
    };
    // A host process creates its child directly in the container's cgroup
    // (clone3 CLONE_INTO_CGROUP, as crun does); the child execs there.
    let child = synth_child(&["clone3-into", &s.dir, "--", "/bin/true"]);
    let f = expect(&w, "the child's exec", |e| {
        finding(e, &s.fake.id) && e["pid"] == child
    });
    assert_eq!(
        (f["trigger"].as_str(), f["comm"].as_str()),
        (Some("exec"), Some("true")),
        "{f}"
    );
    sentinel(&w, Sentinel::Fake(&s));
    let attach = all_for(&w, |e| e["pid"] == child && e["trigger"] == "cgroup_attach");
    assert!(
        attach.is_empty(),
        "treated like a runtime's move, reported at its exec: {attach:#?}"
    );
}

/// An overlayfs mount, unmounted on drop.
struct Overlay(std::path::PathBuf);

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn synthetic_runtime_setup_is_known_by_its_executable() {
    let Some((w, s)) = synthetic(test_name!(), &[]) else {
        return;
    };
    let scratch = Scratch::new("pidnst-runtime");
    // runc 1.2+ re-executes itself from a private read-only overlayfs of its
    // own directory (a lower-only mount: two lower layers).
    let synth_dir = std::path::Path::new(&s.synth)
        .parent()
        .expect("synth dir")
        .to_path_buf();
    let (empty, mnt) = (scratch.0.join("empty"), scratch.0.join("overlay"));
    std::fs::create_dir_all(&empty).expect("dir");
    std::fs::create_dir_all(&mnt).expect("dir");
    nix::mount::mount(
        Some("overlay"),
        &mnt,
        Some("overlay"),
        nix::mount::MsFlags::MS_RDONLY,
        Some(format!("lowerdir={}:{}", synth_dir.display(), empty.display()).as_str()),
    )
    .expect("overlayfs");
    let _overlay = Overlay(mnt.clone());
    // Another file with the same content is not the runtime's executable.
    let copy = scratch.0.join("pidns-synth-copy");
    std::fs::copy(&s.synth, &copy).expect("copy");

    let overlay_exe = mnt.join("pidns-synth");
    let cases = [
        ("self".to_owned(), true),
        ("memfd".to_owned(), true),
        (format!("copy:{}", overlay_exe.display()), true),
        (format!("copy:{}", copy.display()), false),
    ];
    let mut children = Vec::new();
    for (how, _) in &cases {
        children.push(synth_child(&["runtime", &s.dir, how, "--", "/bin/true"]));
    }
    for ((how, runtime), child) in cases.iter().zip(&children) {
        // the payload's exec is a finding whatever the stage was
        expect(&w, &format!("{how}: the payload"), |e| {
            finding(e, &s.fake.id) && e["pid"] == *child && e["trigger"] == "exec"
        });
        let attach = all_for(&w, |e| {
            e["pid"] == *child && e["trigger"] == "cgroup_attach"
        });
        assert_eq!(
            attach.is_empty(),
            *runtime,
            "{how}: the move is the runtime's: {runtime}; got {attach:#?}"
        );
    }
}

/// A fresh directory under /run, removed with what is in it.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::path::PathBuf::from(format!("/run/{name}-{}", pidns_tests::state::random_hex(4)));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn synthetic_setns_through_a_pidfd_and_into_other_host_namespaces() {
    let Some((w, s)) = synthetic(test_name!(), &[]) else {
        return;
    };
    let me = std::process::id();
    let link = |pid: u32, ty: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{ty}"))
            .expect("ns link")
            .display()
            .to_string()
    };
    let inode = |text: String| -> u64 {
        text.trim_end_matches(']')
            .rsplit('[')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{text}"))
    };

    // util-linux 2.39+ nsenter: setns(pidfd, CLONE_NEWNS|CLONE_NEWUTS): one
    // event per type, from a process with namespaces of its own
    let out = run_synth(&[
        "join-cgroup",
        &s.dir,
        "--",
        "unshare",
        "-m",
        "-u",
        &s.synth,
        "pidfd-setns",
        &me.to_string(),
        "mnt,uts",
    ]);
    assert!(out.status.success());
    for ty in ["mnt", "uts"] {
        let e = expect(&w, &format!("pidfd setns {ty}"), |e| {
            e["event"] == "setns" && e["container_id"] == s.fake.id.as_str() && e["nstype"] == ty
        });
        assert_eq!(
            (
                e["target"].as_str(),
                e["ok"].as_bool(),
                e["via"].as_str(),
                e["target_pid"].as_u64()
            ),
            (Some("host"), Some(true), Some("pidfd"), Some(u64::from(me))),
            "{e}"
        );
        assert_eq!(e["ns_inode"].as_u64(), Some(inode(link(me, ty))), "{e}");
    }

    // A host process in a mount namespace of its own (a PrivateTmp service,
    // `unshare -m`): joining it is joining the host's.
    let host = KillOnDrop(
        Command::new("unshare")
            .args(["-m", "sleep", "60"])
            .spawn()
            .expect("unshare"),
    );
    let host_pid = host.0.id();
    let mut own = String::new();
    for _ in 0..100 {
        own = link(host_pid, "mnt");
        if own != link(me, "mnt") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let host_mnt = format!("/proc/{host_pid}/ns/mnt");
    assert!(s.inside(&["setns", "mnt", &host_mnt]).status.success());
    let e = expect(&w, "setns into a host process's own mount namespace", |e| {
        e["event"] == "setns" && e["ns_inode"].as_u64() == Some(inode(own.clone()))
    });
    assert_eq!(
        (
            e["target"].as_str(),
            e["nstype"].as_str(),
            e["via"].as_str()
        ),
        (Some("host"), Some("mnt"), Some("ns_file")),
        "{e}"
    );

    // The container's own namespaces are not the host's: a container
    // process with a network namespace of its own, joined by another one
    // (`ip netns exec` inside a container), and a pidfd of a container process.
    let inner = KillOnDrop(
        Command::new(&s.synth)
            .args(["join-cgroup", &s.dir, "--", "unshare", "-n", "sleep", "60"])
            .spawn()
            .expect("spawn"),
    );
    let inner_pid = inner.0.id();
    for _ in 0..100 {
        if link(inner_pid, "net") != link(me, "net") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let inner_net = link(inner_pid, "net");
    assert!(
        s.inside(&["setns", "net", &format!("/proc/{inner_pid}/ns/net")])
            .status
            .success()
    );
    assert!(
        s.inside(&["pidfd-setns", &inner_pid.to_string(), "net"])
            .status
            .success()
    );
    sentinel(&w, Sentinel::Fake(&s));
    let wrong = all_for(&w, |e| {
        e["event"] == "setns"
            && (e["ns_inode"].as_u64() == Some(inode(inner_net.clone()))
                || e["target_pid"] == inner_pid)
    });
    assert!(
        wrong.is_empty(),
        "the container's own namespace: {wrong:#?}"
    );
    drop(host);
}

#[test]
fn synthetic_compat_setns_is_seen_with_compat_setns() {
    if std::env::consts::ARCH != "x86_64" {
        return; // no i386 ABI to go through
    }
    let Some((w, s)) = synthetic(test_name!(), &["--compat-setns"]) else {
        return;
    };
    let ready = expect(&w, "ready", |e| e["event"] == "ready");
    assert!(
        ready["probes"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == "sys_exit_compat_setns")),
        "{ready}"
    );
    let uts = format!("/proc/{}/ns/uts", std::process::id());
    // int 0x80: the syscalls:sys_exit_setns tracepoint never sees it
    assert!(
        run_synth(&[
            "join-cgroup",
            &s.dir,
            "--",
            "unshare",
            "-u",
            &s.synth,
            "setns32",
            "uts",
            &uts
        ])
        .status
        .success()
    );
    let e = expect(&w, "the compat setns", |e| {
        e["event"] == "setns" && e["container_id"] == s.fake.id.as_str()
    });
    assert_eq!(
        (
            e["nstype"].as_str(),
            e["ok"].as_bool(),
            e["compat"].as_bool()
        ),
        (Some("uts"), Some(true), Some(true)),
        "{e}"
    );
}

#[test]
fn lost_events_are_counted_and_reported() {
    let Some((w, s)) = synthetic(test_name!(), &["--ring-buffer-kib", "4"]) else {
        return;
    };
    let agent = nix::unistd::Pid::from_raw(w.pid().expect("pid") as i32);
    // Freeze the reader so that a burst must overflow a 4 KiB ring.
    nix::sys::signal::kill(agent, Signal::SIGSTOP).expect("SIGSTOP");
    run_synth(&[
        "join-cgroup",
        &s.dir,
        "--",
        "/bin/sh",
        "-c",
        "for i in $(seq 200); do /bin/true; done",
    ]);
    nix::sys::signal::kill(agent, Signal::SIGCONT).expect("SIGCONT");
    let e = expect(&w, "a lost event", |e| e["event"] == "lost");
    assert!(e["count"].as_u64().is_some_and(|n| n > 0), "{e}");
    assert!(e["total"].as_u64() >= e["count"].as_u64());
}

#[test]
fn sigint_and_sigterm_detach_and_exit_zero() {
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        let Some(mut w) = watch(test_name!(), &[], &[]) else {
            return;
        };
        let status = w.stop_with(sig).expect("stop");
        assert!(
            status.success(),
            "{sig}: {status:?}; stderr:\n{}",
            w.stderr()
        );
    }
    // --duration ends it on its own
    let bin = pidns_tests::pidns::bin().expect("pidns");
    let out = Command::new(bin)
        .args([
            "watch",
            "--mode",
            "ebpf",
            "--format",
            "json",
            "--duration",
            "1",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"event\":\"ready\""));
}

#[test]
fn without_ebpf_one_line_then_procfs_polling() {
    if !require_root(test_name!()) {
        return;
    }
    // As an unprivileged user pidns cannot load probes: it must say so once and poll.
    let bin = pidns_tests::pidns::bin().expect("pidns");
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(bin)
        .args([
            "watch",
            "--format",
            "json",
            "--duration",
            "1.5",
            "--interval",
            "0.5",
        ])
        .output()
        .expect("setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one clear line: {stderr}");
    assert!(
        lines[0].contains("eBPF unavailable") && lines[0].contains("polling"),
        "{stderr}"
    );
    let ready: Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &Value| v["event"] == "ready")
        .expect("ready event");
    assert_eq!(ready["mode"], "procfs");
}

#[test]
fn procfs_mode_reports_new_host_pid_containers() {
    let Some(()) = ready(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let w = Watch::start(&["--mode", "procfs", "--interval", "0.3"]).expect("watch");
    let c = Container::start(&Spec::new(Rt::Docker).pid(Pid::Host)).expect("host-pid container");
    let f = expect(&w, "a polled finding", |e| finding(e, &c.id));
    assert_eq!(f["trigger"], "poll");
    assert_eq!(f["pid"], c.init_pid());
}

/// Without rescans, a stopped container leaves the sharing gauge when its
/// cgroup is removed (the kernel's `cgroup_rmdir` event).
#[test]
fn a_stopped_container_leaves_the_gauge_without_a_rescan() {
    let Some(w) = watch(test_name!(), &[Rt::Docker], &["--metrics-addr", "0"]) else {
        return;
    };
    let addr = expect(&w, "ready", |e| e["event"] == "ready")["metrics_addr"]
        .as_str()
        .expect("metrics_addr")
        .to_owned();
    let scrape = || -> String {
        ureq::get(&format!("http://{addr}/metrics"))
            .call()
            .expect("scrape")
            .into_body()
            .read_to_string()
            .expect("body")
    };
    let mut c =
        Container::start(&Spec::new(Rt::Docker).pid(Pid::Host)).expect("host-pid container");
    expect(&w, "the container's finding", |e| finding(e, &c.id));
    let label = format!("container_id=\"{}\"", c.id);
    assert!(scrape().contains(&label), "not in the gauge");
    c.remove().expect("remove");
    let deadline = std::time::Instant::now() + WAIT;
    while scrape().contains(&label) {
        assert!(
            std::time::Instant::now() < deadline,
            "a stopped container stayed in the gauge"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn agent_sheds_capabilities_serves_metrics_and_rescans() {
    let Some(w) = watch(
        test_name!(),
        &[Rt::Docker],
        &["--metrics-addr", "0", "--rescan", "1"],
    ) else {
        return;
    };
    // Least privilege: after start-up only CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH remain, in every set.
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", w.pid().expect("pid"))).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or("?")
            .to_owned()
    };
    const KEPT: &str = "0000000000080004"; // CAP_DAC_READ_SEARCH (2) | CAP_SYS_PTRACE (19)
    for set in ["CapEff:", "CapPrm:", "CapBnd:", "CapInh:", "CapAmb:"] {
        let expected = if matches!(set, "CapInh:" | "CapAmb:") {
            "0000000000000000"
        } else {
            KEPT
        };
        assert_eq!(field(set), expected, "{set}\n{status}");
    }
    assert_eq!(field("NoNewPrivs:"), "1");
    // ... and it still works: a container started now gets a new cgroup that
    // must be classified in the kernel's map, without CAP_BPF.
    let mut c =
        Container::start(&Spec::new(Rt::Docker).pid(Pid::Host)).expect("host-pid container");
    expect(&w, "a finding after the drop", |e| finding(e, &c.id));
    let ready = expect(&w, "ready", |e| e["event"] == "ready");
    let addr = ready["metrics_addr"]
        .as_str()
        .expect("metrics_addr")
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let scrape = || -> String {
        ureq::get(&format!("http://{addr}/metrics"))
            .call()
            .expect("scrape")
            .into_body()
            .read_to_string()
            .expect("body")
    };
    let text = scrape();
    assert!(
        text.contains(&format!("container_id=\"{}\"", c.id)),
        "{text}"
    );
    assert!(
        text.contains("pidns_findings_total{event=\"host_pidns\",trigger=\"exec\"}"),
        "{text}"
    );
    assert!(
        text.contains("pidns_lost_events_total{stream=\"findings\"} 0"),
        "{text}"
    );
    assert!(!text.contains("pidns_probes_attached 0"), "{text}");
    // The container stops: the next rescan drops it from the gauge.
    c.remove().expect("remove");
    let deadline = std::time::Instant::now() + WAIT;
    while scrape().contains(&c.id) {
        assert!(
            std::time::Instant::now() < deadline,
            "a stopped container stayed in the gauge"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What marks a runtime's setup process (its parent's executable, a private
/// overlayfs copy of it, a child created straight into a cgroup) counts only
/// when a host process does the moving or creating: a container process
/// doing the same to its own child gets no exemption, and the child's setns
/// into a host namespace is reported. The child lives in a PID namespace of
/// its own, as in an isolated container, and re-executes the same file
/// before it calls setns, as the runtime's own re-exec would.
#[test]
fn synthetic_a_container_cannot_forge_runtime_setup() {
    let Some((w, s)) = synthetic(test_name!(), &[]) else {
        return;
    };
    let scratch = Scratch::new("pidnst-forge");
    let synth_dir = std::path::Path::new(&s.synth)
        .parent()
        .expect("synth dir")
        .to_path_buf();
    let (empty, mnt) = (scratch.0.join("empty"), scratch.0.join("overlay"));
    std::fs::create_dir_all(&empty).expect("dir");
    std::fs::create_dir_all(&mnt).expect("dir");
    nix::mount::mount(
        Some("overlay"),
        &mnt,
        Some("overlay"),
        nix::mount::MsFlags::MS_RDONLY,
        Some(format!("lowerdir={}:{}", synth_dir.display(), empty.display()).as_str()),
    )
    .expect("overlayfs");
    let _overlay = Overlay(mnt.clone());
    let overlay_exe = mnt.join("pidns-synth").display().to_string();
    let host_uts = format!("/proc/{}/ns/uts", std::process::id());
    let synth = s.synth.clone();
    // (what, the cgroup it moves its child into, the command up to the
    // re-exec'd file, which then runs `setns uts <host's>`)
    let cases = [
        (
            "parent's executable",
            "self",
            vec![
                synth.clone(),
                "runtime".into(),
                "{sub}".into(),
                "self".into(),
                "--".into(),
                synth.clone(),
            ],
        ),
        (
            "overlayfs copy",
            "overlay",
            vec![
                synth.clone(),
                "runtime".into(),
                "{sub}".into(),
                format!("copy:{overlay_exe}"),
                "--".into(),
                overlay_exe.clone(),
            ],
        ),
        (
            "CLONE_INTO_CGROUP",
            "clone3",
            vec![
                synth.clone(),
                "clone3-into".into(),
                "{sub}".into(),
                "--".into(),
                synth.clone(),
            ],
        ),
    ];
    for (what, name, cmd) in cases {
        let sub = format!("{}/{name}", s.dir);
        std::fs::create_dir_all(&sub).expect("sub-cgroup");
        let _sub = SubCgroup(sub.clone());
        let mut args: Vec<String> = ["join-cgroup", &s.dir, "--", "unshare", "-p", "-f", "-u"]
            .map(String::from)
            .to_vec();
        args.extend(cmd.into_iter().map(|a| a.replace("{sub}", &sub)));
        args.extend(["setns".to_owned(), "uts".into(), host_uts.clone()]);
        let before = setns_of(&w, &s.fake.id);
        run_synth(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let deadline = std::time::Instant::now() + WAIT;
        while setns_of(&w, &s.fake.id) == before {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: the forged setup process's setns went unreported; stderr: {}",
                w.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let e = all_for(&w, |e| {
            e["event"] == "setns" && e["container_id"] == s.fake.id.as_str()
        })
        .pop()
        .expect("setns event");
        assert_eq!(
            (e["nstype"].as_str(), e["ok"].as_bool()),
            (Some("uts"), Some(true)),
            "{what}: {e}"
        );
    }
}

/// How many setns events name this container.
fn setns_of(w: &Watch, id: &str) -> usize {
    all_for(w, |e| e["event"] == "setns" && e["container_id"] == id).len()
}

/// A sub-cgroup of a fake container, removed (once its processes are gone)
/// before the container's own.
struct SubCgroup(String);

impl Drop for SubCgroup {
    fn drop(&mut self) {
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() || !std::path::Path::new(&self.0).exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A process whose main thread exits lives on in its other threads, and is
/// still a container process: their forks are reported.
#[test]
fn synthetic_a_process_whose_leader_exited_is_still_tracked() {
    let Some((w, s)) = synthetic(test_name!(), &[]) else {
        return;
    };
    let child = s.inside_child(&["leader-exit", "--", "/bin/true"]);
    let f = expect(&w, "the fork after the leader's exit", |e| {
        finding(e, &s.fake.id) && e["pid"] == child && e["trigger"] == "fork"
    });
    assert!(f["ppid"].as_u64().is_some(), "{f}");
}

/// A vfork child that exits without exec'ing is reported, at its exit.
#[test]
fn synthetic_a_vfork_child_that_never_execs_is_reported() {
    let Some((w, s)) = synthetic(test_name!(), &[]) else {
        return;
    };
    let child = s.inside_child(&["vfork-exit"]);
    let f = expect(&w, "the vfork child", |e| {
        finding(e, &s.fake.id) && e["pid"] == child
    });
    assert_eq!(f["trigger"], "fork", "{f}");
    assert!(flags_of(&f) & 0x4000 != 0, "CLONE_VFORK in {f}");
}

/// A container removing a sub-cgroup named after itself (its own id, as a
/// nested container's would be) stays in the sharing gauge: the gauge
/// follows the container's own cgroup.
#[test]
fn synthetic_a_sub_cgroup_named_after_the_container_keeps_it_in_the_gauge() {
    let Some((w, s)) = synthetic(test_name!(), &["--metrics-addr", "0"]) else {
        return;
    };
    let addr = expect(&w, "ready", |e| e["event"] == "ready")["metrics_addr"]
        .as_str()
        .expect("metrics_addr")
        .to_owned();
    let scrape = || -> String {
        ureq::get(&format!("http://{addr}/metrics"))
            .call()
            .expect("scrape")
            .into_body()
            .read_to_string()
            .expect("body")
    };
    let sleeper = KillOnDrop(
        Command::new(&s.synth)
            .args(["join-cgroup", &s.dir, "--", "/bin/sleep", "60"])
            .spawn()
            .expect("spawn"),
    );
    let pid = sleeper.0.id();
    expect(&w, "the container's process", |e| {
        finding(e, &s.fake.id) && e["pid"] == pid
    });
    let label = format!("container_id=\"{}\"", s.fake.id);
    assert!(scrape().contains(&label), "not in the gauge");
    let nested = s.fake.path().join("docker").join(&s.fake.id);
    std::fs::create_dir_all(&nested).expect("nested cgroup");
    std::fs::remove_dir(&nested).expect("rmdir nested");
    std::fs::remove_dir(s.fake.path().join("docker")).expect("rmdir docker");
    // The sentinel runs in another container: one in this one would put it
    // back in the gauge.
    let other = Synthetic::new();
    sentinel(&w, Sentinel::Fake(&other));
    assert!(
        scrape().contains(&label),
        "removing a sub-cgroup took the container off the gauge"
    );
    drop(sleeper);
}

/// A kernel cgroup map too small for the host's cgroups is said on stderr,
/// never silently, and fails open: a cgroup it could not hold reaches user
/// space, which still reports a host-PID process in a container there.
#[test]
fn synthetic_a_full_cgroup_map_is_said_and_fails_open() {
    let Some((w, s)) = synthetic(test_name!(), &["--max-cgroups", "64"]) else {
        return;
    };
    expect(&w, "ready", |e| e["event"] == "ready");
    let subs: Vec<SubCgroup> = (0..70)
        .map(|i| {
            let dir = format!("{}/s{i}", s.dir);
            std::fs::create_dir_all(&dir).expect("sub-cgroup");
            SubCgroup(dir)
        })
        .collect();
    let deadline = std::time::Instant::now() + WAIT;
    while !w.stderr().contains("cgroup map is full") {
        assert!(
            std::time::Instant::now() < deadline,
            "a full map went unsaid: {}",
            w.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The last sub-cgroup did not fit: a process there is still reported.
    let last = &subs[subs.len() - 1].0;
    let child = Command::new(&s.synth)
        .args(["join-cgroup", last, "--", "/bin/true"])
        .spawn()
        .expect("spawn");
    let pid = child.id();
    assert!(child.wait_with_output().expect("wait").status.success());
    expect(&w, "the process in a cgroup the map could not hold", |e| {
        finding(e, &s.fake.id) && e["pid"] == pid && e["trigger"] == "exec"
    });
    drop(subs);
}
