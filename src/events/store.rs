//! Producers' metadata storage: each event is a record of the metadata data stream (partition
//! key = video stream name, data = [`StoredEvent`] JSON), indexed in the catalog by (video stream,
//! clock, timestamp) so a time range reads back in timestamp order with one indexed query.
//!
//! Write order: records first (durable), then the index rows in one transaction; the request is
//! answered after both. A crash in between leaves records without index rows; [`MetadataStore::open`]
//! indexes every record past the highest indexed offset of each shard, so nothing acknowledged
//! (and nothing durable) is missing from queries after a restart.

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::params;

use super::metadata::StoredEvent;
use crate::catalog::Catalog;
use crate::catalog::VideoStreamId;
use crate::clock::Timestamp;
use crate::clock::TimestampKind;
use crate::datastream::{DataStreams, ShardId, ShardReader, StreamSel};
use crate::error::{Error, Result};
use crate::log::Offset;
use crate::name::StreamName;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS video_metadata (
    video_stream_id INTEGER NOT NULL,
    clock           INTEGER NOT NULL,
    ts_us           INTEGER NOT NULL,
    type            TEXT NOT NULL,
    shard           TEXT NOT NULL,
    record_offset   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS video_metadata_by_time ON video_metadata (video_stream_id, clock, ts_us);
CREATE INDEX IF NOT EXISTS video_metadata_by_record ON video_metadata (shard, record_offset);
";

fn clock_code(k: TimestampKind) -> i64 {
    match k {
        TimestampKind::Producer => 0,
        TimestampKind::Server => 1,
    }
}

/// An event read back, with where it is stored.
#[derive(Debug, Clone)]
pub struct FoundEvent {
    pub event: StoredEvent,
    pub shard_id: ShardId,
    pub sequence_number: String,
}

/// A time-range query over one video stream's metadata.
#[derive(Debug, Clone, Copy)]
pub struct MetadataQuery<'a> {
    pub clock: TimestampKind,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    /// Only events of this type.
    pub kind: Option<&'a str>,
    /// Continue after this position (the `next` of a previous page).
    pub after: Option<i64>,
    pub limit: usize,
}

/// What a stored event became.
#[derive(Debug, Clone)]
pub struct PutEvent {
    pub shard_id: ShardId,
    pub sequence_number: String,
}

pub struct MetadataStore {
    catalog: Arc<Catalog>,
    data: Arc<DataStreams>,
    stream: StreamName,
}

impl MetadataStore {
    /// Creates the metadata data stream and the index if missing, and indexes records a crash
    /// left unindexed. `video_id` maps a video stream's name to its catalog id.
    pub fn open(
        catalog: Arc<Catalog>,
        data: Arc<DataStreams>,
        stream: StreamName,
        shards: u32,
        video_id: impl Fn(&str) -> Option<VideoStreamId>,
    ) -> Result<MetadataStore> {
        catalog.ensure_schema(SCHEMA)?;
        data.ensure_stream(&stream, shards).map_err(ds)?;
        let store = MetadataStore { catalog, data, stream };
        store.reindex(&video_id)?;
        Ok(store)
    }

    pub fn stream(&self) -> &StreamName {
        &self.stream
    }

    fn shard_ids(&self) -> Result<Vec<ShardId>> {
        let (_, shards, _) = self
            .data
            .describe_stream(StreamSel::name(self.stream.as_str()), Some(10_000), None)
            .map_err(ds)?;
        Ok(shards.into_iter().map(|s| s.shard_id).collect())
    }

    fn reindex(&self, video_id: &impl Fn(&str) -> Option<VideoStreamId>) -> Result<()> {
        for shard in self.shard_ids()? {
            let reader = self.data.shard_reader(&self.stream, &shard).map_err(ds)?;
            let shard_s = shard.to_string();
            let last: Option<i64> = self.catalog.transaction(|tx| {
                Ok(tx.query_row(
                    "SELECT MAX(record_offset) FROM video_metadata WHERE shard = ?1",
                    [&shard_s],
                    |r| r.get(0),
                )?)
            })?;
            let mut from = Offset(last.map_or(0, |l| l as u64 + 1));
            let mut added = 0u64;
            loop {
                let records = reader.read(from, 1000, 8 * 1024 * 1024).map_err(ds)?;
                let Some(last) = records.last() else { break };
                from = Offset(last.offset.0 + 1);
                self.catalog.transaction(|tx| {
                    for r in &records {
                        let Some(e) = StoredEvent::decode(&r.data) else { continue };
                        let Some(id) = video_id(&e.stream) else { continue };
                        tx.execute(
                            "INSERT INTO video_metadata (video_stream_id, clock, ts_us, type, shard, record_offset)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            params![id, clock_code(e.timestamps), e.timestamp.as_micros(), e.kind, shard_s, r.offset.0 as i64],
                        )?;
                        added += 1;
                    }
                    Ok(())
                })?;
            }
            if added > 0 {
                tracing::info!(shard = %shard, events = added, "indexed metadata events left unindexed by a crash");
            }
        }
        Ok(())
    }

