//! pidns's probes: report container processes that land in the host PID
//! namespace, and container processes that setns into host namespaces.
//!
//! Process and cgroup events come from BTF tracepoints (tp_btf); setns and
//! clone flags from the per-syscall tracepoints, which fire only for those
//! syscalls. Filtering happens here: a cgroup lookup drops host processes, and
//! `bpf_get_ns_current_pid_tgid` tells whether the current task is in the host
//! PID namespace without reading any kernel struct. Where the subject is not
//! the current task (a forked child, a moved task, a namespace file), fields
//! are read at offsets that user space took from the running kernel's BTF.
#![no_std]
#![no_main]

use aya_ebpf::{
    Global,
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, bpf_pidns_info},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns,
        bpf_probe_read_kernel, bpf_probe_read_kernel_buf, bpf_probe_read_kernel_str_bytes,
        bpf_probe_read_user,
        generated::{
            bpf_get_current_cgroup_id, bpf_get_current_task_btf, bpf_get_ns_current_pid_tgid,
            bpf_task_pt_regs,
        },
    },
    macros::{btf_tracepoint, map, tracepoint},
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, TracePointContext},
};
use pidns_ebpf::{
    Config, Event, NS_TYPES, NSFS_MAGIC, Offsets, RUNTIME_COMMS, WAKEUP_INTERVAL_NS, class, flags,
    kind, task,
};

/// Default size; user space may resize it before loading.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

/// cgroup v2 id → [`class`], kept by user space.
#[map]
static CGROUPS: HashMap<u64, u32> = HashMap::with_max_entries(65536, 0);

/// tgid → [`task`] state of container processes in the host PID namespace.
#[map]
static TASKS: LruHashMap<u32, u32> = LruHashMap::with_max_entries(65536, 0);

/// tid → flags of the clone in progress, for the fork probe to report.
#[map]
static CLONE_FLAGS: LruHashMap<u32, u64> = LruHashMap::with_max_entries(8192, 0);

/// Per CPU: when it last woke the ring buffer's reader.
#[map]
static LAST_WAKEUP: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Events that did not fit in the ring buffer.
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[unsafe(no_mangle)]
static CONFIG: Global<Config> = Global::new(Config::ZERO);

const CLONE_VFORK: u64 = 0x4000;

/// Highest PID namespace nesting level the kernel allows.
const MAX_PID_NS_LEVEL: u32 = 32;

#[inline(always)]
fn read<T: Copy>(base: u64, offset: u32) -> Option<T> {
    if base == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel copes with any address; it fails rather than faults.
    unsafe { bpf_probe_read_kernel((base + u64::from(offset)) as *const T) }.ok()
}

#[inline(always)]
fn current_ids() -> (u32, u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    ((pid_tgid >> 32) as u32, pid_tgid as u32)
}

#[inline(always)]
fn current_cgroup() -> u64 {
    // SAFETY: no arguments, no memory access.
    unsafe { bpf_get_current_cgroup_id() }
}

/// The class user space gave this cgroup; `None` when it has not seen it yet.
#[inline(always)]
fn cgroup_class(id: u64) -> Option<u32> {
    // SAFETY: the value is copied out immediately.
    unsafe { CGROUPS.get(id) }.copied()
}

#[inline(always)]
fn ignored(class: Option<u32>) -> bool {
    matches!(class, Some(class::HOST) | Some(class::ALLOWED))
}

/// The current task's cgroup and its class, unless the class says to drop
/// the event here (a host or allowed cgroup).
#[inline(always)]
fn watched_cgroup() -> Option<(u64, Option<u32>)> {
    let cg = current_cgroup();
    let class = cgroup_class(cg);
    (!ignored(class)).then_some((cg, class))
}

#[inline(always)]
fn is_container_process(tgid: u32) -> bool {
    // SAFETY: the value is copied out immediately.
    unsafe { TASKS.get(tgid) }.copied() == Some(task::CONTAINER_PROCESS)
}

#[inline(always)]
fn is_runtime_comm(comm: &[u8; 16]) -> bool {
    RUNTIME_COMMS.iter().any(|name| comm.starts_with(name))
}

