//! Codec parameter sets, parsed far enough to build MP4 sample entries: H.264 SPS/PPS (ITU-T
//! H.264 §7.3.2.1, via `h264-reader`), H.265 VPS/SPS/PPS (ITU-T H.265 §7.3.2.2, parsed here) and
//! the MPEG-4 AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
//!
//! Each parser returns what the muxer ([`super::mux`]) needs: picture size after cropping, the
//! decoder configuration record (`avcC` / `hvcC`) and the number of frames the encoder may
//! reorder (the depth of the DTS window in `crate::ingest::rtp`). Pure: no I/O.

use bytes::Bytes;
use mp4_atom::{Avcc, HvcCArray, Hvcc};

/// A parameter set that could not be parsed; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
pub struct ParamSetError {
    pub what: &'static str,
    pub message: String,
}

fn err(what: &'static str, message: impl Into<String>) -> ParamSetError {
    ParamSetError { what, message: message.into() }
}

/// H.264 NAL unit types Sluice looks at (H.264 Table 7-1).
pub mod h264_nal {
    pub const NON_IDR: u8 = 1;
    pub const IDR: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
    pub const FILLER: u8 = 12;

    /// The type of an H.264 NAL unit (the low 5 bits of its header byte).
    pub fn kind(nal: &[u8]) -> Option<u8> {
        nal.first().map(|b| b & 0x1f)
    }
}

/// H.265 NAL unit types Sluice looks at (H.265 Table 7-1).
pub mod h265_nal {
    /// IRAP pictures (BLA, IDR, CRA) are 16..=23.
    pub const IRAP_FIRST: u8 = 16;
    pub const IRAP_LAST: u8 = 23;
    pub const VPS: u8 = 32;
    pub const SPS: u8 = 33;
    pub const PPS: u8 = 34;
    pub const AUD: u8 = 35;
    pub const FD: u8 = 38;

    /// The type of an H.265 NAL unit (bits 1..=6 of its first header byte).
    pub fn kind(nal: &[u8]) -> Option<u8> {
        nal.first().map(|b| (b >> 1) & 0x3f)
    }
}

/// What a video track's parameter sets say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoParams {
    /// Displayed width and height in pixels (after the cropping window).
    pub width: u16,
    pub height: u16,
    /// Frames the encoder may hold back before output (0 without B-frames).
    pub max_reorder_frames: u32,
    /// The decoder configuration record.
    pub config: DecoderConfig,
}

/// A decoder configuration record for the sample entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecoderConfig {
    Avc(Avcc),
    Hevc(Hvcc),
}

