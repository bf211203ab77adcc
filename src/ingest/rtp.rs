//! One path from any RTP source (RTSP publish, RTSP pull, WHIP) to the store: the I/O shell
//! around the sans-I/O [`RtpSession`] (`crate::media::rtp_session`, which turns access units into
//! described init segments and fragments). An [`RtpIngest`] holds the stream's single-writer
//! lease ([`ProducerSession`], absolute timestamps), feeds the session with the server clock's
//! arrival times, and hands what it outputs to the writer, which owns durability.
//!
//! See `docs/design/rtp-ingest.md`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, Timestamp};
pub use crate::media::rtp_session::{Codec, SR_MAX_SKEW, TrackSpec};
use crate::media::rtp_session::{Output, RtpError, RtpSession};
use crate::video::VideoStream;
pub use crate::video::writer::IngestError;
use crate::video::writer::{IngestErrorCode, ProducerInfo, ProducerSession, TimestampMode};

/// An RTP session's ingest into one stream. See the module docs.
pub struct RtpIngest {
    stream: Arc<VideoStream>,
    clock: SharedClock,
    session: Option<ProducerSession>,
    rtp: RtpSession,
    name: String,
}

fn ingest_error(e: RtpError) -> IngestError {
    let code = match e {
        RtpError::Tracks(_) => IngestErrorCode::InvalidMedia,
        RtpError::WrongTrack(_) => IngestErrorCode::TrackNumberMismatch,
        RtpError::Mux(_) => IngestErrorCode::InternalError,
    };
    IngestError::new(code, e.to_string())
}

impl RtpIngest {
    /// Claims the stream's single-writer lease (a `Conflict` error naming the current producer
    /// if it is taken: RTSP answers 453, HTTP 409), emits ProducerConnected.
    pub fn start(
        stream: Arc<VideoStream>,
        clock: SharedClock,
        protocol: &'static str,
        remote_addr: Option<String>,
        tracks: Vec<TrackSpec>,
        part_duration: Duration,
    ) -> Result<RtpIngest, crate::error::Error> {
        // Checked before the lease is taken: a bad declaration never shows as a producer.
        RtpSession::new(tracks.clone(), part_duration, None)
            .map_err(|e| crate::error::Error::invalid(e.to_string()))?;
        let connected_at = clock.now();
        let session = stream.claim_producer(
            ProducerInfo { protocol, remote_addr, connected_at },
            TimestampMode::Absolute,
        )?;
        // With the lease held nothing else appends: the session starts after what is stored.
        let not_before = stream.last_fragment().map(|l| l.producer_end());
        let rtp = RtpSession::new(tracks, part_duration, not_before)
            .map_err(|e| crate::error::Error::invalid(e.to_string()))?;
        let name = stream.name.to_string();
        Ok(RtpIngest { stream, clock, session: Some(session), rtp, name })
    }

    /// Cancelled when the stream is deleted or the server shuts down: the caller stops reading
    /// and calls [`RtpIngest::finish`].
    pub fn cancelled(&self) -> CancellationToken {
        self.session.as_ref().map(|s| s.cancelled().clone()).unwrap_or_default()
    }

    /// Whether the store wants a keyframe soon (none seen yet, or loss reported since the last
    /// one): WHIP sends a PLI on it.
    pub fn needs_keyframe(&self) -> bool {
        self.rtp.needs_keyframe()
    }

    /// Reports lost packets on `track` (a gap in RTP sequence numbers): a keyframe is wanted, and
    /// video frames are dropped until it comes.
    pub fn packet_loss(&mut self, track: usize) {
        self.rtp.packet_loss(track);
    }

    /// Frames dropped so far (before the first keyframe, without parameter sets, unusable).
    pub fn dropped_frames(&self) -> u64 {
        self.rtp.dropped_frames()
    }

    /// One video access unit: its NAL units (no start codes, no length prefixes) and its 32-bit
    /// RTP timestamp (see [`RtpSession::video`]). An error means the frame was refused, or the
    /// session cannot go on (storage failed: `ArchivalError`); a rejected fragment is reported as
    /// an ingest error event and the session goes on.
    pub async fn video(
        &mut self,
        track: usize,
        rtp_ts: u32,
        nalus: &[Bytes],
    ) -> Result<(), IngestError> {
        let out = self.rtp.video(track, rtp_ts, nalus, self.clock.now()).map_err(ingest_error)?;
        if let Some(e) = self.rtp.take_param_error() {
            tracing::warn!(stream = %self.name, error = %e, "unusable parameter sets");
        }
        self.store(out).await
    }

    /// One audio frame (a raw AAC access unit, or one Opus packet) and its RTP timestamp.
    pub async fn audio(
        &mut self,
        track: usize,
        rtp_ts: u32,
        frame: Bytes,
    ) -> Result<(), IngestError> {
        let out = self.rtp.audio(track, rtp_ts, frame, self.clock.now()).map_err(ingest_error)?;
        self.store(out).await
    }

    /// An RTCP sender report (RFC 3550 §6.4.1): anchors this track's RTP clock to absolute (NTP)
    /// time. Used only if it arrives before the session's first fragment.
    pub fn sender_report(&mut self, track: usize, rtp_ts: u32, ntp: Timestamp) {
        self.rtp.sender_report(track, rtp_ts, ntp);
    }

    /// Stores what is still held, waits for durability, emits ProducerDisconnected with `reason`.
    pub async fn finish(mut self, reason: &str) {
        match self.rtp.finish(self.clock.now()) {
            Ok(out) => {
                let _ = self.store(out).await;
            }
            Err(e) => tracing::warn!(stream = %self.name, error = %e, "the last fragment was lost"),
        }
        self.stream.update_stored_gauges();
        if let Some(mut s) = self.session.take() {
            tracing::info!(stream = %self.name, %reason, dropped = self.rtp.dropped_frames(), "RTP producer disconnected");
            s.set_end_reason(reason);
            s.finish().await;
        }
    }

    /// Hands the session's output to the writer, in order.
    async fn store(&mut self, out: Vec<Output>) -> Result<(), IngestError> {
        let Some(session) = self.session.as_mut() else { return Ok(()) };
        for o in out {
            match o {
                Output::Init(init) => {
                    if let Err(e) = session.set_init(&init).await {
                        self.rtp.init_not_stored();
                        return Err(e);
                    }
                }
                Output::Fragment { fragment, arrival } => {
                    if let Err(e) = session.append(&fragment, arrival, u64::MAX).await {
                        self.stream.ingest_error(&e);
                        tracing::warn!(stream = %self.name, code = e.code.code(), error = %e, "muxed fragment rejected");
                        if e.code == IngestErrorCode::ArchivalError {
                            return Err(e);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Drop for RtpIngest {
    fn drop(&mut self) {
        if let Some(s) = self.session.as_mut() {
            s.set_end_reason("the RTP session ended without finishing");
        }
    }
}
