//! Reading a kernel map of cumulative counts: what is new since the last
//! read, by key.

use std::collections::{HashMap, HashSet};

/// What has been read of the kernel's cumulative counts, by key: as
/// [`Aggregates`](super::Aggregates) for the budgets.
#[derive(Debug)]
pub struct Counts<K> {
    reported: HashMap<K, u64>,
    /// The kernel's total when last looked at: the map is walked only when it moved.
    seen_total: u64,
}

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Counts {
            reported: HashMap::new(),
            seen_total: 0,
        }
    }
}

impl<K: std::hash::Hash + Eq> Counts<K> {
    /// Whether the kernel's total moved since the last walk.
    pub fn moved(&mut self, total: u64) -> bool {
        let moved = total != self.seen_total;
        self.seen_total = total;
        moved
    }

    /// Forgets keys the kernel no longer has (evicted from its LRU map).
    pub fn retain(&mut self, live: &HashSet<K>) {
        self.reported.retain(|k, _| live.contains(k));
    }

    /// The count of `key` not read yet (an evicted key starts again from 0).
    pub fn delta(&mut self, key: K, total: u64) -> u64 {
        let before = self.reported.insert(key, total).unwrap_or(0);
        if total >= before {
            total - before
        } else {
            total
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::Counts;

    #[test]
    fn deltas_of_cumulative_counts_and_evicted_keys() {
        let mut c: Counts<u32> = Counts::default();
        assert!(c.moved(3));
        assert!(!c.moved(3));
        assert_eq!(c.delta(1, 5), 5);
        assert_eq!(c.delta(1, 7), 2);
        // evicted and created again: counts from 0
        assert_eq!(c.delta(1, 4), 4);
        c.retain(&HashSet::from([2]));
        assert_eq!(c.delta(1, 6), 6, "forgotten");
    }
}
