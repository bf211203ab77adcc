//! The Kinesis Data Streams operations: one function per `X-Amz-Target`, from request members
//! to the answer's JSON.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{blob, parse, parse_borrowed, required};
use crate::datastream::reshard::ListShardsRequest;
use crate::datastream::validate::{self, Violations};
use crate::datastream::{
    Capacity, ChildShard, DataRecord, DataStreams, DsError, GetRecordsOutput, HashKeyRange,
    IteratorStart, PutEntry, PutOutcome, ShardDescription, ShardFilter, StreamDescription,
    StreamMode, StreamSel, WarmThroughput,
};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(super) struct StreamMembers {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
}

impl StreamMembers {
    pub(super) fn sel(&self) -> StreamSel<'_> {
        StreamSel { name: self.stream_name.as_deref(), arn: self.stream_arn.as_deref() }
    }

    /// `StreamName`'s schema, with the request's other violations (Kinesis lists it last).
    pub(super) fn check(&self, v: &mut Violations) {
        v.name("streamName", self.stream_name.as_deref(), false, 128);
    }
}

#[derive(Deserialize)]
struct ModeDetails {
    #[serde(rename = "StreamMode")]
    stream_mode: Option<String>,
}

fn stream_mode(d: ModeDetails) -> Result<StreamMode, DsError> {
    let m = required(d.stream_mode, "streamModeDetails.streamMode")?;
    StreamMode::parse(&m).ok_or_else(|| {
        crate::datastream::validate::violation(
            &m,
            "streamModeDetails.streamMode",
            "Member must satisfy enum value set: [ON_DEMAND, PROVISIONED]",
        )
    })
}

// ---- encoding ---------------------------------------------------------------------------------

pub(super) fn range_json(r: &HashKeyRange) -> Value {
    json!({ "StartingHashKey": r.start.to_string(), "EndingHashKey": r.end.to_string() })
}

pub(super) fn shard_json(s: &ShardDescription) -> Value {
    let mut v = json!({
        "ShardId": s.shard_id.to_string(),
        "HashKeyRange": range_json(&s.range),
        "SequenceNumberRange": { "StartingSequenceNumber": s.starting.to_string() },
    });
    if let Some(p) = s.parent {
        v["ParentShardId"] = json!(p.to_string());
    }
    if let Some(p) = s.adjacent_parent {
        v["AdjacentParentShardId"] = json!(p.to_string());
    }
    if let Some(e) = s.ending {
        v["SequenceNumberRange"]["EndingSequenceNumber"] = json!(e.to_string());
    }
    v
}

pub(super) fn child_json(c: &ChildShard) -> Value {
    json!({
        "ShardId": c.shard_id.to_string(),
        "ParentShards": c.parents.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "HashKeyRange": range_json(&c.range),
    })
}

pub(super) fn mode_json(m: StreamMode) -> Value {
    json!({ "StreamMode": m.as_str() })
}

pub(super) fn summary_json(d: &StreamDescription) -> Value {
    let mut v = json!({
        "StreamName": d.name,
        "StreamARN": d.arn,
        "StreamStatus": d.status,
        "StreamModeDetails": mode_json(d.mode),
        "RetentionPeriodHours": d.retention_hours,
        "StreamCreationTimestamp": d.created_at.as_secs_f64(),
        "EnhancedMonitoring": [{ "ShardLevelMetrics": d.shard_metrics }],
        "EncryptionType": if d.encryption_key.is_some() { "KMS" } else { "NONE" },
        "OpenShardCount": d.open_shard_count,
        "ConsumerCount": d.consumer_count,
        "MaxRecordSizeInKiB": d.max_record_kib,
    });
    optional_members(&mut v, d);
    v
}

/// `KeyId` while encrypted and `WarmThroughput` of an ON_DEMAND stream; absent otherwise, as
/// AWS leaves them.
fn optional_members(v: &mut Value, d: &StreamDescription) {
    if let Some(k) = &d.encryption_key {
        v["KeyId"] = json!(k);
    }
    if let Some(w) = &d.warm_throughput {
        v["WarmThroughput"] = warm_json(w);
    }
}

pub(super) fn warm_json(w: &WarmThroughput) -> Value {
    json!({ "TargetMiBps": w.target_mibps, "CurrentMiBps": w.current_mibps })
}

