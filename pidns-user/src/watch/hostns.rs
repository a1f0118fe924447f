//! The host's namespaces, for telling a setns into them from any other.

use std::os::unix::fs::MetadataExt as _;

use pidns_ebpf::{NS_PID, NS_TYPES};

use crate::{procfs::ProcRoot, report::HostPidns};

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
    pub inums: [u32; 8],
    pub sources: [Source; 8],
}

impl HostNamespaces {
    pub fn find(proc: &ProcRoot, host: &HostPidns) -> HostNamespaces {
        let mut inums = [0u32; 8];
        let mut sources = [Source::Unknown; 8];
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

/// kthreadd: PID 2 in the initial PID namespace, child of PID 0.
fn kernel_thread(proc: &ProcRoot) -> Option<u32> {
    let s = proc.status(2).ok()?;
    (s.name.as_deref() == Some("kthreadd") && s.ppid == Some(0)).then_some(2)
}

/// `st_dev` of the nsfs, which `bpf_get_ns_current_pid_tgid` wants with the inode.
pub fn nsfs_dev() -> std::io::Result<u64> {
    std::fs::metadata("/proc/self/ns/pid").map(|m| m.dev())
}
