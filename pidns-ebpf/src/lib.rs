//! The layout shared by pidns's eBPF probes and its user space.
//!
//! This library is compiled twice: into the probes (`bpfel-unknown-none`) and
//! into `pidns-user`, so the two sides cannot disagree on it. Everything here
//! is `#[repr(C)]` plain data.
#![no_std]

mod access_layout;
mod offsets;

pub use access_layout::{AccessCount, AccessKey, access};
pub use offsets::{OffsetField, OffsetSource, Offsets};

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
    /// A process in a host cgroup created a namespace (clone or unshare with
    /// `CLONE_NEW*`): `ns_inum` and `nstype` name it. The probe has put it
    /// in `HOST_NS` as [`host_ns::CREATED`](super::host_ns::CREATED); user
    /// space verifies it.
    pub const NS_CREATED: u32 = 8;
    /// A container process (one in `TASKS`, with the container it is
    /// anchored to) was moved (or moved itself) into a cgroup that is not a
    /// container's: `cgroup_id` is its container's cgroup (its anchor),
    /// `target_cgroup_id` the cgroup it went to, `ppid` who moved it.
    /// Numbered away from the other kinds so that branches adding kinds in
    /// parallel do not collide.
    pub const CGROUP_ESCAPE: u32 = 16;
    /// A process of a container in the host PID namespace acted on another
    /// process (see [`access`](super::access)): `nstype` holds the op,
    /// `arg` the signal number or ptrace request, `ret` the result,
    /// `target_pid` the target. Sent once per [`AccessKey`](crate::AccessKey); its repeats are
    /// counted in `ACCESS_SEEN`. With [`flags::TARGET_RESOLVED`](super::flags::TARGET_RESOLVED),
    /// `target_cgroup_id` is the target's cgroup and `data` starts with its
    /// `comm`. On the other ring, never the findings ring.
    pub const HOST_ACCESS: u32 = 9;
}

/// The two ring buffers. Findings (a container process in the host PID
/// namespace, a setns into a host namespace), and events that may be one
/// (an unclassified cgroup's), travel on a ring of their own that nothing
/// else writes to; everything else (cgroup mkdir/rmdir, `new_pidns`,
/// namespaces created on the host, a runtime's setup moves) on the other.
pub mod stream {
    pub const FINDINGS: u32 = 0;
    pub const OTHER: u32 = 1;
    pub const COUNT: usize = 2;
    pub const NAMES: [&str; COUNT] = ["findings", "other"];
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
    /// FORK: a vfork child reported at its exit, which it reached without
    /// exec'ing.
    pub const EXITED: u32 = 1 << 9;
    /// SETNS: the target is not in `HOST_NS`, which is full: sent unfiltered
    /// for user space to judge.
    pub const UNFILTERED: u32 = 1 << 10;
    /// EXEC, FORK, SETNS, CGROUP_ESCAPE: the task is in a cgroup that is
    /// not a container's, and `cgroup_id` is the container its `TASKS`
    /// entry keeps (its anchor: the container cgroup it left, or an id user
    /// space gave a container found by its root), not its current cgroup.
    /// (Bits 16 and up: away from the others' parallel additions.)
    pub const BY_TASK: u32 = 1 << 16;
    /// EXEC outside container cgroups: the process is in the host PID
    /// namespace and in a mount namespace other than the host's; user space
    /// judges its root (container-like, or a host service's private mount
    /// namespace).
    pub const FOREIGN_MNT: u32 = 1 << 17;
    /// The probe killed the subject (SIGKILL to the current task, delivered
    /// before it returns to user space) under an [`enforce`](super::enforce)
    /// mode. FORK: the child is killed at its return from the clone.
    pub const ENFORCED: u32 = 1 << 11;
    /// HOST_ACCESS: the kernel read the target task itself (a signal it
    /// generated, a pidfd): `target_pid` is its tgid, `target_cgroup_id` its
    /// cgroup, `data[..COMM_LEN]` its `comm`.
    pub const TARGET_RESOLVED: u32 = 1 << 18;
    /// HOST_ACCESS: `kill` of a process group or of every process (a pid
    /// argument of 0 or less); resolved to the first process signalled
    /// outside the caller's container, if any.
    pub const GROUP: u32 = 1 << 19;
    /// HOST_ACCESS, PROC_OPEN: `data[PROC_PATH_AT..]` is the path as the
    /// caller gave it (`/proc/<pid>/...`), not the name of the procfs file
    /// opened: a failed open, or one through `root`, `cwd`, `fd/N`, `ns/*`
    /// that left procfs.
    pub const PATH: u32 = 1 << 20;
    /// SETNS: the kernel knew the caller's container's own namespaces (as
    /// they were at its first exec after its runtime's setup), and the one
    /// joined is not among them: user space need not look for them.
    pub const OWN_NS_KNOWN: u32 = 1 << 21;
}

