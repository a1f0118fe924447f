//! `pidns scan` on fixture proc trees: every layout, both cgroup versions,
//! the NSpid fallback, odd trees, and the verdict rules.

mod support;

use predicates::prelude::*;
use support::*;

const ISO_NS: u64 = 4026532180;
const OTHER_NS: u64 = 4026532400;

#[test]
fn docker_cgroupfs_v1_host_and_isolated() {
    let t = Tree::new();
    t.add(500, P::host("containerd-shim", 500));
    t.add(
        501,
        P::nested("sleep", 501, ISO_NS, 1)
            .v1(&format!("/docker/{ID_A}"))
            .ppid(500),
    );
    t.add(
        600,
        P::host("sleep", 600)
            .v1(&format!("/docker/{ID_B}"))
            .ppid(500),
    );
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1);
    assert_eq!(json["host_pidns"]["inode"], HOST_NS);
    assert_eq!(json["host_pidns"]["method"], "ns_link");
    let a = container(&json, ID_A);
    assert_eq!(
        (a["runtime"].as_str(), a["shares_host_pidns"].as_bool()),
        (Some("docker"), Some(false))
    );
    assert_eq!(a["pidns_inodes"][0], ISO_NS);
    let b = container(&json, ID_B);
    assert_eq!(
        (b["verdict"].as_str(), b["shares_host_pidns"].as_bool()),
        (Some("shares"), Some(true))
    );
    assert_eq!(b["cgroup"], format!("/docker/{ID_B}"));
    assert_eq!(b["host_pidns_processes"][0]["pid"], 600);
    assert_eq!(b["host_pidns_processes"][0]["comm"], "sleep");
    assert_eq!(b["host_pidns_processes"][0]["method"], "ns_link");
    assert_eq!(json["summary"]["sharing"], 1);
    assert_eq!(json["summary"]["isolated"], 1);
}

#[test]
fn docker_systemd_v2_isolated_passes() {
    let t = Tree::new();
    t.add(
        700,
        P::nested("nginx", 700, ISO_NS, 1).v2(&format!("/system.slice/docker-{ID_A}.scope")),
    );
    t.add(
        701,
        P::nested("nginx", 701, ISO_NS, 7).v2(&format!("/system.slice/docker-{ID_A}.scope")),
    );
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        container(&json, ID_A)["pids"],
        serde_json::json!([700, 701])
    );
    assert_eq!(json["summary"]["containers"], 1);
}

#[test]
fn podman_hybrid_conmon_is_not_a_container() {
    let t = Tree::new();
    // Monitors get ordinary names: their cgroup, not their name, keeps them out.
    t.add(
        800,
        P::host("sleep", 800).raw_cgroup("4:memory:/libpod_parent/conmon\n0::/\n"),
    );
    t.add(
        801,
        P::host("sleep", 801)
            .hybrid(&format!("/libpod_parent/libpod-{ID_C}"))
            .ppid(800),
    );
    t.add(
        900,
        P::host("sleep", 900).v2(&format!("/machine.slice/libpod-conmon-{ID_A}.scope")),
    );
    t.add(
        901,
        P::nested("sleep", 901, ISO_NS, 1)
            .v2(&format!("/machine.slice/libpod-{ID_A}.scope/container"))
            .ppid(900),
    );
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        json["summary"]["containers"], 2,
        "conmon is a monitor: {json:#}"
    );
    assert_eq!(container(&json, ID_C)["verdict"], "shares");
    let a = container(&json, ID_A);
    assert_eq!(
        a["verdict"], "isolated",
        "the host-PID monitor is not in it: {a:#}"
    );
    assert_eq!(a["pids"], serde_json::json!([901]));
    assert_eq!(a["cgroup"], format!("/machine.slice/libpod-{ID_A}.scope"));
}

#[test]
fn kubernetes_host_pid_pod_keeps_the_pod_uid() {
    let t = Tree::new();
    let slice = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        POD_UID.replace('-', "_")
    );
    t.add(
        1000,
        P::host("sleep", 1000).v2(&format!("{slice}/crio-conmon-{ID_A}.scope")),
    );
    t.add(
        1001,
        P::host("pause", 1001).v2(&format!("{slice}/crio-{ID_A}.scope")),
    );
    t.add(
        1002,
        P::host("agent", 1002).v2(&format!("{slice}/crio-{ID_B}.scope")),
    );
    t.add(
        1100,
        P::nested("app", 1100, ISO_NS, 1).v1(&format!("/kubepods/besteffort/pod{POD_UID}/{ID_C}")),
    );
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1);
    for id in [ID_A, ID_B] {
        let c = container(&json, id);
        assert_eq!(
            (c["runtime"].as_str(), c["verdict"].as_str()),
            (Some("cri-o"), Some("shares"))
        );
        assert_eq!(c["pod"]["uid"], POD_UID);
    }
    assert!(
        container(&json, ID_A)["pids"]
            .as_array()
            .is_some_and(|p| !p.iter().any(|p| p == 1000)),
        "conmon is not in the pod"
    );
    let c = container(&json, ID_C);
    assert_eq!(
        (c["runtime"].as_str(), c["verdict"].as_str()),
        (Some("kubernetes"), Some("isolated"))
    );
    assert_eq!(c["pod"]["uid"], POD_UID);
}

