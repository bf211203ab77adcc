//! The SDP (RFC 8866) of an ANNOUNCE: which tracks a publisher sends and how (RFC 7826 /
//! RFC 2326 §C). Each `m=` section becomes a [`SdpTrack`]: its control URL, payload type, and —
//! for codecs Sluice stores (H.264, H.265, AAC, Opus) — the [`TrackSpec`] for the RTP ingest and
//! the depacketizer. Others are kept (SETUP must still succeed) but their packets are ignored.

use base64::Engine;
use bytes::Bytes;

use super::rtp::{AacFormat, Depacketizer};
use super::rtp_session::{Codec, TrackSpec};

/// One `m=` section.
#[derive(Debug)]
pub struct SdpTrack {
    /// `a=control` (relative or absolute), or `trackID=<n>` when absent.
    pub control: String,
    pub payload_type: u8,
    /// Set for the codecs Sluice stores.
    pub media: Option<(TrackSpec, Depacketizer)>,
    /// `video/H264/90000`, for messages.
    pub description: String,
}

/// Parses an SDP body. Errors are for a malformed SDP (400); unsupported codecs are tracks
/// without `media`.
pub fn parse(body: &[u8]) -> Result<Vec<SdpTrack>, String> {
    let session = sdp_types::Session::parse(body).map_err(|e| format!("malformed SDP: {e}"))?;
    let mut tracks = Vec::new();
    for (i, m) in session.medias.iter().enumerate() {
        let payload_type: u8 = m
            .fmt
            .split_whitespace()
            .next()
            .and_then(|f| f.parse().ok())
            .filter(|pt| *pt < 128)
            .ok_or_else(|| format!("m={} has no RTP payload type", m.media))?;
        let rtpmap = m
            .attributes
            .iter()
            .filter(|a| a.attribute == "rtpmap")
            .filter_map(|a| a.value.as_deref())
            .find(|v| v.split_whitespace().next() == Some(&payload_type.to_string()))
            .and_then(|v| v.split_whitespace().nth(1))
            .unwrap_or("");
        let fmtp = m
            .attributes
            .iter()
            .filter(|a| a.attribute == "fmtp")
            .filter_map(|a| a.value.as_deref())
            .find(|v| v.split_whitespace().next() == Some(&payload_type.to_string()))
            .and_then(|v| v.split_once(' ').map(|(_, p)| p))
            .unwrap_or("");
        let mut parts = rtpmap.split('/');
        let encoding = parts.next().unwrap_or("").to_ascii_lowercase();
        let clock_rate: u32 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        let channels: u8 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1);
        let control = m
            .attributes
            .iter()
            .find(|a| a.attribute == "control")
            .and_then(|a| a.value.clone())
            .unwrap_or_else(|| format!("trackID={i}"));
        let description =
            format!("{}/{}", m.media, if rtpmap.is_empty() { &m.fmt } else { rtpmap });
        let media = match (m.media.as_str(), encoding.as_str()) {
            ("video", "h264") if clock_rate > 0 => Some((
                TrackSpec {
                    codec: Codec::H264,
                    clock_rate,
                    params: sprop(fmtp, "sprop-parameter-sets")?,
                },
                Depacketizer::h264(),
            )),
            ("video", "h265") if clock_rate > 0 => {
                let mut params = sprop(fmtp, "sprop-vps")?;
                params.extend(sprop(fmtp, "sprop-sps")?);
                params.extend(sprop(fmtp, "sprop-pps")?);
                Some((TrackSpec { codec: Codec::H265, clock_rate, params }, Depacketizer::h265()))
            }
            ("audio", "mpeg4-generic") if clock_rate > 0 => {
                let config = fmtp_value(fmtp, "config")
                    .ok_or("mpeg4-generic without config=")
                    .and_then(|c| hex(c).ok_or("config= is not hex"))?;
                let num =
                    |k: &str, d: u32| fmtp_value(fmtp, k).and_then(|v| v.parse().ok()).unwrap_or(d);
                let mode = fmtp_value(fmtp, "mode").unwrap_or("").to_ascii_lowercase();
                if mode != "aac-hbr" && mode != "aac-lbr" {
                    None
                } else {
                    let format = AacFormat {
                        size_length: num("sizelength", 13).min(32),
                        index_length: num("indexlength", 3).min(32),
                        index_delta_length: num("indexdeltalength", 3).min(32),
                        frame_length: 1024,
                    };
                    Some((
                        TrackSpec {
                            codec: Codec::Aac { config: Bytes::from(config) },
                            clock_rate,
                            params: Vec::new(),
                        },
                        Depacketizer::aac(format),
                    ))
                }
            }
            ("audio", "opus") => Some((
                TrackSpec {
                    codec: Codec::Opus { channels: channels.clamp(1, 2) },
                    clock_rate: 48_000,
                    params: Vec::new(),
                },
                Depacketizer::opus(),
            )),
            _ => None,
        };
        tracks.push(SdpTrack { control, payload_type, media, description });
    }
    Ok(tracks)
}

/// A `key=value` of an `fmtp` line (keys are case-insensitive, RFC 3640 §4.1).
fn fmtp_value<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then_some(v.trim())
    })
}

/// Comma-separated base64 parameter sets (RFC 6184 §8.1, RFC 7798 §7.1).
fn sprop(fmtp: &str, key: &str) -> Result<Vec<Bytes>, String> {
    let Some(v) = fmtp_value(fmtp, key) else { return Ok(Vec::new()) };
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map(Bytes::from)
                .map_err(|e| format!("{key}: {e}"))
        })
        .collect()
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // What `ffmpeg -f rtsp` announces for H.264 + AAC.
    const FFMPEG_SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\na=tool:libavformat 59.27.100\r\nm=video 0 RTP/AVP 96\r\nb=AS:178\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QAHqzZQKAv+XARAAADAAEAAAMAPA8WLZY=,aOvjyyLA; profile-level-id=64001E\r\na=control:streamid=0\r\nm=audio 0 RTP/AVP 97\r\nb=AS:128\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\na=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=119056E500\r\na=control:streamid=1\r\n";

    #[test]
    fn ffmpeg_announce() {
        let t = parse(FFMPEG_SDP.as_bytes()).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].control, "streamid=0");
        assert_eq!(t[0].payload_type, 96);
        let (spec, _) = t[0].media.as_ref().unwrap();
        assert_eq!(spec.codec, Codec::H264);
        assert_eq!(spec.clock_rate, 90_000);
        assert_eq!(spec.params.len(), 2);
        assert_eq!(spec.params[0][0], 0x67);
        let (spec, _) = t[1].media.as_ref().unwrap();
        assert_eq!(
            spec.codec,
            Codec::Aac { config: Bytes::from_static(&[0x11, 0x90, 0x56, 0xe5, 0]) }
        );
        assert_eq!(spec.clock_rate, 48_000);
    }

    #[test]
    fn unsupported_and_malformed() {
        let pcma = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
        let t = parse(pcma.as_bytes()).unwrap();
        assert!(t[0].media.is_none());
        assert!(parse(b"garbage").is_err());
        assert!(parse(b"").is_err() || parse(b"").unwrap().is_empty());
        let bad_sprop = FFMPEG_SDP.replace("Z2QAHqzZ", "!!!!");
        assert!(parse(bad_sprop.as_bytes()).is_err());
    }
}
