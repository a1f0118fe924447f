//! `--proc-access`: a container process in the host PID namespace opening
//! `/proc/<pid>/...` of a process outside its container. At the exit of
//! `open`, `openat` and `openat2`:
//!
//! - a successful open of a procfs file is judged by the file opened: its
//!   inode names the process (`proc_inode.pid`), however the path was
//!   spelled, `openat(dirfd_of_/proc/1, "environ")` included;
//! - anything else (a failed open, or one that left procfs through `root`,
//!   `cwd`, `fd/N` or `ns/*`) by the path as given: an absolute
//!   `/proc/<digits>/...` (the process found by its number, as for
//!   signals), or a relative one under a directory fd that is a
//!   `/proc/<pid>` directory.
//!
//! Cost for everyone else: one cgroup lookup per open.

use aya_ebpf::{
    helpers::{
        bpf_probe_read_kernel_str_bytes, bpf_probe_read_user_str_bytes,
        generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
    },
    programs::TracePointContext,
};
use pidns_ebpf::{COMM_LEN, access, flags, magic};

use crate::{
    config::off,
    firsts::report,
    host_access::{in_container, resolve_task, watched_actor},
    kernel::{current_fd_file, current_task, read},
    maps::budget_key,
    pending::Pending,
    pidlookup::task_by_pid,
};

const ENOENT: i64 = 2;
const ESRCH: i64 = 3;
/// `AT_FDCWD`.
const AT_FDCWD: i32 = -100;

#[cfg(not(bpf_target_arch = "aarch64"))]
const NR_OPEN: i32 = 2;
#[cfg(bpf_target_arch = "aarch64")]
const NR_OPEN: i32 = -1; // arm64 has none

/// The process a procfs file belongs to (its task), `None` for any other
/// file and for procfs files of no process (`/proc/meminfo`).
#[inline(always)]
fn proc_file_task(file: u64) -> Option<u64> {
    let inode: u64 = read(file, off!(file_f_inode))?;
    let sb: u64 = read(inode, off!(inode_i_sb))?;
    let magic: u64 = read(sb, off!(super_block_s_magic))?;
    if magic != magic::PROC {
        return None;
    }
    let proc_inode = inode.checked_sub(u64::from(off!(proc_inode_vfs_inode)))?;
    let pid: u64 = read(proc_inode, off!(proc_inode_pid))?;
    // pid->tasks[PIDTYPE_PID].first is the task's pid_links[PIDTYPE_PID].
    let first: u64 = read(pid, off!(pid_tasks))?;
    first.checked_sub(u64::from(off!(task_pid_links)))
}

/// The pid of an absolute `/proc/<digits>/...` path.
#[inline(always)]
fn path_pid(path: &[u8; 24]) -> Option<u32> {
    if &path[..6] != b"/proc/" {
        return None;
    }
    let mut pid: u32 = 0;
    let mut i = 6;
    while i < 17 {
        let c = path[i];
        if c == b'/' || c == 0 {
            break;
        }
        if !c.is_ascii_digit() {
            return None;
        }
        pid = pid.checked_mul(10)?.checked_add(u32::from(c - b'0'))?;
        i += 1;
    }
    (i > 6).then_some(pid)
}

/// `sys_exit_open`, `sys_exit_openat`, `sys_exit_openat2`.
pub fn on_open_exit(ctx: &TracePointContext) -> Option<()> {
    let (cg, class, tgid, tid) = watched_actor()?;
    // SAFETY: reads inside the tracepoint record.
    let nr: i32 = unsafe { ctx.read_at(8) }.ok()?;
    // SAFETY: as above.
    let ret: i64 = unsafe { ctx.read_at(off!(syscall_exit_ret) as usize) }.ok()?;
    // SAFETY: the helper takes the current task; the result is only read
    // through bpf_probe_read_kernel.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as u64;
    let (dirfd, name): (i32, u64) = if nr == NR_OPEN {
        (AT_FDCWD, read(regs, off!(pt_regs_arg0))?)
    } else {
        (
            read::<u64>(regs, off!(pt_regs_arg0))? as i32,
            read(regs, off!(pt_regs_arg1))?,
        )
    };
    let mut p = Pending {
        op: access::PROC_OPEN,
        flags: 0,
        detail: 0,
        cg,
        class: class.class,
        target_pid: 0,
        container: budget_key(cg, &class),
        target_cgroup: 0,
        target_comm: [0; COMM_LEN],
    };
    if ret >= 0
        && let Some(file) = current_fd_file(ret as u64)
        && let Some(task) = proc_file_task(file)
    {
        resolve_task(&mut p, task)?;
        let dentry: u64 = read(file, off!(file_dentry))?;
        let leaf: u64 = read(dentry, off!(dentry_name))?;
        let mut head = [0u8; 8];
        // SAFETY: the read fails rather than faults; the rest stays 0.
        let _ = unsafe { bpf_probe_read_kernel_str_bytes(leaf as *const u8, &mut head) };
        return judged(&p, ret, tgid, tid, u64::from_le_bytes(head), (leaf, false));
    }
    if ret == -ENOENT || ret == -ESRCH {
        return None; // no such process (a `ps` racing an exit): no access
    }
    let mut head = [0u8; 24];
    // SAFETY: the read fails rather than faults.
    unsafe { bpf_probe_read_user_str_bytes(name as *const u8, &mut head) }.ok()?;
    p.flags |= flags::PATH;
    if head[0] == b'/' {
        p.target_pid = path_pid(&head)?;
        if let Some(task) = task_by_pid(current_task(), p.target_pid) {
            resolve_task(&mut p, task)?;
        }
    } else if dirfd >= 0 {
        let dir = current_fd_file(dirfd as u64)?;
        resolve_task(&mut p, proc_file_task(dir)?)?;
    } else {
        return None;
    }
    judged(&p, ret, tgid, tid, 0, (name, true))
}

/// Drops the caller's own process and its container's, then reports.
#[inline(always)]
fn judged(
    p: &Pending,
    ret: i64,
    tgid: u32,
    tid: u32,
    detail: u64,
    path: (u64, bool),
) -> Option<()> {
    if p.target_pid == tgid {
        return None;
    }
    if p.flags & flags::TARGET_RESOLVED != 0 && in_container(p.target_cgroup, p.container) {
        return None;
    }
    report(p, ret, tgid, tid, detail, Some(path))
}
