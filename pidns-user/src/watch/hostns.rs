//! The host's namespaces, for telling a setns into them from any other.

use std::os::unix::fs::MetadataExt as _;

use pidns_ebpf::{NS_PID, NS_TYPES};

use crate::{engine::host::kernel_thread, parse::stat, procfs::ProcRoot, report::HostPidns};

/// Where a host namespace's inode was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The host PID's own link.
    HostPid,
    /// A kernel thread's (kernel threads use the initial namespaces, and are
    /// only visible from the initial PID namespace).
    KernelThread(u32),
    /// This process's own, as a last resort.
    SelfProcess,
    Unknown,
}

#[derive(Debug, Clone)]
pub struct HostNamespaces {
    /// Inodes by [`NS_TYPES`] index; 0 when unknown.
    pub inums: [u32; NS_TYPES.len()],
    pub sources: [Source; NS_TYPES.len()],
}

impl HostNamespaces {
    pub fn find(proc: &ProcRoot, host: &HostPidns) -> HostNamespaces {
        let mut inums = [0u32; NS_TYPES.len()];
        let mut sources = [Source::Unknown; NS_TYPES.len()];
        let kthread = kernel_thread(proc);
        for (i, (_, name)) in NS_TYPES.iter().enumerate() {
            let candidates = [
                (Some(host.host_pid), Source::HostPid),
                (kthread, Source::KernelThread(kthread.unwrap_or(0))),
            ];
            for (pid, source) in candidates {
                if let Some(ino) = pid.and_then(|p| proc.ns_inode(p, name).ok()) {
                    inums[i] = u32::try_from(ino).unwrap_or(0);
                    sources[i] = source;
                    break;
                }
            }
            if inums[i] == 0
                && let Ok(link) = std::fs::read_link(format!("/proc/self/ns/{name}"))
                && let Some(ino) =
                    crate::parse::nslink::parse_typed(link.as_os_str().as_encoded_bytes(), name)
            {
                inums[i] = u32::try_from(ino).unwrap_or(0);
                sources[i] = Source::SelfProcess;
            }
        }
        // The PID namespace is the engine's verdict, whatever the links say.
        if let Some(ino) = host.inode {
            inums[NS_PID] = u32::try_from(ino).unwrap_or(0);
            sources[NS_PID] = Source::HostPid;
        }
        HostNamespaces { inums, sources }
    }
}

/// `st_dev` of the nsfs, which `bpf_get_ns_current_pid_tgid` wants with the inode.
pub fn nsfs_dev() -> std::io::Result<u64> {
    std::fs::metadata("/proc/self/ns/pid").map(|m| m.dev())
}

/// The device of the kernel's internal shm mount, where every memfd lives,
/// in the kernel's own encoding (`MKDEV`: major << 20 | minor), as the
/// probes read it from a superblock: a memfd made and looked at here.
pub fn memfd_dev() -> nix::Result<u32> {
    let fd = nix::sys::memfd::memfd_create(c"pidns-probe", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    let st = nix::sys::stat::fstat(&fd)?;
    let dev = st.st_dev;
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    Ok(((major as u32) << 20) | (minor as u32 & 0xf_ffff))
}

/// Whose a process is, for telling whose a namespace is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Not a container's: a host process.
    Host,
    Container(crate::report::ContainerKey),
    /// Gone, or its cgroup unreadable.
    Unknown,
}

