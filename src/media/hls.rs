//! HLS playlists (RFC 8216, and the RFC 8216bis additions Sluice uses): a small model of media and
//! multivariant playlists and their exact text. Pure: the segment choices are made by the video
//! layer; this module only renders them. Tests parse the output with m3u8-rs.
//!
//! Low-latency HLS (RFC 8216bis §4.4.4.9, §4.4.5.2, §4.4.5.3, §6.2.5): a playlist with
//! [`LowLatency`] set lists partial segments (`EXT-X-PART`) of its newest segments, the parts of
//! the segment still being received, a preload hint for the next part, `EXT-X-PART-INF`,
//! `EXT-X-SERVER-CONTROL`, and, for a delta update, `EXT-X-SKIP` in place of its oldest segments.

use std::fmt::Write;

/// EXT-X-VERSION: 7 for fMP4 segments with EXT-X-MAP in a playlist without I-frames-only
/// (RFC 8216 §7: EXT-X-MAP in a non-I-frame playlist needs version 6; we use 7 for
/// EXT-X-INDEPENDENT-SEGMENTS-era clients and program date times).
pub const VERSION: u8 = 7;

/// EXT-X-VERSION of a delta update: a playlist with EXT-X-SKIP needs 9 (RFC 8216bis §7).
pub const SKIP_VERSION: u8 = 9;

/// EXT-X-VERSION of a delta update that also skips date ranges (`_HLS_skip=v2`): EXT-X-SKIP with
/// RECENTLY-REMOVED-DATERANGES needs 10 (RFC 8216bis §7).
pub const SKIP_DATERANGES_VERSION: u8 = 10;

/// One partial segment (RFC 8216bis §4.4.4.9): one stored fragment.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub uri: String,
    /// DURATION in seconds.
    pub duration: f64,
    /// INDEPENDENT=YES: the part starts with a keyframe.
    pub independent: bool,
}

/// The low-latency additions to a live media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct LowLatency {
    /// EXT-X-PART-INF PART-TARGET, seconds: at least every listed part's duration.
    pub part_target: f64,
    /// EXT-X-SERVER-CONTROL PART-HOLD-BACK, seconds (at least 3 × `part_target`).
    pub part_hold_back: f64,
    /// EXT-X-SERVER-CONTROL CAN-SKIP-UNTIL, seconds (at least 6 × the target duration).
    pub can_skip_until: f64,
    /// EXT-X-SKIP SKIPPED-SEGMENTS: how many of the oldest segments this delta update leaves out
    /// (0: a full playlist). The skipped segments are counted by EXT-X-MEDIA-SEQUENCE but not in
    /// `MediaPlaylist::segments`.
    pub skipped_segments: u64,
    /// The delta update was asked for with `_HLS_skip=v2`: EXT-X-SKIP carries
    /// RECENTLY-REMOVED-DATERANGES (always empty: Sluice's playlists have no EXT-X-DATERANGE, which
    /// is also why CAN-SKIP-DATERANGES=YES is always true).
    pub skip_dateranges: bool,
    /// The segment still being received: its parts so far, after the last complete segment.
    pub partial: Option<PartialSegment>,
    /// EXT-X-PRELOAD-HINT TYPE=PART: the URI of the next part, while a producer is connected.
    pub preload_hint: Option<String>,
}

/// The newest, incomplete segment of a low-latency playlist: parts without an EXTINF.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialSegment {
    pub map_uri: String,
    pub discontinuity: bool,
    pub program_date_time: Option<String>,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    /// On-demand: the whole playlist is known; EXT-X-ENDLIST follows.
    Vod,
    /// Live replay: segments are only appended until EXT-X-ENDLIST.
    Event,
}

/// One media segment (RFC 8216 §4.3.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub uri: String,
    /// EXTINF duration in seconds.
    pub duration: f64,
    /// EXT-X-MAP URI of the init segment this segment needs.
    pub map_uri: String,
    /// EXT-X-DISCONTINUITY before this segment.
    pub discontinuity: bool,
    /// EXT-X-PROGRAM-DATE-TIME of the segment's first sample, RFC 3339.
    pub program_date_time: Option<String>,
    /// EXT-X-PART tags before the segment (low-latency playlists, newest segments only).
    pub parts: Vec<Part>,
}

/// A media playlist (RFC 8216 §4.3.3).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    /// EXT-X-TARGETDURATION; when 0, computed from the segments.
    pub target_duration: u64,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub playlist_type: Option<PlaylistType>,
    pub end_list: bool,
    pub segments: Vec<Segment>,
    /// Set for a low-latency (LL-HLS) playlist.
    pub low_latency: Option<LowLatency>,
    /// EXT-X-START:TIME-OFFSET=0,PRECISE=YES (RFC 8216 §4.3.5.2): players start at the first
    /// segment, not near the live edge (live replay: the viewer asked for that start).
    pub start_at_beginning: bool,
}

