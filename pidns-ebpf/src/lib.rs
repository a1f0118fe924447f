//! The layout shared by pidns's eBPF probes and its user space.
//!
//! This library is compiled twice: into the probes (`bpfel-unknown-none`) and
//! into `pidns-user`, so the two sides cannot disagree on it. Everything here
//! is `#[repr(C)]` plain data.
#![no_std]

/// Length of a task's `comm`, NUL included (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;
/// Bytes of variable data an event carries (an exec'd filename, a cgroup path).
pub const DATA_LEN: usize = 256;

/// What an [`Event`] reports.
pub mod kind {
    /// A process in the host PID namespace exec'd inside a container cgroup.
    pub const EXEC: u32 = 1;
    /// A container process in the host PID namespace created a child process
    /// that stays in the host PID namespace.
    pub const FORK: u32 = 2;
    /// A process in the host PID namespace was moved into a container cgroup,
    /// or created directly in one (clone3 `CLONE_INTO_CGROUP`, see
    /// [`flags::INTO_CGROUP`](super::flags::INTO_CGROUP)).
    pub const ATTACH: u32 = 3;
    /// A process in a container cgroup called setns (successfully or not: see
    /// [`Event::ret`](super::Event::ret)), whatever the target: user space
    /// decides whether the namespace is the host's.
    pub const SETNS: u32 = 4;
    /// A cgroup was created in the unified hierarchy (`data` holds its path).
    pub const CGROUP_MKDIR: u32 = 5;
    /// A cgroup was removed from the unified hierarchy.
    pub const CGROUP_RMDIR: u32 = 6;
    /// A container process in the host PID namespace created a child that
    /// lives in another PID namespace: a new one (`CLONE_NEWPID`), or the one
    /// the parent's `pid_for_children` was switched to by unshare or setns.
    pub const NEW_PIDNS: u32 = 7;
}

/// [`Event::flags`] bits.
pub mod flags {
    /// The event's cgroup was not yet classified in [`CGROUPS`](super::maps);
    /// user space must decide whether it is a container's.
    pub const UNCLASSIFIED: u32 = 1 << 0;
    /// MKDIR: the path filled `data` and may have been cut short; it must not
    /// be classified from `data`.
    pub const TRUNCATED: u32 = 1 << 1;
    /// ATTACH: the task is a runtime's own setup process (its executable is
    /// its parent's, or a memfd or sealed overlayfs copy of it), not a
    /// container process, until it execs something else.
    pub const RUNTIME_SETUP: u32 = 1 << 2;
    /// ATTACH: the task was created in the cgroup (clone3 `CLONE_INTO_CGROUP`)
    /// by `ppid`, rather than moved there.
    pub const INTO_CGROUP: u32 = 1 << 3;
    /// ATTACH: the executables could not be read, so the kernel could not
    /// tell a runtime's setup process from any other.
    pub const EXE_UNKNOWN: u32 = 1 << 4;
    /// SETNS: the fd was a pidfd: `nstype` holds every namespace type asked
    /// for, `target_pid` and `target_cgroup_id` name the process.
    pub const PIDFD: u32 = 1 << 5;
    /// SETNS: the caller itself lives in the host PID namespace.
    pub const CALLER_HOST_PIDNS: u32 = 1 << 6;
    /// EXEC: `arg` holds the clone flags the process was created with (a
    /// vfork child, reported at its exec).
    pub const CLONE_FLAGS: u32 = 1 << 7;
    /// SETNS: made through the 32-bit compat entry (`int 0x80`).
    pub const COMPAT: u32 = 1 << 8;
}

/// Values of the `CGROUPS` map (cgroup v2 id → class), kept by user space.
/// A cgroup missing from the map is unclassified: its events go to user space.
pub mod class {
    pub const HOST: u32 = 1;
    pub const CONTAINER: u32 = 2;
    /// A container on the `--allow` list: its events are dropped in the kernel.
    pub const ALLOWED: u32 = 3;
}

/// Map names, as the probes declare them.
pub mod maps {
    pub const EVENTS: &str = "EVENTS";
    pub const CGROUPS: &str = "CGROUPS";
    pub const TASKS: &str = "TASKS";
    pub const LOST: &str = "LOST";
    pub const LAST_WAKEUP: &str = "LAST_WAKEUP";
    /// The [`Config`](super::Config) global.
    pub const CONFIG: &str = "CONFIG";
}

