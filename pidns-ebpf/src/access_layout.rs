//! Host access (`kind::HOST_ACCESS`): the ops, the syscalls they are seen
//! at, and the key and count of the map that sends each kind once.

/// What a container process in the host PID namespace does to a process
/// outside its container ([`crate::kind::HOST_ACCESS`]).
pub mod access {
    /// `kill`, `tkill`, `tgkill`, `rt_sigqueueinfo`, `rt_tgsigqueueinfo`,
    /// `pidfd_send_signal`; signal 0 (a probe) included.
    pub const SIGNAL: u32 = 1;
    /// Any `ptrace` request but `PTRACE_TRACEME`.
    pub const PTRACE: u32 = 2;
    pub const VM_READ: u32 = 3;
    pub const VM_WRITE: u32 = 4;
    pub const PIDFD_GETFD: u32 = 5;
    /// Opening a `/proc/<pid>/...` file (`--proc-access`).
    pub const PROC_OPEN: u32 = 6;
    /// Names by op, index 0 unused.
    pub const NAMES: [&str; 7] = [
        "",
        "signal",
        "ptrace",
        "vm_read",
        "vm_write",
        "pidfd_getfd",
        "proc_open",
    ];
    /// The syscalls whose `syscalls:sys_enter_<x>` and `sys_exit_<x>`
    /// tracepoints the access programs hook.
    pub const SYSCALLS: [&str; 10] = [
        "kill",
        "tkill",
        "tgkill",
        "rt_sigqueueinfo",
        "rt_tgsigqueueinfo",
        "pidfd_send_signal",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "pidfd_getfd",
    ];
    /// The open syscalls `--proc-access` hooks at `sys_exit_<x>` (`open`
    /// exists on x86_64 only).
    pub const OPEN_SYSCALLS: [&str; 3] = ["open", "openat", "openat2"];
    /// PROC_OPEN: where in [`Event::data`](crate::Event::data) the file
    /// follows the target's `comm`: the name of the `/proc/<pid>/` entry
    /// opened, or the path as given.
    pub const PROC_PATH_AT: usize = crate::COMM_LEN;
    /// [`AccessKey::what`](super::AccessKey::what): the access succeeded.
    pub const OK: u32 = 1 << 8;
}

/// An `ACCESS_SEEN` key: what makes a host access the first of its kind.
/// The first is sent, the rest counted ([`AccessCount`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AccessKey {
    /// The actor's container (its budget key: its own cgroup's id).
    pub container: u64,
    /// SIGNAL: the signal number; PROC_OPEN: the first 8 bytes of the
    /// procfs file's name (little-endian, NUL-padded); else 0.
    pub detail: u64,
    pub target_pid: u32,
    /// The op, `| access::OK` when it succeeded.
    pub what: u32,
}

/// An `ACCESS_SEEN` value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccessCount {
    /// Accesses after the first (cumulative; a lost increment under a
    /// race undercounts).
    pub repeats: u64,
}
