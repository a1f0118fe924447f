//! `pidns scan` on fixture trees where processes are found by the root they
//! run on (each `root` a symlink to a directory of the tree, each `ns/mnt`
//! a link), whatever their cgroup: home-made containers, runtimes known by
//! their state, processes that left their container's cgroup, cgroup files
//! the kernel cut or an attacker forged, claims made by a cgroup's name.

mod support;

use support::*;

const CTR_MNT: u64 = 4026532500;
const ISO_NS: u64 = 4026532180;

fn out(t: &Tree, format: &str, extra: &[&str]) -> (i32, String) {
    let o = pidns()
        .args(["scan", "--format", format, "--proc-root", &t.proc_root()])
        .args(extra)
        .output()
        .expect("run pidns");
    (code(&o), String::from_utf8_lossy(&o.stdout).into_owned())
}

fn holding(json: &serde_json::Value, pid: u32) -> Option<&serde_json::Value> {
    json["containers"].as_array()?.iter().find(|c| {
        c["pids"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == pid))
    })
}

/// A home-made container: another mount namespace, another root, in the
/// root cgroup; and two host processes that are not containers: one in a
/// mount namespace of its own on the host's root (`unshare -m`, systemd's
/// PrivateTmp), one chrooted in the host's mount namespace (sshd).
fn home_made() -> Tree {
    let t = Tree::new();
    t.add(800, P::host("sleep", 800).on_root("home", CTR_MNT));
    t.write(
        "800/mountinfo",
        "204 105 254:0 /srv/home / rw,relatime - ext4 /dev/vda rw\n",
    );
    t.add(810, P::host("unshared", 810).mnt(Some(4026532501)));
    t.add(820, P::host("sshd", 820).on_root("empty", HOST_MNT));
    t
}

#[test]
fn another_mount_namespace_and_another_root_make_a_container() {
    let t = home_made();
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 1, "{json:#}");
    let c = holding(&json, 800).expect("the home-made container");
    assert_eq!(c["runtime"], "unknown");
    assert_eq!(c["id"], "/dev/vda:/srv/home", "its root mount's source");
    assert_eq!(c["found_by"], "root");
    assert_eq!(c["verdict"], "shares");
    assert_eq!(c["cgroup"], "/", "the cgroup it is in");
    assert_eq!(c["root_mount"]["fs_type"], "ext4");
    assert_eq!(c["root_mount"]["device"], "254:0");
    assert_eq!(c["outside_cgroup_pids"], serde_json::json!([]));
    assert_eq!(c["host_pidns_processes"][0]["outside_cgroup"], false);
    assert!(
        holding(&json, 810).is_none(),
        "unshare -m keeps the host's root"
    );
    assert!(
        holding(&json, 820).is_none(),
        "a chroot keeps the host's mount namespace"
    );
    assert_eq!(json["summary"]["containers"], 1, "{json:#}");

    let (_, table) = out(&t, "table", &[]);
    assert!(table.contains("SHARES   unknown"), "{table}");
    assert!(
        table.contains("found by its root (ext4 /dev/vda, device 254:0)"),
        "{table}"
    );
    let (_, cis) = out(&t, "cis", &[]);
    assert!(cis.contains("[WARN] 5.16"), "{cis}");
    assert!(
        cis.contains("Host PID namespace shared with: /dev/vda:/srv/home (unknown"),
        "{cis}"
    );
}

#[test]
fn unknown_containers_are_never_allowed() {
    let t = home_made();
    // its id is its root mount's source, which its mounter chose
    let (code, json) = scan_json(&t, &["--allow", "/dev/vda:/srv/home"]);
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(holding(&json, 800).expect("listed")["verdict"], "shares");
}

#[test]
fn a_tree_without_roots_is_judged_by_cgroup_and_says_so() {
    let t = home_made();
    for pid in [1, 2] {
        t.add(pid, P::host("init", pid).no_root().ppid(0));
    }
    let (code, json) = scan_json(&t, &[]);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["summary"]["containers"], 0);
    assert!(
        json["warnings"]
            .to_string()
            .contains("judged by their cgroup alone"),
        "{json:#}"
    );
}

