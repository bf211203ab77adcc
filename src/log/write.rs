//! The write path: [`Log::append`] and [`Log::append_batch`], segment rollover, and getting back
//! to a clean end of file after a failed write (a full disk).
//!
//! Appends are serialised by `Inner::writer`. An append validates everything first, then writes
//! the frames to the `.log` with positioned writes, then the index entries to the `.idx`, and
//! only then publishes the new records in `Inner::state`. If any write fails, both files are
//! truncated back to where the append started, so no half-record is ever visible, and the log
//! stays usable. Durability (fsync) is [`super::commit`]'s business; an append only kicks it.

use std::fs::File;
use std::mem;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::format::{self, FILE_HEADER_LEN, FRAME_HEADER_LEN, INDEX_ENTRY_LEN, Slot};
use super::segment::{self, Segment, SegmentFiles, io_err};
use super::{IndexEntry, Inner, Log, LogError, NewRecord, Offset, State, SyncPolicy, lock};
use crate::clock::Timestamp;

/// Payloads up to this size are copied into one buffer with their frame headers (one write for a
/// whole batch); larger ones are written from their own `Bytes` (header and payload as two
/// positioned writes) to avoid the copy. Copying is cheaper than an extra `pwrite(2)` only for
/// small payloads: at 256 KiB, copying ~100 KB video fragments cost 3–4 % of ingest CPU.
const COALESCE_MAX: usize = 16 * 1024;

/// The append side of the log, guarded by `Inner::writer`.
#[derive(Debug)]
pub(super) struct Writer {
    /// Files of the active segment.
    files: Arc<SegmentFiles>,
    next: Offset,
    /// Length of the active `.log` / `.idx` up to the last complete append.
    log_len: u64,
    idx_len: u64,
    /// Records in the active segment.
    count: u64,
    last_time: Option<Timestamp>,
    last_arrival: Option<Timestamp>,
    /// When the active segment took its first append (by the log's clock).
    opened_at: Option<Timestamp>,
    /// A failed write may have left bytes past `log_len` / `idx_len`: truncate before writing.
    dirty: bool,
    /// Test hook: fail with ENOSPC once this many more bytes have been written.
    #[cfg(test)]
    pub(super) fail_after: Option<u64>,
}

impl Writer {
    /// The writer for a freshly recovered (or retention-reset) state.
    pub(super) fn new(state: &State) -> Writer {
        let last = state.active.last.or_else(|| state.sealed.last().and_then(|s| s.last));
        Writer {
            files: state.active.files.clone(),
            next: state.written,
            log_len: state.active.log_bytes,
            idx_len: state.active.idx_bytes,
            count: state.active.count,
            last_time: last.map(|e| e.time),
            last_arrival: last.map(|e| e.arrival),
            // After a restart the wall-clock time of the first append is unknown; the first
            // record's arrival is the closest record of it.
            opened_at: state.active.first.map(|e| e.arrival),
            dirty: false,
            #[cfg(test)]
            fail_after: None,
        }
    }

    /// Starts over on a new, empty active segment.
    pub(super) fn reset_to(&mut self, files: Arc<SegmentFiles>) {
        self.next = files.base;
        self.files = files;
        self.log_len = FILE_HEADER_LEN;
        self.idx_len = FILE_HEADER_LEN;
        self.count = 0;
        self.opened_at = None;
        self.dirty = false;
    }

    pub(super) fn next(&self) -> Offset {
        self.next
    }

