//! One RTSP connection: requests (OPTIONS, ANNOUNCE, SETUP, RECORD, GET_PARAMETER,
//! SET_PARAMETER, TEARDOWN) and, once recording, RTP/RTCP — interleaved on the connection
//! (`$` framing, RFC 2326 §10.12) or on the UDP pairs the SETUPs bound.
//!
//! The session ends on TEARDOWN, when the connection closes (a publisher that vanished), after
//! `[rtsp] session_timeout_secs` without any packet or request, when the stream is deleted, or at
//! shutdown; in every case the open fragment is flushed and the stream released.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use rtsp_types::headers;
use rtsp_types::{Message, Method, Request, Response, StatusCode, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{RtspContext, access};
use crate::auth::Identity;
use crate::error::ErrorKind;
use crate::events::sink::Denial;
use crate::ingest::rtp::RtpIngest;
use crate::media::rtp::{Depacketizer, Sequence, Unit, parse_rtp, rtcp_sender_report};
use crate::media::sdp;
use crate::name::StreamName;
use crate::video::NewStream;

/// Largest RTSP request (headers and body) accepted.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// A packet from a UDP socket: (track, is RTCP, bytes).
type UdpPacket = (usize, bool, Bytes);

struct Track {
    control: String,
    payload_type: u8,
    description: String,
    depacketizer: Option<Depacketizer>,
    /// The track's index in the RTP ingest (supported codecs only).
    ingest: Option<usize>,
    /// Interleaved channel of RTP (RTCP is the next one), for TCP transport.
    channel: Option<u8>,
    /// The receive tasks of a UDP transport.
    udp: Vec<JoinHandle<()>>,
    setup: bool,
}

struct Publish {
    stream: String,
    ingest: RtpIngest,
    tracks: Vec<Track>,
    recording: bool,
    /// Packets that were not RTP/RTCP of a known track, or did not depacketize.
    bad_packets: u64,
}

struct Conn {
    ctx: Arc<RtspContext>,
    peer: SocketAddr,
    local: SocketAddr,
    session_id: String,
    /// The Digest nonce of this connection's challenges.
    nonce: String,
    publish: Option<Publish>,
    udp_tx: mpsc::Sender<UdpPacket>,
    out: Vec<u8>,
    /// TEARDOWN received: close after answering.
    closing: bool,
    units: Vec<Unit>,
}

/// Serves one connection until it ends (see the module docs).
pub async fn run(ctx: Arc<RtspContext>, mut socket: TcpStream, peer: SocketAddr) {
    let local = socket.local_addr().unwrap_or(ctx.config.listen);
    // UDP receive tasks feed the connection task, which owns the ingest; bounded so a flood
    // waits in the sockets' buffers (and drops there) instead of in memory.
    let (udp_tx, mut udp_rx) = mpsc::channel::<UdpPacket>(1024);
    let mut conn = Conn {
        ctx: ctx.clone(),
        peer,
        local,
        session_id: session_id(),
        nonce: session_id(),
        publish: None,
        udp_tx,
        out: Vec::with_capacity(1024),
        closing: false,
        units: Vec::new(),
    };
    let timeout = ctx.config.session_timeout_secs.max(Duration::from_secs(1));
    let mut deadline = Instant::now() + timeout;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let reason: String = loop {
        let cancelled = conn.publish.as_ref().map(|p| p.ingest.cancelled());
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break "server shutting down".into(),
            _ = async { match &cancelled { Some(c) => c.cancelled().await, None => std::future::pending().await } } => {
                break "the stream was deleted or the server is shutting down".into();
            }
            _ = tokio::time::sleep_until(deadline) => {
                break format!("no data for {} s (session timeout)", timeout.as_secs());
            }
            Some((track, rtcp, data)) = udp_rx.recv() => {
                deadline = Instant::now() + timeout;
                if let Err(e) = conn.packet(track, rtcp, data).await {
                    break e;
                }
            }
            read = socket.read_buf(&mut buf) => {
                match read {
                    Ok(0) => break "connection closed by the publisher".into(),
                    Err(e) => break format!("connection error: {e}"),
                    Ok(_) => {}
                }
                deadline = Instant::now() + timeout;
                let r = conn.input(&mut buf).await;
                if !conn.out.is_empty() {
                    if let Err(e) = socket.write_all(&conn.out).await {
                        break format!("connection error: {e}");
                    }
                    conn.out.clear();
                }
                if let Err(e) = r {
                    break e;
                }
                if conn.closing {
                    break "TEARDOWN".into();
                }
            }
        }
    };
    if let Some(p) = conn.publish.take() {
        for t in &p.tracks {
            for h in &t.udp {
                h.abort();
            }
        }
        if p.bad_packets > 0 {
            tracing::info!(stream = %p.stream, bad_packets = p.bad_packets, "RTSP packets ignored");
        }
        tracing::info!(stream = %p.stream, peer = %peer, %reason, "RTSP publish ended");
        p.ingest.finish(&format!("rtsp: {reason}")).await;
    }
    let _ = socket.shutdown().await;
}

