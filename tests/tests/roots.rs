//! `pidns scan` finds container processes by the root they run on, whatever
//! their cgroup, as an attacker inside a container or a less common runtime
//! leaves them; a cgroup's name alone is a claim; and host processes in a
//! mount namespace or a chroot of their own, like isolated containers of
//! every runtime, are never flagged.

use std::{sync::Mutex, time::Duration};

use pidns_tests::{
    Container, Layout, Pid, Rt, Spec,
    homemade::{Deep, Homemade, HostProcess, How, Scratch},
    pidns::{Scan, bin},
    ready, runtimes, sh, skip, state, test_name,
};
use serde_json::Value;

/// Scans see the whole host; one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Root, and the test rootfs `pidns-harness up` builds.
fn ready_with_rootfs(test: &str) -> Option<()> {
    ready(test, &[])?;
    if !runtimes::rootfs().join("bin/busybox").is_file() {
        skip::skip(
            test,
            "no test rootfs: `cargo xtask test` builds it (pidns-harness up)",
        );
        return None;
    }
    Some(())
}

/// The container whose processes include `pid`.
fn holding(scan: &Scan, pid: u32) -> &Value {
    scan.containers()
        .iter()
        .find(|c| {
            c["pids"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p == pid))
        })
        .unwrap_or_else(|| {
            panic!(
                "no container holds pid {pid}; pidns reported:\n{:#}\n{}",
                scan.json["containers"], scan.stderr
            )
        })
}

fn holds(scan: &Scan, pid: u32) -> bool {
    scan.containers().iter().any(|c| {
        c["pids"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == pid))
    })
}

/// Whether anything else on the machine fails the scan.
fn other_violations(scan: &Scan, except: &str) -> bool {
    scan.containers().iter().any(|c| {
        c["id"] != except
            && (c["verdict"] == "shares"
                || c["outside_cgroup_pids"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty()))
    })
}

