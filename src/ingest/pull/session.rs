//! One source's supervisor: connect to the camera with retina (DESCRIBE, SETUP, PLAY), feed its
//! frames to `ingest::rtp::RtpIngest`, and on any failure back off and reconnect.
//!
//! Backoff: `backoff_initial_ms` doubled per failed attempt up to `backoff_max_ms`, each delay
//! scaled by a random factor in [0.8, 1.2) so cameras behind one failed switch do not reconnect in
//! lock-step; an attempt that streamed resets it. An attempt fails when the camera refuses or
//! drops the connection, when DESCRIBE/SETUP/PLAY takes longer than `connect_timeout_secs`, or
//! when no frame arrives for `stall_timeout_secs`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use retina::client::{
    Credentials, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions,
    Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef, VideoParametersCodec};
use tokio_util::sync::CancellationToken;

use super::{PullSettings, PullTransport, SourceConfig, SourceState, StatusCell};
use crate::auth::outbound::Outbound;
use crate::clock::Timestamp;
use crate::ingest::rtp::{Codec, RtpIngest, TrackSpec};
use crate::video::VideoStream;

/// Runs until `stop` is cancelled.
pub async fn supervise(
    stream: Arc<VideoStream>,
    source: SourceConfig,
    status: Arc<StatusCell>,
    settings: PullSettings,
    stop: CancellationToken,
) {
    let name = stream.name.to_string();
    let mut failures: u32 = 0;
    loop {
        status.set(SourceState::Connecting, None);
        let outcome = attempt(&stream, &source, &status, &settings, &stop).await;
        if stop.is_cancelled() {
            return;
        }
        let error = source.scrub(&outcome.error);
        if outcome.streamed {
            failures = 0;
        }
        let delay = backoff(&settings, failures);
        failures = failures.saturating_add(1);
        tracing::warn!(stream = %name, url = %source.url, error = %error, retry_in_ms = delay.as_millis() as u64, "RTSP source: attempt ended");
        status.set(SourceState::Backoff, Some(error));
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        status.count_reconnect();
    }
}

/// The delay before attempt `failures + 1`.
fn backoff(settings: &PullSettings, failures: u32) -> Duration {
    let initial = settings.pull.backoff_initial_ms.max(Duration::from_millis(1));
    let max = settings.pull.backoff_max_ms.max(initial);
    let base = initial.saturating_mul(1u32 << failures.min(20)).min(max).as_millis() as u64;
    let mut r = [0u8; 2];
    let unit = if getrandom::fill(&mut r).is_ok() {
        f64::from(u16::from_le_bytes(r)) / 65536.0
    } else {
        0.5
    };
    Duration::from_millis((base as f64 * (0.8 + 0.4 * unit)) as u64)
}

struct Outcome {
    /// Frames reached the stream in this attempt.
    streamed: bool,
    /// Why it ended (not yet scrubbed of credentials).
    error: String,
}

/// Which retina stream feeds which `RtpIngest` track.
struct TrackMap {
    video: Option<usize>,
    audio: Option<usize>,
}

impl TrackMap {
    fn track(&self, retina_stream: usize) -> Option<usize> {
        if Some(retina_stream) == self.video {
            Some(0)
        } else if Some(retina_stream) == self.audio {
            Some(1)
        } else {
            None
        }
    }
}

/// The camera's URL with its host resolved now and checked against `outbound`; with the policy
/// limited, the connection goes to the checked address, so the name cannot be re-pointed in
/// between (DNS rebinding).
async fn checked_url(url: &url::Url, outbound: &Outbound) -> Result<url::Url, String> {
    if !outbound.is_limited() {
        return Ok(url.clone());
    }
    let host = url.host_str().unwrap_or("");
    let addrs = outbound
        .resolve("source.rtspUrl", host, url.port().unwrap_or(554))
        .await
        .map_err(|e| e.message)?;
    let mut pinned = url.clone();
    if let Some(a) = addrs.first()
        && url.domain().is_some()
    {
        pinned.set_ip_host(a.ip()).map_err(|()| format!("cannot connect to {}", a.ip()))?;
    }
    Ok(pinned)
}

