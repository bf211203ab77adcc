//! The read path: lookups by offset and by time, listings, record reads and stats.
//!
//! Every lookup is two binary searches: over the in-memory list of segment summaries, then over
//! one segment's index: in memory for the active segment, with preads on the `.idx` file for a
//! sealed one (so a month of history costs no RAM beyond one summary per segment). Listing `k`
//! entries then costs one pread per segment the range touches, so O(log n + k) however long the
//! history is. Readers take `Inner::state` only long enough to clone the `Arc`s of the segment
//! files they need and to copy entries of the active segment; their file I/O happens after it is
//! released, so a slow disk read never blocks appends and a segment deleted meanwhile by
//! retention is still read through its open descriptors. Nothing at or past the committed end is
//! ever returned.

use std::sync::Arc;

use super::format::Slot;
use super::segment::SegmentFiles;
use super::{IndexEntry, Log, LogError, LogStats, Offset, Record, State, TimeKey, lock};
use crate::clock::Timestamp;

/// Where the index entry of one offset is to be found.
enum Found {
    /// Copied from the active segment's in-memory index.
    InMemory(Arc<SegmentFiles>, Slot),
    /// The `rel`-th entry of a sealed segment's `.idx`.
    OnDisk(Arc<SegmentFiles>, u64),
}

impl State {
    /// Position of the sealed segment holding `o`, if any.
    fn sealed_holding(&self, o: Offset) -> Option<usize> {
        let i = self.sealed.partition_point(|s| s.base() <= o).checked_sub(1)?;
        (o < self.sealed[i].end()).then_some(i)
    }

    /// Where to find the entry of `o`, if `o` is visible.
    fn locate(&self, o: Offset) -> Option<Found> {
        if o < self.start() || o >= self.committed {
            return None;
        }
        let active = &self.active;
        if o >= active.base() {
            let slot = self.active_slots.get(usize::try_from(o.0 - active.base().0).ok()?)?;
            return Some(Found::InMemory(active.files.clone(), *slot));
        }
        let seg = &self.sealed[self.sealed_holding(o)?];
        Some(Found::OnDisk(seg.files.clone(), o.0 - seg.base().0))
    }

    /// The visible prefix of the active segment's index.
    fn visible_active(&self) -> &[Slot] {
        let n = self.committed.0.saturating_sub(self.active.base().0);
        let n = usize::try_from(n).unwrap_or(usize::MAX).min(self.active_slots.len());
        &self.active_slots[..n]
    }
}

impl Log {
    fn slot(&self, o: Offset) -> Result<Option<(Arc<SegmentFiles>, Slot)>, LogError> {
        let found = lock(&self.inner.state).locate(o);
        match found {
            None => Ok(None),
            Some(Found::InMemory(files, slot)) => Ok(Some((files, slot))),
            Some(Found::OnDisk(files, rel)) => {
                let slot = files.read_slot(rel)?;
                Ok(Some((files, slot)))
            }
        }
    }

    /// The index entry of `o`; `None` if deleted by retention or not yet committed.
    pub fn entry(&self, o: Offset) -> Result<Option<IndexEntry>, LogError> {
        Ok(self.slot(o)?.map(|(_, s)| s.entry))
    }

    /// Reads record `o` with one pread and verifies its CRC; `None` if deleted or not yet
    /// committed. A mismatch is [`LogError::Corrupt`] with the segment file and position.
    pub fn read(&self, o: Offset) -> Result<Option<Record>, LogError> {
        match self.slot(o)? {
            None => Ok(None),
            Some((files, slot)) => files.read_record(&slot).map(Some),
        }
    }