    /// Truncates both files back to the end of the last complete append.
    fn repair(&mut self) -> Result<(), LogError> {
        if self.dirty {
            let f = &self.files;
            f.log.set_len(self.log_len).map_err(io_err("truncate", &f.log_path))?;
            f.idx.set_len(self.idx_len).map_err(io_err("truncate", &f.idx_path))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// One positioned write, through the test fault hook.
    fn write_at(&mut self, file: &File, path: &Path, buf: &[u8], pos: u64) -> Result<(), LogError> {
        #[cfg(test)]
        if let Some(budget) = self.fail_after {
            if (buf.len() as u64) > budget {
                let part = usize::try_from(budget).unwrap_or(buf.len());
                self.fail_after = None;
                file.write_all_at(&buf[..part], pos).map_err(io_err("write", path))?;
                return Err(io_err("write", path)(std::io::Error::from(
                    std::io::ErrorKind::StorageFull,
                )));
            }
            self.fail_after = Some(budget - buf.len() as u64);
        }
        file.write_all_at(buf, pos).map_err(io_err("write", path))
    }

    /// Writes the frames of `slots` / `payloads` to the `.log` at `self.log_len`, coalescing
    /// small records into one buffer.
    fn write_frames(&mut self, slots: &[Slot], payloads: &[Bytes]) -> Result<(), LogError> {
        let files = self.files.clone();
        let log = files.log.file().map_err(io_err("write", &files.log_path))?;
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_pos = self.log_len;
        for (slot, payload) in slots.iter().zip(payloads) {
            let header = format::encode_frame_header(&slot.entry, payload);
            if payload.len() <= COALESCE_MAX {
                if buf.is_empty() {
                    buf_pos = slot.position;
                }
                buf.extend_from_slice(&header);
                buf.extend_from_slice(payload);
            } else {
                if !buf.is_empty() {
                    self.write_at(log, &files.log_path, &buf, buf_pos)?;
                    buf.clear();
                }
                self.write_at(log, &files.log_path, &header, slot.position)?;
                let at = slot.position + FRAME_HEADER_LEN as u64;
                self.write_at(log, &files.log_path, payload, at)?;
            }
        }
        if !buf.is_empty() {
            self.write_at(log, &files.log_path, &buf, buf_pos)?;
        }
        Ok(())
    }

    fn write_index(&mut self, slots: &[Slot]) -> Result<(), LogError> {
        let files = self.files.clone();
        let mut buf = Vec::with_capacity(slots.len() * INDEX_ENTRY_LEN);
        for slot in slots {
            buf.extend_from_slice(&format::encode_index_entry(slot));
        }
        self.write_at(&files.idx, &files.idx_path, &buf, self.idx_len)
    }
}

impl Log {
    /// Seals the active segment now if it holds records, so retention can delete it (the free-disk
    /// floor does this when a log's only segment holds everything). Returns whether it sealed.
    pub fn seal_active(&self) -> Result<bool, LogError> {
        let inner = &self.inner;
        let mut w = lock(&inner.writer);
        inner.check_failed()?;
        if w.count == 0 {
            return Ok(false);
        }
        inner.roll(&mut w)?;
        Ok(true)
    }

    /// Appends one record; returns its offset. Only `write(2)`: the record becomes visible and
    /// durable per the [`super::SyncPolicy`] (see [`Log::wait_durable`]).
    pub fn append(&self, rec: NewRecord) -> Result<Offset, LogError> {
        self.append_batch(vec![rec]).map(|r| r.start)
    }

    /// Appends records as one unit: all are validated before anything is written, and they are
    /// written with one `write(2)` to the `.log` (records above 16 KiB are written from their
    /// own buffers) and one to the `.idx`. A batch never straddles segments: rollover is checked
    /// once, before the batch. An empty batch returns the empty range at the current end.
    pub fn append_batch(&self, recs: Vec<NewRecord>) -> Result<Range<Offset>, LogError> {
        let inner = &self.inner;
        let mut w = lock(&inner.writer);
        inner.check_failed()?;
        if recs.is_empty() {
            return Ok(w.next..w.next);
        }

        // Validate everything before writing anything.
        let mut last_time = w.last_time;
        let mut batch_bytes = 0u64;
        for rec in &recs {
            if u32::try_from(rec.payload.len()).is_err() {
                return Err(LogError::PayloadTooLarge { len: rec.payload.len() });
            }
            if let Some(last) = last_time
                && rec.time < last
            {
                return Err(LogError::TimeWentBackwards { last, got: rec.time });
            }
            last_time = Some(rec.time);
            batch_bytes += (FRAME_HEADER_LEN + rec.payload.len()) as u64;
        }

        w.repair()?;
        if w.count > 0 && inner.should_roll(&w, batch_bytes) {
            inner.roll(&mut w)?;
        }

        // Lay the batch out.
        let first = w.next;
        let mut position = w.log_len;
        let mut arrival_floor = w.last_arrival;
        let mut slots = Vec::with_capacity(recs.len());
        let mut payloads = Vec::with_capacity(recs.len());
        for (i, rec) in recs.into_iter().enumerate() {
            let arrival = match arrival_floor {
                Some(floor) if rec.arrival < floor => floor,
                _ => rec.arrival,
            };
            arrival_floor = Some(arrival);
            let entry = IndexEntry {
                offset: Offset(first.0 + i as u64),
                time: rec.time,
                arrival,
                len: rec.payload.len() as u32, // checked above
                meta: rec.meta,
            };
            let slot = Slot { entry, position };
            position = slot.end();
            slots.push(slot);
            payloads.push(rec.payload);
        }

        // Data first, then the index that points into it; on failure, back to a clean end.
        let written = w.write_frames(&slots, &payloads).and_then(|()| w.write_index(&slots));
        if let Err(e) = written {
            w.dirty = true;
            if let Err(repair) = w.repair() {
                tracing::error!(dir = %inner.dir.display(), error = %repair,
                    "could not truncate after a failed append; will retry before the next one");
            }
            tracing::warn!(dir = %inner.dir.display(), error = %e, "append failed; nothing written");
            return Err(e);
        }

        let n = slots.len() as u64;
        w.next = Offset(first.0 + n);
        w.log_len = position;
        w.idx_len += n * INDEX_ENTRY_LEN as u64;
        w.count += n;
        w.last_time = last_time;
        w.last_arrival = arrival_floor;
        if w.opened_at.is_none() {
            w.opened_at = Some(inner.clock.now());
        }

        let committed = {
            let mut st = lock(&inner.state);
            for slot in &slots {
                st.active.push(slot);
            }
            st.active_slots.extend_from_slice(&slots);
            st.written = w.next;
            if inner.config.sync != SyncPolicy::Always {
                st.committed = st.written;
            }
            st.committed
        };
        // Half way to a rollover, the next segment's files are made ahead of need.
        let half_full = position >= inner.config.segment_max_bytes / 2
            || w.opened_at.is_some_and(|t| {
                let half_age =
                    i64::try_from(inner.config.segment_max_age.as_micros() / 2).unwrap_or(i64::MAX);
                inner.clock.now().micros_since(t) >= half_age
            });
        drop(w);
        inner.publish(committed);
        inner.kick_syncer();
        if half_full && inner.config.spare_segment {
            inner.ensure_spare();
        }
        Ok(super::offset_range(first, n))
    }
}

impl Inner {
    /// Whether the active segment must be sealed before appending `batch_bytes` more.
    fn should_roll(&self, w: &Writer, batch_bytes: u64) -> bool {
        let too_big = w.log_len.saturating_add(batch_bytes) > self.config.segment_max_bytes;
        let max_age = i64::try_from(self.config.segment_max_age.as_micros()).unwrap_or(i64::MAX);
        let too_old = w.opened_at.is_some_and(|t| self.clock.now().micros_since(t) >= max_age);
        too_big || too_old
    }

    /// Seals the active segment (fdatasync of its data and index), creates the next one and
    /// makes it the active segment. Called with the writer lock held.
    pub(super) fn roll(&self, w: &mut Writer) -> Result<(), LogError> {
        self.before_sync();
        w.repair()?;
        // The old segment must be durable before the new one takes appends: recovery only
        // verifies the last segment record by record.
        if let Err(e) = w.files.sync_data() {
            return Err(self.fail(e));
        }
        self.commit.count_sync();
        // The spare made ahead of need when there is one (a rename), else new files.
        let spare = lock(&self.spare).take();
        let files = Arc::new(match spare {
            Some(spare) => spare.promote(&self.dir, w.next)?,
            None => SegmentFiles::create(&self.dir, w.next)?,
        });
        segment::sync_dir(&self.dir)?;
        let committed = {
            let mut st = lock(&self.state);
            let old = mem::replace(&mut st.active, Segment::empty(files.clone()));
            st.active_slots = Vec::new();
            if old.count > 0 {
                st.sealed.push(old);
            }
            // Everything written so far is in sealed, synced segments now.
            st.durable = st.durable.max(st.written);
            st.committed = st.committed.max(st.written);
            st.committed
        };
        tracing::debug!(dir = %self.dir.display(), base = %w.next, "rolled to a new segment");
        w.reset_to(files);
        self.publish(committed);
        Ok(())
    }

    /// Makes sure a spare segment exists or is being made, on a thread of its own, so the next
    /// rollover does not create files on the append path. Called after appends once the active
    /// segment is half way to its rollover; cheap when a spare exists.
    pub(super) fn ensure_spare(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.spare_pending.load(Ordering::Acquire) || lock(&self.spare).is_some() {
            return;
        }
        if self.spare_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::downgrade(self);
        let dir = self.dir.clone();
        let spawned = std::thread::Builder::new().name("log-spare".into()).spawn(move || {
            let made = SegmentFiles::create_spare(&dir);
            let Some(inner) = inner.upgrade() else { return };
            match made {
                Ok(files) => *lock(&inner.spare) = Some(files),
                // The next rollover creates its segment itself, as without a spare.
                Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "could not create a spare segment"),
            }
            inner.spare_pending.store(false, Ordering::Release);
        });
        if spawned.is_err() {
            self.spare_pending.store(false, Ordering::Release);
        }
    }

    /// Announces a committed end to subscribers, never moving it backwards.
    pub(super) fn publish(&self, committed: Offset) {
        self.committed_tx.send_if_modified(|c| {
            if committed > *c {
                *c = committed;
                true
            } else {
                false
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use super::COALESCE_MAX;
    use std::time::Duration;

    #[test]
    fn time_going_backwards_is_rejected_and_nothing_is_written() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = open(dir.path(), config(SyncPolicy::Never), &clock());
        log.append(rec(10, b"a"))?;
        let err = log.append(rec(9, b"b")).err();
        assert!(matches!(err, Some(LogError::TimeWentBackwards { .. })), "{err:?}");
        // A batch is validated as a whole: the good first record is not written either.
        let err = log.append_batch(vec![rec(11, b"c"), rec(10, b"d")]).err();
        assert!(matches!(err, Some(LogError::TimeWentBackwards { .. })), "{err:?}");
        assert_eq!(log.committed_end(), Offset(1));
        // Equal times are fine.
        assert_eq!(log.append(rec(10, b"e"))?, Offset(1));
        Ok(())
    }

    #[test]
    fn arrival_is_clamped_to_be_non_decreasing() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = open(dir.path(), config(SyncPolicy::Never), &clock());
        log.append(rec(10, b"a"))?;
        let mut r = rec(11, b"b");
        r.arrival = rec(5, b"").arrival;
        log.append(r)?;
        let e = log.entry(Offset(1))?.ok_or_else(|| anyhow::anyhow!("missing"))?;
        assert_eq!(e.arrival, rec(10, b"").arrival);
        assert_eq!(e.time, rec(11, b"").time);
        Ok(())
    }

    #[test]
    fn batch_gets_consecutive_offsets() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = open(dir.path(), config(SyncPolicy::Never), &clock());
        assert_eq!(log.append_batch(vec![])?, Offset(0)..Offset(0));
        let big = vec![7u8; COALESCE_MAX + 1];
        let r = log.append_batch(vec![rec(1, b"a"), rec(2, &big), rec(3, b"c")])?;
        assert_eq!(r, Offset(0)..Offset(3));
        assert_eq!(log.read(Offset(1))?.map(|r| r.payload.len()), Some(big.len()));
        assert_eq!(log.read(Offset(2))?.map(|r| r.payload), Some(Bytes::from_static(b"c")));
        Ok(())
    }

    #[test]
    fn rolls_by_size_and_big_records_get_their_own_segment() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let cfg = LogConfig { segment_max_bytes: 32 + 3 * 66, ..config(SyncPolicy::Never) };
        let log = open(dir.path(), cfg, &clock());
        for i in 0..7 {
            log.append(rec(i, b"0123456789"))?; // 56 + 10 = 66 bytes a frame
        }
        assert_eq!(log.stats().segments, 3); // 3 + 3 + 1
        log.append(rec(7, &[1u8; 1000]))?; // larger than a segment: its own
        log.append(rec(8, b"0123456789"))?;
        assert_eq!(log.stats().segments, 5);
        let bases = segment_bases(dir.path())?;
        assert_eq!(bases, vec![0, 3, 6, 7, 8]);
        for i in 0..9 {
            assert!(log.read(Offset(i))?.is_some(), "offset {i}");
        }
        Ok(())
    }

    /// Waits (bounded) until the log's spare segment exists on disk.
    fn wait_for_spare(dir: &Path) {
        for _ in 0..500 {
            if dir.join(super::segment::SPARE_LOG).exists()
                && dir.join(super::segment::SPARE_IDX).exists()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no spare segment in {}", dir.display());
    }

    #[test]
    fn rollovers_promote_the_spare_made_ahead_and_recovery_drops_an_unused_one()
    -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let cfg = LogConfig { segment_max_bytes: 32 + 3 * 66, ..config(SyncPolicy::Never) };
        {
            let log = open(dir.path(), cfg.clone(), &clock());
            log.append(rec(0, b"0123456789"))?;
            assert!(!dir.path().join(super::segment::SPARE_LOG).exists(), "not before half way");
            log.append(rec(1, b"0123456789"))?;
            // Half way (two records of three): the spare is made. Waiting for it each time makes
            // every rollover take a finished spare, whatever the machine's speed.
            wait_for_spare(dir.path());
            for i in 2..5 {
                log.append(rec(i, b"0123456789"))?;
            }
            // Offsets 3 and 4 are in the segment made from the first spare, half full again.
            wait_for_spare(dir.path());
            for i in 5..8 {
                log.append(rec(i, b"0123456789"))?;
            }
            // Two rollovers, each taking the spare made after the one before, and a third spare
            // made half way through the newest segment (offsets 6 and 7).
            assert_eq!(segment_bases(dir.path())?, vec![0, 3, 6]);
            wait_for_spare(dir.path());
            for i in 0..8 {
                assert!(log.read(Offset(i))?.is_some(), "offset {i}");
            }
        }
        // Reopened: the unused spare is removed, everything is there, appends go on.
        let log = open(dir.path(), cfg, &clock());
        assert!(!dir.path().join(super::segment::SPARE_LOG).exists());
        assert!(!dir.path().join(super::segment::SPARE_IDX).exists());
        assert_eq!(log.committed_end(), Offset(8));
        assert_eq!(log.append(rec(8, b"0123456789"))?, Offset(8));
        Ok(())
    }

    /// A crash right after a rollover promoted the spare, before the new header reached the
    /// disk: the newest segment's `.log` still names the spare's base. Recovery completes it.
    #[test]
    fn recovery_completes_a_promoted_spare_whose_header_was_not_written() -> anyhow::Result<()> {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir()?;
        let cfg = LogConfig { segment_max_bytes: 32 + 3 * 66, ..config(SyncPolicy::Always) };
        {
            let log = open(dir.path(), cfg.clone(), &clock());
            for i in 0..4 {
                log.append(rec(i, b"0123456789"))?;
            }
        }
        assert_eq!(segment_bases(dir.path())?, vec![0, 3]);
        let tail = super::segment::log_path(dir.path(), Offset(3));
        let spare_header =
            super::format::encode_file_header(super::format::LOG_MAGIC, super::segment::SPARE_BASE);
        std::fs::OpenOptions::new().write(true).open(&tail)?.write_all_at(&spare_header, 0)?;
        let log = open(dir.path(), cfg, &clock());
        assert_eq!(log.committed_end(), Offset(4));
        assert_eq!(
            log.read(Offset(3))?.map(|r| r.payload),
            Some(Bytes::from_static(b"0123456789"))
        );
        Ok(())
    }

    #[test]
    fn rolls_by_age() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        let cfg =
            LogConfig { segment_max_age: Duration::from_secs(60), ..config(SyncPolicy::Never) };
        let log = open(dir.path(), cfg, &clock);
        log.append(rec(0, b"a"))?;
        clock.advance(Duration::from_secs(59));
        log.append(rec(1, b"b"))?;
        assert_eq!(log.stats().segments, 1);
        clock.advance(Duration::from_secs(1));
        log.append(rec(2, b"c"))?;
        assert_eq!(log.stats().segments, 2);
        assert_eq!(segment_bases(dir.path())?, vec![0, 2]);
        Ok(())
    }

