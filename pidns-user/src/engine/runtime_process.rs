//! Runtime processes in a container's cgroup: which names runtimes' own
//! processes have, and proof from facts a container cannot forge that a
//! process so named really is the runtime's.

use super::Placement;
use crate::{
    parse::{cgroup, layout::Runtime},
    procfs::ProcRoot,
};

/// Whether a process is *named* like a runtime's (`comm`, at most 15 bytes as
/// the kernel keeps it): runc's setup stages `runc:[0:PARENT]` and
/// `runc:[1:CHILD]` (`runc:[2:INIT]` becomes the container's init and is a
/// container process), OCI runtimes, shims and monitors.
///
/// A name is no proof: any process can rename itself. The scan counts a
/// runtime-named process in a container's cgroup as the runtime's only when
/// [`verify_runtime_process`] confirms it from facts the container cannot
/// forge.
pub fn is_runtime_process(comm: &str) -> bool {
    const EXACT: [&str; 9] = [
        "runc",
        "runc:[0:PARENT]",
        "runc:[1:CHILD]",
        "crun",
        "youki",
        "conmon",
        "lxc-start",
        "systemd-nspawn",
        "runsc",
    ];
    EXACT.contains(&comm)
        || is_setup_stage(comm)
        || comm.starts_with("containerd-shim")
        || comm.starts_with("runsc-")
}

/// OCI runtime command-line tools: the parent of every setup stage they run
/// in a container's cgroup (runc clones its stages with `CLONE_PARENT`, so all
/// of them are the CLI's children).
const OCI_RUNTIME_CLIS: [&str; 6] = ["runc", "docker-runc", "crun", "krun", "youki", "runsc"];

/// The names an OCI runtime's setup process has while it sits in the
/// container's cgroup before the container's own program runs: the runtime's
/// name (its memfd re-exec), `exe` (started through `/proc/self/exe`) and
/// runc's and youki's numbered stages, except the last (`…INIT]`), which is
/// the container's init.
fn is_setup_stage(comm: &str) -> bool {
    if OCI_RUNTIME_CLIS.contains(&comm) || comm == "exe" {
        return true;
    }
    ["runc:[", "youki:["].iter().any(|p| comm.starts_with(p)) && !comm.contains("INIT")
}

/// Why a runtime-named process in a container's cgroup is not (provably) the runtime's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    /// Its own or its parent's `status` or `cgroup` could not be read.
    Unreadable(String),
    /// Its parent is inside the container's cgroup: it was forked by the container.
    ParentInside { ppid: u32 },
    /// Its parent is not what runs this kind of process.
    ParentNotRuntime { ppid: u32, parent: String },
    /// Runtimes never run this process in a container's cgroup (shims and
    /// monitors live in cgroups of their own).
    NotInContainerCgroups,
}

impl std::fmt::Display for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unverified::Unreadable(what) => write!(f, "{what} is unreadable"),
            Unverified::ParentInside { ppid } => {
                write!(f, "its parent {ppid} is inside the container's cgroup")
            }
            Unverified::ParentNotRuntime { ppid, parent } => {
                write!(f, "its parent {ppid} ({parent}) is not a runtime")
            }
            Unverified::NotInContainerCgroups => {
                f.write_str("runtimes run no such process in a container's cgroup")
            }
        }
    }
}

/// Confirms that a process in `placement`'s container cgroup is a runtime's
/// own, from facts a process in that cgroup cannot forge:
///
/// - an OCI runtime's setup stage (`runc`, `runc:[0:PARENT]`, `runc:[1:CHILD]`,
///   `crun`, …) whose parent is an OCI runtime CLI (`runc create`/`exec`)
///   *outside* the container's cgroup. A container's init has a shim or
///   monitor as parent, and what it forks has parents inside the cgroup;
///   orphans go to a subreaper (the shim) or PID 1. Nothing in the cgroup can
///   rename a process outside it.
/// - systemd-nspawn's supervisor, which shares `systemd-nspawn@<name>.service`
///   with the payload where systemd makes no `payload`/`supervisor`
///   sub-cgroups (legacy and hybrid hierarchies, systemd before v254): named
///   `systemd-nspawn`, in an nspawn container, started by a `systemd`
///   service manager outside the container's cgroup.
///
/// Shims, conmon and LXC's monitor live in cgroups of their own in every
/// layout pidns knows (`crio-conmon-*`, `libpod-conmon-*`, `/libpod_parent/conmon`,
/// `lxc.monitor.*`, the daemon's cgroup), so one in a container's cgroup is
/// not verified. Anything unverified is a container process.
pub fn verify_runtime_process(
    proc: &ProcRoot,
    pid: u32,
    placement: &Placement,
) -> Result<(), Unverified> {
    let status = proc
        .status(pid)
        .map_err(|e| Unverified::Unreadable(e.path.display().to_string()))?;
    let name = status.name.as_deref().unwrap_or_default();
    let expected_parents: &[&str] = if is_setup_stage(name) {
        &OCI_RUNTIME_CLIS
    } else if name == "systemd-nspawn" && placement.key.runtime == Runtime::SystemdNspawn {
        &["systemd"]
    } else {
        return Err(Unverified::NotInContainerCgroups);
    };
    let ppid = status.ppid.filter(|&p| p > 0 && p != pid).ok_or_else(|| {
        Unverified::Unreadable(format!("{}'s parent", proc.file(pid, "status").display()))
    })?;
    // A lossily decoded path cannot be compared byte for byte.
    if placement.cgroup.contains(char::REPLACEMENT_CHARACTER) {
        return Err(Unverified::Unreadable(format!(
            "the container's cgroup path {:?}",
            placement.cgroup
        )));
    }
    let mut buf = Vec::new();
    proc.read_into(ppid, "cgroup", &mut buf)
        .map_err(|e| Unverified::Unreadable(e.path.display().to_string()))?;
    match cgroup::any_within(&buf, placement.cgroup.as_bytes()) {
        Some(false) => {}
        Some(true) => return Err(Unverified::ParentInside { ppid }),
        None => {
            return Err(Unverified::Unreadable(
                proc.file(ppid, "cgroup").display().to_string(),
            ));
        }
    }
    let parent = proc
        .status(ppid)
        .map_err(|e| Unverified::Unreadable(e.path.display().to_string()))?
        .name
        .unwrap_or_default();
    if !expected_parents.contains(&parent.as_str()) {
        return Err(Unverified::ParentNotRuntime { ppid, parent });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_processes() {
        for c in [
            "runc",
            "runc:[0:PARENT]",
            "runc:[1:CHILD]",
            "containerd-shim",
            "conmon",
            "lxc-start",
        ] {
            assert!(is_runtime_process(c), "{c}");
        }
        for c in ["runc:[2:INIT]", "sleep", "sh", "docker-init", ""] {
            assert!(!is_runtime_process(c), "{c}");
        }
    }

    #[test]
    fn setup_stages() {
        for c in [
            "runc",
            "runc:[0:PARENT]",
            "runc:[1:CHILD]",
            "exe",
            "crun",
            "youki",
            "youki:[1:INTER]",
        ] {
            assert!(is_setup_stage(c), "{c}");
        }
        // the container's init, shims and monitors are no setup stage
        for c in [
            "runc:[2:INIT]",
            "youki:[2:INIT]",
            "conmon",
            "containerd-shim",
            "lxc-start",
            "systemd-nspawn",
            "runsc-gofer",
            "sleep",
        ] {
            assert!(!is_setup_stage(c), "{c}");
        }
    }
}
