//! Reading: GetShardIterator, GetRecords and [`ShardReader`] (the server-internal reader behind
//! SSE and metadata queries). Readers only see committed (durable) records: the log's committed
//! end is their horizon.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use super::settings::ShardCounters;
use super::token::IteratorClaims;
use super::{
    ChildShard, DataRecord, DataStream, DataStreams, DsError, SequenceNumber, Shard, ShardId,
    StreamSel, lock, read_lock, record, validate,
};
use crate::clock::Timestamp;
use crate::log::{Offset, TimeKey};
use crate::memory::{Part, Reservation};
use crate::name::StreamName;

/// Most bytes one GetRecords call returns (10 MiB).
pub const MAX_GET_RECORDS_BYTES: usize = 10 * 1024 * 1024;
/// Most records one GetRecords call returns, and its default.
pub const MAX_GET_RECORDS: usize = 10_000;

/// Where a shard iterator starts.
#[derive(Debug, Clone, PartialEq)]
pub enum IteratorStart {
    TrimHorizon,
    Latest,
    AtSequenceNumber(SequenceNumber),
    AfterSequenceNumber(SequenceNumber),
    AtTimestamp(Timestamp),
}

impl IteratorStart {
    /// From GetShardIterator's members: `ShardIteratorType`, `StartingSequenceNumber` and
    /// `Timestamp` (epoch seconds).
    pub fn from_wire(
        kind: &str,
        sequence_number: Option<&str>,
        timestamp: Option<f64>,
    ) -> Result<IteratorStart, DsError> {
        const EITHER: &str = "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER \
             and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no \
             StartingSequenceNumber.";
        let seq = |what: &str| -> Result<SequenceNumber, DsError> {
            let s = sequence_number.ok_or_else(|| {
                DsError::InvalidArgument(format!(
                    "{EITHER} Request specified {what} and no StartingSequenceNumber."
                ))
            })?;
            SequenceNumber::parse(s, "startingSequenceNumber")
        };
        let no_seq = |start: IteratorStart| match sequence_number {
            Some(_) => Err(DsError::InvalidArgument(format!(
                "{EITHER} Request specified {kind} and also a StartingSequenceNumber."
            ))),
            None => Ok(start),
        };
        match kind {
            "TRIM_HORIZON" => no_seq(IteratorStart::TrimHorizon),
            "LATEST" => no_seq(IteratorStart::Latest),
            "AT_SEQUENCE_NUMBER" => Ok(IteratorStart::AtSequenceNumber(seq(kind)?)),
            "AFTER_SEQUENCE_NUMBER" => Ok(IteratorStart::AfterSequenceNumber(seq(kind)?)),
            "AT_TIMESTAMP" => {
                let t = timestamp.ok_or_else(|| {
                    DsError::InvalidArgument(
                        "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP."
                            .to_owned(),
                    )
                })?;
                Ok(IteratorStart::AtTimestamp(timestamp_from_secs(t, "timestamp")?))
            }
            other => Err(Self::check_kind(other)
                .err()
                .unwrap_or_else(|| DsError::Internal(format!("iterator type {other}")))),
        }
    }

    /// The `ShardIteratorType` schema constraint alone (the request's other members are checked
    /// with it).
    pub fn check_kind(kind: &str) -> Result<(), DsError> {
        match kind {
            "TRIM_HORIZON"
            | "LATEST"
            | "AT_SEQUENCE_NUMBER"
            | "AFTER_SEQUENCE_NUMBER"
            | "AT_TIMESTAMP" => Ok(()),
            other => Err(validate::violation(
                other,
                "shardIteratorType",
                "Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]",
            )),
        }
    }
}

/// Epoch seconds (possibly fractional) as Kinesis JSON sends timestamps.
pub fn timestamp_from_secs(secs: f64, member: &str) -> Result<Timestamp, DsError> {
    let us = secs * 1e6;
    if !us.is_finite() || us.abs() > 9.0e18 {
        return Err(DsError::InvalidArgument(format!("{member} {secs} is not a valid timestamp.")));
    }
    Ok(Timestamp::from_micros(us.round() as i64))
}

/// GetRecords' answer.
#[derive(Debug)]
pub struct GetRecordsOutput {
    pub records: Vec<DataRecord>,
    /// `None` once a closed shard has been read to its end.
    pub next_shard_iterator: Option<String>,
    pub millis_behind_latest: i64,
    /// The shard's children, only when a closed shard has been read to its end.
    pub child_shards: Option<Vec<ChildShard>>,
    /// The answer's share of the memory budget, held until the answer is encoded.
    pub memory: Option<Reservation>,
}