/// Whether the current task lives in the host PID namespace.
#[inline(always)]
fn current_in_host_pidns(cfg: &Config) -> bool {
    let mut info = bpf_pidns_info { pid: 0, tgid: 0 };
    // SAFETY: `info` is a valid, correctly sized buffer.
    unsafe {
        bpf_get_ns_current_pid_tgid(
            cfg.host_pidns_dev,
            cfg.host_pidns_ino,
            &mut info,
            core::mem::size_of::<bpf_pidns_info>() as u32,
        ) == 0
    }
}

/// Inode of a task's own PID namespace: `task->thread_pid->numbers[level].ns->ns.inum`.
#[inline(always)]
fn task_pidns_inum(task: u64, o: &Offsets) -> Option<u32> {
    let pid: u64 = read(task, o.task_thread_pid)?;
    let level: u32 = read(pid, o.pid_level)?;
    if level > MAX_PID_NS_LEVEL {
        return None;
    }
    let upid = pid + u64::from(o.pid_numbers) + u64::from(level) * u64::from(o.upid_size);
    let ns: u64 = read(upid, o.upid_ns)?;
    read(ns, o.pid_namespace_ns + o.ns_common_inum)
}

/// The cgroup's id if it belongs to the unified (v2) hierarchy.
#[inline(always)]
fn cgroup_v2_id(cgrp: u64, o: &Offsets) -> Option<u64> {
    let root: u64 = read(cgrp, o.cgroup_root)?;
    let hierarchy: i32 = read(root, o.cgroup_root_hierarchy_id)?;
    if hierarchy != 0 {
        return None;
    }
    let kn: u64 = read(cgrp, o.cgroup_kn)?;
    read(kn, o.kernfs_node_id)
}

fn count_lost() {
    if let Some(n) = LOST.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *n += 1 };
    }
}

/// Reserves an event and fills the common fields; the caller fills the rest
/// through the returned pointer and submits.
struct Draft {
    entry: aya_ebpf::maps::ring_buf::RingBufEntry<Event>,
}

impl Draft {
    #[inline(always)]
    fn new(kind: u32, class: Option<u32>, cgroup_id: u64, pid: u32, tid: u32) -> Option<Draft> {
        let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
            count_lost();
            return None;
        };
        let e = entry.as_mut_ptr();
        // SAFETY: `e` points at a reserved, exclusively owned Event.
        unsafe {
            (*e).kind = kind;
            (*e).flags = if class.is_none() {
                flags::UNCLASSIFIED
            } else {
                0
            };
            (*e).ktime_ns = bpf_ktime_get_ns();
            (*e).cgroup_id = cgroup_id;
            (*e).pid = pid;
            (*e).tid = tid;
            (*e).ppid = 0;
            (*e).nstype = 0;
            (*e).ns_inum = 0;
            (*e).ret = 0;
            (*e).arg = 0;
            (*e).comm = [0; 16];
            (*e).data[0] = 0;
        }
        Some(Draft { entry })
    }

    #[inline(always)]
    fn event(&mut self) -> *mut Event {
        self.entry.as_mut_ptr()
    }

    #[inline(always)]
    fn current_comm(&mut self) {
        if let Ok(comm) = bpf_get_current_comm() {
            // SAFETY: see Draft::new.
            unsafe { (*self.event()).comm = comm };
        }
    }

    #[inline(always)]
    fn task_comm(&mut self, task: u64, o: &Offsets) {
        let e = self.event();
        // SAFETY: see Draft::new; the kernel read fails rather than faults.
        unsafe {
            let _ = bpf_probe_read_kernel_buf(
                (task + u64::from(o.task_comm)) as *const u8,
                &mut (*e).comm,
            );
        }
    }

    #[inline(always)]
    fn kernel_str(&mut self, src: u64) {
        let e = self.event();
        if src != 0 {
            // SAFETY: see Draft::new; the kernel read fails rather than faults.
            unsafe {
                let _ = bpf_probe_read_kernel_str_bytes(src as *const u8, &mut (*e).data);
            }
        }
    }

    /// Wakes the reader for the first event after a quiet millisecond on
    /// this CPU; events in between are collected by the reader's backstop.
    #[inline(always)]
    fn submit(self) {
        // SAFETY: no arguments, no memory access.
        let now = unsafe { bpf_ktime_get_ns() };
        let flags = match LAST_WAKEUP.get_ptr_mut(0) {
            // SAFETY: per-CPU slot, no concurrent writer on this CPU.
            Some(last) => unsafe {
                if now.wrapping_sub(*last) >= WAKEUP_INTERVAL_NS {
                    *last = now;
                    u64::from(BPF_RB_FORCE_WAKEUP)
                } else {
                    u64::from(BPF_RB_NO_WAKEUP)
                }
            },
            None => 0,
        };
        self.entry.submit(flags);
    }
}

