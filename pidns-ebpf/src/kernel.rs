//! Reading the kernel: the current task through helpers, everything else
//! (a new child, a moved task, a file behind an fd) by walking kernel
//! structs at the offsets user space took from the running kernel's BTF.
//! Every walk returns `None` rather than a guess when a read fails.

use aya_ebpf::{
    bindings::bpf_pidns_info,
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_probe_read_kernel,
        bpf_probe_read_kernel_str_bytes,
        generated::{bpf_get_current_cgroup_id, bpf_get_ns_current_pid_tgid},
    },
};
use pidns_ebpf::{NS_TYPES, Offsets, magic};

use crate::config::{conf, off};

/// Highest PID namespace nesting level the kernel allows.
const MAX_PID_NS_LEVEL: u32 = 32;

#[inline(always)]
pub fn read<T: Copy>(base: u64, offset: u32) -> Option<T> {
    if base == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel copes with any address; it fails rather than faults.
    unsafe { bpf_probe_read_kernel((base + u64::from(offset)) as *const T) }.ok()
}

/// The current task's (tgid, tid).
#[inline(always)]
pub fn current_ids() -> (u32, u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    ((pid_tgid >> 32) as u32, pid_tgid as u32)
}

#[inline(always)]
pub fn current_task() -> u64 {
    // SAFETY: no arguments; the pointer is only read through bpf_probe_read_kernel.
    unsafe { bpf_get_current_task() }
}

#[inline(always)]
pub fn current_cgroup() -> u64 {
    // SAFETY: no arguments, no memory access.
    unsafe { bpf_get_current_cgroup_id() }
}

