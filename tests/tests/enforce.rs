//! `pidns watch --enforce` against real runtimes (issue 14): the escape is
//! killed in the kernel before it runs, a host-PID container's payload dies
//! before its first instruction on every runtime, and nothing that is not
//! proven a non-allowed container's process is touched.
//!
//! Each test runs its own agent; they take turns (an agent kills for every
//! test running beside it).

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use pidns_tests::{
    Container, Layout, Pid, Rt, Spec,
    inside::Tool,
    pidns::{Watch, bin, synth},
    ready, runtimes, sh, state, test_name, watching,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
/// SIGKILL's exit status, as a shell and Docker say it.
const KILLED: i32 = 128 + 9;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Root, the runtimes in `needs`, and watch in eBPF mode with `extra`.
fn watch(test: &str, needs: &[Rt], extra: &[&str]) -> Option<Watch> {
    watching::ebpf(test, needs, extra)
}

fn dump(w: &Watch) -> String {
    watching::dump(w, |_| true)
}

#[track_caller]
fn expect(w: &Watch, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    watching::expect(w, WAIT, what, pred, |_| true)
}

/// A directory of the test's own on the host, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = state::state_dir().join(format!("enforce-{}", state::random_hex(4)));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn str(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A host-PID container allowed to run nsenter against the host.
fn escaper(rt: Rt) -> Container {
    Container::start(
        &Spec::new(rt)
            .pid(Pid::Host)
            .cap("SYS_ADMIN")
            .cap("SYS_PTRACE")
            .arg("--security-opt=seccomp=unconfined"),
    )
    .expect("host-PID container")
}

/// `nsenter -t <host pid> -m touch <file on the host>` from a `--pid=host
/// --cap-add SYS_ADMIN --cap-add SYS_PTRACE` container: the setns into the
/// host's mount namespace completes in the kernel, and the caller dies
/// there. The file never appears, `docker exec` exits 137, and the setns
/// line says `"enforced": "killed"`.
#[test]
fn enforce_setns_kills_nsenter_before_it_runs_in_the_host() {
    let _turn = serial();
    let Some(w) = watch(test_name!(), &[Rt::Docker], &["--enforce", "setns"]) else {
        return;
    };
    let me = std::process::id().to_string();
    let dir = Scratch::new();
    let marker = dir.path().join("escaped");
    let c = escaper(Rt::Docker);
    let out = c
        .exec(&[
            "nsenter",
            "-t",
            &me,
            "-m",
            "touch",
            &marker.display().to_string(),
        ])
        .expect("docker exec");
    let e = expect(&w, "the setns into the host's mount namespace", |e| {
        e["event"] == "setns" && e["container_id"] == c.id.as_str() && e["nstype"] == "mnt"
    });
    assert_eq!(
        out.status.code(),
        Some(KILLED),
        "docker exec of the escape: {} {}\n{}",
        out.stdout,
        out.stderr,
        dump(&w)
    );
    assert!(!marker.exists(), "the escape wrote {}", marker.display());
    assert_eq!(
        (e["ok"].as_bool(), e["enforced"].as_str()),
        (Some(true), Some("killed")),
        "{e}"
    );
    // The container itself lives on (setns mode does not kill host-PID
    // containers): only the escaping process died.
    let alive = c.exec(&["true"]).expect("docker exec true");
    assert!(alive.status.success(), "{}", alive.stderr);
}

/// The same escape through a pidfd of a host process (setns(pidfd,
/// CLONE_NEWNS)), then an exec of the host's `touch`: killed before the
/// exec, the file never appears.
#[test]
fn enforce_setns_kills_a_pidfd_setns() {
    let _turn = serial();
    let Some(w) = watch(test_name!(), &[Rt::Docker], &["--enforce", "setns"]) else {
        return;
    };
    let tool = Tool::new(&synth().expect("pidns-synth")).expect("tool");
    let me = std::process::id().to_string();
    let dir = Scratch::new();
    let marker = dir.path().join("escaped-pidfd");
    let mut spec = Spec::new(Rt::Docker)
        .pid(Pid::Host)
        .cap("SYS_ADMIN")
        .cap("SYS_PTRACE")
        .arg("--security-opt=seccomp=unconfined");
    for m in tool.mounts().expect("mounts") {
        spec = spec.arg(&m);
    }
    let c = Container::start(&spec).expect("host-PID container");
    let out = c
        .exec(&[
            &tool.path(),
            "pidfd-setns",
            &me,
            "mnt",
            "--",
            "/usr/bin/touch",
            &marker.display().to_string(),
        ])
        .expect("docker exec");
    let e = expect(&w, "the pidfd setns into the host's mount namespace", |e| {
        e["event"] == "setns" && e["container_id"] == c.id.as_str() && e["nstype"] == "mnt"
    });
    assert_eq!(
        out.status.code(),
        Some(KILLED),
        "{} {}\n{}",
        out.stdout,
        out.stderr,
        dump(&w)
    );
    assert!(!marker.exists(), "the escape wrote {}", marker.display());
    assert_eq!(
        (e["via"].as_str(), e["enforced"].as_str()),
        (Some("pidfd"), Some("killed")),
        "{e}"
    );
}

/// The exit status of a stopped Docker or Podman container.
fn exit_code(c: &Container) -> Option<i32> {
    let (program, mut args): (&str, Vec<String>) = match c.rt {
        Rt::Docker => ("docker", Vec::new()),
        Rt::Podman => (
            "podman",
            runtimes::PODMAN_GLOBAL
                .iter()
                .map(|s| s.to_string())
                .collect(),
        ),
        _ => return None,
    };
    args.extend(["wait".to_owned(), c.name.clone()]);
    sh::run(program, &args).ok()?.trim().parse().ok()
}

/// `<runtime> run --pid=host IMAGE sh -c 'touch /volume/marker'` (ctr with
/// `--with-ns pid:/proc/<host pid>/ns/pid`, runc sharing the host's): the
/// payload dies at its exec, before its first instruction. Docker and
/// Podman say 137; the marker is never written; the finding says
/// `"enforced": "killed"`.
fn host_pid_payload_is_killed(test: &str, rt: Rt, pid: Pid<'_>) {
    let _turn = serial();
    let Some(w) = watch(test, &[rt], &["--enforce", "host-pidns"]) else {
        return;
    };
    let dir = Scratch::new();
    let spec = Spec::new(rt).pid(pid).volume(&dir.str(), "/volume").cmd(&[
        "sh",
        "-c",
        "touch /volume/marker",
    ]);
    let mut c = Container::start(&spec).expect("host-PID container");
    let e = expect(&w, "the payload's exec", |e| {
        e["event"] == "host_pidns" && e["container_id"] == c.id.as_str()
    });
    if let Some(code) = exit_code(&c) {
        assert_eq!(code, KILLED, "{:?} exit status\n{}", rt, dump(&w));
    }
    c.remove().expect("remove");
    assert!(
        !dir.path().join("marker").exists(),
        "{rt:?}: the payload ran\n{}",
        dump(&w)
    );
    assert_eq!(
        (e["trigger"].as_str(), e["enforced"].as_str()),
        (Some("exec"), Some("killed")),
        "{e}"
    );
}

#[test]
fn enforce_host_pidns_docker() {
    host_pid_payload_is_killed(test_name!(), Rt::Docker, Pid::Host);
}

#[test]
fn enforce_host_pidns_podman() {
    host_pid_payload_is_killed(test_name!(), Rt::Podman, Pid::Host);
}

#[test]
fn enforce_host_pidns_ctr_with_ns() {
    host_pid_payload_is_killed(test_name!(), Rt::Ctr, Pid::HostPath);
}

#[test]
fn enforce_host_pidns_runc() {
    host_pid_payload_is_killed(test_name!(), Rt::Runc, Pid::Host);
}

/// A child forked by a container process already in the host PID
/// namespace when the agent started (reported, not killed: no
/// `--enforce-existing`) dies at its return from fork: a subshell, a fork
/// without exec, never writes its marker. The shell itself only runs
/// builtins (busybox runs even `sleep` through an exec, which would be
/// killed), and lives on.
#[test]
fn enforce_host_pidns_kills_a_fork_and_spares_the_existing() {
    let _turn = serial();
    let Some(()) = ready(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let dir = Scratch::new();
    for fifo in ["go", "hold"] {
        sh::run("mkfifo", &[dir.path().join(fifo).display().to_string()]).expect("mkfifo");
    }
    let script = "read x < /volume/go; (echo x > /volume/marker); read y < /volume/hold";
    let c = Container::start(
        &Spec::new(Rt::Docker)
            .pid(Pid::Host)
            .volume(&dir.str(), "/volume")
            .cmd(&["sh", "-c", script]),
    )
    .expect("host-PID container");
    let Some(w) = watch(test_name!(), &[Rt::Docker], &["--enforce", "host-pidns"]) else {
        return;
    };
    let existing = expect(&w, "the start-up finding", |e| {
        e["event"] == "host_pidns" && e["container_id"] == c.id.as_str() && e["trigger"] == "scan"
    });
    assert!(existing.get("enforced").is_none(), "{existing}");
    // Opening the fifo waits for the shell's `read`.
    std::fs::write(dir.path().join("go"), "go\n").expect("go");
    let fork = expect(&w, "the subshell's fork", |e| {
        e["event"] == "host_pidns" && e["container_id"] == c.id.as_str() && e["trigger"] == "fork"
    });
    assert_eq!(fork["enforced"].as_str(), Some("killed"), "{fork}");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !dir.path().join("marker").exists(),
        "the forked subshell ran"
    );
    assert!(
        Path::new(&format!("/proc/{}", c.init_pid())).exists(),
        "the existing process was killed\n{}",
        dump(&w)
    );
}

/// `--enforce-existing`: the processes found at start-up are killed by the
/// agent after it verified them (`killed_by_agent`).
#[test]
fn enforce_existing_kills_what_runs_at_start() {
    let _turn = serial();
    let Some(()) = ready(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let c = Container::start(&Spec::new(Rt::Docker).pid(Pid::Host)).expect("host-PID container");
    let Some(w) = watch(
        test_name!(),
        &[Rt::Docker],
        &["--enforce", "host-pidns", "--enforce-existing"],
    ) else {
        return;
    };
    let e = expect(&w, "the start-up finding", |e| {
        e["event"] == "host_pidns" && e["container_id"] == c.id.as_str() && e["trigger"] == "scan"
    });
    assert_eq!(e["enforced"].as_str(), Some("killed_by_agent"), "{e}");
    assert_eq!(exit_code(&c), Some(KILLED), "{}", dump(&w));
}

/// Nothing that is not proven a non-allowed container's process is killed:
/// under `--enforce setns,host-pidns`, a churn of isolated container starts
/// and `exec`s on Docker, Podman, containerd and runc (with `--network=host`
/// and `ctr --with-ns network:`, whose runtimes setns into the host's
/// network namespace) all exit 0; an allowed `--pid=host` container keeps
/// running and can exec; the host's own `nsenter` and `unshare` work.
#[test]
fn enforce_kills_nothing_else() {
    let _turn = serial();
    let needs = [Rt::Docker, Rt::Podman, Rt::Ctr, Rt::Runc];
    let Some(()) = ready(test_name!(), &needs) else {
        return;
    };
    let allowed = Container::start(&Spec::new(Rt::Docker).pid(Pid::Host)).expect("allowed");
    let Some(w) = watch(
        test_name!(),
        &needs,
        &["--enforce", "setns,host-pidns", "--allow", &allowed.name],
    ) else {
        return;
    };
    let me = std::process::id().to_string();
    let net = format!("network:/proc/{me}/ns/net");
    let specs: Vec<Spec<'_>> = vec![
        Spec::new(Rt::Docker),
        Spec::new(Rt::Docker).arg("--network=host"),
        Spec::new(Rt::Podman),
        Spec::new(Rt::Podman).arg("--network=host"),
        Spec::new(Rt::Ctr),
        Spec::new(Rt::Ctr).arg("--with-ns").arg(&net),
        Spec::new(Rt::Runc),
        Spec::new(Rt::Runc).layout(Layout::NoCgroupsPath),
    ];
    // Each one-shot container writes a file of its own on the way out: it
    // ran to its end.
    let out_dir = Scratch::new();
    let mut done = 0;
    for round in 0..3 {
        for spec in &specs {
            let c = Container::start(spec).unwrap_or_else(|e| {
                panic!("round {round}: {spec:?} did not start: {e:#}\n{}", dump(&w))
            });
            let out = c.exec(&["true"]).expect("exec");
            assert!(
                out.status.success(),
                "round {round}: exec in {spec:?}: {:?} {}\n{}",
                out.status,
                out.stderr,
                dump(&w)
            );
            done += 1;
            let file = format!("/volume/{round}-{done}");
            let oneshot = spec.clone().volume(&out_dir.str(), "/volume").cmd(&[
                "sh",
                "-c",
                &format!("touch {file}"),
            ]);
            let mut c = Container::start(&oneshot).unwrap_or_else(|e| {
                panic!("round {round}: {spec:?} one-shot: {e:#}\n{}", dump(&w))
            });
            if let Some(code) = exit_code(&c) {
                assert_eq!(code, 0, "round {round}: {spec:?} one-shot\n{}", dump(&w));
            }
            let wrote = out_dir.path().join(file.trim_start_matches("/volume/"));
            let deadline = std::time::Instant::now() + WAIT;
            while !wrote.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(
                wrote.exists(),
                "round {round}: {spec:?} one-shot did not finish\n{}",
                dump(&w)
            );
            c.remove().expect("remove");
            done += 1;
        }
    }
    assert!(done >= 40, "{done} container starts");
    // The allowed host-PID container runs on, and execs.
    let out = allowed
        .exec(&["true"])
        .expect("exec in the allowed container");
    assert!(out.status.success(), "{:?} {}", out.status, out.stderr);
    assert!(Path::new(&format!("/proc/{}", allowed.init_pid())).exists());
    // The host's own nsenter and unshare.
    for (program, args) in [
        ("nsenter", vec!["-t", me.as_str(), "-m", "-n", "true"]),
        ("unshare", vec!["-m", "-n", "true"]),
    ] {
        let out = sh::output_with(program, &args, Duration::from_secs(30)).expect(program);
        assert!(out.status.success(), "host {program}: {:?}", out.status);
    }
    let killed: Vec<Value> = w
        .events()
        .into_iter()
        .filter(|e| e.get("enforced").is_some())
        .collect();
    assert!(killed.is_empty(), "killed: {killed:#?}");
}

/// `--enforce` where the probes cannot be used (not root, no CAP_BPF): exit
/// 2 with the reason, never a fallback to polling; `--mode procfs` too.
#[test]
fn enforce_without_ebpf_is_refused() {
    let test = test_name!();
    if !pidns_tests::require_root(test) {
        return;
    }
    let pidns = bin().expect("pidns binary");
    // As nobody, without capabilities: a copy nobody can reach.
    let copy =
        Scratch(std::env::temp_dir().join(format!("pidns-enforce-{}", state::random_hex(4))));
    std::fs::create_dir_all(copy.path()).expect("dir");
    let exe = copy.path().join("pidns");
    std::fs::copy(&pidns, &exe).expect("copy pidns");
    sh::run("chmod", &["-R", "a+rX", &copy.str()]).expect("chmod");
    let exe = exe.display().to_string();
    for (how, program, args) in [
        (
            "as nobody",
            "setpriv",
            vec![
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                exe.as_str(),
                "watch",
                "--enforce",
                "setns,host-pidns",
                "--duration",
                "1",
            ],
        ),
        (
            "in procfs mode",
            exe.as_str(),
            vec![
                "watch",
                "--mode",
                "procfs",
                "--enforce",
                "host-pidns",
                "--duration",
                "1",
            ],
        ),
    ] {
        let out = sh::output_with(program, &args, Duration::from_secs(30)).expect(how);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{how}: {:?}\n{}\n{}",
            out.status,
            out.stdout,
            out.stderr
        );
        assert!(
            out.stderr.contains("--enforce") && !out.stdout.contains("\"ready\""),
            "{how}: {}\n{}",
            out.stdout,
            out.stderr
        );
    }
}