/// [`TaskState::state`] values (`TASKS` map, keyed by tgid).
pub mod task {
    /// A container process living in the host PID namespace: its children are
    /// reported (in the host PID namespace: a finding; in another: `NEW_PIDNS`).
    pub const CONTAINER_PROCESS: u32 = 1;
    /// A runtime's setup process: moved into (or created in) a container cgroup
    /// while running its parent's executable or a memfd copy of it, or a child
    /// of such a process (runc's `[0:PARENT]` → `[1:CHILD]` → `[2:INIT]`). It
    /// is no container process: its setns calls are not reported, and an exec
    /// of the same executable (or of a memfd) is the runtime re-executing
    /// itself. Its first other exec is the container's payload.
    pub const RUNTIME_SETUP: u32 = 2;
}

/// A `TASKS` map value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskState {
    /// One of [`task`].
    pub state: u32,
    pub _pad: u32,
    /// CONTAINER_PROCESS created by vfork: its clone flags, reported with its
    /// exec and then cleared.
    pub clone_flags: u64,
    /// RUNTIME_SETUP: the runtime's executable, inode number ...
    pub exe_ino: u64,
    /// ... and its superblock's device.
    pub exe_dev: u32,
    pub _pad2: u32,
}

impl TaskState {
    pub const fn new(state: u32) -> TaskState {
        TaskState {
            state,
            _pad: 0,
            clone_flags: 0,
            exe_ino: 0,
            exe_dev: 0,
            _pad2: 0,
        }
    }
}

/// A CPU wakes the ring buffer's reader at most this often. Under a storm
/// this turns one wakeup per event into one per millisecond; the reader
/// collects the events in between with a [`DRAIN_AFTER_NS`] backstop.
pub const WAKEUP_INTERVAL_NS: u64 = 1_000_000;
/// After a drain that found events, the reader drains again this much later
/// (more than [`WAKEUP_INTERVAL_NS`]), so no event waits longer than that.
pub const DRAIN_AFTER_NS: u64 = 2_000_000;

/// Namespace types: the `CLONE_NEW*` flag and the name `/proc/<pid>/ns` uses.
pub const NS_TYPES: [(u32, &str); 8] = [
    (0x0002_0000, "mnt"),
    (0x0400_0000, "uts"),
    (0x0800_0000, "ipc"),
    (0x1000_0000, "user"),
    (0x2000_0000, "pid"),
    (0x4000_0000, "net"),
    (0x0200_0000, "cgroup"),
    (0x0000_0080, "time"),
];

/// Index of the PID namespace in [`NS_TYPES`].
pub const NS_PID: usize = 4;

/// Every `CLONE_NEW*` flag of [`NS_TYPES`].
pub const NS_FLAGS: u32 = {
    let mut all = 0;
    let mut i = 0;
    while i < NS_TYPES.len() {
        all |= NS_TYPES[i].0;
        i += 1;
    }
    all
};

/// `CLONE_NEWPID`.
pub const CLONE_NEWPID: u32 = NS_TYPES[NS_PID].0;

/// Clone flags the probes look at (`include/uapi/linux/sched.h`).
pub mod clone {
    pub const VFORK: u64 = 0x4000;
    pub const THREAD: u64 = 0x0001_0000;
    pub const INTO_CGROUP: u64 = 0x2_0000_0000;
}

/// One record in the `EVENTS` ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// One of [`kind`].
    pub kind: u32,
    /// [`flags`] bits.
    pub flags: u32,
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when it happened.
    pub ktime_ns: u64,
    /// The cgroup v2 id the event is about.
    pub cgroup_id: u64,
    /// The subject process (tgid, as the initial PID namespace numbers it).
    /// FORK, NEW_PIDNS: the child.
    pub pid: u32,
    /// The subject thread.
    pub tid: u32,
    /// EXEC, FORK, NEW_PIDNS: the parent; ATTACH: the process that moved it
    /// (or, with `INTO_CGROUP`, created it).
    pub ppid: u32,
    /// SETNS: the `CLONE_NEW*` type of the namespace joined; with
    /// [`flags::PIDFD`], every type asked for.
    pub nstype: u32,
    /// SETNS through a namespace fd: the namespace's inode. FORK, NEW_PIDNS:
    /// the child's PID namespace inode. ATTACH: the task's.
    pub ns_inum: u32,
    /// SETNS: the syscall's result (0 or a negative errno).
    pub ret: i32,
    /// FORK, NEW_PIDNS, and EXEC with [`flags::CLONE_FLAGS`]: the clone flags
    /// (`kernel_clone_args.flags`: no exit signal).
    pub arg: u64,
    /// SETNS through a pidfd: the target process (global PID).
    pub target_pid: u32,
    pub _reserved: u32,
    /// SETNS through a pidfd: the target's cgroup v2 id.
    pub target_cgroup_id: u64,
    /// The subject's `comm`, NUL-padded (FORK, NEW_PIDNS: the parent's).
    pub comm: [u8; COMM_LEN],
    /// EXEC: the filename; MKDIR: the cgroup path. NUL-terminated.
    pub data: [u8; DATA_LEN],
}

