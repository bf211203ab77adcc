//! WebRTC ingest over WHIP (RFC 9725): `POST /v1/streams/{name}/whip` with an SDP offer creates a
//! session (201, the SDP answer, `Location: /v1/streams/{name}/whip/{id}`); `DELETE` on the
//! Location ends it. The HTTP adapter is `crate::api::whip`; this module has no HTTP in it.
//!
//! Each session is one webrtc 0.21 peer connection with recvonly transceivers, bound to the
//! configured UDP addresses (`[webrtc]`), answering without trickle ICE (the answer carries every
//! host candidate). Received H.264 RTP is depacketized (`crate::media::rtp`, shared with RTSP
//! publish) and Opus packets passed as they are, into the shared RTP → store path (`ingest::rtp::RtpIngest`), which holds the
//! stream's single-writer lease: a second publisher (WHIP, RTSP or HTTP) gets 409. PLI is sent
//! when the video track opens, after packet loss, and every `pli_interval_ms` while the store
//! needs a keyframe. The session ends on DELETE, on ICE failure (the client vanished), when it
//! does not connect within `connect_timeout_secs`, when the stream is deleted, or at shutdown;
//! then the open fragment is flushed and the lease released.

pub mod offer;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCIceServer, RTCPeerConnectionState,
    RTCSessionDescription, Registry, SettingEngineBuilder, register_default_interceptors,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

use crate::clock::SharedClock;
use crate::config::WebRtcConfig;
use crate::error::{Error, ErrorKind};
use crate::ingest::rtp::{Codec, RtpIngest, TrackSpec};
use crate::media::rtp::{Depacketizer, RtpPacket, Sequence, Unit};
use crate::metrics::{KindLabel, Metrics};
use crate::name::StreamName;
use crate::video::VideoStream;
use crate::video::tasks::PerStream;

use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};

/// The open WHIP sessions of this server, and what a new one needs.
pub struct WhipSessions {
    /// Session id → the session's task, which holds the peer connection and the stream's lease.
    sessions: PerStream<String, WhipSession>,
    /// Next port to try in `[udp_port_min, udp_port_max]`, so sessions spread over the range.
    next_port: AtomicU16,
    config: WebRtcConfig,
    metrics: Arc<Metrics>,
    clock: SharedClock,
    /// LL-HLS part duration for fragments muxed from RTP.
    part_duration: Duration,
}

/// An open session, as its registry entry describes it.
pub struct WhipSession {
    /// The stream it records into.
    pub stream: StreamName,
}

/// A session that was set up: its id (the last segment of its resource URL) and the SDP answer.
pub struct Opened {
    pub id: String,
    pub answer: String,
}

impl WhipSessions {
    pub fn new(
        config: WebRtcConfig,
        metrics: Arc<Metrics>,
        clock: SharedClock,
        part_duration: Duration,
    ) -> Arc<WhipSessions> {
        Arc::new(WhipSessions {
            sessions: PerStream::new(),
            next_port: AtomicU16::new(0),
            config,
            metrics,
            clock,
            part_duration,
        })
    }

    /// The ICE servers a client may use (RFC 9725 §4.6), as configured.
    pub fn ice_servers(&self) -> &[crate::config::IceServerConfig] {
        &self.config.ice_servers
    }

    /// Ends every session and waits (bounded) until each has flushed its media and released its
    /// stream, so their ProducerDisconnected events are written before the event writer stops.
    pub async fn stop_all(&self) {
        self.sessions.stop_all().await;
    }

    fn rejected(&self, why: &str) {
        self.metrics.sources.whip_rejected.get_or_create(&KindLabel { kind: why.to_owned() }).inc();
    }