/// A process execs in a container cgroup while in the host PID namespace:
/// `docker run --pid=host`, `docker exec` into such a container, a runtime
/// joining a host process's PID namespace. Runtimes' own setup stages never
/// exec inside the container's cgroup, so they are not reported.
#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    let _ = on_exec(&ctx);
    0
}

fn on_exec(ctx: &BtfTracePointContext) -> Option<()> {
    let (cg, class) = watched_cgroup()?;
    let cfg = CONFIG.load();
    if !current_in_host_pidns(&cfg) {
        return None;
    }
    let (tgid, tid) = current_ids();
    let comm = bpf_get_current_comm().unwrap_or([0; 16]);
    // SAFETY: the value is copied out immediately.
    if unsafe { TASKS.get(tgid) }.copied() == Some(task::ATTACHED) && is_runtime_comm(&comm) {
        return None; // a runtime's setup process re-executing the runtime
    }
    // Only a known container cgroup makes a container process; for one not
    // classified yet, user space decides and tracks it if need be.
    if class == Some(class::CONTAINER) {
        let _ = TASKS.insert(tgid, task::CONTAINER_PROCESS, 0);
    }
    let task_ptr: *const u8 = ctx.arg(0);
    let bprm: *const u8 = ctx.arg(2);
    let o = &cfg.offsets;
    let parent: Option<u64> = read(task_ptr as u64, o.task_real_parent);
    let ppid: Option<i32> = parent.and_then(|p| read(p, o.task_tgid));
    let filename: Option<u64> = read(bprm as u64, o.linux_binprm_filename);
    let mut d = Draft::new(kind::EXEC, class, cg, tgid, tid)?;
    // SAFETY: see Draft::new.
    unsafe { (*d.event()).ppid = ppid.unwrap_or(0) as u32 };
    d.current_comm();
    d.kernel_str(filename.unwrap_or(0));
    d.submit();
    Some(())
}

/// Remembers a container process's clone flags for the fork probe:
/// `clone(flags, ...)`.
#[tracepoint(category = "syscalls", name = "sys_enter_clone")]
pub fn sys_enter_clone(ctx: TracePointContext) -> i32 {
    let (tgid, tid) = current_ids();
    if is_container_process(tgid) {
        let cfg = CONFIG.load();
        // SAFETY: reads inside the tracepoint record.
        if let Ok(flags) = unsafe { ctx.read_at::<u64>(cfg.offsets.syscall_enter_arg0 as usize) } {
            let _ = CLONE_FLAGS.insert(tid, flags, 0);
        }
    }
    0
}

/// `clone3(struct clone_args *uargs, size)`: flags are the first field of the
/// user's `struct clone_args` (uapi).
#[tracepoint(category = "syscalls", name = "sys_enter_clone3")]
pub fn sys_enter_clone3(ctx: TracePointContext) -> i32 {
    let (tgid, tid) = current_ids();
    if is_container_process(tgid) {
        let cfg = CONFIG.load();
        // SAFETY: reads inside the tracepoint record, then from user memory,
        // which fails rather than faults.
        unsafe {
            if let Ok(uargs) = ctx.read_at::<u64>(cfg.offsets.syscall_enter_arg0 as usize)
                && let Ok(flags) = bpf_probe_read_user(uargs as *const u64)
            {
                let _ = CLONE_FLAGS.insert(tid, flags, 0);
            }
        }
    }
    0
}

