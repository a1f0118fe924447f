//! Process programs: exec, task creation, exit. They find container
//! processes that live in the host PID namespace, and their children, and
//! learn the namespaces host processes create.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    programs::{BtfTracePointContext, TracePointContext},
};
use pidns_ebpf::{NS_FLAGS, NS_TYPES, TaskState, class, clone, flags, kind, stream, task};

use crate::{
    builder::EventBuilder,
    cgroup::{Attributed, current_attributed_as},
    config::off,
    enforce,
    kernel::{
        current_cgroup, current_ids, current_in_foreign_mount_ns, current_in_host_pidns,
        current_namespaces, current_task, group_dead, is_host_pidns, read, task_cgroup_id,
        task_exe, task_ns_inum, task_pidns_inum,
    },
    maps::{
        OWN_NS, TASKS, add_created_host_ns, budget_key, cgroup_class, current_effective_class,
        current_may_mark_runtime_setup, drops_findings, task_state, within_budget,
    },
    runtime::{is_own_reexec, runtime_state, unmarked_setup},
};

/// `sched_process_exec(p, old_pid, bprm)`. See the entry point in `main.rs`.
pub fn on_exec(ctx: &BtfTracePointContext) -> Option<()> {
    let (tgid, tid) = current_ids();
    let s = task_state(tgid);
    let Attributed { cg, class, by_task } = current_attributed_as(&s);
    let mut extra = 0;
    if class.class & class::BASE == class::HOST {
        // Outside container cgroups, only a process in the host PID
        // namespace and another mount namespace than the host's may be a
        // container's: user space judges its root.
        if !current_in_foreign_mount_ns() {
            return None;
        }
        extra = flags::FOREIGN_MNT;
    } else if class.class & class::BASE != class::CONTAINER && current_in_foreign_mount_ns() {
        extra = flags::FOREIGN_MNT;
    }
    if by_task {
        extra |= flags::BY_TASK;
    }
    let bprm: *const u8 = ctx.arg(2);
    let bprm = bprm as u64;
    let mut clone_flags = 0;
    if s.state == task::RUNTIME_SETUP {
        if let Some(file) = read::<u64>(bprm, off!(linux_binprm_file))
            && is_own_reexec(&s, file)
        {
            return None; // the runtime re-executing itself
        }
        // The payload: from now on a container process like any other
        // (also in an allowed container, whose setns calls are reported).
        let _ = TASKS.remove(tgid);
        // The container's first: its namespaces are the ones its runtime
        // set up, before anything of the container's ran.
        let _ = OWN_NS.insert(
            budget_key(cg, &class),
            current_namespaces(),
            u64::from(BPF_NOEXIST),
        );
    } else if s.state == task::CONTAINER_PROCESS {
        clone_flags = s.clone_flags;
    } else if class.class & class::BASE == class::CONTAINER
        // every exec of an isolated container gets here: the cheap test first
        && current_in_host_pidns()
        && let Some(setup) = unmarked_setup()
    {
        let _ = TASKS.insert(tgid, setup, 0);
        return None; // a runtime's setup process, its mark not made yet
    }
    // A host cgroup's exec gets here only as a candidate (FOREIGN_MNT).
    if (drops_findings(class.class) && class.class & class::BASE != class::HOST)
        || !current_in_host_pidns()
    {
        return None;
    }
    // Only a known container cgroup makes a container process; for one not
    // classified yet, user space decides and tracks it if need be.
    if class.class & class::BASE == class::CONTAINER || clone_flags != 0 || by_task {
        let mut next = TaskState::anchored(cg);
        if by_task {
            next.escaped = s.escaped; // its escape is said once
        }
        let _ = TASKS.insert(tgid, next, 0);
    }
    let enforced = enforce::host_pidns_current(class.class, tgid);
    if !within_budget(budget_key(cg, &class), cg, kind::EXEC, 0, tgid, 0) {
        return None;
    }
    let task_ptr: *const u8 = ctx.arg(0);
    let parent: Option<u64> = read(task_ptr as u64, off!(task_real_parent));
    let ppid: Option<i32> = parent.and_then(|p| read(p, off!(task_tgid)));
    let filename: Option<u64> = read(bprm, off!(linux_binprm_filename));
    let mut e = EventBuilder::new(stream::FINDINGS, kind::EXEC, class.class, cg, tgid, tid)?;
    e.add_flags(extra);
    e.ppid(ppid.unwrap_or(0) as u32);
    e.arg(clone_flags);
    if clone_flags != 0 {
        e.add_flags(flags::CLONE_FLAGS);
    }
    if enforced {
        e.add_flags(flags::ENFORCED);
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
    let child: *const u8 = ctx.arg(0);
    let child = child as u64;
    if clone_flags & u64::from(NS_FLAGS) != 0 {
        learn_created_namespaces(child, clone_flags as u32, false);
    }
    let (tgid, _) = current_ids();
    let s = task_state(tgid);
    if s.state == task::CONTAINER_PROCESS {
        container_child(child, clone_flags, tgid, &s)
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

/// Namespaces just created by a process in a host cgroup (its new child's,
/// `task`, with `clone`; its own next children's with `unshare`) are the
/// host's: each goes into `HOST_NS`, unverified, and user space hears of
/// it to verify it.
#[inline(always)]
pub fn learn_created_namespaces(task: u64, ns_flags: u32, for_children: bool) {
    if current_effective_class() & class::BASE != class::HOST {
        return;
    }
    let (tgid, tid) = current_ids();
    for (index, (flag, _)) in NS_TYPES.iter().enumerate() {
        if ns_flags & flag == 0 {
            continue;
        }
        let Some(inum) = task_ns_inum(task, index, for_children) else {
            continue;
        };
        if add_created_host_ns(inum, *flag)
            && let Some(mut e) = EventBuilder::new(
                stream::OTHER,
                kind::NS_CREATED,
                class::HOST,
                current_cgroup(),
                tgid,
                tid,
            )
        {
            e.nstype(*flag);
            e.ns_inum(inum);
            e.current_comm();
            e.submit();
        }
    }
}

fn container_child(child: u64, clone_flags: u64, parent: u32, ps: &TaskState) -> Option<()> {
    let child_pid: i32 = read(child, off!(task_pid))?;
    let child_pid = child_pid as u32;
    let inum = task_pidns_inum(child)?;
    let Attributed { cg, class, by_task } = current_attributed_as(ps);
    if drops_findings(class.class) {
        return None;
    }
    let (kind, ring, doomed) = if is_host_pidns(inum) {
        // `--enforce host-pidns`: the child dies at its return from the
        // clone, and is reported (vfork child or not) now. `class` is its
        // container's, also for a process that left its cgroup.
        let doomed = enforce::doom_child(class.class, parent, child_pid);
        if class.class & class::BASE == class::CONTAINER || by_task {
            let mut s = TaskState::anchored(cg);
            // Born outside its container's cgroup: no escape of its own.
            s.escaped = u32::from(by_task);
            if clone_flags & clone::VFORK != 0 && !doomed {
                s.clone_flags = clone_flags;
            }
            let _ = TASKS.insert(child_pid, s, 0);
        }
        // A vfork child (posix_spawn, Go's os/exec, busybox) borrows its
        // parent's memory until it execs or exits: it is reported at its
        // exec, or at its exit if it never execs, with these flags.
        if clone_flags & clone::VFORK != 0 && !doomed {
            return None;
        }
        (kind::FORK, stream::FINDINGS, doomed)
    } else {
        (kind::NEW_PIDNS, stream::OTHER, false)
    };
    if !within_budget(budget_key(cg, &class), cg, kind, 0, child_pid, 0) {
        return None;
    }
    let mut e = EventBuilder::new(ring, kind, class.class, cg, child_pid, child_pid)?;
    if by_task {
        e.add_flags(flags::BY_TASK);
    }
    e.ppid(parent);
    e.arg(clone_flags);
    e.ns_inum(inum);
    if doomed {
        e.add_flags(flags::ENFORCED);
    }
    e.current_comm();
    e.submit();
    Some(())
}

/// A child created straight into another cgroup (clone3
/// `CLONE_INTO_CGROUP`). Created by a host process (crun), it is a
/// runtime's setup process until it execs something else; created by
/// anything else, it is a task arriving in a container cgroup like one
/// moved there.
fn into_cgroup(child: u64, clone_flags: u64, parent: u32) -> Option<()> {
    let id = task_cgroup_id(child)?;
    if id == current_cgroup() {
        return None;
    }
    let class = cgroup_class(id);
    if class.class & class::BASE == class::HOST {
        return None;
    }
    let child_pid: i32 = read(child, off!(task_pid))?;
    let child_pid = child_pid as u32;
    let exe = task_exe(child);
    let setup = current_may_mark_runtime_setup(parent);
    let inum = task_pidns_inum(child)?;
    let in_host = is_host_pidns(inum);
    if setup {
        let _ = TASKS.insert(child_pid, runtime_state(child, exe), 0);
    } else if in_host
        && class.class & class::BASE == class::CONTAINER
        && !drops_findings(class.class)
    {
        let _ = TASKS.insert(child_pid, TaskState::anchored(id), 0);
    }
    if !in_host || drops_findings(class.class) {
        return None;
    }
    let ring = if setup {
        stream::OTHER
    } else {
        if !within_budget(budget_key(id, &class), id, kind::ATTACH, 0, child_pid, 0) {
            return None;
        }
        stream::FINDINGS
    };
    let mut e = EventBuilder::new(ring, kind::ATTACH, class.class, id, child_pid, child_pid)?;
    e.add_flags(flags::INTO_CGROUP);
    if setup {
        e.add_flags(flags::RUNTIME_SETUP);
        if exe.is_none() {
            e.add_flags(flags::EXE_UNKNOWN);
        }
    }
    e.ppid(parent);
    e.arg(clone_flags);
    e.ns_inum(inum);
    e.current_comm();
    e.submit();
    Some(())
}

/// The end of a process (its last thread; a leader thread exiting while
/// others live on is not) forgets its state. A vfork child that never
/// exec'd is reported now.
#[inline(always)]
pub fn on_exit() -> Option<()> {
    let (tgid, tid) = current_ids();
    let s = task_state(tgid);
    if s.state == 0 || !group_dead(current_task()) {
        return None;
    }
    let _ = TASKS.remove(tgid);
    if s.state != task::CONTAINER_PROCESS || s.clone_flags & clone::VFORK == 0 {
        return None;
    }
    let Attributed { cg, class, by_task } = current_attributed_as(&s);
    if drops_findings(class.class) {
        return None;
    }
    if !within_budget(budget_key(cg, &class), cg, kind::FORK, 0, tgid, 0) {
        return None;
    }
    let task = current_task();
    let parent: Option<u64> = read(task, off!(task_real_parent));
    let ppid: Option<i32> = parent.and_then(|p| read(p, off!(task_tgid)));
    let mut e = EventBuilder::new(stream::FINDINGS, kind::FORK, class.class, cg, tgid, tid)?;
    e.add_flags(flags::EXITED);
    if by_task {
        e.add_flags(flags::BY_TASK);
    }
    e.ppid(ppid.unwrap_or(0) as u32);
    e.arg(s.clone_flags);
    e.ns_inum(task_pidns_inum(task).unwrap_or(0));
    e.current_comm();
    e.submit();
    Some(())
}

/// `sys_exit_{clone,clone3,fork,vfork}`: see [`enforce::on_fork_child`].
#[inline(always)]
pub fn on_fork_child_exit(ctx: &TracePointContext) -> Option<()> {
    // SAFETY: reads inside the tracepoint record.
    let ret: i64 = unsafe { ctx.read_at(off!(syscall_exit_ret) as usize) }.ok()?;
    enforce::on_fork_child(ret)
}
