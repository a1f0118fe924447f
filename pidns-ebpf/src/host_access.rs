//! Host access programs: what a container process in the host PID
//! namespace does to a process outside its container. Signals, ptrace,
//! process_vm_readv/writev and pidfd_getfd are seen at their syscalls'
//! `sys_enter_<x>` (the arguments, and the caller: only a known container
//! process in the host PID namespace goes on) and `sys_exit_<x>` (the
//! result). The target task is found at the entry, while it exists: by its
//! number ([`task_by_pid`]) or its pidfd; for a process group or
//! `kill(-1)`, `signal_generate` names the first task reached outside the
//! caller's container. A target in the caller's own container is dropped
//! here.
//!
//! Cost for everyone else: the entry looks up the caller's cgroup, the exit
//! and `signal_generate` look up the calling thread in `ACCESS_PENDING`;
//! one map lookup each (an exit with EPERM and no entry, a call seccomp
//! refused, also the cgroup's). Nothing else runs.

use aya_ebpf::{
    helpers::generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
    programs::{BtfTracePointContext, TracePointContext},
};
use pidns_ebpf::{COMM_LEN, access, class, flags, task};

use crate::{
    config::off,
    firsts::report,
    kernel::{
        current_cgroup, current_fd_file, current_ids, current_in_host_pidns, current_task,
        pidfd_pid, read, task_cgroup_id,
    },
    maps::{ACCESS_PENDING, budget_key, cgroup_class, task_state},
    pending::Pending,
    pidlookup::task_by_pid,
};

/// Syscall numbers of [`access::SYSCALLS`], as the entry tracepoint's
/// `__syscall_nr` gives them.
#[cfg(not(bpf_target_arch = "aarch64"))]
mod nr {
    pub const KILL: i32 = 62;
    pub const TKILL: i32 = 200;
    pub const TGKILL: i32 = 234;
    pub const RT_SIGQUEUEINFO: i32 = 129;
    pub const RT_TGSIGQUEUEINFO: i32 = 297;
    pub const PTRACE: i32 = 101;
    pub const PROCESS_VM_READV: i32 = 310;
    pub const PROCESS_VM_WRITEV: i32 = 311;
}
#[cfg(bpf_target_arch = "aarch64")]
mod nr {
    pub const KILL: i32 = 129;
    pub const TKILL: i32 = 130;
    pub const TGKILL: i32 = 131;
    pub const RT_SIGQUEUEINFO: i32 = 138;
    pub const RT_TGSIGQUEUEINFO: i32 = 240;
    pub const PTRACE: i32 = 117;
    pub const PROCESS_VM_READV: i32 = 270;
    pub const PROCESS_VM_WRITEV: i32 = 271;
}
/// The same on every architecture (the unified table, 5.1+).
const NR_PIDFD_SEND_SIGNAL: i32 = 424;
const NR_PIDFD_GETFD: i32 = 438;
const PTRACE_TRACEME: u64 = 0;
const EPERM: i64 = 1;
const ESRCH: i64 = 3;

/// `syscalls:sys_enter_<x>` records: `__syscall_nr` at 8, then the
/// arguments, 8 bytes each, from 16.
#[inline(always)]
fn enter_arg(ctx: &TracePointContext, i: usize) -> Option<u64> {
    // SAFETY: reads inside the tracepoint record.
    unsafe { ctx.read_at::<u64>(16 + 8 * i) }.ok()
}

/// The current task's cgroup and class if it is a process of a known
/// container in the host PID namespace, and not a runtime's setup process.
#[inline(always)]
pub fn watched_actor() -> Option<(u64, pidns_ebpf::CgroupClass, u32, u32)> {
    let cg = current_cgroup();
    let class = cgroup_class(cg);
    if class.class & class::BASE != class::CONTAINER || !current_in_host_pidns() {
        return None;
    }
    let (tgid, tid) = current_ids();
    if task_state(tgid).state == task::RUNTIME_SETUP {
        return None;
    }
    Some((cg, class, tgid, tid))
}

/// Whether a task's cgroup is the container's whose budget key is `container`.
#[inline(always)]
pub fn in_container(target_cg: u64, container: u64) -> bool {
    budget_key(target_cg, &cgroup_class(target_cg)) == container
}

/// `sys_enter_<x>`: records the access if the caller is watched and the
/// target is not itself.
pub fn on_enter(ctx: &TracePointContext) -> Option<()> {
    let (cg, class, tgid, tid) = watched_actor()?;
    // SAFETY: reads inside the tracepoint record.
    let nr: i32 = unsafe { ctx.read_at(8) }.ok()?;
    let args = [enter_arg(ctx, 0)?, enter_arg(ctx, 1)?];
    let p = decode(cg, &class, tgid, nr, args, enter_arg(ctx, 2))?;
    let _ = ACCESS_PENDING.insert(tid, p, 0);
    Some(())
}

