//! `--enforce`: which modes are in force, what the probes must have attached
//! for them, and the agent's own kill of a process the kernel could not
//! prove in time.
//!
//! The probes kill in the kernel (`pidns-ebpf/src/enforce.rs`). Some
//! host-pidns findings reach user space without that kill: the process's
//! cgroup was not classified in the kernel yet, another process moved it
//! into the container's cgroup (only the current task can be signalled from
//! a probe), or it was running when the agent started (`--enforce-existing`).
//! The agent kills those itself, after proving them again from /proc
//! through a pidfd: the pidfd pins the process, /proc then says that it
//! still lives in the host PID namespace and in the container's cgroup, and
//! the signal goes through the pidfd, so a pid reused in between is never
//! hit. The finding then says `killed_by_agent`: the process may have run.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use pidns_ebpf::{enforce, programs};

use crate::{
    parse::cgroup,
    procfs::ProcRoot,
    report::{Enforced, Finding, Trigger},
};

/// `--enforce` and `--enforce-existing`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enforce {
    /// [`enforce`] bits.
    pub modes: u32,
    /// Kill the host-PID processes of non-allowed containers found running at
    /// start-up (host-pidns mode).
    pub existing: bool,
}

impl Enforce {
    pub fn any(self) -> bool {
        self.modes != 0
    }

    pub fn has(self, mode: u32) -> bool {
        self.modes & mode != 0
    }

    /// The modes in force, as `--enforce` spells them.
    pub fn names(self) -> Vec<&'static str> {
        enforce::ALL
            .iter()
            .filter(|(bit, _)| self.has(*bit))
            .map(|(_, name)| *name)
            .collect()
    }

    /// Why the probes as attached cannot carry the modes out, if they cannot.
    pub fn unmet(self, attached: &[String]) -> Option<String> {
        let needs: &[(u32, &str)] = &[
            (enforce::SETNS, programs::SYS_ENTER_SETNS),
            (enforce::SETNS, programs::SYS_EXIT_SETNS),
            (enforce::HOST_PIDNS, programs::SCHED_PROCESS_EXEC),
            (enforce::HOST_PIDNS, programs::TASK_NEWTASK),
            (enforce::HOST_PIDNS, programs::CGROUP_ATTACH_TASK),
            (enforce::HOST_PIDNS, programs::SYS_EXIT_FORK_CHILD),
            // The 32-bit entry (`int 0x80`) is a way around the setns
            // tracepoints: enforcing setns watches it too (see `compat_setns`).
            #[cfg(target_arch = "x86_64")]
            (enforce::SETNS, programs::SYS_EXIT_COMPAT_SETNS),
        ];
        let missing: Vec<String> = needs
            .iter()
            .filter(|(mode, program)| self.has(*mode) && !attached.iter().any(|a| a == program))
            .map(|(mode, program)| format!("{} needs {program}", mode_name(*mode)))
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "--enforce cannot be carried out: {} (not attached)",
                missing.join(", ")
            )
        })
    }

    /// Whether the agent itself kills this finding's process: host-pidns
    /// mode, the kernel did not, the process is still there to kill, and it
    /// is no start-up finding unless `--enforce-existing`.
    pub fn agent_kills(self, f: &Finding, at_start: bool) -> bool {
        self.has(enforce::HOST_PIDNS)
            && f.enforced.is_none()
            && !f.exited
            && f.trigger != Trigger::Setns
            && (!at_start || self.existing)
    }
}

fn mode_name(mode: u32) -> &'static str {
    enforce::ALL
        .iter()
        .find(|(bit, _)| *bit == mode)
        .map_or("?", |(_, name)| *name)
}

/// The agent's side of `--enforce` in the live loop.
pub struct AgentKills {
    pub enforce: Enforce,
    pub proc: ProcRoot,
    /// The host PID namespace's inode, if known.
    pub host_inode: Option<u64>,
    /// Findings now are the start-up scan's.
    pub starting: bool,
}