/// runc's state under the host root names the container its root is, with
/// its cgroup: the process in it is where runc put it, one elsewhere left.
#[test]
fn runc_state_names_a_container_by_its_root_and_its_cgroup() {
    let t = Tree::new();
    let host_root = t.path().join("roots");
    t.root_dir("web");
    t.write(
        "roots/run/runc/web/state.json",
        r#"{"init_process_pid":900,"config":{"rootfs":"/web"},"cgroup_paths":{"":"/sys/fs/cgroup/unified/web"}}"#,
    );
    t.add(
        900,
        P::host("sleep", 900).v2("/web").on_root("web", CTR_MNT),
    );
    // one of its processes in a PID namespace of its own, outside its cgroup
    t.add(
        901,
        P::nested("sh", 901, ISO_NS, 1)
            .v2("/")
            .on_root("web", CTR_MNT),
    );
    let root = host_root.display().to_string();
    let (code, json) = scan_json(&t, &["--host-root", &root]);
    assert_eq!(code, 1, "{json:#}");
    let c = holding(&json, 900).expect("listed");
    assert_eq!(
        (c["runtime"].as_str(), c["id"].as_str()),
        (Some("runc"), Some("web"))
    );
    assert_eq!(c["cgroup"], "/web");
    assert_eq!(c["rootfs"], "/web");
    assert_eq!(c["pids"], serde_json::json!([900, 901]));
    assert_eq!(c["outside_cgroup_pids"], serde_json::json!([901]));
    assert_eq!(json["summary"]["outside_cgroup"], 1);
    // sharing is allowed; leaving the cgroup is not
    let (code, json) = scan_json(&t, &["--host-root", &root, "--allow", "web"]);
    assert_eq!(holding(&json, 900).expect("listed")["verdict"], "allowed");
    assert_eq!(
        code, 1,
        "a process outside its cgroup fails the scan: {json:#}"
    );
    let (_, sarif) = out(&t, "sarif", &["--host-root", &root, "--allow", "web"]);
    assert!(sarif.contains("PIDNS-OUTSIDE-CGROUP"), "{sarif}");
}

/// Docker's layer records name the container whose root a process runs on;
/// one that moved itself to the root cgroup joins the container its cgroup
/// still names, marked as outside it.
#[test]
fn a_docker_process_that_left_its_cgroup_is_counted_with_its_container() {
    let t = Tree::new();
    let host_root = t.path().join("roots");
    t.root_dir("var/lib/docker/overlay2/m1/merged");
    t.write(
        &format!("roots/var/lib/docker/image/overlay2/layerdb/mounts/{ID_A}/mount-id"),
        "m1",
    );
    let merged = "var/lib/docker/overlay2/m1/merged";
    t.add(
        950,
        P::host("sleep", 950)
            .v2(&format!("/docker/{ID_A}"))
            .on_root(merged, CTR_MNT),
    );
    t.add(
        951,
        P::host("escaper", 951).hybrid("/").on_root(merged, CTR_MNT),
    );
    let root = host_root.display().to_string();
    let (code, json) = scan_json(&t, &["--host-root", &root, "--all-evidence"]);
    assert_eq!(code, 1, "{json:#}");
    let c = container(&json, ID_A);
    assert_eq!(c["found_by"], "cgroup");
    assert_eq!(c["pids"], serde_json::json!([950, 951]));
    assert_eq!(c["outside_cgroup_pids"], serde_json::json!([951]));
    let escaper = c["host_pidns_processes"]
        .as_array()
        .and_then(|e| e.iter().find(|p| p["pid"] == 951))
        .expect("evidence");
    assert_eq!(
        (
            escaper["outside_cgroup"].as_bool(),
            escaper["cgroup"].as_str()
        ),
        (Some(true), Some("/"))
    );
    let (_, table) = out(&t, "table", &["--host-root", &root]);
    assert!(table.contains("outside its container's cgroup"), "{table}");
    assert!(
        table.contains("1 container process is outside its container's cgroup"),
        "{table}"
    );
    let (_, cis) = out(&t, "cis", &["--host-root", &root]);
    assert!(
        cis.contains("[WARN]      * Outside its container's cgroup:"),
        "{cis}"
    );
}

/// A cgroup named with a newline writes lines of its choosing into
/// `/proc/<pid>/cgroup`: here one that names an allowed container. The file
/// is malformed, the process judged by its root, and counted.
#[test]
fn a_forged_cgroup_line_borrows_nothing_and_is_counted() {
    let t = Tree::new();
    t.add(
        960,
        P::host("agent", 960)
            .v2(&format!("/docker/{ID_B}"))
            .on_root("agent", 4026532600),
    );
    t.add(
        961,
        P::host("sh", 961)
            .raw_cgroup(&format!("0::/x\n0::/docker/{ID_B}\n"))
            .on_root("intruder", CTR_MNT),
    );
    let (code, json) = scan_json(&t, &["--allow", ID_B]);
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(container(&json, ID_B)["pids"], serde_json::json!([960]));
    let intruder = holding(&json, 961).expect("judged by its root");
    assert_eq!(
        (intruder["runtime"].as_str(), intruder["verdict"].as_str()),
        (Some("unknown"), Some("shares"))
    );
    assert_eq!(json["summary"]["cgroup_unreadable"], 1);
    for format in ["table", "cis"] {
        let (_, text) = out(&t, format, &["--allow", ID_B]);
        assert!(text.contains("unreadable cgroup file"), "{format}: {text}");
    }
    let (_, sarif) = out(&t, "sarif", &["--allow", ID_B]);
    assert!(
        sarif.contains("\"cgroup_unreadable\": 1") && sarif.contains("malformed"),
        "{sarif}"
    );
}

