//! MPEG-DASH manifests (ISO/IEC 23009-1): a static MPD for a recorded range, a dynamic one
//! ([`Dynamic`]) for live playback, with one Period per run of one init segment (a codec or
//! resolution change starts a new one), one AdaptationSet per track
//! (players want video and audio apart, so segments are served per track), and a `SegmentList`
//! whose `SegmentTimeline` gives every segment's exact start and duration on the stream
//! timeline, with an explicit `SegmentURL` for each (segment URLs name fragment ranges, as HLS's
//! do). Pure: no I/O; the caller (`crate::api::dash`) describes the segments.

use std::fmt::Write;

use bytes::Bytes;
use mp4_atom::Encode;

use super::fmp4::{InitSegment, moov_of, samples};
use super::mux::{self, MuxSample, TrackRun};
use crate::clock::Timestamp;

/// An MPD: static (`dynamic: None`, its duration is `duration_us`) or dynamic.
#[derive(Debug, Clone, PartialEq)]
pub struct Mpd {
    pub duration_us: u64,
    pub periods: Vec<Period>,
    pub dynamic: Option<Dynamic>,
}

/// What a dynamic (live) MPD adds: where its presentation time 0 is on the wall clock, and how
/// players should follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dynamic {
    /// The wall-clock instant of presentation time 0 (`availabilityStartTime`).
    pub availability_start: Timestamp,
    /// When this MPD was made (`publishTime`), also given as the clock to synchronise with
    /// (`UTCTiming` `urn:mpeg:dash:utc:direct:2014`), so players need no clock of their own.
    pub now: Timestamp,
    /// How soon to ask for the MPD again.
    pub minimum_update_period_us: u64,
    /// How far behind the live edge segments stay listed.
    pub time_shift_buffer_us: u64,
    /// How far behind the live edge to play.
    pub suggested_delay_us: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub id: String,
    /// From the presentation's start.
    pub start_us: u64,
    pub sets: Vec<AdaptationSet>,
}

/// One track of a Period.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptationSet {
    pub id: u32,
    pub video: bool,
    /// RFC 6381 codec string.
    pub codecs: String,
    pub width: u16,
    pub height: u16,
    pub sample_rate: u32,
    pub channels: u16,
    pub bandwidth: u64,
    pub timescale: u32,
    /// The media time (in `timescale`) at the Period's start.
    pub presentation_time_offset: u64,
    pub initialization: String,
    /// The media URL template (`$Time$` for a segment's start): a `SegmentTemplate` with this
    /// timeline instead of a `SegmentList` naming each segment's URL. Live MPDs use it: it is
    /// what live DASH clients follow from one MPD to the next.
    pub media_template: Option<String>,
    pub segments: Vec<Segment>,
}

/// One segment: start and duration in the set's timescale, and its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub t: u64,
    pub d: u64,
    pub media: String,
}

/// An xs:duration in seconds with millisecond precision.
fn duration(us: u64) -> String {
    format!("PT{}.{:03}S", us / 1_000_000, us % 1_000_000 / 1000)
}

/// XML attribute text.
fn attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

impl Mpd {
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(
            "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
             profiles=\"urn:mpeg:dash:profile:isoff-main:2011\" minBufferTime=\"PT2S\"",
        );
        match &self.dynamic {
            None => {
                let _ = writeln!(
                    out,
                    " type=\"static\" mediaPresentationDuration=\"{}\">",
                    duration(self.duration_us)
                );
            }
            Some(d) => {
                let _ = writeln!(
                    out,
                    " type=\"dynamic\" availabilityStartTime=\"{}\" publishTime=\"{}\" \
                     minimumUpdatePeriod=\"{}\" timeShiftBufferDepth=\"{}\" \
                     suggestedPresentationDelay=\"{}\">",
                    d.availability_start.to_rfc3339(),
                    d.now.to_rfc3339(),
                    duration(d.minimum_update_period_us),
                    duration(d.time_shift_buffer_us),
                    duration(d.suggested_delay_us)
                );
            }
        }
        for p in &self.periods {
            let _ = writeln!(
                out,
                "  <Period id=\"{}\" start=\"{}\">",
                attr(&p.id),
                duration(p.start_us)
            );
            for s in &p.sets {
                render_set(&mut out, s);
            }
            out.push_str("  </Period>\n");
        }
        if let Some(d) = &self.dynamic {
            let _ = writeln!(
                out,
                "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"{}\"/>",
                d.now.to_rfc3339()
            );
        }
        out.push_str("</MPD>\n");
        out
    }
}