impl AgentKills {
    /// A finding on its way out: killed here if the kernel did not and it
    /// is proven again (said on stderr when it is not).
    pub fn finding(&self, f: &mut Finding) {
        if !self.enforce.agent_kills(f, self.starting) {
            return;
        }
        match kill_verified(&self.proc, f, self.host_inode) {
            Ok(done) => f.enforced = Some(done),
            Err(e) => eprintln!("pidns watch: --enforce host-pidns: {e}"),
        }
    }
}

/// Why the agent did not kill a process.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    #[error("pid {pid}: {what}: {source}")]
    Sys {
        pid: u32,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("pid {pid}: {why}; not killed")]
    Unproven { pid: u32, why: String },
}

/// Kills a finding's process after proving, through a pidfd, that it is
/// still a process of the finding's container in the host PID namespace
/// (`host_inode`) and not pidns itself. Returns [`Enforced::KilledByAgent`].
pub fn kill_verified(
    proc: &ProcRoot,
    f: &Finding,
    host_inode: Option<u64>,
) -> Result<Enforced, KillError> {
    let pid = f.at.pid;
    let unproven = |why: String| KillError::Unproven { pid, why };
    if pid == std::process::id() {
        return Err(unproven("pidns itself".into()));
    }
    let fd = pidfd_open(pid)?;
    let status = proc
        .status(pid)
        .map_err(|e| unproven(format!("status unreadable: {e}")))?;
    let in_host = match (status.nspid.as_deref(), host_inode) {
        (_, Some(host)) => proc.ns_inode(pid, "pid").ok() == Some(host),
        (Some(nspid), None) => nspid.len() == 1,
        (None, None) => false,
    };
    if !in_host {
        return Err(unproven("not in the host PID namespace".into()));
    }
    let own = &f.at.container.cgroup;
    let mut buf = Vec::new();
    proc.read_into(pid, "cgroup", &mut buf)
        .map_err(|e| unproven(format!("cgroup unreadable: {e}")))?;
    if !in_cgroup(&buf, own.as_bytes()) {
        return Err(unproven(format!(
            "its cgroup {} is not the container's {own}",
            String::from_utf8_lossy(cgroup::shown_path(&buf).unwrap_or_default())
        )));
    }
    pidfd_send_sigkill(&fd, pid)?;
    Ok(Enforced::KilledByAgent)
}

/// Whether a cgroup file puts the process in unified cgroup `own` or below.
/// Any unified line will do: a cgroup named with a newline adds lines of
/// its maker's choosing, but the kernel's own line is always there, so a
/// forged line can add a claim and never hide one.
fn in_cgroup(file: &[u8], own: &[u8]) -> bool {
    cgroup::parse(file).any(|l| l.is_unified() && within(l.path, own))
}

/// Whether cgroup `path` is `own` or below it.
fn within(path: &[u8], own: &[u8]) -> bool {
    !own.is_empty()
        && own != b"/"
        && path.starts_with(own)
        && (path.len() == own.len() || path[own.len()] == b'/')
}

