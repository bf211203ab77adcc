//! `GET /v1/streams/{name}/media`: the stream as one fMP4 byte stream (init segment, then
//! fragments, with a new init segment wherever the codec configuration changes), starting at
//! `now`, `earliest`, a timestamp or `fragment:<n>`, and following live data until the client
//! goes away, the stream is deleted or the server shuts down. ffmpeg, ffplay and GStreamer read
//! it directly. Playback starts on a segment start (a keyframe), never mid-GOP.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::ApiState;
use super::error::{ApiQuery, ApiResult};
use super::path::StreamPath;
use crate::clock::Timestamp;
use crate::error::Error;
use crate::video::VideoStream;
use crate::video::fragment::{FragmentInfo, FragmentNumber, TimestampKind};
use crate::video::serve::Wake;

pub fn routes() -> Router<ApiState> {
    // GET only: PUT/POST on the same path are ingest (crate::ingest::http_fmp4).
    Router::new().route("/v1/streams/{name}/media", get(tail))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TailQuery {
    #[serde(default = "default_start")]
    start: String,
    #[serde(default)]
    timestamps: TimestampKind,
}

fn default_start() -> String {
    "now".into()
}

/// Where a tail begins.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Start {
    Now,
    Earliest,
    At(Timestamp),
    Fragment(FragmentNumber),
}

fn parse_start(s: &str) -> Result<Start, Error> {
    match s {
        "now" => Ok(Start::Now),
        "earliest" => Ok(Start::Earliest),
        _ => {
            if let Some(n) = s.strip_prefix("fragment:") {
                let n = n.parse().map_err(|_| {
                    Error::invalid(format!("start: {s:?} is not fragment:<number>"))
                })?;
                return Ok(Start::Fragment(FragmentNumber(n)));
            }
            Timestamp::parse_api(s).map(Start::At).map_err(|e| {
                Error::invalid(format!(
                    "start: expected now, earliest, fragment:<n> or a timestamp: {e}"
                ))
            })
        }
    }
}

async fn tail(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    ApiQuery(q): ApiQuery<TailQuery>,
) -> ApiResult<Response> {
    let start = parse_start(&q.start)?;
    let clock = q.timestamps;
    let (first, end) = (stream.first_retained(), stream.committed_end());
    let (cursor, wait_for_keyframe) = match start {
        Start::Now => (end, true),
        Start::Earliest => (first, true),
        Start::Fragment(n) => {
            if n < first || n >= end {
                return Err(Error::not_found(format!(
                    "stream {} has no fragment {} (stored: {} to {})",
                    stream.name,
                    n.0,
                    first.0,
                    end.0.saturating_sub(1)
                ))
                .into());
            }
            (stream.segment_start_at_or_before(n)?, false)
        }
        Start::At(t) => {
            match stream.read(move |s| s.segments_in_range(clock, Some(t), None)).await?.first() {
                Some(s) => (s.first, false),
                None => (end, true),
            }
        }
    };
    let tail = Tail {
        stream: stream.clone(),
        cursor,
        wait_for_keyframe,
        current_init: None,
        pending: Vec::new(),
        out: std::collections::VecDeque::new(),
        stop: state.shutdown.clone(),
    };
    let body = Body::from_stream(futures_util::stream::unfold(tail, |mut t| async move {
        match t.next_chunk().await {
            Ok(Some(b)) => Some((Ok::<Bytes, std::io::Error>(b), t)),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e.message)), t)),
        }
    }));
    let mut resp = body.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The state of one tail: where it is in the log and which init segment the client has.
struct Tail {
    stream: Arc<VideoStream>,
    cursor: FragmentNumber,
    wait_for_keyframe: bool,
    current_init: Option<u32>,
    pending: Vec<FragmentInfo>,
    /// Bytes ready to send (an init segment, a fragment's retimed slices), without copying.
    out: std::collections::VecDeque<Bytes>,
    stop: CancellationToken,
}

impl Tail {
    /// The next bytes to send; `None` ends the response.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            if let Some(b) = self.out.pop_front() {
                return Ok(Some(b));
            }
            if self.pending.is_empty() {
                let end = self.stream.committed_end();
                let first = self.stream.first_retained();
                if self.cursor < first {
                    // Retention overtook a slow reader: skip ahead to what still exists.
                    self.cursor = first;
                    self.wait_for_keyframe = true;
                }
                if self.cursor >= end {
                    let far = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
                    let wake = tokio::select! {
                        w = self.stream.wait_for_media(self.cursor, far, false) => w,
                        _ = self.stop.cancelled() => return Ok(None),
                    };
                    if wake == Wake::Closed {
                        return Ok(None);
                    }
                    continue;
                }
                self.pending = self.stream.infos(self.cursor, end, 64)?;
                self.pending.reverse();
                if self.pending.is_empty() {
                    self.cursor = end;
                    continue;
                }
            }
            let Some(f) = self.pending.pop() else { continue };
            self.cursor = FragmentNumber(f.number.0 + 1);
            if self.wait_for_keyframe {
                if !f.meta.segment_start() {
                    continue;
                }
                self.wait_for_keyframe = false;
            }
            let Some((_, parts)) = self.stream.read_fragment_for_playback(f.number)? else {
                continue;
            };
            if self.current_init != Some(f.meta.init_id) {
                let id = f.meta.init_id;
                let init =
                    self.stream.read(move |s| s.served_init(id)).await?.ok_or_else(|| {
                        Error::internal(format!("init segment {} is missing", f.meta.init_id))
                    })?;
                self.current_init = Some(f.meta.init_id);
                self.out.push_back(init);
            }
            self.out.extend(parts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_start_selectors() {
        assert_eq!(parse_start("now").unwrap(), Start::Now);
        assert_eq!(parse_start("earliest").unwrap(), Start::Earliest);
        assert_eq!(parse_start("fragment:12").unwrap(), Start::Fragment(FragmentNumber(12)));
        assert!(parse_start("fragment:x").is_err());
        assert_eq!(parse_start("1000").unwrap(), Start::At(Timestamp::from_millis(1000)));
        assert!(parse_start("soon").is_err());
    }
}
