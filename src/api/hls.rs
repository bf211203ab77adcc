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
use bytes::Bytes;
use serde::Deserialize;

use super::byte_range::serve_bytes;
use super::error::{ApiQuery, ApiResult};
use super::streams::parse_time;
use super::{ApiState, stream_name};
use crate::clock::Timestamp;
use crate::error::Error;
use crate::log::Offset;
use crate::media::hls::{
    LowLatency, MediaPlaylist, Part, PartialSegment, PlaylistType, Segment, Variant,
    render_multivariant,
};
use crate::video::VideoStream;
use crate::video::cache::SegmentKey;
use crate::video::fragment::FragmentInfo;
use crate::video::fragment::TimestampKind;
use crate::video::playback::{LiveWindow, SegmentRef};

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

/// The version of the served media format, in the ETag of every segment and part: bumped when
/// the bytes served under an unchanged URL change (2: decode times on the stream timeline).
const MEDIA_FORMAT: u32 = 2;

fn media_etag(stream_id: i64, first: Offset, last: Offset) -> String {
    format!("\"m{MEDIA_FORMAT}-{stream_id}-{}-{}\"", first.0, last.0)
}

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
    /// `master.m3u8` only: the live playlist.
    Live,
}

/// How to turn segment references into playlist entries. EXT-X-PROGRAM-DATE-TIME is always the
/// producer timestamp, the clock media time follows: the server clock only selects ranges (an
/// upload faster than real time has server times closer together than its media).
struct Render<'a> {
    stream: &'a VideoStream,
    discontinuity: DiscontinuityMode,
    pdt: bool,
    gap_threshold_us: i64,
}

