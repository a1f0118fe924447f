//! Building an [`Event`] in the ring buffer: reserved with its common
//! fields, completed through typed setters, submitted with a rate-limited
//! wakeup. The raw writes into the reserved record all live here.

use aya_ebpf::{
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_comm, bpf_ktime_get_ns, bpf_probe_read_kernel_buf,
        bpf_probe_read_kernel_str_bytes,
    },
    maps::ring_buf::RingBufEntry,
};
use pidns_ebpf::{Event, WAKEUP_INTERVAL_NS, flags, stream};

use crate::{
    config::off,
    maps::{EVENTS, FINDINGS, LAST_WAKEUP, UNCLASSIFIED, count_lost},
};

/// Reserves an event and fills the common fields; the caller fills the rest
/// through the setters and submits.
pub struct EventBuilder {
    entry: RingBufEntry<Event>,
}

impl EventBuilder {
    /// On the ring of `stream` ([`stream::FINDINGS`] or [`stream::OTHER`]);
    /// `None` when it is full (counted in `LOST`, by stream).
    #[inline(always)]
    pub fn new(
        stream: u32,
        kind: u32,
        class: u32,
        cgroup_id: u64,
        pid: u32,
        tid: u32,
    ) -> Option<EventBuilder> {
        let reserved = if stream == stream::FINDINGS {
            FINDINGS.reserve::<Event>(0)
        } else {
            EVENTS.reserve::<Event>(0)
        };
        let Some(mut entry) = reserved else {
            count_lost(stream);
            return None;
        };
        let e = entry.as_mut_ptr();
        // SAFETY: `e` points at a reserved, exclusively owned Event.
        unsafe {
            (*e).kind = kind;
            (*e).flags = if class == UNCLASSIFIED {
                flags::UNCLASSIFIED
            } else {
                0
            };
            (*e).ktime_ns = bpf_ktime_get_ns();
            (*e).cgroup_id = cgroup_id;
            (*e).pid = pid;
            (*e).tid = tid;
            (*e).ppid = 0;
            (*e).nstype = 0;
            (*e).ns_inum = 0;
            (*e).ret = 0;
            (*e).arg = 0;
            (*e).target_pid = 0;
            (*e)._reserved = 0;
            (*e).target_cgroup_id = 0;
            (*e).comm = [0; 16];
            (*e).data[0] = 0;
        }
        Some(EventBuilder { entry })
    }

    /// The reserved record. Every write through it is sound: it points at
    /// an `Event` this builder owns exclusively until it is submitted.
    #[inline(always)]
    fn event(&mut self) -> *mut Event {
        self.entry.as_mut_ptr()
    }

    #[inline(always)]
    pub fn add_flags(&mut self, f: u32) {
        // SAFETY: see EventBuilder::event.
        unsafe { (*self.event()).flags |= f };
    }

    /// [`Event::ppid`].
    #[inline(always)]
    pub fn ppid(&mut self, ppid: u32) {
        // SAFETY: see EventBuilder::event.
        unsafe { (*self.event()).ppid = ppid };
    }

    /// [`Event::arg`].
    #[inline(always)]
    pub fn arg(&mut self, arg: u64) {
        // SAFETY: see EventBuilder::event.
        unsafe { (*self.event()).arg = arg };
    }

    /// [`Event::nstype`].
    #[inline(always)]
    pub fn nstype(&mut self, nstype: u32) {
        // SAFETY: see EventBuilder::event.
        unsafe { (*self.event()).nstype = nstype };
    }

    /// [`Event::ns_inum`].
    #[inline(always)]
    pub fn ns_inum(&mut self, inum: u32) {
        // SAFETY: see EventBuilder::event.
        unsafe { (*self.event()).ns_inum = inum };
    }

    /// [`Event::ret`].
    #[inline(always)]
    pub fn ret(&mut self, ret: i32) {
        // SAFETY: see EventBuilder::event.
        unsafe { (*self.event()).ret = ret };
    }

    /// [`Event::target_pid`] and [`Event::target_cgroup_id`].
    #[inline(always)]
    pub fn target(&mut self, pid: u32, cgroup_id: u64) {
        let e = self.event();
        // SAFETY: see EventBuilder::event.
        unsafe {
            (*e).target_pid = pid;
            (*e).target_cgroup_id = cgroup_id;
        }
    }

    /// [`Event::comm`] from the current task.
    #[inline(always)]
    pub fn current_comm(&mut self) {
        if let Ok(comm) = bpf_get_current_comm() {
            // SAFETY: see EventBuilder::event.
            unsafe { (*self.event()).comm = comm };
        }
    }

    /// [`Event::comm`] from another task.
    #[inline(always)]
    pub fn task_comm(&mut self, task: u64) {
        let e = self.event();
        // SAFETY: see EventBuilder::event; the kernel read fails rather than faults.
        unsafe {
            let _ = bpf_probe_read_kernel_buf(
                (task + u64::from(off!(task_comm))) as *const u8,
                &mut (*e).comm,
            );
        }
    }

    /// The first [`COMM_LEN`](pidns_ebpf::COMM_LEN) bytes of [`Event::data`].
    #[inline(always)]
    pub fn data_comm(&mut self, comm: &[u8; pidns_ebpf::COMM_LEN]) {
        let e = self.event();
        // SAFETY: see EventBuilder::event; DATA_LEN > COMM_LEN.
        let data = unsafe { &mut (*e).data };
        data[..pidns_ebpf::COMM_LEN].copy_from_slice(comm);
    }

    /// Copies a string (from user memory if `user`, else the kernel's) into
    /// [`Event::data`] after the target's comm (`access::PROC_PATH_AT`).
    #[inline(always)]
    pub fn data_path(&mut self, src: u64, user: bool) {
        let e = self.event();
        if src == 0 {
            return;
        }
        // SAFETY: see EventBuilder::event.
        let data = unsafe { &mut (*e).data };
        let dst = &mut data[pidns_ebpf::access::PROC_PATH_AT..];
        // SAFETY: the reads fail rather than fault.
        unsafe {
            let _ = if user {
                aya_ebpf::helpers::bpf_probe_read_user_str_bytes(src as *const u8, dst)
            } else {
                bpf_probe_read_kernel_str_bytes(src as *const u8, dst)
            };
        }
    }

    /// Copies a kernel string into [`Event::data`]; returns its length (NUL
    /// excluded).
    #[inline(always)]
    pub fn data_str(&mut self, src: u64) -> usize {
        let e = self.event();
        if src == 0 {
            return 0;
        }
        // SAFETY: see EventBuilder::event; the kernel read fails rather than faults.
        unsafe { bpf_probe_read_kernel_str_bytes(src as *const u8, &mut (*e).data) }
            .map_or(0, |s| s.len())
    }

    /// Wakes the reader for the first event after a quiet millisecond on
    /// this CPU; events in between are collected by the reader's backstop.
    #[inline(always)]
    pub fn submit(self) {
        // SAFETY: no arguments, no memory access.
        let now = unsafe { bpf_ktime_get_ns() };
        let flags = match LAST_WAKEUP.get_ptr_mut(0) {
            // SAFETY: per-CPU slot, no concurrent writer on this CPU.
            Some(last) => unsafe {
                if now.wrapping_sub(*last) >= WAKEUP_INTERVAL_NS {
                    *last = now;
                    u64::from(BPF_RB_FORCE_WAKEUP)
                } else {
                    u64::from(BPF_RB_NO_WAKEUP)
                }
            },
            None => 0,
        };
        self.entry.submit(flags);
    }
}
