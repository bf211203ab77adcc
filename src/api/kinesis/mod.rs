//! The AWS Kinesis Data Streams wire protocol: `POST /` with
//! `X-Amz-Target: Kinesis_20131202.<Operation>`, a JSON 1.1 body with the API reference's
//! PascalCase members, blobs in base64 and timestamps in epoch seconds, or the same members in
//! CBOR 1.1 ([`cbor`], chosen by `Content-Type`; the answer in the same encoding). With `[auth] enabled`, every request
//! must be signed (SigV4, service `kinesis`) by a Sluice access key holding the grant the
//! operation needs ([`access`]); otherwise any `Authorization` header is ignored. Errors are HTTP 400 `{"__type":"<Exception>","message":"…"}`
//! (500 `InternalFailure` for faults); an unknown target is `UnknownOperationException`.
//!
//! A thin adapter: this module is the wire (routing by target, body limits, error bodies, member
//! decoding helpers); [`ops`] has one function per operation, which decodes its members, calls
//! one `DataStreams` method (which checks every constraint) and encodes the answer. The semantics
//! live in `crate::datastream`; docs/kinesis.md describes the surface.

pub mod access;
mod cbor;
mod consumers;
pub mod firehose;
mod ops;
pub mod settings;
mod subscribe;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::ApiState;
use crate::auth::sigv4::{self, SigV4Error};
use crate::auth::{Failure, Identity};
use crate::datastream::{DataStreams, DsError, GetRecordsOutput, Subscription};
use crate::events::sink::Denial;
use crate::memory::Part;
use ops::*;

/// The `X-Amz-Target` prefix of Kinesis Data Streams operations.
pub const TARGET_PREFIX: &str = "Kinesis_20131202.";
/// Largest request body: a 10 MiB PutRecords in base64 (≈ 13.4 MiB) plus JSON framing.
pub const MAX_BODY: usize = 16 * 1024 * 1024;
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const CBOR_CONTENT_TYPE: &str = "application/x-amz-cbor-1.1";

pub fn routes() -> Router<ApiState> {
    Router::new().route("/", post(handle))
}

async fn handle(State(state): State<ApiState>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    let codec = Codec::of(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()));
    // The body and what is decoded from it (records' data) coexist: twice its size, taken from
    // the memory budget before the body is read when its length is declared.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .map_or(MAX_BODY, |n| n.min(MAX_BODY));
    let outcome = match state.memory.reserve(Part::Kinesis, 2 * declared) {
        Err(e) => {
            // Read the body to its end without keeping it, so the client, still sending, gets
            // the answer rather than a reset connection.
            discard(body, MAX_BODY).await;
            Err(DsError::Unavailable(e.to_string()).into())
        }
        Ok(mut memory) => match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(bytes) => {
                let _ = memory.resize(2 * bytes.len());
                authorized(&state, &parts, target, bytes, codec).await
            }
            Err(_) => Err(DsError::Serialization(format!(
                "The request body is unreadable or larger than {MAX_BODY} bytes."
            ))
            .into()),
        },
    };
    let mut resp = match outcome {
        Ok(Reply::Subscription(sub)) => subscribe::response(sub, codec, state.shutdown.clone()),
        outcome => {
            let (status, out) = encode(codec, outcome);
            let mut resp = (status, out).into_response();
            let ct = HeaderValue::from_static(codec.content_type());
            resp.headers_mut().insert(header::CONTENT_TYPE, ct);
            resp
        }
    };
    let status = resp.status();
    let h = resp.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&request_id()) {
        h.insert("x-amzn-requestid", id);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

/// Verifies the signature over the body as sent and the grant (when auth is on), then runs the
/// operation.
async fn authorized(
    state: &ApiState,
    parts: &axum::http::request::Parts,
    target: Option<&str>,
    raw: Bytes,
    codec: Codec,
) -> Outcome {
    let auth = &state.auth;
    let firehose_op = target.and_then(|t| t.strip_prefix(firehose::TARGET_PREFIX));
    if !auth.enabled() {
        let body = codec.request(&raw)?;
        return match firehose_op {
            Some(op) => firehose::run(state, &Identity::Anonymous, op, &body).await,
            None => run(&state.data, target, &body).await,
        };
    }
    let remote = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = remote.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let denied = |reason: &'static str, who: &str, stream: &str| {
        let d = Denial { surface: "kinesis", reason, principal: who, action: None, stream, remote };
        state.video.events().denied(&state.metrics, d);
    };
    if let Err(Failure::Throttled { .. }) = auth.check_throttle(ip) {
        denied("throttled", "anonymous", "");
        return Err(Fault::new(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded: too many failed authentications from this address",
        ));
    }
    let now = state.video.clock().now();
    let service = if firehose_op.is_some() { "firehose" } else { "kinesis" };
    let principal = match sigv4::verify(auth, parts, raw.clone(), service, now).await {
        Ok(p) => p,
        Err(e) => {
            auth.record_failure(ip);
            let claimed = sigv4::claimed_key(auth, parts);
            denied(e.reason(), claimed.as_deref().unwrap_or("anonymous"), "");
            let status = if e == SigV4Error::Missing {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::BAD_REQUEST
            };
            return Err(Fault::new(status, e.type_name(), e.message()));
        }
    };
    if !principal.cidrs.is_empty() && !principal.cidrs.iter().any(|n| n.contains(&ip)) {
        denied("source_not_allowed", &principal.name, "");
        return Err(DsError::AccessDenied(format!(
            "User: {} is not authorized to call from {ip}",
            principal.name
        ))
        .into());
    }
    let who = Identity::Principal(principal);
    let body = codec.request(&raw)?;
    if let Some(op) = firehose_op {
        let outcome = firehose::run(state, &who, op, &body).await;
        if let Err(f) = &outcome
            && f.type_name() == "AccessDeniedException"
        {
            denied("not_granted", who.name(), "");
        }
        return outcome;
    }
    let op = target.and_then(|t| t.strip_prefix(TARGET_PREFIX)).unwrap_or("");
    if let Err(e) = access::check(auth, &state.data, &who, op, &body) {
        denied("not_granted", who.name(), "");
        return Err(e.into());
    }
    match run(&state.data, target, &body).await? {
        Reply::Value(v) if op == "ListStreams" => {
            Ok(Reply::Value(access::filter_list(auth, &who, v)))
        }
        reply => Ok(reply),
    }
}

