//! MPEG-DASH over the fragment store: `manifest.mpd` (`crate::media::dash`) — a static MPD for
//! a recorded range, a dynamic one for the live window (`mode=live`) or for a range growing from
//! a start (`mode=live_replay`, static once complete) — and per-track init segments and media
//! segments cut from the stored fragments (players want video and audio in AdaptationSets of
//! their own; Sluice stores them together). Segments are HLS's (keyframe to keyframe, listed only
//! when complete); their URLs name the stream id, the fragment range and the track, so they are
//! immutable.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;

use super::ApiState;
use super::byte_range::serve_bytes;
use super::error::{ApiQuery, ApiResult};
use super::params::{Bounds, TimeRange};
use super::path::StreamPath;
use crate::clock::Timestamp;
use crate::error::Error;
use crate::media::dash::{
    AdaptationSet, Dynamic, Mpd, Period, Segment, track_fragments, track_init,
};
use crate::media::fmp4::TrackKind;
use crate::video::VideoStream;
use crate::video::fragment::{FragmentNumber, TimestampKind};
use crate::video::playback::SegmentRef;

pub const MPD_TYPE: &str = "application/dash+xml";

/// The format of what is served under the URLs below (in their ETags).
const DASH_FORMAT: u32 = 1;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/streams/{name}/dash/manifest.mpd", get(manifest))
        .route("/v1/streams/{name}/dash/init/{id}/{file}", get(init))
        .route("/v1/streams/{name}/dash/seg/{id}/{file}", get(segment))
        .route("/v1/streams/{name}/dash/seg/{id}/{init}/{file}", get(segment_at))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestQuery {
    start: Option<String>,
    end: Option<String>,
    #[serde(default)]
    timestamps: TimestampKind,
    /// `on_demand` (the default: a static MPD of `[start, end)`), `live` (a dynamic MPD of the
    /// live window) or `live_replay` (a dynamic MPD from `start`, growing, static once complete).
    mode: Option<String>,
    /// At most this many segments, the oldest of the range (KVS's
    /// `MaxManifestFragmentResults`; the newest for `live`).
    #[serde(rename = "maxSegments")]
    max_segments: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    OnDemand,
    Live,
    LiveReplay,
}

async fn manifest(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    ApiQuery(q): ApiQuery<ManifestQuery>,
) -> ApiResult<Response> {
    state.metrics.hls("dash_manifest");
    let mode = match q.mode.as_deref() {
        None | Some("on_demand") => Mode::OnDemand,
        Some("live") => Mode::Live,
        Some("live_replay") => Mode::LiveReplay,
        Some(other) => {
            return Err(Error::invalid(format!(
                "mode {other:?}: expected on_demand, live or live_replay"
            ))
            .into());
        }
    };
    if q.max_segments == Some(0) {
        return Err(Error::invalid("maxSegments must be at least 1").into());
    }
    let range = TimeRange::parse(&q.start, &q.end, Bounds::HalfOpen)?;
    match mode {
        Mode::Live if range.start.is_some() || range.end.is_some() => {
            return Err(Error::invalid(
                "mode=live takes no start or end: it is the live window (mode=live_replay plays from a start)",
            )
            .into());
        }
        Mode::LiveReplay if range.start.is_none() => {
            return Err(Error::invalid("mode=live_replay needs start").into());
        }
        _ => {}
    }
    let (clock, max) = (q.timestamps, q.max_segments);
    let window = state.config.hls.live_window_segments;
    let now = state.video.clock().now();
    let mpd = stream
        .read(move |s| {
            let (segs, presentation) = match mode {
                Mode::OnDemand => {
                    let mut segs = s.segments_in_range(clock, range.start, range.end)?;
                    if let Some(n) = max {
                        segs.truncate(n);
                    }
                    (segs, Presentation::Static)
                }
                Mode::Live => {
                    let segs = s.live_segments(max.unwrap_or(window))?;
                    (segs, Presentation::Live { now })
                }
                Mode::LiveReplay => {
                    let (segs, finished) = replay(s, clock, range)?;
                    let p =
                        if finished { Presentation::Static } else { Presentation::Replay { now } };
                    (segs, p)
                }
            };
            describe(s, &segs, presentation)
        })
        .await?;
    let Some(mpd) = mpd else {
        let what =
            if mode == Mode::Live { "no complete segment yet" } else { "no media in that range" };
        return Err(Error::not_found(format!("stream {} has {what}", stream.name)).into());
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(MPD_TYPE)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store")),
        ],
        mpd.render(),
    )
        .into_response())
}