#[test]
fn containerd_namespace_layout_needs_a_shim_ancestor() {
    let t = Tree::new();
    t.add(1200, P::host("containerd-shim", 1200).hybrid("/"));
    t.add(
        1201,
        P::host("sleep", 1201).hybrid("/default/web").ppid(1200),
    );
    t.add(1202, P::host("sh", 1202).hybrid("/default/web").ppid(1201));
    // The same shape without a shim is some other tool's cgroup, not a container.
    t.add(1300, P::host("job", 1300).hybrid("/actions_job/abc123"));
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1);
    let web = container(&json, "web");
    assert_eq!(
        (
            web["runtime"].as_str(),
            web["containerd_namespace"].as_str()
        ),
        (Some("containerd"), Some("default"))
    );
    assert_eq!(web["pids"], serde_json::json!([1201, 1202]));
    assert_eq!(json["summary"]["containers"], 1, "{json:#}");
}

#[test]
fn lxc_and_nspawn_monitors_and_vms() {
    let t = Tree::new();
    t.add(1400, P::host("sleep", 1400).v2("/lxc.monitor.web"));
    t.add(
        1401,
        P::nested("init", 1401, ISO_NS, 1).v2("/lxc.payload.web/init.scope"),
    );
    t.add(
        1500,
        P::host("sleep", 1500).v2("/machine.slice/systemd-nspawn@box.service/supervisor"),
    );
    t.add(
        1501,
        P::host("bash", 1501).v2("/machine.slice/systemd-nspawn@box.service/payload"),
    );
    t.add(
        1600,
        P::host("qemu-system-x86", 1600).v2("/machine.slice/machine-qemu\\x2d1\\x2dvm.scope"),
    );
    t.add(1700, P::host("sleep", 1700).v1("/lxc/legacy"));
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        container(&json, "web")["verdict"],
        "isolated",
        "the host-PID monitor is not the container: {json:#}"
    );
    let b = container(&json, "box");
    assert_eq!(
        (b["runtime"].as_str(), b["verdict"].as_str()),
        (Some("systemd-nspawn"), Some("shares"))
    );
    assert_eq!(
        b["pids"],
        serde_json::json!([1501]),
        "the supervisor is not the container"
    );
    assert_eq!(container(&json, "legacy")["runtime"], "lxc");
    assert_eq!(
        json["summary"]["containers"], 3,
        "a VM is not a container: {json:#}"
    );
}

#[test]
fn hardened_host_falls_back_to_nspid() {
    let t = Tree::new();
    t.harden_init();
    t.add(
        600,
        P::host("sleep", 600).hybrid(&format!("/docker/{ID_B}")),
    );
    t.add(
        601,
        P::nested("sleep", 601, ISO_NS, 1).hybrid(&format!("/docker/{ID_A}")),
    );
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1);
    let host = &json["host_pidns"];
    assert_eq!(host["method"], "nspid");
    assert_eq!(host["inode"], HOST_NS);
    assert_eq!(host["inode_source_pid"], 2);
    assert_eq!(container(&json, ID_B)["verdict"], "shares");
    assert_eq!(container(&json, ID_A)["verdict"], "isolated");
}

#[test]
fn nspid_alone_decides_when_no_link_is_readable() {
    let t = Tree::new();
    t.harden_init();
    t.add(2, P::host("kthreadd", 2).link(Link::Unreadable));
    t.add(
        600,
        P::host("sleep", 600)
            .hybrid(&format!("/docker/{ID_B}"))
            .link(Link::Unreadable),
    );
    t.add(
        601,
        P::nested("sleep", 601, ISO_NS, 1)
            .hybrid(&format!("/docker/{ID_A}"))
            .link(Link::Missing),
    );
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1);
    assert_eq!(json["host_pidns"]["inode"], serde_json::Value::Null);
    let b = container(&json, ID_B);
    assert_eq!(b["verdict"], "shares");
    assert_eq!(b["host_pidns_processes"][0]["method"], "nspid");
    assert_eq!(container(&json, ID_A)["verdict"], "isolated");
    assert!(json["warnings"].to_string().contains("NSpid"));
}