// ---- operations -------------------------------------------------------------------------------

pub(super) fn create_stream(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        stream_name: Option<String>,
        shard_count: Option<i64>,
        stream_mode_details: Option<ModeDetails>,
        tags: Option<BTreeMap<String, String>>,
        #[serde(rename = "MaxRecordSizeInKiB")]
        max_record_size_in_kib: Option<i64>,
        #[serde(rename = "WarmThroughputMiBps")]
        warm_throughput_mibps: Option<i64>,
    }
    let r: In = parse(body)?;
    // Every schema constraint first, reported together (model order).
    let mut v = Violations::default();
    v.range("shardCount", r.shard_count, false, (1, 100_000));
    v.name("streamName", r.stream_name.as_deref(), true, 128);
    let mode = match r.stream_mode_details {
        Some(d) => v.check(stream_mode(d))?,
        None => Some(StreamMode::Provisioned),
    };
    if let Some(k) = r.max_record_size_in_kib {
        v.check(validate::range(k, "maxRecordSizeInKiB", 1024, 10240))?;
    }
    if let Some(w) = r.warm_throughput_mibps {
        v.check(validate::range(w, "warmThroughputMiBps", 0, i64::from(i32::MAX)))?;
    }
    v.finish()?;
    let (Some(name), Some(mode)) = (r.stream_name, mode) else {
        return Err(DsError::Internal("a request without violations".into()));
    };
    let capacity = match (mode, r.shard_count) {
        (StreamMode::OnDemand, None) => {
            Capacity::OnDemand { warm_mibps: r.warm_throughput_mibps.map(|w| w as u32) }
        }
        (StreamMode::OnDemand, Some(_)) => {
            return Err(DsError::InvalidArgument(
                "ShardCount must not be given for an ON_DEMAND stream.".to_owned(),
            ));
        }
        (StreamMode::Provisioned, None) => {
            return Err(DsError::InvalidArgument(
                "ShardCount is required for a PROVISIONED stream.".to_owned(),
            ));
        }
        (StreamMode::Provisioned, Some(_)) if r.warm_throughput_mibps.is_some() => {
            return Err(DsError::InvalidArgument(
                "WarmThroughputMiBps applies to ON_DEMAND streams only.".to_owned(),
            ));
        }
        (StreamMode::Provisioned, Some(n)) => Capacity::Provisioned { shard_count: n as u32 },
    };
    ds.create_stream(&name, capacity, r.tags.unwrap_or_default(), r.max_record_size_in_kib)?;
    Ok(json!({}))
}

pub(super) fn update_max_record_size(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        #[serde(rename = "MaxRecordSizeInKiB")]
        max_record_size_in_kib: Option<i64>,
    }
    let r: In = parse(body)?;
    let kib = required(r.max_record_size_in_kib, "maxRecordSizeInKiB")?;
    ds.update_max_record_size(r.stream.sel(), kib)?;
    Ok(json!({}))
}

pub(super) fn delete_stream(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        enforce_consumer_deletion: Option<bool>,
    }
    let r: In = parse(body)?;
    ds.delete_stream(r.stream.sel(), r.enforce_consumer_deletion.unwrap_or(false))?;
    Ok(json!({}))
}

pub(super) fn describe_stream(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        limit: Option<i64>,
        exclusive_start_shard_id: Option<String>,
    }
    let r: In = parse(body)?;
    let mut v = Violations::default();
    v.range("limit", r.limit, false, (1, 10_000));
    v.name("exclusiveStartShardId", r.exclusive_start_shard_id.as_deref(), false, 128);
    r.stream.check(&mut v);
    v.finish()?;
    let (d, shards, more) =
        ds.describe_stream(r.stream.sel(), r.limit, r.exclusive_start_shard_id.as_deref())?;
    let mut v = json!({
        "StreamName": d.name,
        "StreamARN": d.arn,
        "StreamStatus": d.status,
        "StreamModeDetails": mode_json(d.mode),
        "Shards": shards.iter().map(shard_json).collect::<Vec<_>>(),
        "HasMoreShards": more,
        "RetentionPeriodHours": d.retention_hours,
        "StreamCreationTimestamp": d.created_at.as_secs_f64(),
        "EnhancedMonitoring": [{ "ShardLevelMetrics": d.shard_metrics }],
        "EncryptionType": if d.encryption_key.is_some() { "KMS" } else { "NONE" },
    });
    if let Some(k) = &d.encryption_key {
        v["KeyId"] = json!(k);
    }
    Ok(json!({ "StreamDescription": v }))
}