    /// Stores events durably and indexes them; answers in request order. `video_id` is the video
    /// stream's catalog id; each event's `stream` is its name.
    pub async fn put(
        &self,
        video_id: VideoStreamId,
        events: Vec<StoredEvent>,
    ) -> Result<Vec<PutEvent>> {
        let records = events
            .iter()
            .map(|e| Ok((e.stream.clone(), Bytes::from(e.encode()?))))
            .collect::<Result<Vec<_>>>()?;
        let appended = self.data.append_all(&self.stream, records).await.map_err(ds)?;
        for a in &appended {
            self.data.wait_durable(a).await.map_err(ds)?;
        }
        // The index rows on the blocking pool, like every catalog write from async code.
        let catalog = self.catalog.clone();
        let rows: Vec<(String, i64)> =
            appended.iter().map(|a| (a.shard_id.to_string(), a.offset.0 as i64)).collect();
        tokio::task::spawn_blocking(move || {
            catalog.transaction(|tx| {
                for (e, (shard, offset)) in events.iter().zip(&rows) {
                    tx.execute(
                        "INSERT INTO video_metadata (video_stream_id, clock, ts_us, type, shard, record_offset)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            video_id,
                            clock_code(e.timestamps),
                            e.timestamp.as_micros(),
                            e.kind,
                            shard,
                            offset
                        ],
                    )?;
                }
                Ok(())
            })
        })
        .await
        .map_err(|e| crate::error::Error::internal(format!("catalog task: {e}")))??;
        Ok(appended
            .into_iter()
            .map(|a| PutEvent {
                shard_id: a.shard_id,
                sequence_number: a.sequence_number.to_string(),
            })
            .collect())
    }

    /// Events of video stream `video_id` with `start <= timestamp <= end` on `clock`, optionally of one type,
    /// ordered by timestamp (then by arrival), at most `limit`, after `after` (an opaque position
    /// from a previous page). Events whose records retention has deleted are skipped.
    pub fn query(
        &self,
        video_id: VideoStreamId,
        q: &MetadataQuery<'_>,
    ) -> Result<(Vec<FoundEvent>, Option<i64>)> {
        let MetadataQuery { clock, start, end, kind, after, limit } = *q;
        let rows: Vec<(i64, String, i64)> = self.catalog.transaction(|tx| {
            let mut stmt = tx.prepare(
                "SELECT rowid, shard, record_offset FROM video_metadata
                 WHERE video_stream_id = ?1 AND clock = ?2 AND ts_us >= ?3 AND ts_us <= ?4
                   AND (?5 IS NULL OR type = ?5)
                   AND (?6 IS NULL OR (ts_us, rowid) > ((SELECT ts_us FROM video_metadata WHERE rowid = ?6), ?6))
                 ORDER BY ts_us, rowid LIMIT ?7",
            )?;
            let rows = stmt
                .query_map(
                    params![
                        video_id,
                        clock_code(clock),
                        start.map_or(i64::MIN, Timestamp::as_micros),
                        end.map_or(i64::MAX, Timestamp::as_micros),
                        kind,
                        after,
                        (limit + 1) as i64
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let more = rows.len() > limit;
        let mut out = Vec::with_capacity(rows.len().min(limit));
        let mut last_row = None;
        // One reader per shard for the whole page, not one lookup per row.
        let mut readers: std::collections::HashMap<String, (ShardId, ShardReader)> =
            std::collections::HashMap::new();
        for (rowid, shard, offset) in rows.into_iter().take(limit) {
            last_row = Some(rowid);
            if !readers.contains_key(&shard) {
                let id = ShardId::parse(&shard, "shard").map_err(ds)?;
                let reader = self.data.shard_reader(&self.stream, &id).map_err(ds)?;
                readers.insert(shard.clone(), (id, reader));
            }
            let Some((shard_id, reader)) = readers.get(&shard) else { continue };
            let shard_id = *shard_id;
            let Some(r) = reader.read(Offset(offset as u64), 1, 1).map_err(ds)?.into_iter().next()
            else {
                continue;
            };
            if r.offset.0 != offset as u64 {
                continue; // deleted by retention
            }
            let Some(event) = StoredEvent::decode(&r.data) else { continue };
            out.push(FoundEvent {
                event,
                shard_id,
                sequence_number: r.sequence_number.to_string(),
            });
        }
        Ok((out, if more { last_row } else { None }))
    }

    /// Drops index rows of deleted video streams and of records retention has deleted.
    pub fn purge(&self, live_video_ids: &[VideoStreamId]) -> Result<u64> {
        let mut removed = 0u64;
        for shard in self.shard_ids()? {
            let start = self.data.shard_reader(&self.stream, &shard).map_err(ds)?.start();
            removed += self.catalog.transaction(|tx| {
                Ok(tx.execute(
                    "DELETE FROM video_metadata WHERE shard = ?1 AND record_offset < ?2",
                    params![shard.to_string(), start.0 as i64],
                )? as u64)
            })?;
        }
        let ids = live_video_ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        removed += self.catalog.transaction(|tx| {
            Ok(tx.execute(
                &format!("DELETE FROM video_metadata WHERE video_stream_id NOT IN ({ids})"),
                [],
            )? as u64)
        })?;
        Ok(removed)
    }
}

fn ds(e: crate::datastream::DsError) -> Error {
    e.into()
}
