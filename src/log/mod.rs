//! The storage engine: one [`Log`] is one directory holding one append-only sequence of records,
//! addressed by a dense [`Offset`] (0, 1, 2, … never reused, kept across restarts and retention).
//! Video streams store one fragment per record, data-stream shards one Kinesis record per record;
//! the engine only sees opaque payloads plus two timestamps and 24 bytes of metadata.
//!
//! # Layout
//!
//! - [`format`]: the byte layout of segment files (pure, no I/O).
//! - [`segment`]: one segment's two files, positioned reads and the on-disk index search.
//! - [`buf`]: recycled read buffers, so a record read does not zero-fill memory it overwrites.
//! - [`write`]: `append` / `append_batch`, segment rollover, recovery from a failed write.
//! - [`read`]: `entry`, `entries`, `entries_rev`, `lower_bound`, `read`, `stats`.
//! - [`commit`]: durability: group commit (`wait_durable`), the background syncer, `sync`.
//! - [`recovery`]: `open`: scanning the directory, verifying the tail, rebuilding indexes.
//! - [`retention`]: deleting whole segments by age and by bytes.
//! - [`tier`]: sealed segments uploaded to a bucket, evicted locally, read back by range.
//!
//! # Concurrency
//!
//! Two locks, always taken in this order: `writer` (serialises appends, rollover and retention's
//! changes to the active segment; held across `write(2)`) and then `state` (the in-memory segment
//! list and the written / committed / durable ends; held only for in-memory work, never across
//! I/O: rollover and retention create and delete files before and after taking it).
//! Readers only take `state`, clone the `Arc`s of the segment files they need, and do their
//! preads after releasing it. Visibility is the committed end: a reader never sees a record at
//! or beyond it. The committed end is published on a `tokio::sync::watch` channel
//! ([`Log::subscribe`]) so live readers wake without polling.
//!
//! Files are read and written with positioned I/O (`std::os::unix::fs::FileExt`), so this module
//! is Unix-only.

mod buf;
mod commit;
mod format;
mod read;
mod recovery;
mod retention;
mod segment;
pub mod tier;
mod write;

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::clock::{SharedClock, Timestamp};

pub use retention::{DeletedRange, Retention};

use format::Slot;
use segment::Segment;

/// Length of the fixed user metadata stored with every record, in the index.
pub const META_LEN: usize = 24;
/// Small fixed user metadata, stored in the index so listing never reads payloads.
pub type RecordMeta = [u8; META_LEN];

/// Position of a record in its log: dense, starting at 0, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub u64);

impl Offset {
    /// The offset after this one.
    pub const fn next(self) -> Offset {
        Offset(self.0.saturating_add(1))
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// When appended records are made durable (fdatasync) and, through that, when they become
/// visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Group commit: a record is visible and `wait_durable` resolves once an fdatasync that
    /// started after the record was written has completed. One fdatasync covers every record
    /// written before it started.
    #[default]
    Always,
    /// Records are visible as soon as they are written; a background fdatasync runs at most
    /// this often while there are unsynced records.
    Interval(Duration),
    /// Records are visible as soon as they are written; only [`Log::sync`] (and rollover)
    /// fsyncs. For tests, benchmarks and data that can be lost.
    Never,
}

/// Per-log configuration.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Roll to a new segment when appending would make the active `.log` file larger than
    /// this (bytes). A single record larger than this gets a segment of its own. Default 256 MiB.
    pub segment_max_bytes: u64,
    /// Roll to a new segment when the active one's first append is this old by the log's
    /// clock. After a restart the age is measured from the segment's first record's arrival.
    /// Default 1 hour.
    pub segment_max_age: Duration,
    /// Durability policy. Default [`SyncPolicy::Always`].
    pub sync: SyncPolicy,
    /// Called, with the log's directory, before every fdatasync round, rollover and
    /// [`Log::sync`]: fault injection (a stalled or slow disk) for tests. `None` otherwise.
    pub before_sync: Option<SyncHook>,
    /// Make the next segment's files ahead of need, so a rollover renames them instead of
    /// creating and syncing two files on the append path. Default on; off only to measure what
    /// it saves (`benches/rollover.rs`).
    pub spare_segment: bool,
    /// The bucket sealed segments are tiered to (`tier`), if any.
    pub tier: Option<tier::TierTarget>,
}

/// See [`LogConfig::before_sync`].
#[derive(Clone)]
pub struct SyncHook(pub Arc<dyn Fn(&Path) + Send + Sync>);

impl fmt::Debug for SyncHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SyncHook")
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_max_bytes: 256 * 1024 * 1024,
            segment_max_age: Duration::from_secs(3600),
            sync: SyncPolicy::Always,
            before_sync: None,
            spare_segment: true,
            tier: None,
        }
    }
}

/// A record to append.
#[derive(Debug, Clone)]
pub struct NewRecord {
    /// The log's primary timeline; must not be lower than the previous record's.
    pub time: Timestamp,
    /// Server arrival time; clamped up to the previous record's if lower.
    pub arrival: Timestamp,
    pub meta: RecordMeta,
    pub payload: Bytes,
}