    /// Sets up a session recording `stream` from an SDP offer sent with `content_type`; its task
    /// runs until [`WhipSessions::end`], ICE failure, a connect timeout, stream deletion or
    /// shutdown. Every refusal is counted by kind.
    pub async fn open(
        &self,
        stream: &Arc<VideoStream>,
        content_type: Option<&str>,
        offer_sdp: &[u8],
        remote_addr: Option<String>,
    ) -> Result<Opened, Error> {
        let media_type =
            content_type.map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        if media_type.as_deref() != Some("application/sdp") {
            self.rejected("unsupported_media_type");
            return Err(Error::new(
                ErrorKind::UnsupportedMediaType,
                "a WHIP offer is an SDP document: send it with Content-Type: application/sdp",
            ));
        }
        let media = offer::check(offer_sdp).inspect_err(|e| {
            self.rejected(if e.message.contains("codec") { "unsupported_codec" } else { "bad_sdp" })
        })?;
        let name = &stream.name;
        if let Some(p) = stream.producer() {
            self.rejected("conflict");
            return Err(Error::conflict(format!(
                "stream {name} already has a producer ({} from {}, connected at {}); one producer at a time",
                p.protocol,
                p.remote_addr.as_deref().unwrap_or("unknown address"),
                p.connected_at
            )));
        }
        if self.sessions.len() >= self.config.max_sessions {
            self.rejected("limit");
            return Err(Error::unavailable(format!(
                "this server already has {} WHIP sessions (webrtc.max_sessions)",
                self.config.max_sessions
            )));
        }

        let mut tracks =
            vec![TrackSpec { codec: Codec::H264, clock_rate: 90_000, params: Vec::new() }];
        if let Some(channels) = media.opus_channels {
            tracks.push(TrackSpec {
                codec: Codec::Opus { channels },
                clock_rate: 48_000,
                params: Vec::new(),
            });
        }
        let ingest = RtpIngest::start(
            stream.clone(),
            self.clock.clone(),
            "whip",
            remote_addr,
            tracks,
            self.part_duration,
        )
        .inspect_err(|e| {
            self.rejected(if e.kind == ErrorKind::Conflict { "conflict" } else { "failed" })
        })?;

        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (gathered_tx, gathered_rx) = tokio::sync::oneshot::channel();
        let handler = Handler { tx: events_tx, gathered: Mutex::new(Some(gathered_tx)) };
        let pc =
            match build_peer(&self.config, &self.next_port, media.opus_channels.is_some(), handler)
                .await
            {
                Ok(pc) => pc,
                Err(e) => {
                    ingest.finish("the WebRTC session could not be set up").await;
                    self.rejected("failed");
                    return Err(e);
                }
            };
        let answer = match negotiate(&pc, offer_sdp, gathered_rx).await {
            Ok(a) => a,
            Err(e) => {
                let _ = pc.close().await;
                ingest.finish("the offer could not be negotiated").await;
                self.rejected(if e.kind == ErrorKind::InvalidArgument {
                    "bad_sdp"
                } else {
                    "failed"
                });
                return Err(e);
            }
        };

        let id = session_id();
        let metrics = self.metrics.clone();
        metrics.sources.whip_started.inc();
        metrics.sources.whip_active.inc();
        let (sid, s, config) = (id.clone(), stream.clone(), self.config.clone());
        let info = Arc::new(WhipSession { stream: name.clone() });
        // The session task owns the peer connection and the ingest (`video::tasks` rule).
        self.sessions.insert(id.clone(), stream, info, move |stop| async move {
            let session = Session { id: sid, stream: s, pc, ingest, config, stop };
            session.run(events_rx).await;
            metrics.sources.whip_active.dec();
        });
        tracing::info!(stream = %name, session = %id, "WHIP session started");
        Ok(Opened { id, answer })
    }

    /// Ends session `id` of `stream` (DELETE on its resource) and waits (bounded) until its open
    /// fragment is flushed and the lease released.
    pub async fn end(&self, stream: &str, id: &str) -> Result<(), Error> {
        let id = id.to_owned();
        let ours = self.sessions.get(&id).is_some_and(|s| s.stream.as_str() == stream);
        if !ours || self.sessions.remove(&id).await.is_none() {
            return Err(Error::not_found(format!("stream {stream} has no WHIP session {id}")));
        }
        Ok(())
    }
}