/// Kernel struct offsets, read from the running kernel's BTF at load time so
/// that no layout is hard-coded for one kernel. In bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_comm: u32,
    pub task_thread_pid: u32,
    pub task_real_parent: u32,
    pub task_mm: u32,
    pub task_cgroups: u32,
    pub task_pid_links: u32,
    pub task_files: u32,
    pub pid_level: u32,
    pub pid_numbers: u32,
    pub pid_tasks: u32,
    pub upid_size: u32,
    pub upid_nr: u32,
    pub upid_ns: u32,
    pub pid_namespace_ns: u32,
    pub ns_common_inum: u32,
    /// `ns_common.ns_type` (6.18+), or `ns_common.ops` when
    /// [`ns_type_via_ops`](Self::ns_type_via_ops) is set ...
    pub ns_common_type: u32,
    /// ... in which case the type is `proc_ns_operations.type` (before 6.18).
    pub proc_ns_operations_type: u32,
    pub ns_type_via_ops: u32,
    pub linux_binprm_file: u32,
    pub linux_binprm_filename: u32,
    pub mm_exe_file: u32,
    pub css_set_dfl_cgrp: u32,
    pub cgroup_kn: u32,
    pub cgroup_root: u32,
    pub kernfs_node_id: u32,
    pub cgroup_root_hierarchy_id: u32,
    pub files_struct_fdt: u32,
    pub fdtable_max_fds: u32,
    pub fdtable_fd: u32,
    pub file_f_inode: u32,
    pub file_private_data: u32,
    /// `file.f_path.dentry`.
    pub file_dentry: u32,
    /// `dentry.d_name.name`.
    pub dentry_name: u32,
    pub inode_i_ino: u32,
    pub inode_i_sb: u32,
    pub inode_i_private: u32,
    pub super_block_s_magic: u32,
    pub super_block_s_dev: u32,
    /// Syscall exit tracepoints: offset of `ret` in the record.
    pub syscall_exit_ret: u32,
    /// Where a syscall's first two arguments sit in the saved user registers
    /// at syscall exit: `pt_regs.di` and `.si` on x86_64; `orig_x0` (x0 then
    /// holds the return value) and `regs[1]` on arm64.
    pub pt_regs_arg0: u32,
    pub pt_regs_arg1: u32,
    /// 32-bit compat syscalls (x86_64 only; 0 elsewhere): `pt_regs.orig_ax`,
    /// `.bx` and `.cx` (the i386 ABI's syscall number, first and second
    /// argument) ...
    pub pt_regs_orig_ax: u32,
    pub pt_regs_compat_arg0: u32,
    pub pt_regs_compat_arg1: u32,
    /// ... and `task_struct.thread_info.status`, whose `TS_COMPAT` bit says
    /// the current syscall came through the compat entry.
    pub task_thread_info_status: u32,
    pub _pad: u32,
}

/// Load-time configuration (the `CONFIG` global).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `st_dev` of the nsfs, for `bpf_get_ns_current_pid_tgid`.
    pub host_pidns_dev: u64,
    /// Inode of the host PID namespace.
    pub host_pidns_ino: u64,
    pub offsets: Offsets,
}

impl Config {
    pub const ZERO: Config = Config {
        host_pidns_dev: 0,
        host_pidns_ino: 0,
        offsets: Offsets {
            task_pid: 0,
            task_tgid: 0,
            task_comm: 0,
            task_thread_pid: 0,
            task_real_parent: 0,
            task_mm: 0,
            task_cgroups: 0,
            task_pid_links: 0,
            task_files: 0,
            pid_level: 0,
            pid_numbers: 0,
            pid_tasks: 0,
            upid_size: 0,
            upid_nr: 0,
            upid_ns: 0,
            pid_namespace_ns: 0,
            ns_common_inum: 0,
            ns_common_type: 0,
            proc_ns_operations_type: 0,
            ns_type_via_ops: 0,
            linux_binprm_file: 0,
            linux_binprm_filename: 0,
            mm_exe_file: 0,
            css_set_dfl_cgrp: 0,
            cgroup_kn: 0,
            cgroup_root: 0,
            kernfs_node_id: 0,
            cgroup_root_hierarchy_id: 0,
            files_struct_fdt: 0,
            fdtable_max_fds: 0,
            fdtable_fd: 0,
            file_f_inode: 0,
            file_private_data: 0,
            file_dentry: 0,
            dentry_name: 0,
            inode_i_ino: 0,
            inode_i_sb: 0,
            inode_i_private: 0,
            super_block_s_magic: 0,
            super_block_s_dev: 0,
            syscall_exit_ret: 0,
            pt_regs_arg0: 0,
            pt_regs_arg1: 0,
            pt_regs_orig_ax: 0,
            pt_regs_compat_arg0: 0,
            pt_regs_compat_arg1: 0,
            task_thread_info_status: 0,
            _pad: 0,
        },
    };
}