#[test]
fn host_pid_override() {
    let t = Tree::new();
    // With --host-pid 900, the "host" is the namespace of PID 900.
    t.add(900, P::nested("init", 900, OTHER_NS, 1));
    t.add(
        901,
        P::nested("sleep", 901, OTHER_NS, 5).v2(&format!("/docker/{ID_A}")),
    );
    t.add(902, P::host("sleep", 902).v2(&format!("/docker/{ID_B}")));
    let (code, json) = scan_json(&t, &["--host-pid", "900"]);
    assert_eq!(code, 1);
    assert_eq!(json["host_pidns"]["inode"], OTHER_NS);
    assert_eq!(json["host_pidns"]["host_pid"], 900);
    assert_eq!(container(&json, ID_A)["verdict"], "shares");
    assert_eq!(container(&json, ID_B)["verdict"], "isolated");
}

#[test]
fn one_process_in_the_host_namespace_is_enough() {
    let t = Tree::new();
    t.add(
        1001,
        P::nested("sh", 1001, ISO_NS, 1).v2(&format!("/docker/{ID_A}")),
    );
    t.add(
        1002,
        P::host("debugger", 1002)
            .v2(&format!("/docker/{ID_A}"))
            .children(OTHER_NS),
    );
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1);
    let a = container(&json, ID_A);
    assert_eq!(a["verdict"], "shares");
    assert_eq!(a["pidns_inodes"], serde_json::json!([HOST_NS, ISO_NS]));
    assert_eq!(
        a["host_pidns_processes"][0]["children_pidns_inode"],
        OTHER_NS
    );
}

#[test]
fn runtime_setup_stages_are_not_container_processes() {
    let t = Tree::new();
    // `runc create`, run by the shim in the daemon's cgroup; runc clones its
    // stages with CLONE_PARENT, so all of them are the CLI's children.
    t.add(
        1090,
        P::host("containerd-shim", 1090).v2("/system.slice/containerd.service"),
    );
    t.add(
        1100,
        P::host("runc", 1100)
            .v2("/system.slice/containerd.service")
            .ppid(1090),
    );
    // runc's first two stages sit in the container's cgroup in the host namespace.
    t.add(
        1101,
        P::host("runc:[0:PARENT]", 1101)
            .v2(&format!("/docker/{ID_A}"))
            .ppid(1100),
    );
    t.add(
        1102,
        P::host("runc:[1:CHILD]", 1102)
            .v2(&format!("/docker/{ID_A}"))
            .children(ISO_NS)
            .ppid(1100),
    );
    t.add(
        1103,
        P::nested("runc:[2:INIT]", 1103, ISO_NS, 1)
            .v2(&format!("/docker/{ID_A}"))
            .ppid(1100),
    );
    // A container caught with only its setup stages (here the memfd re-exec,
    // still called `runc`) is not judged.
    t.add(
        1201,
        P::host("runc", 1201)
            .v2(&format!("/docker/{ID_B}"))
            .ppid(1100),
    );
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 0, "{json:#}");
    let a = container(&json, ID_A);
    assert_eq!(a["verdict"], "isolated");
    assert_eq!(a["runtime_pids"], serde_json::json!([1101, 1102]));
    assert!(json["containers"].as_array().is_some_and(|c| c.len() == 1));
    assert!(
        json["warnings"]
            .to_string()
            .contains("only runtime processes")
    );
}

#[test]
fn unreadable_evidence_is_an_explicit_unknown() {
    let t = Tree::new();
    // The host is PID 900's namespace, which is not the proc root's own, so
    // NSpid cannot stand in for an unreadable link.
    t.add(900, P::nested("init", 900, OTHER_NS, 1));
    t.add(
        901,
        P::nested("sleep", 901, OTHER_NS, 2)
            .v2(&format!("/docker/{ID_A}"))
            .link(Link::Unreadable),
    );
    let (code, json) = scan_json(&t, &["--host-pid", "900"]);
    assert_eq!(code, 0);
    let a = container(&json, ID_A);
    assert_eq!(a["verdict"], "unknown");
    assert_eq!(a["shares_host_pidns"], serde_json::Value::Null);
    assert!(
        a["unknown_reason"]
            .as_str()
            .is_some_and(|r| r.contains("901/ns/pid")),
        "{a:#}"
    );
    assert_eq!(json["summary"]["unknown"], 1);
}

#[test]
fn container_sharing_another_containers_namespace() {
    let t = Tree::new();
    t.add(
        501,
        P::nested("sleep", 501, ISO_NS, 1).v2(&format!("/docker/{ID_A}")),
    );
    t.add(
        502,
        P::nested("sleep", 502, ISO_NS, 2).v2(&format!("/docker/{ID_B}")),
    );
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        container(&json, ID_B)["shares_pidns_with"],
        serde_json::json!([ID_A])
    );
    assert_eq!(container(&json, ID_B)["shares_host_pidns"], false);
}

