//! The AWS Kinesis Data Streams wire protocol (JSON 1.1): `POST /` with
//! `X-Amz-Target: Kinesis_20131202.<Operation>`, a JSON body with the API reference's PascalCase
//! members, blobs in base64 and timestamps in epoch seconds. Any `Authorization` (SigV4) header
//! is accepted and ignored. Errors are HTTP 400 `{"__type":"<Exception>","message":"…"}`
//! (500 `InternalFailure` for faults); an unknown target is `UnknownOperationException`.
//!
//! A thin adapter: each operation decodes its members, calls one `DataStreams` method (which
//! checks every constraint) and encodes the answer. The semantics live in `crate::datastream`;
//! docs/kinesis.md describes the surface.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::ApiState;
use crate::datastream::reshard::ListShardsRequest;
use crate::datastream::{
    Capacity, ChildShard, ConsumerDescription, DataStreams, DsError, GetRecordsOutput,
    HashKeyRange, IteratorStart, PutEntry, PutOutcome, ShardDescription, ShardFilter,
    StreamDescription, StreamMode, StreamSel,
};

/// The `X-Amz-Target` prefix of Kinesis Data Streams operations.
pub const TARGET_PREFIX: &str = "Kinesis_20131202.";
/// Largest request body: a 5 MiB PutRecords in base64 (≈ 6.7 MiB) plus JSON framing.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

pub fn routes() -> Router<ApiState> {
    Router::new().route("/", post(handle))
}

async fn handle(State(state): State<ApiState>, headers: HeaderMap, body: Body) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (status, out) = if content_type.starts_with("application/x-amz-cbor") {
        error_body(&DsError::Serialization(
            "CBOR is not supported; use JSON (for the Java SDK and KCL set AWS_CBOR_DISABLE=1)"
                .to_owned(),
        ))
    } else {
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(bytes) => dispatch(&state.data, target, &bytes).await,
            Err(_) => error_body(&DsError::Serialization(format!(
                "The request body is unreadable or larger than {MAX_BODY} bytes."
            ))),
        }
    };
    let mut resp = (status, out).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(&request_id()) {
        h.insert("x-amzn-requestid", id);
    }
    resp
}

fn request_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs one request: `target` is the `X-Amz-Target` header, `body` the JSON. Returns the status
/// and the JSON response body. Never panics on client input.
pub async fn dispatch(
    ds: &DataStreams,
    target: Option<&str>,
    body: &[u8],
) -> (StatusCode, Vec<u8>) {
    let Some(op) = target.and_then(|t| t.strip_prefix(TARGET_PREFIX)) else {
        return unknown_operation(target);
    };
    let body = if body.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { body };
    let result = match op {
        "CreateStream" => create_stream(ds, body),
        "DeleteStream" => delete_stream(ds, body),
        "DescribeStream" => describe_stream(ds, body),
        "DescribeStreamSummary" => describe_stream_summary(ds, body),
        "ListStreams" => list_streams(ds, body),
        "ListShards" => list_shards(ds, body),
        "PutRecord" => put_record(ds, body).await,
        "PutRecords" => put_records(ds, body).await,
        "GetShardIterator" => get_shard_iterator(ds, body),
        "GetRecords" => {
            return match get_records(ds, body) {
                Ok(bytes) => (StatusCode::OK, bytes),
                Err(e) => error_body(&e),
            };
        }
        "IncreaseStreamRetentionPeriod" => retention(ds, body, true),
        "DecreaseStreamRetentionPeriod" => retention(ds, body, false),
        "AddTagsToStream" => add_tags(ds, body),
        "RemoveTagsFromStream" => remove_tags(ds, body),
        "ListTagsForStream" => list_tags(ds, body),
        "SplitShard" => split_shard(ds, body),
        "MergeShards" => merge_shards(ds, body),
        "UpdateShardCount" => update_shard_count(ds, body),
        "UpdateStreamMode" => update_stream_mode(ds, body),
        "RegisterStreamConsumer" => register_consumer(ds, body),
        "DeregisterStreamConsumer" => deregister_consumer(ds, body),
        "ListStreamConsumers" => list_consumers(ds, body),
        "DescribeStreamConsumer" => describe_consumer(ds, body),
        "DescribeLimits" => Ok(describe_limits(ds)),
        _ => return unknown_operation(target),
    };
    match result {
        Ok(v) => (StatusCode::OK, serde_json::to_vec(&v).unwrap_or_else(|_| b"{}".to_vec())),
        Err(e) => error_body(&e),
    }
}

