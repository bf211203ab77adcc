//! Pure media code: no tokio, no I/O, no HTTP types. Bytes in, typed values out.
//!
//! - [`fmp4`]: the incremental fragmented-MP4 reader the ingest feeds (ISO/IEC 14496-12), and
//!   sample resolution of stored fragments.
//! - [`codec`]: codec identification and RFC 6381 codec strings.
//! - [`hls`]: HLS playlists (RFC 8216).
//! - [`mp4clip`]: progressive MP4 clips (moov before mdat) built from stored fragments.
//! - [`mux`]: the fMP4 writer for RTP sources (init segment from parameter sets, moof+mdat).
//! - [`param_sets`]: H.264/H.265 parameter sets and the AAC AudioSpecificConfig.
//! - [`rtp`]: RTP packets and depacketizers (H.264, H.265, AAC, Opus), RTCP sender reports.
//! - [`rtp_session`]: an RTP session to described init segments and fragments, sans I/O.
//! - [`sdp`]: the SDP of an RTSP ANNOUNCE → the tracks to record.
//! - [`timeline`]: moving stored fragments onto the stream timeline (producer time minus the
//!   stream's epoch) when served.
//!
//! Callers: `crate::ingest` pushes producer bytes through [`fmp4::Fmp4Reader`]; `crate::video`
//! stores the resulting fragments; `crate::api` serves them.

pub mod codec;
pub mod dash;
pub mod fmp4;
pub mod hls;
pub mod hls_query;
pub mod mkv;
pub mod mp4clip;
pub mod mux;
pub mod param_sets;
pub mod rtp;
pub mod rtp_session;
pub mod sdp;
pub mod timeline;
