//! The fMP4 writer for RTP sources (RTSP publish, RTSP pull, WHIP): an init segment (`ftyp` +
//! `moov`, ISO/IEC 14496-12 §8.2) built from the tracks' parameter sets, and fragments
//! (`moof` + `mdat`, §8.8) built from samples with explicit durations, sizes, flags and signed
//! composition offsets (`trun` version 1, §8.8.8).
//!
//! Sample entries: `avc1` + `avcC` (ISO/IEC 14496-15 §5.4), `hvc1` + `hvcC` (§8.4), `mp4a` +
//! `esds` (ISO/IEC 14496-14 §5.6), `Opus` + `dOps` (Opus in ISOBMFF §4.3). Parameter sets are
//! parsed in [`super::param_sets`]. Boxes are encoded with `mp4-atom`; the output is what
//! `crate::media::fmp4` parses on ingest, so the rest of Sluice treats muxed streams exactly like
//! pushed fMP4. Each comes with its description (an `InitSegment`, a `Fragment` with per-track
//! timing), so the store takes muxed media without parsing it back. Pure: no I/O. The caller is
//! [`super::rtp_session`].

use bytes::{BufMut, Bytes, BytesMut};
use mp4_atom::{
    Audio, Avc1, Dinf, Dops, Dref, Encode, Esds, FourCC, Ftyp, Hdlr, Hvc1, Mdhd, Mdia, Mfhd, Minf,
    Moof, Moov, Mp4a, Mvex, Mvhd, Opus, Smhd, Stbl, Stsd, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun,
    TrunEntry, TrunSamples, Url, Visual, Vmhd,
};

use super::fmp4::{Fragment, InitSegment, TrackFragment, parse_init};
use super::param_sets::{AacConfig, DecoderConfig, VideoParams};

