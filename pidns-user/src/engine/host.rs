//! The host of a proc root: its PID namespace and whether one process lives
//! in it, and what else tells a host process from a container's (the host's
//! mount namespace and the root directory it runs on).

use crate::{
    error::{ReadError, ReadErrorKind, ScanError},
    procfs::{FileId, ProcRoot},
    report::{HostMethod, HostPidns, Method},
};

/// Establishes the host PID namespace of a proc root.
///
/// `pids` is the proc root's listing, when the caller already has one.
pub fn host_pidns(
    proc: &ProcRoot,
    host_pid: Option<u32>,
    pids: Option<&[u32]>,
) -> Result<HostPidns, ScanError> {
    let explicit = host_pid.is_some();
    let host_pid = host_pid.unwrap_or(1);
    let link = proc.ns_inode(host_pid, "pid");
    let status = proc.status(host_pid);
    let procfs_own = matches!(&status, Ok(s) if s.in_procfs_pidns() == Some(true));
    match link {
        Ok(inode) => Ok(HostPidns {
            inode: Some(inode),
            method: HostMethod::NsLink,
            host_pid,
            inode_source_pid: None,
            procfs_own,
        }),
        Err(link_err) => {
            // An evidence tree may lack the link of a process it has.
            if link_err.kind == ReadErrorKind::Vanished && !proc.exists(host_pid) {
                return Err(ScanError::HostPidns {
                    reason: format!(
                        "PID {host_pid} does not exist under {}{}",
                        proc.path().display(),
                        if explicit {
                            ""
                        } else {
                            "; name a process in the host PID namespace with --host-pid"
                        }
                    ),
                });
            }
            let status = status.map_err(|e| ScanError::HostPidns {
                reason: format!(
                    "cannot read {} ({}) nor {} ({})",
                    link_err.path.display(),
                    link_err.kind,
                    e.path.display(),
                    e.kind
                ),
            })?;
            match status.in_procfs_pidns() {
                Some(true) => {
                    let (inode, inode_source_pid) = match pids {
                        Some(pids) => learn_inode(proc, host_pid, pids),
                        None => learn_inode(proc, host_pid, &proc.pids()?),
                    };
                    Ok(HostPidns {
                        inode,
                        method: HostMethod::Nspid,
                        host_pid,
                        inode_source_pid,
                        procfs_own: true,
                    })
                }
                Some(false) => Err(ScanError::HostPidns {
                    reason: format!(
                        "cannot read {} ({}), and PID {host_pid} is not in the proc root's own PID namespace, so NSpid cannot stand in",
                        link_err.path.display(),
                        link_err.kind
                    ),
                }),
                None => Err(ScanError::HostPidns {
                    reason: format!(
                        "cannot read {} ({}), and {} has no NSpid line (Linux 4.1 or later has one)",
                        link_err.path.display(),
                        link_err.kind,
                        proc.file(host_pid, "status").display()
                    ),
                }),
            }
        }
    }
}

/// Finds the inode of the proc root's own PID namespace through any process
/// in it whose link is readable (kernel threads usually are).
fn learn_inode(proc: &ProcRoot, skip: u32, pids: &[u32]) -> (Option<u64>, Option<u32>) {
    const ATTEMPTS: usize = 64;
    // Our own link is readable without CAP_SYS_PTRACE; try it first.
    let own = proc.self_pid();
    let others = pids
        .iter()
        .copied()
        .filter(|&p| p != skip && Some(p) != own)
        .take(ATTEMPTS);
    for pid in own.into_iter().chain(others) {
        let Ok(inode) = proc.ns_inode(pid, "pid") else {
            continue;
        };
        if matches!(proc.status(pid), Ok(s) if s.in_procfs_pidns() == Some(true)) {
            return (Some(inode), Some(pid));
        }
    }
    (None, None)
}

