//! The agent's image under Docker, with host /proc read-only and only the
//! capabilities it needs, run two ways: as issue 7 asks (`--pid=host -v
//! /proc:/host/proc:ro`), and as the DaemonSet runs it, in a PID namespace of
//! its own (no hostPID: /host/proc is the host's procfs, whose `self` is the
//! agent's host pid, so nothing needs the host PID namespace). Both must
//! report a host-PID container started next to it, and not the agent itself.

use std::time::{Duration, Instant};

use pidns_tests::{Container, Pid, Rt, Spec, env, ready, sh, skip::skip, state, test_name};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// The agent container, removed on drop.
struct Agent {
    name: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = sh::run("docker", &["rm", "-f", &self.name]);
    }
}

impl Agent {
    fn lines(&self) -> Vec<Value> {
        let out = sh::output_with("docker", &["logs", &self.name], sh::DEFAULT_TIMEOUT)
            .expect("docker logs");
        out.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = self.lines().into_iter().find(|v| pred(v)) {
                return v;
            }
            if Instant::now() > deadline {
                let logs = sh::output_with("docker", &["logs", &self.name], sh::DEFAULT_TIMEOUT)
                    .expect("docker logs");
                panic!(
                    "no {what} from the agent within {WAIT:?}; its output:\n{}{}",
                    logs.stdout, logs.stderr
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Docker 23 and later know CAP_BPF and CAP_PERFMON; before that only
/// CAP_SYS_ADMIN grants what they do.
fn capabilities() -> &'static [&'static str] {
    let version =
        sh::run("docker", &["version", "--format", "{{.Server.Version}}"]).unwrap_or_default();
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major >= 23 {
        &["BPF", "PERFMON", "SYS_PTRACE"]
    } else {
        &["SYS_ADMIN", "SYS_PTRACE"]
    }
}

/// How the agent's container is run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum AgentPid {
    /// `--pid=host`.
    Host,
    /// Its own PID namespace, as the DaemonSet runs it.
    Own,
}

/// Starts the agent image; returns it and its container id.
fn start_agent(image: &str, pid: AgentPid) -> (Agent, String) {
    let agent = Agent {
        name: state::unique_name(),
    };
    let mut args: Vec<String> = [
        "run",
        "-d",
        "--name",
        &agent.name,
        "--network=none",
        "--ulimit",
        "nofile=1024:1024",
        "--cap-drop",
        "ALL",
    ]
    .map(String::from)
    .to_vec();
    if pid == AgentPid::Host {
        args.push("--pid=host".into());
    }
    for cap in capabilities() {
        args.push(format!("--cap-add={cap}"));
    }
    for mount in [
        "/proc:/host/proc:ro",
        "/sys/fs/cgroup:/host/sys/fs/cgroup:ro",
        "/sys/kernel/tracing:/sys/kernel/tracing:ro",
    ] {
        args.push("-v".into());
        args.push(mount.into());
    }
    args.push(image.into());
    args.extend(
        [
            "watch",
            "--format",
            "json",
            "--proc-root",
            "/host/proc",
            "--cgroup-root",
            "/host/sys/fs/cgroup",
        ]
        .map(String::from),
    );
    let id = sh::run("docker", &args).expect("docker run the agent image");
    (agent, id)
}

/// The agent reports a host-PID neighbour, not itself, and keeps only CAP_SYS_PTRACE.
fn reports_its_neighbour(test: &str, pid: AgentPid) {
    let Some(()) = ready(test, &[Rt::Docker]) else {
        return;
    };
    let Ok(image) = std::env::var(env::TEST_IMAGE) else {
        skip(
            test,
            &format!(
                "{} is not set: `cargo xtask test` builds the image",
                env::TEST_IMAGE
            ),
        );
        return;
    };
    let (agent, id) = start_agent(&image, pid);
    let ready = agent.wait_for("the ready event", |v| v["event"] == "ready");
    assert_eq!(ready["mode"], "ebpf", "{ready}");

    let neighbour =
        Container::start(&Spec::new(Rt::Docker).pid(Pid::Host)).expect("host-pid container");
    let f = agent.wait_for("a finding for the neighbour", |v| {
        v["event"] == "host_pidns" && v["container_id"] == neighbour.id.as_str()
    });
    assert_eq!(f["runtime"], "docker");

    // It does not report itself (with --pid=host it shares the host PID
    // namespace too, and recognises its own container).
    assert!(
        agent
            .lines()
            .iter()
            .all(|v| v["container_id"] != id.as_str()),
        "the agent reported its own container"
    );
    // After start-up it holds CAP_SYS_PTRACE alone.
    let host_pid = sh::run(
        "docker",
        &["inspect", "--format", "{{.State.Pid}}", &agent.name],
    )
    .expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).expect("status");
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(str::trim)
        .unwrap_or("?");
    assert_eq!(eff, "0000000000080000", "{status}");

    // Where it runs: in the host PID namespace or in its own.
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).expect("ns/pid");
    let me = std::process::id().to_string();
    assert_eq!(
        ns(&host_pid) == ns(&me),
        pid == AgentPid::Host,
        "the agent's PID namespace"
    );

    // A scan from inside sees the host as the host sees it: the neighbour
    // shares, the agent's own container is allowed (--pid=host) or isolated.
    let out = sh::output_with(
        "docker",
        &[
            "exec",
            &agent.name,
            "/pidns",
            "scan",
            "--format",
            "json",
            "--proc-root",
            "/host/proc",
        ],
        sh::DEFAULT_TIMEOUT,
    )
    .expect("docker exec pidns scan");
    let scan: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("scan JSON: {e}\n{}{}", out.stdout, out.stderr));
    let verdict = |cid: &str| {
        scan["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["id"] == cid)
            .map(|c| c["verdict"].clone())
            .unwrap_or_else(|| panic!("{cid} missing from the scan: {scan:#}"))
    };
    assert_eq!(verdict(&neighbour.id), "shares");
    let own = match pid {
        AgentPid::Host => "allowed",
        AgentPid::Own => "isolated",
    };
    assert_eq!(verdict(&id), own);
}

#[test]
fn image_with_host_pid_reports_its_neighbour() {
    reports_its_neighbour(test_name!(), AgentPid::Host);
}

#[test]
fn image_runs_as_the_daemonset_would_and_reports_its_neighbour() {
    reports_its_neighbour(test_name!(), AgentPid::Own);
}
