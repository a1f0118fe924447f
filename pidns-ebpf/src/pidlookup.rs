//! A task by its number in the host PID namespace, as `find_pid_ns` finds
//! it: the namespace's IDR is a radix tree (an xarray) of `struct pid`,
//! walked here at BTF offsets. Used on a host access's target while the
//! syscall that names it runs, so that the kernel, not a later read of
//! /proc, says whose process it is.

use crate::{config::off, kernel::read};

/// `XA_CHUNK_SHIFT`: 64 slots a node.
const CHUNK_SHIFT: u32 = 6;
const CHUNK_MASK: u64 = (1 << CHUNK_SHIFT) - 1;
/// Levels walked at most: 64^4 covers a `pid_max` of 4,194,304 (2^22).
const MAX_LEVELS: usize = 4;

/// An xarray internal entry that is a node (`xa_is_node`): tagged `0b10`
/// and above the small internal values.
#[inline(always)]
fn is_node(entry: u64) -> bool {
    entry & 3 == 2 && entry > 4096
}

/// The task whose thread id is `nr` in the current task's PID namespace
/// at level 0 (the host's, for a caller living there): the first task of
/// its `struct pid`. `None` when there is none (or a read failed).
#[inline(always)]
pub fn task_by_pid(current: u64, nr: u32) -> Option<u64> {
    let pid: u64 = read(current, off!(task_thread_pid))?;
    let ns: u64 = read(pid, off!(pid_numbers) + off!(upid_ns))?;
    let idr = ns + u64::from(off!(pid_namespace_idr));
    let base: u32 = read(idr, off!(idr_idr_base))?;
    let index = u64::from(nr.checked_sub(base)?);
    let mut entry: u64 = read(idr, off!(idr_idr_rt) + off!(xarray_xa_head))?;
    if !is_node(entry) {
        // A single entry at the head holds index 0 only.
        return if index == 0 && entry != 0 {
            first_task(entry)
        } else {
            None
        };
    }
    let top: u8 = read(entry - 2, off!(xa_node_shift))?;
    if u32::from(top) + CHUNK_SHIFT < 64 && index >> (u32::from(top) + CHUNK_SHIFT) != 0 {
        return None; // beyond the tree
    }
    for _ in 0..MAX_LEVELS {
        if !is_node(entry) {
            break;
        }
        let node = entry - 2;
        let shift: u8 = read(node, off!(xa_node_shift))?;
        let slot = (index >> (u32::from(shift) & 63)) & CHUNK_MASK;
        entry = read(node, off!(xa_node_slots) + (slot as u32) * 8)?;
    }
    if entry == 0 || entry & 3 != 0 {
        return None; // empty, or still an internal entry
    }
    first_task(entry)
}

/// `pid->tasks[PIDTYPE_PID].first`, which is the task's
/// `pid_links[PIDTYPE_PID]`.
#[inline(always)]
fn first_task(pid: u64) -> Option<u64> {
    let first: u64 = read(pid, off!(pid_tasks))?;
    first.checked_sub(u64::from(off!(task_pid_links)))
}
