//! The deployment files say what they must: checked, not just shipped.

use std::{path::PathBuf, process::Command};

use serde_yaml_ng::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The port in `--metrics-addr=ADDR:PORT` (or the next argument).
fn metrics_port(args: &[String]) -> Option<u16> {
    let i = args.iter().position(|a| a.starts_with("--metrics-addr"))?;
    let value = args[i]
        .split_once('=')
        .map(|(_, v)| v.to_owned())
        .or_else(|| args.get(i + 1).cloned())?;
    value.rsplit(':').next()?.parse().ok()
}

#[test]
fn daemonset() {
    let doc: Value =
        serde_yaml_ng::from_str(&read("deploy/kubernetes/daemonset.yaml")).expect("valid YAML");
    assert_eq!(doc["apiVersion"], Value::from("apps/v1"));
    assert_eq!(doc["kind"], Value::from("DaemonSet"));
    let spec = &doc["spec"]["template"]["spec"];
    // Measured: the host's /proc is all the agent needs of the host's PIDs,
    // so it does not share the host PID namespace itself (tests/tests/image.rs).
    assert!(
        matches!(spec["hostPID"], Value::Null | Value::Bool(false)),
        "the agent does not run in the host PID namespace: {:?}",
        spec["hostPID"]
    );
    assert!(spec["hostNetwork"].is_null() && spec["hostIPC"].is_null());
    let c = &spec["containers"][0];
    assert_eq!(
        c["image"],
        Value::from(format!("pidns:{}", env!("CARGO_PKG_VERSION")))
    );
    let args: Vec<String> = c["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string").to_owned())
        .collect();
    assert_eq!(args[0], "watch");
    assert!(
        args.contains(&"--proc-root=/host/proc".to_owned()),
        "{args:?}"
    );
    // Not in the host PID namespace, its own pod is no finding: an --allow
    // for it would match nothing and warn on every scan.
    assert!(!args.iter().any(|a| a.starts_with("--allow")), "{args:?}");

    // Least privilege.
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], Value::from(false));
    assert_eq!(sc["allowPrivilegeEscalation"], Value::from(false));
    assert_eq!(sc["readOnlyRootFilesystem"], Value::from(true));
    assert_eq!(
        sc["capabilities"]["drop"],
        serde_yaml_ng::from_str::<Value>("[ALL]").expect("yaml")
    );
    let mut add: Vec<&str> = sc["capabilities"]["add"]
        .as_sequence()
        .expect("add")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    add.sort_unstable();
    assert_eq!(add, ["BPF", "PERFMON", "SYS_PTRACE"]);
    // The runtime's own seccomp profile, which lets bpf and perf_event_open
    // through for CAP_BPF and CAP_PERFMON (containerd 1.6.9+, CRI-O 1.31+).
    assert_eq!(sc["seccompProfile"]["type"], Value::from("RuntimeDefault"));
    assert!(
        c["resources"]["limits"]["memory"].is_string()
            && c["resources"]["limits"]["cpu"].is_string()
    );

    // Host /proc, read-only, where --proc-root points.
    let mounts = c["volumeMounts"].as_sequence().expect("volumeMounts");
    let proc = mounts
        .iter()
        .find(|m| m["mountPath"] == "/host/proc")
        .expect("/host/proc mount");
    assert_eq!(proc["readOnly"], Value::from(true));
    let vol = spec["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == proc["name"])
        .expect("proc volume");
    assert_eq!(vol["hostPath"]["path"], Value::from("/proc"));
    assert!(
        mounts.iter().all(|m| m["readOnly"] == true),
        "every host mount is read-only"
    );

    // Prometheus scrapes the port the agent listens on.
    let ann = &doc["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"], Value::from("true"));
    let port = metrics_port(&args).expect("--metrics-addr");
    assert_eq!(ann["prometheus.io/port"], Value::from(port.to_string()));
    assert_eq!(c["ports"][0]["containerPort"], Value::from(u64::from(port)));
}

#[test]
fn dockerfile_builds_from_scratch() {
    let df = read("deploy/Dockerfile");
    let lines: Vec<&str> = df
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.first(),
        Some(&"FROM scratch"),
        "offline: no base image from a registry"
    );
    assert!(lines.contains(&"ENTRYPOINT [\"/pidns\"]"));
    let cmd = lines.iter().find(|l| l.starts_with("CMD ")).expect("CMD");
    let args: Vec<String> = serde_json::from_str(&cmd[4..]).expect("CMD is a JSON array");
    assert!(
        args.windows(2).any(|w| w == ["--proc-root", "/host/proc"]),
        "{args:?}"
    );
    assert_eq!(metrics_port(&args), Some(9606));
}

