//! MPEG-DASH manifests (ISO/IEC 23009-1) for recorded ranges: a static MPD with one Period per
//! init segment (a codec or resolution change starts a new one), one AdaptationSet per track
//! (players want video and audio apart, so segments are served per track), and a `SegmentList`
//! whose `SegmentTimeline` gives every segment's exact start and duration on the stream
//! timeline, with an explicit `SegmentURL` for each (segment URLs name fragment ranges, as HLS's
//! do). Pure: no I/O; the caller (`crate::api::dash`) describes the segments.

use std::fmt::Write;

use bytes::Bytes;
use mp4_atom::Encode;

use super::fmp4::{InitSegment, moov_of, samples};
use super::mux::{self, MuxSample, TrackRun};

/// A static MPD.
#[derive(Debug, Clone, PartialEq)]
pub struct Mpd {
    pub duration_us: u64,
    pub periods: Vec<Period>,
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
        let _ = writeln!(
            out,
            "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
             profiles=\"urn:mpeg:dash:profile:isoff-main:2011\" type=\"static\" \
             mediaPresentationDuration=\"{}\" minBufferTime=\"PT2S\">",
            duration(self.duration_us)
        );
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
    let _ = writeln!(
        out,
        "        <SegmentList timescale=\"{}\" presentationTimeOffset=\"{}\">",
        s.timescale, s.presentation_time_offset
    );
    let _ = writeln!(out, "          <Initialization sourceURL=\"{}\"/>", attr(&s.initialization));
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
    for seg in &s.segments {
        let _ = writeln!(out, "          <SegmentURL media=\"{}\"/>", attr(&seg.media));
    }
    out.push_str("        </SegmentList>\n      </Representation>\n    </AdaptationSet>\n");
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
            segments: vec![
                Segment { t: 5000, d: 1000, media: "seg/1/0-0-1.m4s".into() },
                Segment { t: 6000, d: 1000, media: "seg/1/1-1-1.m4s".into() },
                Segment { t: 9000, d: 1000, media: "seg/1/2-2-1.m4s".into() },
            ],
        };
        let mpd = Mpd {
            duration_us: 5_000_000,
            periods: vec![Period {
                id: "0".into(),
                start_us: 0,
                sets: vec![set(true), set(false)],
            }],
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
        assert!(text.contains("presentationTimeOffset=\"5000\""));
        assert_eq!(duration(1_234_567), "PT1.234S");
        assert_eq!(attr("a&b\"c"), "a&amp;b&quot;c");
    }
}
