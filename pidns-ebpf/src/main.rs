//! pidns's probes: report container processes that land in the host PID
//! namespace, and container processes that call setns.
//!
//! Process and cgroup events come from BTF tracepoints (tp_btf); setns from
//! the per-syscall exit tracepoint, which fires only for that syscall.
//! Filtering happens here: a cgroup lookup drops host processes, a task map
//! drops runtimes' own setup processes, and `bpf_get_ns_current_pid_tgid`
//! tells whether the current task is in the host PID namespace without
//! reading any kernel struct. Where the subject is not the current task (a
//! new child, a moved task, a file behind an fd), fields are read at offsets
//! that user space took from the running kernel's BTF.
#![no_std]
#![no_main]

use core::{
    mem::MaybeUninit,
    ptr::{addr_of, read_volatile},
};

use aya_ebpf::{
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, bpf_pidns_info},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns,
        bpf_probe_read_kernel, bpf_probe_read_kernel_buf, bpf_probe_read_kernel_str_bytes,
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
    CLONE_NEWPID, COMPAT_NR_SETNS, Config, DATA_LEN, Event, NS_FLAGS, TS_COMPAT, TaskState,
    WAKEUP_INTERVAL_NS, class, clone, flags, kind, magic, task,
};

/// Default size; user space may resize it before loading.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

/// cgroup v2 id → [`class`], kept by user space.
#[map]
static CGROUPS: HashMap<u64, u32> = HashMap::with_max_entries(65536, 0);

/// tgid → [`TaskState`] of container processes in the host PID namespace and
/// of runtimes' setup processes.
#[map]
static TASKS: LruHashMap<u32, TaskState> = LruHashMap::with_max_entries(65536, 0);

/// Per CPU: when it last woke the ring buffer's reader.
#[map]
static LAST_WAKEUP: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Events that did not fit in the ring buffer.
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The load-time [`Config`], which user space writes into the object before
/// loading it. Fields are read one at a time through a volatile load, so the
/// compiler neither folds in the zeroes it was built with nor copies the
/// whole struct onto the stack.
#[repr(transparent)]
pub struct Settings(MaybeUninit<Config>);

// SAFETY: read-only after load.
unsafe impl Sync for Settings {}

#[unsafe(no_mangle)]
static CONFIG: Settings = Settings(MaybeUninit::new(Config::ZERO));

/// One field of [`CONFIG`].
macro_rules! conf {
    ($($field:ident).+) => {{
        // SAFETY: CONFIG is always initialised; the read is of plain data.
        #[allow(unused_unsafe)]
        let value = unsafe { read_volatile(addr_of!((*CONFIG.0.as_ptr()).$($field).+)) };
        value
    }};
}

/// One kernel struct offset.
macro_rules! off {
    ($field:ident) => {
        conf!(offsets.$field)
    };
}

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
fn current_task() -> u64 {
    // SAFETY: no arguments; the pointer is only read through bpf_probe_read_kernel.
    unsafe { bpf_get_current_task() }
}

#[inline(always)]
fn current_cgroup() -> u64 {
    // SAFETY: no arguments, no memory access.
    unsafe { bpf_get_current_cgroup_id() }
}

/// Class of a cgroup user space has not classified yet.
const UNCLASSIFIED: u32 = 0;

// Map values are returned as plain values with a default rather than as
// `Option<u32>`: LLVM may compute with the undefined payload of a `None` and
// select afterwards, which the verifier rejects (`R6 !read_ok`).

/// The class user space gave this cgroup; [`UNCLASSIFIED`] when it has not
/// seen it yet.
#[inline(always)]
fn cgroup_class(id: u64) -> u32 {
    // SAFETY: the value is copied out immediately.
    unsafe { CGROUPS.get(id) }.copied().unwrap_or(UNCLASSIFIED)
}

#[inline(always)]
fn ignored(class: u32) -> bool {
    class == class::HOST || class == class::ALLOWED
}

/// The current task's cgroup and its class, unless the class says to drop
/// the event here (a host or allowed cgroup).
#[inline(always)]
fn watched_cgroup() -> Option<(u64, u32)> {
    let cg = current_cgroup();
    let class = cgroup_class(cg);
    (!ignored(class)).then_some((cg, class))
}

