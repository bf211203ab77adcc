//! Fragments: a `moof` (ISO/IEC 14496-12 §8.8.4) resolved into samples and per-track timing.
//!
//! For each track fragment (`traf`, §8.8.6):
//!
//! - the decode time of the first sample is the `tfdt` baseMediaDecodeTime (§8.8.12); a traf
//!   without one is rejected, because a live stream cannot be timed without it;
//! - each sample's duration, size and flags come from the track run (`trun`, §8.8.8) when it
//!   carries them per sample (or, for flags, as first_sample_flags), else from the track
//!   fragment header's defaults (`tfhd`, §8.8.7), else from the movie's `trex` (§8.8.3);
//! - a sample is a sync sample iff `sample_is_non_sync_sample` (bit 16 of the sample flags,
//!   §8.8.3.1) is clear;
//! - the data of a run starts at base-data-offset + the trun's data_offset; the base is the
//!   moof's first byte with default-base-is-moof, or for the first traf without either flag, and
//!   the end of the previous traf's data for later trafs without either flag (§8.8.7.1). A run
//!   without data_offset continues where the previous run of the traf ended. An explicit
//!   base_data_offset (an absolute file position) is rejected: Sluice stores each fragment on
//!   its own and needs moof-relative offsets.
//!
//! Every sample's bytes must lie inside the mdat payload.

use std::ops::Range;

use mp4_atom::{Decode, Moof};

use super::error::{BoxType, Fmp4Error, HexBytes};
use super::init::first_header;
use super::{InitSegment, TrackFragment, TrackInfo};

/// The most samples one fragment may carry. Bounds the work a hostile moof can cause with a
/// trun that declares billions of samples and no per-sample fields.
pub const MAX_SAMPLES_PER_FRAGMENT: u64 = 1 << 20;

const NON_SYNC_SAMPLE: u32 = 0x0001_0000;
const TRAF: BoxType = BoxType(*b"traf");
const TRUN: BoxType = BoxType(*b"trun");

/// One sample of a track fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Decode time, in the track's timescale.
    pub decode_time: u64,
    /// Composition (presentation) time minus decode time, in the track's timescale.
    pub composition_offset: i64,
    /// Duration, in the track's timescale.
    pub duration: u32,
    /// Size in bytes.
    pub size: u32,
    /// Where the sample's bytes are within the fragment bytes (moof + mdat).
    pub range: Range<usize>,
    /// The sample flags (§8.8.3.1) that apply to this sample.
    pub flags: u32,
    /// Whether this is a sync sample (a keyframe for video).
    pub sync: bool,
}

impl Sample {
    /// The presentation time, in the track's timescale (never below 0).
    pub fn presentation_time(&self) -> u64 {
        self.decode_time.saturating_add_signed(self.composition_offset)
    }
}

/// The samples of one track fragment, in decode order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSamples {
    pub track_id: u32,
    /// `tfdt` baseMediaDecodeTime.
    pub base_decode_time: u64,
    pub samples: Vec<Sample>,
}

/// Resolves every sample of a stored fragment (moof + mdat, as in [`super::Fragment::bytes`]).
/// Error offsets are positions within `fragment`.
pub fn samples(init: &InitSegment, fragment: &[u8]) -> Result<Vec<TrackSamples>, Fmp4Error> {
    let Some(moof_header) = first_header(fragment) else {
        return Err(Fmp4Error::Truncated {
            offset: 0,
            kind: None,
            received: fragment.len() as u64,
            declared: None,
        });
    };
    if moof_header.kind != BoxType::MOOF {
        return Err(Fmp4Error::UnexpectedBox {
            offset: 0,
            kind: moof_header.kind,
            expected: "a fragment starts with a moof",
            head: HexBytes::of(fragment),
        });
    }
    let truncated = |offset: u64, kind: BoxType, declared: u64| Fmp4Error::Truncated {
        offset,
        kind: Some(kind),
        received: (fragment.len() as u64).saturating_sub(offset),
        declared: Some(declared),
    };
    let moof_size = usize::try_from(moof_header.size)
        .ok()
        .filter(|&s| s <= fragment.len())
        .ok_or_else(|| truncated(0, BoxType::MOOF, moof_header.size))?;
    let moof = decode_moof(&fragment[..moof_size], 0)?;
    let Some(mdat_header) = first_header(&fragment[moof_size..]) else {
        return Err(Fmp4Error::UnexpectedBox {
            offset: moof_size as u64,
            kind: BoxType::MDAT,
            expected: "a moof must be followed by its mdat",
            head: HexBytes::of(&fragment[moof_size..]),
        });
    };
    if mdat_header.kind != BoxType::MDAT {
        return Err(Fmp4Error::UnexpectedBox {
            offset: moof_size as u64,
            kind: mdat_header.kind,
            expected: "a moof must be followed by its mdat",
            head: HexBytes::of(&fragment[moof_size..]),
        });
    }
    let end = (moof_size as u64).saturating_add(mdat_header.size);
    if end > fragment.len() as u64 {
        return Err(truncated(moof_size as u64, BoxType::MDAT, mdat_header.size));
    }
    let payload = moof_size as u64 + mdat_header.header_len..end;
    resolve(&moof, 0, payload, &init.tracks)
}

