//! Produce → visible latency: for every row committed to bronze, the time from its Kafka
//! timestamp to the end of the commit that made it readable. A bounded sample keeps memory
//! flat in a service that runs for months.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;

use crate::meta;

/// At most this many latencies are kept; past it, new ones replace random old ones
/// (reservoir sampling), so quantiles stay unbiased.
const SAMPLE_SIZE: usize = 100_000;

/// A uniform sample of produce → visible latencies, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencySample {
    samples: Vec<u32>,
    seen: u64,
    rng: u64,
}

impl LatencySample {
    /// Records the rows of `batches` as visible at `visible_ms` (epoch milliseconds), and
    /// returns how many rows became visible after each latency in ms (a commit's rows share
    /// few values, so the map is small where the rows are many).
    pub(crate) fn record(&mut self, batches: &[RecordBatch], visible_ms: i64) -> BTreeMap<u32, usize> {
        let mut counts = BTreeMap::new();
        for batch in batches {
            let Some(column) = batch.column_by_name(meta::TIMESTAMP) else { continue };
            let timestamps = column.as_primitive::<TimestampMicrosecondType>();
            for micros in timestamps.iter().flatten() {
                // A producer clock ahead of ours counts as 0.
                let ms = (visible_ms - micros / 1_000).clamp(0, i64::from(u32::MAX)) as u32;
                self.add(ms);
                *counts.entry(ms).or_default() += 1;
            }
        }
        counts
    }

    fn add(&mut self, ms: u32) {
        self.seen += 1;
        if self.samples.len() < SAMPLE_SIZE {
            self.samples.push(ms);
            return;
        }
        // xorshift: cheap, and good enough to pick which sample to replace.
        self.rng ^= self.rng << 13 | 1;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let slot = self.rng % self.seen;
        if (slot as usize) < SAMPLE_SIZE {
            self.samples[slot as usize] = ms;
        }
    }

    /// Folds another sample in (both are small; exactness past the cap does not matter).
    pub(crate) fn merge(&mut self, other: LatencySample) {
        for ms in other.samples {
            self.add(ms);
        }
    }

    /// The latency at quantile `q` (0.0–1.0), if anything was recorded.
    pub fn quantile_ms(&self, q: f64) -> Option<u32> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        Some(sorted[index])
    }

    /// Rows recorded.
    pub fn count(&self) -> u64 {
        self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_known_sample() {
        let mut s = LatencySample::default();
        for ms in 1..=100 {
            s.add(ms);
        }
        assert_eq!(s.quantile_ms(0.5), Some(51));
        assert_eq!(s.quantile_ms(0.99), Some(99));
        assert_eq!(s.quantile_ms(1.0), Some(100));
        assert_eq!(s.count(), 100);
    }

    #[test]
    fn stays_bounded() {
        let mut s = LatencySample::default();
        for ms in 0..(SAMPLE_SIZE as u32 * 3) {
            s.add(ms % 1000);
        }
        assert_eq!(s.samples.len(), SAMPLE_SIZE);
        assert_eq!(s.count(), SAMPLE_SIZE as u64 * 3);
    }
}
