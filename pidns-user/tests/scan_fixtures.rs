//! `pidns scan` on fixture proc trees: every layout, both cgroup versions,
//! the NSpid fallback, odd trees, and the verdict rules.

mod support;

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
    t.add(
        800,
        P::host("conmon", 800).raw_cgroup("4:memory:/libpod_parent/conmon\n0::/\n"),
    );
    t.add(
        801,
        P::host("sleep", 801)
            .hybrid(&format!("/libpod_parent/libpod-{ID_C}"))
            .ppid(800),
    );
    t.add(
        900,
        P::host("conmon", 900).v2(&format!("/machine.slice/libpod-conmon-{ID_A}.scope")),
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
    assert_eq!(a["verdict"], "isolated");
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
        P::host("conmon", 1000).v2(&format!("{slice}/crio-conmon-{ID_A}.scope")),
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
    t.add(1400, P::host("lxc-start", 1400).v2("/lxc.monitor.web"));
    t.add(
        1401,
        P::nested("init", 1401, ISO_NS, 1).v2("/lxc.payload.web/init.scope"),
    );
    t.add(
        1500,
        P::host("systemd-nspawn", 1500).v2("/machine.slice/systemd-nspawn@box.service/supervisor"),
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
    assert_eq!(container(&json, "web")["verdict"], "isolated");
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
    // runc's first two stages sit in the container's cgroup in the host namespace.
    t.add(
        1101,
        P::host("runc:[0:PARENT]", 1101).v2(&format!("/docker/{ID_A}")),
    );
    t.add(
        1102,
        P::host("runc:[1:CHILD]", 1102)
            .v2(&format!("/docker/{ID_A}"))
            .children(ISO_NS),
    );
    t.add(
        1103,
        P::nested("runc:[2:INIT]", 1103, ISO_NS, 1).v2(&format!("/docker/{ID_A}")),
    );
    // A container caught with only its setup stages is not judged.
    t.add(
        1201,
        P::host("runc:[1:CHILD]", 1201).v2(&format!("/docker/{ID_B}")),
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
