//! Retention: deleting whole segments, oldest first, never rewriting data.
//!
//! - By age: a segment goes when its *last* record's arrival is older than `now - max_age`.
//! - By bytes: the oldest segments go while the log's files total more than `max_bytes`. The
//!   newest (active) segment is never deleted for size, so a log whose active segment alone
//!   exceeds `max_bytes` keeps it until it rolls; size `segment_max_bytes` well below
//!   `max_bytes` (a tenth or less) to keep the overshoot small.
//! - If the active segment is entirely expired by age (and fully committed), it is replaced by a
//!   new empty segment starting at the next offset, and then deleted: the log becomes empty but
//!   keeps its next offset, on disk too (the new segment's file name is that offset).
//!
//! Order: the victims leave the in-memory list first, so no new lookup or listing can name
//! them; their files are unlinked afterwards. A reader that cloned a segment's `Arc` before that
//! finishes its read through the open descriptors. The global free-disk floor is the caller's
//! policy (it can call [`Log::enforce_retention`] with a smaller `max_bytes`).

use std::mem;
use std::sync::Arc;
use std::time::Duration;

use super::segment::{self, Segment, SegmentFiles};
use super::{IndexEntry, Log, LogError, lock};
use crate::clock::Timestamp;

/// How long and how much a log keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Delete segments whose newest record arrived longer ago than this.
    pub max_age: Option<Duration>,
    /// Delete the oldest segments while the log's files total more than this (bytes).
    pub max_bytes: Option<u64>,
}

/// The records one deleted segment held, for events and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletedRange {
    pub first: IndexEntry,
    pub last: IndexEntry,
    pub records: u64,
    /// Bytes freed on disk (both files).
    pub bytes: u64,
}

