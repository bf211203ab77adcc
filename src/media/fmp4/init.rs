//! Init segments: the `moov` (ISO/IEC 14496-12 §8.2.1) decoded into [`TrackInfo`]s.
//!
//! Per `trak`: the track id from `tkhd` (§8.3.2), the kind from the `hdlr` handler type (§8.4.3),
//! the timescale from `mdhd` (§8.4.2), the codec from the first sample entry of `stsd` (§8.5.2),
//! and the defaults that track fragments fall back to from the `trex` of `mvex` (§8.8.3).

use bytes::Bytes;
use mp4_atom::{Decode, Moov};

use super::error::{BoxType, Fmp4Error, HexBytes};
use super::reader::{BoxHeader, HeaderParse, parse_header};
use super::{InitSegment, TrackInfo, TrackKind};
use crate::media::codec;

/// Parses a stored init segment (optional `ftyp`, then `moov`; other boxes are ignored).
/// Error offsets are positions within `bytes`.
pub fn parse_init(bytes: Bytes) -> Result<InitSegment, Fmp4Error> {
    let (at, end) = find_moov(&bytes)?;
    let tracks = decode_moov(&bytes[at..end], at as u64)?;
    Ok(InitSegment { bytes, tracks })
}

/// The decoded `moov` of an init segment, for what needs its sample entries whole (decoder
/// configurations for decoding and for remuxing to other containers).
pub fn moov_of(bytes: &[u8]) -> Result<Moov, Fmp4Error> {
    let (at, end) = find_moov(bytes)?;
    let moov = &bytes[at..end];
    Moov::decode(&mut &moov[..]).map_err(|e| Fmp4Error::Decode {
        offset: at as u64,
        kind: BoxType::MOOV,
        reason: e.to_string(),
        head: HexBytes::of(moov),
    })
}

/// Where the first complete `moov` box is in `bytes`.
fn find_moov(bytes: &[u8]) -> Result<(usize, usize), Fmp4Error> {
    let mut at = 0usize;
    while at < bytes.len() {
        let header = match parse_header(&bytes[at..], at as u64)? {
            HeaderParse::Complete(header) => header,
            HeaderParse::Incomplete => break,
        };
        let end = usize::try_from(header.size)
            .ok()
            .and_then(|size| at.checked_add(size))
            .filter(|&end| end <= bytes.len());
        let Some(end) = end else { break };
        if header.kind == BoxType::MOOV {
            return Ok((at, end));
        }
        at = end;
    }
    Err(Fmp4Error::Invalid {
        offset: 0,
        kind: BoxType::MOOV,
        reason: "the init segment has no complete moov box".to_owned(),
    })
}

/// Decodes a complete moov box (`moov` holds exactly the box) into its tracks.
pub(crate) fn decode_moov(moov: &[u8], offset: u64) -> Result<Vec<TrackInfo>, Fmp4Error> {
    let decoded = Moov::decode(&mut &moov[..]).map_err(|e| Fmp4Error::Decode {
        offset,
        kind: BoxType::MOOV,
        reason: e.to_string(),
        head: HexBytes::of(moov),
    })?;
    let invalid = |reason: String| Fmp4Error::invalid(offset, BoxType::MOOV, reason);
    let Some(mvex) = &decoded.mvex else {
        return Err(invalid(
            "it has no mvex box, so this is not a fragmented MP4 (ffmpeg: -movflags \
             frag_keyframe+empty_moov+default_base_moof)"
                .to_owned(),
        ));
    };
    if decoded.trak.is_empty() {
        return Err(invalid("it has no tracks".to_owned()));
    }

    let mut tracks = Vec::with_capacity(decoded.trak.len());
    for trak in &decoded.trak {
        let track_id = trak.tkhd.track_id;
        if tracks.iter().any(|t: &TrackInfo| t.track_id == track_id) {
            return Err(invalid(format!("track id {track_id} appears twice")));
        }
        let timescale = trak.mdia.mdhd.timescale;
        if timescale == 0 {
            return Err(invalid(format!("track {track_id} has a timescale of 0")));
        }
        let kind = match &<[u8; 4]>::from(trak.mdia.hdlr.handler) {
            b"vide" => TrackKind::Video,
            b"soun" => TrackKind::Audio,
            _ => TrackKind::Other,
        };
        let Some(entry) = trak.mdia.minf.stbl.stsd.codecs.first() else {
            return Err(invalid(format!("track {track_id} has no sample entry in stsd")));
        };
        let (codec, codec_string) = codec::identify(entry);
        let (width, height) = entry.visual().map_or((0, 0), |v| (v.width, v.height));
        let (sample_rate, channels) = entry.audio().map_or((0, 0), |a| {
            let channels = configured_channels(entry).unwrap_or(a.channel_count);
            (u32::from(a.sample_rate.integer()), channels)
        });
        let trex = mvex.trex.iter().find(|t| t.track_id == track_id);
        tracks.push(TrackInfo {
            track_id,
            kind,
            timescale,
            codec,
            codec_string,
            width,
            height,
            sample_rate,
            channels,
            trex_default_duration: trex.map_or(0, |t| t.default_sample_duration),
            trex_default_size: trex.map_or(0, |t| t.default_sample_size),
            trex_default_flags: trex.map_or(0, |t| t.default_sample_flags),
        });
    }
    Ok(tracks)
}

/// The channel count the decoder configuration declares, which is authoritative over the
/// sample entry's channelcount (ffmpeg writes 2 there for mono AAC): the AudioSpecificConfig's
/// channelConfiguration (ISO/IEC 14496-3 §1.6.3.5) or the dOps OutputChannelCount.
fn configured_channels(entry: &mp4_atom::Codec) -> Option<u16> {
    match entry {
        mp4_atom::Codec::Mp4a(mp4a) => {
            let specific = mp4a.esds.es_desc.dec_config.dec_specific.as_ref()?;
            match specific.chan_conf {
                1..=6 => Some(u16::from(specific.chan_conf)),
                7 => Some(8),
                _ => None,
            }
        }
        mp4_atom::Codec::Opus(opus) => Some(u16::from(opus.dops.output_channel_count)),
        _ => None,
    }
}

/// The header of the box at the start of `bytes`, if it is complete (used for error offsets).
pub(crate) fn first_header(bytes: &[u8]) -> Option<BoxHeader> {
    match parse_header(bytes, 0) {
        Ok(HeaderParse::Complete(header)) => Some(header),
        _ => None,
    }
}
