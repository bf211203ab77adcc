//! Retention and the free-disk floor: whole segments older than a stream's `retentionHours` or
//! beyond its `retentionBytes` are deleted, and when free space falls below
//! `storage.min_free_bytes` the oldest segment of the stream holding the most bytes goes first,
//! so recording goes on on a full disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{VideoStream, VideoStreams};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::events::EventDetails;
use crate::log::{DeletedRange, Retention};
use crate::metrics::Metrics;
use crate::name::StreamName;

impl VideoStream {
    fn retention(&self) -> Retention {
        let row = self.row();
        Retention {
            max_age: (row.retention_hours > 0)
                .then(|| Duration::from_secs(u64::from(row.retention_hours) * 3600)),
            max_bytes: row.retention_bytes,
        }
    }

    /// Deletes whole segments past the stream's retention; returns what went.
    pub fn enforce_retention(&self, now: Timestamp) -> Result<Vec<DeletedRange>> {
        self.delete_by(&self.retention(), now, "retention")
    }

    /// Deletes the stream's oldest log segment (never its newest), for the free-disk floor;
    /// `reason` goes into the `RetentionDeleted` event.
    fn delete_oldest_segment(
        &self,
        now: Timestamp,
        reason: &'static str,
    ) -> Result<Vec<DeletedRange>> {
        let stats = self.fragments.stats();
        if stats.segments < 2 {
            return Ok(Vec::new());
        }
        let r = Retention { max_age: None, max_bytes: Some(stats.bytes.saturating_sub(1)) };
        self.delete_by(&r, now, reason)
    }

    fn delete_by(
        &self,
        r: &Retention,
        now: Timestamp,
        reason: &'static str,
    ) -> Result<Vec<DeletedRange>> {
        let deleted = self.fragments.enforce_retention(r, now)?;
        if !deleted.is_empty() {
            let label = Metrics::stream(self.name.as_str());
            for d in &deleted {
                self.metrics.retention_deleted_fragments.get_or_create(&label).inc_by(d.records);
                self.metrics.retention_deleted_bytes.get_or_create(&label).inc_by(d.bytes);
                self.events.emit(
                    self.name.as_str(),
                    EventDetails::RetentionDeleted {
                        first_fragment_number: d.first.offset.0.to_string(),
                        last_fragment_number: d.last.offset.0.to_string(),
                        fragments: d.records,
                        bytes: d.bytes,
                        first_producer_timestamp: d.first.time,
                        last_producer_timestamp: d.last.time,
                        reason,
                    },
                );
            }
        }
        self.update_stored_gauges();
        Ok(deleted)
    }
}

