//! `/proc/<pid>/stat`: what pidns takes from it.

/// A process's start time (clock ticks after boot) from its `stat`, whose
/// `comm` field may hold spaces and parentheses.
pub fn starttime(stat: &[u8]) -> Option<u64> {
    use procfs::FromRead as _;
    procfs::process::Stat::from_read(stat)
        .ok()
        .map(|s| s.starttime)
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
}
