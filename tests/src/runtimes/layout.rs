//! Cgroup layouts of real orchestrators, reproduced with runc.

use crate::state;

/// Where runc puts the container's cgroup: the layouts of real orchestrators,
/// reproduced through `cgroupsPath` with runc's cgroupfs driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// kubelet cgroupfs driver: `/kubepods/burstable/pod<uid>/<id>`.
    KubepodsCgroupfs,
    /// kubelet systemd driver with containerd: `…/kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope`.
    KubepodsSystemdContainerd,
    /// A systemd-style cgroupsPath given to the cgroupfs driver: `/kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>`.
    KubepodsColonContainerd,
    /// CRI-O under the systemd driver: `…/kubepods-burstable-pod<uid>.slice/crio-<id>.scope`.
    CrioSystemd,
    /// systemd-nspawn: `/machine.slice/systemd-nspawn@<name>.service/payload`.
    Nspawn,
    /// LXC 4+: `/lxc.payload.<name>`.
    Lxc,
    /// CRI-O under the cgroupfs driver: `/kubepods/besteffort/pod<uid>/crio-<id>`.
    /// Not in [`Layout::ALL`]: the scan tests cover it on its own.
    CrioCgroupfs,
    /// No `cgroupsPath`: runc puts the container at `/<id>` below its own
    /// cgroup, a path no layout names. pidns knows it by its root and
    /// runc's state. Not in [`Layout::ALL`].
    NoCgroupsPath,
}

impl Layout {
    pub const ALL: [Layout; 6] = [
        Layout::KubepodsCgroupfs,
        Layout::KubepodsSystemdContainerd,
        Layout::KubepodsColonContainerd,
        Layout::CrioSystemd,
        Layout::Nspawn,
        Layout::Lxc,
    ];

    /// (cgroupsPath, runtime as pidns names it, id as pidns reports it, pod uid)
    pub(super) fn place(self, name: &str) -> (String, &'static str, String, Option<String>) {
        let id = state::random_hex(32);
        let uid = format!(
            "{}-{}-{}-{}-{}",
            state::random_hex(4),
            state::random_hex(2),
            state::random_hex(2),
            state::random_hex(2),
            state::random_hex(6)
        );
        let us = uid.replace('-', "_");
        match self {
            Layout::KubepodsCgroupfs => (
                format!("/kubepods/burstable/pod{uid}/{id}"),
                "kubernetes",
                id,
                Some(uid),
            ),
            Layout::KubepodsSystemdContainerd => (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{us}.slice/cri-containerd-{id}.scope"
                ),
                "containerd",
                id,
                Some(uid),
            ),
            Layout::KubepodsColonContainerd => (
                format!("/kubepods-besteffort-pod{us}.slice:cri-containerd:{id}"),
                "containerd",
                id,
                Some(uid),
            ),
            Layout::CrioSystemd => (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{us}.slice/crio-{id}.scope"
                ),
                "cri-o",
                id,
                Some(uid),
            ),
            Layout::Nspawn => (
                format!("/machine.slice/systemd-nspawn@{name}.service/payload"),
                "systemd-nspawn",
                name.to_owned(),
                None,
            ),
            Layout::Lxc => (format!("/lxc.payload.{name}"), "lxc", name.to_owned(), None),
            Layout::CrioCgroupfs => (
                format!("/kubepods/besteffort/pod{uid}/crio-{id}"),
                "cri-o",
                id,
                Some(uid),
            ),
            Layout::NoCgroupsPath => (String::new(), "runc", name.to_owned(), None),
        }
    }
}