pub(super) fn describe_stream_summary(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    let r: StreamMembers = parse(body)?;
    let d = ds.describe_stream_summary(r.sel())?;
    Ok(json!({ "StreamDescriptionSummary": summary_json(&d) }))
}

pub(super) fn list_streams(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        limit: Option<i64>,
        exclusive_start_stream_name: Option<String>,
        next_token: Option<String>,
    }
    let r: In = parse(body)?;
    let mut v = Violations::default();
    v.range("limit", r.limit, false, (1, 10_000));
    v.name("exclusiveStartStreamName", r.exclusive_start_stream_name.as_deref(), false, 128);
    v.length("nextToken", r.next_token.as_deref(), false, (1, 1_048_576));
    v.finish()?;
    let (streams, more, token) = ds.list_streams(
        r.limit,
        r.exclusive_start_stream_name.as_deref(),
        r.next_token.as_deref(),
    )?;
    let mut v = json!({
        "StreamNames": streams.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "HasMoreStreams": more,
        "StreamSummaries": streams.iter().map(|s| json!({
            "StreamName": s.name,
            "StreamARN": s.arn,
            "StreamStatus": s.status,
            "StreamModeDetails": mode_json(s.mode),
            "StreamCreationTimestamp": s.created_at.as_secs_f64(),
        })).collect::<Vec<_>>(),
    });
    if let Some(t) = token {
        v["NextToken"] = json!(t);
    }
    Ok(v)
}

pub(super) fn list_shards(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Filter {
        #[serde(rename = "Type")]
        kind: Option<String>,
        shard_id: Option<String>,
        timestamp: Option<f64>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        next_token: Option<String>,
        exclusive_start_shard_id: Option<String>,
        max_results: Option<i64>,
        shard_filter: Option<Filter>,
    }
    let r: In = parse(body)?;
    let filter = match r.shard_filter {
        Some(f) => {
            let kind = required(f.kind, "shardFilter.type")?;
            let ts = match f.timestamp {
                Some(t) => Some(crate::datastream::read::timestamp_from_secs(t, "Timestamp")?),
                None => None,
            };
            Some(ShardFilter::from_wire(&kind, f.shard_id.as_deref(), ts)?)
        }
        None => None,
    };
    let (shards, token) = ds.list_shards(ListShardsRequest {
        stream: r.stream.sel(),
        next_token: r.next_token.as_deref(),
        exclusive_start_shard_id: r.exclusive_start_shard_id.as_deref(),
        max_results: r.max_results,
        filter,
    })?;
    let mut v = json!({ "Shards": shards.iter().map(shard_json).collect::<Vec<_>>() });
    if let Some(t) = token {
        v["NextToken"] = json!(t);
    }
    Ok(v)
}

/// One record of PutRecord(s). `Data` is borrowed from the request body (base64 never contains
/// JSON escapes), so it is decoded straight from the request bytes without an intermediate copy.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordIn<'a> {
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
}

impl RecordIn<'_> {
    fn complete(&self) -> bool {
        self.data.is_some() && self.partition_key.is_some()
    }

    /// This record's schema violations (`prefix` as in [`RecordIn::entry`]), for a request
    /// that lacks a required member: every one is reported, in Kinesis's order.
    fn violations(&self, prefix: &str, v: &mut Violations) {
        let m = |name: &str| format!("{prefix}{name}");
        v.length(&m("partitionKey"), self.partition_key.as_deref(), true, (1, 256));
        v.decimal(&m("explicitHashKey"), self.explicit_hash_key.as_deref(), false, 39);
        match &self.data {
            None => v.null(&m("data")),
            Some(d) => {
                let len = d.len() / 4 * 3;
                if len > crate::datastream::write::MAX_RECORD_BYTES {
                    v.push(
                        &validate::byte_buffer(len),
                        &m("data"),
                        &format!(
                            "Member must have length less than or equal to {}",
                            crate::datastream::write::MAX_RECORD_BYTES
                        ),
                    );
                }
            }
        }
    }

    fn entry(self, prefix: &str) -> Result<PutEntry, DsError> {
        let data = required(self.data, &format!("{prefix}data"))?;
        let partition_key = required(self.partition_key, &format!("{prefix}partitionKey"))?;
        Ok(PutEntry {
            partition_key,
            explicit_hash_key: self.explicit_hash_key,
            data: blob(&data, "Data")?,
        })
    }
}

