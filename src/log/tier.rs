//! The object tier: sealed segments copied to a bucket, and their `.log` files then evicted from
//! local disk, read back by byte range. The log engine sees the bucket through [`Tier`] (a few
//! synchronous calls, implemented over `object_store` by `crate::tiering`), so this module stays
//! free of any client.
//!
//! - **Upload** ([`Log::tier_pass`]): a sealed segment whose newest record is `upload_after` old
//!   has its `.log` and `.idx` put under deterministic keys (`<log key>/<base:020>.log|.idx`, so
//!   a retried upload overwrites itself), then a local marker `<base:020>.remote` (JSON: the
//!   key, the `.log` length) is written and the directory fsynced. Only then is the segment
//!   eligible for eviction.
//! - **Eviction**: an uploaded segment older than the local window (`local_max_age`), or the
//!   oldest ones while the log's local bytes exceed `local_max_bytes`, swaps its `.log` for the
//!   remote object in the segment list (under the state lock), then the file is unlinked.
//!   Readers that cloned the old files finish from the open descriptor. The `.idx` stays local,
//!   so lookups by offset and time stay O(log n) preads; only record bodies go to the bucket,
//!   one ranged GET each, verified by the same CRCs.
//! - **Recovery**: an `.idx` with a marker and no `.log` is a remote segment (trusted as a
//!   sealed one: its index must end where the marker says the `.log` ends). Without a configured
//!   tier such a segment still opens; reading it says the tier is not configured.
//! - **Retention** deletes remote segments like local ones, and their objects.

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::segment::{self, LogBody, Segment, SegmentFiles, io_err};
use super::{Log, LogError, Offset, lock};
use crate::clock::Timestamp;

/// A bucket, as the log engine needs it. Calls block the calling thread (the log's API is
/// synchronous; async callers reach it through the blocking pool).
pub trait Tier: Send + Sync + fmt::Debug {
    /// Puts the file at `path` as object `key` (replacing it).
    fn upload(&self, path: &Path, key: &str) -> io::Result<()>;
    /// Puts `data` as object `key`.
    fn put(&self, key: &str, data: Vec<u8>) -> io::Result<()>;
    /// Bytes `range` of object `key` (exactly that many, or an error).
    fn read_range(&self, key: &str, range: Range<u64>) -> io::Result<bytes::Bytes>;
    /// Deletes object `key` (a missing object is not an error).
    fn delete(&self, key: &str) -> io::Result<()>;
    /// The size of object `key` (verification after an upload).
    fn size(&self, key: &str) -> io::Result<u64>;
}

/// Where a log's segments go in the bucket: the tier, and this log's key prefix.
#[derive(Clone)]
pub struct TierTarget {
    pub tier: Arc<dyn Tier>,
    /// The data directory: a log's keys are its directory relative to it, under `prefix`.
    pub root: PathBuf,
    pub prefix: String,
}

impl fmt::Debug for TierTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TierTarget").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl TierTarget {
    /// The key of `file` (a file name) of the log in `dir`.
    pub fn key(&self, dir: &Path, file: &str) -> String {
        let rel = dir.strip_prefix(&self.root).unwrap_or(dir);
        let rel = rel.to_string_lossy();
        let rel = rel.trim_start_matches('/');
        if self.prefix.is_empty() {
            format!("{rel}/{file}")
        } else {
            format!("{}/{rel}/{file}", self.prefix.trim_end_matches('/'))
        }
    }
}

/// Reading a remote segment of a log opened without a tier.
#[derive(Debug)]
pub struct NoTier;

impl NoTier {
    fn refuse() -> io::Error {
        io::Error::other("the segment is in the bucket, but [tiering] is not configured")
    }
}

impl Tier for NoTier {
    fn upload(&self, _: &Path, _: &str) -> io::Result<()> {
        Err(Self::refuse())
    }
    fn put(&self, _: &str, _: Vec<u8>) -> io::Result<()> {
        Err(Self::refuse())
    }
    fn read_range(&self, _: &str, _: Range<u64>) -> io::Result<bytes::Bytes> {
        Err(Self::refuse())
    }
    fn delete(&self, _: &str) -> io::Result<()> {
        Err(Self::refuse())
    }
    fn size(&self, _: &str) -> io::Result<u64> {
        Err(Self::refuse())
    }
}

/// The local marker of an uploaded segment (`<base:020>.remote`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The `.log` object's key (the `.idx` object's is the same with `.idx`).
    pub key: String,
    pub log_len: u64,
    pub records: u64,
}

pub(super) fn marker_path(dir: &Path, base: Offset) -> PathBuf {
    dir.join(format!("{:020}.remote", base.0))
}

