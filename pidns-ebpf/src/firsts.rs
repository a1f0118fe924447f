//! Host access events: the first access of each kind ([`AccessKey`]) is
//! sent, within the container's budget; the rest are counted in
//! `ACCESS_SEEN` for user space to read.

use pidns_ebpf::{AccessCount, AccessKey, access, kind, stream};

use crate::{
    builder::EventBuilder,
    maps::{ACCESS_REPEATS, ACCESS_SEEN, within_budget},
    pending::Pending,
};

/// Where a PROC_OPEN event's path comes from: (address, in user memory).
pub type PathSource = Option<(u64, bool)>;

/// Sends an access, unless its key went out less than a window ago or the
/// container's budget is spent.
#[inline(always)]
pub fn report(
    p: &Pending,
    ret: i64,
    tgid: u32,
    tid: u32,
    detail: u64,
    path: PathSource,
) -> Option<()> {
    let key = AccessKey {
        container: p.container,
        detail,
        target_pid: p.target_pid,
        what: p.op | if ret >= 0 { access::OK } else { 0 },
    };
    first(&key)?;
    if !within_budget(p.container, p.cg, kind::HOST_ACCESS, p.op, tgid, 0) {
        // Counted in the budget's aggregate; not marked as sent, so that a
        // container spending its budget on junk cannot turn its next real
        // access of this kind into an unsent repeat.
        let _ = ACCESS_SEEN.remove(key);
        return None;
    }
    let mut e = EventBuilder::new(stream::OTHER, kind::HOST_ACCESS, p.class, p.cg, tgid, tid)?;
    e.add_flags(p.flags);
    e.nstype(p.op);
    e.arg(p.detail);
    e.ret(ret as i32);
    e.target(p.target_pid, p.target_cgroup);
    e.current_comm();
    e.data_comm(&p.target_comm);
    if let Some((src, user)) = path {
        e.data_path(src, user);
    }
    e.submit();
    Some(())
}

/// Whether this key goes out: the first of its kind does; the rest are
/// counted in `ACCESS_SEEN` (and in all in `ACCESS_REPEATS`), which user
/// space reads each second. A full map evicts the oldest key (LRU).
#[inline(always)]
fn first(key: &AccessKey) -> Option<()> {
    match ACCESS_SEEN.get_ptr_mut(key) {
        Some(v) => {
            // SAFETY: a map value; a lost increment under a race undercounts.
            unsafe { (*v).repeats += 1 };
            if let Some(n) = ACCESS_REPEATS.get_ptr_mut(0) {
                // SAFETY: per-CPU slot.
                unsafe { *n += 1 };
            }
            None
        }
        None => {
            let _ = ACCESS_SEEN.insert(key, AccessCount { repeats: 0 }, 0);
            Some(())
        }
    }
}