impl VideoStreams {
    /// One retention pass over every stream.
    pub fn enforce_retention(&self) -> Vec<(StreamName, DeletedRange)> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for s in self.all() {
            match s.enforce_retention(now) {
                Ok(deleted) => out.extend(deleted.into_iter().map(|d| (s.name.clone(), d))),
                Err(e) => tracing::error!(stream = %s.name, error = %e, "retention pass failed"),
            }
        }
        out
    }

    /// One object-tier pass over every stream's fragments (`crate::log::tier`): uploads due
    /// sealed segments, evicts what no longer stays local.
    pub fn tier_pass(&self, policy: &crate::log::tier::TierPolicy) -> crate::log::tier::TierReport {
        let now = self.clock.now();
        let mut total = crate::log::tier::TierReport::default();
        let mut policy = policy.clone();
        for s in self.all() {
            match s.fragments.tier_pass(&policy, now) {
                Ok(r) => {
                    // The bucket failed: the other logs only count what waits, this pass.
                    if r.error.is_some() {
                        policy.uploads = false;
                    }
                    total.add(r)
                }
                Err(e) => tracing::error!(stream = %s.name, error = %e, "tier pass failed"),
            }
        }
        total
    }

    /// Replaces how free disk space is measured (tests simulate a filling disk).
    pub fn set_disk_space(&self, probe: Arc<dyn DiskSpace>) {
        *self.disk.write().unwrap_or_else(|p| p.into_inner()) = probe;
    }

    /// The free-disk floor: while the data directory's filesystem has less than
    /// `storage.min_free_bytes` available, deletes the oldest log segment across all video
    /// streams (by the arrival of its first fragment), one at a time, ahead of retention. A
    /// stream's newest segment is never deleted. Returns what went; logs a warning for each.
    pub fn enforce_disk_floor(&self) -> Vec<(StreamName, DeletedRange)> {
        let floor = self.min_free_bytes;
        if floor == 0 {
            return Vec::new();
        }
        let probe = self.disk.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = Vec::new();
        // Bounded: each round deletes one segment or stops.
        for _ in 0..100_000 {
            let free = match probe.available_bytes() {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "cannot measure free disk space");
                    break;
                }
            };
            if free >= floor {
                break;
            }
            // With the object tier, data already in the bucket leaves local disk first: nothing
            // is lost.
            let evictable = self
                .all()
                .into_iter()
                .filter_map(|s| s.fragments.oldest_evictable().map(|t| (t, s)))
                .min_by_key(|(t, _)| *t);
            if let Some((_, s)) = evictable {
                match s.fragments.evict_oldest() {
                    Ok(bytes) if bytes > 0 => {
                        tracing::warn!(stream = %s.name, bytes, free, floor, "free disk space below the floor: evicted uploaded video from local disk (it stays in the bucket)");
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(stream = %s.name, error = %e, "free-disk eviction failed")
                    }
                }
            }
            // Segments whose data is only in the bucket free no local disk: they are not deleted.
            let oldest = self
                .all()
                .into_iter()
                .filter(|s| !s.fragments.oldest_is_remote())
                .filter_map(|s| {
                    let st = s.fragments.stats();
                    (st.segments >= 2).then(|| st.first.map(|e| (e.arrival, s.clone()))).flatten()
                })
                .min_by_key(|(arrival, _)| *arrival);
            let Some((_, stream)) = oldest else {
                // Every stream is down to one segment (large segments on a small disk). Seal the
                // active segment of the stream holding the most: a later pass may delete it, once
                // newer media sits in the segment after it.
                let biggest = self
                    .all()
                    .into_iter()
                    .filter(|s| s.fragments.stats().records > 0)
                    .max_by_key(|s| s.fragments.stats().bytes);
                match biggest.map(|s| (s.fragments.seal_active(), s)) {
                    Some((Ok(true), s)) => {
                        tracing::warn!(stream = %s.name, free, floor, "free disk space below the floor: sealed the stream's segment so it can be deleted");
                    }
                    Some((Err(e), s)) => {
                        tracing::error!(stream = %s.name, error = %e, "could not seal a segment for the free-disk floor");
                    }
                    _ => self.floor_unmet(free, floor),
                }
                break;
            };
            let not_uploaded = stream.fragments.oldest_only_local();
            let reason =
                if not_uploaded { "free_disk_floor_not_uploaded" } else { "free_disk_floor" };
            match stream.delete_oldest_segment(self.clock.now(), reason) {
                Ok(deleted) if !deleted.is_empty() => {
                    for d in deleted {
                        if not_uploaded {
                            tracing::error!(stream = %stream.name, fragments = d.records, "the free-disk floor deleted video that was NOT yet uploaded to the bucket (is the bucket down?)");
                            stream.metrics.tier_deleted_not_uploaded.inc_by(d.records);
                        }
                        tracing::warn!(
                            stream = %stream.name,
                            fragments = d.records,
                            bytes = d.bytes,
                            free,
                            floor,
                            "free disk space below the floor: deleted the oldest video"
                        );
                        out.push((stream.name.clone(), d));
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(stream = %stream.name, error = %e, "free-disk deletion failed");
                    break;
                }
            }
        }
        out
    }
}

/// The data directory's disk, as `/healthz` reports it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskStatus {
    /// Bytes available to Sluice (`None` if they cannot be measured).
    pub available_bytes: Option<u64>,
    /// The free-disk floor (`storage.min_free_bytes`); 0 when off.
    pub min_free_bytes: u64,
    pub below_floor: bool,
}

impl VideoStreams {
    /// Free space against the floor. Measures the filesystem: a blocking call.
    pub fn disk_status(&self) -> DiskStatus {
        let probe = self.disk.read().unwrap_or_else(|p| p.into_inner()).clone();
        let available_bytes = probe.available_bytes().ok();
        DiskStatus {
            available_bytes,
            min_free_bytes: self.min_free_bytes,
            below_floor: self.min_free_bytes > 0
                && available_bytes.is_some_and(|a| a < self.min_free_bytes),
        }
    }

    /// Says, at most once a minute, that the floor is unmet and nothing can be deleted.
    fn floor_unmet(&self, free: u64, floor: u64) {
        let mut last = self.floor_warned.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(60)) {
            *last = Some(std::time::Instant::now());
            tracing::warn!(
                free,
                floor,
                "free disk space is below the floor and no video can be deleted"
            );
        }
    }
}

/// Bytes available to Sluice on the filesystem holding its data.
pub trait DiskSpace: Send + Sync {
    fn available_bytes(&self) -> std::io::Result<u64>;
}

/// The real measure: `statvfs(2)` of the data directory (blocks available to unprivileged users).
pub struct FilesystemSpace(pub PathBuf);

impl DiskSpace for FilesystemSpace {
    fn available_bytes(&self) -> std::io::Result<u64> {
        let s = rustix::fs::statvfs(&self.0).map_err(std::io::Error::from)?;
        Ok(s.f_bavail.saturating_mul(s.f_frsize))
    }
}
