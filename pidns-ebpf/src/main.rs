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
//!
//! This file holds only the entry points, one per program, named as user
//! space loads them ([`pidns_ebpf::programs`]); each calls into the module
//! of its family:
//!
//! - [`process`]: exec, task creation, exit;
//! - [`cgroup`]: attach, mkdir, rmdir;
//! - [`setns`]: native and compat setns;
//! - [`enforce`]: `--enforce`, killing from the probe;
//! - [`host_access`]: signals, ptrace, process_vm_readv/writev, pidfd_getfd
//!   aimed outside the caller's container;
//! - [`procopen`]: `/proc/<pid>/...` opens of such processes (`--proc-access`);
//!
//! on top of [`maps`] (the maps and the `CONFIG` global), [`kernel`]
//! (walking kernel structs at BTF offsets), [`runtime`] (recognising a
//! runtime's setup process) and [`builder`] (the events).
#![no_std]
#![no_main]

mod builder;
mod cgroup;
mod config;
mod enforce;
mod firsts;
mod host_access;
mod kernel;
mod maps;
mod pending;
mod pidlookup;
mod process;
mod procopen;
mod runtime;
mod setns;

use aya_ebpf::{
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};

/// A process execs in a container cgroup while in the host PID namespace:
/// `docker run --pid=host`, `docker exec` into such a container, a runtime
/// joining a host process's PID namespace. A runtime's setup process
/// re-executing the runtime (the same file, or a memfd copy) is not
/// reported; its first other exec is the container's payload.
#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    let _ = process::on_exec(&ctx);
    0
}

/// A task is created (`copy_process`, after the child's PID and cgroup are
/// set; the current task is the parent), with the flags the kernel used,
/// whatever the syscall: fork, vfork, clone, clone3, their compat forms.
///
/// - Namespaces a process in a host cgroup creates with it join `HOST_NS`.
/// - A container process's child in the host PID namespace is reported
///   (a vfork child at its exec), one in another PID namespace is a
///   `NEW_PIDNS` event.
/// - A runtime setup process's child is one too (runc's `[1:CHILD]` and
///   `[2:INIT]`).
/// - A child created directly in a container cgroup (`CLONE_INTO_CGROUP`,
///   as crun does) is handled like a task moved there.
#[btf_tracepoint(function = "task_newtask")]
pub fn task_newtask(ctx: BtfTracePointContext) -> i32 {
    let _ = process::on_newtask(&ctx);
    0
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(_ctx: BtfTracePointContext) -> i32 {
    let _ = process::on_exit();
    0
}

/// A task is moved into a cgroup. A runtime's setup process is marked as
/// such, in whatever PID namespace; any other task moved in from the host
/// PID namespace becomes a container process. Reported (with the verdict in
/// the flags) when the cgroup is (or may be) a container's and the task
/// lives in the host PID namespace.
#[btf_tracepoint(function = "cgroup_attach_task")]
pub fn cgroup_attach_task(ctx: BtfTracePointContext) -> i32 {
    let _ = cgroup::on_attach(&ctx);
    0
}

/// New cgroups reach user space with their path, before any process joins
/// them, so that it can classify them in time. A path that fills `data` may
/// have been cut short and is flagged so.
#[btf_tracepoint(function = "cgroup_mkdir")]
pub fn cgroup_mkdir(ctx: BtfTracePointContext) -> i32 {
    let _ = cgroup::on_mkdir(&ctx);
    0
}

#[btf_tracepoint(function = "cgroup_rmdir")]
pub fn cgroup_rmdir(ctx: BtfTracePointContext) -> i32 {
    cgroup::on_rmdir(&ctx);
    0
}

/// `setns` entering: the caller's namespaces before it switches them.
#[tracepoint(category = "syscalls", name = "sys_enter_setns")]
pub fn sys_enter_setns(_ctx: TracePointContext) -> i32 {
    let _ = setns::on_setns_enter();
    0
}

/// `setns` through the native syscall entry. The arguments are read from
/// the saved user registers.
#[tracepoint(category = "syscalls", name = "sys_exit_setns")]
pub fn sys_exit_setns(ctx: TracePointContext) -> i32 {
    let _ = setns::on_setns_exit(&ctx);
    0
}

/// `unshare` at its exit: namespaces created in host cgroups join the
/// host's set the setns filter checks against.
#[tracepoint(category = "syscalls", name = "sys_exit_unshare")]
pub fn sys_exit_unshare(ctx: TracePointContext) -> i32 {
    let _ = setns::on_unshare_exit(&ctx);
    0
}

/// `setns` through the 32-bit compat entry (`int 0x80`, x86_64 with
/// IA32 emulation), which the per-syscall tracepoints do not see. This
/// hooks every syscall's exit, so it is opt-in; the first comparison drops
/// everything but the compat setns number.
#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit_compat_setns(ctx: BtfTracePointContext) -> i32 {
    let _ = setns::on_compat_exit(&ctx);
    0
}

/// A new process's return from fork, vfork, clone or clone3, in its own
/// context (one program, attached to each of those exit tracepoints, and
/// only under `--enforce host-pidns`): a child its parent's `task_newtask`
/// doomed dies here, before its first instruction.
#[tracepoint(category = "syscalls", name = "sys_exit_clone")]
pub fn sys_exit_fork_child(ctx: TracePointContext) -> i32 {
    let _ = process::on_fork_child_exit(&ctx);
    0
}

/// A host access syscall entering (`syscalls:sys_enter_<x>` of each of
/// [`pidns_ebpf::access::SYSCALLS`], one program attached to all): a known
/// container process in the host PID namespace acting on another process.
#[tracepoint(category = "syscalls", name = "sys_enter_kill")]
pub fn sys_enter_access(ctx: TracePointContext) -> i32 {
    let _ = host_access::on_enter(&ctx);
    0
}

/// The same syscalls' exit: the access, with its result.
#[tracepoint(category = "syscalls", name = "sys_exit_kill")]
pub fn sys_exit_access(ctx: TracePointContext) -> i32 {
    let _ = host_access::on_exit(&ctx);
    0
}

/// A signal generated: inside a host access syscall, the task it reached.
#[btf_tracepoint(function = "signal_generate")]
pub fn signal_generate(ctx: BtfTracePointContext) -> i32 {
    let _ = host_access::on_signal_generate(&ctx);
    0
}

/// `--proc-access`: `open`, `openat`, `openat2` at their exit (one program
/// attached to each): a `/proc/<pid>/...` of a process outside the
/// caller's container.
#[tracepoint(category = "syscalls", name = "sys_exit_openat")]
pub fn sys_exit_proc_open(ctx: TracePointContext) -> i32 {
    let _ = procopen::on_open_exit(&ctx);
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
