//! HLS over the fragment store (RFC 8216): the live playlist, on-demand and live-replay playlists
//! for any recorded range, init segments and media segments. Segment URLs name the stream's id and
//! the fragment range (`seg/{id}/{first}-{last}.m4s`), so they are immutable and cacheable forever;
//! playlists are never cached.
//!
//! For a stream whose fragments are shorter than its GOP, `live.m3u8` is a low-latency playlist
//! (RFC 8216bis): every fragment is a part (`part/{id}/{n}.m4s`), requests with `_HLS_msn` /
//! `_HLS_part` block until the playlist holds that segment or part, woken by the log's
//! committed-end watch (no polling), the preload hint's part request blocks until that fragment is
//! persisted, and `_HLS_skip` gives a delta update.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::ApiState;
use super::byte_range::serve_bytes;
use super::error::{ApiQuery, ApiResult};
use super::params::{Bounds, TimeRange};
use super::path::StreamPath;
use crate::clock::Timestamp;
use crate::error::Error;
use crate::media::hls::{MediaPlaylist, PlaylistType, Variant, render_multivariant};
use crate::video::VideoStream;
use crate::video::fragment::FragmentNumber;
use crate::video::fragment::TimestampKind;
use crate::video::playlist::{
    Awaited, DiscontinuityMode, Holds, Render, live_playlist, playlist_holds,
    window_target_duration,
};
use crate::video::serve::Wake;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/streams/{name}/hls/master.m3u8", get(master))
        .route("/v1/streams/{name}/hls/live.m3u8", get(live))
        .route("/v1/streams/{name}/hls/index.m3u8", get(index))
        .route("/v1/streams/{name}/hls/replay.m3u8", get(replay))
        .route("/v1/streams/{name}/hls/init/{id}/{file}", get(init))
        .route("/v1/streams/{name}/hls/seg/{id}/{file}", get(segment))
        .route("/v1/streams/{name}/hls/part/{id}/{file}", get(part))
}

pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    OnDemand,
    LiveReplay,
    /// `master.m3u8` only: the live playlist.
    Live,
}

/// The rendering a range request (`index.m3u8`, `replay.m3u8`) asks for. EXT-X-PROGRAM-DATE-TIME
/// is the producer timestamp unless `pdt=false`.
fn range_render<'a>(stream: &'a VideoStream, q: &RangeQuery, state: &ApiState) -> Render<'a> {
    Render {
        stream,
        discontinuity: q.discontinuity,
        pdt: q.pdt.unwrap_or(true),
        gap_threshold_us: i64::try_from(state.config.hls.gap_threshold_ms.as_micros())
            .unwrap_or(i64::MAX),
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
    /// Accepted for compatibility and ignored: program date times are producer timestamps.
    #[serde(default, rename = "timestamps")]
    _timestamps: TimestampKind,
    pdt: Option<bool>,
    /// Blocking reload (RFC 8216bis §6.2.5.2): answer once the playlist holds this segment.
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    /// … and this part of it (needs `_HLS_msn`).
    #[serde(rename = "_HLS_part")]
    part: Option<u64>,
    /// Delta update (RFC 8216bis §6.2.5.1): `YES` or `v2`.
    #[serde(rename = "_HLS_skip")]
    skip: Option<String>,
}