fn render_set(out: &mut String, s: &AdaptationSet) {
    let (kind, mime) = if s.video { ("video", "video/mp4") } else { ("audio", "audio/mp4") };
    let _ = writeln!(
        out,
        "    <AdaptationSet id=\"{}\" contentType=\"{kind}\" mimeType=\"{mime}\" \
         segmentAlignment=\"true\" startWithSAP=\"1\">",
        s.id
    );
    let _ = write!(
        out,
        "      <Representation id=\"{kind}{}\" codecs=\"{}\" bandwidth=\"{}\"",
        s.id,
        attr(&s.codecs),
        s.bandwidth.max(1)
    );
    if s.video {
        let _ = write!(out, " width=\"{}\" height=\"{}\"", s.width, s.height);
    } else {
        let _ = write!(out, " audioSamplingRate=\"{}\"", s.sample_rate);
    }
    out.push_str(">\n");
    if !s.video {
        let _ = writeln!(
            out,
            "        <AudioChannelConfiguration \
             schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" \
             value=\"{}\"/>",
            s.channels.max(1)
        );
    }
    let element = if s.media_template.is_some() { "SegmentTemplate" } else { "SegmentList" };
    let _ = write!(
        out,
        "        <{element} timescale=\"{}\" presentationTimeOffset=\"{}\"",
        s.timescale, s.presentation_time_offset
    );
    match &s.media_template {
        Some(media) => {
            let _ = writeln!(
                out,
                " initialization=\"{}\" media=\"{}\">",
                attr(&s.initialization),
                attr(media)
            );
        }
        None => {
            out.push_str(">\n");
            let _ = writeln!(
                out,
                "          <Initialization sourceURL=\"{}\"/>",
                attr(&s.initialization)
            );
        }
    }
    out.push_str("          <SegmentTimeline>\n");
    let mut next = None;
    for seg in &s.segments {
        // `t` only where the timeline does not simply continue (a gap).
        if next == Some(seg.t) {
            let _ = writeln!(out, "            <S d=\"{}\"/>", seg.d);
        } else {
            let _ = writeln!(out, "            <S t=\"{}\" d=\"{}\"/>", seg.t, seg.d);
        }
        next = Some(seg.t + seg.d);
    }
    out.push_str("          </SegmentTimeline>\n");
    if s.media_template.is_none() {
        for seg in &s.segments {
            let _ = writeln!(out, "          <SegmentURL media=\"{}\"/>", attr(&seg.media));
        }
    }
    let _ = writeln!(out, "        </{element}>");
    out.push_str("      </Representation>\n    </AdaptationSet>\n");
}

/// Why a per-track init or segment could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DASH: {0}")]
pub struct DashError(pub String);

/// The init segment `init` (ftyp + moov, as served) reduced to track `track_id`: its `ftyp`, and
/// a `moov` with that `trak` and its `trex` only.
pub fn track_init(init: &[u8], track_id: u32) -> Result<Bytes, DashError> {
    let mut moov = moov_of(init).map_err(|e| DashError(e.to_string()))?;
    if !moov.trak.iter().any(|t| t.tkhd.track_id == track_id) {
        return Err(DashError(format!("the init segment has no track {track_id}")));
    }
    moov.trak.retain(|t| t.tkhd.track_id == track_id);
    if let Some(mvex) = &mut moov.mvex {
        mvex.trex.retain(|t| t.track_id == track_id);
    }
    let mut out = Vec::with_capacity(init.len());
    // The ftyp as it was (the first box, when there is one).
    if init.len() >= 8 && &init[4..8] == b"ftyp" {
        let size = u32::from_be_bytes([init[0], init[1], init[2], init[3]]) as usize;
        out.extend_from_slice(&init[..size.min(init.len())]);
    }
    moov.encode(&mut out).map_err(|e| DashError(format!("encoding the moov: {e}")))?;
    Ok(Bytes::from(out))
}

