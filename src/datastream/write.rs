//! Writing: PutRecord, PutRecords (partial failure per record) and the server-internal
//! [`DataStreams::append`]. Records are routed to the open shard owning their hash key, admitted
//! by the shard's token buckets (provisioned streams, when limits are on), appended per shard as
//! one batch, and acknowledged once durable: one `wait_durable` on the last offset per shard.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::{
    Appended, DataStream, DataStreams, DsError, HashKey, Shard, ShardId, StreamMode, StreamSel,
    lock, read_lock, record, validate,
};
use crate::clock::Timestamp;
use crate::log::{NewRecord, Offset};
use crate::name::StreamName;

use super::seqno::{MAX_OFFSET, SequenceNumber};
use super::settings::ShardCounters;

/// Largest data blob of one record (10 MiB, the API's constraint); a stream takes at most its
/// `MaxRecordSizeInKiB` of data + partition key (1 MiB unless raised).
pub const MAX_RECORD_BYTES: usize = 10 * 1024 * 1024;
/// Largest PutRecords request: data + partition keys of all records (10 MiB).
pub const MAX_PUT_RECORDS_BYTES: usize = 10 * 1024 * 1024;
/// Most records in one PutRecords request.
pub const MAX_PUT_RECORDS: usize = 500;

/// One record to put.
#[derive(Debug, Clone)]
pub struct PutEntry {
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Bytes,
}

/// The result of one record of a PutRecords request.
#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome {
    Ok {
        shard_id: ShardId,
        sequence_number: SequenceNumber,
    },
    /// `code` is `ProvisionedThroughputExceededException` or `InternalFailure`.
    Failed {
        code: &'static str,
        message: String,
    },
}

/// A record validated and hashed, ready to route.
/// How a write treats the shard's limits.
#[derive(Debug, Clone, Copy)]
struct WritePolicy {
    /// Admit each record through the shard's write buckets.
    enforce: bool,
    /// Count the load for on-demand scaling.
    on_demand: bool,
}

struct Item {
    hash: HashKey,
    key: String,
    data: Bytes,
}

impl Item {
    fn bytes(&self) -> u64 {
        (self.key.len() + self.data.len()) as u64
    }
}

/// Every item within the stream's `MaxRecordSizeInKiB` (data + partition key).
fn check_record_sizes(stream: &DataStream, items: &[Item]) -> Result<(), DsError> {
    let kib = read_lock(&stream.state).max_record_kib;
    let limit = u64::from(kib) * 1024;
    match items.iter().find(|i| i.bytes() > limit) {
        Some(i) => Err(DsError::InvalidArgument(format!(
            "The record's data blob plus partition key is {} bytes, more than the stream {}'s maximum record size of {kib} KiB ({limit} bytes); UpdateMaxRecordSize raises it up to 10240 KiB.",
            i.bytes(),
            stream.name
        ))),
        None => Ok(()),
    }
}

/// The outcome of writing one item (before the durability wait).
type Written = Result<(Arc<Shard>, Offset, Timestamp), DsError>;

/// The shard was closed by resharding between routing and appending: route again.
struct ShardClosed;

/// Checks one entry's members (`prefix` is `` or `records.N.member.` as AWS names them in
/// PutRecords), keeping schema violations in `v`; the item, when nothing was wrong with it.
fn validate_entry(
    e: &PutEntry,
    prefix: &str,
    v: &mut validate::Violations,
) -> Result<Option<Item>, DsError> {
    // Kinesis's order: partitionKey, explicitHashKey, data.
    let key_ok =
        v.check(validate::length(&e.partition_key, &format!("{prefix}partitionKey"), 1, 256))?;
    let hash = match &e.explicit_hash_key {
        Some(k) => v.check(HashKey::parse(k, &format!("{prefix}explicitHashKey")))?,
        None => Some(HashKey::of_partition_key(&e.partition_key)),
    };
    let data_ok = e.data.len() <= MAX_RECORD_BYTES;
    if !data_ok {
        v.push(
            &validate::byte_buffer(e.data.len()),
            &format!("{prefix}data"),
            &format!("Member must have length less than or equal to {MAX_RECORD_BYTES}"),
        );
    }
    Ok(match (key_ok, data_ok, hash) {
        (Some(()), true, Some(hash)) => {
            Some(Item { hash, key: e.partition_key.clone(), data: e.data.clone() })
        }
        _ => None,
    })
}