    /// Entries of `[from, to)` that are visible, in offset order, at most `limit` of them.
    pub fn entries(
        &self,
        from: Offset,
        to: Offset,
        limit: usize,
    ) -> Result<Vec<IndexEntry>, LogError> {
        let mut plan: Vec<(Arc<SegmentFiles>, u64, usize)> = Vec::new();
        let mut tail: Vec<IndexEntry> = Vec::new();
        let mut total = 0usize;
        {
            let st = lock(&self.inner.state);
            let from = from.max(st.start());
            let to = to.min(st.committed).min(Offset(from.0.saturating_add(limit as u64)));
            if from >= to {
                return Ok(Vec::new());
            }
            let first = st.sealed.partition_point(|s| s.end() <= from);
            for seg in st.sealed[first..].iter().take_while(|s| s.base() < to) {
                let lo = from.max(seg.base());
                let hi = to.min(seg.end());
                let n = (hi.0 - lo.0) as usize; // bounded by `limit`
                plan.push((seg.files.clone(), lo.0 - seg.base().0, n));
                total += n;
            }
            let active_base = st.active.base();
            if to > active_base {
                let lo = (from.max(active_base).0 - active_base.0) as usize;
                let hi = (to.0 - active_base.0) as usize;
                let visible = st.visible_active();
                tail.extend(
                    visible[lo.min(visible.len())..hi.min(visible.len())].iter().map(|s| s.entry),
                );
                total += tail.len();
            }
        }
        let mut out = Vec::with_capacity(total);
        for (files, rel, n) in plan {
            out.extend(files.read_slots(rel, n)?.into_iter().map(|s| s.entry));
        }
        out.extend(tail);
        Ok(out)
    }

    /// The last (at most) `limit` visible entries before `before`, in ascending order: a
    /// newest-first walk back, for live playlist windows and tails.
    pub fn entries_rev(&self, before: Offset, limit: usize) -> Result<Vec<IndexEntry>, LogError> {
        let (start, committed) = {
            let st = lock(&self.inner.state);
            (st.start(), st.committed)
        };
        let to = before.min(committed);
        let from = Offset(to.0.saturating_sub(limit as u64)).max(start);
        self.entries(from, to, limit)
    }

    /// The first visible offset whose `key` is `>= t`; the committed end if there is none.
    pub fn lower_bound(&self, key: TimeKey, t: Timestamp) -> Result<Offset, LogError> {
        let (files, count) = {
            let st = lock(&self.inner.state);
            // Keys never decrease along the log, so "segment's last key < t" is a prefix.
            let i = st.sealed.partition_point(|s| s.last.is_none_or(|e| key.of(&e) < t));
            match st.sealed.get(i) {
                Some(seg) if seg.first.is_some_and(|e| key.of(&e) >= t) => return Ok(seg.base()),
                Some(seg) => (seg.files.clone(), seg.count),
                None => {
                    let visible = st.visible_active();
                    let rel = visible.partition_point(|s| key.of(&s.entry) < t);
                    return Ok(Offset(st.active.base().0 + rel as u64));
                }
            }
        };
        let rel = files.lower_bound(count, key, t)?;
        Ok(Offset(files.base.0 + rel))
    }

