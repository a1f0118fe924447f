//! `pidns scan` against real containers: its verdict must agree with each
//! runtime's own view of the PID mode, for host-pid, isolated and
//! shared-with-another-container containers.

use std::sync::Mutex;

use pidns_tests::{Container, Layout, Pid, Rt, Spec, pidns::Scan, ready, test_name};
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
        Rt::Docker | Rt::Podman | Rt::PodmanCrun | Rt::Lxc => mode == "host",
        Rt::Nspawn => false,
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
    assert_shares_pidns_with(&scan, &shared, &isolated);
}

#[test]
fn docker_host_isolated_and_shared() {
    three_modes(Rt::Docker, test_name!());
}

#[test]
fn podman_host_isolated_and_shared() {
    three_modes(Rt::Podman, test_name!());
}

#[test]
fn containerd_ctr_host_isolated_and_shared() {
    three_modes(Rt::Ctr, test_name!());
}

#[test]
fn podman_with_crun_host_isolated_and_shared() {
    three_modes(Rt::PodmanCrun, test_name!());
}

/// LXC from its busybox template: isolated, and sharing the host PID
/// namespace through its config (`lxc.namespace.share.pid`), which no
/// runtime API reports.
#[test]
fn lxc_isolated_and_sharing_through_its_config() {
    let Some(()) = ready(test_name!(), &[Rt::Lxc]) else {
        return;
    };
    let _serial = serial();
    let isolated = Container::start(&Spec::new(Rt::Lxc)).expect("isolated LXC container");
    let host =
        Container::start(&Spec::new(Rt::Lxc).pid(Pid::Host)).expect("host-pid LXC container");
    let scan = Scan::run(&[]).expect("scan");
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    for c in [&isolated, &host] {
        check(&scan, c);
        assert_eq!(
            reported(&scan, c)["cgroup"],
            format!("/lxc.payload.{}", c.name)
        );
    }
}

/// systemd-nspawn (`--register=no --keep-unit`, so in its caller's cgroup):
/// found by its root, the machine directory, and isolated.
#[test]
fn nspawn_is_found_by_its_machine_directory_and_isolated() {
    let Some(()) = ready(test_name!(), &[Rt::Nspawn]) else {
        return;
    };
    let _serial = serial();
    let machine = Container::start(&Spec::new(Rt::Nspawn)).expect("nspawn machine");
    let scan = Scan::run(&[]).expect("scan");
    check(&scan, &machine);
    let r = reported(&scan, &machine);
    assert_eq!(r["found_by"], "root", "{r:#}");
    assert_eq!(
        r["rootfs"],
        format!("/var/lib/machines/{}", machine.name),
        "{r:#}"
    );
    assert_eq!(r["outside_cgroup_pids"], serde_json::json!([]), "{r:#}");
}