fn unknown_operation(target: Option<&str>) -> (StatusCode, Vec<u8>) {
    let body = json!({
        "__type": "UnknownOperationException",
        "message": format!("Unknown operation {:?}", target.unwrap_or("")),
    });
    (StatusCode::BAD_REQUEST, serde_json::to_vec(&body).unwrap_or_default())
}

fn error_body(e: &DsError) -> (StatusCode, Vec<u8>) {
    let status = if e.is_server_fault() {
        tracing::error!(error = %e, "kinesis request failed");
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    let body = json!({ "__type": e.type_name(), "message": e.message() });
    (status, serde_json::to_vec(&body).unwrap_or_default())
}

// ---- decoding ---------------------------------------------------------------------------------

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, DsError> {
    parse_borrowed(body)
}

/// Like [`parse`], for request types that borrow strings from the body.
fn parse_borrowed<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, DsError> {
    serde_json::from_slice(body)
        .map_err(|e| DsError::Serialization(format!("Invalid request body: {e}")))
}

/// A required member: `ValidationException` naming it (camelCase, as Kinesis does) when absent.
fn required<T>(v: Option<T>, member: &str) -> Result<T, DsError> {
    v.ok_or_else(|| {
        DsError::Validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

fn blob(s: &str, member: &str) -> Result<Bytes, DsError> {
    STANDARD
        .decode(s.as_bytes())
        .map(Bytes::from)
        .map_err(|_| DsError::Serialization(format!("{member} is not valid base64")))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct StreamMembers {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
}

impl StreamMembers {
    fn sel(&self) -> StreamSel<'_> {
        StreamSel { name: self.stream_name.as_deref(), arn: self.stream_arn.as_deref() }
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

fn range_json(r: &HashKeyRange) -> Value {
    json!({ "StartingHashKey": r.start.to_string(), "EndingHashKey": r.end.to_string() })
}

fn shard_json(s: &ShardDescription) -> Value {
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

fn child_json(c: &ChildShard) -> Value {
    json!({
        "ShardId": c.shard_id.to_string(),
        "ParentShards": c.parents.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "HashKeyRange": range_json(&c.range),
    })
}

fn mode_json(m: StreamMode) -> Value {
    json!({ "StreamMode": m.as_str() })
}

fn summary_json(d: &StreamDescription) -> Value {
    json!({
        "StreamName": d.name,
        "StreamARN": d.arn,
        "StreamStatus": d.status,
        "StreamModeDetails": mode_json(d.mode),
        "RetentionPeriodHours": d.retention_hours,
        "StreamCreationTimestamp": d.created_at.as_secs_f64(),
        "EnhancedMonitoring": [{ "ShardLevelMetrics": [] }],
        "EncryptionType": "NONE",
        "OpenShardCount": d.open_shard_count,
        "ConsumerCount": d.consumer_count,
    })
}

fn consumer_json(c: &ConsumerDescription) -> Value {
    json!({
        "ConsumerName": c.name,
        "ConsumerARN": c.arn,
        "ConsumerStatus": c.status,
        "ConsumerCreationTimestamp": c.created_at.as_secs_f64(),
    })
}

// ---- operations -------------------------------------------------------------------------------

fn create_stream(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        stream_name: Option<String>,
        shard_count: Option<i64>,
        stream_mode_details: Option<ModeDetails>,
        tags: Option<BTreeMap<String, String>>,
    }
    let r: In = parse(body)?;
    let name = required(r.stream_name, "streamName")?;
    let mode = match r.stream_mode_details {
        Some(d) => stream_mode(d)?,
        None => StreamMode::Provisioned,
    };
    let capacity = match (mode, r.shard_count) {
        (StreamMode::OnDemand, None) => Capacity::OnDemand,
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
        (StreamMode::Provisioned, Some(n)) => {
            crate::datastream::validate::range(n, "shardCount", 1, 100_000)?;
            Capacity::Provisioned { shard_count: n as u32 }
        }
    };
    ds.create_stream(&name, capacity, r.tags.unwrap_or_default())?;
    Ok(json!({}))
}

fn delete_stream(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
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

fn describe_stream(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        limit: Option<i64>,
        exclusive_start_shard_id: Option<String>,
    }
    let r: In = parse(body)?;
    let (d, shards, more) =
        ds.describe_stream(r.stream.sel(), r.limit, r.exclusive_start_shard_id.as_deref())?;
    Ok(json!({ "StreamDescription": {
        "StreamName": d.name,
        "StreamARN": d.arn,
        "StreamStatus": d.status,
        "StreamModeDetails": mode_json(d.mode),
        "Shards": shards.iter().map(shard_json).collect::<Vec<_>>(),
        "HasMoreShards": more,
        "RetentionPeriodHours": d.retention_hours,
        "StreamCreationTimestamp": d.created_at.as_secs_f64(),
        "EnhancedMonitoring": [{ "ShardLevelMetrics": [] }],
        "EncryptionType": "NONE",
    }}))
}

fn describe_stream_summary(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    let r: StreamMembers = parse(body)?;
    let d = ds.describe_stream_summary(r.sel())?;
    Ok(json!({ "StreamDescriptionSummary": summary_json(&d) }))
}

fn list_streams(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        limit: Option<i64>,
        exclusive_start_stream_name: Option<String>,
        next_token: Option<String>,
    }
    let r: In = parse(body)?;
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

fn list_shards(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
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

async fn put_record(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
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
    let entry = record.entry("")?;
    let (shard, seq) =
        ds.put_record(stream.sel(), entry, r.sequence_number_for_ordering.as_deref()).await?;
    Ok(json!({
        "ShardId": shard.to_string(),
        "SequenceNumber": seq.to_string(),
        "EncryptionType": "NONE",
    }))
}

async fn put_records(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
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

fn get_shard_iterator(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
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
    let shard_id = required(r.shard_id, "shardId")?;
    let kind = required(r.shard_iterator_type, "shardIteratorType")?;
    let start =
        IteratorStart::from_wire(&kind, r.starting_sequence_number.as_deref(), r.timestamp)?;
    let it = ds.get_shard_iterator(r.stream.sel(), &shard_id, start)?;
    Ok(json!({ "ShardIterator": it }))
}

/// GetRecords, written straight into the response buffer: the records' data is base64-encoded
/// into place (base64 and decimal numbers never need JSON escaping), without building a JSON tree
/// and escape-scanning megabytes of base64.
fn get_records(ds: &DataStreams, body: &[u8]) -> Result<Vec<u8>, DsError> {
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
    let out = ds.get_records(&it, r.limit)?;
    Ok(get_records_body(&out))
}

fn get_records_body(out: &GetRecordsOutput) -> Vec<u8> {
    let json_err = |_| ();
    let cap = 128
        + out
            .records
            .iter()
            .map(|r| {
                base64::encoded_len(r.data.len(), true).unwrap_or(0) + r.partition_key.len() + 128
            })
            .sum::<usize>();
    let mut buf = Vec::with_capacity(cap);
    buf.extend_from_slice(b"{\"Records\":[");
    for (i, r) in out.records.iter().enumerate() {
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
    let _ = serde_json::to_writer(&mut buf, &out.millis_behind_latest).map_err(json_err);
    buf.extend_from_slice(b",\"NextShardIterator\":");
    let _ = serde_json::to_writer(&mut buf, &out.next_shard_iterator).map_err(json_err);
    if let Some(children) = &out.child_shards {
        buf.extend_from_slice(b",\"ChildShards\":");
        let list: Vec<Value> = children.iter().map(child_json).collect();
        let _ = serde_json::to_writer(&mut buf, &list).map_err(json_err);
    }
    buf.push(b'}');
    buf
}

fn retention(ds: &DataStreams, body: &[u8], increase: bool) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        retention_period_hours: Option<i64>,
    }
    let r: In = parse(body)?;
    let hours = required(r.retention_period_hours, "retentionPeriodHours")?;
    ds.set_retention_period(r.stream.sel(), hours, increase)?;
    Ok(json!({}))
}

fn add_tags(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        tags: Option<BTreeMap<String, String>>,
    }
    let r: In = parse(body)?;
    ds.add_tags(r.stream.sel(), required(r.tags, "tags")?)?;
    Ok(json!({}))
}

fn remove_tags(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        tag_keys: Option<Vec<String>>,
    }
    let r: In = parse(body)?;
    ds.remove_tags(r.stream.sel(), &required(r.tag_keys, "tagKeys")?)?;
    Ok(json!({}))
}

fn list_tags(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        exclusive_start_tag_key: Option<String>,
        limit: Option<i64>,
    }
    let r: In = parse(body)?;
    let (tags, more) =
        ds.list_tags(r.stream.sel(), r.exclusive_start_tag_key.as_deref(), r.limit)?;
    Ok(json!({
        "Tags": tags.iter().map(|(k, v)| json!({ "Key": k, "Value": v })).collect::<Vec<_>>(),
        "HasMoreTags": more,
    }))
}

fn split_shard(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        shard_to_split: Option<String>,
        new_starting_hash_key: Option<String>,
    }
    let r: In = parse(body)?;
    let shard = required(r.shard_to_split, "shardToSplit")?;
    let key = required(r.new_starting_hash_key, "newStartingHashKey")?;
    ds.split_shard(r.stream.sel(), &shard, &key)?;
    Ok(json!({}))
}

fn merge_shards(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        shard_to_merge: Option<String>,
        adjacent_shard_to_merge: Option<String>,
    }
    let r: In = parse(body)?;
    let a = required(r.shard_to_merge, "shardToMerge")?;
    let b = required(r.adjacent_shard_to_merge, "adjacentShardToMerge")?;
    ds.merge_shards(r.stream.sel(), &a, &b)?;
    Ok(json!({}))
}

fn update_shard_count(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(flatten)]
        stream: StreamMembers,
        target_shard_count: Option<i64>,
        scaling_type: Option<String>,
    }
    let r: In = parse(body)?;
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

fn update_stream_mode(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
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

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConsumerMembers {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    consumer_name: Option<String>,
    #[serde(rename = "ConsumerARN")]
    consumer_arn: Option<String>,
}

fn register_consumer(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    let r: ConsumerMembers = parse(body)?;
    let arn = required(r.stream_arn, "streamARN")?;
    let name = required(r.consumer_name, "consumerName")?;
    let c = ds.register_consumer(&arn, &name)?;
    Ok(json!({ "Consumer": consumer_json(&c) }))
}

fn deregister_consumer(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    let r: ConsumerMembers = parse(body)?;
    ds.deregister_consumer(
        r.stream_arn.as_deref(),
        r.consumer_name.as_deref(),
        r.consumer_arn.as_deref(),
    )?;
    Ok(json!({}))
}

fn describe_consumer(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    let r: ConsumerMembers = parse(body)?;
    let c = ds.describe_consumer(
        r.stream_arn.as_deref(),
        r.consumer_name.as_deref(),
        r.consumer_arn.as_deref(),
    )?;
    let mut v = consumer_json(&c);
    v["StreamARN"] = json!(c.stream_arn);
    Ok(json!({ "ConsumerDescription": v }))
}

fn list_consumers(ds: &DataStreams, body: &[u8]) -> Result<Value, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(rename = "StreamARN")]
        stream_arn: Option<String>,
        next_token: Option<String>,
        max_results: Option<i64>,
        #[serde(rename = "StreamCreationTimestamp")]
        _stream_creation_timestamp: Option<f64>,
    }
    let r: In = parse(body)?;
    let arn = required(r.stream_arn, "streamARN")?;
    let (consumers, token) = ds.list_consumers(&arn, r.next_token.as_deref(), r.max_results)?;
    let mut v = json!({ "Consumers": consumers.iter().map(consumer_json).collect::<Vec<_>>() });
    if let Some(t) = token {
        v["NextToken"] = json!(t);
    }
    Ok(v)
}

