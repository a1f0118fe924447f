//! cgroup programs: a task moved into a cgroup (and a container process
//! moved out of its container's), cgroups created and removed in the
//! unified hierarchy; and which container a task's events belong to once it
//! left its container's cgroup.

use aya_ebpf::programs::BtfTracePointContext;
use pidns_ebpf::{
    CgroupClass, DATA_LEN, SYNTHETIC_ANCHOR, TaskState, class, flags, kind, stream, task,
};

use crate::{
    builder::EventBuilder,
    config::off,
    enforce,
    kernel::{cgroup_v2_id, current_cgroup, current_ids, is_host_pidns, read, task_pidns_inum},
    maps::{
        CGROUPS, OWN_NS, TASKS, budget_key, cgroup_class, current_may_mark_runtime_setup,
        drops_findings, task_state, within_budget,
    },
    runtime::{runtime_setup_exe, runtime_state},
};

/// Where a task's events are attributed: a cgroup id, what user space said
/// of it, and whether it is the task's anchor rather than its cgroup.
pub struct Attributed {
    pub cg: u64,
    pub class: CgroupClass,
    /// `cg` is the container the task's `TASKS` entry keeps
    /// ([`flags::BY_TASK`]), not its current cgroup.
    pub by_task: bool,
}

/// The container a task's events belong to: its cgroup (`cg`, of class
/// `class`), unless it is a container process that is in a cgroup that is
/// not a container's (it left, or was found by its root in one): then the
/// container its `TASKS` entry `s` keeps. A container cgroup is always its
/// own: a task moved into another container's is that one's.
#[inline(always)]
pub fn attributed(cg: u64, class: CgroupClass, s: &TaskState) -> Attributed {
    if class.class & class::BASE != class::CONTAINER
        && s.state == task::CONTAINER_PROCESS
        && s.container != 0
        && s.container != cg
    {
        return Attributed {
            cg: s.container,
            class: cgroup_class(s.container),
            by_task: true,
        };
    }
    Attributed {
        cg,
        class,
        by_task: false,
    }
}

/// [`attributed`] for the current task, whose `TASKS` entry is only looked
/// up when its cgroup is not a container's.
#[inline(always)]
pub fn current_attributed(tgid: u32) -> Attributed {
    let cg = current_cgroup();
    let class = cgroup_class(cg);
    if class.class & class::BASE == class::CONTAINER {
        return Attributed {
            cg,
            class,
            by_task: false,
        };
    }
    attributed(cg, class, &task_state(tgid))
}

/// [`attributed`] for the current task, whose `TASKS` entry `s` is at hand.
#[inline(always)]
pub fn current_attributed_as(s: &TaskState) -> Attributed {
    let cg = current_cgroup();
    attributed(cg, cgroup_class(cg), s)
}