/// `--enforce` modes ([`Config::enforce`] bits): what the probes kill.
pub mod enforce {
    /// A container process whose setns into a verified host namespace
    /// ([`host_ns::OWN`](super::host_ns::OWN) or
    /// [`HELD`](super::host_ns::HELD)) completed.
    pub const SETNS: u32 = 1 << 0;
    /// A non-allowed container's process seen in the host PID namespace:
    /// at exec, at its return from fork/clone, when it moves itself into
    /// the container's cgroup.
    pub const HOST_PIDNS: u32 = 1 << 1;
    /// Every mode, and their names as `--enforce` and the metrics spell them.
    pub const ALL: [(u32, &str); 2] = [(SETNS, "setns"), (HOST_PIDNS, "host-pidns")];
    /// `ENFORCED` map slots, by mode.
    pub const SLOTS: usize = ALL.len();
}

/// Values of the `HOST_NS` map (namespace inode → [`HostNs`]): where the
/// probes learned that a namespace is the host's. Issue 14's enforcement
/// acts on [`OWN`](host_ns::OWN) and [`HELD`](host_ns::HELD) only.
pub mod host_ns {
    /// One of the host's own namespaces (its init's, a kernel thread's).
    pub const OWN: u32 = 1;
    /// Held by a process user space verified as a host process.
    pub const HELD: u32 = 2;
    /// Created by a process in a host cgroup (clone or unshare with
    /// `CLONE_NEW*`), not verified yet.
    pub const CREATED: u32 = 3;
    /// `FILTER_STATE` slot: set when an insert found `HOST_NS` full; the
    /// setns probe then sends every setns that is not a no-op (fail open).
    pub const OVERFLOW: u32 = 0;
    /// `FILTER_STATE` slot: inserts that failed, in all.
    pub const FAILED_INSERTS: u32 = 1;
}

/// A `HOST_NS` map value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostNs {
    /// The namespace's `CLONE_NEW*` flag.
    pub nstype: u32,
    /// One of [`host_ns`].
    pub provenance: u32,
}

/// Per-container budgets: what one container sends individually per CPU
/// and per [`BUDGET_WINDOW_NS`]; beyond it, its events of that kind are
/// counted in `AGG` and user space reports the count in one line.
pub mod budget {
    /// EXEC and FORK: well above a fork+exec storm's ~12,000/s (6,000 per
    /// CPU a second here).
    pub const PROCESS: u32 = 1000;
    /// ATTACH (not a runtime's setup), SETNS: rare by nature.
    pub const RARE: u32 = 128;
    /// NEW_PIDNS (the other ring).
    pub const NEW_PIDNS: u32 = 256;
    /// HOST_ACCESS, per op: the kernel already sends each
    /// [`AccessKey`](super::AccessKey) once.
    pub const HOST_ACCESS: u32 = 256;
}

/// The window [`budget`]s count in.
pub const BUDGET_WINDOW_NS: u64 = 100_000_000;

/// An `AGG` key: a container (its own cgroup's id, or the event's cgroup
/// while user space has not classified it), the event kind, and for SETNS
/// whether it succeeded.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AggKey {
    pub cgroup_id: u64,
    pub kind: u32,
    pub ok: u32,
}

/// An `AGG` value, per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggValue {
    /// When the current window started.
    pub window_ns: u64,
    /// Events sent individually in it.
    pub sent: u32,
    /// SETNS: the `CLONE_NEW*` types suppressed, ORed.
    pub nstypes: u32,
    /// Events suppressed since the key was created (cumulative).
    pub suppressed: u64,
    /// The last suppressed event: when, which process, which cgroup.
    pub last_ns: u64,
    pub last_pid: u32,
    pub _pad: u32,
    pub last_cgroup_id: u64,
}