#[test]
fn allow_by_id_prefix_and_name() {
    let t = Tree::new();
    t.add(600, P::host("agent", 600).v2(&format!("/docker/{ID_B}")));
    t.write(
        &format!("root/var/lib/docker/containers/{ID_B}/config.v2.json"),
        r#"{"Name":"/node-agent"}"#,
    );
    let root = format!("{}/root", t.proc_root());
    for allow in [&ID_B[..12], "node-agent"] {
        let (code, json) = scan_json(&t, &["--host-root", &root, "--allow", allow]);
        assert_eq!(code, 0, "--allow {allow}: {json:#}");
        let b = container(&json, ID_B);
        assert_eq!(
            (b["verdict"].as_str(), b["name"].as_str()),
            (Some("allowed"), Some("node-agent"))
        );
        assert_eq!(json["summary"]["allowed"], 1);
    }
    let (code, json) = scan_json(&t, &["--host-root", &root, "--allow", "someone-else"]);
    assert_eq!(code, 1);
    assert!(json["warnings"].to_string().contains("someone-else"));
}

/// `docker:NAME` allows Docker's container of that name, not Podman's; a
/// bare name that matches both is a warning.
#[test]
fn allow_entries_qualified_by_runtime() {
    let t = Tree::new();
    t.add(600, P::host("agent", 600).v2(&format!("/docker/{ID_B}")));
    t.add(
        601,
        P::host("agent", 601).v2(&format!("/machine.slice/libpod-{ID_C}.scope")),
    );
    t.write(
        &format!("root/var/lib/docker/containers/{ID_B}/config.v2.json"),
        r#"{"Name":"/node-agent"}"#,
    );
    t.write(
        "root/var/lib/containers/storage/overlay-containers/containers.json",
        format!(r#"[{{"id":"{ID_C}","names":["node-agent"]}}]"#),
    );
    // Podman's record of the container, as it keeps one next to the list
    t.write(
        &format!("root/var/lib/containers/storage/overlay-containers/{ID_C}/userdata/config.json"),
        "{}",
    );
    let root = format!("{}/root", t.proc_root());
    let (code, json) = scan_json(&t, &["--host-root", &root, "--allow", "docker:node-agent"]);
    assert_eq!(code, 1, "Podman's node-agent is not allowed: {json:#}");
    assert_eq!(container(&json, ID_B)["verdict"], "allowed");
    assert_eq!(container(&json, ID_C)["verdict"], "shares");
    assert_eq!(
        container(&json, ID_B)["allowed_by"],
        "--allow docker:node-agent"
    );
    let (code, json) = scan_json(&t, &["--host-root", &root, "--allow", "node-agent"]);
    assert_eq!(code, 0, "{json:#}");
    let warnings = json["warnings"].to_string();
    assert!(
        warnings.contains("node-agent matches containers of 2 runtimes (docker, podman)"),
        "{warnings}"
    );
}

#[test]
fn names_are_off_for_foreign_proc_roots_unless_asked() {
    let t = Tree::new();
    t.add(600, P::host("agent", 600).v2(&format!("/docker/{ID_B}")));
    t.write(
        &format!("root/var/lib/docker/containers/{ID_B}/config.v2.json"),
        r#"{"Name":"/x"}"#,
    );
    let (_, json) = scan_json(&t, &[]);
    assert_eq!(container(&json, ID_B)["name"], serde_json::Value::Null);
}

#[test]
fn junk_trees_never_panic() {
    let t = Tree::new();
    t.write("77", "a file where a process directory belongs");
    t.write("78/cgroup", "");
    t.write("79/cgroup", vec![b'0'; 1 << 20]);
    t.write("80/cgroup", b"0::/docker/\xff\xfe/\n4:mem\n:::\n\x00\x00");
    t.add(
        81,
        P::host("x", 81).v2(&format!("/docker/{ID_A}")).no_nspid(),
    );
    t.write("81/ns/garbage", "");
    std::fs::create_dir_all(t.path().join("82/cgroup")).expect("dir where a file belongs");
    std::os::unix::fs::symlink("/nonexistent", t.path().join("83")).expect("broken link");
    let d = t.path().join("84/ns");
    std::fs::create_dir_all(&d).expect("ns");
    std::os::unix::fs::symlink("pid:[not a number]", d.join("pid")).expect("bad link text");
    t.write("84/cgroup", format!("0::/docker/{ID_B}\n"));
    t.write("84/status", "Name:\t\nNSpid:\t\n");
    t.write("self/cgroup", "0::/\n");
    let (code, json) = scan_json(&t, &[]);
    assert!(matches!(code, 0 | 1), "{json:#}");
    assert_eq!(container(&json, ID_A)["verdict"], "shares");
    assert_eq!(container(&json, ID_B)["verdict"], "unknown");
    assert!(
        json["summary"]["malformed_entries"]
            .as_u64()
            .is_some_and(|n| n >= 2),
        "{json:#}"
    );
}

#[test]
fn pidns_own_container_is_allowed() {
    let t = Tree::new();
    t.add(600, P::host("pidns", 600).v2(&format!("/docker/{ID_B}")));
    t.add(700, P::host("sleep", 700).v2(&format!("/docker/{ID_A}")));
    // As in a live procfs, `self` is a link to the reader's own pid.
    std::os::unix::fs::symlink("600", t.path().join("self")).expect("self link");
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1, "the other container still fails the scan");
    let own = container(&json, ID_B);
    assert_eq!(
        (own["verdict"].as_str(), own["allowed_by"].as_str()),
        (Some("allowed"), Some("pidns itself"))
    );
    assert_eq!(container(&json, ID_A)["verdict"], "shares");
    let (code, json) = scan_json(&t, &["--allow", ID_A]);
    assert_eq!(code, 0);
    assert_eq!(
        container(&json, ID_A)["allowed_by"],
        format!("--allow {ID_A}")
    );
}

