//! setns programs: the native syscall's exit tracepoint and, on request,
//! the raw `sys_exit` for the 32-bit compat entry. Both end in [`on_setns`].

use core::ptr::read_volatile;

use aya_ebpf::{
    helpers::generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
    programs::{BtfTracePointContext, TracePointContext},
};
use pidns_ebpf::{
    CLONE_NEWPID, COMPAT_NR_SETNS, NS_FLAGS, TS_COMPAT, TaskState, class, flags, kind, magic, task,
};

use crate::{
    builder::EventBuilder,
    kernel::{
        current_fd_file, current_ids, current_in_host_pidns, current_task, is_host_pidns, ns_type,
        pidfd_pid, read, task_cgroup_id, task_pidns_inum,
    },
    maps::{TASKS, off, task_state, watched_cgroup},
};

/// `setns(fd, nstype)` by a process in a container (or not yet classified)
/// cgroup that is not a runtime's setup process, whatever the target: user
/// space tells the host's namespaces from the container's own. The fd is a
/// namespace file (one event, its type and inode) or a pidfd (one event with
/// every type asked for, and the target process). Handled at syscall exit,
/// which knows the result and also fires when seccomp refused the call
/// before `sys_enter` (Docker's default profile does, without
/// CAP_SYS_ADMIN); the fd is still open then.
#[inline(always)]
fn on_setns(fd: u64, nsflags: u64, ret: i64, extra: u32) -> Option<()> {
    let (cg, class) = watched_cgroup()?;
    let (tgid, tid) = current_ids();
    if task_state(tgid).state == task::RUNTIME_SETUP {
        return None;
    }
    let file = current_fd_file(fd)?;
    let inode: u64 = read(file, off!(file_f_inode))?;
    let sb: u64 = read(inode, off!(inode_i_sb))?;
    let magic: u64 = read(sb, off!(super_block_s_magic))?;
    let mut ev_flags = extra;
    let (nstype, ns_inum, target_pid, target_cgroup, joins_host_pidns);
    if magic == magic::NSFS {
        let ns: u64 = read(inode, off!(inode_i_private))?;
        let inum: u32 = read(ns, off!(ns_common_inum))?;
        nstype = ns_type(ns)?;
        ns_inum = inum;
        target_pid = 0;
        target_cgroup = 0;
        joins_host_pidns = nstype == CLONE_NEWPID && is_host_pidns(inum);
    } else {
        let pid = pidfd_pid(file, inode, magic)?;
        let nr: i32 = read(pid, off!(pid_numbers) + off!(upid_nr))?;
        // pid->tasks[PIDTYPE_PID].first is the task's pid_links[PIDTYPE_PID].
        let first: u64 = read(pid, off!(pid_tasks)).unwrap_or(0);
        let target = if first == 0 {
            0
        } else {
            first - u64::from(off!(task_pid_links))
        };
        nstype = (nsflags as u32) & NS_FLAGS;
        ns_inum = 0;
        target_pid = nr as u32;
        target_cgroup = task_cgroup_id(target).unwrap_or(0);
        joins_host_pidns =
            nstype & CLONE_NEWPID != 0 && task_pidns_inum(target).is_some_and(is_host_pidns);
        ev_flags |= flags::PIDFD;
    }
    if current_in_host_pidns() {
        ev_flags |= flags::CALLER_HOST_PIDNS;
    } else if ret == 0 && joins_host_pidns && class == class::CONTAINER {
        // Its children will live in the host PID namespace: report them.
        let _ = TASKS.insert(tgid, TaskState::new(task::CONTAINER_PROCESS), 0);
    }
    let mut e = EventBuilder::new(kind::SETNS, class, cg, tgid, tid)?;
    e.add_flags(ev_flags);
    e.nstype(nstype);
    e.ns_inum(ns_inum);
    e.ret(ret as i32);
    e.target(target_pid, target_cgroup);
    e.current_comm();
    e.submit();
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
