//! An access between its syscall's entry and exit, as `ACCESS_PENDING`
//! keeps it: the one type the access programs, the first-of-its-kind
//! report and the maps share (a leaf, so none of them imports another
//! for it).

use pidns_ebpf::COMM_LEN;

/// An access between its syscall's entry and exit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Pending {
    /// One of [`pidns_ebpf::access`].
    pub op: u32,
    /// [`pidns_ebpf::flags`] bits for the event.
    pub flags: u32,
    /// The signal number, or the ptrace request.
    pub detail: u64,
    /// The caller's cgroup, its class, and its container's budget key.
    pub cg: u64,
    pub class: u32,
    /// The target as the syscall named it (a pidfd's: its tgid).
    pub target_pid: u32,
    pub container: u64,
    /// With [`pidns_ebpf::flags::TARGET_RESOLVED`]: the target's cgroup and comm.
    pub target_cgroup: u64,
    pub target_comm: [u8; COMM_LEN],
}