pub(super) fn read_marker(dir: &Path, base: Offset) -> Result<Option<Marker>, LogError> {
    let path = marker_path(dir, base);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| LogError::Corrupt {
            path,
            offset: Some(base),
            position: 0,
            reason: format!("tier marker: {e}"),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", &path)(e)),
    }
}

/// What may stay on local disk, and when a sealed segment is uploaded.
#[derive(Debug, Clone)]
pub struct TierPolicy {
    /// Upload at all (off for the rest of a pass once the bucket failed: what waits is counted).
    pub uploads: bool,
    /// Upload a sealed segment once its newest record is this old.
    pub upload_after: Duration,
    /// Evict an uploaded segment's `.log` once its newest record is this old.
    pub local_max_age: Option<Duration>,
    /// Evict uploaded segments, oldest first, while the log's local bytes exceed this.
    pub local_max_bytes: Option<u64>,
    /// After an upload, check that the objects in the bucket have the files' sizes.
    pub verify: bool,
    /// Segments uploaded at once.
    pub concurrency: usize,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TierReport {
    pub uploaded: u64,
    pub uploaded_bytes: u64,
    pub evicted: u64,
    pub evicted_bytes: u64,
    /// Sealed segments not uploaded yet, and the age of the oldest one's newest record.
    pub pending: u64,
    pub oldest_pending: Option<Duration>,
    /// The first upload error of the pass (the segment is tried again on the next pass).
    pub error: Option<String>,
}

impl TierReport {
    /// Adds another log's pass to this one.
    pub fn add(&mut self, o: TierReport) {
        self.uploaded += o.uploaded;
        self.uploaded_bytes += o.uploaded_bytes;
        self.evicted += o.evicted;
        self.evicted_bytes += o.evicted_bytes;
        self.pending += o.pending;
        self.oldest_pending = self.oldest_pending.max(o.oldest_pending);
        if self.error.is_none() {
            self.error = o.error;
        }
    }
}

impl Log {
    /// Uploads due sealed segments and evicts what the policy no longer keeps locally. Does
    /// nothing without a tier. Runs on the caller's thread (blocking).
    pub fn tier_pass(&self, policy: &TierPolicy, now: Timestamp) -> Result<TierReport, LogError> {
        let mut report = TierReport::default();
        let Some(target) = self.inner.config.tier.clone() else { return Ok(report) };
        let dir = self.inner.dir.clone();
        let sealed: Vec<Segment> = lock(&self.inner.state).sealed.clone();
        let age = |seg: &Segment| {
            let last = seg.last.map_or(now, |e| e.arrival);
            Duration::from_micros(now.micros_since(last).max(0) as u64)
        };
        let mut due = Vec::new();
        for seg in &sealed {
            let f = &seg.files;
            if f.is_remote() || f.uploaded() {
                continue;
            }
            let waited = age(seg);
            if !policy.uploads || waited < policy.upload_after {
                report.pending += 1;
                report.oldest_pending = report.oldest_pending.max(Some(waited));
            } else {
                due.push(seg);
            }
        }
        // Several segments go up at once; markers are written as each group finishes.
        for group in due.chunks(policy.concurrency.max(1)) {
            if report.error.is_some() {
                for seg in group {
                    report.pending += 1;
                    report.oldest_pending = report.oldest_pending.max(Some(age(seg)));
                }
                continue;
            }
            let results: Vec<io::Result<Marker>> = std::thread::scope(|scope| {
                let handles: Vec<_> = group
                    .iter()
                    .map(|seg| scope.spawn(|| upload_one(&target, &dir, seg, policy.verify)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| Err(io::Error::other("upload thread"))))
                    .collect()
            });
            for (seg, result) in group.iter().zip(results) {
                let f = &seg.files;
                let marker = match result {
                    Ok(m) => m,
                    Err(e) => {
                        if report.error.is_none() {
                            report.error = Some(e.to_string());
                        }
                        report.pending += 1;
                        report.oldest_pending = report.oldest_pending.max(Some(age(seg)));
                        continue;
                    }
                };
                let path = marker_path(&dir, f.base);
                let json = serde_json::to_vec(&marker).map_err(|e| LogError::Failed {
                    dir: dir.clone(),
                    reason: format!("tier marker: {e}"),
                })?;
                write_synced(&path, &json)?;
                segment::sync_dir(&dir)?;
                f.set_uploaded(marker);
                report.uploaded += 1;
                report.uploaded_bytes += seg.log_bytes;
            }
        }
        self.evict(policy, now, &target, &mut report)?;
        Ok(report)
    }