/// Superblock magics (`include/uapi/linux/magic.h`).
pub mod magic {
    /// nsfs: a namespace file (`/proc/<pid>/ns/*`).
    pub const NSFS: u64 = 0x6e73_6673;
    /// pidfs (6.9+): a pidfd; the inode's `i_private` is the `struct pid`.
    pub const PIDFS: u64 = 0x5049_4446;
    /// Anonymous inodes: before pidfs, a pidfd was one named `[pidfd]`, with
    /// the `struct pid` in the file's `private_data`.
    pub const ANON_INODE_FS: u64 = 0x0904_1934;
    /// tmpfs and hugetlbfs: where memfds live.
    pub const TMPFS: u64 = 0x0102_1994;
    pub const HUGETLBFS: u64 = 0x9584_58f6;
    /// overlayfs: runc 1.2+ re-executes itself from a private, read-only
    /// overlayfs mount of its own directory.
    pub const OVERLAYFS: u64 = 0x794c_7630;
}

/// The i386 ABI's setns number (`arch/x86/entry/syscalls/syscall_32.tbl`).
pub const COMPAT_NR_SETNS: u64 = 346;
/// `thread_info.status` bit: the current syscall is a compat one (x86).
pub const TS_COMPAT: u32 = 0x0002;

/// The bytes of a NUL-padded field (`comm`, `data`) before the first NUL.
pub fn cstr(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(n) => &bytes[..n],
        None => bytes,
    }
}

#[cfg(feature = "user")]
impl Event {
    /// Decodes one ring-buffer record. The kernel writes [`Event`]s only, so a
    /// record of another size is the other side of a layout mismatch (an
    /// object built from another version of [`Event`]): refused rather than
    /// misread.
    pub fn decode(bytes: &[u8]) -> Option<Event> {
        if bytes.len() != core::mem::size_of::<Event>() {
            return None;
        }
        // SAFETY: Event is plain old data (integers and byte arrays); any bit
        // pattern is valid, and read_unaligned copes with the record's alignment.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<Event>()) })
    }
}

// SAFETY: plain `#[repr(C)]` integers and arrays of them, without padding
// holes that could leak uninitialised bytes.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Config {}

// SAFETY: as above; the explicit `_pad` fields fill every hole.
#[cfg(feature = "user")]
unsafe impl aya::Pod for TaskState {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_have_no_implicit_padding() {
        assert_eq!(core::mem::size_of::<Event>(), 88 + DATA_LEN);
        assert_eq!(core::mem::size_of::<Offsets>(), 48 * 4);
        assert_eq!(core::mem::size_of::<Config>(), 16 + 48 * 4);
        assert_eq!(core::mem::size_of::<TaskState>(), 32);
    }

    #[test]
    fn cstr_stops_at_the_first_nul() {
        assert_eq!(cstr(b"sleep\0\0x"), b"sleep");
        assert_eq!(cstr(b"full"), b"full");
        assert_eq!(cstr(b""), b"");
    }

    #[cfg(feature = "user")]
    #[test]
    fn decode_takes_events_of_the_exact_size_only() {
        let mut e = Event {
            kind: kind::EXEC,
            flags: 0,
            ktime_ns: 1,
            cgroup_id: 7,
            pid: 42,
            tid: 42,
            ppid: 1,
            nstype: 0,
            ns_inum: 0,
            ret: 0,
            arg: 0,
            target_pid: 0,
            _reserved: 0,
            target_cgroup_id: 0,
            comm: [0; COMM_LEN],
            data: [0; DATA_LEN],
        };
        e.comm[..5].copy_from_slice(b"sleep");
        // SAFETY: reading the bytes of a plain-data struct.
        let b = unsafe {
            core::slice::from_raw_parts(
                (&e as *const Event).cast::<u8>(),
                core::mem::size_of::<Event>(),
            )
        };
        let d = Event::decode(b).expect("decodes");
        assert_eq!(
            (d.kind, d.cgroup_id, d.pid, cstr(&d.comm)),
            (kind::EXEC, 7, 42, &b"sleep"[..])
        );
        assert!(Event::decode(&b[..b.len() - 1]).is_none(), "short");
        let mut long = [0u8; core::mem::size_of::<Event>() + 1];
        long[..b.len()].copy_from_slice(b);
        assert!(Event::decode(&long).is_none(), "long: another layout");
        assert!(Event::decode(&[]).is_none());
    }

    #[test]
    fn namespace_flags_are_derived() {
        assert_eq!(NS_FLAGS, 0x7e02_0080);
        assert_eq!(CLONE_NEWPID, 0x2000_0000);
    }
}