fn session_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        b.copy_from_slice(&t.to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What the peer connection's callbacks report to the session.
enum PcEvent {
    State(RTCPeerConnectionState),
    Track(Arc<dyn TrackRemote>),
}

/// Forwards callbacks into the session's channel; never blocks the connection's driver.
struct Handler {
    tx: mpsc::UnboundedSender<PcEvent>,
    /// Fired once when ICE gathering completes (the answer is sent then, without trickle).
    gathered: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete
            && let Some(tx) = self.gathered.lock().unwrap_or_else(|p| p.into_inner()).take()
        {
            let _ = tx.send(());
        }
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.tx.send(PcEvent::State(state));
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tx.send(PcEvent::Track(track));
    }
}

type Peer = Arc<dyn PeerConnection>;

fn h264_codec(pt: u8, profile: &str) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: "video/H264".to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: format!(
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile}"
            ),
            rtcp_feedback: vec![],
        },
        payload_type: pt,
    }
}

async fn build_peer(
    config: &WebRtcConfig,
    next_port: &AtomicU16,
    audio: bool,
    handler: Handler,
) -> Result<Peer, Error> {
    let fail = |what: &str, e: webrtc::error::Error| Error::internal(format!("WebRTC {what}: {e}"));
    let mut media = MediaEngine::default();
    for (pt, profile) in
        [(102, "42e01f"), (106, "42001f"), (108, "4d001f"), (112, "640c1f"), (127, "64001f")]
    {
        media
            .register_codec(h264_codec(pt, profile), RtpCodecKind::Video)
            .map_err(|e| fail("codec", e))?;
    }
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: "audio/opus".to_owned(),
                    clock_rate: 48_000,
                    channels: 2,
                    sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                    rtcp_feedback: vec![],
                },
                payload_type: 111,
            },
            RtpCodecKind::Audio,
        )
        .map_err(|e| fail("codec", e))?;
    let registry = register_default_interceptors(Registry::new(), &mut media)
        .map_err(|e| fail("interceptors", e))?;
    let ice_servers = config
        .ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone(),
            credential: s.credential.clone(),
        })
        .collect();
    let mdns = if config.mdns {
        rtc::ice::mdns::MulticastDnsMode::QueryOnly
    } else {
        rtc::ice::mdns::MulticastDnsMode::Disabled
    };
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(mdns)
        .with_ice_timeouts(
            Some(config.ice_disconnected_timeout_secs),
            Some(config.ice_failed_timeout_secs),
            Some(Duration::from_secs(2)),
        )
        .build();
    let addrs = udp_addrs(config, next_port)?;
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().with_ice_servers(ice_servers).build())
        .with_media_engine(media)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(handler))
        .with_udp_addrs(addrs)
        .build()
        .await
        .map_err(|e| fail("peer connection", e))?;
    let pc: Peer = Arc::new(pc);
    let recvonly = || RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Recvonly,
        ..Default::default()
    };
    pc.add_transceiver_from_kind(RtpCodecKind::Video, Some(recvonly()))
        .await
        .map_err(|e| fail("transceiver", e))?;
    if audio {
        pc.add_transceiver_from_kind(RtpCodecKind::Audio, Some(recvonly()))
            .await
            .map_err(|e| fail("transceiver", e))?;
    }
    Ok(pc)
}

/// The configured addresses, with port 0 replaced by a free port of the configured range.
fn udp_addrs(config: &WebRtcConfig, next_port: &AtomicU16) -> Result<Vec<SocketAddr>, Error> {
    let mut out = Vec::new();
    for a in &config.udp_addrs {
        let mut addr: SocketAddr =
            a.parse().map_err(|_| Error::internal(format!("webrtc.udp_addrs: bad address {a}")))?;
        if addr.port() == 0 && config.udp_port_min > 0 {
            let (min, max) = (config.udp_port_min, config.udp_port_max.max(config.udp_port_min));
            let span = u32::from(max - min) + 1;
            let start = u32::from(next_port.fetch_add(1, Ordering::Relaxed));
            let mut found = None;
            for i in 0..span {
                let port = min + ((start + i) % span) as u16;
                // Probe: a port another session (or process) holds fails to bind.
                if UdpSocket::bind(SocketAddr::new(addr.ip(), port)).is_ok() {
                    found = Some(port);
                    break;
                }
            }
            let port = found.ok_or_else(|| {
                Error::unavailable(format!(
                    "no free UDP port in webrtc.udp_port_min..=udp_port_max ({min}-{max})"
                ))
            })?;
            addr.set_port(port);
        }
        out.push(addr);
    }
    Ok(out)
}

