//! The probes' maps, and the small accessors every program uses to consult
//! them.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    helpers::generated::bpf_get_current_ancestor_cgroup_id,
    macros::map,
    maps::{Array, HashMap, LruHashMap, LruPerCpuHashMap, PerCpuArray, RingBuf},
};
use pidns_ebpf::{AggKey, AggValue, CgroupClass, HostNs, TaskState, class, host_ns, stream};

use crate::kernel::current_cgroup;

/// Findings, and what may be one; nothing else writes here (see
/// [`stream`]). Default size; user space sets it before loading.
#[map]
pub static FINDINGS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

/// Everything else. Default size; user space sets it before loading.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// cgroup v2 id → [`CgroupClass`], kept by user space. Allocated as it
/// fills; user space sets its size (`--max-cgroups`).
#[map]
pub static CGROUPS: HashMap<u64, CgroupClass> =
    HashMap::with_max_entries(262_144, BPF_F_NO_PREALLOC);

/// Namespace inode → [`HostNs`]: the host's namespaces, those held by host
/// processes, and those created in host cgroups since. A setns into any
/// other namespace is dropped here.
#[map]
pub static HOST_NS: HashMap<u32, HostNs> = HashMap::with_max_entries(16_384, BPF_F_NO_PREALLOC);

/// [`host_ns::OVERFLOW`] and [`host_ns::FAILED_INSERTS`].
#[map]
pub static FILTER_STATE: Array<u64> = Array::with_max_entries(2, 0);

/// Per container, kind and CPU: the budget's window and what it suppressed.
#[map]
pub static AGG: LruPerCpuHashMap<AggKey, AggValue> = LruPerCpuHashMap::with_max_entries(4096, 0);

/// Events suppressed by the budgets, in all.
#[map]
pub static SUPPRESSED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// tgid → [`TaskState`] of container processes in the host PID namespace and
/// of runtimes' setup processes.
#[map]
pub static TASKS: LruHashMap<u32, TaskState> = LruHashMap::with_max_entries(65536, 0);

/// A container (its cgroup, as [`budget_key`] names it) → its own
/// namespaces, by [`NS_TYPES`](pidns_ebpf::NS_TYPES) index: those of its
/// first process to exec after its runtime's setup, which the runtime set
/// up as configured before the container ran anything. A setns into one of
/// them is no escape (a `--network=host` container's net), whatever its
/// processes joined since.
#[map]
pub static OWN_NS: LruHashMap<u64, [u32; pidns_ebpf::NS_TYPES.len()]> =
    LruHashMap::with_max_entries(16384, 0);

/// tid → the caller's namespaces at `sys_enter_setns`, until its exit.
#[map]
pub static SETNS_CALLERS: LruHashMap<u32, [u32; pidns_ebpf::NS_TYPES.len()]> =
    LruHashMap::with_max_entries(4096, 0);

/// Per CPU: when it last woke the ring buffer's reader.
#[map]
pub static LAST_WAKEUP: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Events that did not fit in their ring buffer, by [`stream`].
#[map]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(stream::COUNT as u32, 0);

/// Class of a cgroup user space has not classified yet.
pub const UNCLASSIFIED: u32 = 0;

/// Deepest cgroup level walked up to find a classified ancestor.
const MAX_LEVEL: i32 = 16;

// Map values are returned as plain values with a default rather than as
// `Option<_>`: LLVM may compute with the undefined payload of a `None` and
// select afterwards, which the verifier rejects (`R6 !read_ok`).

/// What user space said of this cgroup; `class` [`UNCLASSIFIED`] when it
/// has not seen it yet.
#[inline(always)]
pub fn cgroup_class(id: u64) -> CgroupClass {
    // SAFETY: the value is copied out immediately.
    unsafe { CGROUPS.get(id) }.copied().unwrap_or_default()
}

/// Whether a process of a cgroup of this class is no finding here: a host
/// cgroup, or a container allowed to share the host PID namespace.
#[inline(always)]
pub fn drops_findings(class: u32) -> bool {
    class & class::BASE == class::HOST || class & class::ALLOW_SHARE != 0
}

/// Whether a setns from a cgroup of this class is dropped here: a host
/// cgroup, or a container on the `--allow-setns` list.
#[inline(always)]
pub fn drops_setns(class: u32) -> bool {
    class & class::BASE == class::HOST || class & class::ALLOW_SETNS != 0
}

/// The class of the current task's cgroup, or of its nearest classified
/// ancestor while user space has not classified it yet (a cgroup below a
/// container's is the container's; one below a host cgroup may be a new
/// service's or a new container's, and counts as the host's).
#[inline(always)]
pub fn current_effective_class() -> u32 {
    let own = cgroup_class(current_cgroup()).class;
    if own != UNCLASSIFIED {
        return own;
    }
    let mut level = MAX_LEVEL;
    while level >= 0 {
        // SAFETY: no memory access; 0 when the cgroup is not that deep.
        let id = unsafe { bpf_get_current_ancestor_cgroup_id(level) };
        if id != 0 {
            let c = cgroup_class(id).class;
            if c != UNCLASSIFIED {
                return c;
            }
        }
        level -= 1;
    }
    UNCLASSIFIED
}