/// Whether the current task lives in the host PID namespace.
#[inline(always)]
pub fn current_in_host_pidns() -> bool {
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
pub fn task_pidns_inum(task: u64) -> Option<u32> {
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
pub fn is_host_pidns(inum: u32) -> bool {
    u64::from(inum) == conf!(host_pidns_ino)
}

/// The cgroup's id if it belongs to the unified (v2) hierarchy.
#[inline(always)]
pub fn cgroup_v2_id(cgrp: u64) -> Option<u64> {
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
pub fn task_cgroup_id(task: u64) -> Option<u64> {
    let cset: u64 = read(task, off!(task_cgroups))?;
    let cgrp: u64 = read(cset, off!(css_set_dfl_cgrp))?;
    let kn: u64 = read(cgrp, off!(cgroup_kn))?;
    read(kn, off!(kernfs_node_id))
}

/// An executable file's identity.
#[derive(Clone, Copy)]
pub struct Exe {
    pub file: u64,
    pub ino: u64,
    pub dev: u32,
}

#[inline(always)]
pub fn file_exe(file: u64) -> Option<Exe> {
    let inode: u64 = read(file, off!(file_f_inode))?;
    let ino: u64 = read(inode, off!(inode_i_ino))?;
    let sb: u64 = read(inode, off!(inode_i_sb))?;
    let dev: u32 = read(sb, off!(super_block_s_dev))?;
    Some(Exe { file, ino, dev })
}

/// `task->mm->exe_file`; `None` for a task without memory (a kernel thread).
#[inline(always)]
pub fn task_exe(task: u64) -> Option<Exe> {
    let mm: u64 = read(task, off!(task_mm))?;
    let file: u64 = read(mm, off!(mm_exe_file))?;
    file_exe(file)
}

/// The current task's namespaces of every type (by [`NS_TYPES`] index), as
/// setns would change them (for children: PID and time); 0 where unread.
#[inline(always)]
pub fn current_namespaces() -> [u32; NS_TYPES.len()] {
    let task = current_task();
    let mut ns = [0u32; NS_TYPES.len()];
    for (index, slot) in ns.iter_mut().enumerate() {
        *slot = task_ns_inum(task, index, true).unwrap_or(0);
    }
    ns
}

/// `task->fs->root.dentry`: the directory the task sees as `/`, which
/// `pivot_root`, `chroot` and joining a mount namespace change.
#[inline(always)]
pub fn task_root(task: u64) -> Option<u64> {
    let fs: u64 = read(task, off!(task_fs))?;
    read(fs, off!(fs_struct_root_dentry)).filter(|&d: &u64| d != 0)
}

#[inline(always)]
pub fn file_magic(file: u64) -> Option<u64> {
    let inode: u64 = read(file, off!(file_f_inode))?;
    let sb: u64 = read(inode, off!(inode_i_sb))?;
    read(sb, off!(super_block_s_magic))
}

/// The first bytes of the file's name (`f_path.dentry->d_name`), NUL-padded.
#[inline(always)]
pub fn file_name(file: u64) -> [u8; 16] {
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

/// A memfd (runc 1.1's `memfd:runc_cloned:/proc/self/exe`): a file of the
/// kernel's internal shm mount, whose device user space learned at start-up.
/// A file named `memfd:*` on any other tmpfs (a container's `/dev`, a
/// volume) is not one.
#[inline(always)]
pub fn is_memfd(file: u64) -> bool {
    let memfd_dev = conf!(memfd_dev);
    memfd_dev != 0 && file_exe(file).is_some_and(|e| e.dev == memfd_dev)
}

/// A task's namespace of type `index` (in [`pidns_ebpf::NS_TYPES`] order)
/// as its `CLONE_NEW*` flag names it: `for_children` the one its next
/// children get (what unshare and setns change for PID and time
/// namespaces), else the one it lives in. Its inode number.
#[inline(always)]
pub fn task_ns_inum(task: u64, index: usize, for_children: bool) -> Option<u32> {
    let (nsproxy_member, ns_member) = match index {
        0 => (off!(nsproxy_mnt), off!(mnt_namespace_ns)),
        1 => (off!(nsproxy_uts), off!(uts_namespace_ns)),
        2 => (off!(nsproxy_ipc), off!(ipc_namespace_ns)),
        3 => {
            let cred: u64 = read(task, off!(task_real_cred))?;
            let user_ns: u64 = read(cred, off!(cred_user_ns))?;
            return read(user_ns, off!(user_namespace_ns) + off!(ns_common_inum));
        }
        4 if !for_children => return task_pidns_inum(task),
        4 => (off!(nsproxy_pid_for_children), off!(pid_namespace_ns)),
        5 => (off!(nsproxy_net), off!(net_ns)),
        6 => (off!(nsproxy_cgroup), off!(cgroup_namespace_ns)),
        7 if for_children => (off!(nsproxy_time_for_children), off!(time_namespace_ns)),
        7 => (off!(nsproxy_time), off!(time_namespace_ns)),
        _ => return None,
    };
    let nsproxy: u64 = read(task, off!(task_nsproxy))?;
    let ns: u64 = read(nsproxy, nsproxy_member)?;
    read(ns, ns_member + off!(ns_common_inum))
}

/// Whether the task's thread group is dead: at `sched_process_exit` its
/// `signal->live` has already been decremented (`do_exit`), so 0 means this
/// was the last thread. A leader thread exiting while others live on is
/// not the process's end.
#[inline(always)]
pub fn group_dead(task: u64) -> bool {
    read::<u64>(task, off!(task_signal))
        .and_then(|signal| read::<i32>(signal, off!(signal_live)))
        .is_none_or(|live| live <= 0)
}

/// The file behind descriptor `fd` of the current task: `current->files->fdt->fd[fd]`.
#[inline(always)]
pub fn current_fd_file(fd: u64) -> Option<u64> {
    let files: u64 = read(current_task(), off!(task_files))?;
    let fdt: u64 = read(files, off!(files_struct_fdt))?;
    let max: u32 = read(fdt, off!(fdtable_max_fds))?;
    if fd >= u64::from(max) {
        return None;
    }
    let fds: u64 = read(fdt, off!(fdtable_fd))?;
    read(fds, (fd * 8) as u32)
}

/// A namespace's `CLONE_NEW*` type: in `ns_common` itself (6.18+), or in
/// the `proc_ns_operations` it points at (before).
#[inline(always)]
pub fn ns_type(ns: u64) -> Option<u32> {
    if off!(ns_type_via_ops) == Offsets::NS_TYPE_IN_NS_COMMON {
        read(ns, off!(ns_common_type))
    } else {
        let ops: u64 = read(ns, off!(ns_common_type))?;
        read(ops, off!(proc_ns_operations_type))
    }
}

/// The `struct pid` behind a pidfd: pidfs keeps it in the inode (6.9+),
/// the anonymous inode before it in the file.
#[inline(always)]
pub fn pidfd_pid(file: u64, inode: u64, magic: u64) -> Option<u64> {
    if magic == magic::PIDFS {
        return read(inode, off!(inode_i_private));
    }
    if magic == magic::ANON_INODE_FS && file_name(file).starts_with(b"[pidfd]\0") {
        return read(file, off!(file_private_data));
    }
    None
}

/// Whether the current task lives in the host PID namespace and in a mount
/// namespace other than the host's: what an exec outside container cgroups
/// needs to be sent (user space then compares its root with the host's).
/// A host service's private mount namespace (`PrivateTmp=`, `unshare -m`)
/// is one too; the root tells it apart.
#[inline(always)]
pub fn current_in_foreign_mount_ns() -> bool {
    let host = conf!(host_mntns_ino);
    host != 0
        && current_in_host_pidns()
        // index 0: the mount namespace, the first of NS_TYPES
        && task_ns_inum(current_task(), 0, false).is_some_and(|mnt| mnt != host)
}