fn describe_limits(ds: &DataStreams) -> Value {
    let l = ds.describe_limits();
    json!({
        "ShardLimit": l.shard_limit,
        "OpenShardCount": l.open_shard_count,
        "OnDemandStreamCount": l.on_demand_stream_count,
        "OnDemandStreamCountLimit": l.on_demand_stream_count_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastream::testing::Fixture;

    async fn call(ds: &DataStreams, op: &str, body: Value) -> (StatusCode, Value) {
        let target = format!("{TARGET_PREFIX}{op}");
        let (status, out) = dispatch(ds, Some(&target), body.to_string().as_bytes()).await;
        (status, serde_json::from_slice(&out).unwrap())
    }

    async fn error_type(ds: &DataStreams, op: &str, body: Value) -> String {
        let (status, v) = call(ds, op, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        v["__type"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn roundtrip_over_json() {
        let fx = Fixture::new(false);
        let ds = fx.open();
        let (s, v) = call(&ds, "CreateStream", json!({"StreamName": "s", "ShardCount": 2})).await;
        assert_eq!((s, v), (StatusCode::OK, json!({})));
        let (s, v) = call(
            &ds,
            "PutRecord",
            json!({"StreamName": "s", "PartitionKey": "k", "Data": STANDARD.encode(b"hello")}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["EncryptionType"], "NONE");
        let shard = v["ShardId"].as_str().unwrap().to_owned();
        let seq = v["SequenceNumber"].as_str().unwrap().to_owned();
        let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
        let (_, v) = call(
            &ds,
            "GetShardIterator",
            json!({"StreamARN": arn, "ShardId": shard, "ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": seq}),
        )
        .await;
        let it = v["ShardIterator"].as_str().unwrap().to_owned();
        let (s, v) = call(&ds, "GetRecords", json!({"ShardIterator": it, "Limit": 10})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["Records"][0]["Data"], STANDARD.encode(b"hello"));
        assert_eq!(v["Records"][0]["PartitionKey"], "k");
        assert_eq!(v["Records"][0]["SequenceNumber"], seq.as_str());
        assert!(v["Records"][0]["ApproximateArrivalTimestamp"].is_f64());
        assert!(v["NextShardIterator"].is_string());
        assert_eq!(v["MillisBehindLatest"], 0);
        let (_, v) = call(&ds, "DescribeStream", json!({"StreamName": "s"})).await;
        let d = &v["StreamDescription"];
        assert_eq!(
            (d["StreamStatus"].as_str(), d["StreamARN"].as_str()),
            (Some("ACTIVE"), Some(arn))
        );
        assert_eq!(
            d["Shards"][1]["HashKeyRange"]["StartingHashKey"],
            "170141183460469231731687303715884105728"
        );
        let (_, v) = call(&ds, "ListStreams", json!({})).await;
        assert_eq!(v["StreamNames"], json!(["s"]));
        let (_, v) = call(&ds, "DescribeLimits", json!({})).await;
        assert_eq!(v["OpenShardCount"], 2);
        let (_, v) =
            call(&ds, "RegisterStreamConsumer", json!({"StreamARN": arn, "ConsumerName": "c"}))
                .await;
        let carn = v["Consumer"]["ConsumerARN"].as_str().unwrap().to_owned();
        assert!(carn.starts_with("arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:"));
        let (_, v) = call(&ds, "DescribeStreamConsumer", json!({"ConsumerARN": carn})).await;
        assert_eq!(v["ConsumerDescription"]["StreamARN"], arn);
        assert_eq!(
            error_type(&ds, "DeleteStream", json!({"StreamName": "s"})).await,
            "ResourceInUseException"
        );
        let (s, _) =
            call(&ds, "DeleteStream", json!({"StreamName": "s", "EnforceConsumerDeletion": true}))
                .await;
        assert_eq!(s, StatusCode::OK);
    }

    #[tokio::test]
    async fn errors_carry_kinesis_types() {
        let fx = Fixture::new(false);
        let ds = fx.open();
        call(&ds, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await;
        let (s, out) = dispatch(&ds, Some("Kinesis_20131202.Nope"), b"{}").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8_lossy(&out).contains("UnknownOperationException"));
        let (s, _) = dispatch(&ds, None, b"{}").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (_, out) = dispatch(&ds, Some("Kinesis_20131202.ListStreams"), b"{not json").await;
        assert!(String::from_utf8_lossy(&out).contains("SerializationException"));
        let cases = [
            ("CreateStream", json!({}), "ValidationException"),
            ("CreateStream", json!({"StreamName": "s", "ShardCount": 0}), "ValidationException"),
            (
                "CreateStream",
                json!({"StreamName": "bad name", "ShardCount": 1}),
                "ValidationException",
            ),
            ("CreateStream", json!({"StreamName": "x"}), "InvalidArgumentException"),
            ("CreateStream", json!({"StreamName": "s", "ShardCount": 1}), "ResourceInUseException"),
            (
                "CreateStream",
                json!({"StreamName": "x", "ShardCount": "one"}),
                "SerializationException",
            ),
            (
                "CreateStream",
                json!({"StreamName": "x", "StreamModeDetails": {"StreamMode": "FAST"}}),
                "ValidationException",
            ),
            ("DescribeStream", json!({}), "ValidationException"),
            ("DescribeStream", json!({"StreamName": "missing"}), "ResourceNotFoundException"),
            ("DescribeStream", json!({"StreamARN": "nope"}), "ValidationException"),
            ("DescribeStream", json!({"StreamName": "s", "Limit": 0}), "ValidationException"),
            ("PutRecord", json!({"StreamName": "s", "Data": "aGk="}), "ValidationException"),
            (
                "PutRecord",
                json!({"StreamName": "s", "PartitionKey": "k", "Data": "***"}),
                "SerializationException",
            ),
            ("PutRecords", json!({"StreamName": "s", "Records": []}), "ValidationException"),
            ("PutRecords", json!({"StreamName": "s"}), "ValidationException"),
            (
                "GetShardIterator",
                json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "OLDEST"}),
                "ValidationException",
            ),
            (
                "GetShardIterator",
                json!({"StreamName": "s", "ShardId": "shardId-000000000009", "ShardIteratorType": "LATEST"}),
                "ResourceNotFoundException",
            ),
            (
                "GetShardIterator",
                json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_SEQUENCE_NUMBER"}),
                "InvalidArgumentException",
            ),
            ("GetRecords", json!({"ShardIterator": "garbage"}), "InvalidArgumentException"),
            ("GetRecords", json!({}), "ValidationException"),
            (
                "ListShards",
                json!({"StreamName": "s", "NextToken": "x"}),
                "InvalidArgumentException",
            ),
            (
                "ListShards",
                json!({"StreamName": "s", "ShardFilter": {"Type": "SOMETIMES"}}),
                "ValidationException",
            ),
            ("ListShards", json!({"StreamName": "s", "MaxResults": 10001}), "ValidationException"),
            (
                "IncreaseStreamRetentionPeriod",
                json!({"StreamName": "s", "RetentionPeriodHours": 8761}),
                "InvalidArgumentException",
            ),
            (
                "IncreaseStreamRetentionPeriod",
                json!({"StreamName": "s", "RetentionPeriodHours": 0}),
                "ValidationException",
            ),
            (
                "GetShardIterator",
                json!({"StreamName": "s", "ShardId": "0", "ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": "1"}),
                "InvalidArgumentException",
            ),
            (
                "DecreaseStreamRetentionPeriod",
                json!({"StreamName": "s", "RetentionPeriodHours": 23}),
                "InvalidArgumentException",
            ),
            (
                "SplitShard",
                json!({"StreamName": "s", "ShardToSplit": "shardId-000000000000", "NewStartingHashKey": "1"}),
                "InvalidArgumentException",
            ),
            (
                "MergeShards",
                json!({"StreamName": "s", "ShardToMerge": "shardId-000000000000"}),
                "ValidationException",
            ),
            (
                "UpdateShardCount",
                json!({"StreamName": "s", "TargetShardCount": 3, "ScalingType": "UNIFORM_SCALING"}),
                "LimitExceededException",
            ),
            (
                "UpdateShardCount",
                json!({"StreamName": "s", "TargetShardCount": 2, "ScalingType": "FAST"}),
                "ValidationException",
            ),
            (
                "UpdateStreamMode",
                json!({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s", "StreamModeDetails": {"StreamMode": "PROVISIONED"}}),
                "ResourceInUseException",
            ),
            ("AddTagsToStream", json!({"StreamName": "s", "Tags": {}}), "ValidationException"),
            (
                "RegisterStreamConsumer",
                json!({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s", "ConsumerName": "a b"}),
                "ValidationException",
            ),
            (
                "DescribeStreamConsumer",
                json!({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s", "ConsumerName": "none"}),
                "ResourceNotFoundException",
            ),
        ];
        for (op, body, want) in cases {
            assert_eq!(error_type(&ds, op, body.clone()).await, want, "{op} {body}");
        }
        // Expired iterator.
        let (_, v) = call(
            &ds,
            "GetShardIterator",
            json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await;
        fx.clock.advance(std::time::Duration::from_secs(301));
        let it = v["ShardIterator"].clone();
        assert_eq!(
            error_type(&ds, "GetRecords", json!({"ShardIterator": it})).await,
            "ExpiredIteratorException"
        );
    }

    #[test]
    fn get_records_body_is_the_json_kinesis_expects() {
        use crate::clock::Timestamp;
        use crate::datastream::DataRecord;
        use crate::datastream::SequenceNumber;
        use crate::log::Offset;
        let rec = |i: u64, key: &str, data: &'static [u8]| DataRecord {
            sequence_number: SequenceNumber::encode(
                Timestamp::from_millis(1_700_000_000_123),
                2,
                Offset(i),
            ),
            partition_key: key.to_owned(),
            data: Bytes::from_static(data),
            arrival: Timestamp::from_millis(1_700_000_000_123),
            offset: Offset(i),
        };
        let out = GetRecordsOutput {
            records: vec![
                rec(0, "plain", b"hello"),
                rec(1, "quo\"te\\ \u{e9}", b""),
                rec(2, "k", &[0xff; 100]),
            ],
            next_shard_iterator: Some("abc".to_owned()),
            millis_behind_latest: 42,
            child_shards: None,
        };
        let v: Value = serde_json::from_slice(&get_records_body(&out)).unwrap();
        assert_eq!(v["Records"].as_array().unwrap().len(), 3);
        assert_eq!(v["Records"][0]["Data"], STANDARD.encode(b"hello"));
        assert_eq!(v["Records"][0]["PartitionKey"], "plain");
        assert_eq!(v["Records"][0]["ApproximateArrivalTimestamp"], 1_700_000_000.123);
        assert_eq!(v["Records"][0]["SequenceNumber"], out.records[0].sequence_number.to_string());
        assert_eq!(v["Records"][1]["PartitionKey"], "quo\"te\\ \u{e9}", "keys are escaped");
        assert_eq!(v["Records"][1]["Data"], "");
        assert_eq!(v["Records"][2]["Data"], STANDARD.encode([0xff; 100]));
        assert_eq!(v["MillisBehindLatest"], 42);
        assert_eq!(v["NextShardIterator"], "abc");
        assert!(v.get("ChildShards").is_none());
        let closed = GetRecordsOutput {
            records: vec![],
            next_shard_iterator: None,
            millis_behind_latest: 0,
            child_shards: Some(vec![]),
        };
        let v: Value = serde_json::from_slice(&get_records_body(&closed)).unwrap();
        assert!(v["NextShardIterator"].is_null());
        assert_eq!(v["ChildShards"], json!([]));
    }
}