/// A shim in the daemon's cgroup, and a `runc` CLI it runs there.
fn shim_and_runc_cli(t: &Tree) {
    t.add(
        3000,
        P::host("containerd-shim", 3000).hybrid("/system.slice/containerd.service"),
    );
    t.add(
        3001,
        P::host("runc", 3001)
            .hybrid("/system.slice/containerd.service")
            .ppid(3000),
    );
}

#[test]
fn renaming_a_process_like_a_runtime_hides_nothing() {
    let t = Tree::new();
    shim_and_runc_cli(&t);
    // A --pid=host container whose init renamed itself `runc`: its parent is
    // the shim, not a runtime CLI.
    t.add(
        3100,
        P::host("runc", 3100)
            .hybrid(&format!("/docker/{ID_A}"))
            .ppid(3000),
    );
    // One whose processes call themselves conmon and a runc stage, forked
    // inside the container (parent in the same cgroup).
    t.add(
        3200,
        P::host("conmon", 3200)
            .hybrid(&format!("/docker/{ID_B}"))
            .ppid(3000),
    );
    t.add(
        3201,
        P::host("runc:[1:CHILD]", 3201)
            .hybrid(&format!("/docker/{ID_B}"))
            .ppid(3200),
    );
    // A fake `runc` CLI inside the container is inside its cgroup.
    t.add(
        3300,
        P::host("runc", 3300)
            .hybrid(&format!("/docker/{ID_C}/sub"))
            .ppid(3000),
    );
    t.add(
        3301,
        P::host("runc:[0:PARENT]", 3301)
            .hybrid(&format!("/docker/{ID_C}"))
            .ppid(3300),
    );
    let (code, json) = scan_json(&t, &["--all-evidence"]);
    assert_eq!(code, 1, "{json:#}");
    for (id, pids) in [
        (ID_A, serde_json::json!([3100])),
        (ID_B, serde_json::json!([3200, 3201])),
        (ID_C, serde_json::json!([3300, 3301])),
    ] {
        let c = container(&json, id);
        assert_eq!(c["verdict"], "shares", "{c:#}");
        assert_eq!(c["pids"], pids, "{c:#}");
        assert_eq!(c["runtime_pids"], serde_json::json!([]), "{c:#}");
    }
    assert_eq!(json["summary"]["sharing"], 3);
    let warnings = json["warnings"].to_string();
    assert!(
        !warnings.contains("only runtime processes"),
        "no container is dropped: {warnings}"
    );
    assert!(
        warnings.contains("pid 3100 is named \\\"runc\\\"")
            && warnings.contains("its parent 3000 (containerd-shim) is not a runtime"),
        "{warnings}"
    );
    assert!(
        warnings.contains("its parent 3200 is inside the container's cgroup"),
        "{warnings}"
    );
    assert!(
        warnings.contains("runtimes run no such process in a container's cgroup"),
        "conmon in a container's cgroup: {warnings}"
    );

    // The table names the container.
    let out = pidns()
        .args(["scan", "--proc-root", &t.proc_root()])
        .output()
        .expect("run");
    assert_eq!(support::code(&out), 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&ID_A[..12]) && text.contains("pid 3100 runc"),
        "{text}"
    );
}