fn session_id() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02X}")).collect()
}

impl Conn {
    /// Consumes complete messages from `buf`. An error ends the connection.
    async fn input(&mut self, buf: &mut BytesMut) -> Result<(), String> {
        loop {
            if buf.is_empty() || self.closing {
                return Ok(());
            }
            if buf[0] == b'$' {
                if buf.len() < 4 {
                    return Ok(());
                }
                let channel = buf[1];
                let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                if buf.len() < 4 + len {
                    buf.reserve(4 + len - buf.len());
                    return Ok(());
                }
                buf.advance(4);
                let data = buf.split_to(len).freeze();
                self.interleaved(channel, data).await?;
                continue;
            }
            match Message::<Vec<u8>>::parse(&buf[..]) {
                Ok((msg, consumed)) => {
                    buf.advance(consumed);
                    match msg {
                        Message::Request(req) => self.request(req).await,
                        // Responses and data frames parsed here are not ours to act on.
                        Message::Response(_) => {}
                        Message::Data(d) => {
                            let ch = d.channel_id();
                            self.interleaved(ch, Bytes::from(d.into_body())).await?;
                        }
                    }
                }
                Err(rtsp_types::ParseError::Incomplete(_)) => {
                    if buf.len() > MAX_REQUEST_BYTES {
                        self.respond_plain(StatusCode::BadRequest, None, "request too large");
                        return Err("request over 64 KiB".into());
                    }
                    return Ok(());
                }
                Err(rtsp_types::ParseError::Error) => {
                    self.respond_plain(StatusCode::BadRequest, None, "malformed RTSP message");
                    return Err("malformed RTSP message".into());
                }
            }
        }
    }

    async fn interleaved(&mut self, channel: u8, data: Bytes) -> Result<(), String> {
        let Some(p) = self.publish.as_mut() else { return Ok(()) };
        let found = p
            .tracks
            .iter()
            .position(|t| t.channel.is_some_and(|c| c == channel || c.wrapping_add(1) == channel));
        match found {
            Some(i) => {
                let rtcp = p.tracks[i].channel != Some(channel);
                self.packet(i, rtcp, data).await
            }
            None => {
                p.bad_packets += 1;
                Ok(())
            }
        }
    }