/// The segments of a live-replay MPD from the range's start: every complete segment stored so
/// far, and whether the range is complete (its end is stored, or no producer is connected and
/// every segment is listed): the MPD is then static.
fn replay(
    s: &VideoStream,
    clock: TimestampKind,
    range: TimeRange,
) -> crate::error::Result<(Vec<SegmentRef>, bool)> {
    let mut segs = s.segments_in_range(clock, range.start, range.end)?;
    let newest = s.live_segments(1)?;
    let live = s.is_live();
    let holds_newest = |seg: &SegmentRef| seg.last.0 + 1 >= s.committed_end().0;
    // The newest segment may still be receiving fragments: listed once the live window has it
    // whole.
    if live
        && segs
            .last()
            .is_some_and(|l| holds_newest(l) && newest.last().is_none_or(|n| n.last != l.last))
    {
        segs.pop();
    }
    let end_stored = match (range.end, s.last_fragment()) {
        (Some(e), Some(last)) => last.time(clock) >= e,
        _ => false,
    };
    Ok((segs, end_stored || !live))
}

/// Where the MPD's segments sit in time.
#[derive(Debug, Clone, Copy)]
enum Presentation {
    /// A recorded range: presentation time 0 is the first segment's start.
    Static,
    /// The live window: presentation time 0 is the stream timeline's epoch (so Periods and
    /// segment times stay put as the window slides), one Period (the newest init's).
    Live { now: Timestamp },
    /// A range growing from its start: presentation time 0 is the first segment's start.
    Replay { now: Timestamp },
}