/// Whose a process is, from its cgroup file: a host process unless its
/// cgroup names a container (a `/<namespace>/<id>` cgroup only with a
/// containerd task or shim behind it).
pub fn owner(
    proc: &ProcRoot,
    host_root: Option<&std::path::Path>,
    pid: u32,
    ancestry: &mut crate::engine::Ancestry<'_>,
) -> Owner {
    let mut buf = Vec::new();
    if proc.read_into(pid, "cgroup", &mut buf).is_err() {
        return Owner::Unknown;
    }
    let task_exists = |p: &crate::engine::Placement| match (host_root, &p.namespace) {
        (Some(root), Some(ns)) => crate::names::containerd_task_exists(root, ns, &p.key.id),
        _ => false,
    };
    // Placed as `scan` places it: a cgroup file that is not one the
    // kernel wrote (lines forged through a cgroup's name) places nothing.
    let Ok(placed) = crate::engine::placement::place(&buf) else {
        return Owner::Unknown;
    };
    match placed {
        None => Owner::Host,
        Some(p) if p.role == crate::parse::layout::Role::Monitor => Owner::Host,
        Some(p) if p.needs_confirmation && !task_exists(&p) && !ancestry.has_shim_ancestor(pid) => {
            Owner::Host
        }
        Some(p) => Owner::Container(p.key),
    }
}

/// A host process holding namespace `ino` of type `name` (`ns/<name>`), if
/// any: one readlink per process, and `owner` only for those that match.
pub fn host_holder(
    proc: &ProcRoot,
    name: &str,
    ino: u64,
    mut owner: impl FnMut(u32) -> Owner,
) -> Option<u32> {
    let pids = proc.pids().ok()?;
    pids.into_iter()
        .filter(|&pid| proc.ns_inode(pid, name).ok() == Some(ino))
        .find(|&pid| owner(pid) == Owner::Host)
}

/// The longest-running of `pids` (the container's init, for a container's
/// processes) and its namespaces by [`NS_TYPES`] index.
pub fn oldest(
    proc: &ProcRoot,
    pids: impl IntoIterator<Item = u32>,
) -> Option<(u32, [Option<u64>; NS_TYPES.len()])> {
    let mut buf = Vec::new();
    let (pid, _) = pids
        .into_iter()
        .filter_map(|pid| {
            proc.read_into(pid, "stat", &mut buf).ok()?;
            Some((pid, stat::starttime(&buf)?))
        })
        .min_by_key(|&(pid, start)| (start, pid))?;
    let mut inodes = [None; NS_TYPES.len()];
    for (slot, (_, name)) in inodes.iter_mut().zip(NS_TYPES) {
        *slot = proc.ns_inode(pid, name).ok();
    }
    Some((pid, inodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::Tree;

    fn fixture() -> Tree {
        let tree = Tree::new();
        // (pid, start, mnt, net)
        for (pid, start, mnt, net) in [
            (10, 500, 4026531840u64, 4026531992u64),
            (11, 400, 4026532500, 4026532600),
            (12, 900, 4026532500, 4026532700),
        ] {
            tree.pid(pid)
                .stat("my (odd) comm", 1, start)
                .ns("mnt", mnt)
                .ns("net", net);
        }
        tree
    }

    #[test]
    fn holders_are_found_by_link_text_and_owner() {
        let tree = fixture();
        let proc = tree.proc();
        let key = crate::report::ContainerKey {
            runtime: crate::parse::layout::Runtime::Docker,
            id: "c".into(),
            cgroup: "/docker/c".into(),
        };
        let owner = |pid: u32| match pid {
            11 => Owner::Host,
            12 => Owner::Container(key.clone()),
            _ => Owner::Unknown,
        };
        assert_eq!(host_holder(&proc, "mnt", 4026532500, owner), Some(11));
        assert_eq!(host_holder(&proc, "net", 4026532700, owner), None);
        assert_eq!(host_holder(&proc, "mnt", 4026531840, owner), None);
        // the longest-running process and its namespaces
        let (pid, inodes) = oldest(&proc, [10, 12, 99]).expect("oldest");
        assert_eq!(pid, 10);
        assert_eq!(inodes[0], Some(4026531840));
        assert_eq!(inodes[5], Some(4026531992));
        assert_eq!(inodes[1], None);
        assert_eq!(oldest(&proc, [11, 12]).map(|(p, _)| p), Some(11));
    }
}
