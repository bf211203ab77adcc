//! KVS PutMedia: `POST /putMedia`, what kvssink and the KVS producer SDKs send — a chunked
//! Matroska body for as long as the producer streams, named and timed by headers
//! (`x-amzn-stream-name` or `x-amzn-stream-arn`, `x-amzn-fragment-timecode-type`
//! `ABSOLUTE`|`RELATIVE`, `x-amzn-producer-start-timestamp` in epoch seconds), answered with the
//! same acknowledgements as the native push, streamed as they happen (BUFFERING, RECEIVED,
//! PERSISTED, IDLE, ERROR with KVS's codes). The body is read by the native push's session
//! (`crate::ingest::http_fmp4`, `Format::Matroska`), remuxed to fMP4 as it arrives: one producer
//! per stream, the same limits, the same store.
//!
//! A `Tags` element before a Cluster tags that fragment: one with `AWS_KINESISVIDEO_NOTIFICATION`
//! is notified once durable, as the stream's notification configuration says (`crate::notify`).
//!
//! SigV4 signs a streamed body as the empty payload (the producer SDKs sign
//! `e3b0c442…b855`), so the signature is checked over an empty body.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;

use super::control::Ctx;
use super::{KvsError, authenticate, request_id, with_id};
use crate::api::ApiState;
use crate::config::Action;
use crate::ingest::acks;
use crate::ingest::http_fmp4::{BodyStream, Format, Push};
use crate::video::writer::TimestampMode;

pub async fn put_media(State(state): State<ApiState>, req: Request) -> Response {
    let id = request_id();
    let (parts, body) = req.into_parts();
    let result = async {
        let who = authenticate(&state, &parts, Bytes::new()).await?;
        let ctx = Ctx { state: &state, who: &who, headers: &parts.headers };
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let target = json!({
            "StreamName": header("x-amzn-stream-name"),
            "StreamARN": header("x-amzn-stream-arn"),
        });
        if target["StreamName"].is_null() && target["StreamARN"].is_null() {
            return Err(KvsError::invalid(
                "PutMedia needs the x-amzn-stream-name or x-amzn-stream-arn header.",
            ));
        }
        let origin_ns = origin(&parts.headers, &state)?;
        let stream = ctx.stream(&target, "StreamARN")?;
        ctx.allow("PutMedia", Action::Publish, stream.name.as_str())?;
        let remote = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.to_string());
        let push = Push::claim(
            stream,
            state.video.clock().clone(),
            state.config.ingest.clone(),
            state.memory.clone(),
            (Format::Matroska { origin_ns }, TimestampMode::Absolute),
            remote,
        )?
        .with_tagged(state.notifications.clone());
        let data: BodyStream = Box::pin(body.into_data_stream().map(|r| r.map_err(|e| e.into())));
        let (ack_tx, ack_rx) =
            acks::channel(state.config.ingest.ack_queue, false, state.metrics.clone());
        push.start(data, ack_tx);
        let body = Body::from_stream(futures_util::stream::unfold(ack_rx, |mut rx| async move {
            rx.recv().await.map(|line| (Ok::<_, std::convert::Infallible>(line), rx))
        }));
        let mut resp = body.into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok::<_, KvsError>(resp)
    }
    .await;
    with_id(result.unwrap_or_else(IntoResponse::into_response), &id)
}

/// What a cluster timecode of 0 is, in nanoseconds since the Unix epoch: 0 for `ABSOLUTE`
/// timecodes; for `RELATIVE` ones the producer's start (`x-amzn-producer-start-timestamp`, epoch
/// seconds), or the connection's time without one.
fn origin(headers: &HeaderMap, state: &ApiState) -> Result<i128, KvsError> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let start = match get("x-amzn-producer-start-timestamp") {
        None => None,
        Some(s) => Some(
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1.0e11)
                .ok_or_else(|| {
                    KvsError::invalid(format!(
                        "x-amzn-producer-start-timestamp {s:?} is not epoch seconds."
                    ))
                })?,
        ),
    };
    match get("x-amzn-fragment-timecode-type") {
        Some("ABSOLUTE") => Ok(0),
        Some("RELATIVE") => Ok(match start {
            Some(s) => (s * 1e9).round() as i128,
            None => i128::from(state.video.clock().now().as_micros()) * 1000,
        }),
        Some(other) => Err(KvsError::invalid(format!(
            "x-amzn-fragment-timecode-type {other:?} is not ABSOLUTE or RELATIVE."
        ))),
        None => Err(KvsError::invalid(
            "PutMedia needs the x-amzn-fragment-timecode-type header (ABSOLUTE or RELATIVE).",
        )),
    }
}