/// How long ICE gathering may take before the answer goes out with what was gathered.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);

async fn negotiate(
    pc: &Peer,
    offer_sdp: &[u8],
    gathered: tokio::sync::oneshot::Receiver<()>,
) -> Result<String, Error> {
    let sdp = String::from_utf8_lossy(offer_sdp).into_owned();
    let offer = RTCSessionDescription::offer(sdp)
        .map_err(|e| Error::invalid(format!("malformed SDP offer: {e}")))?;
    pc.set_remote_description(offer)
        .await
        .map_err(|e| Error::invalid(format!("the SDP offer was rejected: {e}")))?;
    let answer = pc.create_answer(None).await.map_err(|e| {
        Error::invalid(format!("no answer to this offer: {e}; Sluice records {}", offer::SUPPORTED))
    })?;
    pc.set_local_description(answer)
        .await
        .map_err(|e| Error::internal(format!("WebRTC local description: {e}")))?;
    let _ = tokio::time::timeout(GATHER_TIMEOUT, gathered).await;
    let answer = pc
        .local_description()
        .await
        .ok_or_else(|| Error::internal("WebRTC: no local description after answering"))?;
    Ok(answer.sdp)
}

/// One media unit from a track reader to the session.
enum Media {
    Video {
        ts: u32,
        nalus: Vec<Bytes>,
    },
    Audio {
        ts: u32,
        packet: Bytes,
    },
    /// Video packets were lost: ask for a keyframe now.
    Loss,
}

struct Session {
    id: String,
    stream: Arc<VideoStream>,
    pc: Peer,
    ingest: RtpIngest,
    config: WebRtcConfig,
    stop: CancellationToken,
}