/// The access a syscall makes, from its number and arguments (`a2`:
/// `None` when unknown); `None` when it is none (itself, its own
/// container's process, `PTRACE_TRACEME`, not a pidfd).
#[inline(always)]
fn decode(
    cg: u64,
    class: &pidns_ebpf::CgroupClass,
    tgid: u32,
    nr: i32,
    [a0, a1]: [u64; 2],
    a2: Option<u64>,
) -> Option<Pending> {
    let mut p = Pending {
        op: access::SIGNAL,
        flags: 0,
        detail: a1,
        cg,
        class: class.class,
        target_pid: a0 as u32,
        container: budget_key(cg, class),
        target_cgroup: 0,
        target_comm: [0; COMM_LEN],
    };
    match nr {
        nr::KILL => {
            if a0 as i32 <= 0 {
                p.flags |= flags::GROUP;
                p.target_pid = 0;
            }
        }
        nr::TKILL | nr::RT_SIGQUEUEINFO => {}
        nr::TGKILL | nr::RT_TGSIGQUEUEINFO => p.detail = a2?,
        NR_PIDFD_SEND_SIGNAL => resolve_pidfd(&mut p, a0)?,
        nr::PTRACE => {
            if a0 == PTRACE_TRACEME {
                return None;
            }
            p.op = access::PTRACE;
            p.detail = a0;
            p.target_pid = a1 as u32;
        }
        nr::PROCESS_VM_READV | nr::PROCESS_VM_WRITEV => {
            p.op = if nr == nr::PROCESS_VM_READV {
                access::VM_READ
            } else {
                access::VM_WRITE
            };
            p.detail = 0;
        }
        NR_PIDFD_GETFD => {
            p.op = access::PIDFD_GETFD;
            resolve_pidfd(&mut p, a0)?;
        }
        _ => return None,
    }
    if p.flags & (flags::TARGET_RESOLVED | flags::GROUP) == 0 {
        // Named by number: found now, while the syscall runs.
        if let Some(task) = task_by_pid(current_task(), p.target_pid) {
            resolve_task(&mut p, task)?;
        }
    }
    if p.target_pid == tgid {
        return None; // itself
    }
    if p.flags & flags::TARGET_RESOLVED != 0 && in_container(p.target_cgroup, p.container) {
        return None;
    }
    Some(p)
}

/// A call seccomp refused before `sys_enter` (Docker's default profile
/// refuses process_vm_readv/writev and pidfd_getfd without
/// CAP_SYS_PTRACE, with EPERM): only its exit fires, so the access is
/// decoded here from the saved registers. The third argument is not
/// read: a refused tgkill or rt_tgsigqueueinfo goes unreported.
#[inline(always)]
fn refused(ctx: &TracePointContext, ret: i64) -> Option<Pending> {
    if ret != -EPERM {
        return None;
    }
    let (cg, class, tgid, _) = watched_actor()?;
    // SAFETY: reads inside the tracepoint record.
    let nr: i32 = unsafe { ctx.read_at(8) }.ok()?;
    // SAFETY: the helper takes the current task; the result is only read
    // through bpf_probe_read_kernel.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as u64;
    let args = [
        read(regs, off!(pt_regs_arg0))?,
        read(regs, off!(pt_regs_arg1))?,
    ];
    decode(cg, &class, tgid, nr, args, None)
}

/// The process behind a pidfd of the caller; `None` (nothing to report)
/// when the fd is no pidfd.
#[inline(always)]
fn resolve_pidfd(p: &mut Pending, fd: u64) -> Option<()> {
    let file = current_fd_file(fd & 0xffff_ffff)?;
    let inode: u64 = read(file, off!(file_f_inode))?;
    let sb: u64 = read(inode, off!(inode_i_sb))?;
    let magic: u64 = read(sb, off!(super_block_s_magic))?;
    let pid = pidfd_pid(file, inode, magic)?;
    // pid->tasks[PIDTYPE_PID].first is the task's pid_links[PIDTYPE_PID].
    let first: u64 = read(pid, off!(pid_tasks))?;
    let target = first.checked_sub(u64::from(off!(task_pid_links)))?;
    resolve_task(p, target)
}

/// Fills the target from its task.
#[inline(always)]
pub fn resolve_task(p: &mut Pending, target: u64) -> Option<()> {
    let tgid: i32 = read(target, off!(task_tgid))?;
    p.target_pid = tgid as u32;
    p.target_cgroup = task_cgroup_id(target)?;
    p.target_comm = read(target, off!(task_comm)).unwrap_or([0; COMM_LEN]);
    p.flags |= flags::TARGET_RESOLVED;
    Some(())
}

/// `signal_generate(sig, info, task, group, result)`: inside a watched
/// signal syscall, the first task reached outside the caller's container
/// (a process group's or `kill(-1)`'s first) is the target.
pub fn on_signal_generate(ctx: &BtfTracePointContext) -> Option<()> {
    let (tgid, tid) = current_ids();
    let p = ACCESS_PENDING.get_ptr_mut(tid)?;
    let task: *const u8 = ctx.arg(2);
    let task = task as u64;
    // SAFETY: a value of this thread's own entry; only this thread writes it.
    unsafe {
        if (*p).flags & flags::TARGET_RESOLVED != 0 {
            return None;
        }
        let target_tgid: i32 = read(task, off!(task_tgid))?;
        let cg = task_cgroup_id(task)?;
        if target_tgid as u32 == tgid || in_container(cg, (*p).container) {
            return None;
        }
        resolve_task(&mut *p, task)
    }
}

/// `sys_exit_<x>`: the access with its result.
pub fn on_exit(ctx: &TracePointContext) -> Option<()> {
    let (tgid, tid) = current_ids();
    // SAFETY: reads inside the tracepoint record.
    let ret: i64 = unsafe { ctx.read_at(off!(syscall_exit_ret) as usize) }.ok()?;
    // SAFETY: the value is copied out immediately.
    let p = match unsafe { ACCESS_PENDING.get(tid) }.copied() {
        Some(p) => {
            let _ = ACCESS_PENDING.remove(tid);
            p
        }
        None => refused(ctx, ret)?,
    };
    if p.flags & flags::TARGET_RESOLVED == 0 {
        if p.flags & flags::GROUP != 0 && ret == 0 {
            return None; // a group signalled, all of it inside the container
        }
        if ret == -ESRCH {
            return None; // no such process: no access
        }
    }
    let detail = if p.op == access::SIGNAL { p.detail } else { 0 };
    report(&p, ret, tgid, tid, detail, None)
}
