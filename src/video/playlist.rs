//! HLS playlists from the store: which segments, parts and discontinuities a playlist lists, its
//! target durations, and whether a blocking reload can be answered. Rendering the text is
//! `media::hls`; reading the store is [`super::playback`]; HTTP is `api::hls`.

use serde::Deserialize;

use super::VideoStream;
use super::fragment::FragmentNumber;
use super::fragment::{FragmentInfo, TimestampKind};
use super::playback::{LiveWindow, SegmentRef};
use crate::catalog::VideoStreamId;
use crate::media::hls::{LowLatency, MediaPlaylist, Part, PartialSegment, Segment};

/// Where a playlist of a recorded range marks EXT-X-DISCONTINUITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscontinuityMode {
    Always,
    Never,
    #[default]
    OnGap,
}

/// How to turn segment references into playlist entries. EXT-X-PROGRAM-DATE-TIME is always the
/// producer timestamp, the clock media time follows: the server clock only selects ranges (an
/// upload faster than real time has server times closer together than its media).
pub struct Render<'a> {
    pub stream: &'a VideoStream,
    pub discontinuity: DiscontinuityMode,
    pub pdt: bool,
    pub gap_threshold_us: i64,
}

impl<'a> Render<'a> {
    /// Playlist entries for `segs`, with discontinuities by `self.discontinuity`.
    pub fn segments(&self, segs: &[SegmentRef]) -> Vec<Segment> {
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

/// How far ahead of the newest part a blocking request may ask (RFC 8216bis §6.2.5.2).
pub const ADVANCE_PART_LIMIT: u64 = 3;

/// What a blocking reload waits for: segment `msn`, or part `part` of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Awaited {
    pub msn: u64,
    pub part: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Holds {
    Yes,
    NotYet,
    /// Further ahead than a client may block for: 400.
    TooFar,
}

/// Whether the playlist of `win` holds what `a` awaits. A part index past the last part of a
/// complete segment means part 0 of the next segment (RFC 8216bis §6.2.5.2).
pub fn playlist_holds(win: &LiveWindow, a: Awaited) -> Holds {
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
pub fn window_target_duration(win: &LiveWindow) -> u64 {
    win.segments
        .iter()
        .map(|s| (s.duration_us as f64 / 1e6).round() as u64)
        .max()
        .unwrap_or(1)
        .max(1)
}

/// Builds the live media playlist of `win`: regular, or LL-HLS with parts.
pub fn live_playlist(
    stream: &VideoStream,
    win: &LiveWindow,
    pdt: bool,
    part_hold_back_multiplier: f64,
) -> MediaPlaylist {
    let render =
        Render { stream, discontinuity: DiscontinuityMode::Never, pdt, gap_threshold_us: 0 };
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
        program_date_time: pdt.then(|| p.producer_ts.to_rfc3339()),
        parts: win.parts_of(p).iter().map(part).collect(),
    });
    playlist.low_latency = Some(LowLatency {
        part_target,
        part_hold_back: part_target * part_hold_back_multiplier,
        can_skip_until: 6.0 * target,
        skipped_segments: 0,
        skip_dateranges: false,
        preload_hint: partial.as_ref().map(|_| part_uri(id, win.end)),
        partial,
    });
    playlist
}

pub fn part_uri(stream_id: VideoStreamId, n: FragmentNumber) -> String {
    format!("part/{stream_id}/{}.m4s", n.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    fn seg(segment: u32, first: u64, count: u32) -> SegmentRef {
        SegmentRef {
            first: FragmentNumber(first),
            last: FragmentNumber(first + u64::from(count) - 1),
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
            end: FragmentNumber(23),
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
            end: FragmentNumber(0),
        };
        let a = Awaited { msn: u64::MAX, part: Some(u64::MAX) };
        assert_eq!(playlist_holds(&empty, a), Holds::NotYet);
    }
}