#[test]
fn a_runtime_process_whose_parent_cannot_be_read_counts() {
    let t = Tree::new();
    // Parent 4242 is gone (or unreadable): nothing proves it was runc.
    t.add(
        3400,
        P::host("runc:[1:CHILD]", 3400)
            .v2(&format!("/docker/{ID_A}"))
            .ppid(4242),
    );
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(container(&json, ID_A)["verdict"], "shares");
    assert!(
        json["warnings"]
            .to_string()
            .contains("4242/cgroup is unreadable")
    );
}

#[test]
fn nspawn_supervisor_sharing_the_service_cgroup() {
    // systemd before v254 and any legacy/hybrid host: no payload/supervisor
    // sub-cgroups, so the supervisor shares systemd-nspawn@box.service with
    // the payload. Its parent is the service manager outside that cgroup.
    for v1 in [true, false] {
        let t = Tree::new();
        t.add(1, P::host("systemd", 1).v2("/init.scope").ppid(0));
        let svc = "/machine.slice/systemd-nspawn@box.service";
        let placed = |p: P| if v1 { p.v1(svc) } else { p.hybrid(svc) };
        t.add(1500, placed(P::host("systemd-nspawn", 1500)));
        t.add(
            1501,
            placed(P::nested("systemd", 1501, ISO_NS, 1)).ppid(1500),
        );
        let (code, json) = scan_json(&t, &[]);
        assert_eq!(code, 0, "{json:#}");
        let b = container(&json, "box");
        assert_eq!(b["verdict"], "isolated");
        assert_eq!(b["runtime_pids"], serde_json::json!([1500]));

        // The same name in a Docker container, or with another parent, is a container process.
        t.add(
            1600,
            P::host("systemd-nspawn", 1600).v2(&format!("/docker/{ID_A}")),
        );
        t.add(1502, placed(P::host("systemd-nspawn", 1502)).ppid(1501));
        let (code, json) = scan_json(&t, &[]);
        assert_eq!(code, 1, "{json:#}");
        assert_eq!(container(&json, ID_A)["verdict"], "shares");
        let b = container(&json, "box");
        assert_eq!(b["verdict"], "shares", "{b:#}");
        assert_eq!(b["host_pidns_processes"][0]["pid"], 1502);
    }
}

#[test]
fn monitor_cgroups_inside_a_container_are_the_containers() {
    let t = Tree::new();
    let a = format!("/docker/{ID_A}");
    t.add(
        2001,
        P::host("sleep", 2001).hybrid(&format!("{a}/lxc.monitor.x")),
    );
    t.add(
        2002,
        P::host("sleep", 2002).hybrid(&format!("{a}/crio-conmon-{ID_B}")),
    );
    t.add(
        2003,
        P::host("sleep", 2003).hybrid(&format!("{a}/systemd-nspawn@x.service/supervisor")),
    );
    t.add(
        2004,
        P::host("sleep", 2004).hybrid(&format!("{a}/machine.slice/libpod-conmon-{ID_C}.scope")),
    );
    // and a VM scope inside it
    t.add(
        2005,
        P::host("qemu", 2005).hybrid(&format!("{a}/machine.slice/machine-qemu\\x2d1.scope")),
    );
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1, "{json:#}");
    let c = container(&json, ID_A);
    assert_eq!(c["verdict"], "shares");
    assert_eq!(c["pids"], serde_json::json!([2001, 2002, 2003, 2004, 2005]));
    assert_eq!(c["cgroup"], a);
    assert_eq!(json["summary"]["containers"], 1, "{json:#}");
}

#[test]
fn a_nested_cgroup_named_after_an_allowed_container_borrows_nothing() {
    let t = Tree::new();
    // The allowed agent, and an attacker's sub-cgroup named after it (each
    // on a root of its own: real containers, not mere claims).
    t.add(
        2100,
        P::host("agent", 2100)
            .hybrid(&format!("/docker/{ID_B}"))
            .on_root("agent", 4026532100),
    );
    let nested = format!("/docker/{ID_A}/docker/{ID_B}");
    t.add(
        2200,
        P::host("sh", 2200)
            .hybrid(&nested)
            .on_root("outer", 4026532200),
    );
    t.write(
        &format!("root/var/lib/docker/containers/{ID_A}/config.v2.json"),
        r#"{"Name":"/outer"}"#,
    );
    let root = format!("{}/root", t.proc_root());
    let (code, json) = scan_json(&t, &["--host-root", &root, "--allow", ID_B]);
    assert_eq!(code, 1, "{json:#}");
    let same_id: Vec<&serde_json::Value> = json["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter(|c| c["id"] == ID_B)
        .collect();
    assert_eq!(
        same_id.len(),
        2,
        "same id, other cgroup, other container: {json:#}"
    );
    let top = same_id
        .iter()
        .find(|c| c["cgroup"] == format!("/docker/{ID_B}"))
        .expect("top-level agent");
    assert_eq!(top["verdict"], "allowed");
    assert_eq!(top["enclosed_by"], serde_json::json!([]));
    let inner = same_id
        .iter()
        .find(|c| c["cgroup"] == nested)
        .expect("nested one");
    assert_eq!(inner["verdict"], "shares", "{inner:#}");
    assert_eq!(inner["pids"], serde_json::json!([2200]));
    assert_eq!(
        inner["enclosed_by"],
        serde_json::json!([{
            "id": ID_A,
            "runtime": "docker",
            "name": "outer",
            "pod": null,
            "cgroup": format!("/docker/{ID_A}"),
        }])
    );
    assert!(
        json["warnings"]
            .to_string()
            .contains("but not the container(s) enclosing it"),
        "{json:#}"
    );
    // Allowing the enclosing container too (here by name) allows the nested one.
    let (code, json) = scan_json(
        &t,
        &["--host-root", &root, "--allow", ID_B, "--allow", "outer"],
    );
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["summary"]["allowed"], 2);
    assert!(
        !json["warnings"]
            .to_string()
            .contains("matched no container"),
        "the outer entry is used: {json:#}"
    );
}