/// A task's state; `state` 0 when it has none.
#[inline(always)]
fn task_state(tgid: u32) -> TaskState {
    // SAFETY: the value is copied out immediately.
    unsafe { TASKS.get(tgid) }.copied().unwrap_or_default()
}

/// Whether the current task lives in the host PID namespace.
#[inline(always)]
fn current_in_host_pidns() -> bool {
    let mut info = bpf_pidns_info { pid: 0, tgid: 0 };
    // SAFETY: `info` is a valid, correctly sized buffer.
    unsafe {
        bpf_get_ns_current_pid_tgid(
            conf!(host_pidns_dev),
            conf!(host_pidns_ino),
            &mut info,
            core::mem::size_of::<bpf_pidns_info>() as u32,
        ) == 0
    }
}

/// Inode of a task's own PID namespace: `task->thread_pid->numbers[level].ns->ns.inum`.
#[inline(always)]
fn task_pidns_inum(task: u64) -> Option<u32> {
    let pid: u64 = read(task, off!(task_thread_pid))?;
    let level: u32 = read(pid, off!(pid_level))?;
    if level > MAX_PID_NS_LEVEL {
        return None;
    }
    let upid = pid + u64::from(off!(pid_numbers)) + u64::from(level) * u64::from(off!(upid_size));
    let ns: u64 = read(upid, off!(upid_ns))?;
    read(ns, off!(pid_namespace_ns) + off!(ns_common_inum))
}

#[inline(always)]
fn is_host_pidns(inum: u32) -> bool {
    u64::from(inum) == conf!(host_pidns_ino)
}

/// The cgroup's id if it belongs to the unified (v2) hierarchy.
#[inline(always)]
fn cgroup_v2_id(cgrp: u64) -> Option<u64> {
    let root: u64 = read(cgrp, off!(cgroup_root))?;
    let hierarchy: i32 = read(root, off!(cgroup_root_hierarchy_id))?;
    if hierarchy != 0 {
        return None;
    }
    let kn: u64 = read(cgrp, off!(cgroup_kn))?;
    read(kn, off!(kernfs_node_id))
}

/// A task's cgroup v2 id: `task->cgroups->dfl_cgrp->kn->id`.
#[inline(always)]
fn task_cgroup_id(task: u64) -> Option<u64> {
    let cset: u64 = read(task, off!(task_cgroups))?;
    let cgrp: u64 = read(cset, off!(css_set_dfl_cgrp))?;
    let kn: u64 = read(cgrp, off!(cgroup_kn))?;
    read(kn, off!(kernfs_node_id))
}

/// An executable file's identity.
#[derive(Clone, Copy)]
struct Exe {
    file: u64,
    ino: u64,
    dev: u32,
}

#[inline(always)]
fn file_exe(file: u64) -> Option<Exe> {
    let inode: u64 = read(file, off!(file_f_inode))?;
    let ino: u64 = read(inode, off!(inode_i_ino))?;
    let sb: u64 = read(inode, off!(inode_i_sb))?;
    let dev: u32 = read(sb, off!(super_block_s_dev))?;
    Some(Exe { file, ino, dev })
}

/// `task->mm->exe_file`; `None` for a task without memory (a kernel thread).
#[inline(always)]
fn task_exe(task: u64) -> Option<Exe> {
    let mm: u64 = read(task, off!(task_mm))?;
    let file: u64 = read(mm, off!(mm_exe_file))?;
    file_exe(file)
}

#[inline(always)]
fn file_magic(file: u64) -> Option<u64> {
    let inode: u64 = read(file, off!(file_f_inode))?;
    let sb: u64 = read(inode, off!(inode_i_sb))?;
    read(sb, off!(super_block_s_magic))
}

/// The first bytes of the file's name (`f_path.dentry->d_name`), NUL-padded.
#[inline(always)]
fn file_name(file: u64) -> [u8; 16] {
    let mut name = [0u8; 16];
    if let Some(dentry) = read::<u64>(file, off!(file_dentry))
        && let Some(s) = read::<u64>(dentry, off!(dentry_name))
        && s != 0
    {
        // SAFETY: the kernel read fails rather than faults.
        let _ = unsafe { bpf_probe_read_kernel_str_bytes(s as *const u8, &mut name) };
    }
    name
}