/// Reads one shard: by offset, by arrival time, or following its committed end.
#[derive(Clone)]
pub struct ShardReader {
    pub(super) shard: Arc<Shard>,
}

impl std::fmt::Debug for ShardReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardReader").field("shard", &self.shard.id()).finish()
    }
}

impl ShardReader {
    pub fn shard_id(&self) -> ShardId {
        self.shard.id()
    }

    /// The committed end (exclusive); changes whenever new records become visible.
    pub fn subscribe(&self) -> watch::Receiver<Offset> {
        self.shard.log.subscribe()
    }

    /// The first offset not deleted by retention.
    pub fn start(&self) -> Offset {
        self.shard.log.start()
    }

    /// The committed end (exclusive).
    pub fn committed_end(&self) -> Offset {
        self.shard.log.committed_end()
    }

    /// True once resharding has closed the shard (no record will be added).
    pub fn is_closed(&self) -> bool {
        self.shard.closed().is_some()
    }

    /// The first offset whose arrival is at or after `t` (the committed end if none).
    pub fn lower_bound_arrival(&self, t: Timestamp) -> Result<Offset, DsError> {
        Ok(self.shard.log.lower_bound(TimeKey::Arrival, t)?)
    }

    /// The offset of the record a sequence number names. `InvalidArgument` if it belongs to
    /// another shard or was never issued by this one (beyond the end, or its arrival time does
    /// not match the record's). A record already deleted by retention is not checked.
    pub fn offset_of(&self, seq: SequenceNumber) -> Result<Offset, DsError> {
        if seq.ordinal() != self.shard.ordinal {
            return Err(DsError::InvalidArgument(format!(
                "Invalid StartingSequenceNumber. It encodes shardId-{:012}, while it was used in a call to a shard with {}",
                seq.ordinal(),
                self.shard.id()
            )));
        }
        let not_issued = || {
            DsError::InvalidArgument(format!(
                "StartingSequenceNumber {seq} used in GetShardIterator on shard {} is invalid because it did not come from this stream.",
                self.shard.id()
            ))
        };
        let offset = seq.offset();
        if offset >= self.committed_end() {
            return Err(not_issued());
        }
        if let Some(e) = self.shard.log.entry(offset)?
            && u64::try_from(e.arrival.as_millis()).ok() != Some(seq.arrival_ms())
        {
            return Err(not_issued());
        }
        Ok(offset)
    }

    /// Records from `from` (clamped up to the retention start), at most `limit` of them and
    /// about `max_bytes` of payload (always at least one record if there is one).
    pub fn read(
        &self,
        from: Offset,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<DataRecord>, DsError> {
        let log = &self.shard.log;
        let from = from.max(log.start());
        let entries = log.entries(from, Offset(u64::MAX), limit)?;
        let mut total = 0usize;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let len = e.len as usize;
            if !out.is_empty() && total + len > max_bytes {
                break;
            }
            let Some(rec) = log.read(e.offset)? else { break };
            let (partition_key, data): (String, Bytes) = record::decode(&rec.payload)?;
            total += len;
            out.push(DataRecord {
                sequence_number: SequenceNumber::encode(e.arrival, self.shard.ordinal, e.offset),
                partition_key,
                data,
                arrival: e.arrival,
                offset: e.offset,
            });
        }
        Ok(out)
    }
}

impl DataStreams {
    /// A reader of one shard, for server-internal consumers.
    pub fn shard_reader(
        &self,
        stream: &StreamName,
        shard: &ShardId,
    ) -> Result<ShardReader, DsError> {
        let s = self.resolve(StreamSel::name(stream.as_str()))?;
        Ok(ShardReader { shard: s.shard(*shard)? })
    }

    /// GetShardIterator.
    pub fn get_shard_iterator(
        &self,
        sel: StreamSel<'_>,
        shard_id: &str,
        start: IteratorStart,
    ) -> Result<String, DsError> {
        validate::name(shard_id, "shardId", 128)?;
        let id = self.shard_arg(&sel, shard_id)?;
        // An unknown stream or shard: Kinesis names the shard either way.
        let no_shard = |name: &str| {
            DsError::ResourceNotFound(format!(
                "Shard {id} in stream {name} under account {} does not exist",
                self.config.account_id
            ))
        };
        let s = match self.resolve(sel) {
            Err(DsError::ResourceNotFound(_)) => return Err(no_shard(sel.given_name())),
            other => other?,
        };
        self.require_created(&s)?;
        let shard = s.shard(id).map_err(|_| no_shard(s.name.as_str()))?;
        let reader = ShardReader { shard: shard.clone() };
        let end = reader.committed_end();
        let offset = match start {
            IteratorStart::TrimHorizon => reader.start(),
            IteratorStart::Latest => end,
            IteratorStart::AtSequenceNumber(q) => reader.offset_of(q)?,
            IteratorStart::AfterSequenceNumber(q) => reader.offset_of(q)?.next(),
            IteratorStart::AtTimestamp(t) => reader.lower_bound_arrival(t)?,
        };
        Ok(self.signer.iterator(&IteratorClaims {
            stream_id: s.id,
            stream_created: s.created_at,
            ordinal: shard.ordinal,
            offset,
            issued: self.now(),
        }))
    }

