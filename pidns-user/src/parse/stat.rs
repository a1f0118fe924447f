//! `/proc/<pid>/stat`: what pidns takes from it.

/// A process's start time (clock ticks after boot) from its `stat`, whose
/// `comm` field may hold spaces and parentheses.
pub fn starttime(stat: &[u8]) -> Option<u64> {
    use procfs::FromRead as _;
    procfs::process::Stat::from_read(stat)
        .ok()
        .map(|s| s.starttime)
}

/// `PF_KTHREAD` in a task's flags: the kernel sets it on its own threads.
const PF_KTHREAD: u32 = 0x0020_0000;

/// Whether a `stat` is a kernel thread's (its flags carry `PF_KTHREAD`,
/// which only the kernel sets). Some run in a mount namespace and on a root
/// of their own (`kdevtmpfs`, on devtmpfs) without being any container.
pub fn is_kernel_thread(stat: &[u8]) -> Option<bool> {
    use procfs::FromRead as _;
    procfs::process::Stat::from_read(stat)
        .ok()
        .map(|s| s.flags & PF_KTHREAD != 0)
}

/// `PF_EXITING` in a task's flags: set at the start of its exit, before
/// the kernel's exit hooks (the probes' `sched_process_exit`) run.
const PF_EXITING: u32 = 0x0000_0004;

/// Whether a `stat` is an exiting task's.
pub fn is_exiting(stat: &[u8]) -> Option<bool> {
    use procfs::FromRead as _;
    procfs::process::Stat::from_read(stat)
        .ok()
        .map(|s| s.flags & PF_EXITING != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (my (odd) comm) S 1 4242 4242 0 -1 4194560 109 0 0 0 0 0 0 0 20 0 1 0 987654 2367488 189 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn start_time_from_stat() {
        assert_eq!(starttime(STAT.as_bytes()), Some(987654));
        assert_eq!(starttime(b"garbage"), None);
    }

    #[test]
    fn exiting_tasks_by_their_flags() {
        assert_eq!(is_exiting(STAT.as_bytes()), Some(false));
        let exiting = STAT.replace(" 4194560 ", " 4194564 ");
        assert_eq!(is_exiting(exiting.as_bytes()), Some(true));
        assert_eq!(is_exiting(b"junk"), None);
    }

    #[test]
    fn kernel_threads_by_their_flags() {
        assert_eq!(is_kernel_thread(STAT.as_bytes()), Some(false));
        let kdevtmpfs = "27 (kdevtmpfs) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 20 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        assert_eq!(is_kernel_thread(kdevtmpfs.as_bytes()), Some(true));
        assert_eq!(is_kernel_thread(b"junk"), None);
    }
}
