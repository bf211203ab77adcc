//! RTSP publish (RFC 2326, the RTSP 1.0 that ffmpeg, GStreamer and OBS speak): a producer
//! ANNOUNCEs an SDP for `rtsp://host:8554/<stream>`, SETUPs each track over TCP (interleaved) or
//! UDP (client_port → server_port pairs from `[rtsp] udp_ports`), and RECORDs. RTP packets are
//! depacketized (`crate::media::rtp`) and handed to the shared RTP ingest (`crate::ingest::rtp`),
//! which muxes fMP4 into the stream's single writer.
//!
//! A Rust server on tokio (rtsp-types for messages, sdp-types for the SDP) rather than
//! gst-rtsp-server: one process, no GLib main loop, and cheap enough for 100+ publishers on two
//! cores (see `docs/design/rtp-ingest.md` and `docs/benchmarks.md`).
//!
//! - [`session`]: one connection's state machine (requests, RTP/RTCP, timeouts).

pub mod access;
pub mod session;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::config::RtspConfig;
use crate::video::VideoStreams;

/// What every RTSP connection needs.
pub struct RtspContext {
    pub video: Arc<VideoStreams>,
    /// Publishers' credentials and grants (`access`).
    pub auth: Arc<crate::auth::Auth>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub clock: SharedClock,
    pub config: RtspConfig,
    /// Fragment (LL-HLS part) length for the RTP ingest (`[ingest] part_duration_ms`).
    pub part_duration: Duration,
    pub ports: UdpPorts,
    /// Cancelled at shutdown: connections end their sessions (finishing the open fragment).
    pub shutdown: CancellationToken,
}

/// The UDP port pairs handed to UDP tracks: the next candidate, so successive sessions do not
/// retry the same busy ports. Binding is what actually reserves a pair.
pub struct UdpPorts {
    range: [u16; 2],
    /// std `Mutex`: a counter updated without `.await`.
    next: Mutex<u16>,
}

impl UdpPorts {
    pub fn new(range: [u16; 2]) -> Self {
        let first = range[0] + (range[0] % 2);
        UdpPorts { range, next: Mutex::new(first) }
    }

    /// Binds an even/odd pair of UDP sockets on `ip` from the range.
    pub fn bind_pair(
        &self,
        ip: std::net::IpAddr,
    ) -> std::io::Result<(tokio::net::UdpSocket, tokio::net::UdpSocket)> {
        let first = self.range[0] + (self.range[0] % 2);
        let last = self.range[1];
        if first >= last {
            return Err(std::io::Error::other("the UDP port range holds no even/odd pair"));
        }
        let pairs = (u32::from(last) - u32::from(first)).div_ceil(2);
        for _ in 0..pairs {
            let port = {
                let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
                let port = *next;
                *next = if u32::from(port) + 3 > u32::from(last) { first } else { port + 2 };
                port
            };
            let rtp = std::net::UdpSocket::bind((ip, port));
            let rtcp = std::net::UdpSocket::bind((ip, port + 1));
            if let (Ok(rtp), Ok(rtcp)) = (rtp, rtcp) {
                rtp.set_nonblocking(true)?;
                rtcp.set_nonblocking(true)?;
                return Ok((
                    tokio::net::UdpSocket::from_std(rtp)?,
                    tokio::net::UdpSocket::from_std(rtcp)?,
                ));
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("no free UDP port pair in {first}-{last}"),
        ))
    }
}

/// The bound RTSP listener, before it serves (bound early so its address is known, e.g. port 0
/// in tests).
pub struct RtspListener {
    listener: std::net::TcpListener,
    addr: SocketAddr,
}

impl RtspListener {
    pub fn bind(config: &RtspConfig) -> std::io::Result<RtspListener> {
        let listener = std::net::TcpListener::bind(config.listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        Ok(RtspListener { listener, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Accepts connections until `ctx.shutdown`, then waits for every connection to finish its
    /// session (each flushes its open fragment and releases its stream).
    pub async fn serve(self, ctx: Arc<RtspContext>) {
        let listener = match TcpListener::from_std(self.listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "RTSP listener unusable");
                return;
            }
        };
        tracing::info!(addr = %self.addr, "RTSP publish listening");
        // One task per connection; the set is drained at shutdown so no session outlives `run`.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let _ = socket.set_nodelay(true);
                        connections.spawn(session::run(ctx.clone(), socket, peer));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "RTSP accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        while connections.join_next().await.is_some() {}
    }
}