impl MediaPlaylist {
    /// The smallest target duration valid for these segments: every EXTINF rounded to the nearest
    /// integer must not exceed it (RFC 8216 §4.3.3.1). At least 1.
    pub fn min_target_duration(segments: &[Segment]) -> u64 {
        segments.iter().map(|s| s.duration.round() as u64).max().unwrap_or(1).max(1)
    }

    /// Turns a full low-latency playlist into a delta update (RFC 8216bis §6.2.5.1): the oldest
    /// segments that end at least CAN-SKIP-UNTIL seconds before the end of the playlist (the
    /// partial segment counts) are replaced by EXT-X-SKIP. No-op for a regular playlist.
    pub fn skip_old_segments(&mut self) {
        let Some(ll) = self.low_latency.as_mut() else { return };
        let tail: f64 = ll.partial.iter().flat_map(|p| &p.parts).map(|p| p.duration).sum();
        let mut from_end = tail;
        let mut keep = 0;
        for s in self.segments.iter().rev() {
            if from_end >= ll.can_skip_until {
                break;
            }
            from_end += s.duration;
            keep += 1;
        }
        let skip = self.segments.len() - keep;
        if skip > 0 {
            self.segments.drain(..skip);
            ll.skipped_segments += skip as u64;
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(256 + self.segments.len() * 160);
        let target = self.target_duration.max(Self::min_target_duration(&self.segments));
        let ll = self.low_latency.as_ref();
        let skipped = ll.map_or(0, |l| l.skipped_segments);
        out.push_str("#EXTM3U\n");
        let skip_dateranges = skipped > 0 && ll.is_some_and(|l| l.skip_dateranges);
        let version = match (skipped > 0, skip_dateranges) {
            (true, true) => SKIP_DATERANGES_VERSION,
            (true, false) => SKIP_VERSION,
            (false, _) => VERSION,
        };
        let _ = writeln!(out, "#EXT-X-VERSION:{version}");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
        if let Some(l) = ll {
            let _ = writeln!(
                out,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={},CAN-SKIP-DATERANGES=YES,PART-HOLD-BACK={}",
                decimal(l.can_skip_until),
                decimal(l.part_hold_back)
            );
            let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={}", decimal(l.part_target));
        }
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence);
        }
        match self.playlist_type {
            Some(PlaylistType::Vod) => out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
            Some(PlaylistType::Event) => out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
            None => {}
        }
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        if self.start_at_beginning {
            out.push_str("#EXT-X-START:TIME-OFFSET=0,PRECISE=YES\n");
        }
        if skipped > 0 {
            let _ = write!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
            if skip_dateranges {
                out.push_str(",RECENTLY-REMOVED-DATERANGES=\"\"");
            }
            out.push('\n');
        }
        let mut map: Option<&str> = None;
        for s in &self.segments {
            segment_head(&mut out, &mut map, s.discontinuity, &s.map_uri, &s.program_date_time);
            render_parts(&mut out, &s.parts);
            let _ = writeln!(out, "#EXTINF:{:.5},", s.duration);
            out.push_str(&s.uri);
            out.push('\n');
        }
        if let Some(l) = ll {
            if let Some(p) = &l.partial {
                segment_head(&mut out, &mut map, p.discontinuity, &p.map_uri, &p.program_date_time);
                render_parts(&mut out, &p.parts);
            }
            if let Some(uri) = &l.preload_hint {
                let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{uri}\"");
            }
        }
        if self.end_list {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

/// The tags before a segment's media: discontinuity, map (when it changes), program date time.
fn segment_head<'a>(
    out: &mut String,
    map: &mut Option<&'a str>,
    discontinuity: bool,
    map_uri: &'a str,
    pdt: &Option<String>,
) {
    if discontinuity {
        out.push_str("#EXT-X-DISCONTINUITY\n");
    }
    // EXT-X-MAP applies until the next one (RFC 8216 §4.3.2.5), but players that restart their
    // demuxer at a discontinuity (VLC) need the init segment named again there.
    if *map != Some(map_uri) || discontinuity {
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{map_uri}\"");
        *map = Some(map_uri);
    }
    if let Some(pdt) = pdt {
        let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{pdt}");
    }
}