    /// One RTP or RTCP packet of track `i`.
    async fn packet(&mut self, i: usize, rtcp: bool, data: Bytes) -> Result<(), String> {
        let Some(p) = self.publish.as_mut() else { return Ok(()) };
        if !p.recording {
            return Ok(());
        }
        let Some(t) = p.tracks.get_mut(i) else { return Ok(()) };
        let Some(ingest_track) = t.ingest else { return Ok(()) };
        if rtcp {
            if let Some((rtp_ts, ntp)) = rtcp_sender_report(&data) {
                p.ingest.sender_report(ingest_track, rtp_ts, ntp);
            }
            return Ok(());
        }
        let pkt = match parse_rtp(data) {
            Ok(pkt) if pkt.payload_type == t.payload_type => pkt,
            _ => {
                p.bad_packets += 1;
                return Ok(());
            }
        };
        let Some(depack) = t.depacketizer.as_mut() else { return Ok(()) };
        match depack.sequence(pkt.sequence) {
            Sequence::InOrder => {}
            Sequence::Lost => p.ingest.packet_loss(ingest_track),
            Sequence::Stale => {
                p.bad_packets += 1; // a duplicate or late packet
                return Ok(());
            }
        }
        self.units.clear();
        if depack.push(pkt, &mut self.units).is_err() {
            p.bad_packets += 1;
        }
        for unit in self.units.drain(..) {
            let r = match unit {
                Unit::Video { timestamp, nalus } => {
                    p.ingest.video(ingest_track, timestamp, &nalus).await
                }
                Unit::Audio { timestamp, frame } => {
                    p.ingest.audio(ingest_track, timestamp, frame).await
                }
            };
            if let Err(e) = r {
                return Err(format!("ingest failed: {e}"));
            }
        }
        Ok(())
    }

    async fn request(&mut self, req: Request<Vec<u8>>) {
        let cseq = req.header(&headers::CSEQ).map(|v| v.as_str().trim().to_owned());
        let Some(cseq) = cseq else {
            self.respond_plain(StatusCode::BadRequest, None, "CSeq header missing");
            return;
        };
        let cseq = Some(cseq.as_str());
        // Requests after SETUP must name our session.
        if let Some(s) = req.header(&headers::SESSION) {
            let id = s.as_str().split(';').next().unwrap_or("").trim();
            if self.publish.as_ref().is_some_and(|p| p.tracks.iter().any(|t| t.setup))
                && id != self.session_id
            {
                self.respond_plain(StatusCode::SessionNotFound, cseq, "unknown session");
                return;
            }
        }
        match req.method() {
            Method::Options => {
                let r = self
                    .response(StatusCode::Ok, cseq)
                    .header(
                        headers::PUBLIC,
                        "OPTIONS, ANNOUNCE, SETUP, RECORD, GET_PARAMETER, SET_PARAMETER, TEARDOWN",
                    )
                    .build(Vec::new());
                self.write(r);
            }
            Method::Announce => self.announce(&req, cseq),
            Method::Setup => self.setup(&req, cseq),
            Method::Record => match self.publish.as_mut() {
                Some(p) if p.tracks.iter().any(|t| t.setup) => {
                    p.recording = true;
                    tracing::info!(stream = %p.stream, peer = %self.peer, "RTSP publish recording");
                    let r = self.response(StatusCode::Ok, cseq).build(Vec::new());
                    self.write(r);
                }
                _ => self.respond_plain(
                    StatusCode::MethodNotValidInThisState,
                    cseq,
                    "RECORD needs ANNOUNCE and SETUP first",
                ),
            },
            Method::GetParameter | Method::SetParameter => {
                let r = self.response(StatusCode::Ok, cseq).build(Vec::new());
                self.write(r);
            }
            Method::Teardown => {
                let r = self.response(StatusCode::Ok, cseq).build(Vec::new());
                self.write(r);
                self.closing = true;
            }
            _ => self.respond_plain(
                StatusCode::MethodNotAllowed,
                cseq,
                "this server takes publishers (ANNOUNCE/RECORD); play streams over HLS",
            ),
        }
    }