/// The stream name given, checked with the request's other members.
fn check_name(sel: &StreamSel<'_>, v: &mut validate::Violations) -> Result<(), DsError> {
    if let Some(n) = sel.name {
        v.check(validate::name(n, "streamName", super::MAX_NAME_LEN))?;
    }
    Ok(())
}

impl Shard {
    /// Appends `items[idxs]` as one batch, admitting each record through the write buckets when
    /// `policy.enforce`, and counting what was offered into the shard's heat when
    /// `policy.on_demand`. Returns per-item results, or `ShardClosed`.
    fn append_items(
        self: &Arc<Self>,
        items: &[Item],
        idxs: &[usize],
        now: Timestamp,
        policy: WritePolicy,
        stream: &DataStream,
    ) -> Result<Vec<(usize, Written)>, ShardClosed> {
        let mut w = lock(&self.writer);
        if w.closed.is_some() {
            return Err(ShardClosed);
        }
        let mut out = Vec::with_capacity(idxs.len());
        let mut admitted = Vec::with_capacity(idxs.len());
        if policy.enforce {
            let mut b = lock(&self.buckets);
            for &i in idxs {
                let ok = b.admit_write(items[i].bytes(), now);
                if policy.on_demand {
                    w.heat.offer(now, items[i].hash, items[i].bytes(), ok);
                }
                if ok {
                    admitted.push(i);
                } else {
                    ShardCounters::add(&self.counters.write_throttled, 1);
                    out.push((i, Err(stream.rate_exceeded(self.id()))));
                }
            }
        } else {
            if policy.on_demand {
                for &i in idxs {
                    w.heat.offer(now, items[i].hash, items[i].bytes(), true);
                }
            }
            admitted.extend_from_slice(idxs);
        }
        if admitted.is_empty() {
            return Ok(out);
        }
        let arrival = now.max(w.last_arrival);
        if self.log.committed_end().0 + admitted.len() as u64 >= MAX_OFFSET {
            let e = DsError::Internal(format!("shard {} is full", self.id()));
            out.extend(admitted.into_iter().map(|i| (i, Err(e.clone()))));
            return Ok(out);
        }
        let recs: Vec<NewRecord> = admitted
            .iter()
            .map(|&i| NewRecord {
                time: arrival,
                arrival,
                meta: record::meta(items[i].hash),
                payload: record::encode(&items[i].key, &items[i].data),
            })
            .collect();
        match self.log.append_batch(recs) {
            Ok(range) => {
                w.last_arrival = arrival;
                let bytes: u64 = admitted.iter().map(|&i| items[i].bytes()).sum();
                ShardCounters::add(&self.counters.incoming_bytes, bytes);
                ShardCounters::add(&self.counters.incoming_records, admitted.len() as u64);
                for (k, i) in admitted.into_iter().enumerate() {
                    out.push((i, Ok((self.clone(), Offset(range.start.0 + k as u64), arrival))));
                }
            }
            Err(e) => {
                tracing::error!(stream = %stream.name, shard = %self.id(), error = %e, "data record append failed");
                let e = DsError::from(e);
                out.extend(admitted.into_iter().map(|i| (i, Err(e.clone()))));
            }
        }
        Ok(out)
    }
}