/// `sample_depends_on = 2` (an I picture / an audio frame): a sync sample (§8.8.3.1).
pub const SAMPLE_FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_depends_on = 1`, `sample_is_non_sync_sample = 1`.
pub const SAMPLE_FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// A muxing failure: a box that cannot be encoded, or a fragment that does not fit the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fMP4 mux: {0}")]
pub struct MuxError(pub String);

/// One track of the init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxTrack {
    /// The track id (1-based, unique in the init segment).
    pub track_id: u32,
    /// Ticks per second of the track's media time (the RTP clock rate).
    pub timescale: u32,
    pub codec: MuxCodec,
}

/// What a track carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxCodec {
    /// H.264 or H.265, described by its parameter sets.
    Video(VideoParams),
    /// AAC, described by its AudioSpecificConfig.
    Aac(AacConfig),
    /// Opus (always 48 kHz).
    Opus { channels: u8 },
}

/// One sample of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxSample {
    /// In the track's timescale: the next sample's decode time minus this one's.
    pub duration: u32,
    /// Presentation time minus decode time, in the track's timescale (negative is allowed).
    pub composition_offset: i32,
    /// A sync sample (keyframe; every audio frame).
    pub sync: bool,
    /// The sample's bytes: length-prefixed NAL units (4-byte lengths) for video, one raw frame
    /// for audio.
    pub data: Bytes,
}

/// The samples of one track in one fragment.
#[derive(Debug, Clone, Copy)]
pub struct TrackRun<'a> {
    pub track_id: u32,
    /// The first sample's decode time, in the track's timescale (`tfdt`).
    pub base_decode_time: u64,
    pub samples: &'a [MuxSample],
}

/// Joins NAL units into one sample with 4-byte big-endian length prefixes (the `avcC`/`hvcC`
/// `lengthSizeMinusOne = 3` framing).
pub fn length_prefixed<'a>(nalus: impl IntoIterator<Item = &'a Bytes> + Clone) -> Bytes {
    let len: usize = nalus.clone().into_iter().map(|n| n.len() + 4).sum();
    let mut out = BytesMut::with_capacity(len);
    for n in nalus {
        out.put_u32(u32::try_from(n.len()).unwrap_or(u32::MAX));
        out.put_slice(n);
    }
    out.freeze()
}

fn encode<T: Encode>(b: &T, buf: &mut Vec<u8>, what: &str) -> Result<(), MuxError> {
    b.encode(buf).map_err(|e| MuxError(format!("encoding {what}: {e}")))
}

/// Builds the init segment (`ftyp` + `moov` with an `mvex`) for `tracks`.
pub fn init_segment(tracks: &[MuxTrack]) -> Result<InitSegment, MuxError> {
    let bytes = init_bytes(tracks)?;
    // Its description (codec strings, dimensions) comes from the one init parser, so a muxed
    // init segment is described exactly as a pushed one would be.
    parse_init(bytes).map_err(|e| MuxError(format!("the init segment does not parse: {e}")))
}

fn init_bytes(tracks: &[MuxTrack]) -> Result<Bytes, MuxError> {
    if tracks.is_empty() {
        return Err(MuxError("an init segment needs at least one track".into()));
    }
    let ftyp = Ftyp {
        major_brand: FourCC::new(b"iso6"),
        minor_version: 0,
        compatible_brands: vec![
            FourCC::new(b"iso6"),
            FourCC::new(b"cmfc"),
            FourCC::new(b"mp41"),
            FourCC::new(b"iso5"),
        ],
    };
    let mut trak = Vec::with_capacity(tracks.len());
    for t in tracks {
        if t.timescale == 0 {
            return Err(MuxError(format!("track {} has timescale 0", t.track_id)));
        }
        trak.push(track_box(t)?);
    }
    let moov = Moov {
        mvhd: Mvhd {
            timescale: 1000,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: tracks.iter().map(|t| t.track_id).max().unwrap_or(0) + 1,
            ..Default::default()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: tracks
                .iter()
                .map(|t| Trex {
                    track_id: t.track_id,
                    default_sample_description_index: 1,
                    ..Default::default()
                })
                .collect(),
        }),
        trak,
        ..Default::default()
    };
    let mut buf = Vec::with_capacity(1024);
    encode(&ftyp, &mut buf, "ftyp")?;
    encode(&moov, &mut buf, "moov")?;
    Ok(Bytes::from(buf))
}

fn track_box(t: &MuxTrack) -> Result<Trak, MuxError> {
    let dinf = Dinf { dref: Dref { entries: vec![Url { location: String::new() }.into()] } };
    let (handler, tkhd, minf_header, entry): (_, _, _, mp4_atom::Codec) = match &t.codec {
        MuxCodec::Video(v) => {
            let visual = Visual {
                data_reference_index: 1,
                width: v.width,
                height: v.height,
                horizresolution: 72.into(),
                vertresolution: 72.into(),
                frame_count: 1,
                compressor: "".into(),
                depth: 24,
            };
            let entry = match &v.config {
                DecoderConfig::Avc(avcc) => Avc1 {
                    visual,
                    avcc: avcc.clone(),
                    btrt: None,
                    colr: None,
                    pasp: None,
                    taic: None,
                    fiel: None,
                    spatial: None,
                }
                .into(),
                DecoderConfig::Hevc(hvcc) => Hvc1 {
                    visual,
                    hvcc: hvcc.clone(),
                    lhvc: None,
                    btrt: None,
                    colr: None,
                    pasp: None,
                    taic: None,
                    fiel: None,
                    ccst: None,
                    spatial: None,
                }
                .into(),
            };
            let tkhd = Tkhd {
                track_id: t.track_id,
                enabled: true,
                in_movie: true,
                width: v.width.into(),
                height: v.height.into(),
                ..Default::default()
            };
            (b"vide", tkhd, true, entry)
        }
        MuxCodec::Aac(c) => {
            let entry = Mp4a {
                audio: Audio {
                    data_reference_index: 1,
                    channel_count: u16::from(c.channels.max(1)),
                    sample_size: 16,
                    sample_rate: u16::try_from(c.sample_rate).unwrap_or(0).into(),
                },
                esds: Esds {
                    es_desc: mp4_atom::esds::EsDescriptor {
                        es_id: u16::try_from(t.track_id).unwrap_or(1),
                        dec_config: mp4_atom::esds::DecoderConfig {
                            object_type_indication: 0x40,
                            stream_type: 5,
                            dec_specific: Some(mp4_atom::esds::DecoderSpecific {
                                profile: c.object_type,
                                freq_index: c.frequency_index,
                                chan_conf: c.channels,
                                raw: c.raw.to_vec(),
                            }),
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                },
                btrt: None,
                taic: None,
            }
            .into();
            (b"soun", audio_tkhd(t.track_id), false, entry)
        }
        MuxCodec::Opus { channels } => {
            let entry = Opus {
                audio: Audio {
                    data_reference_index: 1,
                    channel_count: u16::from((*channels).max(1)),
                    sample_size: 16,
                    sample_rate: 48000u16.into(),
                },
                dops: Dops {
                    output_channel_count: (*channels).max(1),
                    pre_skip: 0,
                    input_sample_rate: 48000,
                    output_gain: 0,
                    channel_mapping: None,
                },
                btrt: None,
            }
            .into();
            (b"soun", audio_tkhd(t.track_id), false, entry)
        }
    };
    Ok(Trak {
        tkhd,
        mdia: Mdia {
            mdhd: Mdhd { timescale: t.timescale, language: "und".into(), ..Default::default() },
            hdlr: Hdlr {
                handler: FourCC::new(handler),
                name: if minf_header { "VideoHandler".into() } else { "SoundHandler".into() },
            },
            minf: Minf {
                vmhd: minf_header.then(Vmhd::default),
                smhd: (!minf_header).then(Smhd::default),
                dinf,
                stbl: Stbl {
                    stsd: Stsd { codecs: vec![entry] },
                    stco: Some(Default::default()),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        ..Default::default()
    })
}

fn audio_tkhd(track_id: u32) -> Tkhd {
    Tkhd {
        track_id,
        alternate_group: 1,
        enabled: true,
        in_movie: true,
        volume: 1.into(),
        ..Default::default()
    }
}

/// Builds one fragment (`moof` + `mdat`) holding `runs`, in that order in the `mdat`. Runs with no
/// samples are left out; at least one sample is required.
pub fn fragment(
    sequence_number: u32,
    runs: &[TrackRun<'_>],
    offset: u64,
) -> Result<Fragment, MuxError> {
    let bytes = fragment_bytes(sequence_number, runs)?;
    let tracks = runs
        .iter()
        .filter(|r| !r.samples.is_empty())
        .map(|r| TrackFragment {
            track_id: r.track_id,
            base_decode_time: r.base_decode_time,
            duration: r.samples.iter().map(|s| u64::from(s.duration)).sum(),
            sample_count: u32::try_from(r.samples.len()).unwrap_or(u32::MAX),
            starts_with_sync: r.samples.first().is_some_and(|s| s.sync),
        })
        .collect();
    Ok(Fragment { bytes, offset, tracks })
}

fn fragment_bytes(sequence_number: u32, runs: &[TrackRun<'_>]) -> Result<Bytes, MuxError> {
    let runs: Vec<&TrackRun<'_>> = runs.iter().filter(|r| !r.samples.is_empty()).collect();
    if runs.is_empty() {
        return Err(MuxError("a fragment needs at least one sample".into()));
    }
    let mut moof = Moof {
        mfhd: Mfhd { sequence_number },
        traf: runs
            .iter()
            .map(|r| Traf {
                tfhd: Tfhd {
                    track_id: r.track_id,
                    default_base_is_moof: true,
                    ..Default::default()
                },
                tfdt: Some(Tfdt { base_media_decode_time: r.base_decode_time }),
                trun: vec![Trun {
                    data_offset: Some(0),
                    samples: TrunSamples::Explicit(
                        r.samples
                            .iter()
                            .map(|s| TrunEntry {
                                duration: Some(s.duration),
                                size: Some(u32::try_from(s.data.len()).unwrap_or(u32::MAX)),
                                flags: Some(if s.sync {
                                    SAMPLE_FLAGS_SYNC
                                } else {
                                    SAMPLE_FLAGS_NON_SYNC
                                }),
                                cts: Some(i64::from(s.composition_offset)),
                            })
                            .collect(),
                    ),
                }],
                ..Default::default()
            })
            .collect(),
    };
    // The moof's size does not depend on the data offsets' values: encode once to measure it,
    // then again with the offsets (from the moof's first byte, `default-base-is-moof`).
    let mut buf = Vec::new();
    encode(&moof, &mut buf, "moof")?;
    let moof_len = buf.len();
    let data_len: usize = runs.iter().flat_map(|r| r.samples.iter()).map(|s| s.data.len()).sum();
    let mdat_len = 8 + data_len;
    let mut offset = moof_len + 8;
    for (traf, run) in moof.traf.iter_mut().zip(&runs) {
        let o = i32::try_from(offset)
            .map_err(|_| MuxError(format!("fragment too large ({} bytes)", offset)))?;
        if let Some(trun) = traf.trun.first_mut() {
            trun.data_offset = Some(o);
        }
        offset += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    let mdat_size = u32::try_from(mdat_len)
        .map_err(|_| MuxError(format!("mdat too large ({mdat_len} bytes)")))?;
    buf.clear();
    buf.reserve(moof_len + mdat_len);
    encode(&moof, &mut buf, "moof")?;
    if buf.len() != moof_len {
        return Err(MuxError("moof size changed with its data offsets".into()));
    }
    buf.put_u32(mdat_size);
    buf.put_slice(b"mdat");
    for run in &runs {
        for s in run.samples {
            buf.put_slice(&s.data);
        }
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::fmp4::{Fmp4Reader, Item, Limits, TrackKind, samples};
    use crate::media::param_sets::{aac_config, h264_params};

    pub(crate) const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
    ];
    pub(crate) const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    fn tracks() -> Vec<MuxTrack> {
        vec![
            MuxTrack {
                track_id: 1,
                timescale: 90_000,
                codec: MuxCodec::Video(h264_params(SPS, PPS).unwrap()),
            },
            MuxTrack {
                track_id: 2,
                timescale: 48_000,
                codec: MuxCodec::Aac(aac_config(Bytes::from_static(&[0x11, 0x90])).unwrap()),
            },
            MuxTrack { track_id: 3, timescale: 48_000, codec: MuxCodec::Opus { channels: 2 } },
        ]
    }

    #[test]
    fn init_parses_back() {
        let init = init_segment(&tracks()).unwrap();
        let bytes = init.bytes.clone();
        assert_eq!(init.tracks.len(), 3);
        let v = init.video().unwrap();
        assert_eq!((v.width, v.height, v.timescale), (640, 360, 90_000));
        assert_eq!(v.codec_string, "avc1.64001e");
        assert_eq!(init.tracks[1].kind, TrackKind::Audio);
        assert_eq!(init.tracks[1].codec_string, "mp4a.40.2");
        assert_eq!(init.tracks[2].codec_string, "opus");
        // An independent parser agrees.
        let mut rd = &bytes[..];
        let _ = <mp4_atom::Ftyp as mp4_atom::Decode>::decode(&mut rd).unwrap();
        let moov = <mp4_atom::Moov as mp4_atom::Decode>::decode(&mut rd).unwrap();
        assert_eq!(moov.trak.len(), 3);
        assert!(init_segment(&[]).is_err());
    }

    #[test]
    fn fragment_parses_back_with_times_and_flags() {
        let init = init_segment(&tracks()).unwrap();
        let init_bytes = init.bytes.clone();
        let v = [
            MuxSample {
                duration: 3000,
                composition_offset: 3000,
                sync: true,
                data: Bytes::from_static(&[0, 0, 0, 2, 0x65, 1]),
            },
            MuxSample {
                duration: 3000,
                composition_offset: -3000,
                sync: false,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x41]),
            },
        ];
        let a = [MuxSample {
            duration: 1024,
            composition_offset: 0,
            sync: true,
            data: Bytes::from_static(&[7; 10]),
        }];
        let frag = fragment(
            7,
            &[
                TrackRun { track_id: 1, base_decode_time: 1 << 40, samples: &v },
                TrackRun { track_id: 2, base_decode_time: 5, samples: &a },
                TrackRun { track_id: 3, base_decode_time: 0, samples: &[] },
            ],
            0,
        )
        .unwrap();
        let described = frag.clone();
        let frag = frag.bytes;
        let mut reader = Fmp4Reader::new(Limits::default());
        reader.push(init_bytes);
        reader.push(frag.clone());
        let mut got = None;
        while let Some(item) = reader.next_item().unwrap() {
            if let Item::Fragment(f) = item {
                got = Some(f);
            }
        }
        let f = got.expect("a fragment");
        // The muxer's description is exactly what the parser reads.
        assert_eq!(described.tracks, f.tracks);
        let t = f.track(1).unwrap();
        assert_eq!((t.base_decode_time, t.duration, t.sample_count), (1 << 40, 6000, 2));
        assert!(t.starts_with_sync);
        let tracks = samples(&init, &frag).unwrap();
        assert_eq!(tracks.len(), 2);
        let vs = &tracks[0].samples;
        assert_eq!(&frag[vs[0].range.clone()], &v[0].data[..]);
        assert_eq!(&frag[vs[1].range.clone()], &v[1].data[..]);
        assert_eq!(vs[1].composition_offset, -3000);
        assert!(vs[0].sync && !vs[1].sync);
        assert_eq!(&frag[tracks[1].samples[0].range.clone()], &a[0].data[..]);
        // mp4-atom decodes it too.
        let mut rd = &frag[..];
        let moof = <mp4_atom::Moof as mp4_atom::Decode>::decode(&mut rd).unwrap();
        assert_eq!(moof.mfhd.sequence_number, 7);
        let mdat = <mp4_atom::Mdat as mp4_atom::Decode>::decode(&mut rd).unwrap();
        assert_eq!(mdat.data.len(), 6 + 5 + 10);
        assert!(fragment(1, &[], 0).is_err());
    }

    #[test]
    fn length_prefixing() {
        let nalus = [Bytes::from_static(&[0x65, 1, 2]), Bytes::from_static(&[0x06])];
        assert_eq!(&length_prefixed(&nalus)[..], &[0, 0, 0, 3, 0x65, 1, 2, 0, 0, 0, 1, 6]);
    }
}
