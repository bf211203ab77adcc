//! The AWS Kinesis Data Streams wire protocol (JSON 1.1): `POST /` with
//! `X-Amz-Target: Kinesis_20131202.<Operation>`, a JSON body with the API reference's PascalCase
//! members, blobs in base64 and timestamps in epoch seconds. With `[auth] enabled`, every request
//! must be signed (SigV4, service `kinesis`) by a Sluice access key holding the grant the
//! operation needs ([`access`]); otherwise any `Authorization` header is ignored. Errors are HTTP 400 `{"__type":"<Exception>","message":"…"}`
//! (500 `InternalFailure` for faults); an unknown target is `UnknownOperationException`.
//!
//! A thin adapter: this module is the wire (routing by target, body limits, error bodies, member
//! decoding helpers); [`ops`] has one function per operation, which decodes its members, calls
//! one `DataStreams` method (which checks every constraint) and encodes the answer. The semantics
//! live in `crate::datastream`; docs/kinesis.md describes the surface.

pub mod access;
mod ops;
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
use crate::datastream::{DataStreams, DsError};
use crate::events::sink::Denial;
use crate::memory::Part;
use ops::*;

/// The `X-Amz-Target` prefix of Kinesis Data Streams operations.
pub const TARGET_PREFIX: &str = "Kinesis_20131202.";
/// Largest request body: a 5 MiB PutRecords in base64 (≈ 6.7 MiB) plus JSON framing.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

pub fn routes() -> Router<ApiState> {
    Router::new().route("/", post(handle))
}

async fn handle(State(state): State<ApiState>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (status, out) = if content_type.starts_with("application/x-amz-cbor") {
        error_body(&DsError::Serialization(
            "CBOR is not supported; use JSON (for the Java SDK and KCL set AWS_CBOR_DISABLE=1)"
                .to_owned(),
        ))
    } else {
        // The body and what is decoded from it (records' data) coexist: twice its size, taken
        // from the memory budget before the body is read when its length is declared.
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .map_or(MAX_BODY, |n| n.min(MAX_BODY));
        match state.memory.reserve(Part::Kinesis, 2 * declared) {
            Err(e) => {
                // Read the body to its end without keeping it, so the client, still sending,
                // gets the answer rather than a reset connection.
                discard(body, MAX_BODY).await;
                error_body(&DsError::Unavailable(e.to_string()))
            }
            Ok(mut memory) => match axum::body::to_bytes(body, MAX_BODY).await {
                Ok(bytes) => {
                    let _ = memory.resize(2 * bytes.len());
                    authorized(&state, &parts, target, bytes).await
                }
                Err(_) => error_body(&DsError::Serialization(format!(
                    "The request body is unreadable or larger than {MAX_BODY} bytes."
                ))),
            },
        }
    };
    let mut resp = (status, out).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(&request_id()) {
        h.insert("x-amzn-requestid", id);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

/// Verifies the signature and the grant (when auth is on), then runs the operation.
async fn authorized(
    state: &ApiState,
    parts: &axum::http::request::Parts,
    target: Option<&str>,
    bytes: Bytes,
) -> (StatusCode, Vec<u8>) {
    let auth = &state.auth;
    if !auth.enabled() {
        return dispatch(&state.data, target, &bytes).await;
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
        return auth_error(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded: too many failed authentications from this address",
        );
    }
    let now = state.video.clock().now();
    let principal = match sigv4::verify(auth, parts, bytes.clone(), "kinesis", now).await {
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
            return auth_error(status, e.type_name(), e.message());
        }
    };
    if !principal.cidrs.is_empty() && !principal.cidrs.iter().any(|n| n.contains(&ip)) {
        denied("source_not_allowed", &principal.name, "");
        return error_body(&DsError::AccessDenied(format!(
            "User: {} is not authorized to call from {ip}",
            principal.name
        )));
    }
    let who = Identity::Principal(principal);
    let op = target.and_then(|t| t.strip_prefix(TARGET_PREFIX)).unwrap_or("");
    if let Err(e) = access::check(auth, &state.data, &who, op, &bytes) {
        denied("not_granted", who.name(), "");
        return error_body(&e);
    }
    let (status, out) = dispatch(&state.data, target, &bytes).await;
    if op == "ListStreams" && status == StatusCode::OK {
        return (status, access::filter_list(auth, &who, out));
    }
    (status, out)
}

fn auth_error(status: StatusCode, type_name: &str, message: &str) -> (StatusCode, Vec<u8>) {
    let body = json!({ "__type": type_name, "message": message });
    (status, serde_json::to_vec(&body).unwrap_or_default())
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

/// Runs one request: `target` is the `X-Amz-Target` header, `body` the JSON. Returns the status
/// and the JSON response body. Never panics on client input.
pub async fn dispatch(
    ds: &Arc<DataStreams>,
    target: Option<&str>,
    body: &[u8],
) -> (StatusCode, Vec<u8>) {
    let Some(op) = target.and_then(|t| t.strip_prefix(TARGET_PREFIX)) else {
        return unknown_operation(target);
    };
    let body = if body.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { body };
    let result = match op {
        // Writes: appended on the blocking pool, then durability is awaited.
        "PutRecord" => put_record(ds, body).await,
        "PutRecords" => put_records(ds, body).await,
        // Everything else reads or changes the catalog and the logs: on the blocking pool.
        _ => {
            let (ds, op, body, target) =
                (ds.clone(), op.to_owned(), body.to_vec(), target.map(str::to_owned));
            return tokio::task::spawn_blocking(move || {
                blocking_operation(&ds, &op, &body, target.as_deref())
            })
            .await
            .unwrap_or_else(|e| error_body(&DsError::Internal(format!("request task: {e}"))));
        }
    };
    answer(result)
}

fn answer(result: Result<serde_json::Value, DsError>) -> (StatusCode, Vec<u8>) {
    match result {
        Ok(v) => (StatusCode::OK, serde_json::to_vec(&v).unwrap_or_else(|_| b"{}".to_vec())),
        Err(e) => error_body(&e),
    }
}

/// Every operation but the puts, synchronously.
fn blocking_operation(
    ds: &DataStreams,
    op: &str,
    body: &[u8],
    target: Option<&str>,
) -> (StatusCode, Vec<u8>) {
    let result = match op {
        "CreateStream" => create_stream(ds, body),
        "DeleteStream" => delete_stream(ds, body),
        "DescribeStream" => describe_stream(ds, body),
        "DescribeStreamSummary" => describe_stream_summary(ds, body),
        "ListStreams" => list_streams(ds, body),
        "ListShards" => list_shards(ds, body),
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
    answer(result)
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
    } else if matches!(e, DsError::Unavailable(_)) {
        StatusCode::SERVICE_UNAVAILABLE
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
