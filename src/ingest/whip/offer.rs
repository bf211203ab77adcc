//! Checks a WHIP offer before any WebRTC state is built: it must parse as SDP (RFC 8866), have a
//! video section offering H.264 with packetization-mode 1 (RFC 6184), and may have an audio
//! section with Opus. Anything else gets a 400 that says what was offered and what is accepted.

use crate::error::Error;

/// What Sluice accepts, for error messages.
pub const SUPPORTED: &str = "H264 video (packetization-mode=1) with optional Opus audio";

/// Largest offer accepted, in bytes.
pub const MAX_OFFER_BYTES: usize = 64 * 1024;

/// What the offer carries that Sluice will record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferMedia {
    /// Opus channels if the offer sends Opus audio.
    pub opus_channels: Option<u8>,
}

pub fn check(sdp: &[u8]) -> Result<OfferMedia, Error> {
    if sdp.len() > MAX_OFFER_BYTES {
        return Err(Error::new(
            crate::error::ErrorKind::TooLarge,
            format!("the SDP offer is larger than {MAX_OFFER_BYTES} bytes"),
        ));
    }
    let text = std::str::from_utf8(sdp)
        .map_err(|_| Error::invalid("malformed SDP offer: not UTF-8 text"))?;
    if !text.starts_with("v=0") {
        return Err(Error::invalid("malformed SDP offer: it must start with \"v=0\" (RFC 8866)"));
    }
    let session = sdp_types::Session::parse(sdp)
        .map_err(|e| Error::invalid(format!("malformed SDP offer: {e}")))?;
    let mut video_codecs = Vec::new();
    let mut has_h264 = false;
    let mut opus_channels = None;
    let mut has_video = false;
    for m in &session.medias {
        let rtpmaps = m
            .attributes
            .iter()
            .filter(|a| a.attribute == "rtpmap")
            .filter_map(|a| a.value.as_deref())
            .filter_map(|v| {
                let (pt, enc) = v.split_once(' ')?;
                Some((pt.trim().to_owned(), enc.trim().to_owned()))
            });
        match m.media.as_str() {
            "video" => {
                has_video = true;
                for (pt, enc) in rtpmaps {
                    let name = enc.split('/').next().unwrap_or("").to_owned();
                    if name.eq_ignore_ascii_case("H264") && packetization_mode_1(m, &pt) {
                        has_h264 = true;
                    }
                    if !video_codecs.contains(&name) {
                        video_codecs.push(name);
                    }
                }
            }
            "audio" => {
                for (_, enc) in rtpmaps {
                    let mut parts = enc.split('/');
                    if parts.next().is_some_and(|n| n.eq_ignore_ascii_case("opus")) {
                        let ch = parts.nth(1).and_then(|c| c.parse::<u8>().ok()).unwrap_or(2);
                        opus_channels.get_or_insert(ch.clamp(1, 2));
                    }
                }
            }
            _ => {}
        }
    }
    if !has_video {
        return Err(Error::invalid(format!(
            "the SDP offer has no video section; Sluice records {SUPPORTED}"
        )));
    }
    if !has_h264 {
        let offered =
            if video_codecs.is_empty() { "none".to_owned() } else { video_codecs.join(", ") };
        return Err(Error::invalid(format!(
            "unsupported codec: the offer's video has {offered}; Sluice records {SUPPORTED}"
        )));
    }
    Ok(OfferMedia { opus_channels })
}

/// Whether payload type `pt` of `m` is H.264 in packetization mode 1 (non-interleaved).
fn packetization_mode_1(m: &sdp_types::Media, pt: &str) -> bool {
    m.attributes
        .iter()
        .filter(|a| a.attribute == "fmtp")
        .filter_map(|a| a.value.as_deref())
        .filter_map(|v| v.split_once(' '))
        .filter(|(p, _)| p.trim() == pt)
        .any(|(_, params)| {
            params.split(';').any(|kv| kv.trim().eq_ignore_ascii_case("packetization-mode=1"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(video: &str) -> String {
        format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n{video}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
        )
    }

    #[test]
    fn accepts_h264_mode_1() {
        let o = offer(
            "m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
        );
        assert_eq!(check(o.as_bytes()).unwrap(), OfferMedia { opus_channels: Some(2) });
    }

    #[test]
    fn names_what_is_supported() {
        let o = offer(
            "m=video 9 UDP/TLS/RTP/SAVPF 96 98\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:98 VP9/90000\r\n",
        );
        let e = check(o.as_bytes()).unwrap_err().message;
        assert!(e.contains("VP8, VP9") && e.contains("H264"), "{e}");
        let e = check(b"hello").unwrap_err().message;
        assert!(e.contains("malformed SDP"), "{e}");
        let e = check(offer("").as_bytes()).unwrap_err().message;
        assert!(e.contains("no video"), "{e}");
    }
}
