//! HLS over the fragment store (RFC 8216): the live playlist, on-demand and live-replay playlists
//! for any recorded range, init segments and media segments. Segment URLs name the stream's id and
//! the fragment range (`seg/{id}/{first}-{last}.m4s`), so they are immutable and cacheable forever;
//! playlists are never cached.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;

use super::error::{ApiQuery, ApiResult};
use super::streams::parse_time;
use super::{ApiState, stream_name};
use crate::clock::Timestamp;
use crate::error::{Error, ErrorKind};
use crate::log::Offset;
use crate::media::hls::{MediaPlaylist, PlaylistType, Segment, Variant, render_multivariant};
use crate::video::VideoStream;
use crate::video::cache::SegmentKey;
use crate::video::fragment::TimestampKind;
use crate::video::playback::SegmentRef;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/streams/{name}/hls/live.m3u8", get(live))
        .route("/v1/streams/{name}/hls/index.m3u8", get(index))
        .route("/v1/streams/{name}/hls/replay.m3u8", get(replay))
        .route("/v1/streams/{name}/hls/init/{id}/{file}", get(init))
        .route("/v1/streams/{name}/hls/seg/{id}/{file}", get(segment))
}

pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscontinuityMode {
    Always,
    Never,
    #[default]
    OnGap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    OnDemand,
    LiveReplay,
}

/// How to turn segment references into playlist entries.
struct Render<'a> {
    stream: &'a VideoStream,
    clock: TimestampKind,
    discontinuity: DiscontinuityMode,
    pdt: bool,
    gap_threshold_us: i64,
}