/// Whether `pid` lives in the host PID namespace.
pub(super) fn pidns_fact(proc: &ProcRoot, host: &HostPidns, pid: u32) -> PidnsFact {
    let link = proc.ns_inode(pid, "pid");
    match (&link, host.inode) {
        (Ok(inode), Some(h)) if *inode == h => {
            return PidnsFact::InHost {
                inode: Some(*inode),
                method: Method::NsLink,
            };
        }
        (Ok(inode), Some(_)) => {
            return PidnsFact::Elsewhere {
                inode: Some(*inode),
            };
        }
        // A live process's link only disappears with the process; an evidence
        // tree may simply lack it, which NSpid can make up for.
        (Err(e), _) if e.kind == ReadErrorKind::Vanished && !proc.exists(pid) => {
            return PidnsFact::Vanished;
        }
        _ => {}
    }
    // The link alone cannot decide; NSpid can when the host namespace is the proc root's own.
    let inode = link.as_ref().ok().copied();
    if !host.procfs_own {
        return match link {
            Err(e) => PidnsFact::Unknown(e),
            Ok(_) => PidnsFact::Unknown(ReadError::malformed(
                proc.file(pid, "ns/pid"),
                "host inode unknown",
            )),
        };
    }
    match proc.status(pid) {
        Ok(s) => match s.in_procfs_pidns() {
            Some(true) => PidnsFact::InHost {
                inode,
                method: Method::Nspid,
            },
            Some(false) => PidnsFact::Elsewhere { inode },
            None => PidnsFact::Unknown(link.err().unwrap_or_else(|| {
                ReadError::malformed(proc.file(pid, "status"), "no NSpid line")
            })),
        },
        Err(e) if e.kind == ReadErrorKind::Vanished && !proc.exists(pid) => PidnsFact::Vanished,
        Err(e) => PidnsFact::Unknown(link.err().unwrap_or(e)),
    }
}

/// Where one process lives, as far as its links and `NSpid` tell.
pub(super) enum PidnsFact {
    InHost { inode: Option<u64>, method: Method },
    Elsewhere { inode: Option<u64> },
    Unknown(ReadError),
    Vanished,
}

/// The host's mount namespace and root directory: what a container process
/// differs from the host in, whatever its cgroup. Read from the host PID's
/// own links, else from kthreadd's (PID 2 lives in the initial namespaces
/// and shares the kernel's initial filesystem context with PID 1, so its
/// root is the host's), else, for the root only, from pidns's own process
/// when it is in the host's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIdentity {
    /// The host's mount namespace inode (`mnt:[N]`).
    pub mnt_ns: Option<u64>,
    /// The device and inode of the host's root directory.
    pub root: Option<FileId>,
}

impl HostIdentity {
    pub fn find(proc: &ProcRoot, host: &HostPidns) -> HostIdentity {
        let kthread = kernel_thread(proc);
        let candidates: Vec<u32> = std::iter::once(host.host_pid).chain(kthread).collect();
        let mnt_ns = candidates
            .iter()
            .find_map(|&pid| proc.ns_inode(pid, "mnt").ok());
        let own = proc
            .self_pid()
            .filter(|&me| mnt_ns.is_some() && proc.ns_inode(me, "mnt").ok() == mnt_ns);
        let root = candidates
            .iter()
            .chain(own.iter())
            .find_map(|&pid| proc.root_id(pid).ok());
        HostIdentity { mnt_ns, root }
    }

    /// Both facts known: container-like processes can be told from the host's.
    pub fn usable(&self) -> bool {
        self.mnt_ns.is_some() && self.root.is_some()
    }
}

/// kthreadd: PID 2 in the initial PID namespace, child of PID 0.
pub fn kernel_thread(proc: &ProcRoot) -> Option<u32> {
    let s = proc.status(2).ok()?;
    (s.name.as_deref() == Some("kthreadd") && s.ppid == Some(0)).then_some(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Tree;

    fn host_pidns(host_pid: u32) -> HostPidns {
        HostPidns {
            inode: Some(4026531836),
            method: HostMethod::NsLink,
            host_pid,
            inode_source_pid: None,
            procfs_own: true,
        }
    }

    #[test]
    fn the_host_identity_from_pid_1_else_kthreadd() {
        let t = Tree::new();
        let hostroot = t.path().join("hostroot");
        std::fs::create_dir(&hostroot).unwrap();
        t.pid(1)
            .status("init", 0)
            .ns("mnt", 4026531832)
            .root(&hostroot);
        t.pid(2).status("kthreadd", 0).ns("mnt", 4026531840);
        let proc = t.proc();
        let id = HostIdentity::find(&proc, &host_pidns(1));
        assert_eq!(id.mnt_ns, Some(4026531832));
        assert_eq!(id.root, proc.root_id(1).ok());
        assert!(id.usable());

        // PID 1's links and root unreadable, as on this machine kind: kthreadd's
        std::fs::remove_file(t.path().join("1/ns/mnt")).unwrap();
        std::fs::remove_file(t.path().join("1/root")).unwrap();
        t.pid(2).root(&hostroot);
        let id = HostIdentity::find(&proc, &host_pidns(1));
        assert_eq!(id.mnt_ns, Some(4026531840));
        assert_eq!(id.root, proc.root_id(2).ok());

        // a tree without roots: the mount namespace alone is not enough
        std::fs::remove_file(t.path().join("2/root")).unwrap();
        let id = HostIdentity::find(&proc, &host_pidns(1));
        assert!(!id.usable());
        // a process named kthreadd with a parent is not kthreadd
        t.pid(2).status("kthreadd", 1);
        assert_eq!(kernel_thread(&proc), None);
    }
}