impl DataStreams {
    /// Routes and appends `items`; no durability wait. Items whose shard closes under them are
    /// routed again (a few times) to the children.
    fn write_items(
        &self,
        stream: &DataStream,
        items: &[Item],
        enforce_limits: bool,
    ) -> Vec<Written> {
        let now = self.now();
        // Both modes have the per-shard limits (as in Kinesis); an on-demand stream's shards
        // also count their load, and the scaler splits the hot ones (`autoscale`).
        let policy = WritePolicy {
            enforce: enforce_limits && self.config.throughput_limits,
            on_demand: enforce_limits && read_lock(&stream.state).mode == StreamMode::OnDemand,
        };
        let mut results: Vec<Option<Written>> = (0..items.len()).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..items.len()).collect();
        for _attempt in 0..4 {
            if pending.is_empty() {
                break;
            }
            let mut groups: BTreeMap<u32, (Arc<Shard>, Vec<usize>)> = BTreeMap::new();
            {
                let st = read_lock(&stream.state);
                for &i in &pending {
                    match st.route(items[i].hash) {
                        Some(shard) => {
                            groups.entry(shard.ordinal).or_insert((shard, Vec::new())).1.push(i)
                        }
                        None => {
                            results[i] = Some(Err(DsError::Internal(format!(
                                "no open shard of stream {} owns hash key {}",
                                stream.name, items[i].hash
                            ))));
                        }
                    }
                }
            }
            let mut retry = Vec::new();
            for (_, (shard, idxs)) in groups {
                match shard.append_items(items, &idxs, now, policy, stream) {
                    Ok(written) => {
                        for (i, r) in written {
                            results[i] = Some(r);
                        }
                    }
                    Err(ShardClosed) => retry.extend(idxs),
                }
            }
            pending = retry;
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(DsError::Internal(
                        "the shard was resharded during the write; retry".to_owned(),
                    ))
                })
            })
            .collect()
    }

    /// Waits until every successful write is durable; a failed wait turns its records into
    /// failures.
    async fn wait_all(&self, written: &mut [Written]) {
        let mut last: BTreeMap<u32, (Arc<Shard>, Offset)> = BTreeMap::new();
        for (shard, offset, _) in written.iter().flatten() {
            let e = last.entry(shard.ordinal).or_insert((shard.clone(), *offset));
            e.1 = e.1.max(*offset);
        }
        let waits = last.into_values().map(|(shard, offset)| async move {
            let r = shard.log.wait_durable(offset).await;
            (shard.ordinal, r)
        });
        let done = futures_util::future::join_all(waits).await;
        for (ordinal, r) in done {
            if let Err(e) = r {
                let e = DsError::from(e);
                for w in written.iter_mut() {
                    if matches!(w, Ok((s, _, _)) if s.ordinal == ordinal) {
                        *w = Err(e.clone());
                    }
                }
            }
        }
    }

    /// PutRecord: writes one record and answers once it is durable. `SequenceNumberForOrdering`
    /// is validated and otherwise unneeded (sequence numbers always increase within a shard).
    pub async fn put_record(
        self: &Arc<Self>,
        sel: StreamSel<'_>,
        entry: PutEntry,
        sequence_number_for_ordering: Option<&str>,
    ) -> Result<(ShardId, SequenceNumber), DsError> {
        let mut v = validate::Violations::default();
        v.decimal("sequenceNumberForOrdering", sequence_number_for_ordering, false, 129);
        let item = validate_entry(&entry, "", &mut v)?;
        check_name(&sel, &mut v)?;
        v.finish()?;
        let item = item.ok_or_else(|| DsError::Internal("an entry without violations".into()))?;
        let stream = self.resolve(sel)?;
        self.require_created(&stream)?;
        check_record_sizes(&stream, std::slice::from_ref(&item))?;
        let mut written = self.write_blocking(stream, vec![item]).await;
        self.wait_all(&mut written).await;
        match written.pop() {
            Some(Ok((shard, offset, arrival))) => {
                Ok((shard.id(), SequenceNumber::encode(arrival, shard.ordinal, offset)))
            }
            Some(Err(e)) => Err(e),
            None => Err(DsError::Internal("no write result".to_owned())),
        }
    }

    /// PutRecords: 1–500 records, at most 10 MiB of data and keys in total. Each record succeeds
    /// or fails on its own (throughput, storage); results are in request order. A request that
    /// fails validation writes nothing.
    pub async fn put_records(
        self: &Arc<Self>,
        sel: StreamSel<'_>,
        entries: Vec<PutEntry>,
    ) -> Result<Vec<PutOutcome>, DsError> {
        let mut v = validate::Violations::default();
        v.check(validate::count(entries.len(), "records", 1, MAX_PUT_RECORDS))?;
        let mut items = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            items.extend(validate_entry(e, &format!("records.{}.member.", i + 1), &mut v)?);
        }
        check_name(&sel, &mut v)?;
        v.finish()?;
        let total: u64 = items.iter().map(Item::bytes).sum();
        if total > MAX_PUT_RECORDS_BYTES as u64 {
            return Err(DsError::InvalidArgument(format!(
                "Records size exceeds 10 MiB limit: the request holds {total} bytes of data and partition keys."
            )));
        }
        let stream = self.resolve(sel)?;
        self.require_created(&stream)?;
        check_record_sizes(&stream, &items)?;
        let mut written = self.write_blocking(stream, items).await;
        self.wait_all(&mut written).await;
        // Storage that took none of the records (a full disk): one 503 for the request, which
        // the SDKs retry, rather than a 200 whose every record failed.
        if let Some(Err(DsError::Unavailable(m))) = written.first()
            && written.iter().all(|w| matches!(w, Err(DsError::Unavailable(_))))
        {
            return Err(DsError::Unavailable(m.clone()));
        }
        Ok(written
            .into_iter()
            .map(|w| match w {
                Ok((shard, offset, arrival)) => PutOutcome::Ok {
                    shard_id: shard.id(),
                    sequence_number: SequenceNumber::encode(arrival, shard.ordinal, offset),
                },
                Err(e @ DsError::ProvisionedThroughputExceeded(_)) => {
                    PutOutcome::Failed { code: e.type_name(), message: e.message().to_owned() }
                }
                Err(e) => {
                    PutOutcome::Failed { code: "InternalFailure", message: e.message().to_owned() }
                }
            })
            .collect())
    }

    /// [`DataStreams::write_items`] with limits, on the blocking pool: an append may roll a
    /// segment, which syncs.
    async fn write_blocking(
        self: &Arc<Self>,
        stream: Arc<DataStream>,
        items: Vec<Item>,
    ) -> Vec<Written> {
        let (this, n) = (self.clone(), items.len());
        tokio::task::spawn_blocking(move || this.write_items(&stream, &items, true))
            .await
            .unwrap_or_else(|e| {
                (0..n).map(|_| Err(DsError::Internal(format!("write task: {e}")))).collect()
            })
    }

    /// [`DataStreams::append`] for several records, on the blocking pool.
    pub async fn append_all(
        self: &Arc<Self>,
        stream: &StreamName,
        records: Vec<(String, Bytes)>,
    ) -> Result<Vec<Appended>, DsError> {
        let (this, stream) = (self.clone(), stream.clone());
        tokio::task::spawn_blocking(move || {
            records.into_iter().map(|(key, data)| this.append(&stream, &key, data)).collect()
        })
        .await
        .map_err(|e| DsError::Internal(format!("append task: {e}")))?
    }

    /// Writes one record for a server-internal writer (events, metadata): no durability wait
    /// (see [`DataStreams::wait_durable`]) and not subject to throughput limits. Validates the
    /// partition key (1–256 characters) and size (1 MiB) like PutRecord.
    pub fn append(
        &self,
        stream: &StreamName,
        partition_key: &str,
        data: Bytes,
    ) -> Result<Appended, DsError> {
        let mut v = validate::Violations::default();
        let entry =
            PutEntry { partition_key: partition_key.to_owned(), explicit_hash_key: None, data };
        let item = validate_entry(&entry, "", &mut v)?;
        v.finish()?;
        let item = item.ok_or_else(|| DsError::Internal("an entry without violations".into()))?;
        let s = self.resolve(StreamSel::name(stream.as_str()))?;
        check_record_sizes(&s, std::slice::from_ref(&item))?;
        let mut written = self.write_items(&s, &[item], false);
        match written.pop() {
            Some(Ok((shard, offset, arrival))) => Ok(Appended {
                shard_id: shard.id(),
                offset,
                sequence_number: SequenceNumber::encode(arrival, shard.ordinal, offset),
                arrival,
                shard,
            }),
            Some(Err(e)) => Err(e),
            None => Err(DsError::Internal("no write result".to_owned())),
        }
    }

    /// Resolves once the record [`DataStreams::append`] wrote is durable (per the storage sync
    /// policy) and so visible to readers.
    pub async fn wait_durable(&self, a: &Appended) -> Result<(), DsError> {
        a.shard.log.wait_durable(a.offset).await.map_err(DsError::from)
    }

    /// The open shard a partition key routes to now.
    pub fn shard_for_key(
        &self,
        stream: &StreamName,
        partition_key: &str,
    ) -> Result<ShardId, DsError> {
        validate::length(partition_key, "partitionKey", 1, 256)?;
        let s = self.resolve(StreamSel::name(stream.as_str()))?;
        let st = read_lock(&s.state);
        st.route(HashKey::of_partition_key(partition_key))
            .map(|sh| sh.id())
            .ok_or_else(|| DsError::Internal(format!("no open shard of stream {stream}")))
    }
}
