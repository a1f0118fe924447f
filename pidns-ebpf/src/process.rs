//! Process programs: exec, task creation, exit. They find container
//! processes that live in the host PID namespace, and their children.

use aya_ebpf::programs::BtfTracePointContext;
use pidns_ebpf::{TaskState, class, clone, flags, kind, task};

use crate::{
    builder::EventBuilder,
    kernel::{
        current_cgroup, current_ids, current_in_host_pidns, file_exe, is_host_pidns, is_memfd,
        read, task_cgroup_id, task_exe, task_pidns_inum,
    },
    maps::{TASKS, cgroup_class, ignored, off, task_state, watched_cgroup},
    runtime::runtime_state,
};

/// `sched_process_exec(p, old_pid, bprm)`. See the entry point in `main.rs`.
pub fn on_exec(ctx: &BtfTracePointContext) -> Option<()> {
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
    let mut e = EventBuilder::new(kind::EXEC, class, cg, tgid, tid)?;
    e.ppid(ppid.unwrap_or(0) as u32);
    e.arg(clone_flags);
    if clone_flags != 0 {
        e.add_flags(flags::CLONE_FLAGS);
    }
    e.current_comm();
    e.data_str(filename.unwrap_or(0));
    e.submit();
    Some(())
}

/// `task_newtask(task, clone_flags)`. See the entry point in `main.rs`.
pub fn on_newtask(ctx: &BtfTracePointContext) -> Option<()> {
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
    let mut e = EventBuilder::new(kind, class, cg, child_pid, child_pid)?;
    e.ppid(parent);
    e.arg(clone_flags);
    e.ns_inum(inum);
    e.current_comm();
    e.submit();
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
    let mut e = EventBuilder::new(kind::ATTACH, class, id, child_pid, child_pid)?;
    e.add_flags(flags::INTO_CGROUP | flags::RUNTIME_SETUP);
    if exe.is_none() {
        e.add_flags(flags::EXE_UNKNOWN);
    }
    e.ppid(parent);
    e.arg(clone_flags);
    e.ns_inum(inum);
    e.current_comm();
    e.submit();
    Some(())
}

/// A process's end forgets its state (a thread's end does not).
#[inline(always)]
pub fn on_exit() {
    let (tgid, tid) = current_ids();
    if tgid == tid {
        let _ = TASKS.remove(tgid);
    }
}