#[test]
fn kind_node_pods_keep_their_pod_and_name_the_node() {
    let t = Tree::new();
    let node = format!("/system.slice/docker-{ID_A}.scope");
    let uid_ = POD_UID.replace('-', "_");
    let pod = format!(
        "{node}/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{uid_}.slice"
    );
    // the node's own processes (systemd, containerd, kubelet) in their pidns
    t.add(
        2300,
        P::nested("systemd", 2300, ISO_NS, 1).v2(&format!("{node}/init.scope")),
    );
    t.add(
        2301,
        P::nested("kubelet", 2301, ISO_NS, 90).v2(&format!("{node}/kubelet.slice/kubelet.service")),
    );
    // a hostPID pod inside the node shares the node's namespace, not the host's
    t.add(
        2400,
        P::nested("agent", 2400, ISO_NS, 200).v2(&format!("{pod}/cri-containerd-{ID_B}.scope")),
    );
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 0, "{json:#}");
    let n = container(&json, ID_A);
    assert_eq!(
        (n["runtime"].as_str(), n["pids"].clone()),
        (Some("docker"), serde_json::json!([2300, 2301]))
    );
    assert_eq!(n["enclosed_by"], serde_json::json!([]));
    let p = container(&json, ID_B);
    assert_eq!(p["runtime"], "containerd");
    assert_eq!(p["pod"]["uid"], POD_UID);
    assert_eq!(p["cgroup"], format!("{pod}/cri-containerd-{ID_B}.scope"));
    assert_eq!(p["enclosed_by"][0]["id"], ID_A);
    assert_eq!(p["enclosed_by"][0]["cgroup"], node);
    assert_eq!(p["shares_pidns_with"], serde_json::json!([ID_A]));
}

#[test]
fn docker_cgroup_parent_needs_a_shim_and_docker_state() {
    let t = Tree::new();
    t.add(
        3000,
        P::host("containerd-shim", 3000).hybrid("/system.slice/containerd.service"),
    );
    t.add(
        3101,
        P::host("sleep", 3101)
            .hybrid(&format!("/scan-cpa/sub/{ID_A}"))
            .ppid(3000),
    );
    t.add(
        3102,
        P::nested("sleep", 3102, ISO_NS, 1)
            .hybrid(&format!("/scan-cp/{ID_B}"))
            .ppid(3000),
    );
    // the same shapes with no shim behind them are not containers
    t.add(
        3103,
        P::host("job", 3103).hybrid(&format!("/ci/jobs/{ID_C}")),
    );
    t.write(
        &format!("root/var/lib/docker/containers/{ID_A}/config.v2.json"),
        r#"{"Name":"/cpa"}"#,
    );
    t.write(
        &format!("root/var/lib/docker/containers/{ID_B}/config.v2.json"),
        r#"{"Name":"/cp"}"#,
    );
    let root = format!("{}/root", t.proc_root());
    let (code, json) = scan_json(&t, &["--host-root", &root]);
    assert_eq!(code, 1, "{json:#}");
    let a = container(&json, ID_A);
    assert_eq!(
        (
            a["runtime"].as_str(),
            a["name"].as_str(),
            a["verdict"].as_str()
        ),
        (Some("docker"), Some("cpa"), Some("shares"))
    );
    assert_eq!(a["cgroup"], format!("/scan-cpa/sub/{ID_A}"));
    let b = container(&json, ID_B);
    assert_eq!(
        (
            b["runtime"].as_str(),
            b["name"].as_str(),
            b["verdict"].as_str()
        ),
        (Some("docker"), Some("cp"), Some("isolated"))
    );
    assert_eq!(b["containerd_namespace"], serde_json::Value::Null);
    assert_eq!(json["summary"]["containers"], 2, "{json:#}");
    // --no-names still tells Docker from containerd
    let (_, json) = scan_json(&t, &["--host-root", &root, "--no-names"]);
    assert_eq!(container(&json, ID_A)["runtime"], "docker");
    assert_eq!(container(&json, ID_A)["name"], serde_json::Value::Null);
    // Without Docker's state, a bare id is containerd's (namespace kept for /<ns>/<id>).
    let (_, json) = scan_json(&t, &[]);
    assert_eq!(container(&json, ID_A)["runtime"], "containerd");
    let b = container(&json, ID_B);
    assert_eq!(b["runtime"], "containerd");
    assert_eq!(b["containerd_namespace"], "scan-cp");
}

