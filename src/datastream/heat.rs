//! On-demand capacity, the pure part: what each shard of an ON_DEMAND stream was asked to take
//! during a scaling window (its busiest second in bytes and records, the records it throttled,
//! and where in its hash-key range the load fell), and the plan that splits hot shards so that
//! every shard could take double its peak.
//!
//! Kinesis promises an on-demand stream "up to double its previous peak". Sluice keeps that
//! promise shard by shard: a shard whose busiest second used half its write limit (or that
//! throttled anything) is split where its load divides most evenly, so after the split each
//! child could take twice what its half carried. The load's position comes from a space-saving
//! summary of the hash keys written (the heaviest keys by bytes, a fixed few per shard), so a
//! hot key range is split at the keys that make it hot, not at the middle of the shard. One
//! partition key hotter than a shard cannot be split — a key lives in one shard, as in Kinesis —
//! and such a shard is left alone rather than split for nothing.

use std::cmp::Reverse;

use super::hashkey::{HashKey, HashKeyRange};
use super::throttle::Rates;
use crate::clock::Timestamp;

/// A shard splits when its busiest second used this share of its write limit (bytes or records):
/// at half, doubling the load still fits.
pub const SPLIT_AT: f64 = 0.5;
/// Hash keys one shard's summary tracks.
const TRACKED_KEYS: usize = 32;
/// A split is made only if neither side would carry more than this share of the shard's load.
const MAX_SIDE_SHARE: f64 = 0.9;

/// One shard's load over the current window. Updated under the shard's writer lock, for every
/// record offered to an ON_DEMAND stream's shard (admitted or throttled).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Heat {
    /// The second (epoch seconds) `sec_*` count.
    second: i64,
    sec_bytes: u64,
    sec_records: u64,
    /// The busiest second of the window.
    pub peak_bytes: u64,
    pub peak_records: u64,
    /// Records refused by the shard's write limit in the window.
    pub throttled: u64,
    /// Space-saving summary: (hash key, bytes attributed), at most `TRACKED_KEYS`.
    keys: Vec<(u128, u64)>,
}

impl Heat {
    /// Counts one record of `bytes` (data + partition key) offered at `now` with hash `key`.
    pub fn offer(&mut self, now: Timestamp, key: HashKey, bytes: u64, admitted: bool) {
        let second = now.as_micros().div_euclid(1_000_000);
        if second != self.second {
            self.second = second;
            self.sec_bytes = 0;
            self.sec_records = 0;
        }
        self.sec_bytes += bytes;
        self.sec_records += 1;
        self.peak_bytes = self.peak_bytes.max(self.sec_bytes);
        self.peak_records = self.peak_records.max(self.sec_records);
        if !admitted {
            self.throttled += 1;
        }
        let weight = bytes.max(1);
        if let Some(e) = self.keys.iter_mut().find(|e| e.0 == key.0) {
            e.1 += weight;
        } else if self.keys.len() < TRACKED_KEYS {
            self.keys.push((key.0, weight));
        } else if let Some(min) = self.keys.iter_mut().min_by_key(|e| e.1) {
            // The lightest entry gives way; the newcomer inherits its count (space-saving).
            *min = (key.0, min.1 + weight);
        }
    }

    /// The window so far, and a new window from `now` (the current second's counts carry over).
    pub fn take(&mut self, now: Timestamp) -> Heat {
        if self.second != now.as_micros().div_euclid(1_000_000) {
            return std::mem::take(self);
        }
        let next = Heat {
            second: self.second,
            sec_bytes: self.sec_bytes,
            sec_records: self.sec_records,
            peak_bytes: self.sec_bytes,
            peak_records: self.sec_records,
            throttled: 0,
            keys: Vec::new(),
        };
        std::mem::replace(self, next)
    }

    /// The busiest second's share of a shard's write limit; 1 or more if anything was throttled.
    pub fn utilization(&self, rates: &Rates) -> f64 {
        let bytes = self.peak_bytes as f64 / rates.write_bytes.max(1) as f64;
        let records = self.peak_records as f64 / rates.write_records.max(1) as f64;
        let throttled = if self.throttled > 0 { 1.0 } else { 0.0 };
        bytes.max(records).max(throttled)
    }