fn render_parts(out: &mut String, parts: &[Part]) {
    for p in parts {
        let _ = write!(out, "#EXT-X-PART:DURATION={:.5},URI=\"{}\"", p.duration, p.uri);
        if p.independent {
            out.push_str(",INDEPENDENT=YES");
        }
        out.push('\n');
    }
}

/// A decimal-floating-point attribute value with at most three decimals and no trailing zeros
/// (`0.2`, `0.6`, `12`).
fn decimal(v: f64) -> String {
    let s = format!("{:.3}", v.max(0.0));
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() { "0".to_owned() } else { s.to_owned() }
}

/// One variant of a multivariant playlist (RFC 8216 §4.3.4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub uri: String,
    /// Peak bits per second (the highest segment bit rate).
    pub bandwidth: u64,
    /// AVERAGE-BANDWIDTH: bits per second over the whole range.
    pub average_bandwidth: Option<u64>,
    /// FRAME-RATE of the video, frames per second.
    pub frame_rate: Option<f64>,
    /// RFC 6381 codec strings, comma separated.
    pub codecs: Option<String>,
    pub resolution: Option<(u16, u16)>,
}

pub fn render_multivariant(variants: &[Variant]) -> String {
    let mut out = String::from("#EXTM3U\n");
    let _ = writeln!(out, "#EXT-X-VERSION:{VERSION}");
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", v.bandwidth.max(1));
        if let Some(a) = v.average_bandwidth {
            let _ = write!(out, ",AVERAGE-BANDWIDTH={}", a.clamp(1, v.bandwidth.max(1)));
        }
        if let Some(c) = &v.codecs {
            let _ = write!(out, ",CODECS=\"{c}\"");
        }
        if let Some((w, h)) = v.resolution
            && w > 0
            && h > 0
        {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(f) = v.frame_rate.filter(|f| *f > 0.0) {
            let _ = write!(out, ",FRAME-RATE={f:.3}");
        }
        out.push('\n');
        out.push_str(&v.uri);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(uri: &str, d: f64, disc: bool) -> Segment {
        Segment {
            uri: uri.into(),
            duration: d,
            map_uri: "init/1/0.mp4".into(),
            discontinuity: disc,
            program_date_time: Some("2026-11-21T10:00:00.000Z".into()),
            parts: Vec::new(),
        }
    }

    fn part(uri: &str, independent: bool) -> Part {
        Part { uri: uri.into(), duration: 0.2, independent }
    }

    /// A live LL-HLS window: three 0.6 s segments of three 0.2 s parts each, parts listed for the
    /// last two, and a segment in progress with two parts.
    fn ll_playlist() -> MediaPlaylist {
        let mut segs: Vec<Segment> = (0..3)
            .map(|i| {
                let mut s = seg(&format!("seg/1/{}-{}.m4s", i * 3, i * 3 + 2), 0.6, false);
                s.program_date_time = Some(format!("2026-11-21T10:00:0{}.000Z", i));
                s
            })
            .collect();
        for (i, s) in segs.iter_mut().enumerate().skip(1) {
            s.parts = (0..3).map(|k| part(&format!("part/1/{}.m4s", i * 3 + k), k == 0)).collect();
        }
        MediaPlaylist {
            target_duration: 0,
            media_sequence: 10,
            discontinuity_sequence: 0,
            playlist_type: None,
            end_list: false,
            segments: segs,
            start_at_beginning: false,
            low_latency: Some(LowLatency {
                part_target: 0.2,
                part_hold_back: 0.6,
                can_skip_until: 6.0,
                skipped_segments: 0,
                skip_dateranges: false,
                partial: Some(PartialSegment {
                    map_uri: "init/1/0.mp4".into(),
                    discontinuity: false,
                    program_date_time: Some("2026-11-21T10:00:03.000Z".into()),
                    parts: vec![part("part/1/9.m4s", true), part("part/1/10.m4s", false)],
                }),
                preload_hint: Some("part/1/11.m4s".into()),
            }),
        }
    }

    #[test]
    fn renders_exact_ll_hls_window() {
        assert_eq!(
            ll_playlist().render(),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6,CAN-SKIP-DATERANGES=YES,PART-HOLD-BACK=0.6\n\
             #EXT-X-PART-INF:PART-TARGET=0.2\n#EXT-X-MEDIA-SEQUENCE:10\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init/1/0.mp4\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:00:00.000Z\n#EXTINF:0.60000,\nseg/1/0-2.m4s\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:00:01.000Z\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part/1/3.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part/1/4.m4s\"\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part/1/5.m4s\"\n\
             #EXTINF:0.60000,\nseg/1/3-5.m4s\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:00:02.000Z\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part/1/6.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part/1/7.m4s\"\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part/1/8.m4s\"\n\
             #EXTINF:0.60000,\nseg/1/6-8.m4s\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:00:03.000Z\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part/1/9.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part/1/10.m4s\"\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part/1/11.m4s\"\n"
        );
    }

    #[test]
    fn renders_exact_delta_update() {
        let mut p = ll_playlist();
        if let Some(ll) = p.low_latency.as_mut() {
            // 0.4 s in progress + 0.6 s: the newest complete segment ends within 1 s of the end.
            ll.can_skip_until = 1.0;
        }
        p.skip_old_segments();
        assert_eq!(p.segments.len(), 1);
        assert_eq!(
            p.render(),
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=1,CAN-SKIP-DATERANGES=YES,PART-HOLD-BACK=0.6\n\
             #EXT-X-PART-INF:PART-TARGET=0.2\n#EXT-X-MEDIA-SEQUENCE:10\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n\
             #EXT-X-MAP:URI=\"init/1/0.mp4\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:00:02.000Z\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part/1/6.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part/1/7.m4s\"\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part/1/8.m4s\"\n\
             #EXTINF:0.60000,\nseg/1/6-8.m4s\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:00:03.000Z\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part/1/9.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part/1/10.m4s\"\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part/1/11.m4s\"\n"
        );
    }

    #[test]
    fn skip_keeps_everything_within_the_boundary() {
        let mut p = ll_playlist();
        p.skip_old_segments(); // CAN-SKIP-UNTIL 6 s > the 2.2 s playlist: nothing to skip
        assert_eq!(p.segments.len(), 3);
        assert!(!p.render().contains("EXT-X-SKIP"));
        let mut regular = ll_playlist();
        regular.low_latency = None;
        regular.skip_old_segments();
        assert_eq!(regular.segments.len(), 3);
    }

    #[test]
    fn ll_playlist_without_producer_has_no_hint_and_parses() {
        let mut p = ll_playlist();
        if let Some(ll) = p.low_latency.as_mut() {
            ll.partial = None;
            ll.preload_hint = None;
        }
        let text = p.render();
        assert!(!text.contains("PRELOAD-HINT"));
        match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => {
                assert_eq!(m.segments.len(), 3);
                assert_eq!(m.media_sequence, 10);
            }
            other => panic!("m3u8-rs: {other:?}"),
        }
    }

    #[test]
    fn decimals_are_short() {
        assert_eq!(decimal(0.2), "0.2");
        assert_eq!(decimal(12.0), "12");
        assert_eq!(decimal(0.6000000001), "0.6");
        assert_eq!(decimal(0.0), "0");
    }

    #[test]
    fn renders_exact_vod_text() {
        let p = MediaPlaylist {
            target_duration: 0,
            media_sequence: 3,
            discontinuity_sequence: 0,
            playlist_type: Some(PlaylistType::Vod),
            end_list: true,
            segments: vec![seg("a.m4s", 1.0, false), seg("b.m4s", 1.4, true)],
            low_latency: None,
            start_at_beginning: false,
        };
        assert_eq!(
            p.render(),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:3\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MAP:URI=\"init/1/0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:00:00.000Z\n\
             #EXTINF:1.00000,\na.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init/1/0.mp4\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:00:00.000Z\n#EXTINF:1.40000,\nb.m4s\n\
             #EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn target_duration_covers_rounded_extinf() {
        let segs = [seg("a", 2.5, false), seg("b", 1.2, false)];
        assert_eq!(MediaPlaylist::min_target_duration(&segs), 3);
        assert_eq!(MediaPlaylist::min_target_duration(&[]), 1);
    }

    #[test]
    fn multivariant_has_bandwidth_and_codecs() {
        let text = render_multivariant(&[Variant {
            uri: "x.m3u8".into(),
            bandwidth: 2_000_000,
            average_bandwidth: Some(1_500_000),
            codecs: Some("avc1.64001e".into()),
            resolution: Some((640, 360)),
            frame_rate: Some(30.0),
        }]);
        assert!(text.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=2000000,AVERAGE-BANDWIDTH=1500000,CODECS=\"avc1.64001e\",\
             RESOLUTION=640x360,FRAME-RATE=30.000\nx.m3u8\n"
        ));
    }

    #[test]
    fn delta_update_for_v2_lists_no_removed_dateranges() {
        let mut p = ll_playlist();
        if let Some(ll) = p.low_latency.as_mut() {
            ll.can_skip_until = 1.0;
            ll.skip_dateranges = true;
        }
        p.skip_old_segments();
        let text = p.render();
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:10\n"), "{text}");
        assert!(text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=2,RECENTLY-REMOVED-DATERANGES=\"\"\n"));
    }
}