// PutRecord, PutRecords and GetRecords carry the data: their request members are spelled out
// rather than `#[serde(flatten)]`ed, which would buffer the whole request (every record's data)
// in an intermediate map before building the struct.

pub(super) async fn put_record(ds: &Arc<DataStreams>, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In<'a> {
        stream_name: Option<String>,
        #[serde(rename = "StreamARN")]
        stream_arn: Option<String>,
        #[serde(borrow)]
        data: Option<Cow<'a, str>>,
        partition_key: Option<String>,
        explicit_hash_key: Option<String>,
        sequence_number_for_ordering: Option<String>,
    }
    let r: In<'_> = parse_borrowed(body)?;
    let stream = StreamMembers { stream_name: r.stream_name, stream_arn: r.stream_arn };
    let record = RecordIn {
        data: r.data,
        partition_key: r.partition_key,
        explicit_hash_key: r.explicit_hash_key,
    };
    if !record.complete() {
        let mut v = Violations::default();
        v.decimal(
            "sequenceNumberForOrdering",
            r.sequence_number_for_ordering.as_deref(),
            false,
            129,
        );
        record.violations("", &mut v);
        stream.check(&mut v);
        v.finish()?;
    }
    let entry = record.entry("")?;
    let (shard, seq) =
        ds.put_record(stream.sel(), entry, r.sequence_number_for_ordering.as_deref()).await?;
    Ok(json!({
        "ShardId": shard.to_string(),
        "SequenceNumber": seq.to_string(),
        "EncryptionType": "NONE",
    }))
}

pub(super) async fn put_records(ds: &Arc<DataStreams>, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In<'a> {
        stream_name: Option<String>,
        #[serde(rename = "StreamARN")]
        stream_arn: Option<String>,
        #[serde(borrow)]
        records: Option<Vec<RecordIn<'a>>>,
    }
    let r: In<'_> = parse_borrowed(body)?;
    let stream = StreamMembers { stream_name: r.stream_name, stream_arn: r.stream_arn };
    if !r.records.as_ref().is_some_and(|rs| rs.iter().all(RecordIn::complete)) {
        let mut v = Violations::default();
        match &r.records {
            None => v.null("records"),
            Some(rs) => {
                v.check(validate::count(rs.len(), "records", 1, 500))?;
                for (i, rec) in rs.iter().enumerate() {
                    rec.violations(&format!("records.{}.member.", i + 1), &mut v);
                }
            }
        }
        stream.check(&mut v);
        v.finish()?;
    }
    let records = required(r.records, "records")?;
    let entries = records
        .into_iter()
        .enumerate()
        .map(|(i, rec)| rec.entry(&format!("records.{}.member.", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let outcomes = ds.put_records(stream.sel(), entries).await?;
    let failed = outcomes.iter().filter(|o| matches!(o, PutOutcome::Failed { .. })).count();
    let records: Vec<Value> = outcomes
        .iter()
        .map(|o| match o {
            PutOutcome::Ok { shard_id, sequence_number } => json!({
                "SequenceNumber": sequence_number.to_string(),
                "ShardId": shard_id.to_string(),
            }),
            PutOutcome::Failed { code, message } => {
                json!({ "ErrorCode": code, "ErrorMessage": message })
            }
        })
        .collect();
    Ok(json!({ "FailedRecordCount": failed, "Records": records, "EncryptionType": "NONE" }))
}

pub(super) fn get_shard_iterator(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        shard_id: Option<String>,
        shard_iterator_type: Option<String>,
        starting_sequence_number: Option<String>,
        timestamp: Option<f64>,
    }
    let r: In = parse(body)?;
    // The schema first, every violation in the order Kinesis reports them.
    let mut v = Violations::default();
    match r.shard_id.as_deref() {
        None => v.null("shardId"),
        Some(s) => {
            v.check(validate::name(s, "shardId", 128))?;
        }
    }
    match r.shard_iterator_type.as_deref() {
        None => v.null("shardIteratorType"),
        Some(kind) => {
            v.check(IteratorStart::check_kind(kind))?;
        }
    }
    if let Some(q) = r.starting_sequence_number.as_deref() {
        v.check(validate::decimal(q, "startingSequenceNumber", 129))?;
    }
    if let Some(n) = r.stream.stream_name.as_deref() {
        v.check(validate::name(n, "streamName", 128))?;
    }
    v.finish()?;
    let (Some(shard_id), Some(kind)) = (r.shard_id, r.shard_iterator_type) else {
        return Err(DsError::Internal("a request without violations".into()));
    };
    let start =
        IteratorStart::from_wire(&kind, r.starting_sequence_number.as_deref(), r.timestamp)?;
    let it = ds.get_shard_iterator(r.stream.sel(), &shard_id, start)?;
    Ok(json!({ "ShardIterator": it }))
}

/// GetRecords, written straight into the response buffer: the records' data is base64-encoded
/// into place (base64 and decimal numbers never need JSON escaping), without building a JSON tree
/// and escape-scanning megabytes of base64.
pub(super) fn get_records(ds: &DataStreams, body: &[u8]) -> Result<GetRecordsOutput, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        shard_iterator: Option<String>,
        limit: Option<i64>,
        #[serde(rename = "StreamARN")]
        _stream_arn: Option<String>,
    }
    let r: In = parse(body)?;
    let it = required(r.shard_iterator, "shardIterator")?;
    ds.get_records(&it, r.limit)
}

