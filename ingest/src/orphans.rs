//! Partitions nobody reads: behind their topic's end, not owned by this member, and not
//! moving in the tables. A crashed member holds its partitions until the broker expires its
//! session; tansu 0.6 can also hand a joining member an empty assignment computed for a
//! leader that has just died, and then never rebalances again. Leaving and rejoining the
//! group once the dead members are surely expired recovers either way; exactly-once does
//! not depend on who reads what (every commit is fenced by the tables' offsets).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// A topic and partition.
pub(crate) type PartitionKey = (String, i32);

/// Remembers when each lagging partition last moved.
pub(crate) struct Orphans {
    moved: HashMap<PartitionKey, (i64, Instant)>,
    last_rejoin: Instant,
    after: Duration,
    /// Rejoins in a row without the group recovering: each doubles the wait for the next,
    /// so members that all see a stall (a rebalance stops everyone's progress) do not keep
    /// each other rebalancing.
    rejoins: u32,
}

/// The longest wait between two rejoins.
const MAX_WAIT: Duration = Duration::from_secs(300);

impl Orphans {
    /// `after`: how long a partition may sit still before it counts as orphaned; also the
    /// least time between two rejoins.
    pub fn new(after: Duration) -> Self {
        Self { moved: HashMap::new(), last_rejoin: Instant::now(), after, rejoins: 0 }
    }

    /// The time to wait for a member's next commit: well past a session timeout (10 s) and
    /// two flush intervals, so a live owner is never mistaken for a dead one.
    pub fn patience(flush_interval: Duration) -> Duration {
        Duration::from_secs(25).max(flush_interval * 2 + Duration::from_secs(5))
    }

    /// Given every partition that is behind, with how far the tables cover it, returns the
    /// orphaned ones (as `topic/partition`) when the group should be rejoined.
    pub fn check<'a>(
        &mut self,
        behind: impl IntoIterator<Item = (&'a PartitionKey, i64)>,
        owned: &BTreeSet<PartitionKey>,
    ) -> Option<Vec<String>> {
        let now = Instant::now();
        // A member that owns nothing is the one a broken rebalance left out; one that owns
        // partitions waits longer, so a busy group is not rebalanced for being slow.
        let base = if owned.is_empty() { self.after } else { self.after * 4 };
        let wait = (base * 2u32.pow(self.rejoins.min(8))).min(MAX_WAIT);
        let mut orphaned = Vec::new();
        for (key, covered) in behind {
            let entry = self.moved.entry(key.clone()).or_insert((covered, now));
            if entry.0 != covered {
                *entry = (covered, now);
            }
            // A partition counts from the later of its last move and the last rejoin: the
            // group needs the time to settle after a rebalance.
            let still = entry.1.max(self.last_rejoin).elapsed();
            if !owned.contains(key) && still >= wait {
                orphaned.push(format!("{}/{}", key.0, key.1));
            }
        }
        if orphaned.is_empty() {
            if self.last_rejoin.elapsed() >= wait {
                self.rejoins = 0;
            }
            return None;
        }
        self.last_rejoin = now;
        self.rejoins += 1;
        Some(orphaned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> PartitionKey {
        ("orders".to_string(), p)
    }

    #[test]
    fn a_partition_that_keeps_moving_is_never_orphaned() {
        let mut orphans = Orphans::new(Duration::ZERO);
        let owned = BTreeSet::new();
        assert!(orphans.check([(&key(0), 1)], &owned).is_some(), "zero patience: still at once");
        let mut orphans = Orphans::new(Duration::from_secs(3600));
        for covered in 0..5 {
            assert_eq!(orphans.check([(&key(0), covered)], &owned), None);
        }
    }

    #[test]
    fn owned_partitions_are_never_orphaned() {
        let mut orphans = Orphans::new(Duration::ZERO);
        let owned = BTreeSet::from([key(0)]);
        assert_eq!(orphans.check([(&key(0), 1)], &owned), None);
        assert_eq!(orphans.check([(&key(1), 1)], &owned), Some(vec!["orders/1".to_string()]));
    }
}