/// Removes emulation-prevention bytes (`00 00 03` → `00 00`), H.264/H.265 §7.4.2.
pub fn nal_to_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Parses an H.264 SPS and PPS (NAL units with their header byte) into an `avcC` record.
pub fn h264_params(sps: &[u8], pps: &[u8]) -> Result<VideoParams, ParamSetError> {
    use h264_reader::nal::sps::SeqParameterSet;
    if h264_nal::kind(sps) != Some(h264_nal::SPS) {
        return Err(err("H.264 SPS", "not an SPS NAL unit"));
    }
    if h264_nal::kind(pps) != Some(h264_nal::PPS) {
        return Err(err("H.264 PPS", "not a PPS NAL unit"));
    }
    let rbsp = nal_to_rbsp(&sps[1..]);
    let parsed = SeqParameterSet::from_bits(h264_reader::rbsp::BitReader::new(&rbsp[..]))
        .map_err(|e| err("H.264 SPS", format!("{e:?}")))?;
    let (w, h) = parsed.pixel_dimensions().map_err(|e| err("H.264 SPS", format!("{e:?}")))?;
    let width = u16::try_from(w).map_err(|_| err("H.264 SPS", format!("width {w} too large")))?;
    let height = u16::try_from(h).map_err(|_| err("H.264 SPS", format!("height {h} too large")))?;
    let profile_idc = u8::from(parsed.profile_idc);
    let max_reorder_frames = parsed
        .vui_parameters
        .as_ref()
        .and_then(|v| v.bitstream_restrictions.as_ref())
        .map(|b| b.max_num_reorder_frames)
        .unwrap_or(match profile_idc {
            // Baseline and the intra profiles have no B-frames.
            66 | 44 => 0,
            // Without bitstream restrictions, any depth up to the DPB is allowed; x264 and
            // hardware encoders use at most 2–3.
            _ => 4,
        })
        .min(16);
    let (Some(&profile), Some(&compat), Some(&level)) = (sps.get(1), sps.get(2), sps.get(3)) else {
        return Err(err("H.264 SPS", "shorter than 4 bytes"));
    };
    let avcc = Avcc {
        configuration_version: 1,
        avc_profile_indication: profile,
        profile_compatibility: compat,
        avc_level_indication: level,
        length_size: 4,
        sequence_parameter_sets: vec![sps.to_vec()],
        picture_parameter_sets: vec![pps.to_vec()],
        ext: match profile {
            100 | 110 | 122 | 144 => Some(mp4_atom::AvccExt {
                chroma_format: {
                    use h264_reader::nal::sps::ChromaFormat;
                    match parsed.chroma_info.chroma_format {
                        ChromaFormat::Monochrome => 0,
                        ChromaFormat::YUV422 => 2,
                        ChromaFormat::YUV444 => 3,
                        _ => 1,
                    }
                },
                bit_depth_luma: parsed.chroma_info.bit_depth_luma_minus8 + 8,
                bit_depth_chroma: parsed.chroma_info.bit_depth_chroma_minus8 + 8,
                sequence_parameter_sets_ext: Vec::new(),
            }),
            _ => None,
        },
    };
    Ok(VideoParams { width, height, max_reorder_frames, config: DecoderConfig::Avc(avcc) })
}

/// A big-endian bit reader over an RBSP, with Exp-Golomb codes (H.265 §9.2).
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits { data, pos: 0 }
    }
    fn bit(&mut self) -> Result<u32, ParamSetError> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or_else(|| err("H.265 SPS", format!("ends early at bit {}", self.pos)))?;
        let b = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(u32::from(b))
    }
    fn bits(&mut self, n: u32) -> Result<u32, ParamSetError> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }
    fn skip(&mut self, n: usize) -> Result<(), ParamSetError> {
        if self.pos + n > self.data.len() * 8 {
            return Err(err("H.265 SPS", format!("ends early at bit {}", self.pos)));
        }
        self.pos += n;
        Ok(())
    }
    fn ue(&mut self) -> Result<u32, ParamSetError> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(err("H.265 SPS", "Exp-Golomb code longer than 32 bits"));
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }
}

