//! What the attributor's tests share: kernel events, a fixture proc tree
//! with a host and a Docker container, and reading actions back.

use std::path::Path;

use pidns_ebpf::{COMM_LEN, DATA_LEN, Event, NS_TYPES, class, kind};

use super::{Action, Attributor};
use crate::{
    allow::AllowList,
    procfs::ProcRoot,
    report::{HostMethod, HostPidns, WatchEvent},
};

pub const ID: &str = "c6e94367ab9335599a46308fb7deaf45f923aae7c1e7f971dc89871f499e4cfc";
pub const HOST: u64 = 4026531836;
/// The host's namespaces in the fixture, by NS_TYPES index.
pub const HOST_NS: [u64; 8] = [
    4026531840, 4026531838, 4026531839, 4026531837, HOST, 4026531992, 4026531835, 4026531834,
];
pub const MNT: u32 = 0x0002_0000;
pub const UTS: u32 = 0x0400_0000;
pub const NET: u32 = 0x4000_0000;
pub const PID: u32 = 0x2000_0000;

pub fn event(kind: u32, cgroup_id: u64, pid: u32, comm: &str, data: &str) -> Event {
    let mut c = [0u8; COMM_LEN];
    c[..comm.len()].copy_from_slice(comm.as_bytes());
    let mut d = [0u8; DATA_LEN];
    let n = data.len().min(DATA_LEN - 1);
    d[..n].copy_from_slice(&data.as_bytes()[..n]);
    Event {
        kind,
        flags: 0,
        ktime_ns: 1_000_000,
        cgroup_id,
        pid,
        tid: pid,
        ppid: 1,
        nstype: 0,
        ns_inum: 0,
        ret: 0,
        arg: 0,
        target_pid: 0,
        _reserved: 0,
        target_cgroup_id: 0,
        comm: c,
        data: d,
    }
}

/// A process in a fixture proc tree: its cgroup, namespaces (by name),
/// parent and start time.
pub fn process(
    root: &Path,
    pid: u32,
    name: &str,
    ppid: u32,
    cgroup: &str,
    ns: &[(&str, u64)],
    start: u64,
) {
    crate::testutil::process(root, pid, name, ppid, cgroup, ns, start);
}

pub fn host_ns() -> Vec<(&'static str, u64)> {
    NS_TYPES
        .iter()
        .zip(HOST_NS)
        .map(|((_, name), ino)| (*name, ino))
        .collect()
}

pub fn attributor(proc: &Path, allow: &[&str]) -> Attributor {
    if !proc.join("1").exists() {
        process(proc, 1, "init", 0, "/", &host_ns(), 1);
    }
    let root = ProcRoot::open(proc).expect("proc root");
    let host = HostPidns {
        inode: Some(HOST),
        method: HostMethod::NsLink,
        host_pid: 1,
        inode_source_pid: None,
        procfs_own: true,
    };
    Attributor::new(
        root,
        AllowList::new(allow.iter().map(|s| s.to_string())),
        AllowList::default(),
        None,
        None,
        None,
        &host,
    )
}

pub fn findings(actions: &[Action]) -> Vec<&WatchEvent> {
    actions
        .iter()
        .filter_map(|a| {
            if let Action::Emit(e) = a {
                Some(&**e)
            } else {
                None
            }
        })
        .collect()
}

pub fn docker(a: &mut Attributor) {
    let mkdir = event(kind::CGROUP_MKDIR, 10, 5, "runc", &format!("/docker/{ID}"));
    assert_eq!(
        a.handle(&mkdir),
        vec![Action::Classify {
            cgroup_id: 10,
            class: class::CONTAINER,
            container: 10
        }]
    );
}

pub fn setns(cgroup: u64, pid: u32, nstype: u32, ino: u64, ret: i32) -> Event {
    let mut e = event(kind::SETNS, cgroup, pid, "nsenter", "");
    e.nstype = nstype;
    e.ns_inum = ino as u32;
    e.ret = ret;
    e
}

pub fn setns_events(out: &[Action]) -> Vec<(&'static str, bool)> {
    findings(out)
        .into_iter()
        .filter_map(|e| match e {
            WatchEvent::Setns(s) => Some((s.nstype, s.ok)),
            _ => None,
        })
        .collect()
}

/// A container (init 200, own mnt/uts/net, the host's net as with
/// `--network=host`), a host service in a mount namespace of its own
/// (300), and another container's process (400).
pub fn namespaces_fixture(root: &Path) {
    process(root, 1, "init", 0, "/", &host_ns(), 1);
    let own = [
        ("mnt", 4026532200),
        ("uts", 4026532201),
        ("net", HOST_NS[5]),
        ("pid", HOST),
    ];
    process(root, 200, "sleep", 1, &format!("/docker/{ID}"), &own, 100);
    process(
        root,
        201,
        "nsenter",
        200,
        &format!("/docker/{ID}"),
        &own,
        500,
    );
    process(
        root,
        300,
        "svc",
        1,
        "/system.slice/svc.service",
        &[
            ("mnt", 4026532300),
            ("uts", HOST_NS[1]),
            ("net", HOST_NS[5]),
        ],
        50,
    );
    let other = format!("/docker/{}", "d".repeat(64));
    process(
        root,
        400,
        "db",
        1,
        &other,
        &[
            ("mnt", 4026532400),
            ("uts", 4026532401),
            ("net", 4026532402),
        ],
        60,
    );
}