fn pidfd_open(pid: u32) -> Result<OwnedFd, KillError> {
    // SAFETY: pidfd_open takes a pid and flags, and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(KillError::Sys {
            pid,
            what: "pidfd_open",
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_send_sigkill(fd: &OwnedFd, pid: u32) -> Result<(), KillError> {
    // SAFETY: pidfd_send_signal(fd, sig, info = NULL, flags = 0).
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(KillError::Sys {
            pid,
            what: "pidfd_send_signal",
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Envelope;

    fn finding(trigger: Trigger) -> Finding {
        Finding::new(trigger, Envelope::docker_abc(4242, "sh"))
    }

    #[test]
    fn modes_name_themselves_and_say_what_they_need() {
        let both = Enforce {
            modes: enforce::SETNS | enforce::HOST_PIDNS,
            existing: false,
        };
        assert_eq!(both.names(), ["setns", "host-pidns"]);
        assert!(Enforce::default().names().is_empty());
        assert_eq!(Enforce::default().unmet(&[]), None);
        let all: Vec<String> = programs::ALL.iter().map(|p| (*p).to_owned()).collect();
        assert_eq!(both.unmet(&all), None);
        let without_fork: Vec<String> = all
            .iter()
            .filter(|p| *p != programs::SYS_EXIT_FORK_CHILD)
            .cloned()
            .collect();
        let why = both.unmet(&without_fork).expect("unmet");
        assert!(
            why.contains("host-pidns needs sys_exit_fork_child"),
            "{why}"
        );
        let setns = Enforce {
            modes: enforce::SETNS,
            existing: false,
        };
        assert_eq!(setns.unmet(&without_fork), None);
        let why = setns.unmet(&[]).expect("unmet");
        assert!(why.contains("setns needs sys_exit_setns"), "{why}");
        #[cfg(target_arch = "x86_64")]
        {
            let without_compat: Vec<String> = all
                .iter()
                .filter(|p| *p != programs::SYS_EXIT_COMPAT_SETNS)
                .cloned()
                .collect();
            let why = setns.unmet(&without_compat).expect("int 0x80 unwatched");
            assert!(why.contains("setns needs sys_exit_compat_setns"), "{why}");
        }
    }

    #[test]
    fn the_agent_kills_only_what_the_kernel_did_not() {
        let host = Enforce {
            modes: enforce::HOST_PIDNS,
            existing: false,
        };
        let f = finding(Trigger::CgroupAttach);
        assert!(host.agent_kills(&f, false));
        // start-up findings only with --enforce-existing
        assert!(!host.agent_kills(&finding(Trigger::Scan), true));
        let existing = Enforce {
            existing: true,
            ..host
        };
        assert!(existing.agent_kills(&finding(Trigger::Scan), true));
        // a rescan's (the probes missed it) is killed
        assert!(host.agent_kills(&finding(Trigger::Scan), false));
        let mut killed = finding(Trigger::Exec);
        killed.enforced = Some(Enforced::Killed);
        assert!(!host.agent_kills(&killed, false));
        let mut gone = finding(Trigger::Fork);
        gone.exited = true;
        assert!(!host.agent_kills(&gone, false));
        // setns's caller is not in the host PID namespace itself
        assert!(!host.agent_kills(&finding(Trigger::Setns), false));
        let setns_only = Enforce {
            modes: enforce::SETNS,
            existing: true,
        };
        assert!(!setns_only.agent_kills(&f, false));
    }

    #[test]
    fn a_cgroup_is_the_containers_or_below_it() {
        assert!(within(b"/docker/abc", b"/docker/abc"));
        assert!(within(b"/docker/abc/sub", b"/docker/abc"));
        assert!(!within(b"/docker/abcd", b"/docker/abc"));
        assert!(!within(b"/docker", b"/docker/abc"));
        assert!(!within(b"/x", b"/"));
        assert!(!within(b"/x", b""));
    }

    #[test]
    fn a_forged_cgroup_line_does_not_spare_a_container_process() {
        let own = b"/docker/abc";
        assert!(in_cgroup(
            b"4:memory:/docker/abc\n0::/docker/abc/sub\n",
            own
        ));
        assert!(!in_cgroup(b"4:memory:/docker/abc\n0::/\n", own));
        // A process of the container in a v1 cgroup it named
        // "x\n0::/elsewhere": the kernel's own unified line still follows.
        let forged = b"4:memory:/docker/abc/x\n0::/elsewhere\n1:name=systemd:/\n0::/docker/abc\n";
        assert!(in_cgroup(forged, own));
    }

    #[test]
    fn a_process_outside_the_container_is_not_killed() {
        let pid = std::process::id();
        // this very process: refused before anything is opened
        let mut f = finding(Trigger::Exec);
        f.at.pid = pid;
        let proc = ProcRoot::open("/proc").expect("proc");
        assert!(matches!(
            kill_verified(&proc, &f, None),
            Err(KillError::Unproven { .. })
        ));
        // a live process (the parent, cargo's test runner) whose cgroup is not the container's
        let Ok(parent) = proc.status(pid).map(|s| s.ppid.unwrap_or(0)) else {
            return;
        };
        f.at.pid = parent;
        let r = kill_verified(&proc, &f, None);
        assert!(
            matches!(&r, Err(KillError::Unproven { why, .. }) if why.contains("not the container's")),
            "{r:?}"
        );
    }
}
