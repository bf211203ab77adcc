//! Codec identification and RFC 6381 codec strings (the `CODECS` attribute of HLS, RFC 8216
//! §4.3.4.2, and the `codecs` parameter MSE's `isTypeSupported` takes).
//!
//! The strings are derived from the sample entry's decoder configuration record, as the
//! format specifications define them:
//!
//! - H.264 (`avc1`/`avc3`): RFC 6381 §3.3, `avc1.PPCCLL` from the `AVCDecoderConfigurationRecord`
//!   (ISO/IEC 14496-15 §5.3.3.1): profile_idc, constraint flags, level_idc as hex.
//! - H.265 (`hvc1`/`hev1`): ISO/IEC 14496-15 Annex E.3, from the `HEVCDecoderConfigurationRecord`
//!   (§8.3.3.1): `hvc1.<space><profile>.<compat>.<tier><level>.<constraints>`.
//! - AAC (`mp4a`): RFC 6381 §3.3, `mp4a.40.<audioObjectType>` (ISO/IEC 14496-3 §1.6.2.1).
//! - Opus: `opus` (Opus in ISOBMFF, §4.3.1).
//!
//! The fMP4 reader ([`super::fmp4`]) calls [`identify`] for each track of an init segment.

use std::fmt::{self, Write as _};

use mp4_atom::{Avcc, Hvcc, Mp4a};

/// The codec of a track, as far as Sluice cares to distinguish them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 / AVC (`avc1` or `avc3` sample entry).
    H264,
    /// H.265 / HEVC (`hvc1` or `hev1` sample entry).
    H265,
    /// MPEG-4 AAC (`mp4a` sample entry with object type 0x40).
    Aac,
    /// Opus (`Opus` sample entry).
    Opus,
    /// Anything else, named by its sample entry's four-character code (e.g. `"vp09"`, `"mp4a"`
    /// for MP3-in-MP4).
    Other(String),
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Codec::H264 => f.write_str("H.264"),
            Codec::H265 => f.write_str("H.265"),
            Codec::Aac => f.write_str("AAC"),
            Codec::Opus => f.write_str("Opus"),
            Codec::Other(fourcc) => f.write_str(fourcc),
        }
    }
}

/// Identifies a sample entry: the codec and its RFC 6381 codec string.
///
/// Unknown sample entries yield `Codec::Other(fourcc)` with the four-character code as the codec
/// string, which is what RFC 6381 prescribes for codecs without a parameterised form.
pub fn identify(entry: &mp4_atom::Codec) -> (Codec, String) {
    use mp4_atom::Codec as E;
    match entry {
        E::Avc1(avc1) => (Codec::H264, avc_codec_string("avc1", &avc1.avcc)),
        E::Avc3(avc3) => (Codec::H264, avc_codec_string("avc3", &avc3.avcc)),
        E::Hvc1(hvc1) => (Codec::H265, hevc_codec_string("hvc1", &hvc1.hvcc)),
        E::Hev1(hev1) => (Codec::H265, hevc_codec_string("hev1", &hev1.hvcc)),
        E::Mp4a(mp4a) => match mp4a_codec_string(mp4a) {
            s if mp4a.esds.es_desc.dec_config.object_type_indication == 0x40 => (Codec::Aac, s),
            s => (Codec::Other("mp4a".to_owned()), s),
        },
        E::Opus(_) => (Codec::Opus, "opus".to_owned()),
        other => {
            let fourcc = fourcc_of(other);
            (Codec::Other(fourcc.clone()), fourcc)
        }
    }
}

/// RFC 6381 §3.3: `avc1.PPCCLL`, the three bytes after `configurationVersion` in the avcC.
pub fn avc_codec_string(sample_entry: &str, avcc: &Avcc) -> String {
    format!(
        "{sample_entry}.{:02x}{:02x}{:02x}",
        avcc.avc_profile_indication, avcc.profile_compatibility, avcc.avc_level_indication
    )
}

/// ISO/IEC 14496-15 Annex E.3: `hvc1.<space><idc>.<compat>.<tier><level>[.<constraint>…]`.
///
/// - general_profile_space as `""`, `A`, `B` or `C`, followed by general_profile_idc in decimal;
/// - the 32 general_profile_compatibility_flags in reverse bit order, as hex without leading
///   zeros;
/// - `L` (main tier) or `H` (high tier) followed by general_level_idc in decimal;
/// - the six bytes of general constraint indicator flags as hex, separated by dots, trailing
///   zero bytes omitted.
pub fn hevc_codec_string(sample_entry: &str, hvcc: &Hvcc) -> String {
    let space = match hvcc.general_profile_space {
        0 => "",
        1 => "A",
        2 => "B",
        _ => "C",
    };
    let compat = u32::from_be_bytes(hvcc.general_profile_compatibility_flags).reverse_bits();
    let tier = if hvcc.general_tier_flag { 'H' } else { 'L' };
    let mut s = format!(
        "{sample_entry}.{space}{}.{compat:X}.{tier}{}",
        hvcc.general_profile_idc, hvcc.general_level_idc
    );
    let flags = &hvcc.general_constraint_indicator_flags;
    let used = flags.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    for byte in &flags[..used] {
        let _ = write!(s, ".{byte:X}");
    }
    s
}