#[test]
fn fifos_and_odd_files_never_hang_the_scan() {
    let t = Tree::new();
    t.add(30, P::host("sleep", 30).v2(&format!("/docker/{ID_A}")));
    t.add(31, P::host("sleep", 31).v2(&format!("/docker/{ID_B}")));
    t.add(32, P::host("sleep", 32).v2(&format!("/docker/{ID_C}")));
    let fifo = |rel: &str| {
        let p = t.path().join(rel);
        let _ = std::fs::remove_file(&p);
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    };
    fifo("30/cgroup");
    fifo("31/status");
    fifo("31/comm");
    // a symlink where a file belongs is not followed
    std::fs::remove_file(t.path().join("32/cgroup")).expect("rm");
    std::fs::write(t.path().join("elsewhere"), format!("0::/docker/{ID_C}\n")).expect("write");
    std::os::unix::fs::symlink(t.path().join("elsewhere"), t.path().join("32/cgroup"))
        .expect("symlink");
    let out = pidns()
        .args(["scan", "--format", "json", "--proc-root", &t.proc_root()])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("run");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}); a FIFO hung the scan? {out:?}"));
    // 30 and 32 are not placed; 31 is, and its link decides.
    assert_eq!(json["summary"]["containers"], 1, "{json:#}");
    assert_eq!(container(&json, ID_B)["verdict"], "shares");
    assert!(
        json["summary"]["malformed_entries"].as_u64() >= Some(2),
        "{json:#}"
    );
}

#[test]
fn only_canonical_pid_directories_are_processes() {
    let t = Tree::new();
    t.add(600, P::host("sleep", 600).v2(&format!("/docker/{ID_A}")));
    for odd in ["+600", "0600", "00", "6e2", " 600"] {
        let d = t.path().join(odd);
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::write(d.join("cgroup"), format!("0::/docker/{ID_B}\n")).expect("cgroup");
    }
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        json["summary"]["processes_scanned"], 3,
        "1, 2 and 600: {json:#}"
    );
    assert_eq!(json["summary"]["processes_vanished"], 0);
}

#[test]
fn allow_matches_names_exactly() {
    let t = Tree::new();
    t.add(
        700,
        P::host("agent", 700).v2("/lxc.payload.monitoring-agent-evil"),
    );
    let (code, json) = scan_json(&t, &["--allow", "monitoring-agent"]);
    assert_eq!(code, 1, "a name is not a prefix: {json:#}");
    assert_eq!(
        container(&json, "monitoring-agent-evil")["verdict"],
        "shares"
    );
    let (code, _) = scan_json(&t, &["--allow", "monitoring-agent-evil"]);
    assert_eq!(code, 0);
}

#[test]
fn host_pid_one_without_links_falls_back_to_nspid() {
    // An evidence tree where PID 1 was captured without its ns/ links.
    let t = Tree::new();
    t.add(1, P::host("init", 1).link(Link::Missing).ppid(0));
    t.add(600, P::host("sleep", 600).v2(&format!("/docker/{ID_A}")));
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(json["host_pidns"]["method"], "nspid");
    assert_eq!(container(&json, ID_A)["verdict"], "shares");
    // naming PID 1 explicitly changes nothing
    let (code, json) = scan_json(&t, &["--host-pid", "1"]);
    assert_eq!(
        (code, json["host_pidns"]["method"].as_str()),
        (1, Some("nspid"))
    );
}

#[test]
fn no_pid_one_suggests_host_pid() {
    let t = Tree::empty();
    t.add(2, P::host("kthreadd", 2).ppid(0));
    pidns()
        .args(["scan", "--proc-root", &t.proc_root()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("PID 1 does not exist"))
        .stderr(predicates::str::contains("--host-pid"));
    pidns()
        .args(["scan", "--proc-root", &t.proc_root(), "--host-pid", "3"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("PID 3 does not exist"))
        .stderr(predicates::str::contains("--host-pid").not());
}
