//! cgroup programs: a task moved into a cgroup, cgroups created and
//! removed in the unified hierarchy.

use aya_ebpf::programs::BtfTracePointContext;
use pidns_ebpf::{DATA_LEN, TaskState, class, flags, kind, stream, task};

use crate::{
    builder::EventBuilder,
    config::off,
    enforce,
    kernel::{cgroup_v2_id, current_ids, is_host_pidns, read, task_pidns_inum},
    maps::{
        CGROUPS, TASKS, budget_key, cgroup_class, current_may_mark_runtime_setup, drops_findings,
        task_state, within_budget,
    },
    runtime::{runtime_setup_exe, runtime_state},
};

/// `cgroup_attach_task(dst_cgrp, path, task, threadgroup)`. See the entry
/// point in `main.rs`.
pub fn on_attach(ctx: &BtfTracePointContext) -> Option<()> {
    let cgrp: *const u8 = ctx.arg(0);
    let id = cgroup_v2_id(cgrp as u64)?;
    let class = cgroup_class(id);
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
                let _ = TASKS.insert(pid, runtime_state(Some(exe)), 0);
            }
            Some(None) => {
                if in_host
                    && class.class & class::BASE == class::CONTAINER
                    && !drops_findings(class.class)
                {
                    let _ = TASKS.insert(pid, TaskState::new(task::CONTAINER_PROCESS), 0);
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