    /// A snapshot of the log's extent. No I/O.
    pub fn stats(&self) -> LogStats {
        let st = lock(&self.inner.state);
        let start = st.start();
        let end = st.committed.max(start);
        let visible = st.visible_active();
        let (first, last) = if end > start {
            let first =
                st.sealed.first().map_or_else(|| visible.first().map(|s| s.entry), |s| s.first);
            let last =
                visible.last().map(|s| s.entry).or_else(|| st.sealed.last().and_then(|s| s.last));
            (first, last)
        } else {
            (None, None)
        };
        LogStats {
            start,
            end,
            records: end.0 - start.0,
            bytes: st.bytes(),
            segments: st.sealed.len() + 1,
            first,
            last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    /// A log of `n` records one second apart with arrival 500 ms after time, in ~10 segments.
    fn many(dir: &std::path::Path, n: i64) -> anyhow::Result<Log> {
        let frame = 56 + 4;
        let cfg = LogConfig { segment_max_bytes: 32 + 10 * frame, ..config(SyncPolicy::Never) };
        let log = open(dir, cfg, &clock());
        for i in 0..n {
            let mut r = rec(i, b"abcd");
            r.arrival = r.arrival.add_micros(500_000);
            log.append(r)?;
        }
        Ok(log)
    }

    fn at(secs: i64, extra_us: i64) -> Timestamp {
        Timestamp::from_micros(T0 + secs * 1_000_000 + extra_us)
    }

    #[test]
    fn lower_bound_on_both_keys_across_segments() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = many(dir.path(), 95)?;
        assert_eq!(log.stats().segments, 10);
        for i in 0..95 {
            let o = Offset(i as u64);
            assert_eq!(log.lower_bound(TimeKey::Time, at(i, 0))?, o, "time {i}");
            assert_eq!(log.lower_bound(TimeKey::Time, at(i, -1))?, o);
            assert_eq!(log.lower_bound(TimeKey::Time, at(i, 1))?, o.next());
            assert_eq!(log.lower_bound(TimeKey::Arrival, at(i, 500_000))?, o, "arrival {i}");
            assert_eq!(log.lower_bound(TimeKey::Arrival, at(i, 499_999))?, o);
            assert_eq!(log.lower_bound(TimeKey::Arrival, at(i, 500_001))?, o.next());
        }
        assert_eq!(log.lower_bound(TimeKey::Time, Timestamp::MIN)?, Offset(0));
        assert_eq!(log.lower_bound(TimeKey::Time, Timestamp::MAX)?, Offset(95));
        Ok(())
    }

    #[test]
    fn lower_bound_with_equal_times_finds_the_first() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let cfg = LogConfig { segment_max_bytes: 32 + 2 * 57, ..config(SyncPolicy::Never) };
        let log = open(dir.path(), cfg, &clock());
        for i in [0, 1, 1, 1, 1, 1, 2] {
            log.append(rec(i, b"x"))?;
        }
        assert_eq!(log.lower_bound(TimeKey::Time, at(1, 0))?, Offset(1));
        assert_eq!(log.lower_bound(TimeKey::Time, at(2, 0))?, Offset(6));
        Ok(())
    }

    #[test]
    fn entries_with_ranges_and_limits() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = many(dir.path(), 95)?;
        let offs = |v: Vec<IndexEntry>| v.into_iter().map(|e| e.offset.0).collect::<Vec<_>>();
        assert_eq!(offs(log.entries(Offset(0), Offset(95), 1000)?), (0..95).collect::<Vec<_>>());
        assert_eq!(offs(log.entries(Offset(7), Offset(33), 1000)?), (7..33).collect::<Vec<_>>());
        assert_eq!(offs(log.entries(Offset(7), Offset(33), 5)?), (7..12).collect::<Vec<_>>());
        assert_eq!(offs(log.entries(Offset(88), Offset(500), 1000)?), (88..95).collect::<Vec<_>>());
        assert!(log.entries(Offset(95), Offset(500), 10)?.is_empty());
        assert!(log.entries(Offset(10), Offset(5), 10)?.is_empty());
        assert!(log.entries(Offset(0), Offset(95), 0)?.is_empty());
        assert_eq!(offs(log.entries_rev(Offset(95), 4)?), vec![91, 92, 93, 94]);
        assert_eq!(offs(log.entries_rev(Offset(1000), 2)?), vec![93, 94]);
        assert_eq!(offs(log.entries_rev(Offset(25), 3)?), vec![22, 23, 24]);
        assert_eq!(offs(log.entries_rev(Offset(2), 5)?), vec![0, 1]);
        let e = log.entries(Offset(41), Offset(42), 1)?;
        assert_eq!(e[0].time, at(41, 0));
        assert_eq!(e[0].arrival, at(41, 500_000));
        assert_eq!(e[0].len, 4);
        assert_eq!(e[0].meta[..8], 41i64.to_le_bytes());
        Ok(())
    }

    #[test]
    fn stats_on_empty_and_full_logs() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = open(dir.path(), config(SyncPolicy::Never), &clock());
        let s = log.stats();
        assert_eq!(
            (s.start, s.end, s.records, s.first, s.last),
            (Offset(0), Offset(0), 0, None, None)
        );
        assert_eq!(log.lower_bound(TimeKey::Arrival, Timestamp::MIN)?, Offset(0));
        assert!(log.entries_rev(Offset(10), 10)?.is_empty());
        let log = many(&dir.path().join("m"), 25)?;
        let s = log.stats();
        assert_eq!(
            (s.records, s.first.map(|e| e.offset), s.last.map(|e| e.offset)),
            (25, Some(Offset(0)), Some(Offset(24)))
        );
        Ok(())
    }
}
