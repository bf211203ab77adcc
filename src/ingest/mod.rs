//! Ingest: one module per protocol, each turning a producer's bytes into init segments and
//! fragments handed to the stream's single writer (`video::writer::ProducerSession`).
//!
//! - [`http_fmp4`]: fragmented MP4 pushed over HTTP (`PUT /v1/streams/{name}/media`), with
//!   Kinesis-PutMedia-style NDJSON acknowledgements.
//! - [`acks`]: the acknowledgement queue and its JSON lines.
//! - [`rtsp`]: RTSP publish (ANNOUNCE/RECORD over TCP or UDP) on its own port.
//! - [`rtp`]: the shared RTP → fMP4 → store path (RTSP publish, RTSP pull, WHIP).
//! - [`pull`]: RTSP pull from cameras (retina), reconnecting with backoff.
//! - [`whip`]: WebRTC ingest over WHIP (RFC 9725, webrtc 0.21).

pub mod acks;
pub mod http_fmp4;
pub mod pull;
pub mod rtp;
pub mod rtsp;
pub mod whip;