/// `cgroup_attach_task(dst_cgrp, path, task, threadgroup)`. See the entry
/// point in `main.rs`.
pub fn on_attach(ctx: &BtfTracePointContext) -> Option<()> {
    let cgrp: *const u8 = ctx.arg(0);
    let id = cgroup_v2_id(cgrp as u64)?;
    let class = cgroup_class(id);
    if class.class & class::BASE != class::CONTAINER && on_leave(ctx, id) {
        return Some(());
    }
    if class.class & class::BASE == class::HOST {
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
    let (mover, _) = current_ids();
    let mut verdict = 0;
    if task_state(pid).state != task::CONTAINER_PROCESS {
        // Only a host process moving a task marks it as a runtime's setup
        // process: a container process that can write its own cgroups
        // moving a child that runs its own executable gains nothing.
        let setup = if current_may_mark_runtime_setup(mover) {
            runtime_setup_exe(task_ptr)
        } else {
            Some(None)
        };
        match setup {
            Some(Some(exe)) => {
                verdict = flags::RUNTIME_SETUP;
                let _ = TASKS.insert(pid, runtime_state(task_ptr, Some(exe)), 0);
            }
            Some(None) => {
                if in_host
                    && class.class & class::BASE == class::CONTAINER
                    && !drops_findings(class.class)
                {
                    let _ = TASKS.insert(pid, TaskState::anchored(id), 0);
                }
            }
            None => verdict = flags::EXE_UNKNOWN,
        }
    }
    // An allowed container's setup processes are marked above (their setns
    // calls are the runtime's), its processes are no findings.
    if !in_host || drops_findings(class.class) {
        return None;
    }
    // `--enforce host-pidns`: a process that moved itself in dies here.
    if verdict == 0 && mover == pid && enforce::host_pidns_current(class.class, pid) {
        verdict = flags::ENFORCED;
    }
    let ring = if verdict == flags::RUNTIME_SETUP {
        stream::OTHER
    } else {
        if !within_budget(budget_key(id, &class), id, kind::ATTACH, 0, pid, 0) {
            return None;
        }
        stream::FINDINGS
    };
    let mut e = EventBuilder::new(ring, kind::ATTACH, class.class, id, pid, tid as u32)?;
    e.add_flags(verdict);
    e.ppid(mover);
    e.ns_inum(inum);
    e.task_comm(task_ptr);
    e.submit();
    Some(())
}

/// A task moved into cgroup `id`, which is not a container's (a host
/// cgroup, or one user space has not classified yet): if it is a container
/// process anchored to a container cgroup it has not left before, that is
/// its escape, sent with its anchor (`cgroup_id`) and where it went
/// (`target_cgroup_id`). Its `TASKS` entry keeps the anchor: what it does
/// from now on is its container's. Returns whether it was one.
fn on_leave(ctx: &BtfTracePointContext, id: u64) -> bool {
    let task_ptr: *const u8 = ctx.arg(2);
    let task_ptr = task_ptr as u64;
    let (Some(pid), Some(tid)) = (
        read::<i32>(task_ptr, off!(task_tgid)),
        read::<i32>(task_ptr, off!(task_pid)),
    ) else {
        return false;
    };
    if pid != tid {
        return false; // a thread: its process is reported through its leader
    }
    let pid = pid as u32;
    let s = task_state(pid);
    if s.state != task::CONTAINER_PROCESS
        || s.container == 0
        || s.container == id
        || s.container & SYNTHETIC_ANCHOR != 0
    {
        return false;
    }
    if s.escaped == 0 {
        let _ = TASKS.insert(pid, TaskState { escaped: 1, ..s }, 0);
    } else {
        return true; // said once; it keeps its anchor wherever it goes
    }
    let class = cgroup_class(s.container);
    let (mover, _) = current_ids();
    if !within_budget(
        budget_key(s.container, &class),
        s.container,
        kind::CGROUP_ESCAPE,
        0,
        pid,
        0,
    ) {
        return true;
    }
    let Some(mut e) = EventBuilder::new(
        stream::FINDINGS,
        kind::CGROUP_ESCAPE,
        class.class,
        s.container,
        pid,
        tid as u32,
    ) else {
        return true;
    };
    e.add_flags(flags::BY_TASK);
    e.ppid(mover);
    e.ns_inum(task_pidns_inum(task_ptr).unwrap_or(0));
    e.target(0, id);
    e.task_comm(task_ptr);
    e.submit();
    true
}

/// `cgroup_mkdir(cgrp, path)`. See the entry point in `main.rs`.
pub fn on_mkdir(ctx: &BtfTracePointContext) -> Option<()> {
    let cgrp: *const u8 = ctx.arg(0);
    let path: *const u8 = ctx.arg(1);
    let id = cgroup_v2_id(cgrp as u64)?;
    let (tgid, tid) = current_ids();
    let mut e = EventBuilder::new(
        stream::OTHER,
        kind::CGROUP_MKDIR,
        class::HOST,
        id,
        tgid,
        tid,
    )?;
    if e.data_str(path as u64) >= DATA_LEN - 1 {
        e.add_flags(flags::TRUNCATED);
    }
    e.submit();
    Some(())
}

/// `cgroup_rmdir(cgrp, path)`: the cgroup leaves `CGROUPS`, and user space
/// hears of it.
#[inline(always)]
pub fn on_rmdir(ctx: &BtfTracePointContext) {
    let cgrp: *const u8 = ctx.arg(0);
    if let Some(id) = cgroup_v2_id(cgrp as u64) {
        let _ = CGROUPS.remove(id);
        let _ = OWN_NS.remove(id);
        let (tgid, tid) = current_ids();
        if let Some(e) = EventBuilder::new(
            stream::OTHER,
            kind::CGROUP_RMDIR,
            class::HOST,
            id,
            tgid,
            tid,
        ) {
            e.submit();
        }
    }
}