/// Reads up to `limit` bytes of `body` and drops them.
async fn discard(body: Body, limit: usize) {
    use http_body_util::BodyExt;
    let mut body = http_body_util::Limited::new(body, limit);
    while let Some(Ok(_)) = body.frame().await {}
}

fn request_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The body's encoding, chosen by the request's `Content-Type`: JSON 1.1, or CBOR 1.1
/// ([`cbor`]); the answer is in the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Json,
    Cbor,
}

impl Codec {
    pub fn of(content_type: Option<&str>) -> Codec {
        match content_type {
            Some(t) if t.starts_with("application/x-amz-cbor") => Codec::Cbor,
            _ => Codec::Json,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Codec::Json => CONTENT_TYPE,
            Codec::Cbor => CBOR_CONTENT_TYPE,
        }
    }

    /// The request body as the JSON the operations decode.
    fn request(self, raw: &Bytes) -> Result<Bytes, Fault> {
        match self {
            Codec::Json => Ok(raw.clone()),
            Codec::Cbor => Ok(cbor::request_to_json(raw)?.into()),
        }
    }
}

/// What an operation answers, before it is encoded.
pub enum Reply {
    Value(serde_json::Value),
    /// GetRecords, written straight into the answer's encoding.
    Records(GetRecordsOutput),
    /// SubscribeToShard: an event stream follows.
    Subscription(Subscription),
}

/// A refused or failed request: its status, exception name and message.
#[derive(Debug)]
pub struct Fault {
    status: StatusCode,
    type_name: &'static str,
    message: String,
}

impl Fault {
    fn new(status: StatusCode, type_name: &'static str, message: impl Into<String>) -> Fault {
        Fault { status, type_name, message: message.into() }
    }

    pub fn type_name(&self) -> &'static str {
        self.type_name
    }
}

impl From<DsError> for Fault {
    fn from(e: DsError) -> Fault {
        let status = if e.is_server_fault() {
            tracing::error!(error = %e, "kinesis request failed");
            StatusCode::INTERNAL_SERVER_ERROR
        } else if matches!(e, DsError::Unavailable(_)) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_REQUEST
        };
        Fault::new(status, e.type_name(), e.message())
    }
}

pub type Outcome = Result<Reply, Fault>;

