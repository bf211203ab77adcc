//! Matroska (RFC 9559), the container of Kinesis Video Streams' media APIs, over EBML (RFC 8794).
//!
//! - `ebml`: element encoding (variable-size integers, typed elements, masters).
//! - `id`: the element IDs used.
//! - `write`: a stored fMP4 fragment as one self-contained Matroska document with KVS's tags
//!   ([`fragment_document`]), zero-copy over the fragment's samples, for GetMedia and
//!   GetMediaForFragmentList.
//! - `read`: the incremental, sans-I/O reader of what PutMedia producers send ([`MkvReader`]):
//!   tracks, cluster boundaries and frames, with bounded buffering.
//! - `remux`: those events as fMP4 init segments and fragments ([`MkvRemuxer`]), the same
//!   [`crate::media::fmp4::Item`]s the fMP4 reader gives, so PutMedia stores what any push does.
//!
//! Hand-written rather than on an EBML crate: the crates that exist (`webm-iterable` on
//! `ebml-iterable`) read from `std::io::Read` and write owned tag values through
//! `std::io::Write`, which would copy every sample and tie the media core to I/O; here a
//! document is a list of `Bytes`, most of them slices of the stored fragment. Pure: no I/O.

pub mod ebml;
pub mod id;
mod read;
mod remux;
#[cfg(test)]
mod tests;
mod write;

pub use read::{MkvError, MkvEvent, MkvLimits, MkvReader, SimpleTag, TrackEntry};
pub use remux::{MkvRemuxer, Refusal, RemuxError, Remuxed};
pub use write::{
    DocumentHead, FragmentDocument, MkvTrack, MkvWriteError, TIMESTAMP_SCALE_NS, fragment_document,
    tracks_of,
};