    #[test]
    fn disk_full_leaves_no_half_record_and_the_log_stays_usable() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        for budget in [0u64, 10, 56 + 3, 56 + 100, 56 + 100 + 30] {
            let path = dir.path().join(format!("b{budget}"));
            let log = open(&path, config(SyncPolicy::Never), &clock);
            log.append(rec(0, b"first"))?;
            lock(&log.inner.writer).fail_after = Some(budget);
            let err = log.append(rec(1, &[5u8; 100])).err();
            assert!(err.as_ref().is_some_and(LogError::is_disk_full), "{err:?}");
            assert_eq!(log.committed_end(), Offset(1));
            assert_eq!(log.read(Offset(1))?, None);
            assert_eq!(log.append(rec(2, b"third"))?, Offset(1));
            drop(log);
            let log = open(&path, config(SyncPolicy::Never), &clock);
            assert_eq!(log.committed_end(), Offset(2));
            assert_eq!(log.read(Offset(1))?.map(|r| r.payload), Some(Bytes::from_static(b"third")));
        }
        Ok(())
    }

    pub(crate) fn segment_bases(dir: &Path) -> anyhow::Result<Vec<u64>> {
        let mut bases = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if let Some(o) = super::segment::parse_log_name(&name) {
                bases.push(o.0);
            }
        }
        bases.sort_unstable();
        Ok(bases)
    }
}
