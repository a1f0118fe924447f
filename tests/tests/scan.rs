//! `pidns scan` against real containers: its verdict must agree with each
//! runtime's own view of the PID mode, for host-pid, isolated and
//! shared-with-another-container containers.

use std::sync::Mutex;

use pidns_tests::{Container, Layout, Pid, Rt, Spec, pidns::Scan, ready};
use serde_json::Value;

/// Scans see the whole host; these tests run one at a time so that exit
/// codes and counts are not disturbed by a neighbour's containers.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn reported<'a>(scan: &'a Scan, c: &Container) -> &'a Value {
    scan.container(&c.id).unwrap_or_else(|| {
        panic!(
            "pidns did not report {:?} {} (id {}); it reported:\n{:#}",
            c.rt, c.name, c.id, scan.json["containers"]
        )
    })
}

/// The runtime's own answer to "does it share the host PID namespace?".
fn runtime_says_host(c: &Container) -> bool {
    let mode = c.runtime_pid_mode().expect("runtime view of the pid mode");
    match c.rt {
        Rt::Docker | Rt::Podman => mode == "host",
        // What containerd and runc were asked: no pid namespace, or one joined
        // through a path to a process in the host's.
        Rt::Ctr | Rt::Runc => {
            mode == "host" || mode == format!("path:/proc/{}/ns/pid", std::process::id())
        }
    }
}

fn check(scan: &Scan, c: &Container) {
    let r = reported(scan, c);
    let runtime_host = runtime_says_host(c);
    assert_eq!(r["runtime"], c.runtime, "{:?} {}", c.rt, c.name);
    assert_eq!(
        r["shares_host_pidns"],
        Value::Bool(runtime_host),
        "{:?} {} asked {} (runtime says {:?}): pidns reported {r:#}",
        c.rt,
        c.name,
        c.asked_pid_mode,
        c.runtime_pid_mode().ok()
    );
    assert!(
        r["pids"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == c.init_pid())),
        "init pid missing: {r:#}"
    );
    if runtime_host {
        assert_eq!(r["verdict"], "shares");
        let ev = &r["host_pidns_processes"][0];
        assert_eq!(
            ev["pidns_inode"], scan.json["host_pidns"]["inode"],
            "evidence: {r:#}"
        );
    } else {
        assert_eq!(r["verdict"], "isolated");
        assert!(
            r["host_pidns_processes"]
                .as_array()
                .is_some_and(Vec::is_empty)
        );
    }
    if let Some(uid) = &c.pod_uid {
        assert_eq!(r["pod"]["uid"], uid.as_str(), "pod uid: {r:#}");
    }
}

/// Isolated, host and shared-with-the-isolated-one, for one runtime.
fn three_modes(rt: Rt, test: &str) {
    let Some(()) = ready(test, &[rt]) else { return };
    let _serial = serial();
    let isolated = Container::start(&Spec::new(rt)).expect("isolated container");
    let host = Container::start(&Spec::new(rt).pid(Pid::Host)).expect("host-pid container");
    let shared = Container::start(&Spec::new(rt).pid(Pid::Container(&isolated)))
        .expect("container-pid container");
    let scan = Scan::run(&[]).expect("scan");
    assert_eq!(
        scan.code, 1,
        "a host-pid container must fail the scan: {}",
        scan.stderr
    );
    for c in [&isolated, &host, &shared] {
        check(&scan, c);
    }
    // --pid=container:X shares X's namespace, not the host's, and says so.
    let r = reported(&scan, &shared);
    assert_eq!(
        r["pidns_inodes"],
        reported(&scan, &isolated)["pidns_inodes"]
    );
    assert!(
        r["shares_pidns_with"]
            .as_array()
            .is_some_and(|w| w.iter().any(|x| x == isolated.id.as_str())),
        "{r:#}"
    );
}

#[test]
fn docker_host_isolated_and_shared() {
    three_modes(Rt::Docker, "docker_host_isolated_and_shared");
}

#[test]
fn podman_host_isolated_and_shared() {
    three_modes(Rt::Podman, "podman_host_isolated_and_shared");
}

#[test]
fn containerd_ctr_host_isolated_and_shared() {
    three_modes(Rt::Ctr, "containerd_ctr_host_isolated_and_shared");
}

#[test]
fn runc_kubernetes_crio_lxc_nspawn_layouts() {
    let Some(()) = ready("runc_kubernetes_crio_lxc_nspawn_layouts", &[Rt::Runc]) else {
        return;
    };
    let _serial = serial();
    let mut all = Vec::new();
    for layout in Layout::ALL {
        all.push(
            Container::start(&Spec::new(Rt::Runc).layout(layout)).expect("isolated runc container"),
        );
        // hostPID: true, in every layout
        all.push(
            Container::start(&Spec::new(Rt::Runc).layout(layout).pid(Pid::Host))
                .expect("host-pid runc container"),
        );
    }
    let scan = Scan::run(&[]).expect("scan");
    for c in &all {
        check(&scan, c);
    }
}

