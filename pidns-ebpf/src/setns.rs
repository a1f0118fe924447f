//! setns programs: the native syscall's exit tracepoint and, on request,
//! the raw `sys_exit` for the 32-bit compat entry. Both end in [`on_setns`].

use core::ptr::read_volatile;

use aya_ebpf::{
    helpers::generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
    programs::{BtfTracePointContext, TracePointContext},
};
use pidns_ebpf::{
    COMPAT_NR_SETNS, NS_FLAGS, NS_PID, NS_TYPES, TS_COMPAT, TaskState, class, flags, kind, magic,
    stream, task,
};

use crate::{
    builder::EventBuilder,
    cgroup::{Attributed, current_attributed},
    config::off,
    enforce,
    kernel::{
        current_fd_file, current_ids, current_in_host_pidns, current_namespaces, current_task,
        is_host_pidns, ns_type, pidfd_pid, read, task_ns_inum,
    },
    maps::{
        OWN_NS, SETNS_CALLERS, TASKS, budget_key, drops_setns, host_ns, host_ns_overflowed,
        task_state, within_budget,
    },
    process::learn_created_namespaces,
};

/// What every namespace joined by one setns call shares.
struct Call {
    cg: u64,
    class: pidns_ebpf::CgroupClass,
    tgid: u32,
    tid: u32,
    ret: i64,
    flags: u32,
    target_pid: u32,
    /// The caller's namespaces before the call, by [`NS_TYPES`] index (0
    /// where unknown): at syscall exit a successful setns has already
    /// switched them.
    before: [u32; NS_TYPES.len()],
    /// `--enforce setns` killed the caller (once per call, whatever the
    /// number of namespaces a pidfd joined).
    killed: bool,
}

/// `sys_enter_setns`: the caller's namespaces before the call, kept for
/// its exit (which sees them switched when the call succeeded). A call
/// seccomp refuses never gets here, and changes nothing.
pub fn on_setns_enter() -> Option<()> {
    let (tgid, tid) = current_ids();
    if drops_setns(current_attributed(tgid).class.class) {
        return None;
    }
    let _ = SETNS_CALLERS.insert(tid, current_namespaces(), 0);
    Some(())
}

/// `setns(fd, nstype)` by a process in a container (or not yet classified)
/// cgroup that is not a runtime's setup process. The fd is a namespace file
/// (one namespace) or a pidfd (the target's namespace of each type asked
/// for, read from its `nsproxy` here): each namespace is judged alike.
/// Dropped here: a namespace the caller is already in (a no-op, whatever it
/// is), and one that is not in `HOST_NS` (neither the host's own, nor held
/// or created by a host process): a container flooding setns into its own
/// namespaces reaches nothing. The rest goes to the findings ring, within
/// the container's budget. Handled at syscall exit, which knows the result
/// and also fires when seccomp refused the call before `sys_enter` (Docker's
/// default profile does, without CAP_SYS_ADMIN); the fd is still open then.
#[inline(always)]
fn on_setns(fd: u64, nsflags: u64, ret: i64, mut extra: u32) -> Option<()> {
    let (tgid, tid) = current_ids();
    // A container process that left its container's cgroup keeps it.
    let Attributed { cg, class, by_task } = current_attributed(tgid);
    if drops_setns(class.class) {
        return None;
    }
    if by_task {
        extra |= flags::BY_TASK;
    }
    if task_state(tgid).state == task::RUNTIME_SETUP {
        return None;
    }
    let file = current_fd_file(fd)?;
    let inode: u64 = read(file, off!(file_f_inode))?;
    let sb: u64 = read(inode, off!(inode_i_sb))?;
    let magic: u64 = read(sb, off!(super_block_s_magic))?;
    // SAFETY: the value is copied out immediately.
    let before = match unsafe { SETNS_CALLERS.get(tid) }.copied() {
        Some(before) => {
            let _ = SETNS_CALLERS.remove(tid);
            before
        }
        // Refused (by seccomp, before sys_enter): nothing switched.
        None if ret != 0 => current_namespaces(),
        // No record of before: no call is taken for a no-op.
        None => [0; NS_TYPES.len()],
    };
    let mut call = Call {
        cg,
        class,
        tgid,
        tid,
        ret,
        flags: extra,
        target_pid: 0,
        before,
        killed: false,
    };
    if current_in_host_pidns() {
        call.flags |= flags::CALLER_HOST_PIDNS;
    }
    if magic == magic::NSFS {
        let ns: u64 = read(inode, off!(inode_i_private))?;
        let inum: u32 = read(ns, off!(ns_common_inum))?;
        let nstype = ns_type(ns)?;
        let index = NS_TYPES.iter().position(|(flag, _)| *flag == nstype)?;
        judge(&mut call, index, inum);
        return Some(());
    }
    let pid = pidfd_pid(file, inode, magic)?;
    let nr: i32 = read(pid, off!(pid_numbers) + off!(upid_nr))?;
    // pid->tasks[PIDTYPE_PID].first is the task's pid_links[PIDTYPE_PID].
    let first: u64 = read(pid, off!(pid_tasks))?;
    let target = first.checked_sub(u64::from(off!(task_pid_links)))?;
    call.flags |= flags::PIDFD;
    call.target_pid = nr as u32;
    let asked = (nsflags as u32) & NS_FLAGS;
    for (index, (flag, _)) in NS_TYPES.iter().enumerate() {
        if asked & flag != 0
            && let Some(inum) = task_ns_inum(target, index, false)
        {
            judge(&mut call, index, inum);
        }
    }
    Some(())
}