/// Values of the `CGROUPS` map (cgroup v2 id → [`CgroupClass`]), kept by
/// user space. A cgroup missing from the map is unclassified: its events go
/// to user space.
pub mod class {
    pub const HOST: u32 = 1;
    pub const CONTAINER: u32 = 2;
    /// Modifier of CONTAINER: on the `--allow` list, allowed to share the
    /// host PID namespace. Its processes are no findings (dropped in the
    /// kernel); its setns calls into host namespaces still are.
    pub const ALLOW_SHARE: u32 = 1 << 8;
    /// Modifier of CONTAINER: on the `--allow-setns` list; its setns calls
    /// are dropped in the kernel.
    pub const ALLOW_SETNS: u32 = 1 << 9;
    /// The base class, without modifiers.
    pub const BASE: u32 = 0xff;
}

/// A `CGROUPS` map value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupClass {
    /// [`class`] bits.
    pub class: u32,
    pub _pad: u32,
    /// CONTAINER: the container's own cgroup (its sub-cgroups share its
    /// budgets).
    pub container: u64,
}

/// Map names, as the probes declare them.
pub mod maps {
    /// The findings ring (see [`stream`](super::stream)).
    pub const FINDINGS: &str = "FINDINGS";
    /// The other ring.
    pub const EVENTS: &str = "EVENTS";
    pub const CGROUPS: &str = "CGROUPS";
    pub const HOST_NS: &str = "HOST_NS";
    pub const FILTER_STATE: &str = "FILTER_STATE";
    pub const AGG: &str = "AGG";
    /// Per CPU, events suppressed by the budgets in all (user space walks
    /// `AGG` only when it moved).
    pub const SUPPRESSED: &str = "SUPPRESSED";
    pub const TASKS: &str = "TASKS";
    pub const LOST: &str = "LOST";
    pub const LAST_WAKEUP: &str = "LAST_WAKEUP";
    /// Per CPU, kills by [`enforce`](super::enforce) mode (slot 0 `setns`,
    /// 1 `host-pidns`), also those whose event found no room.
    pub const ENFORCED: &str = "ENFORCED";
    /// The [`Config`](super::Config) global.
    pub const CONFIG: &str = "CONFIG";
    /// tid → a host access between its syscall's entry and exit.
    pub const ACCESS_PENDING: &str = "ACCESS_PENDING";
    /// [`AccessKey`](super::AccessKey) → [`AccessCount`](super::AccessCount).
    pub const ACCESS_SEEN: &str = "ACCESS_SEEN";
    /// Per CPU, repeats counted in `ACCESS_SEEN` in all (user space walks
    /// it only when this moved).
    pub const ACCESS_REPEATS: &str = "ACCESS_REPEATS";
}