/// A container process in the host PID namespace creates a process. The
/// child is reported when it, too, lives in the host PID namespace (no
/// CLONE_NEWPID, no earlier unshare or setns of the PID namespace).
#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    let _ = on_fork(&ctx);
    0
}

fn on_fork(ctx: &BtfTracePointContext) -> Option<()> {
    let (tgid, tid) = current_ids();
    if !is_container_process(tgid) {
        return None;
    }
    let cfg = CONFIG.load();
    let o = &cfg.offsets;
    let child: *const u8 = ctx.arg(1);
    let child = child as u64;
    let child_pid: i32 = read(child, o.task_pid)?;
    let child_tgid: i32 = read(child, o.task_tgid)?;
    if child_pid != child_tgid {
        return None; // a thread
    }
    // SAFETY: the value is copied out immediately.
    let clone_flags = unsafe { CLONE_FLAGS.get(tid) }.copied().unwrap_or(0);
    let _ = CLONE_FLAGS.remove(tid);
    let inum = task_pidns_inum(child, o)?;
    if u64::from(inum) != cfg.host_pidns_ino {
        return None; // a new, isolated PID namespace
    }
    let (cg, class) = watched_cgroup()?;
    if class == Some(class::CONTAINER) {
        let _ = TASKS.insert(child_tgid as u32, task::CONTAINER_PROCESS, 0);
    }
    // A vfork child (posix_spawn, Go's os/exec) borrows its parent's memory
    // until it execs or exits at once: its exec is how it arrives, and is reported.
    if clone_flags & CLONE_VFORK != 0 {
        return None;
    }
    let mut d = Draft::new(kind::FORK, class, cg, child_tgid as u32, child_pid as u32)?;
    // SAFETY: see Draft::new.
    unsafe {
        let e = d.event();
        (*e).ppid = tgid;
        (*e).arg = clone_flags;
        (*e).ns_inum = inum;
    }
    d.current_comm();
    d.submit();
    Some(())
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(_ctx: BtfTracePointContext) -> i32 {
    let (tgid, tid) = current_ids();
    if tgid == tid {
        let _ = TASKS.remove(tgid);
    }
    0
}

/// A task is moved into a cgroup. Reported when the cgroup is (or may be) a
/// container's and the task lives in the host PID namespace.
#[btf_tracepoint(function = "cgroup_attach_task")]
pub fn cgroup_attach_task(ctx: BtfTracePointContext) -> i32 {
    let _ = on_attach(&ctx);
    0
}

fn on_attach(ctx: &BtfTracePointContext) -> Option<()> {
    let cfg = CONFIG.load();
    let o = &cfg.offsets;
    let cgrp: *const u8 = ctx.arg(0);
    let id = cgroup_v2_id(cgrp as u64, o)?;
    let class = cgroup_class(id);
    if ignored(class) {
        return None;
    }
    let task_ptr: *const u8 = ctx.arg(2);
    let task_ptr = task_ptr as u64;
    let inum = task_pidns_inum(task_ptr, o)?;
    if u64::from(inum) != cfg.host_pidns_ino {
        return None;
    }
    let pid: i32 = read(task_ptr, o.task_tgid)?;
    let tid: i32 = read(task_ptr, o.task_pid)?;
    let pid = pid as u32;
    if !is_container_process(pid) {
        let _ = TASKS.insert(pid, task::ATTACHED, 0);
    }
    let (mover, _) = current_ids();
    let mut d = Draft::new(kind::ATTACH, class, id, pid, tid as u32)?;
    // SAFETY: see Draft::new.
    unsafe {
        (*d.event()).ppid = mover;
        (*d.event()).ns_inum = inum;
    }
    d.task_comm(task_ptr, o);
    d.submit();
    Some(())
}

/// New cgroups reach user space with their path, before any process joins
/// them, so that it can classify them in time.
#[btf_tracepoint(function = "cgroup_mkdir")]
pub fn cgroup_mkdir(ctx: BtfTracePointContext) -> i32 {
    let _ = on_mkdir(&ctx);
    0
}

fn on_mkdir(ctx: &BtfTracePointContext) -> Option<()> {
    let cfg = CONFIG.load();
    let cgrp: *const u8 = ctx.arg(0);
    let path: *const u8 = ctx.arg(1);
    let id = cgroup_v2_id(cgrp as u64, &cfg.offsets)?;
    let (tgid, tid) = current_ids();
    let mut d = Draft::new(kind::CGROUP_MKDIR, Some(class::HOST), id, tgid, tid)?;
    d.kernel_str(path as u64);
    d.submit();
    Some(())
}

#[btf_tracepoint(function = "cgroup_rmdir")]
pub fn cgroup_rmdir(ctx: BtfTracePointContext) -> i32 {
    let cfg = CONFIG.load();
    let cgrp: *const u8 = ctx.arg(0);
    if let Some(id) = cgroup_v2_id(cgrp as u64, &cfg.offsets) {
        let _ = CGROUPS.remove(id);
        let (tgid, tid) = current_ids();
        if let Some(d) = Draft::new(kind::CGROUP_RMDIR, Some(class::HOST), id, tgid, tid) {
            d.submit();
        }
    }
    0
}

/// The namespace behind file descriptor `fd` of the current task:
/// `current->files->fdt->fd[fd]->f_inode`, which for an nsfs inode keeps its
/// `struct ns_common` in `i_private`. `None` for anything but a namespace file
/// (a pidfd, say).
#[inline(always)]
fn fd_namespace_inum(fd: u64, o: &Offsets) -> Option<u32> {
    // SAFETY: no arguments; the pointer is only read through bpf_probe_read_kernel.
    let task = unsafe { bpf_get_current_task() };
    let files: u64 = read(task, o.task_files)?;
    let fdt: u64 = read(files, o.files_struct_fdt)?;
    let max: u32 = read(fdt, o.fdtable_max_fds)?;
    if fd >= u64::from(max) {
        return None;
    }
    let fds: u64 = read(fdt, o.fdtable_fd)?;
    let file: u64 = read(fds, (fd * 8) as u32)?;
    let inode: u64 = read(file, o.file_f_inode)?;
    let sb: u64 = read(inode, o.inode_i_sb)?;
    let magic: u64 = read(sb, o.super_block_s_magic)?;
    if magic != NSFS_MAGIC {
        return None;
    }
    let ns: u64 = read(inode, o.inode_i_private)?;
    read(ns, o.ns_common_inum)
}

/// `setns(fd, nstype)` by a process in a container (or not yet classified)
/// cgroup, into one of the host's namespaces. Handled at syscall exit, which
/// knows the result and also fires when seccomp refused the call before
/// `sys_enter` (Docker's default profile does, without CAP_SYS_ADMIN). The fd
/// is read from the saved user registers and is still open.
#[tracepoint(category = "syscalls", name = "sys_exit_setns")]
pub fn sys_exit_setns(ctx: TracePointContext) -> i32 {
    let _ = on_setns_exit(&ctx);
    0
}

fn on_setns_exit(ctx: &TracePointContext) -> Option<()> {
    let (cg, class) = watched_cgroup()?;
    let cfg = CONFIG.load();
    let o = &cfg.offsets;
    // SAFETY: the helper takes the current task; the result is only read
    // through bpf_probe_read_kernel.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as u64;
    let fd: u64 = read(regs, o.pt_regs_arg0)?;
    let inum = fd_namespace_inum(fd & 0xffff_ffff, o)?;
    // Namespace inodes are unique across types, so the match tells the type.
    let mut index = NS_TYPES.len();
    for (i, host) in cfg.host_ns_inum.iter().enumerate() {
        if *host != 0 && *host == inum {
            index = i;
        }
    }
    if index >= NS_TYPES.len() {
        return None;
    }
    // SAFETY: reads inside the tracepoint record.
    let ret: i64 = unsafe { ctx.read_at(o.syscall_exit_ret as usize) }.ok()?;
    let (tgid, tid) = current_ids();
    let mut d = Draft::new(kind::SETNS, class, cg, tgid, tid)?;
    // SAFETY: see Draft::new.
    unsafe {
        let e = d.event();
        (*e).nstype = NS_TYPES[index].0;
        (*e).ns_inum = inum;
        (*e).ret = ret as i32;
    }
    d.current_comm();
    d.submit();
    Some(())
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
