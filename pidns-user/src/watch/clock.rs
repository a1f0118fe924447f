//! Time: the kernel's monotonic clock, and wall-clock time in RFC 3339.

use std::time::SystemTime;

/// Converts `bpf_ktime_get_ns` (CLOCK_MONOTONIC) to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// realtime − monotonic, in ns.
    offset_ns: i128,
}

impl Clock {
    pub fn now() -> Clock {
        let mono = monotonic_ns();
        let real = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        Clock {
            offset_ns: real - i128::from(mono),
        }
    }

    pub fn wall(&self, ktime_ns: u64) -> SystemTime {
        let ns = i128::from(ktime_ns) + self.offset_ns;
        SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
    }

    pub fn rfc3339(&self, ktime_ns: u64) -> String {
        humantime::format_rfc3339_nanos(self.wall(ktime_ns)).to_string()
    }
}

/// CLOCK_MONOTONIC in ns, the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            (t.tv_sec() as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(t.tv_nsec() as u64)
        })
        .unwrap_or(0)
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_time_becomes_wall_time() {
        let clock = Clock::now();
        let now = monotonic_ns();
        let wall = clock.wall(now);
        let diff = SystemTime::now()
            .duration_since(wall)
            .unwrap_or_else(|e| e.duration());
        assert!(diff.as_secs() < 5, "{diff:?}");
        assert!(clock.rfc3339(now).ends_with('Z'));
    }
}