/// Fragments (as served: retimed, `moof` + `mdat` each) reduced to track `track_id`: one fragment
/// per input fragment with only that track's samples, byte for byte. Fragments without samples
/// of the track are left out.
pub fn track_fragments(
    init: &InitSegment,
    fragments: &[Bytes],
    track_id: u32,
) -> Result<Vec<Bytes>, DashError> {
    if init.track(track_id).is_none() {
        return Err(DashError(format!("the init segment has no track {track_id}")));
    }
    let mut out = Vec::with_capacity(fragments.len());
    for (i, f) in fragments.iter().enumerate() {
        let tracks = samples(init, f).map_err(|e| DashError(e.to_string()))?;
        let Some(t) = tracks.into_iter().find(|t| t.track_id == track_id) else { continue };
        if t.samples.is_empty() {
            continue;
        }
        let muxed: Vec<MuxSample> = t
            .samples
            .iter()
            .map(|s| MuxSample {
                duration: s.duration,
                composition_offset: i32::try_from(s.composition_offset).unwrap_or(0),
                sync: s.sync,
                data: f.slice(s.range.clone()),
            })
            .collect();
        let run = TrackRun { track_id, base_decode_time: t.base_decode_time, samples: &muxed };
        let sequence = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let fragment = mux::fragment(sequence, &[run], 0).map_err(|e| DashError(e.to_string()))?;
        out.push(fragment.bytes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_periods_sets_and_timelines() {
        let set = |video| AdaptationSet {
            id: if video { 1 } else { 2 },
            video,
            codecs: if video { "avc1.64001f".into() } else { "mp4a.40.2".into() },
            width: 640,
            height: 360,
            sample_rate: 48_000,
            channels: 1,
            bandwidth: 1_000_000,
            timescale: 1000,
            presentation_time_offset: 5000,
            initialization: "init/1/0-1.mp4".into(),
            media_template: None,
            segments: vec![
                Segment { t: 5000, d: 1000, media: "seg/1/0-0-1.m4s".into() },
                Segment { t: 6000, d: 1000, media: "seg/1/1-1-1.m4s".into() },
                Segment { t: 9000, d: 1000, media: "seg/1/2-2-1.m4s".into() },
            ],
        };
        let mut mpd = Mpd {
            duration_us: 5_000_000,
            periods: vec![Period {
                id: "0".into(),
                start_us: 0,
                sets: vec![set(true), set(false)],
            }],
            dynamic: None,
        };
        let text = mpd.render();
        assert!(text.contains("mediaPresentationDuration=\"PT5.000S\""), "{text}");
        assert!(
            text.contains(
                "<S t=\"5000\" d=\"1000\"/>\n            <S d=\"1000\"/>\n            <S t=\"9000\""
            ),
            "{text}"
        );
        assert!(text.contains("width=\"640\" height=\"360\""));
        assert!(text.contains("audioSamplingRate=\"48000\""));
        assert_eq!(text.matches("<SegmentURL").count(), 6);
        assert!(text.contains("presentationTimeOffset=\"5000\">"));
        assert_eq!(duration(1_234_567), "PT1.234S");
        assert!(text.contains("type=\"static\"") && !text.contains("UTCTiming"));
        mpd.dynamic = Some(Dynamic {
            availability_start: Timestamp::from_millis(1_795_000_000_000),
            now: Timestamp::from_millis(1_795_000_100_500),
            minimum_update_period_us: 2_000_000,
            time_shift_buffer_us: 12_000_000,
            suggested_delay_us: 6_000_000,
        });
        for set in &mut mpd.periods[0].sets {
            set.media_template = Some(format!("seg/1/0/$Time$-{}.m4s", set.id));
        }
        let live = mpd.render();
        assert!(live.contains("<SegmentTemplate timescale=\"1000\" presentationTimeOffset=\"5000\" initialization=\"init/1/0-1.mp4\" media=\"seg/1/0/$Time$-1.m4s\">"), "{live}");
        assert!(!live.contains("SegmentURL") && live.contains("</SegmentTemplate>"));
        assert!(live.contains("type=\"dynamic\" availabilityStartTime=\"2026-11-18T"), "{live}");
        assert!(
            live.contains("minimumUpdatePeriod=\"PT2.000S\" timeShiftBufferDepth=\"PT12.000S\"")
        );
        assert!(!live.contains("mediaPresentationDuration"));
        assert!(live.contains(
            "<UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"2026-11-18T"
        ));
        assert_eq!(attr("a&b\"c"), "a&amp;b&quot;c");
    }
}
