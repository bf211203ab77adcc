//! Clip export: `GET /v1/streams/{name}/clip.mp4?start&end&timestamps&format`.
//!
//! `format=mp4` (default) is a progressive MP4 built by [`crate::media::mp4clip`]: the fragments
//! of the range are read once for their sample tables (the sample bytes are dropped), the moov is
//! built, then the body is streamed by reading the fragments again one by one and emitting only
//! the kept samples' byte ranges. `format=fmp4` is the init segment plus the range's fragments,
//! retimed as HLS serves them. Both have a Content-Length known up front, an ETag and single
//! byte-range support computed over the virtual body (only the fragments a range touches are
//! read).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;

use super::ApiState;
use super::error::{ApiQuery, ApiResult};
use super::params::{Bounds, TimeRange};
use super::path::StreamPath;
use crate::clock::Timestamp;
use crate::error::Error;
use crate::media::fmp4::samples;
use crate::media::mp4clip;
use crate::video::VideoStream;
use crate::video::fragment::{FragmentInfo, FragmentNumber, TimestampKind};

pub fn routes() -> Router<ApiState> {
    Router::new().route("/v1/streams/{name}/clip.mp4", get(clip))
}

/// How far before `start` a clip looks for frames presented at `start` but decoded earlier (the
/// B-frame reordering delay is far below this in practice).
const PRE_ROLL_US: i64 = 500_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Format {
    #[default]
    Mp4,
    Fmp4,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClipQuery {
    start: Option<String>,
    end: Option<String>,
    #[serde(default)]
    timestamps: TimestampKind,
    #[serde(default)]
    format: Format,
}

/// One part of the response body.
#[derive(Debug, Clone)]
enum Part {
    /// Bytes computed up front (the MP4 head, the init segment).
    Static(Bytes),
    /// A byte range of a stored fragment.
    Slice { fragment: FragmentNumber, offset: u64, len: u64 },
    /// A whole fragment, retimed for playback (same length as stored).
    Retimed { fragment: FragmentNumber, len: u64 },
}

impl Part {
    fn len(&self) -> u64 {
        match self {
            Part::Static(b) => b.len() as u64,
            Part::Slice { len, .. } | Part::Retimed { len, .. } => *len,
        }
    }
}

async fn clip(
    StreamPath(stream): StreamPath,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ClipQuery>,
) -> ApiResult<Response> {
    let (start, end) = TimeRange::parse(&q.start, &q.end, Bounds::HalfOpen)?.required()?;
    Ok(serve(stream, &headers, q.timestamps, q.format, start, end).await?)
}

/// A progressive MP4 of `[start, end)` on `clock`, with byte ranges (the KVS API's GetClip).
pub async fn mp4(
    stream: Arc<VideoStream>,
    headers: &HeaderMap,
    clock: TimestampKind,
    start: Timestamp,
    end: Timestamp,
) -> Result<Response, Error> {
    serve(stream, headers, clock, Format::Mp4, start, end).await
}

async fn serve(
    stream: Arc<VideoStream>,
    headers: &HeaderMap,
    timestamps: TimestampKind,
    format: Format,
    start: Timestamp,
    end: Timestamp,
) -> Result<Response, Error> {
    // Planning reads every fragment of the range (their samples, for MP4): on the blocking pool.
    let clock = timestamps;
    let Planned { first, last, parts } =
        stream.read(move |s| plan(s, clock, format, start, end)).await?;
    let fmt = match format {
        Format::Mp4 => "mp4",
        Format::Fmp4 => "fmp4",
    };
    let clock = match timestamps {
        TimestampKind::Producer => "p",
        TimestampKind::Server => "s",
    };
    let etag = format!(
        // c2: fMP4 clips carry decode times on the stream timeline; c3: and B-frame video's
        // start edit in their init.
        "\"c3-{}-{}-{}-{}-{}-{clock}-{fmt}\"",
        stream.id,
        first.0,
        last.0,
        start.as_micros(),
        end.as_micros()
    );
    let filename = format!("{}-{}-{}.mp4", stream.name, start.as_millis(), end.as_millis());
    Ok(serve_parts(stream, headers, &etag, &filename, parts))
}

/// What a clip is made of: the fragments it spans and the parts of its body.
struct Planned {
    first: FragmentNumber,
    last: FragmentNumber,
    parts: Vec<Part>,
}

/// Plans the clip of `[start, end)` on `clock`: which fragments, and (for MP4) the head and the
/// sample ranges of each fragment.
fn plan(
    stream: &VideoStream,
    clock: TimestampKind,
    format: Format,
    start: Timestamp,
    end: Timestamp,
) -> Result<Planned, Error> {
    let segs = stream.segments_in_range(clock, Some(start), Some(end))?;
    let no_media = || {
        Error::not_found(format!(
            "stream {} has no media between {} and {}",
            stream.name,
            start.to_rfc3339(),
            end.to_rfc3339()
        ))
    };
    let (Some(first_seg), Some(last_seg)) = (segs.first(), segs.last()) else {
        return Err(no_media());
    };
    let init_id = first_seg.init_id;
    if let Some(change) = segs.iter().find(|s| s.init_id != init_id) {
        return Err(Error::invalid(format!(
            "the range crosses a change of init segment (codec or resolution) at {}: request \
             a clip ending at or before that time, and another starting there",
            change.start(clock).to_rfc3339()
        )));
    }
    let (mut first, last) = (first_seg.first, last_seg.last);
    if format == Format::Mp4 {
        // With B-frames, the frames presented at `start` may belong to the previous segment
        // (presentation runs behind decode by the reordering delay): include the segment before
        // when it is contiguous and shares the init segment. The planner keeps only the samples
        // it needs.
        let before = start.add_micros(-PRE_ROLL_US);
        let pre = stream.segments_in_range(clock, Some(before), Some(start))?;
        if let Some(p) = pre.iter().rev().find(|p| p.last.0 + 1 == first.0 && p.init_id == init_id)
        {
            first = p.first;
        }
    }
    let name = &stream.name;
    let init_bytes = stream
        .init_bytes(init_id)?
        .ok_or_else(|| Error::internal(format!("stream {name}: init segment {init_id} missing")))?;
    let init = stream
        .init(init_id)?
        .ok_or_else(|| Error::internal(format!("stream {name}: init segment {init_id} missing")))?;

    let mut parts: Vec<Part> = Vec::new();
    match format {
        Format::Fmp4 => {
            let served = stream.served_init(init_id)?.ok_or_else(|| {
                Error::internal(format!("stream {name}: init segment {init_id} missing"))
            })?;
            parts.push(Part::Static(served));
            for n in first.0..=last.0 {
                let info = stream.fragment(FragmentNumber(n))?.ok_or_else(no_media)?;
                parts
                    .push(Part::Retimed { fragment: FragmentNumber(n), len: u64::from(info.size) });
            }
        }
        Format::Mp4 => {
            let mut tracks = mp4clip::tracks_of(&init);
            let mut infos: Vec<FragmentInfo> = Vec::new();
            for (i, n) in (first.0..=last.0).enumerate() {
                let (info, bytes) =
                    stream.read_fragment(FragmentNumber(n))?.ok_or_else(no_media)?;
                let resolved = samples(&init, &bytes).map_err(|e| {
                    Error::internal(format!("stream {name}: stored fragment {n}: {e}"))
                })?;
                let index = u32::try_from(i).map_err(|_| Error::invalid("too many fragments"))?;
                mp4clip::add_fragment(
                    &mut tracks,
                    &init,
                    index,
                    info.producer_ts.as_micros(),
                    &resolved,
                );
                infos.push(info);
            }
            // The clip's timeline is the producer timeline; server-clock bounds are moved onto it
            // through the fragment playing at each bound.
            let (s, e) = match clock {
                TimestampKind::Producer => (start, end),
                TimestampKind::Server => (to_producer(&infos, start), to_producer(&infos, end)),
            };
            let plan =
                mp4clip::plan(&init_bytes, &tracks, s.as_micros(), e.as_micros()).map_err(|e| {
                    match e {
                        mp4clip::ClipError::Empty => no_media(),
                        other => Error::internal(format!("stream {name}: {other}")),
                    }
                })?;
            parts.push(Part::Static(plan.head));
            for p in plan.pieces {
                parts.push(Part::Slice {
                    fragment: FragmentNumber(first.0 + u64::from(p.fragment)),
                    offset: p.offset,
                    len: p.len,
                });
            }
        }
    }
    Ok(Planned { first, last, parts })
}

/// The producer time of server time `t`: through the last fragment that arrived at or before it.
fn to_producer(infos: &[FragmentInfo], t: Timestamp) -> Timestamp {
    let f = infos.iter().rev().find(|f| f.server_ts <= t).or(infos.first());
    match f {
        Some(f) => f.producer_ts.add_micros(t.micros_since(f.server_ts)),
        None => t,
    }
}

fn serve_parts(
    stream: Arc<VideoStream>,
    headers: &HeaderMap,
    etag: &str,
    filename: &str,
    parts: Vec<Part>,
) -> Response {
    let total: u64 = parts.iter().map(Part::len).sum();
    let (status, start, end) = match super::byte_range::decide_range(headers, etag, total) {
        super::byte_range::RangeDecision::Respond(resp) => return resp,
        super::byte_range::RangeDecision::Send { status, start, end } => (status, start, end),
    };
    // The parts overlapping [start, end), each with the sub-range wanted.
    let mut wanted: Vec<(Part, u64, u64)> = Vec::new();
    let mut pos = 0u64;
    for p in parts {
        let len = p.len();
        let (a, b) = (start.max(pos), end.min(pos + len));
        if a < b {
            wanted.push((p, a - pos, b - pos));
        }
        pos += len;
    }
    let body = Body::from_stream(body_stream(stream, wanted));
    let mut resp =
        super::byte_range::ranged_response(body, "video/mp4", etag, status, (start, end, total));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// Streams the wanted parts, reading each fragment once (consecutive slices of the same fragment
/// share the read). A fragment that disappeared meanwhile (retention) ends the body with an
/// error, so the client sees a truncated transfer rather than wrong bytes.
fn body_stream(
    stream: Arc<VideoStream>,
    wanted: Vec<(Part, u64, u64)>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    struct St {
        stream: Arc<VideoStream>,
        wanted: std::vec::IntoIter<(Part, u64, u64)>,
        cached: Option<(FragmentNumber, Bytes)>,
    }
    let st = St { stream, wanted: wanted.into_iter(), cached: None };
    futures_util::stream::unfold(st, |mut st| async move {
        let (part, a, b) = st.wanted.next()?;
        let gone = |n: FragmentNumber| {
            std::io::Error::other(format!("fragment {} is no longer stored", n.0))
        };
        let out = match part {
            Part::Static(bytes) => Ok(bytes.slice(a as usize..b as usize)),
            Part::Slice { fragment, offset, len } => {
                let bytes = match &st.cached {
                    Some((n, bytes)) if *n == fragment => Ok(bytes.clone()),
                    _ => match st.stream.read_fragment(fragment) {
                        Ok(Some((_, bytes))) => {
                            st.cached = Some((fragment, bytes.clone()));
                            Ok(bytes)
                        }
                        Ok(None) => Err(gone(fragment)),
                        Err(e) => Err(std::io::Error::other(e.to_string())),
                    },
                };
                bytes.and_then(|bytes| {
                    let (s, e) = (offset + a, offset + b.min(len));
                    if e > bytes.len() as u64 {
                        return Err(gone(fragment));
                    }
                    Ok(bytes.slice(s as usize..e as usize))
                })
            }
            Part::Retimed { fragment, .. } => {
                match st.stream.read_fragment_for_playback(fragment) {
                    Ok(Some((_, parts))) => {
                        let whole: Vec<u8> = parts.concat();
                        if (b as usize) > whole.len() {
                            Err(gone(fragment))
                        } else {
                            Ok(Bytes::from(whole).slice(a as usize..b as usize))
                        }
                    }
                    Ok(None) => Err(gone(fragment)),
                    Err(e) => Err(std::io::Error::other(e.to_string())),
                }
            }
        };
        Some((out, st))
    })
}
