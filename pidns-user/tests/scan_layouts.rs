//! Every runtime layout pidns knows, in each cgroup version (v1 only, v2
//! only, hybrid): a host-PID container must be reported as sharing, an
//! isolated one as isolated, and the runtime's monitor (given an ordinary
//! name, so that only its cgroup keeps it out) must be in neither.

mod support;

use serde_json::json;
use support::*;

const ISO_NS: u64 = 4026532180;

struct Layout {
    what: &'static str,
    runtime: &'static str,
    /// `{id}` is replaced by the container's id.
    container: &'static str,
    /// The cgroup pidns reports, when it differs from `container` (a sub-cgroup).
    reported: Option<&'static str>,
    monitor: Option<&'static str>,
    pod: bool,
    /// Ids are names here (LXC, nspawn, ctr), not hex.
    named: bool,
    /// The shape needs a containerd shim among the ancestors.
    shim: bool,
}

const fn l(what: &'static str, runtime: &'static str, container: &'static str) -> Layout {
    Layout {
        what,
        runtime,
        container,
        reported: None,
        monitor: None,
        pod: false,
        named: false,
        shim: false,
    }
}

fn uid_() -> String {
    POD_UID.replace('-', "_")
}

fn layouts() -> Vec<Layout> {
    vec![
        l("docker cgroupfs", "docker", "/docker/{id}"),
        l(
            "docker systemd",
            "docker",
            "/system.slice/docker-{id}.scope",
        ),
        Layout {
            pod: true,
            ..l(
                "containerd CRI, systemd driver",
                "containerd",
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/cri-containerd-{id}.scope",
            )
        },
        Layout {
            pod: true,
            ..l(
                "containerd CRI, systemd cgroupsPath on cgroupfs",
                "containerd",
                "/kubepods-burstable-pod{uid_}.slice:cri-containerd:{id}",
            )
        },
        Layout {
            named: true,
            shim: true,
            ..l("containerd ctr", "containerd", "/default/{id}")
        },
        Layout {
            pod: true,
            ..l(
                "kubelet cgroupfs driver",
                "kubernetes",
                "/kubepods/burstable/pod{uid}/{id}",
            )
        },
        Layout {
            pod: true,
            monitor: Some(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/crio-conmon-{id}.scope",
            ),
            ..l(
                "CRI-O systemd",
                "cri-o",
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/crio-{id}.scope",
            )
        },
        Layout {
            pod: true,
            monitor: Some("/kubepods/besteffort/pod{uid}/crio-conmon-{id}"),
            ..l(
                "CRI-O cgroupfs",
                "cri-o",
                "/kubepods/besteffort/pod{uid}/crio-{id}",
            )
        },
        Layout {
            monitor: Some("/libpod_parent/conmon"),
            ..l(
                "podman rootful cgroupfs",
                "podman",
                "/libpod_parent/libpod-{id}",
            )
        },
        Layout {
            reported: Some("/machine.slice/libpod-{id}.scope"),
            monitor: Some("/machine.slice/libpod-conmon-{id}.scope"),
            ..l(
                "podman rootful systemd",
                "podman",
                "/machine.slice/libpod-{id}.scope/container",
            )
        },
        Layout {
            reported: Some(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{id}.scope",
            ),
            monitor: Some(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-conmon-{id}.scope",
            ),
            ..l(
                "podman rootless",
                "podman",
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{id}.scope/container",
            )
        },
        Layout {
            named: true,
            reported: Some("/lxc.payload.{id}"),
            monitor: Some("/lxc.monitor.{id}"),
            ..l("LXC 4+", "lxc", "/lxc.payload.{id}/init.scope")
        },
        Layout {
            named: true,
            monitor: Some("/lxc.monitor/{id}"),
            ..l("LXC 3", "lxc", "/lxc.payload/{id}")
        },
        Layout {
            named: true,
            ..l("LXC legacy", "lxc", "/lxc/{id}")
        },
        Layout {
            named: true,
            reported: Some("/machine.slice/systemd-nspawn@{id}.service"),
            monitor: Some("/machine.slice/systemd-nspawn@{id}.service/supervisor"),
            ..l(
                "systemd-nspawn service",
                "systemd-nspawn",
                "/machine.slice/systemd-nspawn@{id}.service/payload",
            )
        },
        Layout {
            named: true,
            ..l(
                "systemd-nspawn machined scope",
                "systemd-nspawn",
                "/machine.slice/machine-{id}.scope",
            )
        },
    ]
}

fn fill(template: &str, id: &str) -> String {
    template
        .replace("{id}", id)
        .replace("{uid_}", &uid_())
        .replace("{uid}", POD_UID)
}

#[derive(Clone, Copy, Debug)]
enum Version {
    V1,
    V2,
    Hybrid,
}

fn placed(p: P, v: Version, path: &str) -> P {
    match v {
        Version::V1 => p.v1(path),
        Version::V2 => p.v2(path),
        Version::Hybrid => p.hybrid(path),
    }
}

#[test]
fn every_layout_in_every_cgroup_version() {
    for layout in layouts() {
        for v in [Version::V1, Version::V2, Version::Hybrid] {
            let ctx = format!("{} on {v:?}", layout.what);
            let (hp, iso) = if layout.named {
                ("hp-1", "iso-1")
            } else {
                (ID_A, ID_B)
            };
            let t = Tree::new();
            t.add(
                100,
                P::host("containerd-shim", 100).hybrid("/system.slice/containerd.service"),
            );
            let parent = if layout.shim { 100 } else { 1 };
            t.add(
                200,
                placed(P::host("sleep", 200), v, &fill(layout.container, hp)).ppid(parent),
            );
            t.add(
                300,
                placed(
                    P::nested("sleep", 300, ISO_NS, 1),
                    v,
                    &fill(layout.container, iso),
                )
                .ppid(parent),
            );
            if let Some(m) = layout.monitor {
                t.add(400, placed(P::host("sleep", 400), v, &fill(m, hp)));
            }
            let (code, out) = scan_json(&t, &[]);
            assert_eq!(code, 1, "{ctx}: {out:#}");
            assert_eq!(out["summary"]["containers"], 2, "{ctx}: {out:#}");
            for (id, verdict, pid) in [(hp, "shares", 200), (iso, "isolated", 300)] {
                let c = container(&out, id);
                assert_eq!(c["runtime"], layout.runtime, "{ctx}: {c:#}");
                assert_eq!(c["verdict"], verdict, "{ctx}: {c:#}");
                assert_eq!(
                    c["pids"],
                    json!([pid]),
                    "{ctx}: the monitor is not in it: {c:#}"
                );
                let cgroup = fill(layout.reported.unwrap_or(layout.container), id);
                assert_eq!(c["cgroup"], cgroup, "{ctx}");
                if layout.pod {
                    assert_eq!(c["pod"]["uid"], POD_UID, "{ctx}");
                } else {
                    assert_eq!(c["pod"], serde_json::Value::Null, "{ctx}");
                }
            }
        }
    }
}