/// The answer's status and body in `codec`.
pub fn encode(codec: Codec, outcome: Outcome) -> (StatusCode, Vec<u8>) {
    match (outcome, codec) {
        (Ok(Reply::Value(v)), Codec::Json) => {
            (StatusCode::OK, serde_json::to_vec(&v).unwrap_or_else(|_| b"{}".to_vec()))
        }
        (Ok(Reply::Value(v)), Codec::Cbor) => (StatusCode::OK, cbor::json_to_cbor(&v)),
        (Ok(Reply::Records(out)), Codec::Json) => (StatusCode::OK, get_records_body(&out)),
        (Ok(Reply::Records(out)), Codec::Cbor) => {
            let children = out
                .child_shards
                .as_ref()
                .map(|c| serde_json::Value::Array(c.iter().map(child_json).collect()));
            let position = ops::Position::Next(out.next_shard_iterator.as_deref());
            let millis = out.millis_behind_latest;
            (
                StatusCode::OK,
                cbor::records_to_cbor(&out.records, millis, position, children.as_ref()),
            )
        }
        (Ok(Reply::Subscription(_)), codec) => encode(
            codec,
            Err(DsError::Internal("a subscription is answered as an event stream".into()).into()),
        ),
        (Err(f), codec) => {
            let body = json!({ "__type": f.type_name, "message": f.message });
            let bytes = match codec {
                Codec::Json => serde_json::to_vec(&body).unwrap_or_default(),
                Codec::Cbor => cbor::json_to_cbor(&body),
            };
            (f.status, bytes)
        }
    }
}

/// Runs one request and encodes its answer: `target` is the `X-Amz-Target` header, `body` the
/// request in `codec`. Never panics on client input.
pub async fn dispatch(
    ds: &Arc<DataStreams>,
    target: Option<&str>,
    body: &[u8],
    codec: Codec,
) -> (StatusCode, Vec<u8>) {
    let outcome = match codec.request(&Bytes::copy_from_slice(body)) {
        Ok(json) => run(ds, target, &json).await,
        Err(f) => Err(f),
    };
    encode(codec, outcome)
}

/// Runs one operation on its JSON request body.
async fn run(ds: &Arc<DataStreams>, target: Option<&str>, body: &[u8]) -> Outcome {
    let Some(op) = target.and_then(|t| t.strip_prefix(TARGET_PREFIX)) else {
        return Err(unknown_operation(target));
    };
    let body = if body.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { body };
    match op {
        // Writes: appended on the blocking pool, then durability is awaited.
        "PutRecord" => Ok(Reply::Value(put_record(ds, body).await?)),
        "PutRecords" => Ok(Reply::Value(put_records(ds, body).await?)),
        // Opens at once (one record's entry read at most); the events follow as a stream.
        "SubscribeToShard" => Ok(Reply::Subscription(subscribe::open(ds, body)?)),
        // Everything else reads or changes the catalog and the logs: on the blocking pool.
        _ => {
            let (ds, op, body, target) =
                (ds.clone(), op.to_owned(), body.to_vec(), target.map(str::to_owned));
            tokio::task::spawn_blocking(move || {
                blocking_operation(&ds, &op, &body, target.as_deref())
            })
            .await
            .unwrap_or_else(|e| Err(DsError::Internal(format!("request task: {e}")).into()))
        }
    }
}

/// Every operation but the puts, synchronously.
fn blocking_operation(ds: &DataStreams, op: &str, body: &[u8], target: Option<&str>) -> Outcome {
    let result = match op {
        "CreateStream" => create_stream(ds, body),
        "DeleteStream" => delete_stream(ds, body),
        "DescribeStream" => describe_stream(ds, body),
        "DescribeStreamSummary" => describe_stream_summary(ds, body),
        "ListStreams" => list_streams(ds, body),
        "ListShards" => list_shards(ds, body),
        "GetShardIterator" => get_shard_iterator(ds, body),
        "GetRecords" => return Ok(Reply::Records(get_records(ds, body)?)),
        "IncreaseStreamRetentionPeriod" => retention(ds, body, true),
        "DecreaseStreamRetentionPeriod" => retention(ds, body, false),
        "AddTagsToStream" => settings::add_tags(ds, body),
        "RemoveTagsFromStream" => settings::remove_tags(ds, body),
        "ListTagsForStream" => settings::list_tags(ds, body),
        "SplitShard" => split_shard(ds, body),
        "MergeShards" => merge_shards(ds, body),
        "UpdateShardCount" => update_shard_count(ds, body),
        "UpdateStreamMode" => update_stream_mode(ds, body),
        "UpdateMaxRecordSize" => update_max_record_size(ds, body),
        "StartStreamEncryption" => settings::encryption(ds, body, true),
        "StopStreamEncryption" => settings::encryption(ds, body, false),
        "EnableEnhancedMonitoring" => settings::monitoring(ds, body, true),
        "DisableEnhancedMonitoring" => settings::monitoring(ds, body, false),
        "PutResourcePolicy" => settings::put_policy(ds, body),
        "GetResourcePolicy" => settings::get_policy(ds, body),
        "DeleteResourcePolicy" => settings::delete_policy(ds, body),
        "RegisterStreamConsumer" => consumers::register_consumer(ds, body),
        "DeregisterStreamConsumer" => consumers::deregister_consumer(ds, body),
        "ListStreamConsumers" => consumers::list_consumers(ds, body),
        "DescribeStreamConsumer" => consumers::describe_consumer(ds, body),
        "DescribeLimits" => Ok(describe_limits(ds)),
        "UpdateStreamWarmThroughput" => settings::warm_throughput(ds, body),
        "DescribeAccountSettings" => settings::describe_account(ds),
        "TagResource" => settings::tag_resource(ds, body),
        "UntagResource" => settings::untag_resource(ds, body),
        "ListTagsForResource" => settings::list_tags_for_resource(ds, body),
        "UpdateAccountSettings" => settings::update_account(ds, body),
        _ => return Err(unknown_operation(target)),
    };
    Ok(Reply::Value(result?))
}

