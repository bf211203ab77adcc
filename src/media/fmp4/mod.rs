//! Fragmented MP4 (ISO/IEC 14496-12, ISO base media file format) as producers push it: an init
//! segment (`ftyp` + `moov`) followed by fragments (`moof` + `mdat`), forever.
//!
//! - [`Fmp4Reader`] (in `reader`) is the incremental, sans-I/O ingest parser: push chunks of any
//!   size, pull [`Item`]s. It parses only box headers of `mdat` and hands out each fragment as
//!   one frozen [`Bytes`] slice of its buffer, exactly as received.
//! - `init` turns a `moov` (§8.2.1) into [`TrackInfo`]s: track ids and kinds (§8.3.2 `tkhd`,
//!   §8.4.3 `hdlr`), timescales (§8.4.2 `mdhd`), sample entries (§8.5.2 `stsd`), and the
//!   fragment defaults of the movie extends box (§8.8.3 `trex`).
//! - `fragment` turns a `moof` (§8.8.4) into per-track timing: track fragment headers (§8.8.7
//!   `tfhd`), track runs (§8.8.8 `trun`) and decode times (§8.8.12 `tfdt`); [`samples`] resolves
//!   every sample's byte range in the `mdat`.
//! - `edit` puts a B-frame stream's start edit (§8.6.6 `elst`) into an init segment as served,
//!   so players present its first picture at time 0 ([`with_start_edit`]).
//!
//! Boxes are decoded with `mp4-atom`; mp4-atom errors are wrapped into [`Fmp4Error`]s that carry
//! the byte offset of the box in the producer's stream. Codec strings come from
//! [`crate::media::codec`]. The counterpart that stores fragments is `crate::video`; the ingest
//! that feeds this reader from HTTP is `crate::ingest`.

mod edit;
mod error;
mod fragment;
mod init;
mod reader;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
pub(crate) mod tests;

use bytes::Bytes;

pub use crate::media::codec::Codec;
pub use edit::with_start_edit;
pub use error::{BoxType, Fmp4Error, HexBytes};
pub use fragment::{MAX_SAMPLES_PER_FRAGMENT, Sample, TrackSamples, samples};
pub use init::{moov_of, parse_init};
pub use reader::Fmp4Reader;

/// Size limits that bound the reader's memory use per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted fragment (moof + mdat), in bytes. Default 50 MiB.
    pub max_fragment_bytes: u64,
    /// Largest accepted init segment (ftyp + moov), in bytes. Default 1 MiB.
    pub max_init_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_fragment_bytes: 50 * 1024 * 1024, max_init_bytes: 1024 * 1024 }
    }
}

/// What the reader found in the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// An init segment: the first one, or a new one mid-stream (a codec change).
    Init(InitSegment),
    /// The first bytes of a moof have arrived (the Kinesis `BUFFERING` acknowledgement). Emitted
    /// once per fragment, before that fragment's [`Item::Fragment`].
    FragmentStarted {
        /// Stream position of the moof.
        offset: u64,
    },
    /// A complete fragment.
    Fragment(Fragment),
}

/// An init segment: `ftyp` (if the producer sent one) and `moov`.
#[derive(Debug, Clone, PartialEq)]
pub struct InitSegment {
    /// The ftyp (if present) and moov bytes exactly as received; boxes between them are left out.
    pub bytes: Bytes,
    /// The tracks, in moov order.
    pub tracks: Vec<TrackInfo>,
}

impl InitSegment {
    /// The first video track.
    pub fn video(&self) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.kind == TrackKind::Video)
    }

    /// The first audio track.
    pub fn audio(&self) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.kind == TrackKind::Audio)
    }

    /// The track with this id.
    pub fn track(&self, track_id: u32) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.track_id == track_id)
    }

    /// The HLS `CODECS` attribute (RFC 8216 §4.3.4.2): the codec strings of the video and audio
    /// tracks in moov order, comma-separated, e.g. `"avc1.64001f,mp4a.40.2"`.
    pub fn codecs_attribute(&self) -> String {
        let strings: Vec<&str> = self
            .tracks
            .iter()
            .filter(|t| matches!(t.kind, TrackKind::Video | TrackKind::Audio))
            .map(|t| t.codec_string.as_str())
            .collect();
        strings.join(",")
    }
}

/// What kind of media a track carries (the `hdlr` handler type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// `vide`.
    Video,
    /// `soun`.
    Audio,
    /// Anything else (`text`, `subt`, `meta`, `hint`, …).
    Other,
}

/// One track of an init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// `tkhd` track_ID.
    pub track_id: u32,
    pub kind: TrackKind,
    /// `mdhd` timescale: units per second of every time of this track. Never 0.
    pub timescale: u32,
    pub codec: Codec,
    /// RFC 6381 codec string: `avc1.64001f`, `hvc1.1.6.L93.B0`, `mp4a.40.2`, `opus`.
    pub codec_string: String,
    /// Visual sample entry width and height in pixels (0 for non-video tracks).
    pub width: u16,
    pub height: u16,
    /// Audio sample entry sample rate in Hz and channel count (0 for non-audio tracks).
    pub sample_rate: u32,
    pub channels: u16,
    /// `trex` default_sample_duration (0 when the moov has no trex for the track).
    pub trex_default_duration: u32,
    /// `trex` default_sample_size.
    pub trex_default_size: u32,
    /// `trex` default_sample_flags.
    pub trex_default_flags: u32,
}

/// A complete fragment: one `moof` and its `mdat`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    /// moof + mdat exactly as received.
    pub bytes: Bytes,
    /// Stream position of the moof.
    pub offset: u64,
    /// Per-track timing, in traf order.
    pub tracks: Vec<TrackFragment>,
}

impl Fragment {
    /// The timing of this track in the fragment, if the fragment has samples of it.
    pub fn track(&self, track_id: u32) -> Option<&TrackFragment> {
        self.tracks.iter().find(|t| t.track_id == track_id)
    }
}

/// The timing of one track within a fragment (all times in the track's timescale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackFragment {
    pub track_id: u32,
    /// `tfdt` baseMediaDecodeTime: decode time of the first sample.
    pub base_decode_time: u64,
    /// Sum of the sample durations.
    pub duration: u64,
    pub sample_count: u32,
    /// Whether the first sample is a sync sample (a keyframe for video).
    pub starts_with_sync: bool,
}