/// Program names: the probes' entry points in `src/main.rs`, by which user
/// space loads and attaches them. aya's attribute macros name a program
/// after its `fn` and take only literals, so the probes cannot use these;
/// a unit test checks them against `main.rs` instead.
pub mod programs {
    pub const SCHED_PROCESS_EXEC: &str = "sched_process_exec";
    pub const TASK_NEWTASK: &str = "task_newtask";
    pub const SCHED_PROCESS_EXIT: &str = "sched_process_exit";
    pub const CGROUP_ATTACH_TASK: &str = "cgroup_attach_task";
    pub const CGROUP_MKDIR: &str = "cgroup_mkdir";
    pub const CGROUP_RMDIR: &str = "cgroup_rmdir";
    pub const SYS_EXIT_SETNS: &str = "sys_exit_setns";
    pub const SYS_EXIT_COMPAT_SETNS: &str = "sys_exit_compat_setns";
    pub const SYS_EXIT_UNSHARE: &str = "sys_exit_unshare";
    pub const SYS_ENTER_SETNS: &str = "sys_enter_setns";
    /// A new process's return from fork/clone/clone3/vfork, in its own
    /// context: where a child doomed by `--enforce host-pidns` dies. Attached
    /// to each of those `syscalls` exit tracepoints, only when enforcing.
    pub const SYS_EXIT_FORK_CHILD: &str = "sys_exit_fork_child";
    /// Attached to `sys_enter_<x>` of every syscall in [`access::SYSCALLS`](super::access::SYSCALLS).
    pub const SYS_ENTER_ACCESS: &str = "sys_enter_access";
    /// Attached to `sys_exit_<x>` of the same syscalls.
    pub const SYS_EXIT_ACCESS: &str = "sys_exit_access";
    pub const SIGNAL_GENERATE: &str = "signal_generate";
    /// `--proc-access`: attached to `sys_exit_open`, `sys_exit_openat`,
    /// `sys_exit_openat2`.
    pub const SYS_EXIT_PROC_OPEN: &str = "sys_exit_proc_open";
    /// Every program in the object.
    pub const ALL: [&str; 15] = [
        SCHED_PROCESS_EXEC,
        TASK_NEWTASK,
        SCHED_PROCESS_EXIT,
        CGROUP_ATTACH_TASK,
        CGROUP_MKDIR,
        CGROUP_RMDIR,
        SYS_EXIT_SETNS,
        SYS_EXIT_COMPAT_SETNS,
        SYS_EXIT_UNSHARE,
        SYS_ENTER_SETNS,
        SYS_EXIT_FORK_CHILD,
        SYS_ENTER_ACCESS,
        SYS_EXIT_ACCESS,
        SIGNAL_GENERATE,
        SYS_EXIT_PROC_OPEN,
    ];
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
    /// CONTAINER_PROCESS: its anchor, the container it belongs to whatever
    /// cgroup it is in: the cgroup v2 id of the container cgroup it was
    /// found in (its events keep that id once it leaves for a cgroup that
    /// is not a container's), or an id user space made up for a container
    /// found by its root ([`SYNTHETIC_ANCHOR`] set). 0: none (its current
    /// cgroup is all there is).
    pub container: u64,
    /// CONTAINER_PROCESS: 1 once its `CGROUP_ESCAPE` was sent.
    pub escaped: u32,
    pub _pad3: u32,
    /// RUNTIME_SETUP: the root directory (its dentry's address) it had when
    /// it was marked. A runtime re-executes itself before it moves into the
    /// container's root; a run of its executable from anywhere else is the
    /// payload (`--entrypoint /proc/self/exe`). 0: unknown.
    pub root: u64,
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
            container: 0,
            escaped: 0,
            _pad3: 0,
            root: 0,
        }
    }

    /// A container process anchored to `container` (see [`TaskState::container`]).
    pub const fn anchored(container: u64) -> TaskState {
        let mut s = TaskState::new(task::CONTAINER_PROCESS);
        s.container = container;
        s
    }
}

/// The bit that marks an anchor user space made up (a container found by
/// its root, in no container cgroup): never a cgroup id (the kernel numbers
/// cgroups from 1 up), never escaped from.
pub const SYNTHETIC_ANCHOR: u64 = 1 << 63;

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

/// Load-time configuration (the `CONFIG` global).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `st_dev` of the nsfs, for `bpf_get_ns_current_pid_tgid`.
    pub host_pidns_dev: u64,
    /// Inode of the host PID namespace.
    pub host_pidns_ino: u64,
    /// The device (kernel encoding, `MKDEV`) of the kernel's internal shm
    /// mount, where every memfd lives: a runtime's memfd copy of itself is
    /// a file there, not a file named `memfd:*` on some tmpfs. 0: unknown
    /// (nothing counts as a memfd).
    pub memfd_dev: u32,
    pub _pad: u32,
    pub offsets: Offsets,
    /// Inode of the host's mount namespace: an exec in the host PID
    /// namespace outside container cgroups in another mount namespace may
    /// be a container's (user space judges its root). 0: unknown (none is
    /// sent).
    pub host_mntns_ino: u32,
    pub _pad4: u32,
    /// [`enforce`] bits: what the probes kill (0: report only).
    pub enforce: u32,
    /// pidns's own process (tgid), which the probes never kill.
    pub self_tgid: u32,
}

impl Config {
    pub const ZERO: Config = Config {
        host_pidns_dev: 0,
        host_pidns_ino: 0,
        memfd_dev: 0,
        _pad: 0,
        offsets: Offsets::ZERO,
        host_mntns_ino: 0,
        _pad4: 0,
        enforce: 0,
        self_tgid: 0,
    };
}