impl Log {
    /// Deletes the segments `r` no longer allows at time `now` and returns what they held,
    /// oldest first. See the module docs for the rules. A file that cannot be unlinked is
    /// logged (its records are already gone from the log's view) and is removed again on the
    /// next open.
    pub fn enforce_retention(
        &self,
        r: &Retention,
        now: Timestamp,
    ) -> Result<Vec<DeletedRange>, LogError> {
        let inner = &self.inner;
        // The writer lock keeps appends, rollover and other retention runs out while the plan
        // is made and applied, so the segment list cannot change under us.
        let mut w = lock(&inner.writer);
        let cutoff = r.max_age.map(|a| now.saturating_sub(a));
        let expired =
            |seg: &Segment| cutoff.is_some_and(|c| seg.last.is_some_and(|e| e.arrival < c));
        let (n_sealed, replace_active) = {
            let st = lock(&inner.state);
            let mut total = st.bytes();
            let mut n = 0;
            for seg in &st.sealed {
                let too_big = r.max_bytes.is_some_and(|m| total > m);
                if !(expired(seg) || too_big || seg.count == 0) {
                    break;
                }
                total -= seg.bytes();
                n += 1;
            }
            let replace = n == st.sealed.len()
                && st.active.count > 0
                && st.committed == st.written
                && expired(&st.active);
            (n, replace)
        };
        if n_sealed == 0 && !replace_active {
            return Ok(Vec::new());
        }

        // A fresh active segment at the next offset, created (and made durable in the
        // directory) before the old one goes, so the next offset survives a crash.
        let fresh = if replace_active {
            let files = Arc::new(SegmentFiles::create(&inner.dir, w.next())?);
            segment::sync_dir(&inner.dir)?;
            Some(files)
        } else {
            None
        };

        let victims: Vec<Segment> = {
            let mut st = lock(&inner.state);
            let mut victims: Vec<Segment> = st.sealed.drain(..n_sealed).collect();
            if let Some(files) = &fresh {
                victims.push(mem::replace(&mut st.active, Segment::empty(files.clone())));
                st.active_slots = Vec::new();
            }
            victims
        };
        if let Some(files) = fresh {
            w.reset_to(files);
        }
        drop(w);

        let mut deleted = Vec::with_capacity(victims.len());
        for seg in victims {
            let f = &seg.files;
            // The `.log` first: an `.idx` left alone by a crash is removed on open, while a
            // `.log` left alone would be re-indexed and kept. An evicted segment has no local
            // `.log`; its objects and marker go after its files.
            let paths =
                if f.is_remote() { vec![&f.idx_path] } else { vec![&f.log_path, &f.idx_path] };
            for path in paths {
                if let Err(e) = std::fs::remove_file(path) {
                    tracing::error!(path = %path.display(), error = %e, "cannot delete a segment file");
                }
            }
            super::tier::forget(&inner.dir, f, inner.config.tier.as_ref().map(|t| &t.tier));
            if let (Some(first), Some(last)) = (seg.first, seg.last) {
                tracing::info!(
                    dir = %inner.dir.display(),
                    first = %first.offset,
                    last = %last.offset,
                    records = seg.count,
                    bytes = seg.bytes(),
                    "retention deleted a segment"
                );
                deleted.push(DeletedRange { first, last, records: seg.count, bytes: seg.bytes() });
            }
        }
        if let Err(e) = segment::sync_dir(&inner.dir) {
            tracing::error!(dir = %inner.dir.display(), error = %e, "cannot fsync the directory after deletion");
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use std::time::Duration;

    /// 30 records one second apart, 3 per segment (10 segments).
    fn setup(dir: &std::path::Path, clock: &Arc<crate::clock::ManualClock>) -> anyhow::Result<Log> {
        let cfg = LogConfig { segment_max_bytes: 32 + 3 * 66, ..config(SyncPolicy::Never) };
        let log = open(dir, cfg, clock);
        for i in 0..30 {
            log.append(rec(i, b"0123456789"))?;
        }
        assert_eq!(log.stats().segments, 10);
        Ok(log)
    }

    fn secs(s: i64) -> Timestamp {
        Timestamp::from_micros(T0 + s * 1_000_000)
    }

    #[test]
    fn retention_by_age_deletes_expired_segments_then_the_active_one() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        let log = setup(dir.path(), &clock)?;
        let r = Retention { max_age: Some(Duration::from_secs(100)), max_bytes: None };
        // Cutoff at second 8: segments [0..3) and [3..6) have their last record (2, 5) before it;
        // [6..9) ends at 8, not before the cutoff.
        let gone = log.enforce_retention(&r, secs(108))?;
        assert_eq!(gone.len(), 2);
        assert_eq!(
            (gone[0].first.offset, gone[0].last.offset, gone[0].records),
            (Offset(0), Offset(2), 3)
        );
        assert_eq!(gone[1].first.offset, Offset(3));
        assert_eq!(gone[0].bytes, 32 + 3 * 66 + 32 + 3 * 64);
        assert_eq!(log.start(), Offset(6));
        assert_eq!(log.read(Offset(5))?, None);
        assert_eq!(log.entry(Offset(2))?, None);
        assert!(log.read(Offset(6))?.is_some());
        assert_eq!(log.lower_bound(TimeKey::Time, Timestamp::MIN)?, Offset(6));
        assert_eq!(log.entries(Offset(0), Offset(8), 100)?.len(), 2);
        assert!(!segment::log_path(dir.path(), Offset(0)).exists());
        assert!(!segment::idx_path(dir.path(), Offset(3)).exists());
        assert!(log.enforce_retention(&r, secs(108))?.is_empty());

        // Everything expired, including the active segment: empty, but the offsets go on.
        let gone = log.enforce_retention(&r, secs(1000))?;
        assert_eq!(gone.len(), 8);
        assert_eq!(gone[7].last.offset, Offset(29));
        let s = log.stats();
        assert_eq!((s.start, s.end, s.records, s.segments), (Offset(30), Offset(30), 0, 1));
        assert_eq!(log.append(rec(40, b"again"))?, Offset(30));
        drop(log);
        let log = open(dir.path(), config(SyncPolicy::Never), &clock);
        assert_eq!((log.start(), log.committed_end()), (Offset(30), Offset(31)));
        let gone = log.enforce_retention(&r, secs(2000))?;
        assert_eq!(gone.len(), 1);
        drop(log);
        let log = open(dir.path(), config(SyncPolicy::Never), &clock);
        assert_eq!((log.start(), log.committed_end()), (Offset(31), Offset(31)));
        assert_eq!(log.append(rec(50, b"x"))?, Offset(31));
        Ok(())
    }

    #[test]
    fn retention_by_bytes_keeps_the_newest_segment() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        let log = setup(dir.path(), &clock)?;
        let seg_bytes = 32 + 3 * 66 + 32 + 3 * 64;
        let r = Retention { max_age: None, max_bytes: Some(4 * seg_bytes) };
        let gone = log.enforce_retention(&r, secs(0))?;
        assert_eq!(gone.len(), 6);
        assert_eq!(log.stats().bytes, 4 * seg_bytes);
        assert_eq!(log.start(), Offset(18));
        let r = Retention { max_age: None, max_bytes: Some(1) };
        let gone = log.enforce_retention(&r, secs(0))?;
        assert_eq!(gone.len(), 3);
        let s = log.stats();
        assert_eq!((s.start, s.end, s.segments), (Offset(27), Offset(30), 1));
        Ok(())
    }

    #[test]
    fn a_read_in_flight_survives_deletion() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        let log = setup(dir.path(), &clock)?;
        // What `Log::read` holds between finding the record and reading it.
        let files = lock(&log.inner.state).sealed[0].files.clone();
        let slot = files.read_slot(1)?;
        let r = Retention { max_age: Some(Duration::from_secs(1)), max_bytes: None };
        assert_eq!(log.enforce_retention(&r, secs(100))?.len(), 10);
        assert!(!files.log_path.exists());
        let rec = files.read_record(&slot)?;
        assert_eq!(rec.entry.offset, Offset(1));
        assert_eq!(rec.payload, &b"0123456789"[..]);
        Ok(())
    }

    #[test]
    fn uncommitted_active_segment_is_not_deleted() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        let log = open(dir.path(), config(SyncPolicy::Always), &clock);
        log.inner.commit.delay_ms.store(300, std::sync::atomic::Ordering::Relaxed);
        log.append(rec(0, b"x"))?;
        let r = Retention { max_age: Some(Duration::from_secs(1)), max_bytes: None };
        assert!(log.enforce_retention(&r, secs(100))?.is_empty());
        log.sync()?;
        assert_eq!(log.enforce_retention(&r, secs(100))?.len(), 1);
        assert_eq!(log.append(rec(1, b"y"))?, Offset(1));
        Ok(())
    }
}
