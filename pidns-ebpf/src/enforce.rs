//! `--enforce`: killing, from the probe, the current task when it is proven
//! a non-allowed container's process doing what the mode forbids.
//!
//! `bpf_send_signal(SIGKILL)` from a tracepoint signals the current task's
//! whole thread group; the kill is pending before the program returns and
//! is acted on at the task's return to user space, so the task never runs
//! another instruction of its own. Only the current task can be signalled
//! this way: a new child dies at its own return from the clone
//! ([`on_fork_child`]), through the `DOOMED` map its parent's `task_newtask`
//! filled.
//!
//! What is proven (anything else is left alone, reported only):
//! - the cgroup is one user space classified as a container's
//!   (`class::CONTAINER`), not allowed for what is enforced (`ALLOW_SHARE`
//!   for host-pidns; an `ALLOW_SETNS` container's setns never gets here);
//!   an unclassified cgroup is not proven;
//! - the process is not a runtime's setup process (`task::RUNTIME_SETUP`,
//!   inherited by its children: runc/crun init; only a host process marks
//!   one, so a container cannot shield its own processes this way);
//! - the process is not pidns itself ([`Config::self_tgid`](pidns_ebpf::Config)).

use aya_ebpf::{
    helpers::generated::bpf_send_signal,
    macros::map,
    maps::{LruHashMap, PerCpuArray},
};
use pidns_ebpf::{HostNs, class, enforce, host_ns, task};

use crate::{
    config::conf,
    kernel::{current_cgroup, current_ids, current_in_host_pidns},
    maps::{cgroup_class, task_state},
};

/// `SIGKILL`.
const SIGKILL: u32 = 9;

/// Kills by mode ([`enforce::ALL`] order), per CPU.
#[map]
pub static ENFORCED: PerCpuArray<u64> = PerCpuArray::with_max_entries(enforce::SLOTS as u32, 0);

/// New children (pid) doomed by their parent's `task_newtask`, until their
/// own return from the clone kills them.
#[map]
pub static DOOMED: LruHashMap<u32, u32> = LruHashMap::with_max_entries(4096, 0);

/// Whether `mode` is enforced.
#[inline(always)]
pub fn enabled(mode: u32) -> bool {
    conf!(enforce) & mode != 0
}

/// Whether a process of a cgroup of `class` (the current one or, for a
/// child, its parent's), with the `TASKS` state of `tgid`, is proven a
/// non-allowed container's process for the host-pidns mode. The caller has
/// established that it lives in the host PID namespace.
#[inline(always)]
pub fn host_pidns_target(class: u32, tgid: u32) -> bool {
    enabled(enforce::HOST_PIDNS)
        && class & class::BASE == class::CONTAINER
        && class & class::ALLOW_SHARE == 0
        && task_state(tgid).state != task::RUNTIME_SETUP
        && tgid != conf!(self_tgid)
}

/// Kills the current process (its thread group) under `mode`; whether the
/// signal went out.
#[inline(always)]
pub fn kill_current(mode: u32) -> bool {
    let (tgid, _) = current_ids();
    if tgid == conf!(self_tgid) {
        return false;
    }
    // SAFETY: no memory access; signals the current task's thread group.
    if unsafe { bpf_send_signal(SIGKILL) } != 0 {
        return false;
    }
    count(mode);
    true
}

/// host-pidns: the current task (in the host PID namespace, in a cgroup of
/// `class`) is killed if it is proven a non-allowed container's process.
#[inline(always)]
pub fn host_pidns_current(class: u32, tgid: u32) -> bool {
    host_pidns_target(class, tgid) && kill_current(enforce::HOST_PIDNS)
}

/// host-pidns: a child just created in the host PID namespace by a process
/// of a cgroup of `class` dies at its return from the clone. Whether it
/// was doomed.
#[inline(always)]
pub fn doom_child(class: u32, parent: u32, child: u32) -> bool {
    host_pidns_target(class, parent) && DOOMED.insert(child, enforce::HOST_PIDNS, 0).is_ok()
}

/// setns: a completed setns into a namespace of `HOST_NS` entry `entry`,
/// by a process of a cgroup of `class` that is not a runtime's setup
/// process (the caller dropped those, and `ALLOW_SETNS` containers), is
/// killed when the namespace is a verified host one (`OWN` or `HELD`; a
/// `CREATED` entry is unproven) and the cgroup a classified container's.
#[inline(always)]
pub fn setns(class: u32, entry: &HostNs) -> bool {
    enabled(enforce::SETNS)
        && class & class::BASE == class::CONTAINER
        && class & class::ALLOW_SETNS == 0
        && matches!(entry.provenance, host_ns::OWN | host_ns::HELD)
        && kill_current(enforce::SETNS)
}

/// `sys_exit_{clone,clone3,fork,vfork}`: the new process's own return from
/// the clone (ret 0; threads are their process's business) kills it when
/// its parent doomed it and it is, here in its own context, still proven a
/// non-allowed container's process in the host PID namespace: an entry
/// left behind by a child that never came this way (a 32-bit `int 0x80`
/// fork, which these tracepoints do not see) cannot kill another process
/// that later gets its pid.
#[inline(always)]
pub fn on_fork_child(ret: i64) -> Option<()> {
    if ret != 0 {
        return None;
    }
    let (tgid, tid) = current_ids();
    if tgid != tid {
        return None;
    }
    // SAFETY: the value is copied out immediately.
    let mode = unsafe { DOOMED.get(tgid) }.copied()?;
    let _ = DOOMED.remove(tgid);
    if mode == enforce::HOST_PIDNS
        && current_in_host_pidns()
        && host_pidns_target(cgroup_class(current_cgroup()).class, tgid)
    {
        kill_current(mode);
    }
    Some(())
}

fn count(mode: u32) {
    let slot = if mode == enforce::SETNS { 0 } else { 1 };
    if let Some(n) = ENFORCED.get_ptr_mut(slot) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *n += 1 };
    }
}