pub(super) fn get_records_body(out: &GetRecordsOutput) -> Vec<u8> {
    let position = Position::Next(out.next_shard_iterator.as_deref());
    records_json(&out.records, out.millis_behind_latest, position, out.child_shards.as_deref())
}

/// Where a page of records leaves its reader: GetRecords' `NextShardIterator` (null once a
/// closed shard is drained) or a SubscribeToShard event's `ContinuationSequenceNumber`.
#[derive(Clone, Copy)]
pub(super) enum Position<'a> {
    Next(Option<&'a str>),
    Continuation(&'a str),
}

impl Position<'_> {
    /// The member's name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Position::Next(_) => "NextShardIterator",
            Position::Continuation(_) => "ContinuationSequenceNumber",
        }
    }

    pub(super) fn value(&self) -> Option<&str> {
        match *self {
            Position::Next(v) => v,
            Position::Continuation(v) => Some(v),
        }
    }
}

/// A page of records as JSON: `Records` (data in base64, encoded into place), then
/// `MillisBehindLatest`, the position, and `ChildShards` when given.
pub(super) fn records_json(
    records: &[DataRecord],
    millis_behind_latest: i64,
    position: Position<'_>,
    children: Option<&[ChildShard]>,
) -> Vec<u8> {
    let json_err = |_| ();
    let cap = 128
        + records
            .iter()
            .map(|r| {
                base64::encoded_len(r.data.len(), true).unwrap_or(0) + r.partition_key.len() + 128
            })
            .sum::<usize>();
    let mut buf = Vec::with_capacity(cap);
    buf.extend_from_slice(b"{\"Records\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"SequenceNumber\":\"");
        buf.extend_from_slice(r.sequence_number.to_string().as_bytes());
        buf.extend_from_slice(b"\",\"ApproximateArrivalTimestamp\":");
        let _ = serde_json::to_writer(&mut buf, &(r.arrival.as_millis() as f64 / 1000.0))
            .map_err(json_err);
        buf.extend_from_slice(b",\"Data\":\"");
        let at = buf.len();
        buf.resize(at + base64::encoded_len(r.data.len(), true).unwrap_or(0), 0);
        let written = STANDARD.encode_slice(&r.data, &mut buf[at..]).unwrap_or(0);
        buf.truncate(at + written);
        buf.extend_from_slice(b"\",\"PartitionKey\":");
        let _ = serde_json::to_writer(&mut buf, &r.partition_key).map_err(json_err);
        buf.push(b'}');
    }
    buf.extend_from_slice(b"],\"MillisBehindLatest\":");
    let _ = serde_json::to_writer(&mut buf, &millis_behind_latest).map_err(json_err);
    buf.extend_from_slice(format!(",\"{}\":", position.name()).as_bytes());
    let _ = serde_json::to_writer(&mut buf, &position.value()).map_err(json_err);
    if let Some(children) = children {
        buf.extend_from_slice(b",\"ChildShards\":");
        let list: Vec<Value> = children.iter().map(child_json).collect();
        let _ = serde_json::to_writer(&mut buf, &list).map_err(json_err);
    }
    buf.push(b'}');
    buf
}

