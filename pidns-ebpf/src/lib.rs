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
    /// A process in the host PID namespace was moved into a container cgroup.
    pub const ATTACH: u32 = 3;
    /// A process in a container cgroup called setns into one of the host's
    /// namespaces (successfully or not: see [`Event::ret`](super::Event::ret)).
    pub const SETNS: u32 = 4;
    /// A cgroup was created in the unified hierarchy (`data` holds its path).
    pub const CGROUP_MKDIR: u32 = 5;
    /// A cgroup was removed from the unified hierarchy.
    pub const CGROUP_RMDIR: u32 = 6;
}

/// [`Event::flags`] bits.
pub mod flags {
    /// The event's cgroup was not yet classified in [`CGROUPS`](super::maps);
    /// user space must decide whether it is a container's.
    pub const UNCLASSIFIED: u32 = 1 << 0;
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
    pub const CLONE_FLAGS: &str = "CLONE_FLAGS";
    pub const LOST: &str = "LOST";
    pub const LAST_WAKEUP: &str = "LAST_WAKEUP";
    /// The [`Config`](super::Config) global.
    pub const CONFIG: &str = "CONFIG";
}

/// `TASKS` map values (keyed by tgid).
pub mod task {
    /// A container process living in the host PID namespace: its children that
    /// stay there are reported.
    pub const CONTAINER_PROCESS: u32 = 1;
    /// Moved into a container cgroup from the host PID namespace. Runtimes
    /// move their own setup process (runc's `runc init`), which may then
    /// re-execute the runtime binary: such an exec is not a finding and does
    /// not make it a container process. Any other exec (the payload of
    /// `runc exec`, a process moved in by hand) is reported as usual.
    pub const ATTACHED: u32 = 2;
}

/// Runtime binaries, as `comm` names them after an exec, NUL-padded.
pub const RUNTIME_COMMS: [&[u8]; 4] = [b"runc\0", b"crun\0", b"youki\0", b"runsc\0"];

/// A CPU wakes the ring buffer's reader at most this often. Under a storm
/// this turns one wakeup per event into one per millisecond; the reader
/// collects the events in between with a [`DRAIN_AFTER_NS`] backstop.
pub const WAKEUP_INTERVAL_NS: u64 = 1_000_000;
/// After a drain that found events, the reader drains again this much later
/// (more than [`WAKEUP_INTERVAL_NS`]), so no event waits longer than that.
pub const DRAIN_AFTER_NS: u64 = 2_000_000;

/// Namespace types: the `CLONE_NEW*` flag and the name `/proc/<pid>/ns` uses.
/// The index is the position in [`Config::host_ns_inum`].
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
    pub pid: u32,
    /// The subject thread.
    pub tid: u32,
    /// FORK: the parent; ATTACH: the process that moved it; EXEC: the parent.
    pub ppid: u32,
    /// SETNS: the `CLONE_NEW*` type of the namespace joined.
    pub nstype: u32,
    /// SETNS: the namespace's inode; FORK: the child's PID namespace inode.
    pub ns_inum: u32,
    /// SETNS: the syscall's result (0 or a negative errno).
    pub ret: i32,
    /// FORK: the clone flags; MKDIR: the cgroup's level.
    pub arg: u64,
    /// The subject's `comm`, NUL-padded.
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
    pub pid_level: u32,
    pub pid_numbers: u32,
    pub upid_size: u32,
    pub upid_ns: u32,
    pub pid_namespace_ns: u32,
    pub ns_common_inum: u32,
    pub kernel_clone_args_flags: u32,
    pub linux_binprm_filename: u32,
    pub cgroup_kn: u32,
    pub cgroup_root: u32,
    pub kernfs_node_id: u32,
    pub cgroup_root_hierarchy_id: u32,
    pub task_files: u32,
    pub files_struct_fdt: u32,
    pub fdtable_max_fds: u32,
    pub fdtable_fd: u32,
    pub file_f_inode: u32,
    pub inode_i_sb: u32,
    pub inode_i_private: u32,
    pub super_block_s_magic: u32,
    /// Syscall tracepoints: offset of the first argument in the record.
    pub syscall_enter_arg0: u32,
    /// Syscall exit tracepoints: offset of `ret` in the record.
    pub syscall_exit_ret: u32,
    /// Where a syscall's first argument sits in the saved user registers
    /// (`pt_regs.di` on x86_64, `pt_regs.regs[0]` on arm64).
    pub pt_regs_arg0: u32,
}

/// Load-time configuration (the `CONFIG` global).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `st_dev` of the nsfs, for `bpf_get_ns_current_pid_tgid`.
    pub host_pidns_dev: u64,
    /// Inode of the host PID namespace.
    pub host_pidns_ino: u64,
    /// Inodes of the host's namespaces, by [`NS_TYPES`] index; 0 when unknown.
    pub host_ns_inum: [u32; 8],
    pub offsets: Offsets,
}

impl Config {
    pub const ZERO: Config = Config {
        host_pidns_dev: 0,
        host_pidns_ino: 0,
        host_ns_inum: [0; 8],
        offsets: Offsets {
            task_pid: 0,
            task_tgid: 0,
            task_comm: 0,
            task_thread_pid: 0,
            task_real_parent: 0,
            pid_level: 0,
            pid_numbers: 0,
            upid_size: 0,
            upid_ns: 0,
            pid_namespace_ns: 0,
            ns_common_inum: 0,
            kernel_clone_args_flags: 0,
            linux_binprm_filename: 0,
            cgroup_kn: 0,
            cgroup_root: 0,
            kernfs_node_id: 0,
            cgroup_root_hierarchy_id: 0,
            task_files: 0,
            files_struct_fdt: 0,
            fdtable_max_fds: 0,
            fdtable_fd: 0,
            file_f_inode: 0,
            inode_i_sb: 0,
            inode_i_private: 0,
            super_block_s_magic: 0,
            syscall_enter_arg0: 0,
            syscall_exit_ret: 0,
            pt_regs_arg0: 0,
        },
    };
}

/// `s_magic` of the nsfs superblock: a file whose inode has it is a namespace.
pub const NSFS_MAGIC: u64 = 0x6e73_6673;

// SAFETY: plain `#[repr(C)]` integers and arrays of them, without padding
// holes that could leak uninitialised bytes.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Config {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_have_no_implicit_padding() {
        assert_eq!(core::mem::size_of::<Event>(), 72 + DATA_LEN);
        assert_eq!(core::mem::size_of::<Offsets>(), 28 * 4);
        assert_eq!(core::mem::size_of::<Config>(), 16 + 32 + 28 * 4);
    }
}