pub(super) fn unknown_operation(target: Option<&str>) -> Fault {
    Fault::new(
        StatusCode::BAD_REQUEST,
        "UnknownOperationException",
        format!("Unknown operation {:?}", target.unwrap_or("")),
    )
}

// ---- decoding ---------------------------------------------------------------------------------

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, DsError> {
    parse_borrowed(body)
}

/// Like [`parse`], for request types that borrow strings from the body.
fn parse_borrowed<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, DsError> {
    serde_json::from_slice(body).map_err(|e| DsError::Serialization(serialization_message(&e)))
}

/// A member of the wrong JSON type, in the words AWS's JSON 1.1 front end uses (its Java type
/// names: `class java.math.BigDecimal can not be converted to an String`, `Start of list found
/// where not expected`, …); any other fault of the body names serde's finding.
fn serialization_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let Some((got, expected)) =
        text.strip_prefix("invalid type: ").and_then(|r| r.split_once(", expected "))
    else {
        return format!("Invalid request body: {text}");
    };
    let expected = expected.rsplit_once(" at line ").map_or(expected, |x| x.0);
    let target = match expected {
        "a string" | "a borrowed string" => "String",
        "a boolean" => "Boolean",
        "a sequence" => "List",
        "a map" => "Map",
        e if e.starts_with("struct ") => "Structure",
        e if e.starts_with('i') || e.starts_with('u') => "Integer",
        "f64" | "f32" => "Double",
        _ => return format!("Invalid request body: {text}"),
    };
    let kind = got.split(' ').next().unwrap_or(got);
    match (kind, target) {
        ("sequence", "List") | ("map", "Map" | "Structure") => {
            format!("Invalid request body: {text}")
        }
        ("sequence", _) => "Start of list found where not expected".to_owned(),
        ("map", _) => "Start of structure or map found where not expected.".to_owned(),
        (_, "List") => "Expected list or null".to_owned(),
        (_, "Map") => "Expected map or null".to_owned(),
        (_, "Structure") => "Expected null".to_owned(),
        ("string", "Boolean") => {
            let v = got.strip_prefix("string ").unwrap_or(got).trim_matches('"');
            format!("'{}' can not be converted to an Boolean", v.to_uppercase())
        }
        ("integer" | "floating", t) => {
            format!("class java.math.BigDecimal can not be converted to an {t}")
        }
        ("boolean", t) => format!("class java.lang.Boolean can not be converted to an {t}"),
        ("string", t) => format!("class java.lang.String can not be converted to an {t}"),
        _ => format!("Invalid request body: {text}"),
    }
}

/// A required member: `ValidationException` naming it (camelCase, as Kinesis does) when absent.
fn required<T>(v: Option<T>, member: &str) -> Result<T, DsError> {
    v.ok_or_else(|| {
        DsError::Validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// A base64 blob member; a bad one is `SerializationException` worded as AWS words it.
fn blob(s: &str, _member: &str) -> Result<Bytes, DsError> {
    STANDARD.decode(s.as_bytes()).map(Bytes::from).map_err(|_| {
        let shown: String = s.chars().take(64).collect();
        let why = if !s.len().is_multiple_of(4) {
            format!(
                "Base64 encoded length is expected a multiple of 4 bytes but found: {}",
                s.len()
            )
        } else if let Some(c) =
            s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')))
        {
            format!("Invalid Base64 character: '{c}'")
        } else {
            // (sic: AWS's spelling)
            "Invalid last non-pad Base64 character dectected".to_owned()
        };
        DsError::Serialization(format!("'{shown}' can not be converted to a Blob: {why}"))
    })
}
