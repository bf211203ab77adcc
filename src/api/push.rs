//! The HTTP adapter of fMP4 push (`crate::ingest::http_fmp4`): `PUT` (or `POST`)
//! `/v1/streams/{name}/media`, answered 200 with `application/x-ndjson` acknowledgements streamed
//! while the upload goes on (or, with `acks=end`, after it).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use futures_util::StreamExt;
use serde::Deserialize;

use super::ApiState;
use super::error::{ApiQuery, ApiResult};
use super::path::StreamPath;
use crate::clock::Timestamp;
use crate::error::Error;
use crate::ingest::acks;
use crate::ingest::http_fmp4::{BodyStream, Format, Push};
use crate::video::writer::TimestampMode;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/streams/{name}/media", put(push).post(push))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PushQuery {
    #[serde(default)]
    timestamps: TimestampsParam,
    producer_start: Option<String>,
    acks: Option<AckDelivery>,
}

/// When acknowledgements are sent.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum AckDelivery {
    /// As they happen, while the upload goes on (the default).
    Stream,
    /// The response (status line included) only after the body ends. The default for ffmpeg
    /// (`User-Agent: Lavf/…`), which never reads the response while it uploads: if it closes the
    /// socket with unread response bytes, the kernel resets the connection and the end of its
    /// own upload, still queued on our side, is discarded.
    End,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum TimestampsParam {
    #[default]
    Relative,
    Absolute,
}

async fn push(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    ApiQuery(q): ApiQuery<PushQuery>,
    req: Request,
) -> ApiResult<Response> {
    let mode = match (q.timestamps, q.producer_start.as_deref()) {
        (TimestampsParam::Absolute, Some(_)) => {
            return Err(Error::invalid("producerStart only applies to timestamps=relative").into());
        }
        (TimestampsParam::Absolute, None) => TimestampMode::Absolute,
        (TimestampsParam::Relative, start) => TimestampMode::Relative {
            start: start
                .map(|s| {
                    Timestamp::parse_api(s)
                        .map_err(|e| Error::invalid(format!("producerStart: {e}")))
                })
                .transpose()?,
        },
    };
    let delivery = q.acks.unwrap_or_else(|| {
        let ua = req.headers().get(header::USER_AGENT).map(|v| v.as_bytes()).unwrap_or_default();
        if ua.starts_with(b"Lavf/") { AckDelivery::End } else { AckDelivery::Stream }
    });
    let remote_addr = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.to_string());
    let push = Push::claim(
        stream,
        state.video.clock().clone(),
        state.config.ingest.clone(),
        state.memory.clone(),
        (Format::Fmp4, mode),
        remote_addr,
    )?;

    // A client that sent `Expect: 100-continue` (curl -T does) waits for "100 Continue" before
    // sending the body; hyper sends it when the body is first polled, which must happen before
    // our 200 goes out, so read the first chunk here.
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut data = req.into_body().into_data_stream().map(|r| r.map_err(|e| e.into()));
    let first = if expects_continue { data.next().await } else { None };
    let data: BodyStream = Box::pin(futures_util::stream::iter(first).chain(data));

    let (ack_tx, ack_rx) = acks::channel(
        state.config.ingest.ack_queue,
        delivery == AckDelivery::End,
        state.metrics.clone(),
    );
    let session_task = push.start(data, ack_tx);
    if delivery == AckDelivery::End {
        // Nothing, not even the status line, goes out before the body has been read: a client
        // that does not read while it uploads must find its receive buffer empty when it closes.
        let _ = session_task.await;
    }

    let body = Body::from_stream(futures_util::stream::unfold(ack_rx, |mut rx| async move {
        rx.recv().await.map(|line| (Ok::<_, std::convert::Infallible>(line), rx))
    }));
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