/// The MPD of `segs`: a Period per run of one init segment, an AdaptationSet per track, times on
/// the stream timeline (what the served fragments' decode times are).
fn describe(
    stream: &VideoStream,
    segs: &[SegmentRef],
    presentation: Presentation,
) -> crate::error::Result<Option<Mpd>> {
    let (Some(first), Some(epoch)) = (segs.first(), stream.timeline_epoch()) else {
        return Ok(None);
    };
    let at = |s: &SegmentRef| u64::try_from(s.producer_ts.micros_since(epoch)).unwrap_or(0);
    let mut runs: Vec<&[SegmentRef]> = segs.chunk_by(|a, b| a.init_id == b.init_id).collect();
    let origin = match presentation {
        Presentation::Live { .. } => {
            // A player follows one Period live: the newest init's.
            runs.drain(..runs.len() - 1);
            0
        }
        Presentation::Static | Presentation::Replay { .. } => at(first),
    };
    let (listed_first, last) = (runs[0][0].clone(), segs.last().expect("segments").clone());
    let duration_us = (at(&last) + last.duration_us).saturating_sub(at(&listed_first));
    let total_bytes: u64 = runs.iter().flat_map(|r| r.iter()).map(|s| s.bytes).sum();
    let bandwidth = total_bytes * 8 * 1_000_000 / duration_us.max(1);
    let mut periods = Vec::new();
    for run in &runs {
        let init_id = run[0].init_id;
        let init = stream.init(init_id)?.ok_or_else(|| {
            crate::error::Error::internal(format!("init segment {init_id} is missing"))
        })?;
        let start_us = match presentation {
            Presentation::Live { .. } => 0,
            _ => at(&run[0]),
        };
        let mut sets = Vec::new();
        for t in init.tracks.iter().filter(|t| t.kind != TrackKind::Other) {
            let ts = |us: u64| (u128::from(us) * u128::from(t.timescale) / 1_000_000) as u64;
            let segments = run
                .iter()
                .map(|s| {
                    let (begin, end) = (ts(at(s)), ts(at(s) + s.duration_us));
                    Segment {
                        t: begin,
                        d: end.saturating_sub(begin),
                        media: format!(
                            "seg/{}/{}-{}-{}.m4s",
                            stream.id.0, s.first.0, s.last.0, t.track_id
                        ),
                    }
                })
                .collect();
            sets.push(AdaptationSet {
                id: t.track_id,
                video: t.kind == TrackKind::Video,
                codecs: t.codec_string.clone(),
                width: t.width,
                height: t.height,
                sample_rate: t.sample_rate,
                channels: t.channels,
                bandwidth,
                timescale: t.timescale,
                presentation_time_offset: ts(start_us),
                initialization: format!("init/{}/{init_id}-{}.mp4", stream.id.0, t.track_id),
                // Live clients follow segments by time from one MPD to the next.
                media_template: (!matches!(presentation, Presentation::Static))
                    .then(|| format!("seg/{}/{init_id}/$Time$-{}.m4s", stream.id.0, t.track_id)),
                segments,
            });
        }
        let id = match presentation {
            Presentation::Live { .. } => format!("i{init_id}"),
            _ => format!("p{}", run[0].first.0),
        };
        periods.push(Period { id, start_us: start_us.saturating_sub(origin), sets });
    }
    let dynamic = match presentation {
        Presentation::Static => None,
        Presentation::Live { now } | Presentation::Replay { now } => {
            let longest = segs.iter().map(|s| s.duration_us).max().unwrap_or(0).max(1_000_000);
            // Presentation time 0 on the wall clock: the timeline's epoch (producer timestamps
            // are wall-clock times), moved earlier if a producer's clock runs ahead of the
            // server's, so no listed segment seems to come from the future.
            let ahead = runs
                .iter()
                .flat_map(|r| r.iter())
                .map(|s| s.producer_ts.micros_since(s.server_ts))
                .max()
                .unwrap_or(0)
                .max(0);
            let availability_start = epoch.add_micros(i64::try_from(origin).unwrap_or(0) - ahead);
            let listed_from = availability_start
                .add_micros(i64::try_from(at(&listed_first) - origin).unwrap_or(0));
            Some(Dynamic {
                availability_start,
                now,
                minimum_update_period_us: longest,
                time_shift_buffer_us: u64::try_from(now.micros_since(listed_from))
                    .unwrap_or(0)
                    .max(duration_us),
                suggested_delay_us: 3 * longest,
            })
        }
    };
    Ok(Some(Mpd { duration_us, periods, dynamic }))
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

/// `init/{id}/{initId}-{track}.mp4`: the served init segment (with its start edit) of one track.
async fn init(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    Path((_, id, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    state.metrics.hls("dash_init");
    check_stream_id(&stream, &id)?;
    let (init_id, track) = file
        .strip_suffix(".mp4")
        .and_then(|f| f.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        .ok_or_else(|| {
            Error::not_found(format!("no init segment {file:?}: expected INIT-TRACK.mp4"))
        })?;
    let bytes = stream
        .read(move |s| {
            let served = s.served_init(init_id)?.ok_or_else(|| {
                Error::not_found(format!("stream {} has no init segment {init_id}", s.name))
            })?;
            track_init(&served, track).map_err(|e| Error::not_found(e.to_string()))
        })
        .await?;
    let etag =
        format!("\"d{DASH_FORMAT}-{}-{}\"", stream.init_etag(init_id).trim_matches('"'), track);
    Ok(serve_bytes(&headers, "video/mp4", &etag, vec![bytes]))
}

/// `seg/{id}/{first}-{last}-{track}.m4s`: fragments `first..=last` as served, cut to one track.
async fn segment(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    Path((_, id, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    state.metrics.hls("dash_segment");
    check_stream_id(&stream, &id)?;
    let parsed = file.strip_suffix(".m4s").and_then(|f| {
        let mut it = f.split('-').map(|n| n.parse::<u64>().ok());
        Some((it.next()??, it.next()??, u32::try_from(it.next()??).ok()?, it.next().is_none()))
    });
    let Some((first, last, track, true)) = parsed else {
        return Err(Error::not_found(format!(
            "no segment {file:?}: expected FIRST-LAST-TRACK.m4s"
        ))
        .into());
    };
    if last < first || last - first >= crate::video::serve::MAX_SEGMENT_FRAGMENTS {
        return Err(Error::not_found(format!("no segment {file:?}")).into());
    }
    let parts = stream
        .read(move |s| track_segment(s, FragmentNumber(first), FragmentNumber(last), track))
        .await?;
    Ok(serve_bytes(
        &headers,
        "video/iso.segment",
        &segment_etag(&stream, first, last, track),
        parts,
    ))
}

fn segment_etag(stream: &VideoStream, first: u64, last: u64, track: u32) -> String {
    format!("\"d{DASH_FORMAT}-{}-{first}-{last}-{track}\"", stream.id.0)
}

/// `seg/{id}/{initId}/{time}-{track}.m4s` (live MPDs' `$Time$` template): the complete segment
/// of init `initId` whose start on the stream timeline is `time` in the track's timescale.
async fn segment_at(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    Path((_, id, init_id, file)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    state.metrics.hls("dash_segment");
    check_stream_id(&stream, &id)?;
    let parsed = file.strip_suffix(".m4s").and_then(|f| {
        let (t, track) = f.split_once('-')?;
        Some((t.parse::<u64>().ok()?, track.parse::<u32>().ok()?, init_id.parse::<u32>().ok()?))
    });
    let Some((time, track, init_id)) = parsed else {
        return Err(Error::not_found(format!(
            "no segment {init_id}/{file:?}: expected INIT/TIME-TRACK.m4s"
        ))
        .into());
    };
    let missing = move || {
        Error::not_found(format!(
            "no complete segment of init {init_id} starts at {time} on track {track}'s timescale"
        ))
    };
    let (first, last, parts) = stream
        .read(move |s| {
            let init = s.init(init_id)?.ok_or_else(missing)?;
            let timescale = init.track(track).ok_or_else(missing)?.timescale;
            let epoch = s.timeline_epoch().ok_or_else(missing)?;
            // `time` is the segment start's microseconds on the timeline, scaled and truncated.
            let scale = |us: i64| (i128::from(us) * i128::from(timescale) / 1_000_000) as u64;
            let lo = (u128::from(time) * 1_000_000).div_ceil(u128::from(timescale.max(1)));
            let at = epoch.add_micros(i64::try_from(lo).map_err(|_| missing())?);
            let from = s.first_at_or_after(TimestampKind::Producer, at)?;
            let frags = s.infos(
                from,
                s.committed_end(),
                crate::video::serve::MAX_SEGMENT_FRAGMENTS as usize + 1,
            )?;
            let segs = crate::video::playback::group_segments(&frags);
            let seg = segs.first().filter(|g| {
                let f = &frags[0];
                g.init_id == init_id
                    && f.meta.segment_start()
                    && scale(f.producer_ts.micros_since(epoch)) == time
            });
            let seg = seg.ok_or_else(missing)?;
            // Whole only once the next segment has begun, or nothing more can come.
            let whole = segs.len() > 1 || !s.is_live();
            if !whole {
                return Err(missing());
            }
            Ok((seg.first, seg.last, track_segment(s, seg.first, seg.last, track)?))
        })
        .await?;
    let etag = segment_etag(&stream, first.0, last.0, track);
    Ok(serve_bytes(&headers, "video/iso.segment", &etag, parts))
}

/// Fragments `first..=last` as served, cut to track `track` (blocking: reads the fragments).
fn track_segment(
    s: &VideoStream,
    first: FragmentNumber,
    last: FragmentNumber,
    track: u32,
) -> crate::error::Result<Vec<Bytes>> {
    let mut fragments = Vec::new();
    let mut init_id = None;
    for n in first.0..=last.0 {
        let (info, parts) = s.read_fragment_for_playback(FragmentNumber(n))?.ok_or_else(|| {
            Error::not_found(format!(
                "stream {} has no fragment {n} (not yet written, or deleted by retention)",
                s.name
            ))
        })?;
        if *init_id.get_or_insert(info.meta.init_id) != info.meta.init_id {
            return Err(Error::not_found("a segment does not cross an init segment change"));
        }
        fragments.push(Bytes::from(parts.concat()));
    }
    let init_id = init_id.expect("at least one fragment");
    let init = s.init(init_id)?.ok_or_else(|| Error::internal("init segment missing"))?;
    track_fragments(&init, &fragments, track).map_err(|e| Error::not_found(e.to_string()))
}