/// RFC 6381 §3.3: `mp4a.40.<audioObjectType>` for MPEG-4 audio (object type indication 0x40),
/// `mp4a.<OTI>` (hex) for the other object types (e.g. `mp4a.6B` for MP3).
pub fn mp4a_codec_string(mp4a: &Mp4a) -> String {
    let config = &mp4a.esds.es_desc.dec_config;
    match (config.object_type_indication, &config.dec_specific) {
        (0x40, Some(specific)) if specific.profile != 0 => format!("mp4a.40.{}", specific.profile),
        (0x40, _) => "mp4a.40".to_owned(),
        (oti, _) => format!("mp4a.{oti:02X}"),
    }
}

/// The four-character code of a sample entry, for codecs Sluice does not parameterise.
fn fourcc_of(entry: &mp4_atom::Codec) -> String {
    use mp4_atom::Codec as E;
    let name = match entry {
        E::Jpeg(_) => "jpeg",
        E::Vp08(_) => "vp08",
        E::Vp09(_) => "vp09",
        E::Av01(_) => "av01",
        E::Mp3(_) => ".mp3",
        E::Tx3g(_) => "tx3g",
        E::Flac(_) => "fLaC",
        E::Ac3(_) => "ac-3",
        E::Eac3(_) => "ec-3",
        E::Wvtt(_) => "wvtt",
        E::Unknown(kind, _) => return printable_fourcc(&<[u8; 4]>::from(*kind)),
        _ => "unknown",
    };
    name.to_owned()
}

/// A four-character code as text, with non-printable bytes escaped as `\xNN`.
pub(crate) fn printable_fourcc(bytes: &[u8; 4]) -> String {
    let mut s = String::with_capacity(4);
    for &b in bytes {
        if (0x20..0x7f).contains(&b) {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_string_is_profile_constraints_level_in_hex() {
        let avcc = Avcc {
            configuration_version: 1,
            avc_profile_indication: 0x64,
            profile_compatibility: 0,
            avc_level_indication: 0x1f,
            length_size: 4,
            ..Default::default()
        };
        assert_eq!(avc_codec_string("avc1", &avcc), "avc1.64001f");
        let baseline = Avcc {
            avc_profile_indication: 66,
            profile_compatibility: 0xc0,
            avc_level_indication: 30,
            ..avcc
        };
        assert_eq!(avc_codec_string("avc3", &baseline), "avc3.42c01e");
    }

    #[test]
    fn hevc_string_follows_annex_e() {
        // The examples of ISO/IEC 14496-15 Annex E.5.
        let main = Hvcc {
            general_profile_idc: 1,
            general_profile_compatibility_flags: [0x60, 0, 0, 0],
            general_level_idc: 93,
            general_constraint_indicator_flags: [0xb0, 0, 0, 0, 0, 0],
            ..Hvcc::new()
        };
        assert_eq!(hevc_codec_string("hev1", &main), "hev1.1.6.L93.B0");
        let main10_high = Hvcc {
            general_profile_idc: 2,
            general_tier_flag: true,
            general_profile_compatibility_flags: [0x20, 0, 0, 0],
            general_level_idc: 120,
            general_constraint_indicator_flags: [0xb0, 0x23, 0, 0, 0, 0],
            ..Hvcc::new()
        };
        assert_eq!(hevc_codec_string("hvc1", &main10_high), "hvc1.2.4.H120.B0.23");
        let spaced = Hvcc {
            general_profile_space: 1,
            general_profile_idc: 3,
            general_profile_compatibility_flags: [0, 0, 0, 1],
            general_level_idc: 30,
            ..Hvcc::new()
        };
        assert_eq!(hevc_codec_string("hvc1", &spaced), "hvc1.A3.80000000.L30");
    }

    #[test]
    fn fourcc_escapes_non_printable_bytes() {
        assert_eq!(printable_fourcc(b"vp09"), "vp09");
        assert_eq!(printable_fourcc(&[0, b'a', 0xff, b' ']), "\\x00a\\xff ");
    }
}