/// `pidns scan --format <format>`'s stdout and exit code.
fn scan_as(format: &str) -> (String, Option<i32>) {
    let bin = bin().expect("pidns binary");
    let out = sh::output_with(
        &bin.display().to_string(),
        &["scan", "--format", format],
        sh::DEFAULT_TIMEOUT,
    )
    .expect("scan");
    (out.stdout, out.status.code())
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The attacker of the issue: a `--pid=host` container with the host's
/// cgroup namespace, cgroupfs mounted and CAP_SYS_ADMIN writes its own pid
/// into the root `cgroup.procs` of every hierarchy (v1 and unified) and
/// keeps running. It is in no container's cgroup any more; its root is
/// still its overlay, which Docker's layer records name.
#[test]
fn a_container_that_moves_itself_to_the_root_cgroups_is_still_found() {
    let Some(()) = ready(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let _serial = serial();
    let script = "for f in /sys/fs/cgroup/*/cgroup.procs; do echo $$ > \"$f\" || exit 1; done; exec sleep 3600";
    let c = Container::start(
        &Spec::new(Rt::Docker)
            .pid(Pid::Host)
            .arg("--cgroupns=host")
            .arg("-v")
            .arg("/sys/fs/cgroup:/sys/fs/cgroup")
            .cap("SYS_ADMIN")
            .cmd(&["sh", "-c", script]),
    )
    .expect("cgroup-leaving container");
    let pid = c.init_pid();
    wait_until("the container left its cgroups", || {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .is_ok_and(|cg| cg.lines().all(|l| l.ends_with(":/")))
            && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "sleep")
    });
    let scan = Scan::run(&[]).expect("scan");
    assert_eq!(scan.code, 1, "{:#}", scan.json["summary"]);
    let r = holding(&scan, pid);
    assert_eq!(
        (r["runtime"].as_str(), r["id"].as_str()),
        (Some("docker"), Some(c.id.as_str())),
        "{r:#}"
    );
    assert_eq!(r["found_by"], "root", "{r:#}");
    assert_eq!(r["verdict"], "shares", "{r:#}");
    assert_eq!(r["outside_cgroup_pids"], serde_json::json!([pid]), "{r:#}");
    let ev = &r["host_pidns_processes"][0];
    assert_eq!(
        (ev["outside_cgroup"].as_bool(), ev["cgroup"].as_str()),
        (Some(true), Some("/")),
        "{r:#}"
    );
    assert!(scan.json["summary"]["outside_cgroup"].as_u64() >= Some(1));
    let (table, code) = scan_as("table");
    assert_eq!(code, Some(1));
    assert!(
        table.contains("outside its container's cgroup") && table.contains(&c.id[..12]),
        "{table}"
    );
    let (cis, _) = scan_as("cis");
    assert!(
        cis.contains("[WARN]      * Outside its container's cgroup:") && cis.contains(&c.id[..12]),
        "{cis}"
    );
    let (sarif, _) = scan_as("sarif");
    assert!(
        sarif.contains("PIDNS-OUTSIDE-CGROUP") && sarif.contains(&c.id),
        "{sarif}"
    );
}

/// `runc run` with no `cgroupsPath`: runc puts the container at `/<id>`
/// below its own cgroup, which names no runtime. Its root and runc's
/// `state.json` say what it is.
#[test]
fn runc_without_a_cgroups_path_is_found_by_its_root_and_state() {
    let Some(()) = ready(test_name!(), &[Rt::Runc]) else {
        return;
    };
    let _serial = serial();
    let spec = Spec::new(Rt::Runc).layout(Layout::NoCgroupsPath);
    let host = Container::start(&spec.clone().pid(Pid::Host)).expect("host-pid runc container");
    let isolated = Container::start(&spec).expect("isolated runc container");
    let scan = Scan::run(&[]).expect("scan");
    assert_eq!(scan.code, 1, "{:#}", scan.json["summary"]);
    for (c, verdict) in [(&host, "shares"), (&isolated, "isolated")] {
        let r = holding(&scan, c.init_pid());
        assert_eq!(
            (
                r["runtime"].as_str(),
                r["id"].as_str(),
                r["verdict"].as_str()
            ),
            (Some("runc"), Some(c.name.as_str()), Some(verdict)),
            "{r:#}"
        );
        assert_eq!(r["found_by"], "root", "{r:#}");
        assert_eq!(
            r["cgroup"],
            format!("/{}", c.name),
            "runc's recorded cgroup: {r:#}"
        );
        assert_eq!(
            r["outside_cgroup_pids"],
            serde_json::json!([]),
            "where runc put it: {r:#}"
        );
        assert_eq!(
            r["rootfs"],
            runtimes::rootfs().display().to_string(),
            "{r:#}"
        );
    }
}

/// A home-made container (a private mount namespace, a bind-mounted root,
/// `pivot_root`) in the host PID namespace, in a cgroup nobody named.
#[test]
fn a_home_made_container_in_a_cgroup_nobody_named_is_found() {
    let Some(()) = ready_with_rootfs(test_name!()) else {
        return;
    };
    let _serial = serial();
    let cgroup = Scratch::new(&format!("{}-home", state::unique_name())).expect("cgroup");
    let home = Homemade::start().expect("home-made container");
    cgroup.enter(home.pid).expect("into its cgroup");
    let scan = Scan::run(&[]).expect("scan");
    assert_eq!(scan.code, 1, "{:#}", scan.json["summary"]);
    let r = holding(&scan, home.pid);
    assert_eq!(r["runtime"], "unknown", "{r:#}");
    assert_eq!(r["found_by"], "root", "{r:#}");
    assert_eq!(r["verdict"], "shares", "{r:#}");
    assert_eq!(r["cgroup"], format!("/{}", cgroup.rel), "{r:#}");
    let rel = home.rootfs.strip_prefix("/").expect("absolute");
    assert!(
        r["id"]
            .as_str()
            .is_some_and(|id| id.ends_with(&*rel.to_string_lossy())),
        "named after its root mount's source and directory: {r:#}"
    );
    // An unknown container's id is whatever its mounter chose: no --allow.
    let id = r["id"].as_str().expect("id").to_owned();
    let allowed = Scan::run(&["--allow", &id]).expect("scan");
    assert_eq!(holding(&allowed, home.pid)["verdict"], "shares");
}

/// A process in a cgroup whose path is longer than PATH_MAX: the kernel
/// cannot print its `/proc/<pid>/cgroup` whole (Linux 6.x cuts the path at
/// 4095 bytes, older kernels fail with ENAMETOOLONG). It is judged by its
/// namespaces and root, and counted in every format.
#[test]
fn a_cgroup_path_the_kernel_cannot_print_hides_nothing() {
    let Some(()) = ready_with_rootfs(test_name!()) else {
        return;
    };
    let _serial = serial();
    let deep = Deep::new(&format!("{}-deep", state::unique_name())).expect("deep cgroup");
    let home = Homemade::start().expect("home-made container");
    deep.enter(home.pid).expect("into the deep cgroup");
    match std::fs::read_to_string(format!("/proc/{}/cgroup", home.pid)) {
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG), "{e}"),
        Ok(text) => assert!(
            text.lines()
                .any(|l| l.starts_with("0::") && l.len() == 3 + 4095),
            "the unified path, cut at PATH_MAX: {}",
            text.lines()
                .map(|l| l.len().to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
    let scan = Scan::run(&[]).expect("scan");
    assert_eq!(scan.code, 1, "{:#}", scan.json["summary"]);
    let r = holding(&scan, home.pid);
    assert_eq!(
        (r["runtime"].as_str(), r["verdict"].as_str()),
        (Some("unknown"), Some("shares")),
        "{r:#}"
    );
    assert!(
        scan.json["summary"]["cgroup_unreadable"].as_u64() >= Some(1),
        "{:#}",
        scan.json["summary"]
    );
    let (table, _) = scan_as("table");
    assert!(table.contains("unreadable cgroup file"), "{table}");
    let (cis, _) = scan_as("cis");
    assert!(cis.contains("unreadable cgroup file"), "{cis}");
    let (sarif, _) = scan_as("sarif");
    let doc: Value = serde_json::from_str(&sarif).expect("sarif");
    let inv = &doc["runs"][0]["invocations"][0];
    assert!(
        inv["properties"]["summary"]["cgroup_unreadable"].as_u64() >= Some(1),
        "{inv:#}"
    );
    assert!(
        inv["toolExecutionNotifications"]
            .to_string()
            .contains("PATH_MAX"),
        "{inv:#}"
    );
}

/// What `systemd-run --user --scope --unit=docker-<id>` gives any local
/// user on a systemd host, as the kernel sees it: a plain host process (uid
/// 1000) in `…/user.slice/…/docker-<64 hex>.scope`. A claim, not a
/// container: reported as unverified with its owner, and not failing.
#[test]
fn a_cgroup_named_like_a_container_is_a_claim_not_a_container() {
    let Some(()) = ready_with_rootfs(test_name!()) else {
        return;
    };
    let _serial = serial();
    let id = state::random_hex(32);
    let cgroup = Scratch::claimed_docker_scope(&id).expect("claimed cgroup");
    let sleeper = HostProcess::start(How::Plain, 1000).expect("uid 1000 sleep");
    cgroup.enter(sleeper.pid).expect("into the claimed cgroup");
    let scan = Scan::run(&[]).expect("scan");
    let r = scan
        .container(&id)
        .unwrap_or_else(|| panic!("the claim is listed: {:#}", scan.json));
    assert_eq!(r["verdict"], "unverified", "{r:#}");
    assert_eq!(r["owner_uid"], 1000, "{r:#}");
    assert_eq!(r["shares_host_pidns"], Value::Null, "{r:#}");
    assert!(
        r["unverified_reason"]
            .as_str()
            .is_some_and(|w| w.contains("keeps no record")),
        "{r:#}"
    );
    if !other_violations(&scan, &id) {
        assert_eq!(
            scan.code, 0,
            "a claim does not fail the scan: {:#}",
            scan.json["summary"]
        );
    }
    let (table, _) = scan_as("table");
    assert!(
        table.contains("unverified") && table.contains("owner uid 1000"),
        "{table}"
    );
    let (cis, _) = scan_as("cis");
    assert!(
        cis.contains("[INFO]      * Unverified claim, not a container:")
            && cis.contains("owner uid 1000"),
        "{cis}"
    );
    let (sarif, _) = scan_as("sarif");
    let doc: Value = serde_json::from_str(&sarif).expect("sarif");
    let result = doc["runs"][0]["results"]
        .as_array()
        .and_then(|rs| {
            rs.iter()
                .find(|x| x["locations"][0]["logicalLocations"][0]["name"] == id.as_str())
        })
        .unwrap_or_else(|| panic!("no result for the claim: {doc:#}"));
    assert_eq!(result["level"], "note", "{result:#}");
}

/// A real container's process that setns-ed into the host's mount
/// namespace runs on the host's root there, yet Docker keeps its record and
/// its shim is its parent: still a finding.
#[test]
fn a_real_container_process_in_the_hosts_mount_namespace_is_still_a_finding() {
    let Some(()) = ready(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let _serial = serial();
    let me = std::process::id().to_string();
    let c = Container::start(
        &Spec::new(Rt::Docker)
            .pid(Pid::Host)
            .cap("SYS_ADMIN")
            .cap("SYS_PTRACE")
            .cmd(&["nsenter", "-t", &me, "-m", "sleep", "3600"]),
    )
    .expect("escaping container");
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt").expect("own mnt");
    let pid = c.init_pid();
    wait_until("it entered the host's mount namespace", || {
        std::fs::read_link(format!("/proc/{pid}/ns/mnt")).is_ok_and(|l| l == host_mnt)
            && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "sleep")
    });
    let scan = Scan::run(&[]).expect("scan");
    assert_eq!(scan.code, 1);
    let r = scan.container(&c.id).expect("reported");
    assert_eq!(
        (r["verdict"].as_str(), r["found_by"].as_str()),
        (Some("shares"), Some("cgroup")),
        "{r:#}"
    );
}

/// Controls: host processes in a mount namespace of their own (`unshare
/// -m`) or chrooted in the host's (sshd's privilege separation), and an
/// isolated container of every runtime. None is flagged.
#[test]
fn host_processes_and_isolated_containers_of_every_runtime_are_not_flagged() {
    let all = [
        Rt::Docker,
        Rt::Podman,
        Rt::PodmanCrun,
        Rt::Ctr,
        Rt::Runc,
        Rt::Lxc,
        Rt::Nspawn,
    ];
    let Some(()) = ready(test_name!(), &all) else {
        return;
    };
    let _serial = serial();
    let cgroup = Scratch::new(&format!("{}-controls", state::unique_name())).expect("cgroup");
    let unshared = HostProcess::start(How::OwnMountNamespace, 0).expect("unshare -m");
    let chrooted = HostProcess::start(How::Chroot, 0).expect("chroot");
    for p in [&unshared, &chrooted] {
        cgroup.enter(p.pid).expect("into the cgroup");
    }
    let mut containers = Vec::new();
    for rt in all {
        containers.push(Container::start(&Spec::new(rt)).expect("isolated container"));
    }
    containers.push(
        Container::start(&Spec::new(Rt::Runc).layout(Layout::NoCgroupsPath))
            .expect("runc, no cgroupsPath"),
    );
    let scan = Scan::run(&[]).expect("scan");
    for p in [&unshared, &chrooted] {
        assert!(
            !holds(&scan, p.pid),
            "host process {} is no container: {:#}",
            p.pid,
            scan.json["containers"]
        );
    }
    for c in &containers {
        let r = holding(&scan, c.init_pid());
        assert_eq!(r["verdict"], "isolated", "{:?} {}: {r:#}", c.rt, c.name);
        assert_eq!(r["outside_cgroup_pids"], serde_json::json!([]), "{r:#}");
    }
    // Kernel threads may run on a root of their own (kdevtmpfs on devtmpfs,
    // in a mount namespace of its own): never a container's.
    for c in scan.containers() {
        for pid in c["pids"].as_array().into_iter().flatten() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let flags: u64 = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().nth(6))
                .and_then(|f| f.parse().ok())
                .unwrap_or(0);
            assert_eq!(flags & 0x0020_0000, 0, "kernel thread {pid} in {c:#}");
        }
    }
}