/// A memfd (runc 1.1's `memfd:runc_cloned:/proc/self/exe`).
#[inline(always)]
fn is_memfd(file: u64) -> bool {
    matches!(
        file_magic(file),
        Some(magic::TMPFS) | Some(magic::HUGETLBFS)
    ) && file_name(file).starts_with(b"memfd:")
}

/// Whether a task moved into (or created in) a container cgroup is a
/// runtime's own setup process: it runs its parent's executable (runc
/// re-executing itself as `runc init`, crun's or youki's fork), or a private
/// copy of it: a memfd (runc 1.1) or a file of the same name on a private
/// overlayfs mount (runc 1.2+). `Some(Some(exe))`: yes, with the executable
/// to recognise the runtime's own re-exec by; `Some(None)`: no; `None`:
/// unknown (its executable is unreadable).
#[inline(always)]
fn runtime_setup_exe(task: u64) -> Option<Option<Exe>> {
    let exe = task_exe(task)?;
    if is_memfd(exe.file) {
        return Some(Some(exe));
    }
    let parent: u64 = read(task, off!(task_real_parent))?;
    let Some(pexe) = task_exe(parent) else {
        return Some(None);
    };
    if exe.ino == pexe.ino && exe.dev == pexe.dev {
        return Some(Some(exe));
    }
    if file_magic(exe.file) == Some(magic::OVERLAYFS) && file_name(exe.file) == file_name(pexe.file)
    {
        return Some(Some(exe));
    }
    Some(None)
}