    /// Where to split `range` so the tracked load divides most evenly, or `None` when no split
    /// would take the load off one side (one hot key, or nothing tracked). The key returned is
    /// the children's boundary: `[start, k-1]` and `[k, end]`.
    pub fn split_point(&self, range: HashKeyRange) -> Option<HashKey> {
        let mut keys: Vec<(u128, u64)> =
            self.keys.iter().filter(|k| range.contains(HashKey(k.0))).copied().collect();
        keys.sort_unstable();
        let total: u64 = keys.iter().map(|k| k.1).sum();
        if keys.len() < 2 || total == 0 {
            return None;
        }
        let mut left = 0u64;
        let mut best: Option<(u64, usize)> = None;
        for (j, k) in keys.iter().enumerate().take(keys.len() - 1) {
            left += k.1;
            let side = left.max(total - left);
            if best.is_none_or(|b| side < b.0) {
                best = Some((side, j));
            }
        }
        let (side, j) = best?;
        if side as f64 > MAX_SIDE_SHARE * total as f64 {
            return None;
        }
        // Halfway between the two keys the split separates: a < k <= b.
        let (a, b) = (keys[j].0, keys[j + 1].0);
        Some(HashKey(a + (b - a) / 2 + 1))
    }
}

/// An open shard and its window, for [`plan`].
#[derive(Debug, Clone)]
pub struct ShardLoad {
    pub ordinal: u32,
    pub range: HashKeyRange,
    pub heat: Heat,
}

/// One split to make: the shard and its children's boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub ordinal: u32,
    pub at: HashKey,
}

/// The middle of `range` as a split boundary, if the range holds two keys.
pub fn midpoint(range: HashKeyRange) -> Option<HashKey> {
    let width = range.end.0.checked_sub(range.start.0)?;
    (width >= 1).then(|| HashKey(range.start.0 + width / 2 + 1))
}