/// One namespace a setns call joined (or tried to).
#[inline(always)]
fn judge(call: &mut Call, index: usize, inum: u32) -> Option<()> {
    let nstype = NS_TYPES[index].0;
    if call.before[index] == inum {
        return None; // already there: a no-op
    }
    let entry = host_ns(inum);
    let mut ev_flags = call.flags;
    let key = budget_key(call.cg, &call.class);
    // SAFETY: the value is copied out immediately.
    let own = unsafe { OWN_NS.get(key) }.copied();
    if entry.provenance == 0 {
        if !host_ns_overflowed() {
            return None; // not the host's
        }
        ev_flags |= flags::UNFILTERED;
    }
    let ok = u32::from(call.ret == 0);
    if ok == 1
        && index == NS_PID
        && ev_flags & flags::CALLER_HOST_PIDNS == 0
        && is_host_pidns(inum)
        && call.class.class == class::CONTAINER
    {
        // Its children will live in the host PID namespace: report them.
        let _ = TASKS.insert(call.tgid, TaskState::anchored(call.cg), 0);
    }
    match own {
        // The container's own (a `--network=host` container's net, a setns
        // back home): no escape, nothing to kill or report.
        Some(own) if own[index] == inum => return None,
        Some(_) => ev_flags |= flags::OWN_NS_KNOWN,
        None => {}
    }
    if ok == 1
        && ev_flags & flags::UNFILTERED == 0
        && (call.killed || enforce::setns(call.class.class, &entry))
    {
        call.killed = true;
        ev_flags |= flags::ENFORCED;
    }
    if !within_budget(key, call.cg, kind::SETNS, ok, call.tgid, nstype) {
        return None;
    }
    let mut e = EventBuilder::new(
        stream::FINDINGS,
        kind::SETNS,
        call.class.class,
        call.cg,
        call.tgid,
        call.tid,
    )?;
    e.add_flags(ev_flags);
    e.nstype(nstype);
    e.ns_inum(inum);
    e.ret(call.ret as i32);
    e.arg(u64::from(entry.provenance));
    e.target(call.target_pid, 0);
    e.current_comm();
    e.submit();
    Some(())
}

/// `unshare(flags)` at its exit: namespaces a process in a host cgroup made
/// for itself (a service's private mount namespace) are the host's.
pub fn on_unshare_exit(ctx: &TracePointContext) -> Option<()> {
    // SAFETY: reads inside the tracepoint record.
    let ret: i64 = unsafe { ctx.read_at(off!(syscall_exit_ret) as usize) }.ok()?;
    if ret != 0 {
        return None;
    }
    // SAFETY: the helper takes the current task; the result is only read
    // through bpf_probe_read_kernel.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as u64;
    let unshared: u64 = read(regs, off!(pt_regs_arg0))?;
    let unshared = (unshared as u32) & NS_FLAGS;
    if unshared != 0 {
        learn_created_namespaces(current_task(), unshared, true);
    }
    Some(())
}

/// `sys_exit_setns`: the arguments are read from the saved user registers.
pub fn on_setns_exit(ctx: &TracePointContext) -> Option<()> {
    // SAFETY: the helper takes the current task; the result is only read
    // through bpf_probe_read_kernel.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as u64;
    let fd: u64 = read(regs, off!(pt_regs_arg0))?;
    let nsflags: u64 = read(regs, off!(pt_regs_arg1))?;
    // SAFETY: reads inside the tracepoint record.
    let ret: i64 = unsafe { ctx.read_at(off!(syscall_exit_ret) as usize) }.ok()?;
    on_setns(fd & 0xffff_ffff, nsflags & 0xffff_ffff, ret, 0)
}

/// `sys_exit(regs, ret)`, for every syscall: everything but the compat
/// setns is dropped at the first comparison.
pub fn on_compat_exit(ctx: &BtfTracePointContext) -> Option<()> {
    let regs: *const u8 = ctx.arg(0);
    // A direct load: `regs` is a BTF pointer the verifier checks the access
    // against (`pt_regs.orig_ax`), and this runs for every syscall.
    // SAFETY: in bounds of struct pt_regs; the verifier guards the load.
    let nr = unsafe { read_volatile(regs.add(off!(pt_regs_orig_ax) as usize).cast::<u64>()) };
    if nr != COMPAT_NR_SETNS {
        return None;
    }
    let regs = regs as u64;
    let status: u32 = read(current_task(), off!(task_thread_info_status))?;
    if status & TS_COMPAT == 0 {
        return None; // a native syscall 346, which x86_64 does not have
    }
    let ret: i64 = ctx.arg(1);
    let fd: u64 = read(regs, off!(pt_regs_compat_arg0))?;
    let nsflags: u64 = read(regs, off!(pt_regs_compat_arg1))?;
    on_setns(fd & 0xffff_ffff, nsflags & 0xffff_ffff, ret, flags::COMPAT)
}