/// Decodes a complete moof box.
pub(crate) fn decode_moof(bytes: &[u8], offset: u64) -> Result<Moof, Fmp4Error> {
    Moof::decode(&mut &bytes[..]).map_err(|e| Fmp4Error::Decode {
        offset,
        kind: BoxType::MOOF,
        reason: e.to_string(),
        head: HexBytes::of(bytes),
    })
}

/// What [`walk`] reports, in order: each traf, then its samples.
enum Event {
    Traf { track_id: u32, base_decode_time: u64 },
    Sample(Sample),
}

/// Resolves the samples of every traf. `payload` is the mdat payload relative to the first byte
/// of the moof, which is at `offset` in the stream (for error messages).
pub(crate) fn resolve(
    moof: &Moof,
    offset: u64,
    payload: Range<u64>,
    tracks: &[TrackInfo],
) -> Result<Vec<TrackSamples>, Fmp4Error> {
    let mut out: Vec<TrackSamples> = Vec::with_capacity(moof.traf.len());
    walk(moof, offset, payload, tracks, |event| match event {
        Event::Traf { track_id, base_decode_time } => {
            out.push(TrackSamples { track_id, base_decode_time, samples: Vec::new() })
        }
        Event::Sample(sample) => {
            if let Some(last) = out.last_mut() {
                last.samples.push(sample);
            }
        }
    })?;
    Ok(out)
}

/// Per-track timing of a fragment, without collecting its samples; trafs of the same track are
/// merged. Validates exactly what [`resolve`] validates.
pub(crate) fn summarize(
    moof: &Moof,
    offset: u64,
    payload: Range<u64>,
    tracks: &[TrackInfo],
) -> Result<Vec<TrackFragment>, Fmp4Error> {
    let mut out: Vec<TrackFragment> = Vec::with_capacity(moof.traf.len());
    // Index in `out` of the track of the traf being walked.
    let mut current = 0;
    walk(moof, offset, payload, tracks, |event| match event {
        Event::Traf { track_id, base_decode_time } => {
            current = match out.iter().position(|t| t.track_id == track_id) {
                Some(index) => index,
                None => {
                    out.push(TrackFragment {
                        track_id,
                        base_decode_time,
                        duration: 0,
                        sample_count: 0,
                        starts_with_sync: false,
                    });
                    out.len() - 1
                }
            }
        }
        Event::Sample(sample) => {
            if let Some(track) = out.get_mut(current) {
                if track.sample_count == 0 {
                    track.starts_with_sync = sample.sync;
                }
                track.sample_count = track.sample_count.saturating_add(1);
                track.duration = track.duration.saturating_add(u64::from(sample.duration));
            }
        }
    })?;
    Ok(out)
}

