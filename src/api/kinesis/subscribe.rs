//! SubscribeToShard on the wire: the request's members, then an AWS event stream
//! (`application/vnd.amazon.eventstream`: prelude, headers and payload, each message with its
//! CRC32s, framed by `aws-smithy-eventstream`). The first message is `initial-response`; then one
//! `SubscribeToShardEvent` per event of the subscription (`crate::datastream::subscribe`), its
//! payload in the request's encoding (JSON with base64 data, or CBOR with byte strings); an error
//! after the stream began is an `exception` message naming the Kinesis exception. The response
//! ends when the subscription does, or at shutdown.

use std::convert::Infallible;

use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::body::Body;
use axum::http::{HeaderValue as HttpHeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::ops::{Position, records_json};
use super::{Codec, cbor, child_json, parse, required};
use crate::datastream::{DataStreams, DsError, IteratorStart, SubscribeEvent, Subscription};

/// Opens the subscription a SubscribeToShard request asks for.
pub(super) fn open(ds: &std::sync::Arc<DataStreams>, body: &[u8]) -> Result<Subscription, DsError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Start {
        #[serde(rename = "Type")]
        kind: Option<String>,
        sequence_number: Option<String>,
        timestamp: Option<f64>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct In {
        #[serde(rename = "ConsumerARN")]
        consumer_arn: Option<String>,
        shard_id: Option<String>,
        starting_position: Option<Start>,
    }
    let r: In = parse(body)?;
    let consumer = required(r.consumer_arn, "consumerARN")?;
    let shard = required(r.shard_id, "shardId")?;
    let start = required(r.starting_position, "startingPosition")?;
    let kind = required(start.kind, "startingPosition.type")?;
    let start = IteratorStart::from_wire(&kind, start.sequence_number.as_deref(), start.timestamp)?;
    ds.subscribe_to_shard(&consumer, &shard, start)
}

fn message(
    kind: &'static str,
    name: &'static str,
    content_type: &'static str,
    payload: Vec<u8>,
) -> Bytes {
    let type_header = if kind == "exception" { ":exception-type" } else { ":event-type" };
    let m = Message::new(payload)
        .add_header(Header::new(":message-type", HeaderValue::String(kind.into())))
        .add_header(Header::new(type_header, HeaderValue::String(name.into())))
        .add_header(Header::new(":content-type", HeaderValue::String(content_type.into())));
    let mut out = Vec::new();
    // Writing a message of bounded headers into a Vec does not fail.
    let _ = aws_smithy_eventstream::frame::write_message_to(&m, &mut out);
    out.into()
}

fn event_payload(codec: Codec, e: &SubscribeEvent) -> Vec<u8> {
    let continuation = e.continuation_sequence_number.to_string();
    let position = Position::Continuation(&continuation);
    match codec {
        Codec::Json => {
            records_json(&e.records, e.millis_behind_latest, position, e.child_shards.as_deref())
        }
        Codec::Cbor => {
            let children = e
                .child_shards
                .as_ref()
                .map(|c| serde_json::Value::Array(c.iter().map(child_json).collect()));
            cbor::records_to_cbor(&e.records, e.millis_behind_latest, position, children.as_ref())
        }
    }
}

fn exception(codec: Codec, e: &DsError) -> Bytes {
    let body = json!({ "message": e.message() });
    let payload = match codec {
        Codec::Json => serde_json::to_vec(&body).unwrap_or_default(),
        Codec::Cbor => cbor::json_to_cbor(&body),
    };
    message("exception", e.type_name(), codec.content_type(), payload)
}

/// The streaming response of an open subscription.
pub(super) fn response(sub: Subscription, codec: Codec, stop: CancellationToken) -> Response {
    let initial = match codec {
        Codec::Json => b"{}".to_vec(),
        Codec::Cbor => cbor::json_to_cbor(&json!({})),
    };
    let first = message("event", "initial-response", codec.content_type(), initial);
    struct State {
        sub: Subscription,
        first: Option<Bytes>,
        done: bool,
    }
    let state = State { sub, first: Some(first), done: false };
    let frames = futures_util::stream::unfold(state, move |mut s| {
        let stop = stop.clone();
        async move {
            if let Some(first) = s.first.take() {
                return Some((Ok::<_, Infallible>(first), s));
            }
            if s.done {
                return None;
            }
            let next = tokio::select! {
                n = s.sub.next() => n,
                _ = stop.cancelled() => return None,
            };
            match next {
                Ok(Some(e)) => {
                    let frame = message(
                        "event",
                        "SubscribeToShardEvent",
                        codec.content_type(),
                        event_payload(codec, &e),
                    );
                    Some((Ok(frame), s))
                }
                Ok(None) => None,
                Err(e) => {
                    s.done = true;
                    Some((Ok(exception(codec, &e)), s))
                }
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(frames));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HttpHeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    resp
}