/// `live.m3u8`: a sliding window of the newest complete segments, LL-HLS for streams whose
/// fragments are shorter than their GOP. For a stream with no media yet, the request waits for
/// the first segment (up to `hls.idle_wait_secs`), then answers with an empty live playlist
/// rather than 404: the player keeps reloading. With `_HLS_msn` it blocks until the playlist
/// holds that segment (or part), at most 3 target durations (then 503).
async fn live(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    ApiQuery(q): ApiQuery<LiveQuery>,
) -> ApiResult<Response> {
    state.metrics.hls("live");
    let hls = &state.config.hls;
    // Some(true): also skip date ranges (v2).
    let skip = match q.skip.as_deref() {
        None => None,
        Some("YES") => Some(false),
        Some("v2") => Some(true),
        Some(other) => {
            return Err(
                Error::invalid(format!("_HLS_skip must be YES or v2, not {other:?}")).into()
            );
        }
    };
    let awaited = match (q.msn, q.part) {
        (None, Some(_)) => return Err(Error::invalid("_HLS_part needs _HLS_msn").into()),
        (Some(msn), part) => Some(Awaited { msn, part }),
        (None, None) => None,
    };
    let count = hls.live_window_segments.max(hls.low_latency_window_segments);
    let started = Instant::now();
    let idle_deadline = started + hls.idle_wait_secs;
    let mut block_deadline: Option<Instant> = None;
    let mut woke: Option<Instant> = None;
    let mut was_live = stream.is_live();
    let win = loop {
        // Read before the window, so media committed while it is built wakes the wait below.
        let seen = stream.committed_end();
        let mut win = stream.live_window(count, hls.low_latency)?;
        if !win.low_latency {
            let skip = win.segments.len().saturating_sub(hls.live_window_segments);
            win.segments.drain(..skip);
        }
        // A young low-latency stream has parts before its first complete segment: every answer
        // waits for that segment, so the first playlist already has its final target duration.
        let young = win.segments.is_empty();
        let deadline = match awaited {
            Some(a) => match playlist_holds(&win, a) {
                Holds::Yes if !young => break win,
                Holds::Yes => idle_deadline,
                Holds::TooFar => {
                    return Err(Error::invalid(format!(
                        "_HLS_msn={} _HLS_part={} is too far ahead of the playlist",
                        a.msn,
                        a.part.map_or("-".to_owned(), |p| p.to_string())
                    ))
                    .into());
                }
                Holds::NotYet => *block_deadline.get_or_insert_with(|| {
                    let three_targets = if win.segments.is_empty() {
                        u64::MAX
                    } else {
                        window_target_duration(&win).saturating_mul(3000)
                    };
                    started + Duration::from_millis(three_targets).min(hls.blocking_timeout_ms)
                }),
            },
            None if young => idle_deadline,
            None => break win,
        };
        if Instant::now() >= deadline {
            if awaited.is_some() {
                return Err(blocking_timeout(&stream, "playlist reload").into());
            }
            break win;
        }
        // A producer leaving completes the segment in progress without a new fragment.
        match stream.wait_for_media(seen, deadline, awaited.is_some() && was_live).await {
            Wake::Media(_) => woke = Some(Instant::now()),
            Wake::ProducerLeft => {
                // Not a fragment's wake: not measured.
                was_live = false;
                woke = None;
            }
            Wake::Closed => break win,
            Wake::Deadline => {}
        }
    };
    let mut playlist =
        live_playlist(&stream, &win, q.pdt.unwrap_or(true), hls.part_hold_back_multiplier);
    if let Some(dateranges) = skip {
        playlist.skip_old_segments();
        if let Some(ll) = playlist.low_latency.as_mut() {
            ll.skip_dateranges = dateranges;
        }
    }
    let resp = playlist_response(playlist.render());
    if let (Some(w), Some(_)) = (woke, awaited) {
        state
            .metrics
            .hls_blocking_wake
            .get_or_create(&blocking_kind("playlist"))
            .observe(w.elapsed().as_secs_f64());
    }
    Ok(resp)
}

fn blocking_kind(kind: &str) -> crate::metrics::KindLabel {
    crate::metrics::KindLabel { kind: kind.to_owned() }
}