fn walk(
    moof: &Moof,
    offset: u64,
    payload: Range<u64>,
    tracks: &[TrackInfo],
    mut visit: impl FnMut(Event),
) -> Result<(), Fmp4Error> {
    let mut total: u64 = 0;
    // End of the previous traf's data: the default base of the next traf (§8.8.7.1).
    let mut previous_end: Option<u64> = None;
    for traf in &moof.traf {
        let tfhd = &traf.tfhd;
        let id = tfhd.track_id;
        let traf_err = |reason: String| Fmp4Error::invalid(offset, TRAF, reason);
        let Some(track) = tracks.iter().find(|t| t.track_id == id) else {
            return Err(traf_err(format!("it is for track {id}, which the moov does not declare")));
        };
        let Some(tfdt) = &traf.tfdt else {
            return Err(traf_err(format!(
                "the traf of track {id} has no tfdt (baseMediaDecodeTime)"
            )));
        };
        if tfhd.base_data_offset.is_some() {
            return Err(traf_err(format!(
                "the tfhd of track {id} has an explicit base_data_offset (an absolute file \
                 position); fragments must address their data relative to the moof (ffmpeg: \
                 -movflags +default_base_moof)"
            )));
        }
        let base = match previous_end {
            Some(end) if !tfhd.default_base_is_moof => end,
            _ => 0,
        };
        visit(Event::Traf { track_id: id, base_decode_time: tfdt.base_media_decode_time });

        let mut cursor = base;
        let mut decode_time = tfdt.base_media_decode_time;
        for (run_index, trun) in traf.trun.iter().enumerate() {
            let run_err = |reason: String| Fmp4Error::invalid(offset, TRUN, reason);
            if let Some(data_offset) = trun.data_offset {
                cursor = base.checked_add_signed(i64::from(data_offset)).ok_or_else(|| {
                    run_err(format!(
                        "run {run_index} of track {id} has data_offset {data_offset}, which points \
                         before the moof"
                    ))
                })?;
            }
            total = total.saturating_add(trun.samples.len() as u64);
            if total > MAX_SAMPLES_PER_FRAGMENT {
                return Err(run_err(format!(
                    "the fragment declares more than {MAX_SAMPLES_PER_FRAGMENT} samples"
                )));
            }
            for (i, entry) in trun.samples.iter().enumerate() {
                let duration = entry
                    .duration
                    .or(tfhd.default_sample_duration)
                    .unwrap_or(track.trex_default_duration);
                let size =
                    entry.size.or(tfhd.default_sample_size).unwrap_or(track.trex_default_size);
                let flags =
                    entry.flags.or(tfhd.default_sample_flags).unwrap_or(track.trex_default_flags);
                let end = cursor.saturating_add(u64::from(size));
                if cursor < payload.start || end > payload.end {
                    return Err(run_err(format!(
                        "sample {i} of run {run_index} of track {id} lies at bytes {cursor}..{end} \
                         of the fragment, outside the mdat payload {}..{}",
                        payload.start, payload.end
                    )));
                }
                // Inside the payload of a buffered fragment, so both fit in usize.
                let range = usize::try_from(cursor).unwrap_or(usize::MAX)
                    ..usize::try_from(end).unwrap_or(usize::MAX);
                visit(Event::Sample(Sample {
                    decode_time,
                    composition_offset: entry.cts.unwrap_or(0),
                    duration,
                    size,
                    range,
                    flags,
                    sync: flags & NON_SYNC_SAMPLE == 0,
                }));
                cursor = end;
                decode_time = decode_time.checked_add(u64::from(duration)).ok_or_else(|| {
                    run_err(format!("the decode times of track {id} overflow 64 bits"))
                })?;
            }
        }
        previous_end = Some(cursor);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use mp4_atom::{Encode, Mfhd, Tfdt, Tfhd, Traf, Trun, TrunEntry, TrunSamples};

    use super::*;
    use crate::media::codec::Codec;
    use crate::media::fmp4::TrackKind;

    const SYNC: u32 = 0x0200_0000;

    fn track(track_id: u32) -> TrackInfo {
        TrackInfo {
            track_id,
            kind: TrackKind::Video,
            timescale: 1000,
            codec: Codec::H264,
            codec_string: "avc1.42c01e".to_owned(),
            width: 16,
            height: 16,
            sample_rate: 0,
            channels: 0,
            trex_default_duration: 1024,
            trex_default_size: 7,
            trex_default_flags: 0,
        }
    }

    fn init() -> InitSegment {
        InitSegment { bytes: Bytes::new(), tracks: vec![track(1), track(2)] }
    }

    /// Track 1: two runs (the second without data_offset) using per-sample sizes, first-sample
    /// flags and tfhd defaults; track 2: one run that inherits everything from trex.
    fn moof(first_offset: i32, second: Tfhd, second_offset: Option<i32>) -> Moof {
        let entry = |size, flags| TrunEntry { size: Some(size), flags, ..TrunEntry::default() };
        Moof {
            mfhd: Mfhd { sequence_number: 1 },
            traf: vec![
                Traf {
                    tfhd: Tfhd {
                        track_id: 1,
                        default_sample_duration: Some(100),
                        default_sample_flags: Some(NON_SYNC_SAMPLE),
                        ..Tfhd::default()
                    },
                    tfdt: Some(Tfdt { base_media_decode_time: 5000 }),
                    trun: vec![
                        Trun {
                            data_offset: Some(first_offset),
                            samples: TrunSamples::Explicit(vec![
                                entry(10, Some(SYNC)),
                                entry(20, None),
                            ]),
                        },
                        Trun {
                            data_offset: None,
                            samples: TrunSamples::Explicit(vec![entry(5, None)]),
                        },
                    ],
                    ..Traf::default()
                },
                Traf {
                    tfhd: second,
                    tfdt: Some(Tfdt { base_media_decode_time: 9000 }),
                    trun: vec![Trun {
                        data_offset: second_offset,
                        samples: TrunSamples::Inherited { count: 3, first_flags: None },
                    }],
                    ..Traf::default()
                },
            ],
        }
    }

    /// Encodes the moof with its data offsets pointing into an mdat of 56 payload bytes.
    fn fragment(second: Tfhd, second_offset_after_first: bool) -> (Vec<u8>, usize) {
        let mut probe = Vec::new();
        moof(0, second.clone(), second_offset_after_first.then_some(0)).encode(&mut probe).unwrap();
        let payload_start = probe.len() + 8;
        let second_offset = second_offset_after_first.then_some(payload_start as i32 + 35);
        let mut bytes = Vec::new();
        moof(payload_start as i32, second, second_offset).encode(&mut bytes).unwrap();
        assert_eq!(bytes.len() + 8, payload_start);
        bytes.extend_from_slice(&64u32.to_be_bytes());
        bytes.extend_from_slice(b"mdat");
        bytes.extend_from_slice(&[0xaa; 56]);
        (bytes, payload_start)
    }

    fn check(resolved: &[TrackSamples], p: usize) {
        let one = &resolved[0].samples;
        let ranges: Vec<_> = one.iter().map(|s| s.range.clone()).collect();
        assert_eq!(ranges, [p..p + 10, p + 10..p + 30, p + 30..p + 35]);
        let times: Vec<_> = one.iter().map(|s| (s.decode_time, s.duration, s.sync)).collect();
        assert_eq!(times, [(5000, 100, true), (5100, 100, false), (5200, 100, false)]);
        let two = &resolved[1].samples;
        let ranges: Vec<_> = two.iter().map(|s| s.range.clone()).collect();
        assert_eq!(ranges, [p + 35..p + 42, p + 42..p + 49, p + 49..p + 56]);
        let times: Vec<_> = two.iter().map(|s| (s.decode_time, s.duration, s.sync)).collect();
        assert_eq!(times, [(9000, 1024, true), (10024, 1024, true), (11048, 1024, true)]);
    }

    #[test]
    fn data_of_a_later_traf_continues_after_the_previous_one() {
        // §8.8.7.1: neither base-data-offset nor default-base-is-moof: the second traf's data
        // starts where the first traf's data ended.
        let tfhd = Tfhd { track_id: 2, ..Tfhd::default() };
        let (bytes, p) = fragment(tfhd, false);
        check(&samples(&init(), &bytes).unwrap(), p);
    }

    #[test]
    fn default_base_is_moof_with_data_offset() {
        let tfhd = Tfhd { track_id: 2, default_base_is_moof: true, ..Tfhd::default() };
        let (bytes, p) = fragment(tfhd, true);
        let resolved = samples(&init(), &bytes).unwrap();
        check(&resolved, p);
        let moof = decode_moof(&bytes[..p - 8], 0).unwrap();
        let payload = p as u64..bytes.len() as u64;
        let summary = summarize(&moof, 0, payload, &init().tracks).unwrap();
        assert_eq!(
            summary,
            [
                TrackFragment {
                    track_id: 1,
                    base_decode_time: 5000,
                    duration: 300,
                    sample_count: 3,
                    starts_with_sync: true
                },
                TrackFragment {
                    track_id: 2,
                    base_decode_time: 9000,
                    duration: 3072,
                    sample_count: 3,
                    starts_with_sync: true
                }
            ]
        );
    }

    #[test]
    fn unusable_trafs_are_rejected() {
        let tfhd = |track_id| Tfhd { track_id, ..Tfhd::default() };
        // Data that runs past the mdat: trex's 7-byte samples, but the mdat is one byte short.
        let (mut bytes, p) = fragment(tfhd(2), false);
        bytes.pop();
        bytes[p - 8..p - 4].copy_from_slice(&63u32.to_be_bytes());
        let e = samples(&init(), &bytes).unwrap_err();
        assert!(e.to_string().contains("outside the mdat payload"), "{e}");

        // A track the moov does not declare.
        let (bytes, _) = fragment(tfhd(3), false);
        let e = samples(&init(), &bytes).unwrap_err();
        assert!(e.to_string().contains("track 3"), "{e}");

        // An absolute base_data_offset.
        let absolute = Tfhd { base_data_offset: Some(0), ..tfhd(2) };
        let (bytes, _) = fragment(absolute, false);
        let e = samples(&init(), &bytes).unwrap_err();
        assert!(e.to_string().contains("default_base_moof"), "{e}");

        // No tfdt.
        let mut moof = moof(0, tfhd(2), None);
        moof.traf[1].tfdt = None;
        let e = resolve(&moof, 77, 0..1000, &init().tracks).unwrap_err();
        assert_eq!(e.offset(), 77);
        assert!(e.to_string().contains("no tfdt"), "{e}");
    }
}