/// Whether the current task may mark a task it moves (or creates) into a
/// container cgroup as a runtime's setup process: it lives in a host cgroup
/// (runc, conmon, crun, systemd do) and is not itself a container process.
/// A container process that can write its own cgroups gains nothing.
#[inline(always)]
pub fn current_may_mark_runtime_setup(tgid: u32) -> bool {
    current_effective_class() & class::BASE == class::HOST
        && task_state(tgid).state != pidns_ebpf::task::CONTAINER_PROCESS
}

/// A task's state; `state` 0 when it has none.
#[inline(always)]
pub fn task_state(tgid: u32) -> TaskState {
    // SAFETY: the value is copied out immediately.
    unsafe { TASKS.get(tgid) }.copied().unwrap_or_default()
}

/// The host namespace entry of this inode; `provenance` 0 when none.
#[inline(always)]
pub fn host_ns(inum: u32) -> HostNs {
    // SAFETY: the value is copied out immediately.
    unsafe { HOST_NS.get(inum) }.copied().unwrap_or_default()
}

/// Whether `HOST_NS` has been found full: the setns filter then fails open.
#[inline(always)]
pub fn host_ns_overflowed() -> bool {
    FILTER_STATE.get(host_ns::OVERFLOW).is_some_and(|&v| v != 0)
}

/// Records a namespace created in a host cgroup; a full map is said so in
/// [`FILTER_STATE`], never silently.
#[inline(always)]
pub fn add_created_host_ns(inum: u32, nstype: u32) -> bool {
    if host_ns(inum).provenance != 0 {
        return false;
    }
    let v = HostNs {
        nstype,
        provenance: host_ns::CREATED,
    };
    if HOST_NS.insert(inum, v, 0).is_ok() {
        return true;
    }
    for slot in [host_ns::OVERFLOW, host_ns::FAILED_INSERTS] {
        if let Some(p) = FILTER_STATE.get_ptr_mut(slot) {
            // SAFETY: a u64 slot of an array map; a lost increment under a
            // race only undercounts the failures.
            unsafe { *p += 1 };
        }
    }
    false
}

/// Counts an event that found no room in its ring buffer.
pub fn count_lost(stream: u32) {
    if let Some(n) = LOST.get_ptr_mut(stream) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *n += 1 };
    }
}

/// The per-container budget: whether this event goes out individually
/// (`true`), or is counted in [`AGG`] instead. `container` is the
/// container's own cgroup (or the event's cgroup while unclassified).
#[inline(always)]
pub fn within_budget(
    container: u64,
    cgroup: u64,
    kind: u32,
    ok: u32,
    pid: u32,
    nstype: u32,
) -> bool {
    let key = AggKey {
        cgroup_id: container,
        kind,
        ok,
    };
    // SAFETY: no memory access.
    let now = unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() };
    let limit = match kind {
        pidns_ebpf::kind::EXEC | pidns_ebpf::kind::FORK => pidns_ebpf::budget::PROCESS,
        pidns_ebpf::kind::NEW_PIDNS => pidns_ebpf::budget::NEW_PIDNS,
        _ => pidns_ebpf::budget::RARE,
    };
    let v = match AGG.get_ptr_mut(key) {
        Some(v) => v,
        None => {
            let fresh = AggValue {
                window_ns: now,
                ..AggValue::default()
            };
            let _ = AGG.insert(key, fresh, 0);
            match AGG.get_ptr_mut(key) {
                Some(v) => v,
                None => return true, // no room to count: send it
            }
        }
    };
    // SAFETY: a per-CPU value of this CPU, not shared while this program runs.
    unsafe {
        if now.wrapping_sub((*v).window_ns) >= pidns_ebpf::BUDGET_WINDOW_NS {
            (*v).window_ns = now;
            (*v).sent = 0;
        }
        if (*v).sent < limit {
            (*v).sent += 1;
            return true;
        }
        (*v).suppressed += 1;
        (*v).last_ns = now;
        (*v).last_pid = pid;
        (*v).last_cgroup_id = cgroup;
        (*v).nstypes |= nstype;
    }
    if let Some(n) = SUPPRESSED.get_ptr_mut(0) {
        // SAFETY: per-CPU slot.
        unsafe { *n += 1 };
    }
    false
}

/// The budget key of a cgroup: the container's own cgroup once user space
/// has classified it, the cgroup itself before.
#[inline(always)]
pub fn budget_key(cg: u64, class: &CgroupClass) -> u64 {
    if class.container != 0 {
        class.container
    } else {
        cg
    }
}

/// tid → the host access its current syscall makes (see `host_access`), from
/// the syscall's entry to its exit. Only container processes in the host
/// PID namespace get an entry.
#[map]
pub static ACCESS_PENDING: LruHashMap<u32, crate::pending::Pending> =
    LruHashMap::with_max_entries(4096, 0);

/// Host accesses sent, and their repeats since (see `host_access`).
#[map]
pub static ACCESS_SEEN: LruHashMap<pidns_ebpf::AccessKey, pidns_ebpf::AccessCount> =
    LruHashMap::with_max_entries(16_384, 0);

/// Repeats counted in [`ACCESS_SEEN`], in all.
#[map]
pub static ACCESS_REPEATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);