    /// The name of the stream a shard iterator reads, if the iterator is valid (for
    /// authorization before GetRecords runs).
    pub fn iterator_stream(&self, iterator: &str) -> Option<String> {
        let claims = self.signer.verify_iterator(iterator, self.now()).ok()?;
        self.by_id(claims.stream_id)
            .filter(|s| s.created_at == claims.stream_created)
            .map(|s| s.name.to_string())
    }

    /// GetRecords: at most `limit` (1–10,000, default 10,000) records and 10 MiB.
    pub fn get_records(
        &self,
        iterator: &str,
        limit: Option<i64>,
    ) -> Result<GetRecordsOutput, DsError> {
        validate::length(iterator, "shardIterator", 1, 512)?;
        if let Some(l) = limit {
            validate::range(l, "limit", 1, MAX_GET_RECORDS as i64)?;
        }
        let now = self.now();
        let claims = self.signer.verify_iterator(iterator, now)?;
        let stream = self
            .by_id(claims.stream_id)
            .filter(|s| s.created_at == claims.stream_created)
            .ok_or_else(|| {
                DsError::ResourceNotFound(
                    "The stream of this shard iterator no longer exists.".to_owned(),
                )
            })?;
        let shard = stream.shard(ShardId(claims.ordinal))?;
        if self.config.throughput_limits && !lock(&shard.buckets).admit_read(now) {
            ShardCounters::add(&shard.counters.read_throttled, 1);
            return Err(stream.rate_exceeded(shard.id()));
        }
        // Closed first: once closed, the committed end read after it is final.
        let closed = shard.closed().is_some();
        let reader = ShardReader { shard: shard.clone() };
        let end = reader.committed_end();
        let from = claims.offset.max(reader.start());
        let limit = limit.map_or(MAX_GET_RECORDS, |l| l as usize);
        // The records and their base64 coexist while the answer is encoded: 1 + 4/3 their size.
        // Under a busy memory budget the answer is shorter (at least one record, as AWS's 10 MiB
        // cap): the consumer reads the rest with the next iterator.
        let memory = self.memory.reserve_up_to(Part::Kinesis, MAX_GET_RECORDS_BYTES / 3 * 7);
        let max_bytes = (memory.bytes() / 7 * 3).max(1);
        let records = reader.read(from, limit, max_bytes)?;
        let next = records.last().map_or(from, |r| r.offset.next());
        if self.config.throughput_limits {
            let bytes: usize = records.iter().map(|r| r.data.len() + r.partition_key.len()).sum();
            lock(&shard.buckets).charge_read(bytes as u64, now);
        }
        let millis_behind_latest = if next >= end {
            0
        } else {
            match shard.log.entry(next)? {
                Some(e) => now.micros_since(e.arrival).max(0) / 1000,
                None => 0,
            }
        };
        shard.counters.read_out(&records, millis_behind_latest);
        if closed && next >= end {
            return Ok(GetRecordsOutput {
                records,
                next_shard_iterator: None,
                millis_behind_latest,
                child_shards: Some(children(&stream, &shard)),
                memory: Some(memory),
            });
        }
        let next_shard_iterator =
            Some(self.signer.iterator(&IteratorClaims { offset: next, issued: now, ..claims }));
        Ok(GetRecordsOutput {
            records,
            next_shard_iterator,
            millis_behind_latest,
            child_shards: None,
            memory: Some(memory),
        })
    }
}

/// The shards whose parent or adjacent parent is `shard`.
pub(super) fn children(stream: &DataStream, shard: &Shard) -> Vec<ChildShard> {
    read_lock(&stream.state)
        .shards
        .values()
        .filter(|c| c.parent == Some(shard.ordinal) || c.adjacent_parent == Some(shard.ordinal))
        .map(|c| ChildShard {
            shard_id: c.id(),
            parents: c.parent.into_iter().chain(c.adjacent_parent).map(ShardId).collect(),
            range: c.range,
        })
        .collect()
}