/// What the index knows about one record (everything but the payload).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IndexEntry {
    pub offset: Offset,
    pub time: Timestamp,
    pub arrival: Timestamp,
    /// Payload length in bytes.
    pub len: u32,
    pub meta: RecordMeta,
}

/// A record read back: its index entry and its payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub entry: IndexEntry,
    pub payload: Bytes,
}

/// Which of a record's two (non-decreasing) timestamps a time search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeKey {
    Time,
    Arrival,
}

impl TimeKey {
    /// The timestamp of `e` this key selects.
    pub fn of(self, e: &IndexEntry) -> Timestamp {
        match self {
            TimeKey::Time => e.time,
            TimeKey::Arrival => e.arrival,
        }
    }
}

/// A snapshot of the log's extent, for metrics and describe calls.
#[derive(Debug, Clone, PartialEq)]
pub struct LogStats {
    /// First offset not deleted by retention.
    pub start: Offset,
    /// Committed end (exclusive): the next offset readers will see.
    pub end: Offset,
    /// Visible records (`end - start`).
    pub records: u64,
    /// Bytes on disk of all segment files (including records written but not yet committed).
    pub bytes: u64,
    /// Number of segments (including the active one).
    pub segments: usize,
    pub first: Option<IndexEntry>,
    pub last: Option<IndexEntry>,
}

/// Errors of the storage engine. Each carries enough context to find the bad bytes.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An operating-system I/O error (a full disk is [`io::ErrorKind::StorageFull`]; see
    /// [`LogError::is_disk_full`]).
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Records must be appended in non-decreasing `time` order.
    #[error("record time {got:?} is before the last record's time {last:?}")]
    TimeWentBackwards { last: Timestamp, got: Timestamp },
    /// A payload longer than the frame format allows (u32 length).
    #[error("payload of {len} bytes is too large for one record")]
    PayloadTooLarge { len: usize },
    /// Bytes on disk do not match their checksum or their index.
    #[error("corrupt {} at position {position}{}: {reason}", path.display(),
        offset.map(|o| format!(" (offset {o})")).unwrap_or_default())]
    Corrupt { path: PathBuf, offset: Option<Offset>, position: u64, reason: String },
    /// `wait_durable` was asked about an offset that has not been appended.
    #[error("offset {offset} has not been written (log end is {end})")]
    NotWritten { offset: Offset, end: Offset },
    /// An fdatasync failed: what the kernel still holds is unknown, so the log refuses further
    /// appends and durability waits until it is reopened (which re-verifies the tail).
    #[error("log {} failed and must be reopened: {reason}", dir.display())]
    Failed { dir: PathBuf, reason: String },
}

impl LogError {
    /// True if the error is the disk being full (ENOSPC / EDQUOT).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, LogError::Io { source, .. }
            if matches!(source.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded))
    }
}

/// One append-only log in one directory. `Send + Sync`; share it as `Arc<Log>`.
pub struct Log {
    inner: Arc<Inner>,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

/// Everything a `Log` owns; shared with the background syncer thread (see [`commit`]).
struct Inner {
    dir: PathBuf,
    config: LogConfig,
    clock: SharedClock,
    /// std `Mutex` because it is never held across an `.await`; held for the whole of an append
    /// (including its `write(2)`s) so appends are serialised and offsets are assigned in file
    /// order. Lives as long as the `Log`.
    writer: Mutex<write::Writer>,
    /// std `Mutex` because it is never held across an `.await` and critical sections are short
    /// in-memory updates; taken by readers, the writer (after its write) and the syncer.
    state: Mutex<State>,
    /// The committed end (exclusive). Sent whenever it advances, and (unchanged) when the log
    /// fails, to wake `wait_durable` callers.
    committed_tx: watch::Sender<Offset>,
    commit: commit::Committer,
    /// The next segment's files, created ahead of need so a rollover only renames them
    /// (`write::Inner::ensure_spare`). std `Mutex`: taken and filled, never held across I/O.
    spare: Mutex<Option<segment::SegmentFiles>>,
    /// A spare is being created (on a thread of its own).
    spare_pending: std::sync::atomic::AtomicBool,
}

/// The in-memory picture of the directory, guarded by `Inner::state`.
#[derive(Debug)]
struct State {
    /// Sealed segments, oldest first. Every record in them is committed.
    sealed: Vec<Segment>,
    /// The segment appends go to (possibly empty; it always exists so the next offset survives
    /// restarts and retention).
    active: Segment,
    /// Index of the active segment, kept in memory; may extend past the committed end.
    active_slots: Vec<Slot>,
    /// Next offset to be written.
    written: Offset,
    /// Readers see offsets below this.
    committed: Offset,
    /// Offsets below this are known to be on stable storage.
    durable: Offset,
}

impl State {
    /// First offset still stored.
    fn start(&self) -> Offset {
        self.sealed.first().map_or(self.active.base(), Segment::base)
    }