impl<'a> Render<'a> {
    /// The rendering a range request (`index.m3u8`, `replay.m3u8`) asks for.
    fn for_range(stream: &'a VideoStream, q: &RangeQuery, state: &ApiState) -> Self {
        Render {
            stream,
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
                program_date_time: self.pdt.then(|| s.producer_ts.to_rfc3339()),
                parts: Vec::new(),
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

/// How far ahead of the newest part a blocking request may ask (RFC 8216bis §6.2.5.2).
const ADVANCE_PART_LIMIT: u64 = 3;

/// What a blocking reload waits for: segment `msn`, or part `part` of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Awaited {
    msn: u64,
    part: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
enum Holds {
    Yes,
    NotYet,
    /// Further ahead than a client may block for: 400.
    TooFar,
}

/// Whether the playlist of `win` holds what `a` awaits. A part index past the last part of a
/// complete segment means part 0 of the next segment (RFC 8216bis §6.2.5.2).
fn playlist_holds(win: &LiveWindow, a: Awaited) -> Holds {
    let last_complete = win.segments.last().map(|s| u64::from(s.segment));
    let partial = win.partial.as_ref().map(|p| (u64::from(p.segment), u64::from(p.fragment_count)));
    let last_msn = partial.map(|p| p.0).or(last_complete);
    if let Some(last) = last_msn
        && a.msn > last.saturating_add(2)
    {
        return Holds::TooFar;
    }
    if let (Some((msn, parts)), Some(p)) = (partial, a.part)
        && a.msn == msn
        && p > parts.saturating_sub(1).saturating_add(ADVANCE_PART_LIMIT)
    {
        return Holds::TooFar;
    }
    let complete = |m: u64| last_complete.is_some_and(|l| m <= l);
    let partial_has = |m: u64, p: u64| partial.is_some_and(|(msn, parts)| msn == m && p < parts);
    let holds = match a.part {
        None => complete(a.msn),
        Some(p) if complete(a.msn) => {
            let parts = win
                .segments
                .iter()
                .find(|s| u64::from(s.segment) == a.msn)
                .map_or(u64::MAX, |s| u64::from(s.fragment_count));
            let next = a.msn.saturating_add(1);
            p < parts || complete(next) || partial_has(next, 0)
        }
        Some(p) => partial_has(a.msn, p),
    };
    if holds { Holds::Yes } else { Holds::NotYet }
}

/// The target duration (seconds) of the playlist `win` renders.
fn window_target_duration(win: &LiveWindow) -> u64 {
    win.segments
        .iter()
        .map(|s| (s.duration_us as f64 / 1e6).round() as u64)
        .max()
        .unwrap_or(1)
        .max(1)
}

/// `live.m3u8`: a sliding window of the newest complete segments, LL-HLS for streams whose
/// fragments are shorter than their GOP. For a stream with no media yet, the request waits for
/// the first segment (up to `hls.idle_wait_secs`), then answers with an empty live playlist
/// rather than 404: the player keeps reloading. With `_HLS_msn` it blocks until the playlist
/// holds that segment (or part), at most 3 target durations (then 503).
async fn live(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<LiveQuery>,
) -> ApiResult<Response> {
    state.metrics.hls("live");
    let stream = state.video.get(&stream_name(&name)?)?;
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
    let idle_deadline = started + Duration::from_secs(hls.idle_wait_secs);
    let mut block_deadline: Option<Instant> = None;
    let mut rx = stream.subscribe();
    let mut woke: Option<Instant> = None;
    let mut was_live = stream.is_live();
    let mut producer_check = tokio::time::interval(PRODUCER_CHECK);
    let win = 'wait: loop {
        rx.borrow_and_update();
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
                    started + Duration::from_millis(three_targets.min(hls.blocking_timeout_ms))
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
        loop {
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        break 'wait win;
                    }
                    woke = Some(Instant::now());
                    break;
                }
                // A producer leaving completes the segment in progress without a new fragment.
                _ = producer_check.tick(), if awaited.is_some() && was_live => {
                    if !stream.is_live() {
                        // Not a fragment's wake: not measured.
                        was_live = false;
                        woke = None;
                        break;
                    }
                }
                _ = stream.closed().cancelled() => break 'wait win,
                _ = state.shutdown.cancelled() => break 'wait win,
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
    };
    let mut playlist = live_playlist(&stream, &win, &q, hls);
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

/// Builds the live media playlist of `win`: regular, or LL-HLS with parts.
fn live_playlist(
    stream: &VideoStream,
    win: &LiveWindow,
    q: &LiveQuery,
    hls: &crate::config::HlsConfig,
) -> MediaPlaylist {
    let render = Render {
        stream,
        discontinuity: DiscontinuityMode::Never,
        pdt: q.pdt.unwrap_or(true),
        gap_threshold_us: 0,
    };
    let segs = &win.segments;
    let mut segments = render.segments(segs);
    // In a live window, discontinuities are the stored ones (new session, new init); the first
    // segment's is counted by EXT-X-DISCONTINUITY-SEQUENCE.
    for (seg, s) in segments.iter_mut().zip(segs).skip(1) {
        seg.discontinuity = s.discontinuity_start;
    }
    let first = segs.first().or(win.partial.as_ref());
    // PART-TARGET: the longest part listed, rounded up to the millisecond.
    let longest_us = win.fragments.iter().map(|f| f.meta.duration_us).max().unwrap_or(0);
    let (target, part_target_us) = stream.live_targets(
        MediaPlaylist::min_target_duration(&segments),
        if win.low_latency { longest_us.div_ceil(1000).max(1) * 1000 } else { 0 },
    );
    let mut playlist = MediaPlaylist {
        target_duration: target,
        media_sequence: first.map_or(0, |s| u64::from(s.segment)),
        discontinuity_sequence: first.map_or(0, |s| u64::from(s.discontinuity)),
        playlist_type: None,
        end_list: false,
        segments,
        low_latency: None,
        start_at_beginning: false,
    };
    if !win.low_latency {
        return playlist;
    }
    let id = stream.id;
    let part = |f: &FragmentInfo| Part {
        uri: part_uri(id, f.number),
        duration: f64::from(f.meta.duration_us) / 1e6,
        independent: f.meta.keyframe(),
    };
    let part_target = f64::from(part_target_us) / 1e6;
    let target = target as f64;
    // Parts are listed for the segments within three target durations of the end.
    let mut from_end: f64 = win.partial.as_ref().map_or(0.0, |p| p.duration_us as f64 / 1e6);
    for (seg, s) in playlist.segments.iter_mut().zip(segs).rev() {
        if from_end > 3.0 * target {
            break;
        }
        seg.parts = win.parts_of(s).iter().map(part).collect();
        from_end += seg.duration;
    }
    let partial = win.partial.as_ref().map(|p| PartialSegment {
        map_uri: format!("init/{id}/{}.mp4", p.init_id),
        discontinuity: !segs.is_empty() && p.discontinuity_start,
        program_date_time: q.pdt.unwrap_or(true).then(|| p.producer_ts.to_rfc3339()),
        parts: win.parts_of(p).iter().map(part).collect(),
    });
    playlist.low_latency = Some(LowLatency {
        part_target,
        part_hold_back: part_target * hls.part_hold_back_multiplier,
        can_skip_until: 6.0 * target,
        skipped_segments: 0,
        skip_dateranges: false,
        preload_hint: partial.as_ref().map(|_| part_uri(id, win.end)),
        partial,
    });
    playlist
}

fn part_uri(stream_id: i64, n: Offset) -> String {
    format!("part/{stream_id}/{}.m4s", n.0)
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

/// `index.m3u8`: on-demand (a static media playlist of every segment in the range, no length cap)
/// or, for compatibility, live replay (the same multivariant playlist as `master.m3u8`).
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
    match q.mode.unwrap_or_default() {
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
                low_latency: None,
                start_at_beginning: false,
            };
            Ok(playlist_response(playlist.render()))
        }
        Mode::LiveReplay => {
            Ok(playlist_response(multivariant(&state, &stream, Mode::LiveReplay, &q, &range)?))
        }
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
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Response> {
    state.metrics.hls("master");
    let stream = state.video.get(&stream_name(&name)?)?;
    if q.epoch.is_some() {
        return Err(Error::invalid("epoch belongs to replay.m3u8").into());
    }
    let ranged = q.start.is_some() || q.end.is_some();
    let mode = q.mode.unwrap_or(if ranged { Mode::OnDemand } else { Mode::Live });
    let range = parse_range(&q)?;
    if mode == Mode::Live {
        if range.start.is_some() || range.end.is_some() {
            return Err(Error::invalid("mode=live takes no start or end").into());
        }
        let deadline = Instant::now() + Duration::from_secs(state.config.hls.idle_wait_secs);
        let mut seen = stream.fragment_log().committed_end();
        while stream.live_segments(1)?.is_empty() {
            let end = stream.wait_for_fragments(seen, deadline).await;
            if end == seen {
                break; // the deadline passed, or the stream closed
            }
            seen = end;
        }
    }
    Ok(playlist_response(multivariant(&state, &stream, mode, &q, &range)?))
}

/// The multivariant playlist of one mode: one variant, described from the segments it will list.
fn multivariant(
    state: &ApiState,
    stream: &VideoStream,
    mode: Mode,
    q: &RangeQuery,
    range: &ParsedRange,
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
        format!("{uri}{extra}")
    };
    let (uri, segs) = match mode {
        Mode::Live => {
            let uri = match q.pdt {
                Some(pdt) => format!("live.m3u8?pdt={pdt}"),
                None => "live.m3u8".to_owned(),
            };
            let count = state.config.hls.live_window_segments;
            (uri, stream.live_segments(count)?)
        }
        Mode::OnDemand => {
            let segs = stream.segments_in_range(q.timestamps, range.start, range.end)?;
            if segs.is_empty() {
                return Err(no_data(stream, range));
            }
            (format!("index.m3u8{}", query("")), segs)
        }
        Mode::LiveReplay => {
            let start =
                range.start.ok_or_else(|| Error::invalid("mode=live_replay needs a start"))?;
            let probe_end = range.end.unwrap_or(Timestamp::MAX).min(start.add_micros(60_000_000));
            let segs = stream.segments_in_range(q.timestamps, Some(start), Some(probe_end))?;
            let epoch = state.video.clock().now().as_millis();
            (format!("replay.m3u8{}", query(&format!("&epoch={epoch}"))), segs)
        }
    };
    let facts = stream.variant_facts(&segs)?;
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
    let reached = start.add_micros(elapsed);
    let replay = stream.replay_segments(q.timestamps, start, range.end, reached)?;
    if replay.finished && replay.segments.is_empty() {
        return Err(no_data(&stream, &range).into());
    }
    let segs = replay.segments;
    let render = Render::for_range(&stream, &q, &state);
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
    let etag = media_etag(stream.id, first, last);
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

/// `part/{id}/{n}.m4s`: one fragment as an LL-HLS part, retimed like segments. A request for the
/// next fragment (the preload hint) blocks until it is persisted: 503 after
/// `hls.blocking_timeout_ms`, 404 if the producer disconnects first. Further ahead: 404.
async fn part(
    State(state): State<ApiState>,
    Path((name, id, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    state.metrics.hls("part");
    let stream = state.video.get(&stream_name(&name)?)?;
    check_stream_id(&stream, &id)?;
    let n = file
        .strip_suffix(".m4s")
        .and_then(|n| n.parse::<u64>().ok())
        .map(Offset)
        .ok_or_else(|| Error::not_found(format!("no part {file:?}: expected NUMBER.m4s")))?;
    let woke = wait_for_part(&state, &stream, n).await?;
    let etag = media_etag(stream.id, n, n);
    let key = SegmentKey { stream_id: stream.id, first: n, last: n };
    let cache = state.video.segment_cache();
    let parts = match cache.get(&key) {
        Some(parts) if n >= stream.fragment_log().start() => {
            state.metrics.segment_cache_hits.inc();
            parts
        }
        _ => {
            state.metrics.segment_cache_misses.inc();
            let parts = read_fragments(&stream, n, n)?;
            cache.insert(key, parts.clone());
            parts
        }
    };
    let resp = serve_bytes(&headers, "video/iso.segment", &etag, parts);
    if let Some(w) = woke {
        state
            .metrics
            .hls_blocking_wake
            .get_or_create(&blocking_kind("part"))
            .observe(w.elapsed().as_secs_f64());
    }
    Ok(resp)
}

/// How often a blocked part request checks that the stream still has a producer.
const PRODUCER_CHECK: Duration = Duration::from_millis(250);

/// Waits until fragment `n` is persisted, if it is the next one. Returns when it woke for it.
async fn wait_for_part(
    state: &ApiState,
    stream: &VideoStream,
    n: Offset,
) -> Result<Option<Instant>, Error> {
    let mut rx = stream.subscribe();
    let end = *rx.borrow_and_update();
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
    if !stream.is_live() {
        return Err(gone());
    }
    let deadline = Instant::now() + Duration::from_millis(state.config.hls.blocking_timeout_ms);
    let mut check = tokio::time::interval(PRODUCER_CHECK);
    loop {
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    return Err(gone());
                }
                let woke = Instant::now();
                if *rx.borrow_and_update() > n {
                    return Ok(Some(woke));
                }
            }
            _ = check.tick() => if !stream.is_live() {
                // The last fragment may have been persisted just before the producer left.
                if stream.fragment_log().committed_end() > n {
                    return Ok(None);
                }
                return Err(gone());
            },
            _ = stream.closed().cancelled() => return Err(gone()),
            _ = state.shutdown.cancelled() => {
                return Err(Error::unavailable("the server is shutting down"));
            }
            _ = tokio::time::sleep_until(deadline) => {
                return Err(blocking_timeout(stream, "part request"));
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(segment: u32, first: u64, count: u32) -> SegmentRef {
        SegmentRef {
            first: Offset(first),
            last: Offset(first + u64::from(count) - 1),
            segment,
            discontinuity: 0,
            discontinuity_start: false,
            keyframe: true,
            init_id: 0,
            producer_ts: Timestamp::from_millis(0),
            server_ts: Timestamp::from_millis(0),
            duration_us: u64::from(count) * 200_000,
            bytes: 0,
            fragment_count: count,
        }
    }

    /// Segments 4 and 5 complete (10 parts each), segment 6 in progress with 3 parts.
    fn window() -> LiveWindow {
        LiveWindow {
            segments: vec![seg(4, 0, 10), seg(5, 10, 10)],
            partial: Some(seg(6, 20, 3)),
            fragments: Vec::new(),
            low_latency: true,
            end: Offset(23),
        }
    }

    #[test]
    fn blocking_reload_conditions() {
        let w = window();
        let holds = |msn, part| playlist_holds(&w, Awaited { msn, part });
        assert_eq!(holds(3, None), Holds::Yes, "older than the window");
        assert_eq!(holds(5, None), Holds::Yes);
        assert_eq!(holds(6, None), Holds::NotYet, "segment 6 is not complete");
        assert_eq!(holds(6, Some(2)), Holds::Yes);
        assert_eq!(holds(6, Some(3)), Holds::NotYet);
        assert_eq!(holds(6, Some(5)), Holds::NotYet);
        assert_eq!(holds(6, Some(6)), Holds::TooFar, "more than 3 parts ahead");
        assert_eq!(holds(5, Some(9)), Holds::Yes);
        assert_eq!(holds(5, Some(10)), Holds::Yes, "past the last part: part 0 of segment 6");
        assert_eq!(holds(7, Some(0)), Holds::NotYet);
        assert_eq!(holds(8, None), Holds::NotYet);
        assert_eq!(holds(9, None), Holds::TooFar, "more than 2 segments ahead");
        assert_eq!(holds(u64::MAX, Some(u64::MAX)), Holds::TooFar);
        let empty = LiveWindow {
            segments: Vec::new(),
            partial: None,
            fragments: Vec::new(),
            low_latency: false,
            end: Offset(0),
        };
        let a = Awaited { msn: u64::MAX, part: Some(u64::MAX) };
        assert_eq!(playlist_holds(&empty, a), Holds::NotYet);
    }

    #[test]
    fn segment_file_names() {
        assert_eq!(parse_segment_file("3-7.m4s"), Some((Offset(3), Offset(7))));
        assert_eq!(parse_segment_file("7-3.m4s"), None);
        assert_eq!(parse_segment_file("3-7.mp4"), None);
    }
}