/// The splits one scaling pass makes: every hot shard (busiest first) whose load divides, then,
/// while the stream has fewer than `floor` open shards (its on-demand start or warm throughput),
/// the widest remaining shards at their middles; never past `max` open shards. Each shard splits
/// at most once per pass.
pub fn plan(shards: &[ShardLoad], rates: &Rates, floor: usize, max: usize) -> Vec<Split> {
    let open = shards.len();
    let mut out: Vec<Split> = Vec::new();
    let mut hottest: Vec<(&ShardLoad, f64)> =
        shards.iter().map(|s| (s, s.heat.utilization(rates))).collect();
    hottest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.ordinal.cmp(&b.0.ordinal)));
    for (s, u) in hottest {
        if u < SPLIT_AT || open + out.len() >= max {
            break;
        }
        if let Some(at) = s.heat.split_point(s.range) {
            out.push(Split { ordinal: s.ordinal, at });
        }
    }
    let target = floor.min(max);
    if open + out.len() < target {
        let mut widest: Vec<&ShardLoad> =
            shards.iter().filter(|s| !out.iter().any(|x| x.ordinal == s.ordinal)).collect();
        widest.sort_by_key(|s| (Reverse(s.range.end.0 - s.range.start.0), s.ordinal));
        for s in widest {
            if open + out.len() >= target {
                break;
            }
            if let Some(at) = midpoint(s.range) {
                out.push(Split { ordinal: s.ordinal, at });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn rates() -> Rates {
        Rates { write_bytes: 1_000_000, write_records: 1000, read_bytes: 2_000_000, read_calls: 5 }
    }

    fn whole() -> HashKeyRange {
        HashKeyRange { start: HashKey(0), end: HashKey(u128::MAX) }
    }

    fn load(ordinal: u32, range: HashKeyRange, heat: Heat) -> ShardLoad {
        ShardLoad { ordinal, range, heat }
    }

    #[test]
    fn the_busiest_second_is_the_peak() {
        let mut h = Heat::default();
        for i in 0..300 {
            h.offer(T0, HashKey(i), 1000, true);
        }
        for i in 0..100 {
            h.offer(T0.add_micros(1_500_000), HashKey(i), 1000, true);
        }
        assert_eq!((h.peak_records, h.peak_bytes, h.throttled), (300, 300_000, 0));
        assert!((h.utilization(&rates()) - 0.3).abs() < 1e-9);
        h.offer(T0.add_micros(1_600_000), HashKey(1), 10, false);
        assert_eq!(h.utilization(&rates()), 1.0, "a throttled record means the shard was full");
        let w = h.take(T0.add_micros(1_700_000));
        assert_eq!(w.throttled, 1);
        assert_eq!((h.peak_records, h.throttled), (101, 0), "the current second carries over");
        h.take(T0.add_micros(3_000_000));
        assert_eq!(h.peak_records, 0, "a past second does not");
    }

    #[test]
    fn a_hot_range_splits_between_its_keys_and_one_hot_key_does_not_split() {
        let mut h = Heat::default();
        // Two keys carry the load, 60/40; a light third one sits above them.
        for _ in 0..60 {
            h.offer(T0, HashKey(1_000), 10_000, true);
        }
        for _ in 0..40 {
            h.offer(T0, HashKey(5_000), 10_000, true);
        }
        h.offer(T0, HashKey(u128::MAX - 7), 100, true);
        let at = h.split_point(whole()).unwrap();
        assert!(at.0 > 1_000 && at.0 <= 5_000, "{at}");
        let mut one = Heat::default();
        for _ in 0..100 {
            one.offer(T0, HashKey(42), 10_000, true);
        }
        one.offer(T0, HashKey(7), 10, true);
        assert_eq!(one.split_point(whole()), None, "one key carries everything");
        // Adjacent keys still split between them.
        let mut two = Heat::default();
        two.offer(T0, HashKey(10), 10, true);
        two.offer(T0, HashKey(11), 10, true);
        assert_eq!(two.split_point(whole()), Some(HashKey(11)));
    }

    #[test]
    fn many_keys_split_near_the_middle_of_the_load() {
        let mut h = Heat::default();
        let range = HashKeyRange { start: HashKey(0), end: HashKey(999_999) };
        // Uniform load over the range's lower half only.
        for i in 0..5000u128 {
            h.offer(T0, HashKey((i * 7919) % 500_000), 100, true);
        }
        let at = h.split_point(range).unwrap();
        assert!(at.0 > 100_000 && at.0 < 400_000, "{at}");
    }

    #[test]
    fn plan_splits_hot_shards_then_fills_the_floor_within_the_max() {
        let half = u128::MAX / 2;
        let lo = HashKeyRange { start: HashKey(0), end: HashKey(half) };
        let hi = HashKeyRange { start: HashKey(half + 1), end: HashKey(u128::MAX) };
        let mut hot = Heat::default();
        for k in [10u128, 20, 30, 40] {
            for _ in 0..150 {
                hot.offer(T0, HashKey(k), 1000, true);
            }
        }
        let cold = Heat::default();
        let shards = vec![load(0, lo, hot.clone()), load(1, hi, cold.clone())];
        let p = plan(&shards, &rates(), 2, 10);
        assert_eq!(p, vec![Split { ordinal: 0, at: HashKey(26) }]);
        // Below the hot mark nothing splits; the floor splits the widest shard at its middle.
        let shards = vec![load(0, lo, cold.clone()), load(1, hi, cold.clone())];
        assert!(plan(&shards, &rates(), 2, 10).is_empty());
        let p = plan(&shards, &rates(), 3, 10);
        assert_eq!(p, vec![Split { ordinal: 0, at: HashKey(half / 2 + 1) }], "equal widths");
        let narrow = HashKeyRange { start: HashKey(0), end: HashKey(5) };
        let wide = HashKeyRange { start: HashKey(6), end: HashKey(u128::MAX) };
        let shards = vec![load(0, narrow, cold.clone()), load(1, wide, cold.clone())];
        let p = plan(&shards, &rates(), 3, 10);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].ordinal, 1, "the widest splits first");
        // The max caps both.
        let shards = vec![load(0, lo, hot), load(1, hi, cold)];
        assert!(plan(&shards, &rates(), 4, 2).is_empty());
    }

    #[test]
    fn midpoints() {
        assert_eq!(midpoint(HashKeyRange { start: HashKey(5), end: HashKey(5) }), None);
        assert_eq!(midpoint(HashKeyRange { start: HashKey(5), end: HashKey(6) }), Some(HashKey(6)));
        assert_eq!(midpoint(whole()), Some(HashKey(u128::MAX / 2 + 1)));
    }
}