    fn announce(&mut self, req: &Request<Vec<u8>>, cseq: Option<&str>) {
        if self.publish.is_some() {
            self.respond_plain(StatusCode::MethodNotValidInThisState, cseq, "already announced");
            return;
        }
        let Some(name) = req.request_uri().and_then(stream_of) else {
            self.respond_plain(
                StatusCode::BadRequest,
                cseq,
                "the URL must be rtsp://host:port/<stream name>",
            );
            return;
        };
        let Some(who) = self.authorized(req, cseq, &name) else {
            return;
        };
        let sdp_tracks = match sdp::parse(req.body()) {
            Ok(t) => t,
            Err(e) => {
                self.respond_plain(StatusCode::BadRequest, cseq, &e);
                return;
            }
        };
        let mut specs = Vec::new();
        let mut tracks = Vec::new();
        for t in sdp_tracks {
            let (ingest, depacketizer) = match t.media {
                Some((spec, depack)) => {
                    specs.push(spec);
                    (Some(specs.len() - 1), Some(depack))
                }
                None => (None, None),
            };
            tracks.push(Track {
                control: t.control,
                payload_type: t.payload_type,
                description: t.description,
                depacketizer,
                ingest,
                channel: None,
                udp: Vec::new(),
                setup: false,
            });
        }
        if specs.is_empty() {
            let found: Vec<&str> = tracks.iter().map(|t| t.description.as_str()).collect();
            self.respond_plain(
                StatusCode::UnsupportedMediaType,
                cseq,
                &format!(
                    "no supported track (H.264, H.265, AAC, Opus) in the SDP; found {found:?}"
                ),
            );
            return;
        }
        let stream = match self.ctx.video.get(&name) {
            Ok(s) => s,
            Err(e) if e.kind == ErrorKind::NotFound && self.ctx.config.auto_create_streams => {
                let created = self.ctx.video.create(
                    NewStream {
                        name: name.clone(),
                        retention_hours: None,
                        retention_bytes: None,
                        media_type: Some("video/h264".into()),
                        tags: Default::default(),
                        device_name: None,
                        kms_key_id: None,
                    },
                    who.name(),
                );
                match created.or_else(|_| self.ctx.video.get(&name)) {
                    Ok(s) => s,
                    Err(e) => {
                        self.respond_plain(StatusCode::InternalServerError, cseq, &e.message);
                        return;
                    }
                }
            }
            Err(e) => {
                let status = if e.kind == ErrorKind::NotFound {
                    StatusCode::NotFound
                } else {
                    StatusCode::InternalServerError
                };
                let msg = if e.kind == ErrorKind::NotFound {
                    format!("stream {name} does not exist (and [rtsp] auto_create_streams is off)")
                } else {
                    e.message
                };
                self.respond_plain(status, cseq, &msg);
                return;
            }
        };
        let ingest = RtpIngest::start(
            stream,
            self.ctx.clock.clone(),
            "rtsp",
            Some(self.peer.to_string()),
            specs,
            self.ctx.part_duration,
        );
        match ingest {
            Ok(ingest) => {
                tracing::info!(stream = %name, peer = %self.peer, "RTSP publish announced");
                self.publish = Some(Publish {
                    stream: name.to_string(),
                    ingest,
                    tracks,
                    recording: false,
                    bad_packets: 0,
                });
                let r = self.response(StatusCode::Ok, cseq).build(Vec::new());
                self.write(r);
            }
            Err(e) => {
                let status = match e.kind {
                    // One publisher per stream: RTSP has no 409; 453 is what publishers (and
                    // mediamtx) use for "the path is busy".
                    ErrorKind::Conflict => StatusCode::NotEnoughBandwidth,
                    ErrorKind::NotFound => StatusCode::NotFound,
                    ErrorKind::InvalidArgument => StatusCode::UnsupportedMediaType,
                    _ => StatusCode::InternalServerError,
                };
                self.respond_plain(status, cseq, &e.message);
            }
        }
    }