/// Superblock magics (`include/uapi/linux/magic.h`).
pub mod magic {
    /// procfs.
    pub const PROC: u64 = 0x9fa0;
    /// nsfs: a namespace file (`/proc/<pid>/ns/*`).
    pub const NSFS: u64 = 0x6e73_6673;
    /// pidfs (6.9+): a pidfd; the inode's `i_private` is the `struct pid`.
    pub const PIDFS: u64 = 0x5049_4446;
    /// Anonymous inodes: before pidfs, a pidfd was one named `[pidfd]`, with
    /// the `struct pid` in the file's `private_data`.
    pub const ANON_INODE_FS: u64 = 0x0904_1934;
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
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for HostNs {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for CgroupClass {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for AggKey {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for AggValue {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for AccessKey {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for AccessCount {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_have_no_implicit_padding() {
        assert_eq!(core::mem::size_of::<Event>(), 88 + DATA_LEN);
        assert_eq!(core::mem::size_of::<Offsets>(), 78 * 4);
        assert_eq!(core::mem::size_of::<Config>(), 24 + 78 * 4 + 16);
        assert_eq!(core::mem::size_of::<TaskState>(), 56);
        assert_eq!(core::mem::size_of::<HostNs>(), 8);
        assert_eq!(core::mem::size_of::<CgroupClass>(), 16);
        assert_eq!(core::mem::size_of::<AggKey>(), 16);
        assert_eq!(core::mem::size_of::<AggValue>(), 48);
        assert_eq!(core::mem::size_of::<AccessKey>(), 24);
        assert_eq!(core::mem::size_of::<AccessCount>(), 8);
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
    fn offset_fields_cover_the_struct_in_order() {
        const N: usize = core::mem::size_of::<Offsets>() / 4;
        assert_eq!(Offsets::FIELDS.len(), N);
        for (i, field) in Offsets::FIELDS.iter().enumerate() {
            let mut o = Offsets::ZERO;
            *(field.slot)(&mut o) = 1;
            // SAFETY: Offsets is `#[repr(C)]` with N `u32` fields and no padding.
            let words: [u32; N] = unsafe { core::mem::transmute(o) };
            let set = words.iter().filter(|&&w| w != 0).count();
            assert!(
                set == 1 && words[i] == 1,
                "{} sets the wrong field",
                field.name
            );
            assert!(
                Offsets::FIELDS[..i].iter().all(|f| f.name != field.name),
                "{} twice",
                field.name
            );
        }
        assert_eq!(Offsets::FIELDS[0].name, "task_pid");
        assert_eq!(Offsets::FIELDS[N - 1].name, "_pad");
        assert_eq!(Config::ZERO.offsets, Offsets::default());
    }

    /// The program names are the `fn` names of `main.rs`'s entry points,
    /// each once, and every entry point has one.
    #[test]
    fn program_names_are_the_entry_points() {
        let main = include_str!("main.rs");
        let mut lines = main.lines();
        let mut entry_points = 0;
        while let Some(line) = lines.next() {
            if !(line.starts_with("#[btf_tracepoint(") || line.starts_with("#[tracepoint(")) {
                continue;
            }
            entry_points += 1;
            let name = lines
                .next()
                .and_then(|l| l.strip_prefix("pub fn "))
                .and_then(|l| l.split_once('('))
                .map(|(name, _)| name);
            assert!(
                name.is_some_and(|n| programs::ALL.contains(&n)),
                "{line} is followed by {name:?}, not by `pub fn` and one of programs::ALL"
            );
        }
        assert_eq!(entry_points, programs::ALL.len());
        for (i, name) in programs::ALL.iter().enumerate() {
            assert!(!programs::ALL[..i].contains(name), "{name} twice");
            let decl = main.match_indices("pub fn ").filter(|(at, _)| {
                main[at + "pub fn ".len()..].starts_with(name)
                    && main[at + "pub fn ".len() + name.len()..].starts_with('(')
            });
            assert_eq!(decl.count(), 1, "pub fn {name}");
        }
    }

    #[test]
    fn namespace_flags_are_derived() {
        assert_eq!(NS_FLAGS, 0x7e02_0080);
        assert_eq!(CLONE_NEWPID, 0x2000_0000);
    }
}