#[test]
fn runc_kubernetes_crio_lxc_nspawn_layouts() {
    let Some(()) = ready(test_name!(), &[Rt::Runc]) else {
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
    let Some(()) = ready(test_name!(), &[Rt::Docker]) else {
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
    let Some(()) = ready(test_name!(), &[Rt::Docker]) else {
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
    let Some(()) = ready(test_name!(), &[]) else {
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
    let Some(()) = ready(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let _serial = serial();
    // Settled containers are there for every scan and must get their verdict
    // every time; churned ones start and stop during the scans (runc's setup
    // stages, exits) and may only be unknown, never wrong.
    let host = Container::start(&Spec::new(Rt::Docker).pid(Pid::Host)).expect("host-pid container");
    let isolated = Container::start(&Spec::new(Rt::Docker)).expect("isolated container");
    const CHURNED: usize = 8;
    let churned: std::sync::Arc<Mutex<Vec<(String, bool)>>> = Default::default();
    let churn = {
        let churned = churned.clone();
        std::thread::spawn(move || {
            for n in 0..CHURNED {
                let host_pid = n % 2 == 0;
                let spec = Spec::new(Rt::Docker).cmd(&["sleep", "0.3"]);
                let spec = if host_pid { spec.pid(Pid::Host) } else { spec };
                let c = Container::start(&spec).expect("short-lived container");
                churned
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((c.id.clone(), host_pid));
                drop(c); // docker rm -f, maybe while it still runs
            }
        })
    };
    let mut scans = Vec::new();
    while !churn.is_finished() && scans.len() < 5000 {
        let s = Scan::run(&[]).expect("scan must not fail while containers come and go");
        assert_eq!(
            s.code, 1,
            "the host-pid container fails every scan: {}",
            s.stderr
        );
        for (c, verdict) in [(&host, "shares"), (&isolated, "isolated")] {
            assert_eq!(
                reported(&s, c)["verdict"],
                verdict,
                "settled {} in scan {}: {:#}",
                c.name,
                scans.len(),
                reported(&s, c)
            );
        }
        scans.push(s);
    }
    churn.join().expect("churn thread");
    let churned = churned.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(churned.len(), CHURNED);
    let mut seen = 0;
    for s in &scans {
        for (id, host_pid) in &churned {
            let Some(r) = s.container(id) else { continue };
            let right = if *host_pid { "shares" } else { "isolated" };
            assert!(
                r["verdict"] == right || r["verdict"] == "unknown",
                "churned container {id} (host pid: {host_pid}) got a wrong verdict: {r:#}"
            );
            if r["verdict"] == right {
                seen += 1;
            }
        }
    }
    eprintln!(
        "{} scans saw churned containers with a settled verdict {seen} times",
        scans.len()
    );
}

/// A --pid=host container whose every process renamed itself like a runtime
/// process (`runc`, `conmon`) must still fail the scan.
#[test]
fn renamed_processes_do_not_hide_a_host_pid_container() {
    let Some(()) = ready(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let _serial = serial();
    // Two processes that block forever on a FIFO, after renaming themselves;
    // nothing else runs in the container.
    let script = "busybox mkfifo /tmp/f; \
        ( echo -n conmon > /proc/self/comm; read y < /tmp/f ) & \
        echo -n runc > /proc/self/comm; read x < /tmp/f";
    let c = Container::start(
        &Spec::new(Rt::Docker)
            .pid(Pid::Host)
            .cmd(&["sh", "-c", script]),
    )
    .expect("renamed container");
    let init = c.init_pid();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let comms = loop {
        let mut comms: Vec<String> = std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                    .is_ok_and(|cg| cg.contains(&c.id))
            })
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok())
            .map(|s| s.trim_end().to_owned())
            .collect();
        comms.sort();
        if comms == ["conmon", "runc"] || std::time::Instant::now() > deadline {
            break comms;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(
        comms,
        ["conmon", "runc"],
        "the container's processes renamed themselves"
    );
    let scan = Scan::run(&[]).expect("scan");
    assert_eq!(scan.code, 1, "{}", scan.stderr);
    let r = reported(&scan, &c);
    assert_eq!(r["verdict"], "shares", "{r:#}");
    assert_eq!(r["runtime_pids"], serde_json::json!([]), "{r:#}");
    assert_eq!(
        r["pids"].as_array().map(Vec::len),
        Some(2),
        "both renamed processes are container processes: {r:#}"
    );
    assert!(
        r["pids"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == init))
    );
    // The table names the container too.
    let bin = pidns_tests::pidns::bin().expect("pidns binary");
    let out = pidns_tests::sh::output_with(
        &bin.display().to_string(),
        &["scan", "--format", "table"],
        pidns_tests::sh::DEFAULT_TIMEOUT,
    )
    .expect("table scan");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.contains(&c.name) && out.stdout.contains(&c.id[..12]),
        "{}",
        out.stdout
    );
}

/// `docker run --cgroup-parent=...`, cgroupfs driver: the container's cgroup
/// is `<parent>/<64 hex>`, which names no runtime.
#[test]
fn docker_cgroup_parent_containers_are_found() {
    let Some(()) = ready(test_name!(), &[Rt::Docker]) else {
        return;
    };
    let _serial = serial();
    let base = pidns_tests::state::unique_name();
    let deep = CgroupParent::new(&format!("/{base}-cpa/sub"), true).expect("--cgroup-parent=/a/b");
    let flat = CgroupParent::new(&format!("/{base}-cp"), false).expect("--cgroup-parent=/a");
    let scan = Scan::run(&[]).expect("scan");
    for (c, verdict) in [(&deep, "shares"), (&flat, "isolated")] {
        let r = scan.container(&c.id).unwrap_or_else(|| {
            panic!(
                "{} not found; reported {:#}",
                c.name, scan.json["containers"]
            )
        });
        assert_eq!(r["runtime"], "docker", "{r:#}");
        assert_eq!(r["name"], c.name.as_str(), "{r:#}");
        assert_eq!(r["verdict"], verdict, "{r:#}");
        assert_eq!(r["cgroup"], format!("{}/{}", c.parent, c.id), "{r:#}");
        assert_eq!(r["containerd_namespace"], Value::Null, "{r:#}");
    }
}

/// A Docker container started with `--cgroup-parent`, removed (with the
/// cgroup directories Docker leaves behind) on drop.
struct CgroupParent {
    name: String,
    id: String,
    parent: String,
}

impl CgroupParent {
    fn new(parent: &str, host_pid: bool) -> anyhow::Result<CgroupParent> {
        let name = pidns_tests::state::unique_name();
        let mut args = vec![
            "run".to_owned(),
            "-d".into(),
            "--name".into(),
            name.clone(),
            "--network=none".into(),
            "--ulimit".into(),
            "nofile=1024:1024".into(),
            format!("--cgroup-parent={parent}"),
        ];
        if host_pid {
            args.push("--pid=host".into());
        }
        args.extend([
            pidns_tests::state::DOCKER_IMAGE.into(),
            "sleep".into(),
            "3600".into(),
        ]);
        let mut c = CgroupParent {
            name,
            id: String::new(),
            parent: parent.to_owned(),
        };
        c.id = pidns_tests::sh::run("docker", &args)?.trim().to_owned();
        Ok(c)
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        if let Err(e) = pidns_tests::runtimes::remove_named(Rt::Docker, &self.name) {
            eprintln!("cleanup of {}: {e:#}", self.name);
        }
        // Docker removes the container's cgroup but not the parents it made,
        // in every hierarchy; remove them deepest first.
        let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                (post.starts_with("cgroup ") || post.starts_with("cgroup2 "))
                    .then(|| pre.split_whitespace().nth(4).map(str::to_owned))
                    .flatten()
            })
            .collect();
        let mut dirs: Vec<String> = Vec::new();
        let mut p = self.parent.as_str();
        while p.len() > 1 {
            dirs.push(p.to_owned());
            p = p.rsplit_once('/').map_or("", |(head, _)| head);
        }
        for mount in &mounts {
            for d in &dirs {
                let path = format!("{mount}{d}");
                for _ in 0..50 {
                    match std::fs::remove_dir(&path) {
                        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                            std::thread::sleep(std::time::Duration::from_millis(20))
                        }
                        _ => break,
                    }
                }
            }
        }
    }
}

/// Modes the tests above do not reach: runc sharing another runc
/// container's PID namespace, and CRI-O's layout under the cgroupfs driver
/// (`/kubepods/<qos>/pod<uid>/crio-<id>`).
#[test]
fn runc_container_pid_mode_in_the_crio_cgroupfs_layout() {
    let Some(()) = ready(test_name!(), &[Rt::Runc]) else {
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
    assert_shares_pidns_with(&scan, &shared, &isolated);
}

/// `shared` runs in `other`'s PID namespace (`--pid=container:X`), and the
/// scan says so: same namespace inode, `other` named in `shares_pidns_with`.
fn assert_shares_pidns_with(scan: &Scan, shared: &Container, other: &Container) {
    let r = reported(scan, shared);
    assert_eq!(r["pidns_inodes"], reported(scan, other)["pidns_inodes"]);
    assert!(
        r["shares_pidns_with"]
            .as_array()
            .is_some_and(|w| w.iter().any(|x| x == other.id.as_str())),
        "{r:#}"
    );
}
