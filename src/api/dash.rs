//! MPEG-DASH over the fragment store, for any recorded range: `manifest.mpd` (a static MPD,
//! `crate::media::dash`), and per-track init segments and media segments cut from the stored
//! fragments (players want video and audio in AdaptationSets of their own; Sluice stores them
//! together). Segments are HLS's (keyframe to keyframe); their URLs name the stream id, the
//! fragment range and the track, so they are immutable. Live DASH is not served yet: HLS is.

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
use crate::error::Error;
use crate::media::dash::{AdaptationSet, Mpd, Period, Segment, track_fragments, track_init};
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestQuery {
    start: Option<String>,
    end: Option<String>,
    #[serde(default)]
    timestamps: TimestampKind,
    /// `on_demand` (the default and, for now, the only mode).
    mode: Option<String>,
    /// At most this many segments, the oldest of the range (KVS's
    /// `MaxManifestFragmentResults`).
    #[serde(rename = "maxSegments")]
    max_segments: Option<usize>,
}

async fn manifest(
    State(state): State<ApiState>,
    StreamPath(stream): StreamPath,
    ApiQuery(q): ApiQuery<ManifestQuery>,
) -> ApiResult<Response> {
    state.metrics.hls("dash_manifest");
    match q.mode.as_deref() {
        None | Some("on_demand") => {}
        Some(other) => {
            return Err(Error::invalid(format!(
                "mode {other:?}: DASH is served for recorded ranges (mode=on_demand); live \
                 playback is HLS (/hls/master.m3u8)"
            ))
            .into());
        }
    }
    if q.max_segments == Some(0) {
        return Err(Error::invalid("maxSegments must be at least 1").into());
    }
    let range = TimeRange::parse(&q.start, &q.end, Bounds::HalfOpen)?;
    let (clock, max) = (q.timestamps, q.max_segments);
    let mpd = stream
        .read(move |s| {
            let mut segs = s.segments_in_range(clock, range.start, range.end)?;
            if let Some(n) = max {
                segs.truncate(n);
            }
            describe(s, &segs)
        })
        .await?;
    let Some(mpd) = mpd else {
        return Err(
            Error::not_found(format!("stream {} has no media in that range", stream.name)).into()
        );
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

/// The MPD of `segs`: a Period per run of one init segment, an AdaptationSet per track, times on
/// the stream timeline (what the served fragments' decode times are).
fn describe(stream: &VideoStream, segs: &[SegmentRef]) -> crate::error::Result<Option<Mpd>> {
    let (Some(first), Some(epoch)) = (segs.first(), stream.timeline_epoch()) else {
        return Ok(None);
    };
    let at = |s: &SegmentRef| u64::try_from(s.producer_ts.micros_since(epoch)).unwrap_or(0);
    let origin = at(first);
    let last = segs.last().expect("segments");
    let duration_us = (at(last) + last.duration_us).saturating_sub(origin);
    let total_bytes: u64 = segs.iter().map(|s| s.bytes).sum();
    let bandwidth = total_bytes * 8 * 1_000_000 / duration_us.max(1);
    let mut periods = Vec::new();
    for run in segs.chunk_by(|a, b| a.init_id == b.init_id) {
        let init_id = run[0].init_id;
        let init = stream.init(init_id)?.ok_or_else(|| {
            crate::error::Error::internal(format!("init segment {init_id} is missing"))
        })?;
        let start_us = at(&run[0]);
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
                segments,
            });
        }
        periods.push(Period {
            id: format!("p{}", run[0].first.0),
            start_us: start_us.saturating_sub(origin),
            sets,
        });
    }
    Ok(Some(Mpd { duration_us, periods }))
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
        .read(move |s| {
            let mut fragments = Vec::new();
            let mut init_id = None;
            for n in first..=last {
                let (info, parts) = s.read_fragment_for_playback(FragmentNumber(n))?.ok_or_else(|| {
                    Error::not_found(format!(
                        "stream {} has no fragment {n} (not yet written, or deleted by retention)",
                        s.name
                    ))
                })?;
                if *init_id.get_or_insert(info.meta.init_id) != info.meta.init_id {
                    return Err(Error::not_found(
                        "a segment does not cross an init segment change",
                    ));
                }
                fragments.push(Bytes::from(parts.concat()));
            }
            let init_id = init_id.expect("at least one fragment");
            let init = s.init(init_id)?.ok_or_else(|| Error::internal("init segment missing"))?;
            track_fragments(&init, &fragments, track).map_err(|e| Error::not_found(e.to_string()))
        })
        .await?;
    let etag = format!("\"d{DASH_FORMAT}-{}-{first}-{last}-{track}\"", stream.id.0);
    Ok(serve_bytes(&headers, "video/iso.segment", &etag, parts))
}