pub(super) fn retention(ds: &DataStreams, body: &[u8], increase: bool) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        retention_period_hours: Option<i64>,
    }
    let r: In = parse(body)?;
    let mut v = Violations::default();
    v.range("retentionPeriodHours", r.retention_period_hours, true, (1, i64::from(i32::MAX)));
    r.stream.check(&mut v);
    v.finish()?;
    let hours = required(r.retention_period_hours, "retentionPeriodHours")?;
    ds.set_retention_period(r.stream.sel(), hours, increase)?;
    Ok(json!({}))
}

pub(super) fn split_shard(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        shard_to_split: Option<String>,
        new_starting_hash_key: Option<String>,
    }
    let r: In = parse(body)?;
    let mut v = Violations::default();
    v.decimal("newStartingHashKey", r.new_starting_hash_key.as_deref(), true, 39);
    r.stream.check(&mut v);
    v.name("shardToSplit", r.shard_to_split.as_deref(), true, 128);
    v.finish()?;
    let shard = required(r.shard_to_split, "shardToSplit")?;
    let key = required(r.new_starting_hash_key, "newStartingHashKey")?;
    ds.split_shard(r.stream.sel(), &shard, &key)?;
    Ok(json!({}))
}

pub(super) fn merge_shards(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        shard_to_merge: Option<String>,
        adjacent_shard_to_merge: Option<String>,
    }
    let r: In = parse(body)?;
    let mut v = Violations::default();
    v.name("shardToMerge", r.shard_to_merge.as_deref(), true, 128);
    v.name("adjacentShardToMerge", r.adjacent_shard_to_merge.as_deref(), true, 128);
    r.stream.check(&mut v);
    v.finish()?;
    let a = required(r.shard_to_merge, "shardToMerge")?;
    let b = required(r.adjacent_shard_to_merge, "adjacentShardToMerge")?;
    ds.merge_shards(r.stream.sel(), &a, &b)?;
    Ok(json!({}))
}

pub(super) fn update_shard_count(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        target_shard_count: Option<i64>,
        scaling_type: Option<String>,
    }
    let r: In = parse(body)?;
    let mut v = Violations::default();
    v.range("targetShardCount", r.target_shard_count, true, (1, i64::from(i32::MAX)));
    let scaling = ["UNIFORM_SCALING"];
    v.one_of("scalingType", r.scaling_type.as_deref(), true, &scaling, "UNIFORM_SCALING");
    r.stream.check(&mut v);
    v.finish()?;
    let target = required(r.target_shard_count, "targetShardCount")?;
    let scaling = required(r.scaling_type, "scalingType")?;
    let (current, target) = ds.update_shard_count(r.stream.sel(), target, &scaling)?;
    let d = ds.describe_stream_summary(r.stream.sel())?;
    Ok(json!({
        "StreamName": d.name,
        "StreamARN": d.arn,
        "CurrentShardCount": current,
        "TargetShardCount": target,
    }))
}

pub(super) fn update_stream_mode(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(rename = "StreamARN")]
        stream_arn: Option<String>,
        stream_mode_details: Option<ModeDetails>,
    }
    let r: In = parse(body)?;
    let arn = required(r.stream_arn, "streamARN")?;
    let mode = stream_mode(required(r.stream_mode_details, "streamModeDetails")?)?;
    ds.update_stream_mode(&arn, mode)?;
    Ok(json!({}))
}

pub(super) fn describe_limits(ds: &DataStreams) -> Value {
    let l = ds.describe_limits();
    json!({
        "ShardLimit": l.shard_limit,
        "OpenShardCount": l.open_shard_count,
        "OnDemandStreamCount": l.on_demand_stream_count,
        "OnDemandStreamCountLimit": l.on_demand_stream_count_limit,
    })
}