async fn attempt(
    stream: &Arc<VideoStream>,
    source: &SourceConfig,
    status: &StatusCell,
    settings: &PullSettings,
    stop: &CancellationToken,
) -> Outcome {
    let fail = |error: String| Outcome { streamed: false, error };
    let connect_timeout = settings.pull.connect_timeout_secs.max(Duration::from_secs(1));
    let connect = async {
        let creds = source.username.clone().map(|username| Credentials {
            username,
            password: source.password.clone().unwrap_or_default(),
        });
        let options = SessionOptions::default()
            .creds(creds)
            .user_agent(format!("Sluice/{}", env!("CARGO_PKG_VERSION")));
        let url = checked_url(&source.url, &settings.outbound).await?;
        let mut session =
            Session::describe(url, options).await.map_err(|e| format!("DESCRIBE failed: {e}"))?;
        let (tracks, map) = choose_tracks(&session)?;
        for i in [map.video, map.audio].into_iter().flatten() {
            let transport = match source.transport {
                PullTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
                PullTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
            };
            let format = FrameFormat {
                parameter_set_insertion: retina::codec::ParameterSetInsertion::EachKeyFrame,
                ..FrameFormat::MP4
            };
            session
                .setup(i, SetupOptions::default().transport(transport).frame_format(format))
                .await
                .map_err(|e| format!("SETUP failed: {e}"))?;
        }
        let playing = session
            .play(PlayOptions::default())
            .await
            .map_err(|e| format!("PLAY failed: {e}"))?
            .demuxed()
            .map_err(|e| format!("cannot depacketize: {e}"))?;
        Ok::<_, String>((playing, tracks, map))
    };
    let (mut playing, tracks, map) = tokio::select! {
        _ = stop.cancelled() => return fail("stopped".to_owned()),
        r = tokio::time::timeout(connect_timeout, connect) => match r {
            Err(_) => return fail(format!("the camera did not answer DESCRIBE/SETUP/PLAY within {}s", connect_timeout.as_secs())),
            Ok(Err(e)) => return fail(e),
            Ok(Ok(v)) => v,
        },
    };

    let remote = source.url.host_str().map(|h| match source.url.port() {
        Some(p) => format!("{h}:{p}"),
        None => h.to_owned(),
    });
    let clock = status.clock.clone();
    let mut ingest = match RtpIngest::start(
        stream.clone(),
        clock,
        "rtsp-pull",
        remote,
        tracks,
        settings.part_duration,
    ) {
        Ok(i) => i,
        Err(e) => return fail(format!("cannot record: {e}")),
    };
    let stall = settings.pull.stall_timeout_secs.max(Duration::from_secs(1));
    let mut streamed = false;
    let end: String = loop {
        let item = tokio::select! {
            _ = stop.cancelled() => break "stopped (source changed, stream deleted or server shutting down)".to_owned(),
            r = tokio::time::timeout(stall, playing.next()) => r,
        };
        let item = match item {
            Err(_) => break format!("no media from the camera for {}s", stall.as_secs()),
            Ok(None) => break "the camera ended the session".to_owned(),
            Ok(Some(Err(e))) => break format!("connection lost: {e}"),
            Ok(Some(Ok(item))) => item,
        };
        let result = match item {
            CodecItem::VideoFrame(frame) => match map.track(frame.stream_id()) {
                Some(track) => {
                    let ts = frame.timestamp().timestamp() as u32;
                    let nalus = split_length_prefixed(frame.data());
                    if !streamed {
                        streamed = true;
                        status.set(SourceState::Streaming, None);
                    }
                    ingest.video(track, ts, &nalus).await
                }
                None => Ok(()),
            },
            CodecItem::AudioFrame(frame) => match map.track(frame.stream_id()) {
                Some(track) => {
                    let ts = frame.timestamp().timestamp() as u32;
                    ingest.audio(track, ts, Bytes::copy_from_slice(frame.data())).await
                }
                None => Ok(()),
            },
            CodecItem::Rtcp(rtcp) => {
                if let Some(track) = map.track(rtcp.stream_id()) {
                    for pkt in rtcp.pkts() {
                        if let Ok(Some(sr)) = pkt.as_sender_report() {
                            ingest.sender_report(
                                track,
                                sr.rtp_timestamp(),
                                ntp_to_timestamp(sr.ntp_timestamp().0),
                            );
                        }
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            // A bad frame is counted and reported by the ingest path; the session goes on.
            tracing::debug!(stream = %stream.name, error = %e, "RTSP source: frame rejected");
        }
    };
    ingest.finish(&source.scrub(&end)).await;
    Outcome { streamed, error: end }
}

/// Picks the first H.264/H.265 video stream and the first AAC or Opus audio stream.
fn choose_tracks(
    session: &Session<retina::client::Described>,
) -> Result<(Vec<TrackSpec>, TrackMap), String> {
    let streams = session.streams();
    let mut tracks = Vec::new();
    let mut map = TrackMap { video: None, audio: None };
    for (i, s) in streams.iter().enumerate() {
        let enc = s.encoding_name().to_ascii_lowercase();
        if s.media() == "video" && map.video.is_none() && (enc == "h264" || enc == "h265") {
            let mut params = Vec::new();
            if let Some(ParametersRef::Video(v)) = s.parameters() {
                match v.codec_params() {
                    VideoParametersCodec::H264 { sps, pps } => {
                        params = vec![sps.clone(), pps.clone()];
                    }
                    VideoParametersCodec::H265 { vps, sps, pps } => {
                        params = vec![vps.clone(), sps.clone(), pps.clone()];
                    }
                    _ => {}
                }
            }
            let codec = if enc == "h264" { Codec::H264 } else { Codec::H265 };
            tracks.push(TrackSpec { codec, clock_rate: s.clock_rate_hz(), params });
            map.video = Some(i);
        }
    }
    if map.video.is_none() {
        let offered: Vec<String> =
            streams.iter().map(|s| format!("{}/{}", s.media(), s.encoding_name())).collect();
        return Err(format!(
            "the camera offers no H.264 or H.265 video (it offers: {}); Sluice records H.264/H.265 \
             with optional AAC or Opus audio",
            offered.join(", ")
        ));
    }
    for (i, s) in streams.iter().enumerate() {
        if s.media() != "audio" || map.audio.is_some() {
            continue;
        }
        let enc = s.encoding_name().to_ascii_lowercase();
        let codec = match (enc.as_str(), s.parameters()) {
            ("mpeg4-generic", Some(ParametersRef::Audio(a))) => {
                Codec::Aac { config: Bytes::copy_from_slice(a.extra_data()) }
            }
            ("opus", _) => Codec::Opus {
                channels: s.channels().map(|c| u8::try_from(c.get()).unwrap_or(2)).unwrap_or(2),
            },
            _ => continue,
        };
        tracks.push(TrackSpec { codec, clock_rate: s.clock_rate_hz(), params: Vec::new() });
        map.audio = Some(i);
    }
    Ok((tracks, map))
}

/// Splits 4-byte-length-prefixed NAL units; a truncated tail is dropped.
fn split_length_prefixed(data: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(nal) = rest.get(4..4 + len) else { break };
        if !nal.is_empty() {
            out.push(Bytes::copy_from_slice(nal));
        }
        rest = &rest[4 + len..];
    }
    out
}

/// NTP (32.32 fixed point, seconds since 1900) to a Unix timestamp.
fn ntp_to_timestamp(ntp: u64) -> Timestamp {
    const UNIX_EPOCH_NTP_SECS: i64 = 2_208_988_800;
    let secs = (ntp >> 32) as i64 - UNIX_EPOCH_NTP_SECS;
    let micros = ((ntp & 0xFFFF_FFFF) * 1_000_000) >> 32;
    Timestamp::from_micros(secs * 1_000_000 + micros as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nal_units() {
        let data = [0, 0, 0, 2, 0x67, 1, 0, 0, 0, 1, 0x68, 0, 0, 0, 9, 1];
        let nalus = split_length_prefixed(&data);
        assert_eq!(nalus, vec![Bytes::from_static(&[0x67, 1]), Bytes::from_static(&[0x68])]);
    }

    #[test]
    fn ntp_epoch() {
        assert_eq!(ntp_to_timestamp(2_208_988_800u64 << 32), Timestamp::from_micros(0));
        assert_eq!(
            ntp_to_timestamp((2_208_988_801u64 << 32) | 0x8000_0000),
            Timestamp::from_micros(1_500_000)
        );
    }

    #[tokio::test]
    async fn cameras_are_connected_to_at_the_address_that_was_checked() {
        let url = url::Url::parse("rtsp://user:pw@localhost:8554/cam?x=1").unwrap();
        let loopback: Vec<ipnet::IpNet> =
            ["127.0.0.0/8", "::1/128"].iter().map(|n| n.parse().unwrap()).collect();
        let pinned = checked_url(&url, &Outbound::limited(&loopback)).await.unwrap();
        assert!(
            ["rtsp://user:pw@127.0.0.1:8554/cam?x=1", "rtsp://user:pw@[::1]:8554/cam?x=1"]
                .contains(&pinned.as_str()),
            "{pinned}"
        );
        let refused = checked_url(&url, &Outbound::limited(&[])).await.unwrap_err();
        assert!(refused.contains("loopback"), "{refused}");
        assert_eq!(checked_url(&url, &Outbound::anywhere()).await.unwrap(), url);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let settings = PullSettings {
            pull: crate::config::RtspPullConfig {
                backoff_initial_ms: Duration::from_millis(100),
                backoff_max_ms: Duration::from_millis(1000),
                ..Default::default()
            },
            part_duration: Duration::from_millis(200),
            outbound: Outbound::anywhere(),
        };
        let d0 = backoff(&settings, 0).as_millis();
        let d3 = backoff(&settings, 3).as_millis();
        let d9 = backoff(&settings, 9).as_millis();
        assert!((80..120).contains(&d0), "{d0}");
        assert!((640..960).contains(&d3), "{d3}");
        assert!((800..1200).contains(&d9), "{d9}");
    }
}
