//! The probes' maps, the load-time [`Config`] global, and the small
//! accessors every program uses to consult them.

use core::mem::MaybeUninit;

use aya_ebpf::{
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use pidns_ebpf::{Config, TaskState, class};

use crate::kernel::current_cgroup;

/// Default size; user space may resize it before loading.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

/// cgroup v2 id → [`class`], kept by user space.
#[map]
pub static CGROUPS: HashMap<u64, u32> = HashMap::with_max_entries(65536, 0);

/// tgid → [`TaskState`] of container processes in the host PID namespace and
/// of runtimes' setup processes.
#[map]
pub static TASKS: LruHashMap<u32, TaskState> = LruHashMap::with_max_entries(65536, 0);

/// Per CPU: when it last woke the ring buffer's reader.
#[map]
pub static LAST_WAKEUP: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Events that did not fit in the ring buffer.
#[map]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The load-time [`Config`], which user space writes into the object before
/// loading it. Fields are read one at a time through a volatile load, so the
/// compiler neither folds in the zeroes it was built with nor copies the
/// whole struct onto the stack.
#[repr(transparent)]
pub struct Settings(pub MaybeUninit<Config>);

// SAFETY: read-only after load.
unsafe impl Sync for Settings {}

#[unsafe(no_mangle)]
pub static CONFIG: Settings = Settings(MaybeUninit::new(Config::ZERO));

/// One field of [`CONFIG`].
macro_rules! conf {
    ($($field:ident).+) => {{
        // SAFETY: CONFIG is always initialised; the read is of plain data.
        #[allow(unused_unsafe)]
        let value = unsafe {
            ::core::ptr::read_volatile(::core::ptr::addr_of!(
                (*$crate::maps::CONFIG.0.as_ptr()).$($field).+
            ))
        };
        value
    }};
}

/// One kernel struct offset.
macro_rules! off {
    ($field:ident) => {
        $crate::maps::conf!(offsets.$field)
    };
}

pub(crate) use {conf, off};

/// Class of a cgroup user space has not classified yet.
pub const UNCLASSIFIED: u32 = 0;

// Map values are returned as plain values with a default rather than as
// `Option<u32>`: LLVM may compute with the undefined payload of a `None` and
// select afterwards, which the verifier rejects (`R6 !read_ok`).

/// The class user space gave this cgroup; [`UNCLASSIFIED`] when it has not
/// seen it yet.
#[inline(always)]
pub fn cgroup_class(id: u64) -> u32 {
    // SAFETY: the value is copied out immediately.
    unsafe { CGROUPS.get(id) }.copied().unwrap_or(UNCLASSIFIED)
}

/// Whether events of a cgroup of this class are dropped here (a host or
/// allowed cgroup).
#[inline(always)]
pub fn ignored(class: u32) -> bool {
    class == class::HOST || class == class::ALLOWED
}

/// The current task's cgroup and its class, unless the class says to drop
/// the event here (a host or allowed cgroup).
#[inline(always)]
pub fn watched_cgroup() -> Option<(u64, u32)> {
    let cg = current_cgroup();
    let class = cgroup_class(cg);
    (!ignored(class)).then_some((cg, class))
}

/// A task's state; `state` 0 when it has none.
#[inline(always)]
pub fn task_state(tgid: u32) -> TaskState {
    // SAFETY: the value is copied out immediately.
    unsafe { TASKS.get(tgid) }.copied().unwrap_or_default()
}

/// Counts an event that found no room in the ring buffer.
pub fn count_lost() {
    if let Some(n) = LOST.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *n += 1 };
    }
}