/// Parses H.265 VPS, SPS and PPS (NAL units with their 2-byte header) into an `hvcC` record.
pub fn h265_params(vps: &[u8], sps: &[u8], pps: &[u8]) -> Result<VideoParams, ParamSetError> {
    for (nal, kind, what) in [
        (vps, h265_nal::VPS, "H.265 VPS"),
        (sps, h265_nal::SPS, "H.265 SPS"),
        (pps, h265_nal::PPS, "H.265 PPS"),
    ] {
        if nal.len() < 3 || h265_nal::kind(nal) != Some(kind) {
            return Err(err(what, "not a NAL unit of this type"));
        }
    }
    let rbsp = nal_to_rbsp(&sps[2..]);
    let mut r = Bits::new(&rbsp);
    r.bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)?;
    let temporal_id_nested = r.bit()? == 1;
    // profile_tier_level(1, sps_max_sub_layers_minus1), §7.3.3
    let profile_space = r.bits(2)? as u8;
    let tier = r.bit()? == 1;
    let profile_idc = r.bits(5)? as u8;
    let compat = r.bits(32)?.to_be_bytes();
    let mut constraints = [0u8; 6];
    for c in &mut constraints {
        *c = r.bits(8)? as u8;
    }
    let level_idc = r.bits(8)? as u8;
    let mut sub_profile = [false; 8];
    let mut sub_level = [false; 8];
    for i in 0..max_sub_layers_minus1 as usize {
        sub_profile[i] = r.bit()? == 1;
        sub_level[i] = r.bit()? == 1;
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1 as usize))?;
    }
    for i in 0..max_sub_layers_minus1 as usize {
        if sub_profile[i] {
            r.skip(88)?;
        }
        if sub_level[i] {
            r.skip(8)?;
        }
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc > 3 {
        return Err(err("H.265 SPS", format!("chroma_format_idc {chroma_format_idc}")));
    }
    if chroma_format_idc == 3 {
        r.bit()?; // separate_colour_plane_flag
    }
    let mut width = r.ue()?;
    let mut height = r.ue()?;
    if r.bit()? == 1 {
        let (sub_w, sub_h) = match chroma_format_idc {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        width = width.saturating_sub(sub_w * left.saturating_add(right));
        height = height.saturating_sub(sub_h * top.saturating_add(bottom));
    }
    let bit_depth_luma_minus8 = r.ue()?;
    let bit_depth_chroma_minus8 = r.ue()?;
    r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
    let ordering_info_present = r.bit()? == 1;
    let first = if ordering_info_present { 0 } else { max_sub_layers_minus1 };
    let mut max_reorder_frames = 0;
    for _ in first..=max_sub_layers_minus1 {
        r.ue()?; // sps_max_dec_pic_buffering_minus1
        max_reorder_frames = r.ue()?;
        r.ue()?; // sps_max_latency_increase_plus1
    }
    let width = u16::try_from(width)
        .ok()
        .filter(|&w| w > 0)
        .ok_or_else(|| err("H.265 SPS", format!("width {width}")))?;
    let height = u16::try_from(height)
        .ok()
        .filter(|&h| h > 0)
        .ok_or_else(|| err("H.265 SPS", format!("height {height}")))?;
    let array = |nal_unit_type: u8, nal: &[u8]| HvcCArray {
        completeness: true,
        nal_unit_type,
        nalus: vec![nal.to_vec()],
    };
    let hvcc = Hvcc {
        configuration_version: 1,
        general_profile_space: profile_space,
        general_tier_flag: tier,
        general_profile_idc: profile_idc,
        general_profile_compatibility_flags: compat,
        general_constraint_indicator_flags: constraints,
        general_level_idc: level_idc,
        min_spatial_segmentation_idc: 0,
        parallelism_type: 0,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma_minus8: bit_depth_luma_minus8.min(8) as u8,
        bit_depth_chroma_minus8: bit_depth_chroma_minus8.min(8) as u8,
        avg_frame_rate: 0,
        constant_frame_rate: 0,
        num_temporal_layers: max_sub_layers_minus1 as u8 + 1,
        temporal_id_nested,
        length_size_minus_one: 3,
        arrays: vec![
            array(h265_nal::VPS, vps),
            array(h265_nal::SPS, sps),
            array(h265_nal::PPS, pps),
        ],
    };
    Ok(VideoParams {
        width,
        height,
        max_reorder_frames: max_reorder_frames.min(16),
        config: DecoderConfig::Hevc(hvcc),
    })
}

/// The fields of an MPEG-4 AudioSpecificConfig that a sample entry needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    pub object_type: u8,
    pub frequency_index: u8,
    pub sample_rate: u32,
    pub channels: u8,
    /// The config as received (it goes into the `esds` verbatim).
    pub raw: Bytes,
}