#[test]
fn docker_names_and_exec_evidence() {
    let Some(()) = ready("docker_names_and_exec_evidence", &[Rt::Docker]) else {
        return;
    };
    let _serial = serial();
    let host = Container::start(&Spec::new(Rt::Docker).pid(Pid::Host)).expect("host-pid container");
    host.exec_detached(&["sleep", "3601"]).expect("docker exec");
    let scan = Scan::run(&[]).expect("scan");
    let r = reported(&scan, &host);
    // names come from Docker's on-disk state, never its API
    assert_eq!(r["name"], host.name.as_str());
    let evidence = r["host_pidns_processes"].as_array().expect("evidence");
    assert!(
        evidence.len() >= 2,
        "the exec'd process is evidence too: {r:#}"
    );
    assert!(evidence.iter().all(|p| p["method"] == "ns_link"), "{r:#}");
}

#[test]
fn allow_list_turns_a_failure_into_a_pass() {
    let Some(()) = ready("allow_list_turns_a_failure_into_a_pass", &[Rt::Docker]) else {
        return;
    };
    let _serial = serial();
    let host = Container::start(&Spec::new(Rt::Docker).pid(Pid::Host)).expect("host-pid container");
    let first = Scan::run(&[]).expect("scan");
    assert_eq!(first.code, 1);
    // allow ours by name and anything else on the machine by id
    let mut args = vec!["--allow".to_owned(), host.name.clone()];
    for c in first
        .containers()
        .iter()
        .filter(|c| c["verdict"] == "shares" && c["id"] != host.id.as_str())
    {
        args.push("--allow".into());
        args.push(c["id"].as_str().unwrap_or_default().to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let second = Scan::run(&args).expect("scan");
    assert_eq!(second.code, 0, "{:#}", second.json["summary"]);
    assert_eq!(reported(&second, &host)["verdict"], "allowed");
    assert_eq!(reported(&second, &host)["shares_host_pidns"], true);
}

#[test]
fn host_namespace_method_matches_what_this_kernel_allows() {
    let Some(()) = ready("host_namespace_method_matches_what_this_kernel_allows", &[]) else {
        return;
    };
    let scan = Scan::run(&[]).expect("scan");
    let host = &scan.json["host_pidns"];
    match std::fs::read_link("/proc/1/ns/pid") {
        Ok(link) => {
            assert_eq!(host["method"], "ns_link");
            assert_eq!(
                format!("pid:[{}]", host["inode"]),
                link.display().to_string()
            );
        }
        Err(e) => {
            assert_eq!(
                e.raw_os_error(),
                Some(libc::EACCES),
                "unexpected error reading /proc/1/ns/pid: {e}"
            );
            assert_eq!(
                host["method"], "nspid",
                "PID 1's link is unreadable, so NSpid must decide: {host:#}"
            );
            let ours = std::fs::read_link("/proc/self/ns/pid").expect("own ns link");
            assert_eq!(
                format!("pid:[{}]", host["inode"]),
                ours.display().to_string()
            );
        }
    }
}

#[test]
fn scanning_while_containers_come_and_go() {
    let Some(()) = ready("scanning_while_containers_come_and_go", &[Rt::Docker]) else {
        return;
    };
    let _serial = serial();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                Container::run_to_completion(&Spec::new(Rt::Docker).pid(Pid::Host).cmd(&["true"]))
                    .expect("short-lived container");
                n += 1;
            }
            n
        })
    };
    let mut scans = 0;
    while scans < 30 || !churn.is_finished() && scans < 200 {
        let s = Scan::run(&[]).expect("scan must not fail while containers come and go");
        assert!(matches!(s.code, 0 | 1), "exit {}: {}", s.code, s.stderr);
        scans += 1;
        if scans >= 30 {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let started = churn.join().expect("churn thread");
    assert!(started > 0);
}

/// Modes the tests above do not reach: runc sharing another runc
/// container's PID namespace, and CRI-O's layout under the cgroupfs driver
/// (`/kubepods/<qos>/pod<uid>/crio-<id>`).
#[test]
fn runc_container_pid_mode_in_the_crio_cgroupfs_layout() {
    let test = "runc_container_pid_mode_in_the_crio_cgroupfs_layout";
    let Some(()) = ready(test, &[Rt::Runc]) else {
        return;
    };
    let _serial = serial();
    let spec = Spec::new(Rt::Runc).layout(Layout::CrioCgroupfs);
    let isolated = Container::start(&spec).expect("isolated runc container");
    let host = Container::start(&spec.clone().pid(Pid::Host)).expect("host-pid runc container");
    let shared = Container::start(&spec.clone().pid(Pid::Container(&isolated)))
        .expect("runc container in the isolated one's pid namespace");
    let scan = Scan::run(&[]).expect("scan");
    assert_eq!(scan.code, 1, "a host-pid container must fail the scan");
    for c in [&isolated, &host, &shared] {
        assert_eq!(c.runtime, "cri-o");
        check(&scan, c);
    }
    let r = reported(&scan, &shared);
    assert_eq!(
        r["pidns_inodes"],
        reported(&scan, &isolated)["pidns_inodes"]
    );
    assert!(
        r["shares_pidns_with"]
            .as_array()
            .is_some_and(|w| w.iter().any(|x| x == isolated.id.as_str())),
        "{r:#}"
    );
}