#[test]
fn systemd_unit() {
    let unit = read("deploy/pidns.service");
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing"))
    };
    assert!(value("ExecStart").contains("pidns watch"));
    let mut caps: Vec<&str> = value("CapabilityBoundingSet").split_whitespace().collect();
    caps.sort_unstable();
    assert_eq!(caps, ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE"]);
    for (key, expected) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        // pidns reads no home directory (names come from system-wide state).
        ("ProtectHome", "yes"),
        ("PrivateDevices", "yes"),
        ("PrivateMounts", "yes"),
        ("ProtectKernelModules", "yes"),
        ("SystemCallArchitectures", "native"),
        // Metrics on loopback, and no other traffic.
        ("IPAddressDeny", "any"),
        ("IPAddressAllow", "localhost"),
    ] {
        assert_eq!(value(key), expected, "{key}");
    }
    assert!(
        value("ExecStart").contains("127.0.0.1:"),
        "metrics stay on loopback"
    );
    systemd_accepts(&unit, "the unit");
}

/// systemd's own parser, where there is one, accepts `unit` with its
/// ExecStart pointed at a real binary.
#[track_caller]
fn systemd_accepts(unit: &str, what: &str) {
    let Ok(analyze) = which_systemd_analyze() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let copy = dir.path().join("pidns.service");
    let bin = env!("CARGO_BIN_EXE_pidns");
    std::fs::write(&copy, unit.replace("/usr/local/bin/pidns", bin)).expect("write");
    let out = Command::new(analyze)
        .args(["verify", copy.to_str().expect("utf8")])
        .output()
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify of {what}: {stderr}"
    );
}

fn which_systemd_analyze() -> Result<PathBuf, ()> {
    ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or(())
}

/// `text` with the commented-out line `commented` (after its indentation
/// and `#`) put in place of the line `active` (whole, trimmed), or with
/// `commented` just uncommented when `active` is `None`.
fn enable(text: &str, commented: &str, active: Option<&str>) -> String {
    let mut found = false;
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.trim_start().strip_prefix('#')
            && rest.trim_start() == commented
        {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push(format!("{indent}{}", rest.trim_start()));
            found = true;
        } else if active.is_some_and(|a| line.trim() == a) {
            continue;
        } else {
            out.push(line.to_owned());
        }
    }
    assert!(found, "no commented line `# {commented}`");
    out.join("\n") + "\n"
}

/// The enforcing variant the unit documents, commented out: the same
/// command with `--enforce setns,host-pidns`, CAP_KILL kept, and a unit
/// systemd accepts once both lines replace their defaults.
#[test]
fn systemd_unit_documents_an_enforcing_variant() {
    let unit = read("deploy/pidns.service");
    let active = |u: &str, key: &str| -> Vec<String> {
        u.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
            .collect()
    };
    let exec = active(&unit, "ExecStart");
    assert_eq!(exec.len(), 1, "one active ExecStart: {exec:?}");
    assert!(!exec[0].contains("--enforce"), "reporting only by default");
    let variant = format!("ExecStart={} --enforce setns,host-pidns", exec[0]);
    let caps = active(&unit, "CapabilityBoundingSet");
    let caps_variant = format!("CapabilityBoundingSet={} CAP_KILL", caps[0]);
    let enforcing = enable(
        &enable(&unit, &variant, Some(&format!("ExecStart={}", exec[0]))),
        &caps_variant,
        Some(&format!("CapabilityBoundingSet={}", caps[0])),
    );
    assert_eq!(
        active(&enforcing, "ExecStart"),
        [variant.trim_start_matches("ExecStart=")]
    );
    assert!(
        unit.contains("deploy/prometheus/pidns-rules.yaml"),
        "how to load the rules"
    );
    systemd_accepts(&enforcing, "the enforcing variant");
}

/// The DaemonSet's enforcing variant, commented out: uncommented, its args
/// end in `--enforce setns,host-pidns` and its capabilities add KILL.
#[test]
fn daemonset_documents_an_enforcing_variant() {
    let text = read("deploy/kubernetes/daemonset.yaml");
    assert!(
        text.contains("deploy/prometheus/pidns-rules.yaml"),
        "how to load the rules"
    );
    let enforcing = enable(
        &enable(
            &enable(&text, "- --enforce", None),
            "- setns,host-pidns",
            None,
        ),
        r#"add: ["BPF", "PERFMON", "SYS_PTRACE", "KILL"]"#,
        Some(r#"add: ["BPF", "PERFMON", "SYS_PTRACE"]"#),
    );
    let doc: Value = serde_yaml_ng::from_str(&enforcing).expect("valid YAML");
    let c = &doc["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[args.len() - 2..], ["--enforce", "setns,host-pidns"]);
    let mut add: Vec<&str> = c["securityContext"]["capabilities"]["add"]
        .as_sequence()
        .expect("add")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    add.sort_unstable();
    assert_eq!(add, ["BPF", "KILL", "PERFMON", "SYS_PTRACE"]);
}