/// A plain host process in a cgroup named like a Docker container's (what
/// `systemd-run --user --scope --unit=docker-<id>` gives any user).
fn claimed() -> Tree {
    let t = Tree::new();
    t.add(
        970,
        P::host("sleep", 970)
            .v2(&format!(
                "/user.slice/user-1000.slice/user@1000.service/app.slice/docker-{ID_C}.scope"
            ))
            .uid(1000)
            .ppid(2),
    );
    t
}

#[test]
fn a_cgroup_name_alone_is_an_unverified_claim() {
    let t = claimed();
    let host_root = t.root_dir("state");
    let root = host_root.display().to_string();
    let (code, json) = scan_json(&t, &["--host-root", &root]);
    assert_eq!(code, 0, "a claim does not fail the scan: {json:#}");
    let c = container(&json, ID_C);
    assert_eq!(c["verdict"], "unverified");
    assert_eq!(c["owner_uid"], 1000);
    assert_eq!(c["shares_host_pidns"], serde_json::Value::Null);
    assert_eq!(json["summary"]["unverified"], 1);
    assert_eq!(json["summary"]["sharing"], 0);
    let (_, table) = out(&t, "table", &["--host-root", &root]);
    assert!(table.contains("unverified  docker"), "{table}");
    assert!(
        table.contains("unverified claim, owner uid 1000"),
        "{table}"
    );
    let (_, cis) = out(&t, "cis", &["--host-root", &root]);
    assert!(cis.contains("[PASS] 5.16"), "{cis}");
    assert!(
        cis.contains("[INFO]      * Unverified claim, not a container:")
            && cis.contains("owner uid 1000"),
        "{cis}"
    );
    let (_, sarif) = out(&t, "sarif", &["--host-root", &root]);
    let doc: serde_json::Value = serde_json::from_str(&sarif).expect("sarif");
    assert_eq!(doc["runs"][0]["results"][0]["level"], "note", "{doc:#}");

    // Docker's record of the id makes it a container (a real one whose
    // process entered the host's mount namespace)
    t.write(
        &format!("roots/state/var/lib/docker/containers/{ID_C}/config.v2.json"),
        "{}",
    );
    let (code, json) = scan_json(&t, &["--host-root", &root]);
    assert_eq!(
        (code, container(&json, ID_C)["verdict"].as_str()),
        (1, Some("shares"))
    );
}

#[test]
fn without_a_host_root_every_claim_stands() {
    let (code, json) = scan_json(&claimed(), &[]);
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(container(&json, ID_C)["verdict"], "shares");
}

/// A tree big enough to be walked by two threads (1,200 processes) gives
/// the answer one thread would: every container, every process, in order.
#[test]
fn a_big_tree_walked_on_both_cores_misses_nothing() {
    let t = Tree::new();
    let mut pid = 1000;
    let mut ids = Vec::new();
    for n in 0..150u32 {
        let id = format!("{n:064x}");
        for k in 0..6 {
            let p = if k % 2 == 0 {
                P::host("sleep", pid).on_root(&format!("c{n}"), CTR_MNT + u64::from(n))
            } else {
                P::nested("sleep", pid, ISO_NS + u64::from(n), k)
            };
            t.add(pid, p.v2(&format!("/docker/{id}")));
            pid += 1;
        }
        ids.push(id);
    }
    // and home-made containers among host processes
    for n in 0..300u32 {
        let p = if n % 10 == 0 {
            P::host("sleep", pid).on_root(&format!("h{n}"), 4026533000 + u64::from(n))
        } else {
            P::host("sleep", pid)
        };
        t.add(pid, p);
        pid += 1;
    }
    let (code, json) = scan_json(&t, &["--all-evidence"]);
    assert_eq!(code, 1);
    // over 1,024 processes: two walkers
    assert_eq!(
        json["summary"]["processes_scanned"], 1202,
        "{:#}",
        json["summary"]
    );
    assert_eq!(json["summary"]["containers"], 180, "{:#}", json["summary"]);
    for (n, id) in ids.iter().enumerate() {
        let c = container(&json, id);
        let first = 1000 + 6 * n as u32;
        let pids: Vec<u32> = (first..first + 6).collect();
        assert_eq!(c["pids"], serde_json::json!(pids), "{c:#}");
        let host: Vec<u32> = c["host_pidns_processes"]
            .as_array()
            .expect("evidence")
            .iter()
            .filter_map(|p| p["pid"].as_u64().map(|p| p as u32))
            .collect();
        assert_eq!(host, [first, first + 2, first + 4], "{c:#}");
    }
    let home = json["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter(|c| c["runtime"] == "unknown")
        .count();
    assert_eq!(home, 30);
}