/// ISO/IEC 14496-3 Table 1.16 (samplingFrequencyIndex).
const AAC_RATES: [u32; 13] =
    [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/// Parses an AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
pub fn aac_config(raw: Bytes) -> Result<AacConfig, ParamSetError> {
    let what = "AudioSpecificConfig";
    let mut r = Bits::new(&raw);
    let mut object_type = r.bits(5).map_err(|_| err(what, "shorter than 2 bytes"))?;
    if object_type == 31 {
        object_type = 32 + r.bits(6).map_err(|_| err(what, "truncated"))?;
    }
    let frequency_index = r.bits(4).map_err(|_| err(what, "truncated"))?;
    let sample_rate = if frequency_index == 15 {
        r.bits(24).map_err(|_| err(what, "truncated"))?
    } else {
        *AAC_RATES.get(frequency_index as usize).ok_or_else(|| {
            err(what, format!("reserved sampling frequency index {frequency_index}"))
        })?
    };
    let channels = r.bits(4).map_err(|_| err(what, "truncated"))?;
    if object_type == 0 || sample_rate == 0 {
        return Err(err(what, "object type or sample rate is 0"));
    }
    Ok(AacConfig {
        object_type: object_type as u8,
        frequency_index: frequency_index as u8,
        sample_rate,
        channels: channels as u8,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // x264, 640x360 High (`ffmpeg -f lavfi -i testsrc2=size=640x360 -c:v libx264 -f h264`).
    const SPS_360P: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    #[test]
    fn h264_sps_gives_size_and_avcc() {
        let p = h264_params(SPS_360P, PPS).unwrap();
        assert_eq!((p.width, p.height), (640, 360));
        let DecoderConfig::Avc(avcc) = p.config else { panic!("not avc") };
        assert_eq!(avcc.avc_profile_indication, 100);
        assert_eq!(avcc.avc_level_indication, 30);
        assert_eq!(avcc.sequence_parameter_sets, vec![SPS_360P.to_vec()]);
    }

    #[test]
    fn h264_rejects_garbage() {
        assert!(h264_params(&[0x67], PPS).is_err());
        assert!(h264_params(&[0x67, 0xff, 0xff, 0xff, 0xff, 0xff], PPS).is_err());
        assert!(h264_params(PPS, PPS).is_err());
        assert!(h264_params(&[], &[]).is_err());
    }

    #[test]
    fn emulation_prevention_is_removed() {
        assert_eq!(nal_to_rbsp(&[0, 0, 3, 1, 0, 0, 3, 0]), vec![0, 0, 1, 0, 0, 0]);
        assert_eq!(nal_to_rbsp(&[1, 2, 3]), vec![1, 2, 3]);
    }

    // x265 3.5, 1280x720 Main (`ffmpeg -f lavfi -i testsrc2=size=1280x720 -c:v libx265 -f hevc`).
    const H265_VPS: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x5d, 0x95, 0x98, 0x09,
    ];
    const H265_SPS: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x5d, 0xa0, 0x02, 0x80, 0x80, 0x2d, 0x16, 0x59, 0x59, 0xa4, 0x93, 0x2b, 0xc0,
        0x5a, 0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x10,
    ];
    const H265_PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];

    #[test]
    fn h265_sps_gives_size_and_hvcc() {
        let p = h265_params(H265_VPS, H265_SPS, H265_PPS).unwrap();
        assert_eq!((p.width, p.height), (1280, 720));
        let DecoderConfig::Hevc(hvcc) = p.config else { panic!("not hevc") };
        assert_eq!(hvcc.general_profile_idc, 1);
        assert_eq!(hvcc.general_level_idc, 93);
        assert_eq!(hvcc.chroma_format_idc, 1);
        assert_eq!(hvcc.arrays.len(), 3);
    }

    #[test]
    fn h265_rejects_truncated() {
        for n in 3..H265_SPS.len() - 8 {
            let _ = h265_params(H265_VPS, &H265_SPS[..n], H265_PPS); // must not panic
        }
        assert!(h265_params(H265_VPS, &H265_SPS[..8], H265_PPS).is_err());
        assert!(h265_params(H265_SPS, H265_SPS, H265_PPS).is_err());
    }

    #[test]
    fn aac_config_fields() {
        let c = aac_config(Bytes::from_static(&[0x12, 0x10])).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 44100, 2));
        let c = aac_config(Bytes::from_static(&[0x11, 0x90])).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 48000, 2));
        assert!(aac_config(Bytes::from_static(&[0x12])).is_err());
        assert!(aac_config(Bytes::from_static(&[0x00, 0x00])).is_err());
    }
}