    fn setup(&mut self, req: &Request<Vec<u8>>, cseq: Option<&str>) {
        let Some(p) = self.publish.as_mut() else {
            self.respond_plain(
                StatusCode::MethodNotValidInThisState,
                cseq,
                "SETUP before ANNOUNCE",
            );
            return;
        };
        if p.recording {
            self.respond_plain(StatusCode::MethodNotValidInThisState, cseq, "already recording");
            return;
        }
        let url = req.request_uri().map(|u| u.as_str().to_owned()).unwrap_or_default();
        let index = p.tracks.iter().position(|t| {
            !t.setup
                && (url == t.control
                    || url.trim_end_matches('/').ends_with(&format!("/{}", t.control)))
        });
        let index = index.or_else(|| p.tracks.iter().position(|t| !t.setup));
        let Some(index) = index else {
            self.respond_plain(StatusCode::NotFound, cseq, "no such track (or already set up)");
            return;
        };
        let transport = req.header(&headers::TRANSPORT).map(|v| v.as_str().to_owned());
        let Some(transport) = transport else {
            self.respond_plain(StatusCode::BadRequest, cseq, "Transport header missing");
            return;
        };
        // The first acceptable transport of the list (RFC 2326 §12.39).
        let mut reply = None;
        for spec in transport.split(',') {
            let params: Vec<&str> = spec.split(';').map(str::trim).collect();
            let proto = params.first().copied().unwrap_or("").to_ascii_uppercase();
            let param = |name: &str| {
                params.iter().find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
                })
            };
            if params.iter().any(|p| p.eq_ignore_ascii_case("multicast")) {
                continue;
            }
            if proto == "RTP/AVP/TCP" {
                let channel = param("interleaved")
                    .and_then(|v| v.split('-').next())
                    .and_then(|c| c.trim().parse::<u8>().ok())
                    .unwrap_or((index * 2) as u8);
                if channel == u8::MAX
                    || p.tracks.iter().any(|t| {
                        t.channel
                            .is_some_and(|c| c == channel || c + 1 == channel || c == channel + 1)
                    })
                {
                    continue;
                }
                p.tracks[index].channel = Some(channel);
                reply = Some(format!(
                    "RTP/AVP/TCP;unicast;interleaved={}-{};mode=record",
                    channel,
                    channel + 1
                ));
                break;
            }
            if proto == "RTP/AVP" || proto == "RTP/AVP/UDP" {
                let client = param("client_port").unwrap_or("").to_owned();
                let (rtp, rtcp) = match self.ctx.ports.bind_pair(self.local.ip()) {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "RTSP: no UDP ports for a SETUP");
                        continue;
                    }
                };
                let server_port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
                let tx = self.udp_tx.clone();
                let peer_ip = self.peer.ip();
                let t = &mut p.tracks[index];
                t.udp.push(tokio::spawn(udp_receive(rtp, index, false, peer_ip, tx.clone())));
                t.udp.push(tokio::spawn(udp_receive(rtcp, index, true, peer_ip, tx)));
                let client = if client.is_empty() {
                    String::new()
                } else {
                    format!(";client_port={client}")
                };
                reply = Some(format!(
                    "RTP/AVP/UDP;unicast{client};server_port={}-{};mode=record",
                    server_port,
                    server_port + 1
                ));
                break;
            }
        }
        let Some(reply) = reply else {
            self.respond_plain(
                StatusCode::UnsupportedTransport,
                cseq,
                "supported transports: RTP/AVP/TCP (interleaved) and RTP/AVP (UDP unicast)",
            );
            return;
        };
        p.tracks[index].setup = true;
        let r =
            self.response(StatusCode::Ok, cseq).header(headers::TRANSPORT, reply).build(Vec::new());
        self.write(r);
    }

    /// Applies `[auth]` to an ANNOUNCE (`super::access`): who is publishing, or `None` after
    /// answering 401 or 403.
    fn authorized(
        &mut self,
        req: &Request<Vec<u8>>,
        cseq: Option<&str>,
        name: &StreamName,
    ) -> Option<Identity> {
        let ctx = self.ctx.clone();
        let header = req.header(&headers::AUTHORIZATION).map(|v| v.as_str().to_owned());
        let verdict = access::check(
            &ctx.auth,
            ctx.config.digest,
            &self.nonce,
            "ANNOUNCE",
            header.as_deref(),
            name.as_str(),
            self.peer.ip(),
        );
        let (status, reason, message) = match verdict {
            access::Verdict::Allowed(who) => return Some(who),
            access::Verdict::Challenge(m) => (
                StatusCode::Unauthorized,
                if header.is_some() { "bad_secret" } else { "missing" },
                m.to_owned(),
            ),
            access::Verdict::Forbidden(m) => (StatusCode::Forbidden, "not_granted", m),
        };
        let d = Denial {
            surface: "rtsp",
            reason,
            principal: "",
            action: Some("publish"),
            stream: name.as_str(),
            remote: Some(self.peer.ip()),
        };
        ctx.video.events().denied(&ctx.metrics, d);
        tracing::info!(peer = %self.peer, stream = %name, status = u16::from(status), %message, "RTSP publish refused");
        let mut r = self.response(status, cseq).header(headers::CONTENT_TYPE, "text/plain");
        if status == StatusCode::Unauthorized {
            for c in access::challenges(ctx.config.digest, &self.nonce) {
                r = r.header(headers::WWW_AUTHENTICATE, c);
            }
        }
        let r = r.build(format!("{message}\n").into_bytes());
        self.write(r);
        None
    }

    fn response(&self, status: StatusCode, cseq: Option<&str>) -> rtsp_types::ResponseBuilder {
        let mut b = Response::builder(Version::V1_0, status)
            .header(headers::SERVER, concat!("Sluice/", env!("CARGO_PKG_VERSION")));
        if let Some(c) = cseq {
            b = b.header(headers::CSEQ, c);
        }
        if self.publish.is_some() {
            b = b.header(
                headers::SESSION,
                format!(
                    "{};timeout={}",
                    self.session_id,
                    self.ctx.config.session_timeout_secs.as_secs()
                ),
            );
        }
        b
    }

    /// An error response with its reason as a text body (ffmpeg and GStreamer log the status).
    fn respond_plain(&mut self, status: StatusCode, cseq: Option<&str>, message: &str) {
        tracing::info!(peer = %self.peer, status = u16::from(status), %message, "RTSP request refused");
        let r = self
            .response(status, cseq)
            .header(headers::CONTENT_TYPE, "text/plain")
            .build(format!("{message}\n").into_bytes());
        self.write(r);
    }

    fn write(&mut self, r: Response<Vec<u8>>) {
        let _ = r.write(&mut self.out);
    }
}

/// The stream name of an RTSP URL: its path, one segment (`rtsp://host:8554/<name>`).
fn stream_of(url: &rtsp_types::Url) -> Option<StreamName> {
    let path = url.path().trim_matches('/');
    if path.is_empty() || path.contains('/') {
        return None;
    }
    StreamName::new(path).ok()
}

/// Receives one UDP socket's packets (from the publisher's address only) until the session
/// ends (the connection task aborts it, or drops the receiver).
async fn udp_receive(
    socket: tokio::net::UdpSocket,
    track: usize,
    rtcp: bool,
    peer: std::net::IpAddr,
    tx: mpsc::Sender<UdpPacket>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else { return };
        if from.ip() != peer {
            continue;
        }
        if tx.send((track, rtcp, Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_from_urls() {
        let u = |s: &str| rtsp_types::Url::parse(s).unwrap();
        assert_eq!(stream_of(&u("rtsp://h:8554/cam-1")).unwrap().as_str(), "cam-1");
        assert!(stream_of(&u("rtsp://h:8554/")).is_none());
        assert!(stream_of(&u("rtsp://h:8554/a/b")).is_none());
    }
}
