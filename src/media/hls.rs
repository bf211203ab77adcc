//! HLS playlists (RFC 8216, and the RFC 8216bis additions Sluice uses): a small model of media and
//! multivariant playlists and their exact text. Pure: the segment choices are made by the video
//! layer; this module only renders them. Tests parse the output with m3u8-rs.

use std::fmt::Write;

/// EXT-X-VERSION: 7 for fMP4 segments with EXT-X-MAP in a playlist without I-frames-only
/// (RFC 8216 §7: EXT-X-MAP in a non-I-frame playlist needs version 6; we use 7 for
/// EXT-X-INDEPENDENT-SEGMENTS-era clients and program date times).
pub const VERSION: u8 = 7;

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
}

impl MediaPlaylist {
    /// The smallest target duration valid for these segments: every EXTINF rounded to the nearest
    /// integer must not exceed it (RFC 8216 §4.3.3.1). At least 1.
    pub fn min_target_duration(segments: &[Segment]) -> u64 {
        segments.iter().map(|s| s.duration.round() as u64).max().unwrap_or(1).max(1)
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(128 + self.segments.len() * 96);
        let target = self.target_duration.max(Self::min_target_duration(&self.segments));
        out.push_str("#EXTM3U\n");
        let _ = writeln!(out, "#EXT-X-VERSION:{VERSION}");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
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
        let mut map: Option<&str> = None;
        for s in &self.segments {
            if s.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if map != Some(s.map_uri.as_str()) {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", s.map_uri);
                map = Some(s.map_uri.as_str());
            }
            if let Some(pdt) = &s.program_date_time {
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{pdt}");
            }
            let _ = writeln!(out, "#EXTINF:{:.5},", s.duration);
            out.push_str(&s.uri);
            out.push('\n');
        }
        if self.end_list {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

/// One variant of a multivariant playlist (RFC 8216 §4.3.4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub uri: String,
    /// Peak bits per second.
    pub bandwidth: u64,
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
        if let Some(c) = &v.codecs {
            let _ = write!(out, ",CODECS=\"{c}\"");
        }
        if let Some((w, h)) = v.resolution
            && w > 0
            && h > 0
        {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
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
        }
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
        };
        assert_eq!(
            p.render(),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:3\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MAP:URI=\"init/1/0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:00:00.000Z\n\
             #EXTINF:1.00000,\na.m4s\n#EXT-X-DISCONTINUITY\n\
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
            codecs: Some("avc1.64001e".into()),
            resolution: Some((640, 360)),
        }]);
        assert!(text.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS=\"avc1.64001e\",RESOLUTION=640x360\nx.m3u8\n"
        ));
    }
}