    fn bytes(&self) -> u64 {
        self.sealed.iter().map(Segment::bytes).sum::<u64>() + self.active.bytes()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code panics while holding these locks; if one ever did, the data is still consistent
    // (every update is a few assignments), so recover the guard rather than propagate a panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Log {
    /// Opens the log in `dir`, creating the directory if missing, and recovers it: sealed
    /// segments are checked against their indexes, the last segment is verified record by
    /// record and a torn tail is truncated. See [`recovery`].
    pub fn open(dir: &Path, config: LogConfig, clock: SharedClock) -> Result<Log, LogError> {
        let state = recovery::recover(dir, config.tier.as_ref())?;
        let (committed_tx, _) = watch::channel(state.committed);
        let writer = write::Writer::new(&state);
        Ok(Log {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                config,
                clock,
                writer: Mutex::new(writer),
                state: Mutex::new(state),
                committed_tx,
                commit: commit::Committer::default(),
                spare: Mutex::new(None),
                spare_pending: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// The directory this log lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// A receiver of the committed end (exclusive); it changes whenever new records become
    /// visible.
    pub fn subscribe(&self) -> watch::Receiver<Offset> {
        self.inner.committed_tx.subscribe()
    }

    /// Wakes every [`Log::subscribe`] receiver without a new record: for a change its owner's
    /// readers watch for too (a data-stream shard closed by resharding).
    pub fn wake(&self) {
        self.inner.committed_tx.send_modify(|_| {});
    }

    /// The committed end (exclusive): readers see offsets below it.
    pub fn committed_end(&self) -> Offset {
        lock(&self.inner.state).committed
    }

    /// The first offset not deleted by retention (equal to `committed_end` when empty).
    pub fn start(&self) -> Offset {
        lock(&self.inner.state).start()
    }

    /// Deletes the log's directory and everything in it (stream deletion). Readers holding
    /// segment files finish their reads.
    pub fn destroy(self) -> Result<(), LogError> {
        let dir = self.inner.dir.clone();
        // A spare being made would race with the removal.
        for _ in 0..1000 {
            if !self.inner.spare_pending.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Objects of tiered segments go with the stream.
        self.delete_remote();
        drop(self);
        std::fs::remove_dir_all(&dir).map_err(segment::io_err("remove directory", &dir))
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // Wakes an `Interval` syncer sleeping on its timer so it flushes and exits now.
        self.inner.commit.close();
    }
}

/// The half-open range of offsets `first..first + n`.
fn offset_range(first: Offset, n: u64) -> Range<Offset> {
    first..Offset(first.0 + n)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers shared by the unit tests of this module's files.

    use super::*;
    use crate::clock::ManualClock;

    pub const T0: i64 = 1_700_000_000_000_000;

    pub fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(Timestamp::from_micros(T0)))
    }

    pub fn config(sync: SyncPolicy) -> LogConfig {
        LogConfig { sync, ..LogConfig::default() }
    }

    /// A record at `T0 + secs` seconds (both clocks) with `payload` and meta tagged by `secs`.
    pub fn rec(secs: i64, payload: &[u8]) -> NewRecord {
        let t = Timestamp::from_micros(T0 + secs * 1_000_000);
        let mut meta = [0u8; META_LEN];
        meta[..8].copy_from_slice(&secs.to_le_bytes());
        NewRecord { time: t, arrival: t, meta, payload: Bytes::copy_from_slice(payload) }
    }

    pub fn open(dir: &Path, config: LogConfig, clock: &Arc<ManualClock>) -> Log {
        match Log::open(dir, config, clock.clone()) {
            Ok(log) => log,
            Err(e) => panic!("open {}: {e}", dir.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn log_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Log>();
        check::<Arc<Log>>();
    }

    #[test]
    fn append_read_roundtrip() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let clock = clock();
        let log = open(dir.path(), config(SyncPolicy::Never), &clock);
        assert_eq!(log.committed_end(), Offset(0));
        for i in 0..10 {
            assert_eq!(log.append(rec(i, format!("payload {i}").as_bytes()))?, Offset(i as u64));
        }
        assert_eq!(log.committed_end(), Offset(10));
        for i in 0..10 {
            let r = log.read(Offset(i))?.ok_or_else(|| anyhow::anyhow!("missing {i}"))?;
            assert_eq!(r.payload, format!("payload {i}").as_bytes());
            assert_eq!(r.entry.offset, Offset(i));
            assert_eq!(r.entry.meta[..8], (i as i64).to_le_bytes());
            assert_eq!(log.entry(Offset(i))?, Some(r.entry));
        }
        assert_eq!(log.read(Offset(10))?, None);
        let s = log.stats();
        assert_eq!((s.start, s.end, s.records), (Offset(0), Offset(10), 10));
        assert_eq!(s.first.map(|e| e.offset), Some(Offset(0)));
        assert_eq!(s.last.map(|e| e.offset), Some(Offset(9)));
        Ok(())
    }

    #[test]
    fn destroy_removes_the_directory() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("stream");
        let log = open(&path, config(SyncPolicy::Never), &clock());
        log.append(rec(0, b"x"))?;
        log.destroy()?;
        assert!(!path.exists());
        Ok(())
    }
}