    fn evict(
        &self,
        policy: &TierPolicy,
        now: Timestamp,
        target: &TierTarget,
        report: &mut TierReport,
    ) -> Result<(), LogError> {
        let inner = &self.inner;
        let victims: Vec<Segment> = {
            let st = lock(&inner.state);
            let mut local: u64 =
                st.sealed.iter().filter(|s| !s.files.is_remote()).map(Segment::bytes).sum::<u64>()
                    + st.active.bytes();
            let cutoff = policy.local_max_age.map(|a| now.saturating_sub(a));
            let mut out = Vec::new();
            for seg in st.sealed.iter().filter(|s| !s.files.is_remote()) {
                let old = cutoff.is_some_and(|c| seg.last.is_some_and(|e| e.arrival < c));
                let over = policy.local_max_bytes.is_some_and(|m| local > m);
                if !(old || over) {
                    break;
                }
                if !seg.files.uploaded() {
                    // Not in the bucket yet: it stays (and so do newer ones, to evict in order).
                    break;
                }
                local -= seg.log_bytes;
                out.push(seg.clone());
            }
            out
        };
        for seg in victims {
            if self.evict_one(target, &seg)? {
                report.evicted += 1;
                report.evicted_bytes += seg.log_bytes;
            }
        }
        if report.evicted > 0 {
            segment::sync_dir(&inner.dir)?;
        }
        Ok(())
    }

    /// Swaps `seg`'s `.log` for its object and unlinks the file; `false` if it is gone or not
    /// uploaded. The caller fsyncs the directory.
    fn evict_one(&self, target: &TierTarget, seg: &Segment) -> Result<bool, LogError> {
        let f = &seg.files;
        let Some(marker) = f.marker() else { return Ok(false) };
        let remote = Arc::new(f.to_remote(target.tier.clone(), marker)?);
        {
            let mut st = lock(&self.inner.state);
            match st.sealed.iter_mut().find(|s| s.base() == seg.base()) {
                Some(s) if !s.files.is_remote() => s.files = remote,
                _ => return Ok(false), // deleted by retention, or evicted, meanwhile
            }
        }
        if let Err(e) = std::fs::remove_file(&f.log_path) {
            tracing::error!(path = %f.log_path.display(), error = %e, "cannot delete an evicted segment file");
            return Ok(false);
        }
        Ok(true)
    }

    /// The first arrival of the oldest sealed segment whose data is both local and uploaded (the
    /// free-disk floor evicts these before it deletes anything).
    pub fn oldest_evictable(&self) -> Option<Timestamp> {
        let st = lock(&self.inner.state);
        let seg = st.sealed.iter().find(|s| !s.files.is_remote() && s.files.uploaded())?;
        seg.first.map(|e| e.arrival)
    }

    /// Evicts the oldest uploaded segment still on local disk: the bytes freed (0 if none).
    pub fn evict_oldest(&self) -> Result<u64, LogError> {
        let Some(target) = self.inner.config.tier.clone() else { return Ok(0) };
        let seg = {
            let st = lock(&self.inner.state);
            st.sealed.iter().find(|s| !s.files.is_remote() && s.files.uploaded()).cloned()
        };
        let Some(seg) = seg else { return Ok(0) };
        if !self.evict_one(&target, &seg)? {
            return Ok(0);
        }
        segment::sync_dir(&self.inner.dir)?;
        Ok(seg.log_bytes)
    }

    /// Deletes the objects of every uploaded segment (the log is being deleted with its stream
    /// or shard; its local files go with the directory). Failures are logged.
    pub fn delete_remote(&self) {
        let tier = self.inner.config.tier.as_ref().map(|t| t.tier.clone());
        let sealed: Vec<Segment> = lock(&self.inner.state).sealed.clone();
        for seg in &sealed {
            forget(&self.inner.dir, &seg.files, tier.as_ref());
        }
    }

    /// Whether the oldest segment's data is only in the bucket (deleting it frees no local disk).
    pub fn oldest_is_remote(&self) -> bool {
        lock(&self.inner.state).sealed.first().is_some_and(|s| s.files.is_remote())
    }

