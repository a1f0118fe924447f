//! The agent's image, run under Docker as the DaemonSet runs it: host PID
//! namespace, host /proc read-only, only the capabilities it needs. It must
//! report a host-PID container started next to it, and not itself.

use std::time::{Duration, Instant};

use pidns_tests::{Container, Pid, Rt, Spec, ready, sh, skip::skip, state};
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

#[test]
fn image_runs_as_the_daemonset_would_and_reports_its_neighbour() {
    let test = "image_runs_as_the_daemonset_would_and_reports_its_neighbour";
    let Some(()) = ready(test, &[Rt::Docker]) else {
        return;
    };
    let Ok(image) = std::env::var("PIDNS_TEST_IMAGE") else {
        skip(
            test,
            "PIDNS_TEST_IMAGE is not set: `cargo xtask test` builds the image",
        );
        return;
    };
    let agent = Agent {
        name: state::unique_name(),
    };
    let mut args: Vec<String> = [
        "run",
        "-d",
        "--name",
        &agent.name,
        "--pid=host",
        "--network=none",
        "--ulimit",
        "nofile=1024:1024",
        "--cap-drop",
        "ALL",
    ]
    .map(String::from)
    .to_vec();
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
    args.push(image);
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
    let ready = agent.wait_for("the ready event", |v| v["event"] == "ready");
    assert_eq!(ready["mode"], "ebpf", "{ready}");

    let neighbour =
        Container::start(&Spec::new(Rt::Docker).pid(Pid::Host)).expect("host-pid container");
    let f = agent.wait_for("a finding for the neighbour", |v| {
        v["event"] == "host_pidns" && v["container_id"] == neighbour.id.as_str()
    });
    assert_eq!(f["runtime"], "docker");

    // It does not report itself, though it shares the host PID namespace too.
    assert!(
        agent
            .lines()
            .iter()
            .all(|v| v["container_id"] != id.as_str()),
        "the agent reported its own container"
    );
    // After start-up it holds CAP_SYS_PTRACE alone.
    let pid = sh::run(
        "docker",
        &["inspect", "--format", "{{.State.Pid}}", &agent.name],
    )
    .expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(str::trim)
        .unwrap_or("?");
    assert_eq!(eff, "0000000000080000", "{status}");
}
