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

/// Starts watch in procfs mode with metrics on an ephemeral port; returns the
/// child and the address from its ready event.
fn watch_with_metrics(t: &Tree, extra: &[&str]) -> (std::process::Child, String) {
    watch_with_metrics_in(
        std::process::Command::new(assert_cmd::cargo::cargo_bin("pidns")),
        t,
        extra,
    )
}

fn watch_with_metrics_in(
    mut command: std::process::Command,
    t: &Tree,
    extra: &[&str],
) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut child = command
        .args([
            "watch",
            "--mode",
            "procfs",
            "--format",
            "json",
            "--interval",
            "0.2",
            "--metrics-addr",
            "0",
            "--proc-root",
            &t.proc_root(),
        ])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("a ready line").expect("utf8");
        let v: Value = serde_json::from_str(&line).expect("json");
        if v["event"] == "ready" {
            break v["metrics_addr"]
                .as_str()
                .expect("metrics_addr in ready")
                .to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

fn scrape(addr: &str) -> String {
    // A starved server must fail the test, not hang it.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = agent
        .get(&format!("http://{addr}/metrics"))
        .call()
        .expect("scrape");
    // prometheus-client writes OpenMetrics text, and says so: Prometheus
    // parses the body by this header.
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    resp.body_mut().read_to_string().expect("body")
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[test]
fn idle_connections_do_not_starve_the_metrics_server() {
    use std::os::unix::process::CommandExt as _;
    let t = Tree::new();
    t.add(600, P::host("agent", 600).v2(&format!("/docker/{ID_B}")));
    // Few file descriptors, as under a tight LimitNOFILE: more idle
    // connections than the agent has descriptors for.
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("pidns"));
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child before exec.
    unsafe {
        command.pre_exec(|| {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 128, 128)
                .map_err(std::io::Error::from)
        });
    }
    command.stderr(std::process::Stdio::piped());
    let (mut child, addr) = watch_with_metrics_in(command, &t, &[]);
    let idle: Vec<std::net::TcpStream> = (0..200)
        .map(|_| std::net::TcpStream::connect(&addr).expect("connect"))
        .collect();
    // Held open and silent, they neither spin the agent ...
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = cpu_ticks(child.id());
    std::thread::sleep(std::time::Duration::from_secs(2));
    let spent = cpu_ticks(child.id()) - before;
    // (A spinning agent burns one core: ~200 ticks in 2 s at 100 Hz.)
    assert!(
        spent < 50,
        "{spent} ticks of CPU in 2 s with idle connections open"
    );
    // ... nor keep a scrape waiting: it is served at once, well before the
    // 5 s header timeout would have closed any of them.
    let started = std::time::Instant::now();
    let text = scrape(&addr);
    assert!(text.contains(ID_B), "{text}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "the scrape waited {:?}",
        started.elapsed()
    );
    drop(idle);
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The polls kept scanning: no descriptor ran out.
    assert!(!stderr.contains("failed"), "{stderr}");
}

#[test]
fn metrics_follow_the_scans() {
    let t = Tree::new();
    t.add(600, P::host("agent", 600).v2(&format!("/docker/{ID_B}")));
    let (mut child, addr) = watch_with_metrics(&t, &[]);
    assert!(
        addr.starts_with("127.0.0.1:"),
        "loopback unless told otherwise: {addr}"
    );
    let text = scrape(&addr);
    assert!(text.contains(&format!("pidns_containers_sharing_host_pidns{{runtime=\"docker\",container_id=\"{ID_B}\",name=\"\",pod_namespace=\"\",pod_name=\"\",allowed=\"false\"}} 1")), "{text}");
    assert!(
        text.contains("pidns_findings_total{event=\"host_pidns\",trigger=\"scan\"} 1"),
        "{text}"
    );
    assert!(text.contains("pidns_probes_attached 0"), "{text}");
    // The container stops: the next poll's scan drops it from the gauge.
    std::fs::remove_dir_all(t.path().join("600")).expect("remove process");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = scrape(&addr);
        if !text.contains(ID_B) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stopped container stayed in the gauge:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let resp = ureq::get(&format!("http://{addr}/nothing")).call();
    assert!(
        matches!(resp, Err(ureq::Error::StatusCode(404))),
        "{resp:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn metrics_address_errors_exit_2() {
    pidns()
        .args(["watch", "--metrics-addr", "not-an-address"])
        .assert()
        .code(2);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let t = Tree::new();
    pidns()
        .args([
            "watch",
            "--mode",
            "procfs",
            "--duration",
            "0.2",
            "--metrics-addr",
            &addr,
            "--proc-root",
            &t.proc_root(),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(addr.as_str()));
}

/// `--enforce` needs the probes: in procfs mode it is refused (exit 2, the
/// reason on stderr, no `ready`), never a silent downgrade to reporting; so
/// is `--enforce-existing` without host-pidns, and an unknown mode.
#[test]
fn enforce_is_refused_where_it_cannot_be_carried_out() {
    let t = Tree::new();
    t.add(600, P::host("agent", 600).v2(&format!("/docker/{ID_B}")));
    let root = t.proc_root();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--mode", "procfs", "--enforce", "setns,host-pidns"],
            "--enforce setns,host-pidns needs the eBPF probes",
        ),
        (&["--mode", "procfs", "--enforce", "host-pidns"], "procfs"),
        (
            &["--enforce", "setns", "--enforce-existing"],
            "--enforce-existing needs --enforce host-pidns",
        ),
        (&["--enforce", "everything"], "invalid value 'everything'"),
    ];
    for (args, why) in cases {
        let out = pidns()
            .args(["watch", "--format", "json", "--duration", "0.3"])
            .args(["--proc-root", &root])
            .args(args)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("\"ready\""),
            "{args:?}"
        );
    }
}