    /// Whether the oldest segment is local and not in the bucket (with a tier configured):
    /// deleting it loses data that exists nowhere else.
    pub fn oldest_only_local(&self) -> bool {
        self.inner.config.tier.is_some()
            && lock(&self.inner.state).sealed.first().is_some_and(|s| !s.files.uploaded())
    }
}

/// Puts one sealed segment's `.log`, `.idx` and manifest, and with `verify` checks the objects'
/// sizes; its marker.
fn upload_one(target: &TierTarget, dir: &Path, seg: &Segment, verify: bool) -> io::Result<Marker> {
    let f = &seg.files;
    let key = target.key(dir, &format!("{:020}.log", f.base.0));
    let idx_key = target.key(dir, &format!("{:020}.idx", f.base.0));
    let marker = Marker { key: key.clone(), log_len: seg.log_bytes, records: seg.count };
    let context = |e: io::Error| io::Error::new(e.kind(), format!("uploading {key}: {e}"));
    target.tier.upload(&f.log_path, &key).map_err(context)?;
    target.tier.upload(&f.idx_path, &idx_key).map_err(context)?;
    let json = serde_json::to_vec(&marker).map_err(io::Error::other)?;
    target.tier.put(&format!("{key}.json"), json).map_err(context)?;
    if verify {
        let idx_len = std::fs::metadata(&f.idx_path)?.len();
        for (k, want) in [(&key, seg.log_bytes), (&idx_key, idx_len)] {
            let got = target.tier.size(k).map_err(context)?;
            if got != want {
                return Err(io::Error::other(format!(
                    "verification: {k} holds {got} bytes, the file {want}"
                )));
            }
        }
    }
    Ok(marker)
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), LogError> {
    use std::io::Write;
    let tmp = path.with_extension("remote.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(data).map_err(io_err("write", &tmp))?;
    f.sync_all().map_err(io_err("fsync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("rename", path))
}

/// Deletes an uploaded segment's objects and its marker (retention, stream deletion); `tier` is
/// the log's. An object that cannot be deleted is logged: its records are gone from the log
/// either way.
pub(super) fn forget(dir: &Path, files: &SegmentFiles, tier: Option<&Arc<dyn Tier>>) {
    if let Some(m) = files.marker() {
        let tier = match &files.log {
            LogBody::Remote(r) => Some(&r.tier),
            LogBody::Local(_) => tier,
        };
        if let Some(tier) = tier {
            let idx_key = m.key.strip_suffix(".log").map(|k| format!("{k}.idx"));
            let keys = [Some(m.key.clone()), idx_key, Some(format!("{}.json", m.key))];
            for key in keys.into_iter().flatten() {
                if let Err(e) = tier.delete(&key) {
                    tracing::warn!(key, error = %e, "cannot delete a tiered segment's object");
                }
            }
        }
        let path = marker_path(dir, files.base);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::error!(path = %path.display(), error = %e, "cannot delete a tier marker");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A bucket in memory.
    #[derive(Debug, Default)]
    struct Memory(Mutex<HashMap<String, Vec<u8>>>);

    impl Tier for Memory {
        fn upload(&self, path: &Path, key: &str) -> io::Result<()> {
            let data = std::fs::read(path)?;
            self.0.lock().unwrap().insert(key.to_owned(), data);
            Ok(())
        }
        fn put(&self, key: &str, data: Vec<u8>) -> io::Result<()> {
            self.0.lock().unwrap().insert(key.to_owned(), data);
            Ok(())
        }
        fn read_range(&self, key: &str, r: Range<u64>) -> io::Result<bytes::Bytes> {
            let m = self.0.lock().unwrap();
            let data = m
                .get(key)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, key.to_owned()))?;
            Ok(bytes::Bytes::copy_from_slice(&data[r.start as usize..r.end as usize]))
        }
        fn delete(&self, key: &str) -> io::Result<()> {
            self.0.lock().unwrap().remove(key);
            Ok(())
        }
        fn size(&self, key: &str) -> io::Result<u64> {
            let m = self.0.lock().unwrap();
            m.get(key)
                .map(|d| d.len() as u64)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }
    }

    fn tiered(root: &Path, tier: &Arc<Memory>) -> LogConfig {
        let target =
            TierTarget { tier: tier.clone(), root: root.to_path_buf(), prefix: "t".into() };
        LogConfig {
            segment_max_bytes: 32 + 3 * 66,
            tier: Some(target),
            ..config(SyncPolicy::Never)
        }
    }

    fn logs_on_disk(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name().to_string_lossy().into_owned();
                name.ends_with(".log") && name != "spare.log"
            })
            .count()
    }

    #[test]
    fn sealed_segments_go_to_the_bucket_and_read_back() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("video/7/fragments");
        let (clock, tier) = (clock(), Arc::new(Memory::default()));
        let log = open(&dir, tiered(tmp.path(), &tier), &clock);
        for i in 0..30 {
            log.append(rec(i, format!("payload-{i:02}").as_bytes()))?;
        }
        assert_eq!(log.stats().segments, 10);
        let now = Timestamp::from_micros(T0 + 100_000_000);
        // Not old enough to upload yet: pending.
        let policy = TierPolicy {
            uploads: true,
            upload_after: Duration::from_secs(1000),
            local_max_age: Some(Duration::ZERO),
            local_max_bytes: None,
            verify: true,
            concurrency: 2,
        };
        let r = log.tier_pass(&policy, now)?;
        assert_eq!((r.uploaded, r.evicted, r.pending), (0, 0, 9));
        let policy = TierPolicy { upload_after: Duration::ZERO, ..policy };
        let r = log.tier_pass(&policy, now)?;
        assert_eq!((r.uploaded, r.evicted, r.pending), (9, 9, 0), "{r:?}");
        assert_eq!(logs_on_disk(&dir), 1, "only the active segment's .log stays");
        assert!(
            tier.0.lock().unwrap().contains_key("t/video/7/fragments/00000000000000000000.log")
        );
        let check = |log: &Log| -> anyhow::Result<()> {
            for i in 0..30u64 {
                let r = log.read(Offset(i))?.expect("record");
                assert_eq!(&r.payload[..], format!("payload-{i:02}").as_bytes());
            }
            assert_eq!(log.entries(Offset(0), Offset(30), 100)?.len(), 30);
            let t = Timestamp::from_micros(T0 + 13_000_000);
            assert_eq!(log.lower_bound(TimeKey::Time, t)?, Offset(13));
            Ok(())
        };
        check(&log)?;
        // A restart knows what is in the bucket.
        drop(log);
        let log = open(&dir, tiered(tmp.path(), &tier), &clock);
        check(&log)?;
        assert_eq!(log.tier_pass(&policy, now)?, TierReport::default(), "nothing left to do");
        // A missing object fails its records only.
        tier.0.lock().unwrap().remove("t/video/7/fragments/00000000000000000003.log");
        assert!(log.read(Offset(4)).is_err());
        assert!(log.read(Offset(2))?.is_some() && log.read(Offset(7))?.is_some());
        // Without a tier, the log opens and says why it cannot read there.
        drop(log);
        let plain = open(
            &dir,
            LogConfig { segment_max_bytes: 32 + 3 * 66, ..config(SyncPolicy::Never) },
            &clock,
        );
        let e = plain.read(Offset(0)).unwrap_err().to_string();
        assert!(e.contains("[tiering] is not configured"), "{e}");
        assert!(plain.read(Offset(29))?.is_some(), "the local segment reads");
        drop(plain);
        // Retention deletes remote segments and their objects.
        let log = open(&dir, tiered(tmp.path(), &tier), &clock);
        let r = Retention { max_age: Some(Duration::from_secs(80)), max_bytes: None };
        let deleted = log.enforce_retention(&r, Timestamp::from_micros(T0 + 100_000_000))?;
        assert_eq!(deleted.iter().map(|d| d.records).sum::<u64>(), 18);
        let keys: Vec<String> = tier.0.lock().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 3 * 3, "three segments left, each .log, .idx and .json: {keys:?}");
        assert!(
            keys.iter().all(|k| ["18.", "21.", "24."].iter().any(|b| k.contains(b))),
            "{keys:?}"
        );
        assert!(!dir.join("00000000000000000000.remote").exists());
        assert_eq!(log.read(Offset(22))?.map(|r| r.payload.len()), Some(10));
        Ok(())
    }

    #[test]
    fn eviction_by_bytes_keeps_the_newest_and_waits_for_uploads() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("d");
        let (clock, tier) = (clock(), Arc::new(Memory::default()));
        let log = open(&dir, tiered(tmp.path(), &tier), &clock);
        for i in 0..30 {
            log.append(rec(i, b"0123456789"))?;
        }
        let now = Timestamp::from_micros(T0 + 100_000_000);
        // Ten segments of a 230-byte .log and a 224-byte .idx; indexes stay local: six .log
        // files must go to get under the limit.
        let (log_bytes, idx_bytes) = (32 + 3 * 66, 32 + 3 * 64);
        let limit = 10 * (log_bytes + idx_bytes) - 6 * log_bytes;
        let policy = TierPolicy {
            uploads: true,
            upload_after: Duration::ZERO,
            local_max_age: None,
            local_max_bytes: Some(limit),
            verify: false,
            concurrency: 3,
        };
        let r = log.tier_pass(&policy, now)?;
        assert_eq!((r.uploaded, r.evicted), (9, 6), "{r:?}");
        assert_eq!(logs_on_disk(&dir), 4);
        Ok(())
    }
}