fn blocking_timeout(stream: &VideoStream, what: &str) -> Error {
    Error::unavailable(format!(
        "stream {}: blocking {what} timed out before the awaited part was persisted",
        stream.name
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    start: Option<String>,
    end: Option<String>,
    /// `index.m3u8`: on_demand unless given; `master.m3u8`: live unless given or a range is.
    mode: Option<Mode>,
    #[serde(default)]
    timestamps: TimestampKind,
    #[serde(default)]
    discontinuity: DiscontinuityMode,
    pdt: Option<bool>,
    /// live replay only: when the viewer's session began (epoch ms), set by `index.m3u8`.
    epoch: Option<i64>,
    /// on-demand only: at most this many segments, the oldest of the range (the KVS API's
    /// `MaxMediaPlaylistFragmentResults`). Default: every segment of the range.
    #[serde(rename = "maxSegments")]
    max_segments: Option<usize>,
}

impl RangeQuery {
    fn range(&self) -> Result<TimeRange, Error> {
        if self.max_segments == Some(0) {
            return Err(Error::invalid("maxSegments must be at least 1"));
        }
        TimeRange::parse(&self.start, &self.end, Bounds::HalfOpen)
    }
}

fn no_data(stream: &VideoStream, r: &TimeRange) -> Error {
    let show = |t: Option<Timestamp>, d: &str| t.map_or(d.to_owned(), |t| t.to_rfc3339());
    Error::not_found(format!(
        "stream {} has no media between {} and {}",
        stream.name,
        show(r.start, "the beginning"),
        show(r.end, "now")
    ))
}

/// `index.m3u8`: on-demand (a static media playlist of every segment in the range, no length cap)
/// or, for compatibility, live replay (the same multivariant playlist as `master.m3u8`).
async fn index(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Response> {
    state.metrics.hls("index");
    let range = q.range()?;
    if q.epoch.is_some() {
        return Err(Error::invalid("epoch belongs to replay.m3u8").into());
    }
    match q.mode.unwrap_or_default() {
        Mode::OnDemand => {
            let (clock, r) = (q.timestamps, range);
            let mut segs = stream.read(move |s| s.segments_in_range(clock, r.start, r.end)).await?;
            if segs.is_empty() {
                return Err(no_data(&stream, &range).into());
            }
            if let Some(n) = q.max_segments {
                segs.truncate(n);
            }
            let render = range_render(&stream, &q, &state);
            let playlist = MediaPlaylist {
                target_duration: 0,
                media_sequence: u64::from(segs[0].segment),
                discontinuity_sequence: 0,
                playlist_type: Some(PlaylistType::Vod),
                end_list: true,
                segments: render.segments(&segs),
                low_latency: None,
                start_at_beginning: false,
            };
            Ok(playlist_response(playlist.render()))
        }
        Mode::LiveReplay => Ok(playlist_response(
            multivariant(&state, &stream, Mode::LiveReplay, &q, &range).await?,
        )),
        Mode::Live => Err(Error::invalid("mode=live belongs to master.m3u8").into()),
    }
}

/// `master.m3u8`: the entry point to give a player, for every mode (`mode=live`, the default,
/// `on_demand` or `live_replay`, with the range parameters of `index.m3u8`): a multivariant
/// playlist with CODECS, RESOLUTION, FRAME-RATE, BANDWIDTH and AVERAGE-BANDWIDTH from the stored
/// media, naming the media playlist of that mode. For a live stream with no media yet it waits
/// like `live.m3u8` (up to `hls.idle_wait_secs`).
async fn master(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Response> {
    state.metrics.hls("master");
    if q.epoch.is_some() {
        return Err(Error::invalid("epoch belongs to replay.m3u8").into());
    }
    let ranged = q.start.is_some() || q.end.is_some();
    let mode = q.mode.unwrap_or(if ranged { Mode::OnDemand } else { Mode::Live });
    let range = q.range()?;
    if mode == Mode::Live {
        if range.start.is_some() || range.end.is_some() {
            return Err(Error::invalid("mode=live takes no start or end").into());
        }
        let deadline = Instant::now() + state.config.hls.idle_wait_secs;
        loop {
            let seen = stream.committed_end();
            if !stream.live_segments(1)?.is_empty() {
                break;
            }
            if !matches!(stream.wait_for_media(seen, deadline, false).await, Wake::Media(_)) {
                break; // the deadline passed, or the stream closed
            }
        }
    }
    Ok(playlist_response(multivariant(&state, &stream, mode, &q, &range).await?))
}

/// The multivariant playlist of one mode: one variant, described from the segments it will list.
async fn multivariant(
    state: &ApiState,
    stream: &Arc<VideoStream>,
    mode: Mode,
    q: &RangeQuery,
    range: &TimeRange,
) -> Result<String, Error> {
    let query = |extra: &str| {
        let mut uri = String::new();
        let mut sep = '?';
        let mut add = |k: &str, v: String| {
            uri.push(sep);
            uri.push_str(k);
            uri.push('=');
            uri.push_str(&v);
            sep = '&';
        };
        if let Some(s) = range.start {
            add("start", s.as_millis().to_string());
        }
        if let Some(e) = range.end {
            add("end", e.as_millis().to_string());
        }
        add("timestamps", kind_str(q.timestamps).to_owned());
        add("discontinuity", disc_str(q.discontinuity).to_owned());
        add("pdt", q.pdt.unwrap_or(true).to_string());
        if let Some(n) = q.max_segments {
            add("maxSegments", n.to_string());
        }
        format!("{uri}{extra}")
    };
    let clock = q.timestamps;
    let (uri, facts) = match mode {
        Mode::Live => {
            let uri = match q.pdt {
                Some(pdt) => format!("live.m3u8?pdt={pdt}"),
                None => "live.m3u8".to_owned(),
            };
            let count = state.config.hls.live_window_segments;
            let described = stream
                .read(move |s| {
                    let segs = s.live_segments(count)?;
                    let facts = s.variant_facts(&segs)?;
                    Ok((segs, facts))
                })
                .await?;
            (uri, described.1)
        }
        Mode::OnDemand => {
            let r = *range;
            let described = stream
                .read(move |s| {
                    let segs = s.segments_in_range(clock, r.start, r.end)?;
                    let facts = s.variant_facts(&segs)?;
                    Ok((segs, facts))
                })
                .await?;
            if described.0.is_empty() {
                return Err(no_data(stream, range));
            }
            (format!("index.m3u8{}", query("")), described.1)
        }
        Mode::LiveReplay => {
            let start =
                range.start.ok_or_else(|| Error::invalid("mode=live_replay needs a start"))?;
            let probe_end = range.end.unwrap_or(Timestamp::MAX).min(start.add_micros(60_000_000));
            let described = stream
                .read(move |s| {
                    let segs = s.segments_in_range(clock, Some(start), Some(probe_end))?;
                    let facts = s.variant_facts(&segs)?;
                    Ok((segs, facts))
                })
                .await?;
            let epoch = state.video.clock().now().as_millis();
            (format!("replay.m3u8{}", query(&format!("&epoch={epoch}"))), described.1)
        }
    };
    Ok(render_multivariant(&[Variant {
        uri,
        bandwidth: if facts.peak_bps > 0 { facts.peak_bps } else { 1_000_000 },
        average_bandwidth: facts.average_bps,
        codecs: (!facts.codecs.is_empty()).then(|| facts.codecs.join(",")),
        resolution: facts.resolution,
        frame_rate: facts.frame_rate,
    }]))
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
/// real time from `epoch` (the viewer's first request), until `end`, or following live data. It
/// only grows: see `VideoStream::replay_segments`.
async fn replay(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Response> {
    state.metrics.hls("replay");
    let range = q.range()?;
    let start = range.start.ok_or_else(|| Error::invalid("replay.m3u8 needs a start"))?;
    let epoch = Timestamp::from_millis(
        q.epoch.ok_or_else(|| Error::invalid("replay.m3u8 needs the epoch index.m3u8 gave"))?,
    );
    let elapsed = state.video.clock().now().micros_since(epoch).max(0);
    let reached = start.add_micros(elapsed);
    let (clock, end) = (q.timestamps, range.end);
    let replay = stream.read(move |s| s.replay_segments(clock, start, end, reached)).await?;
    if replay.finished && replay.segments.is_empty() {
        return Err(no_data(&stream, &range).into());
    }
    let segs = replay.segments;
    let render = range_render(&stream, &q, &state);
    let playlist = MediaPlaylist {
        target_duration: 0,
        media_sequence: segs.first().map_or(0, |s| u64::from(s.segment)),
        discontinuity_sequence: 0,
        playlist_type: Some(PlaylistType::Event),
        end_list: replay.finished,
        segments: render.segments(&segs),
        low_latency: None,
        start_at_beginning: true,
    };
    Ok(playlist_response(playlist.render()))
}

fn check_stream_id(stream: &VideoStream, id: &str) -> Result<(), Error> {
    if id.parse::<i64>().ok() != Some(stream.id.0) {
        return Err(Error::not_found(format!(
            "stream {} has no media under id {id} (it was deleted and re-created?)",
            stream.name
        )));
    }
    Ok(())
}

async fn init(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    Path((_, id, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    state.metrics.hls("init");
    check_stream_id(&stream, &id)?;
    let init_id: u32 = file
        .strip_suffix(".mp4")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::not_found(format!("no init segment {file:?}")))?;
    // Deciding the served init reads index entries and a fragment: on the blocking pool.
    let bytes = stream.read(move |s| s.served_init(init_id)).await?.ok_or_else(|| {
        Error::not_found(format!("stream {} has no init segment {init_id}", stream.name))
    })?;
    let etag = stream.init_etag(init_id);
    Ok(serve_bytes(&headers, "video/mp4", &etag, vec![bytes]))
}

/// Parses `{first}-{last}.m4s`.
fn parse_segment_file(file: &str) -> Option<(FragmentNumber, FragmentNumber)> {
    let (a, b) = file.strip_suffix(".m4s")?.split_once('-')?;
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then_some((FragmentNumber(a), FragmentNumber(b)))
}

async fn segment(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    Path((_, id, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    state.metrics.hls("segment");
    check_stream_id(&stream, &id)?;
    let (first, last) = parse_segment_file(&file)
        .ok_or_else(|| Error::not_found(format!("no segment {file:?}: expected FIRST-LAST.m4s")))?;
    let parts = stream.segment(first, last).await?;
    Ok(serve_bytes(&headers, "video/iso.segment", &stream.segment_etag(first, last), parts))
}

/// `part/{id}/{n}.m4s`: one fragment as an LL-HLS part, retimed like segments. A request for the
/// next fragment (the preload hint) blocks until it is persisted: 503 after
/// `hls.blocking_timeout_ms`, 404 if the producer disconnects first. Further ahead: 404.
async fn part(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    Path((_, id, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    state.metrics.hls("part");
    check_stream_id(&stream, &id)?;
    let n = file
        .strip_suffix(".m4s")
        .and_then(|n| n.parse::<u64>().ok())
        .map(FragmentNumber)
        .ok_or_else(|| Error::not_found(format!("no part {file:?}: expected NUMBER.m4s")))?;
    let woke = wait_for_part(&state, &stream, n).await?;
    let parts = stream.segment(n, n).await?;
    let resp = serve_bytes(&headers, "video/iso.segment", &stream.segment_etag(n, n), parts);
    if let Some(w) = woke {
        state
            .metrics
            .hls_blocking_wake
            .get_or_create(&blocking_kind("part"))
            .observe(w.elapsed().as_secs_f64());
    }
    Ok(resp)
}

/// Waits until fragment `n` is persisted, if it is the next one. Returns when it woke for it.
async fn wait_for_part(
    state: &ApiState,
    stream: &VideoStream,
    n: FragmentNumber,
) -> Result<Option<Instant>, Error> {
    let end = stream.committed_end();
    if n < end {
        return Ok(None);
    }
    if n > end {
        return Err(Error::not_found(format!(
            "stream {} has no part {} yet: only the next part ({}) can be requested ahead",
            stream.name, n.0, end.0
        )));
    }
    let gone = || {
        Error::not_found(format!(
            "stream {} has no producer: part {} will not be written",
            stream.name, n.0
        ))
    };
    let deadline = Instant::now() + state.config.hls.blocking_timeout_ms;
    let mut seen = end;
    loop {
        match stream.wait_for_media(seen, deadline, true).await {
            Wake::Media(end) if end > n => return Ok(Some(Instant::now())),
            Wake::Media(end) => seen = end,
            Wake::ProducerLeft => return Err(gone()),
            Wake::Closed if state.shutdown.is_cancelled() => {
                return Err(Error::unavailable("the server is shutting down"));
            }
            Wake::Closed => return Err(gone()),
            Wake::Deadline => return Err(blocking_timeout(stream, "part request")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_file_names() {
        assert_eq!(parse_segment_file("3-7.m4s"), Some((FragmentNumber(3), FragmentNumber(7))));
        assert_eq!(parse_segment_file("7-3.m4s"), None);
        assert_eq!(parse_segment_file("3-7.mp4"), None);
    }
}