fn runtime_state(exe: Option<Exe>) -> TaskState {
    let mut s = TaskState::new(task::RUNTIME_SETUP);
    if let Some(exe) = exe {
        s.exe_ino = exe.ino;
        s.exe_dev = exe.dev;
    }
    s
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
    fn new(kind: u32, class: u32, cgroup_id: u64, pid: u32, tid: u32) -> Option<Draft> {
        let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
            count_lost();
            return None;
        };
        let e = entry.as_mut_ptr();
        // SAFETY: `e` points at a reserved, exclusively owned Event.
        unsafe {
            (*e).kind = kind;
            (*e).flags = if class == UNCLASSIFIED {
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
            (*e).target_pid = 0;
            (*e)._reserved = 0;
            (*e).target_cgroup_id = 0;
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
    fn add_flags(&mut self, f: u32) {
        // SAFETY: see Draft::new.
        unsafe { (*self.event()).flags |= f };
    }

    #[inline(always)]
    fn current_comm(&mut self) {
        if let Ok(comm) = bpf_get_current_comm() {
            // SAFETY: see Draft::new.
            unsafe { (*self.event()).comm = comm };
        }
    }

    #[inline(always)]
    fn task_comm(&mut self, task: u64) {
        let e = self.event();
        // SAFETY: see Draft::new; the kernel read fails rather than faults.
        unsafe {
            let _ = bpf_probe_read_kernel_buf(
                (task + u64::from(off!(task_comm))) as *const u8,
                &mut (*e).comm,
            );
        }
    }

    /// Copies a kernel string into `data`; returns its length (NUL excluded).
    #[inline(always)]
    fn kernel_str(&mut self, src: u64) -> usize {
        let e = self.event();
        if src == 0 {
            return 0;
        }
        // SAFETY: see Draft::new; the kernel read fails rather than faults.
        unsafe { bpf_probe_read_kernel_str_bytes(src as *const u8, &mut (*e).data) }
            .map_or(0, |s| s.len())
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
/// joining a host process's PID namespace. A runtime's setup process
/// re-executing the runtime (the same file, or a memfd copy) is not
/// reported; its first other exec is the container's payload.
#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    let _ = on_exec(&ctx);
    0
}

fn on_exec(ctx: &BtfTracePointContext) -> Option<()> {
    let (cg, class) = watched_cgroup()?;
    let (tgid, tid) = current_ids();
    let bprm: *const u8 = ctx.arg(2);
    let bprm = bprm as u64;
    let s = task_state(tgid);
    let mut clone_flags = 0;
    if s.state == task::RUNTIME_SETUP {
        if let Some(file) = read::<u64>(bprm, off!(linux_binprm_file))
            && (is_memfd(file)
                || file_exe(file).is_some_and(|e| e.ino == s.exe_ino && e.dev == s.exe_dev))
        {
            return None; // the runtime re-executing itself
        }
        // The payload: from now on a container process like any other.
        let _ = TASKS.remove(tgid);
    } else if s.state == task::CONTAINER_PROCESS {
        clone_flags = s.clone_flags;
    }
    if !current_in_host_pidns() {
        return None;
    }
    // Only a known container cgroup makes a container process; for one not
    // classified yet, user space decides and tracks it if need be.
    if class == class::CONTAINER || clone_flags != 0 {
        let _ = TASKS.insert(tgid, TaskState::new(task::CONTAINER_PROCESS), 0);
    }
    let task_ptr: *const u8 = ctx.arg(0);
    let parent: Option<u64> = read(task_ptr as u64, off!(task_real_parent));
    let ppid: Option<i32> = parent.and_then(|p| read(p, off!(task_tgid)));
    let filename: Option<u64> = read(bprm, off!(linux_binprm_filename));
    let mut d = Draft::new(kind::EXEC, class, cg, tgid, tid)?;
    // SAFETY: see Draft::new.
    unsafe {
        let e = d.event();
        (*e).ppid = ppid.unwrap_or(0) as u32;
        (*e).arg = clone_flags;
    }
    if clone_flags != 0 {
        d.add_flags(flags::CLONE_FLAGS);
    }
    d.current_comm();
    d.kernel_str(filename.unwrap_or(0));
    d.submit();
    Some(())
}

/// A task is created (`copy_process`, after the child's PID and cgroup are
/// set; the current task is the parent), with the flags the kernel used,
/// whatever the syscall: fork, vfork, clone, clone3, their compat forms.
///
/// - A container process's child in the host PID namespace is reported
///   (a vfork child at its exec), one in another PID namespace is a
///   `NEW_PIDNS` event.
/// - A runtime setup process's child is one too (runc's `[1:CHILD]` and
///   `[2:INIT]`).
/// - A child created directly in a container cgroup (`CLONE_INTO_CGROUP`,
///   as crun does) is handled like a task moved there.
#[btf_tracepoint(function = "task_newtask")]
pub fn task_newtask(ctx: BtfTracePointContext) -> i32 {
    let _ = on_newtask(&ctx);
    0
}

fn on_newtask(ctx: &BtfTracePointContext) -> Option<()> {
    let clone_flags: u64 = ctx.arg(1);
    if clone_flags & clone::THREAD != 0 {
        return None;
    }
    let (tgid, _) = current_ids();
    let s = task_state(tgid);
    let child: *const u8 = ctx.arg(0);
    let child = child as u64;
    if s.state == task::CONTAINER_PROCESS {
        container_child(child, clone_flags, tgid)
    } else if s.state == task::RUNTIME_SETUP {
        let child_pid: i32 = read(child, off!(task_pid))?;
        let _ = TASKS.insert(
            child_pid as u32,
            TaskState {
                clone_flags: 0,
                ..s
            },
            0,
        );
        None
    } else if clone_flags & clone::INTO_CGROUP != 0 {
        into_cgroup(child, clone_flags, tgid)
    } else {
        None
    }
}

fn container_child(child: u64, clone_flags: u64, parent: u32) -> Option<()> {
    let child_pid: i32 = read(child, off!(task_pid))?;
    let child_pid = child_pid as u32;
    let inum = task_pidns_inum(child)?;
    let (cg, class) = watched_cgroup()?;
    let kind = if is_host_pidns(inum) {
        if class == class::CONTAINER {
            let mut s = TaskState::new(task::CONTAINER_PROCESS);
            if clone_flags & clone::VFORK != 0 {
                s.clone_flags = clone_flags;
            }
            let _ = TASKS.insert(child_pid, s, 0);
        }
        // A vfork child (posix_spawn, Go's os/exec, busybox) borrows its
        // parent's memory until it execs or exits at once: its exec is how
        // it arrives, and is reported with these flags.
        if clone_flags & clone::VFORK != 0 {
            return None;
        }
        kind::FORK
    } else {
        kind::NEW_PIDNS
    };
    let mut d = Draft::new(kind, class, cg, child_pid, child_pid)?;
    // SAFETY: see Draft::new.
    unsafe {
        let e = d.event();
        (*e).ppid = parent;
        (*e).arg = clone_flags;
        (*e).ns_inum = inum;
    }
    d.current_comm();
    d.submit();
    Some(())
}

fn into_cgroup(child: u64, clone_flags: u64, parent: u32) -> Option<()> {
    let id = task_cgroup_id(child)?;
    if id == current_cgroup() {
        return None;
    }
    let class = cgroup_class(id);
    if ignored(class) {
        return None;
    }
    let child_pid: i32 = read(child, off!(task_pid))?;
    let child_pid = child_pid as u32;
    // A fork of its parent: its parent's executable, so a runtime's setup
    // process until it execs something else, in whatever PID namespace.
    let exe = task_exe(child);
    let _ = TASKS.insert(child_pid, runtime_state(exe), 0);
    let inum = task_pidns_inum(child)?;
    if !is_host_pidns(inum) {
        return None;
    }
    let mut d = Draft::new(kind::ATTACH, class, id, child_pid, child_pid)?;
    d.add_flags(flags::INTO_CGROUP | flags::RUNTIME_SETUP);
    if exe.is_none() {
        d.add_flags(flags::EXE_UNKNOWN);
    }
    // SAFETY: see Draft::new.
    unsafe {
        let e = d.event();
        (*e).ppid = parent;
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

/// A task is moved into a cgroup. A runtime's setup process is marked as
/// such, in whatever PID namespace; any other task moved in from the host
/// PID namespace becomes a container process. Reported (with the verdict in
/// the flags) when the cgroup is (or may be) a container's and the task
/// lives in the host PID namespace.
#[btf_tracepoint(function = "cgroup_attach_task")]
pub fn cgroup_attach_task(ctx: BtfTracePointContext) -> i32 {
    let _ = on_attach(&ctx);
    0
}

fn on_attach(ctx: &BtfTracePointContext) -> Option<()> {
    let cgrp: *const u8 = ctx.arg(0);
    let id = cgroup_v2_id(cgrp as u64)?;
    let class = cgroup_class(id);
    if ignored(class) {
        return None;
    }
    let task_ptr: *const u8 = ctx.arg(2);
    let task_ptr = task_ptr as u64;
    let pid: i32 = read(task_ptr, off!(task_tgid))?;
    let tid: i32 = read(task_ptr, off!(task_pid))?;
    if pid != tid {
        return None; // a thread: its process is reported through its leader
    }
    let pid = pid as u32;
    let inum = task_pidns_inum(task_ptr)?;
    let in_host = is_host_pidns(inum);
    let mut verdict = 0;
    if task_state(pid).state != task::CONTAINER_PROCESS {
        match runtime_setup_exe(task_ptr) {
            Some(Some(exe)) => {
                verdict = flags::RUNTIME_SETUP;
                let _ = TASKS.insert(pid, runtime_state(Some(exe)), 0);
            }
            Some(None) => {
                if in_host && class == class::CONTAINER {
                    let _ = TASKS.insert(pid, TaskState::new(task::CONTAINER_PROCESS), 0);
                }
            }
            None => verdict = flags::EXE_UNKNOWN,
        }
    }
    if !in_host {
        return None;
    }
    let (mover, _) = current_ids();
    let mut d = Draft::new(kind::ATTACH, class, id, pid, tid as u32)?;
    d.add_flags(verdict);
    // SAFETY: see Draft::new.
    unsafe {
        (*d.event()).ppid = mover;
        (*d.event()).ns_inum = inum;
    }
    d.task_comm(task_ptr);
    d.submit();
    Some(())
}

/// New cgroups reach user space with their path, before any process joins
/// them, so that it can classify them in time. A path that fills `data` may
/// have been cut short and is flagged so.
#[btf_tracepoint(function = "cgroup_mkdir")]
pub fn cgroup_mkdir(ctx: BtfTracePointContext) -> i32 {
    let _ = on_mkdir(&ctx);
    0
}

fn on_mkdir(ctx: &BtfTracePointContext) -> Option<()> {
    let cgrp: *const u8 = ctx.arg(0);
    let path: *const u8 = ctx.arg(1);
    let id = cgroup_v2_id(cgrp as u64)?;
    let (tgid, tid) = current_ids();
    let mut d = Draft::new(kind::CGROUP_MKDIR, class::HOST, id, tgid, tid)?;
    if d.kernel_str(path as u64) >= DATA_LEN - 1 {
        d.add_flags(flags::TRUNCATED);
    }
    d.submit();
    Some(())
}

#[btf_tracepoint(function = "cgroup_rmdir")]
pub fn cgroup_rmdir(ctx: BtfTracePointContext) -> i32 {
    let cgrp: *const u8 = ctx.arg(0);
    if let Some(id) = cgroup_v2_id(cgrp as u64) {
        let _ = CGROUPS.remove(id);
        let (tgid, tid) = current_ids();
        if let Some(d) = Draft::new(kind::CGROUP_RMDIR, class::HOST, id, tgid, tid) {
            d.submit();
        }
    }
    0
}

/// The file behind descriptor `fd` of the current task: `current->files->fdt->fd[fd]`.
#[inline(always)]
fn current_fd_file(fd: u64) -> Option<u64> {
    let files: u64 = read(current_task(), off!(task_files))?;
    let fdt: u64 = read(files, off!(files_struct_fdt))?;
    let max: u32 = read(fdt, off!(fdtable_max_fds))?;
    if fd >= u64::from(max) {
        return None;
    }
    let fds: u64 = read(fdt, off!(fdtable_fd))?;
    read(fds, (fd * 8) as u32)
}

/// A namespace's `CLONE_NEW*` type.
#[inline(always)]
fn ns_type(ns: u64) -> Option<u32> {
    if off!(ns_type_via_ops) == 0 {
        read(ns, off!(ns_common_type))
    } else {
        let ops: u64 = read(ns, off!(ns_common_type))?;
        read(ops, off!(proc_ns_operations_type))
    }
}

/// The `struct pid` behind a pidfd: pidfs keeps it in the inode (6.9+),
/// the anonymous inode before it in the file.
#[inline(always)]
fn pidfd_pid(file: u64, inode: u64, magic: u64) -> Option<u64> {
    if magic == magic::PIDFS {
        return read(inode, off!(inode_i_private));
    }
    if magic == magic::ANON_INODE_FS && file_name(file).starts_with(b"[pidfd]\0") {
        return read(file, off!(file_private_data));
    }
    None
}

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
    let mut d = Draft::new(kind::SETNS, class, cg, tgid, tid)?;
    d.add_flags(ev_flags);
    // SAFETY: see Draft::new.
    unsafe {
        let e = d.event();
        (*e).nstype = nstype;
        (*e).ns_inum = ns_inum;
        (*e).ret = ret as i32;
        (*e).target_pid = target_pid;
        (*e).target_cgroup_id = target_cgroup;
    }
    d.current_comm();
    d.submit();
    Some(())
}

/// `setns` through the native syscall entry. The arguments are read from
/// the saved user registers.
#[tracepoint(category = "syscalls", name = "sys_exit_setns")]
pub fn sys_exit_setns(ctx: TracePointContext) -> i32 {
    let _ = on_setns_exit(&ctx);
    0
}

fn on_setns_exit(ctx: &TracePointContext) -> Option<()> {
    // SAFETY: the helper takes the current task; the result is only read
    // through bpf_probe_read_kernel.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as u64;
    let fd: u64 = read(regs, off!(pt_regs_arg0))?;
    let nsflags: u64 = read(regs, off!(pt_regs_arg1))?;
    // SAFETY: reads inside the tracepoint record.
    let ret: i64 = unsafe { ctx.read_at(off!(syscall_exit_ret) as usize) }.ok()?;
    on_setns(fd & 0xffff_ffff, nsflags & 0xffff_ffff, ret, 0)
}

/// `setns` through the 32-bit compat entry (`int 0x80`, x86_64 with
/// IA32 emulation), which the per-syscall tracepoints do not see. This
/// hooks every syscall's exit, so it is opt-in; the first comparison drops
/// everything but the compat setns number.
#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit_compat_setns(ctx: BtfTracePointContext) -> i32 {
    let _ = on_compat_exit(&ctx);
    0
}

fn on_compat_exit(ctx: &BtfTracePointContext) -> Option<()> {
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

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
