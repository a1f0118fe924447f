//! Telling a container runtime's own setup process (runc's `runc init`,
//! crun's or youki's fork) from a container process: it runs its parent's
//! executable or a private copy of it.

use pidns_ebpf::{TaskState, class, magic, task};

use crate::{
    config::off,
    kernel::{
        Exe, current_task, file_exe, file_magic, file_name, is_memfd, read, task_cgroup_id,
        task_exe, task_root,
    },
    maps::{cgroup_class, task_state},
};

/// Whether a task moved into (or created in) a container cgroup is a
/// runtime's own setup process: it runs its parent's executable (runc
/// re-executing itself as `runc init`, crun's or youki's fork), or a private
/// copy of it: a memfd (runc 1.1) or a file of the same name on a private
/// overlayfs mount (runc 1.2+). `Some(Some(exe))`: yes, with the executable
/// to recognise the runtime's own re-exec by; `Some(None)`: no; `None`:
/// unknown (its executable is unreadable).
#[inline(always)]
pub fn runtime_setup_exe(task: u64) -> Option<Option<Exe>> {
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

/// The `TASKS` entry of a runtime's setup process `task`, with the
/// executable and the root its own re-exec is recognised by.
pub fn runtime_state(task: u64, exe: Option<Exe>) -> TaskState {
    let mut s = TaskState::new(task::RUNTIME_SETUP);
    if let Some(exe) = exe {
        s.exe_ino = exe.ino;
        s.exe_dev = exe.dev;
    }
    s.root = task_root(task).unwrap_or(0);
    s
}

/// Whether the setup process `s` running `file` is the runtime executing
/// itself again (runc's memfd copy, its own file): the same executable,
/// from the root it was marked in. Anything else is the payload.
#[inline(always)]
pub fn is_own_reexec(s: &TaskState, file: u64) -> bool {
    s.root != 0
        && task_root(current_task()) == Some(s.root)
        && (is_memfd(file)
            || file_exe(file).is_some_and(|e| e.ino == s.exe_ino && e.dev == s.exe_dev))
}

/// A task exec-ing in a container cgroup with no `TASKS` entry yet that is
/// a runtime's setup process whose move there is not marked yet: its exec
/// raced the `cgroup_attach_task` probe on another CPU (runc's `runc init`
/// re-executing its memfd copy while its parent moves it in). It is one
/// when it runs what a setup process runs ([`runtime_setup_exe`]), its
/// parent lives in a host cgroup and is no container process, and it still
/// has its parent's root: a container's process, run in the container's
/// root, never does. Its entry, as the probe would have made it.
#[inline(always)]
pub fn unmarked_setup() -> Option<TaskState> {
    let task = current_task();
    let parent: u64 = read(task, off!(task_real_parent))?;
    let parent_tgid: i32 = read(parent, off!(task_tgid))?;
    if cgroup_class(task_cgroup_id(parent)?).class & class::BASE != class::HOST
        || task_state(parent_tgid as u32).state == task::CONTAINER_PROCESS
    {
        return None;
    }
    let root = task_root(task)?;
    if task_root(parent)? != root {
        return None;
    }
    let exe = runtime_setup_exe(task)??;
    Some(runtime_state(task, Some(exe)))
}