impl Session {
    async fn run(mut self, mut events: mpsc::UnboundedReceiver<PcEvent>) {
        let name = self.stream.name.to_string();
        // Readers push here; bounded so a stalled store slows the readers, not memory.
        let (media_tx, mut media_rx) = mpsc::channel::<Media>(512);
        let mut readers: Vec<JoinHandle<()>> = Vec::new();
        let mut video: Option<(Arc<dyn TrackRemote>, u32)> = None;
        let mut connected = false;
        let connect_deadline = tokio::time::sleep(self.config.connect_timeout_secs);
        tokio::pin!(connect_deadline);
        let mut pli = tokio::time::interval(self.config.pli_interval_ms);
        pli.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reason: String = loop {
            tokio::select! {
                _ = self.stop.cancelled() => break "ended by the client (DELETE), stream deletion or server shutdown".to_owned(),
                _ = &mut connect_deadline, if !connected => {
                    break format!("the client did not connect within {}s", self.config.connect_timeout_secs.as_secs());
                }
                ev = events.recv() => match ev {
                    None => break "the peer connection ended".to_owned(),
                    Some(PcEvent::State(s)) => match s {
                        RTCPeerConnectionState::Connected => {
                            connected = true;
                            tracing::info!(stream = %name, session = %self.id, "WHIP peer connected");
                        }
                        RTCPeerConnectionState::Failed => break "ICE failed: the client vanished".to_owned(),
                        RTCPeerConnectionState::Closed => break "the peer connection closed".to_owned(),
                        _ => {}
                    },
                    Some(PcEvent::Track(track)) => {
                        match track.kind().await {
                            RtpCodecKind::Video if video.is_none() => {
                                let ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
                                send_pli(&track, ssrc).await;
                                video = Some((track.clone(), ssrc));
                                readers.push(tokio::spawn(read_video(track, media_tx.clone())));
                            }
                            RtpCodecKind::Audio => {
                                readers.push(tokio::spawn(read_audio(track, media_tx.clone())));
                            }
                            _ => {}
                        }
                    }
                },
                m = media_rx.recv() => {
                    let result = match m {
                        None => continue,
                        Some(Media::Video { ts, nalus }) => self.ingest.video(0, ts, &nalus).await,
                        Some(Media::Audio { ts, packet }) => self.ingest.audio(1, ts, packet).await,
                        Some(Media::Loss) => {
                            self.ingest.packet_loss(0);
                            if let Some((t, ssrc)) = &video { send_pli(t, *ssrc).await; }
                            Ok(())
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(stream = %name, error = %e, "WHIP: frame rejected");
                    }
                }
                _ = pli.tick() => {
                    if let Some((t, ssrc)) = &video && self.ingest.needs_keyframe() {
                        send_pli(t, *ssrc).await;
                    }
                }
            }
        };
        tracing::info!(stream = %name, session = %self.id, %reason, "WHIP session ending");
        let _ = self.pc.close().await;
        for r in readers {
            r.abort();
        }
        // Frames already handed over are stored; then the lease is released.
        while let Ok(m) = media_rx.try_recv() {
            let _ = match m {
                Media::Video { ts, nalus } => self.ingest.video(0, ts, &nalus).await,
                Media::Audio { ts, packet } => self.ingest.audio(1, ts, packet).await,
                Media::Loss => Ok(()),
            };
        }
        self.ingest.finish(&reason).await;
    }
}

async fn send_pli(track: &Arc<dyn TrackRemote>, media_ssrc: u32) {
    let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc };
    if let Err(e) = track.write_rtcp(vec![Box::new(pli)]).await {
        tracing::debug!(error = %e, "WHIP: PLI not sent");
    }
}

/// Reads a video track until it ends: RTP → access units.
async fn read_video(track: Arc<dyn TrackRemote>, tx: mpsc::Sender<Media>) {
    let mut depacketizer = Depacketizer::h264();
    let mut units = Vec::new();
    while let Some(ev) = track.poll().await {
        match ev {
            TrackRemoteEvent::OnRtpPacket(p) => {
                let h = &p.header;
                let mut loss = match depacketizer.sequence(h.sequence_number) {
                    Sequence::Stale => continue,
                    Sequence::Lost => true,
                    Sequence::InOrder => false,
                };
                let packet = RtpPacket {
                    payload_type: h.payload_type,
                    marker: h.marker,
                    sequence: h.sequence_number,
                    timestamp: h.timestamp,
                    ssrc: h.ssrc,
                    payload: p.payload.clone(),
                };
                if depacketizer.push(packet, &mut units).is_err() {
                    // A malformed payload: its picture is unusable, as if the packet were lost.
                    depacketizer.lost();
                    loss = true;
                }
                if loss && tx.send(Media::Loss).await.is_err() {
                    return;
                }
                for unit in units.drain(..) {
                    if let Unit::Video { timestamp, nalus } = unit
                        && tx.send(Media::Video { ts: timestamp, nalus }).await.is_err()
                    {
                        return;
                    }
                }
            }
            TrackRemoteEvent::OnEnded => return,
            _ => {}
        }
    }
}

/// Reads an audio track until it ends: each Opus RTP payload is one packet (RFC 7587).
async fn read_audio(track: Arc<dyn TrackRemote>, tx: mpsc::Sender<Media>) {
    while let Some(ev) = track.poll().await {
        match ev {
            TrackRemoteEvent::OnRtpPacket(p) => {
                if p.payload.is_empty() {
                    continue;
                }
                let m = Media::Audio { ts: p.header.timestamp, packet: p.payload.clone() };
                if tx.send(m).await.is_err() {
                    return;
                }
            }
            TrackRemoteEvent::OnEnded => return,
            _ => {}
        }
    }
}