impl<'a> Render<'a> {
    /// The rendering a range request (`index.m3u8`, `replay.m3u8`) asks for.
    fn for_range(stream: &'a VideoStream, q: &RangeQuery, state: &ApiState) -> Self {
        Render {
            stream,
            clock: q.timestamps,
            discontinuity: q.discontinuity,
            pdt: q.pdt.unwrap_or(true),
            gap_threshold_us: i64::try_from(state.config.hls.gap_threshold_ms.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        }
    }

    fn segments(&self, segs: &[SegmentRef]) -> Vec<Segment> {
        let id = self.stream.id;
        let mut out = Vec::with_capacity(segs.len());
        let mut prev: Option<&SegmentRef> = None;
        for s in segs {
            let discontinuity = match (prev, self.discontinuity) {
                // The first segment's discontinuity is implied (on-demand starts at sequence 0) or
                // counted by EXT-X-DISCONTINUITY-SEQUENCE (live).
                (None, _) => false,
                (Some(_), DiscontinuityMode::Always) => true,
                (Some(_), DiscontinuityMode::Never) => false,
                (Some(p), DiscontinuityMode::OnGap) => {
                    let gap = s.producer_ts.micros_since(p.end(TimestampKind::Producer));
                    s.discontinuity_start
                        || p.init_id != s.init_id
                        || p.last.0 + 1 != s.first.0
                        || gap.abs() > self.gap_threshold_us
                }
            };
            out.push(Segment {
                uri: format!("seg/{id}/{}-{}.m4s", s.first.0, s.last.0),
                duration: s.duration_us as f64 / 1e6,
                map_uri: format!("init/{id}/{}.mp4", s.init_id),
                discontinuity,
                program_date_time: self.pdt.then(|| s.start(self.clock).to_rfc3339()),
            });
            prev = Some(s);
        }
        out
    }
}

fn playlist_response(text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(PLAYLIST_TYPE)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store")),
        ],
        text,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveQuery {
    #[serde(default)]
    timestamps: TimestampKind,
    pdt: Option<bool>,
}

/// `live.m3u8`: a sliding window of the newest complete segments. For a stream with no media
/// yet, the request waits for the first segment (up to `hls.idle_wait_secs`), then answers with
/// an empty live playlist rather than 404: the player keeps reloading.
async fn live(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<LiveQuery>,
) -> ApiResult<Response> {
    state.metrics.hls("live");
    let stream = state.video.get(&stream_name(&name)?)?;
    let window = state.config.hls.live_window_segments;
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(state.config.hls.idle_wait_secs);
    let mut segs = stream.live_segments(window)?;
    while segs.is_empty() && tokio::time::Instant::now() < deadline {
        let seen = stream.fragment_log().committed_end();
        tokio::select! {
            _ = stream.wait_for_fragments(seen, deadline) => {}
            _ = state.shutdown.cancelled() => break,
        }
        segs = stream.live_segments(window)?;
    }
    let render = Render {
        stream: &stream,
        clock: q.timestamps,
        discontinuity: DiscontinuityMode::Never,
        pdt: q.pdt.unwrap_or(true),
        gap_threshold_us: 0,
    };
    let mut segments = render.segments(&segs);
    // In a live window, discontinuities are the stored ones (new session, new init); the first
    // segment's is counted by EXT-X-DISCONTINUITY-SEQUENCE.
    for (seg, s) in segments.iter_mut().zip(&segs).skip(1) {
        seg.discontinuity = s.discontinuity_start;
    }
    let playlist = MediaPlaylist {
        target_duration: 0,
        media_sequence: segs.first().map_or(0, |s| u64::from(s.segment)),
        discontinuity_sequence: segs.first().map_or(0, |s| u64::from(s.discontinuity)),
        playlist_type: None,
        end_list: false,
        segments,
    };
    Ok(playlist_response(playlist.render()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    start: Option<String>,
    end: Option<String>,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    timestamps: TimestampKind,
    #[serde(default)]
    discontinuity: DiscontinuityMode,
    pdt: Option<bool>,
    /// live replay only: when the viewer's session began (epoch ms), set by `index.m3u8`.
    epoch: Option<i64>,
}

struct ParsedRange {
    start: Option<Timestamp>,
    end: Option<Timestamp>,
}

fn parse_range(q: &RangeQuery) -> Result<ParsedRange, Error> {
    let start = parse_time("start", &q.start)?;
    let end = parse_time("end", &q.end)?;
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        return Err(Error::invalid("end must be after start"));
    }
    Ok(ParsedRange { start, end })
}

fn no_data(stream: &VideoStream, r: &ParsedRange) -> Error {
    let show = |t: Option<Timestamp>, d: &str| t.map_or(d.to_owned(), |t| t.to_rfc3339());
    Error::not_found(format!(
        "stream {} has no media between {} and {}",
        stream.name,
        show(r.start, "the beginning"),
        show(r.end, "now")
    ))
}

/// `index.m3u8`: on-demand (a static playlist of every segment in the range, no length cap) or
/// live replay (a multivariant playlist pointing at `replay.m3u8` for this viewer's session).
async fn index(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Response> {
    state.metrics.hls("index");
    let stream = state.video.get(&stream_name(&name)?)?;
    let range = parse_range(&q)?;
    if q.epoch.is_some() {
        return Err(Error::invalid("epoch belongs to replay.m3u8").into());
    }
    match q.mode {
        Mode::OnDemand => {
            let segs = stream.segments_in_range(q.timestamps, range.start, range.end)?;
            if segs.is_empty() {
                return Err(no_data(&stream, &range).into());
            }
            let render = Render::for_range(&stream, &q, &state);
            let playlist = MediaPlaylist {
                target_duration: 0,
                media_sequence: u64::from(segs[0].segment),
                discontinuity_sequence: 0,
                playlist_type: Some(PlaylistType::Vod),
                end_list: true,
                segments: render.segments(&segs),
            };
            Ok(playlist_response(playlist.render()))
        }
        Mode::LiveReplay => {
            let start =
                range.start.ok_or_else(|| Error::invalid("mode=live_replay needs a start"))?;
            let probe_end = range.end.unwrap_or(Timestamp::MAX).min(start.add_micros(60_000_000));
            let probe = stream.segments_in_range(q.timestamps, Some(start), Some(probe_end))?;
            let bandwidth = probe
                .iter()
                .filter(|s| s.duration_us > 0)
                .map(|s| s.bytes * 8 * 1_000_000 / s.duration_us)
                .max()
                .unwrap_or(1_000_000);
            let (codecs, resolution) = match probe.first().map(|s| stream.init(s.init_id)) {
                Some(Ok(Some(init))) => {
                    (Some(init.codecs_attribute()), init.video().map(|v| (v.width, v.height)))
                }
                _ => (None, None),
            };
            let mut uri = format!(
                "replay.m3u8?start={}&timestamps={}&discontinuity={}&pdt={}&epoch={}",
                start.as_millis(),
                kind_str(q.timestamps),
                disc_str(q.discontinuity),
                q.pdt.unwrap_or(true),
                state.video.clock().now().as_millis()
            );
            if let Some(end) = range.end {
                uri.push_str(&format!("&end={}", end.as_millis()));
            }
            let text = render_multivariant(&[Variant {
                uri,
                bandwidth,
                codecs: codecs.filter(|c| !c.is_empty()),
                resolution,
            }]);
            Ok(playlist_response(text))
        }
    }
}

fn kind_str(k: TimestampKind) -> &'static str {
    match k {
        TimestampKind::Producer => "producer",
        TimestampKind::Server => "server",
    }
}

fn disc_str(d: DiscontinuityMode) -> &'static str {
    match d {
        DiscontinuityMode::Always => "always",
        DiscontinuityMode::Never => "never",
        DiscontinuityMode::OnGap => "on_gap",
    }
}

/// `replay.m3u8`: the media playlist of a live-replay session. It starts at `start` and grows in
/// real time from `epoch` (the viewer's first request), until `end`, or following live data.
async fn replay(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Response> {
    state.metrics.hls("replay");
    let stream = state.video.get(&stream_name(&name)?)?;
    let range = parse_range(&q)?;
    let start = range.start.ok_or_else(|| Error::invalid("replay.m3u8 needs a start"))?;
    let epoch = Timestamp::from_millis(
        q.epoch.ok_or_else(|| Error::invalid("replay.m3u8 needs the epoch index.m3u8 gave"))?,
    );
    let elapsed = state.video.clock().now().micros_since(epoch).max(0);
    // Serve what a real-time viewer has reached, plus one segment of lead so the player can buffer.
    let reached = start.add_micros(elapsed);
    let finished = range.end.is_some_and(|e| reached >= e);
    // Fragments starting up to the instant reached (inclusive); once finished, [start, end).
    let until = match range.end {
        Some(e) if finished => e,
        _ => reached.add_micros(1),
    };
    let mut segs = stream.segments_in_range(q.timestamps, Some(start), Some(until))?;
    if !finished {
        // One segment of lead so the player can buffer.
        let next = stream.segments_in_range(q.timestamps, Some(until), range.end)?;
        if let Some(n) = next.first() {
            segs.push(n.clone());
        }
    }
    if finished && segs.is_empty() {
        return Err(no_data(&stream, &range).into());
    }
    let render = Render::for_range(&stream, &q, &state);
    let playlist = MediaPlaylist {
        target_duration: 0,
        media_sequence: segs.first().map_or(0, |s| u64::from(s.segment)),
        discontinuity_sequence: 0,
        playlist_type: Some(PlaylistType::Event),
        end_list: finished,
        segments: render.segments(&segs),
    };
    Ok(playlist_response(playlist.render()))
}

fn check_stream_id(stream: &VideoStream, id: &str) -> Result<(), Error> {
    if id.parse::<i64>().ok() != Some(stream.id) {
        return Err(Error::not_found(format!(
            "stream {} has no media under id {id} (it was deleted and re-created?)",
            stream.name
        )));
    }
    Ok(())
}

async fn init(
    State(state): State<ApiState>,
    Path((name, id, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    state.metrics.hls("init");
    let stream = state.video.get(&stream_name(&name)?)?;
    check_stream_id(&stream, &id)?;
    let init_id: u32 = file
        .strip_suffix(".mp4")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::not_found(format!("no init segment {file:?}")))?;
    let bytes = stream
        .init_bytes(init_id)?
        .ok_or_else(|| Error::not_found(format!("stream {name} has no init segment {init_id}")))?;
    let etag = format!("\"{}-i{init_id}\"", stream.id);
    Ok(serve_bytes(&headers, "video/mp4", &etag, vec![bytes]))
}

/// Parses `{first}-{last}.m4s`.
fn parse_segment_file(file: &str) -> Option<(Offset, Offset)> {
    let (a, b) = file.strip_suffix(".m4s")?.split_once('-')?;
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then_some((Offset(a), Offset(b)))
}

/// Longest run of fragments one segment request may name.
const MAX_SEGMENT_FRAGMENTS: u64 = 10_000;

async fn segment(
    State(state): State<ApiState>,
    Path((name, id, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    state.metrics.hls("segment");
    let stream = state.video.get(&stream_name(&name)?)?;
    check_stream_id(&stream, &id)?;
    let (first, last) = parse_segment_file(&file)
        .ok_or_else(|| Error::not_found(format!("no segment {file:?}: expected FIRST-LAST.m4s")))?;
    let count = last.0 - first.0 + 1;
    if count > MAX_SEGMENT_FRAGMENTS {
        return Err(Error::invalid(format!(
            "a segment spans at most {MAX_SEGMENT_FRAGMENTS} fragments"
        ))
        .into());
    }
    let etag = format!("\"{}-{}-{}\"", stream.id, first.0, last.0);
    let key = SegmentKey { stream_id: stream.id, first, last };
    let cache = state.video.segment_cache();
    // A cached segment is still checked against retention: deleted data is never served.
    let parts = match cache.get(&key) {
        Some(parts) if first >= stream.fragment_log().start() => {
            state.metrics.segment_cache_hits.inc();
            parts
        }
        _ => {
            state.metrics.segment_cache_misses.inc();
            let parts = read_fragments(&stream, first, last)?;
            cache.insert(key, parts.clone());
            parts
        }
    };
    Ok(serve_bytes(&headers, "video/iso.segment", &etag, parts))
}

/// Reads fragments `first..=last`; 404 if any is missing (never stored, or deleted by retention).
fn read_fragments(
    stream: &Arc<VideoStream>,
    first: Offset,
    last: Offset,
) -> Result<Vec<Bytes>, Error> {
    let mut parts = Vec::with_capacity(usize::try_from(last.0 - first.0 + 1).unwrap_or(0) * 3);
    for n in first.0..=last.0 {
        match stream.read_fragment_for_playback(Offset(n))? {
            Some((_, bytes)) => parts.extend(bytes),
            None => {
                return Err(Error::not_found(format!(
                    "stream {} has no fragment {n} (not yet written, or deleted by retention)",
                    stream.name
                )));
            }
        }
    }
    Ok(parts)
}

/// What a conditional, ranged GET of `total` bytes asks for (RFC 9110 §13, §14).
pub(crate) enum RangeDecision {
    /// Answer with this now: 304 Not Modified, or 416 with `Content-Range: bytes */total`.
    Respond(Response),
    /// Send bytes `[start, end)` with this status (200, or 206 for a single range).
    Send { status: StatusCode, start: u64, end: u64 },
}

pub(crate) fn decide_range(headers: &HeaderMap, etag: &str, total: u64) -> RangeDecision {
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let resp = (StatusCode::NOT_MODIFIED, [(header::ETAG, etag.to_owned())]).into_response();
        return RangeDecision::Respond(resp);
    }
    match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => RangeDecision::Send { status: StatusCode::OK, start: 0, end: total },
        Some(spec) => match parse_byte_range(spec, total) {
            Ok(Some((start, end))) => {
                RangeDecision::Send { status: StatusCode::PARTIAL_CONTENT, start, end }
            }
            Ok(None) => RangeDecision::Send { status: StatusCode::OK, start: 0, end: total },
            Err(e) => {
                let mut resp = super::error::ApiError(e).into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                RangeDecision::Respond(resp)
            }
        },
    }
}

/// A response for bytes `[start, end)` of a `total`-byte resource, with its content type, ETag,
/// length, `Accept-Ranges` and, for 206, `Content-Range`.
pub(crate) fn ranged_response(
    body: Body,
    content_type: &'static str,
    etag: &str,
    status: StatusCode,
    (start, end, total): (u64, u64, u64),
) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{total}", end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    resp
}

/// Serves immutable bytes (one or more parts, concatenated) with ETag, conditional GET and a
/// single byte range (RFC 9110 §14).
pub fn serve_bytes(
    headers: &HeaderMap,
    content_type: &'static str,
    etag: &str,
    parts: Vec<Bytes>,
) -> Response {
    let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
    let (status, start, end) = match decide_range(headers, etag, total) {
        RangeDecision::Respond(resp) => return resp,
        RangeDecision::Send { status, start, end } => (status, start, end),
    };
    let sliced = slice_parts(parts, start, end);
    let body = Body::from_stream(futures_util::stream::iter(
        sliced.into_iter().map(Ok::<_, std::convert::Infallible>),
    ));
    let mut resp = ranged_response(body, content_type, etag, status, (start, end, total));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    resp
}

/// The bytes `[start, end)` of the concatenation of `parts`, without copying.
fn slice_parts(parts: Vec<Bytes>, start: u64, end: u64) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    for p in parts {
        let len = p.len() as u64;
        let (a, b) = (start.max(pos), end.min(pos + len));
        if a < b {
            out.push(p.slice((a - pos) as usize..(b - pos) as usize));
        }
        pos += len;
    }
    out
}

/// Parses one `bytes=` range against a resource of `total` bytes into `[start, end)`.
/// Multiple ranges are answered with the whole resource (`Ok(None)`), as RFC 9110 allows.
fn parse_byte_range(spec: &str, total: u64) -> Result<Option<(u64, u64)>, Error> {
    let unsatisfiable = || {
        Error::new(
            ErrorKind::RangeNotSatisfiable,
            format!("range {spec:?} is not satisfiable for {total} bytes"),
        )
    };
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if set.contains(',') {
        return Ok(None);
    }
    let (a, b) = set.trim().split_once('-').ok_or_else(unsatisfiable)?;
    let range = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| unsatisfiable())?;
            if n == 0 {
                return Err(unsatisfiable());
            }
            (total.saturating_sub(n), total)
        }
        (first, "") => (first.parse().map_err(|_| unsatisfiable())?, total),
        (first, last) => {
            let f: u64 = first.parse().map_err(|_| unsatisfiable())?;
            let l: u64 = last.parse().map_err(|_| unsatisfiable())?;
            if l < f {
                return Err(unsatisfiable());
            }
            (f, (l + 1).min(total))
        }
    };
    if range.0 >= total {
        return Err(unsatisfiable());
    }
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges() {
        assert_eq!(parse_byte_range("bytes=0-99", 1000).unwrap(), Some((0, 100)));
        assert_eq!(parse_byte_range("bytes=900-", 1000).unwrap(), Some((900, 1000)));
        assert_eq!(parse_byte_range("bytes=-100", 1000).unwrap(), Some((900, 1000)));
        assert_eq!(parse_byte_range("bytes=990-2000", 1000).unwrap(), Some((990, 1000)));
        assert_eq!(parse_byte_range("bytes=0-1,5-6", 1000).unwrap(), None);
        assert!(parse_byte_range("bytes=1000-", 1000).is_err());
        assert!(parse_byte_range("bytes=5-1", 1000).is_err());
        assert!(parse_byte_range("bytes=x-1", 1000).is_err());
    }

    #[test]
    fn slices_across_parts() {
        let parts = vec![Bytes::from_static(b"abc"), Bytes::from_static(b"defg")];
        let got: Vec<u8> = slice_parts(parts, 2, 5).concat();
        assert_eq!(got, b"cde");
    }

    #[test]
    fn segment_file_names() {
        assert_eq!(parse_segment_file("3-7.m4s"), Some((Offset(3), Offset(7))));
        assert_eq!(parse_segment_file("7-3.m4s"), None);
        assert_eq!(parse_segment_file("3-7.mp4"), None);
    }
}
