//! Progressive MP4 clips (ISO/IEC 14496-12) built from stored fragments: `ftyp`, then a `moov`
//! with complete sample tables, then one `mdat` holding the samples. Pure: no I/O.
//!
//! The caller resolves every fragment's samples ([`crate::media::fmp4::samples`]) onto one
//! absolute timeline ([`add_fragment`]), then [`plan`] chooses the samples of `[start, end)`,
//! builds the `moov` and says which byte ranges of which fragment make up the `mdat`, in order, so
//! the caller can stream the payload without holding the clip in memory.
//!
//! Per track:
//!
//! - the last sample kept is the last one in decode order presented before `end` (samples
//!   decoded before it but presented later are kept because they may be references);
//! - the first sample kept is the sync sample at or before (in decode order) the sample presented
//!   at `start`, so decoding starts at a keyframe;
//! - `stts` (§8.6.1.2) carries the distance between consecutive decode times, so a gap on the
//!   timeline becomes a longer last sample before the gap (a held frame);
//! - `ctts` (§8.6.1.3) carries composition offsets minus the producer's edit-list shift (signed,
//!   version 1 when any is negative); `stss` (§8.6.2) the sync samples of video tracks when not
//!   all samples are sync; `stsz` (§8.7.3), `stsc` (§8.7.4) and `co64` (§8.7.5): one chunk per
//!   fragment and track;
//! - an edit list (`elst`, §8.6.6) presents exactly `[start, end)`: an empty edit when the track's
//!   media begins after `start`, then one edit whose media_time is the composition time presented
//!   at `start` and whose duration runs to `end` (or the end of the track's media).
//!
//! The sample entries (`stsd`, §8.5.2) are copied byte for byte from the producer's init segment.

use bytes::{BufMut, Bytes, BytesMut};
use mp4_atom::{
    Co64, Ctts, CttsEntry, Decode, Edts, Elst, ElstEntry, Encode, FourCC, Ftyp, Moov, Stbl, Stsc,
    StscEntry, Stss, Stsz, StszSamples, Stts, SttsEntry,
};

use crate::media::fmp4::{InitSegment, TrackKind, TrackSamples};
use crate::media::timeline::shifted_decode_time;

/// The movie timescale of clips (mvhd, tkhd, elst segment durations): 90 kHz.
pub const MOVIE_TIMESCALE: u32 = 90_000;

/// Size of the `mdat` header: always the 64-bit form (§4.2, largesize).
const MDAT_HEADER: u64 = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClipError {
    #[error("the init segment cannot be used for a clip: {0}")]
    Init(String),
    #[error("no media in the requested range")]
    Empty,
    #[error("cannot encode the clip's moov: {0}")]
    Encode(String),
}

/// One sample on the clip's absolute timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipSample {
    /// Decode time in the track's timescale, counted from the Unix epoch.
    pub decode: u64,
    /// Composition offset (trun), in the track's timescale.
    pub cts: i64,
    pub duration: u32,
    pub size: u32,
    pub sync: bool,
    /// Index of the fragment (in the order given to [`add_fragment`]).
    pub fragment: u32,
    /// Byte offset of the sample within its fragment.
    pub offset: u64,
}

/// The samples of one track, in decode order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipTrack {
    pub track_id: u32,
    pub timescale: u32,
    pub kind: TrackKind,
    pub samples: Vec<ClipSample>,
}

/// Starts the sample tables of a clip: one empty track per track of the init segment.
pub fn tracks_of(init: &InitSegment) -> Vec<ClipTrack> {
    init.tracks
        .iter()
        .map(|t| ClipTrack {
            track_id: t.track_id,
            timescale: t.timescale,
            kind: t.kind,
            samples: Vec::new(),
        })
        .collect()
}

/// Adds a fragment's samples, placing the fragment's timing track (the first video track, else
/// the first track) at `time_us` microseconds since the epoch, exactly as HLS retimes it
/// ([`crate::media::timeline`]): every track moves by the same wall-clock shift.
pub fn add_fragment(
    tracks: &mut [ClipTrack],
    init: &InitSegment,
    fragment: u32,
    time_us: i64,
    samples: &[TrackSamples],
) {
    let timing = init.video().or_else(|| init.tracks.first());
    let timing_ts = samples
        .iter()
        .find(|t| timing.is_some_and(|x| x.track_id == t.track_id))
        .or_else(|| samples.first());
    let Some(timing_ts) = timing_ts else { return };
    let timing_scale = init.track(timing_ts.track_id).map_or(1, |t| t.timescale);
    let timing_decode = timing_ts.base_decode_time;
    for ts in samples {
        let Some(track) = tracks.iter_mut().find(|t| t.track_id == ts.track_id) else { continue };
        for s in &ts.samples {
            let decode = shifted_decode_time(
                s.decode_time,
                track.timescale,
                timing_decode,
                timing_scale,
                time_us,
            );
            track.samples.push(ClipSample {
                decode,
                cts: s.composition_offset,
                duration: s.duration,
                size: s.size,
                sync: s.sync,
                fragment,
                offset: s.range.start as u64,
            });
        }
    }
}

/// A contiguous byte range of one fragment that goes into the mdat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub fragment: u32,
    pub offset: u64,
    pub len: u64,
}

/// What [`plan`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipPlan {
    /// ftyp + moov + the mdat header.
    pub head: Bytes,
    /// The mdat payload, in order.
    pub pieces: Vec<Piece>,
    /// Total size of the file.
    pub total_len: u64,
    /// The movie duration (mvhd), in [`MOVIE_TIMESCALE`] units.
    pub duration: u64,
}

/// The kept samples of one track and its timing.
struct Chosen {
    index: usize,
    first: usize,
    last: usize,
    durations: Vec<u32>,
    offsets: Vec<i64>,
    edits: Vec<ElstEntry>,
    edit_total: u64,
}

fn ticks(us: i64, timescale: u32) -> i128 {
    (i128::from(us) * i128::from(timescale) + 500_000 * i128::from(us.signum())) / 1_000_000
}

fn to_movie(ticks: i128, timescale: u32) -> u64 {
    let ts = i128::from(timescale.max(1));
    u64::try_from((ticks * i128::from(MOVIE_TIMESCALE) + ts / 2) / ts).unwrap_or(0)
}

/// The producer's presentation shift of a track: the media_time of its first non-empty edit,
/// minus the empty edits before it (§8.6.6), in the track's timescale.
fn producer_shift(moov: &Moov, track_id: u32, timescale: u32, movie_timescale: u32) -> i128 {
    let Some(trak) = moov.trak.iter().find(|t| t.tkhd.track_id == track_id) else { return 0 };
    let Some(elst) = trak.edts.as_ref().and_then(|e| e.elst.as_ref()) else { return 0 };
    let mut empty: i128 = 0;
    for e in &elst.entries {
        match e.media_time {
            None => {
                empty += i128::from(e.segment_duration) * i128::from(timescale)
                    / i128::from(movie_timescale.max(1))
            }
            Some(t) => return i128::from(t) - empty,
        }
    }
    0
}

fn choose(
    index: usize,
    track: &ClipTrack,
    shift: i128,
    start_us: i64,
    end_us: i64,
) -> Option<Chosen> {
    let samples = &track.samples;
    let ts = track.timescale;
    let (s_t, e_t) = (ticks(start_us, ts), ticks(end_us, ts));
    let pres = |s: &ClipSample| i128::from(s.decode) + i128::from(s.cts) - shift;
    let last = samples.iter().rposition(|s| pres(s) < e_t)?;
    let target = samples[..=last]
        .iter()
        .enumerate()
        .filter(|(_, s)| pres(s) <= s_t)
        .max_by_key(|(_, s)| pres(s))
        .map(|(i, _)| i);
    let first = match target {
        Some(t) => samples[..=t].iter().rposition(|s| s.sync).unwrap_or(0),
        None => 0,
    };
    let kept = &samples[first..=last];
    let mut durations = Vec::with_capacity(kept.len());
    for (i, s) in kept.iter().enumerate() {
        let d = match kept.get(i + 1) {
            Some(next) if next.decode > s.decode => {
                u32::try_from(next.decode - s.decode).unwrap_or(u32::MAX)
            }
            _ => s.duration,
        };
        durations.push(d);
    }
    let offsets: Vec<i64> =
        kept.iter().map(|s| i64::try_from(i128::from(s.cts) - shift).unwrap_or(0)).collect();
    let d_first = i128::from(kept[0].decode);
    let p_min = kept.iter().map(pres).min()?;
    let p_end = kept.iter().zip(&durations).map(|(s, d)| pres(s) + i128::from(*d)).max()?;
    let (w0, w1) = (s_t.max(p_min), e_t.min(p_end));
    if w1 <= w0 {
        return None;
    }
    let mut edits = Vec::new();
    let mut edit_total = 0;
    if w0 > s_t {
        let d = to_movie(w0 - s_t, ts);
        edit_total += d;
        edits.push(ElstEntry { segment_duration: d, media_time: None, media_rate: 1i16.into() });
    }
    let d = to_movie(w1 - w0, ts);
    edit_total += d;
    edits.push(ElstEntry {
        segment_duration: d,
        media_time: Some(u64::try_from(w0 - d_first).unwrap_or(0)),
        media_rate: 1i16.into(),
    });
    Some(Chosen { index, first, last, durations, offsets, edits, edit_total })
}

/// Finds the first top-level box of this type; returns its full bytes.
fn find_box<'a>(bytes: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let (size, header) = box_size(&bytes[at..])?;
        if size < header {
            return None;
        }
        let end = at.checked_add(size)?;
        if end > bytes.len() {
            return None;
        }
        if &bytes[at + 4..at + 8] == kind {
            return Some(&bytes[at..end]);
        }
        at = end;
    }
    None
}

/// A box's size and header length (§4.2); size 0 is refused.
fn box_size(b: &[u8]) -> Option<(usize, usize)> {
    let size32 = u32::from_be_bytes(b.get(0..4)?.try_into().ok()?);
    match size32 {
        0 => None,
        1 => {
            let large = u64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
            Some((usize::try_from(large).ok()?, 16))
        }
        n => Some((n as usize, 8)),
    }
}

/// The children of a container box body.
fn children(body: &[u8]) -> Vec<(usize, usize, [u8; 4])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= body.len() {
        let Some((size, header)) = box_size(&body[at..]) else { break };
        let Some(end) = at.checked_add(size).filter(|&e| size >= header && e <= body.len()) else {
            break;
        };
        out.push((at, end, [body[at + 4], body[at + 5], body[at + 6], body[at + 7]]));
        at = end;
    }
    out
}

/// The raw `stsd` of each trak of a moov, keyed by path trak → mdia → minf → stbl → stsd.
fn raw_stsds(moov: &[u8]) -> Vec<Vec<u8>> {
    fn child<'a>(b: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
        let header = box_size(b)?.1;
        let body = &b[header..];
        children(body).into_iter().find(|c| &c.2 == kind).map(|(s, e, _)| &body[s..e])
    }
    let header = box_size(moov).map_or(8, |h| h.1);
    children(&moov[header..])
        .into_iter()
        .filter(|c| &c.2 == b"trak")
        .map(|(s, e, _)| {
            let trak = &moov[header + s..header + e];
            child(trak, b"mdia")
                .and_then(|m| child(m, b"minf"))
                .and_then(|m| child(m, b"stbl"))
                .and_then(|m| child(m, b"stsd"))
                .map(<[u8]>::to_vec)
                .unwrap_or_default()
        })
        .collect()
}

/// Rewrites an encoded box (moov or a descendant) replacing the `stsd` of the n-th trak by the
/// raw bytes given, fixing the sizes of every enclosing box. Boxes are re-emitted with 32-bit
/// headers (a moov never approaches 4 GiB).
fn splice_stsd(
    b: &[u8],
    stsds: &[Vec<u8>],
    trak_no: &mut usize,
    in_trak: Option<usize>,
) -> Vec<u8> {
    let Some((size, header)) = box_size(b) else { return b.to_vec() };
    let kind: [u8; 4] = [b[4], b[5], b[6], b[7]];
    if &kind == b"stsd"
        && let Some(raw) = in_trak.and_then(|i| stsds.get(i)).filter(|r| !r.is_empty())
    {
        return raw.clone();
    }
    if !matches!(&kind, b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl") {
        return b[..size.min(b.len())].to_vec();
    }
    let this_trak = if &kind == b"trak" {
        let i = *trak_no;
        *trak_no += 1;
        Some(i)
    } else {
        in_trak
    };
    let body = &b[header..size.min(b.len())];
    let mut out_body = Vec::with_capacity(body.len());
    for (s, e, _) in children(body) {
        out_body.extend(splice_stsd(&body[s..e], stsds, trak_no, this_trak));
    }
    let mut out = Vec::with_capacity(out_body.len() + 8);
    out.extend_from_slice(&((out_body.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(&kind);
    out.extend(out_body);
    out
}

fn run_length<T: PartialEq + Copy>(values: impl Iterator<Item = T>) -> Vec<(u32, T)> {
    let mut out: Vec<(u32, T)> = Vec::new();
    for v in values {
        match out.last_mut() {
            Some((n, last)) if *last == v && *n < u32::MAX => *n += 1,
            _ => out.push((1, v)),
        }
    }
    out
}

/// Builds the clip of `[start_us, end_us)` (microseconds since the epoch on the timeline the
/// samples were placed on). `init_bytes` is the producer's init segment (ftyp + moov).
pub fn plan(
    init_bytes: &[u8],
    tracks: &[ClipTrack],
    start_us: i64,
    end_us: i64,
) -> Result<ClipPlan, ClipError> {
    let raw_moov = find_box(init_bytes, b"moov")
        .ok_or_else(|| ClipError::Init("the init segment has no moov".into()))?;
    let source = Moov::decode(&mut &raw_moov[..]).map_err(|e| ClipError::Init(e.to_string()))?;
    let stsds_all = raw_stsds(raw_moov);

    let mut chosen = Vec::new();
    for (i, t) in tracks.iter().enumerate() {
        let shift = producer_shift(&source, t.track_id, t.timescale, source.mvhd.timescale);
        if let Some(c) = choose(i, t, shift, start_us, end_us) {
            chosen.push(c);
        }
    }
    if chosen.is_empty() {
        return Err(ClipError::Empty);
    }

    // Chunks: one per (fragment, track), ordered by fragment then track.
    struct Chunk {
        fragment: u32,
        track: usize,
        samples: std::ops::Range<usize>,
    }
    let mut chunks: Vec<Chunk> = Vec::new();
    for (ci, c) in chosen.iter().enumerate() {
        let samples = &tracks[c.index].samples;
        let mut i = c.first;
        while i <= c.last {
            let f = samples[i].fragment;
            let mut j = i;
            while j < c.last && samples[j + 1].fragment == f {
                j += 1;
            }
            chunks.push(Chunk { fragment: f, track: ci, samples: i..j + 1 });
            i = j + 1;
        }
    }
    chunks.sort_by_key(|c| (c.fragment, c.track));

    // mdat layout and pieces.
    let mut chunk_offsets: Vec<Vec<u64>> = vec![Vec::new(); chosen.len()];
    let mut chunk_sizes: Vec<Vec<u32>> = vec![Vec::new(); chosen.len()];
    let mut pieces: Vec<Piece> = Vec::new();
    let mut pos: u64 = 0;
    for ch in &chunks {
        let samples = &tracks[chosen[ch.track].index].samples;
        chunk_offsets[ch.track].push(pos);
        chunk_sizes[ch.track].push(ch.samples.len() as u32);
        for s in &samples[ch.samples.clone()] {
            let len = u64::from(s.size);
            match pieces.last_mut() {
                Some(p) if p.fragment == s.fragment && p.offset + p.len == s.offset => p.len += len,
                _ => pieces.push(Piece { fragment: s.fragment, offset: s.offset, len }),
            }
            pos += len;
        }
    }
    let mdat_len = pos;

    let ftyp = Ftyp {
        major_brand: FourCC::new(b"isom"),
        minor_version: 512,
        compatible_brands: vec![
            FourCC::new(b"isom"),
            FourCC::new(b"iso2"),
            FourCC::new(b"avc1"),
            FourCC::new(b"mp41"),
        ],
    };
    let mut ftyp_bytes = Vec::new();
    ftyp.encode(&mut ftyp_bytes).map_err(|e| ClipError::Encode(e.to_string()))?;

    let build = |base: u64| -> Result<Vec<u8>, ClipError> {
        let mut moov = source.clone();
        moov.mvex = None;
        moov.mvhd.timescale = MOVIE_TIMESCALE;
        moov.mvhd.duration = chosen.iter().map(|c| c.edit_total).max().unwrap_or(0);
        let mut traks = Vec::new();
        let mut stsds = Vec::new();
        for (ci, c) in chosen.iter().enumerate() {
            let track = &tracks[c.index];
            let Some(pos) = source.trak.iter().position(|t| t.tkhd.track_id == track.track_id)
            else {
                continue;
            };
            let mut trak = source.trak[pos].clone();
            stsds.push(stsds_all.get(pos).cloned().unwrap_or_default());
            let kept = &track.samples[c.first..=c.last];
            trak.tkhd.duration = c.edit_total;
            trak.mdia.mdhd.duration = c.durations.iter().map(|d| u64::from(*d)).sum();
            trak.edts = Some(Edts { elst: Some(Elst { entries: c.edits.clone() }) });
            let stts = Stts {
                entries: run_length(c.durations.iter().copied())
                    .into_iter()
                    .map(|(n, d)| SttsEntry { sample_count: n, sample_delta: d })
                    .collect(),
            };
            let ctts = c.offsets.iter().any(|o| *o != 0).then(|| Ctts {
                entries: run_length(c.offsets.iter().copied())
                    .into_iter()
                    .map(|(n, o)| CttsEntry { sample_count: n, sample_offset: o })
                    .collect(),
            });
            let stss =
                (track.kind == TrackKind::Video && kept.iter().any(|s| !s.sync)).then(|| Stss {
                    entries: kept
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.sync)
                        .map(|(i, _)| i as u32 + 1)
                        .collect(),
                });
            let mut stsc = Stsc::default();
            for (i, n) in chunk_sizes[ci].iter().enumerate() {
                if stsc.entries.last().is_none_or(|e| e.samples_per_chunk != *n) {
                    stsc.entries.push(StscEntry {
                        first_chunk: i as u32 + 1,
                        samples_per_chunk: *n,
                        sample_description_index: 1,
                    });
                }
            }
            let stsd = std::mem::take(&mut trak.mdia.minf.stbl.stsd);
            trak.mdia.minf.stbl = Stbl {
                stsd,
                stts,
                ctts,
                stss,
                stsc,
                stsz: Stsz {
                    samples: StszSamples::Different {
                        sizes: kept.iter().map(|s| s.size).collect(),
                    },
                },
                co64: Some(Co64 { entries: chunk_offsets[ci].iter().map(|o| o + base).collect() }),
                ..Default::default()
            };
            traks.push(trak);
        }
        moov.trak = traks;
        let mut encoded = Vec::new();
        moov.encode(&mut encoded).map_err(|e| ClipError::Encode(e.to_string()))?;
        let mut trak_no = 0;
        Ok(splice_stsd(&encoded, &stsds, &mut trak_no, None))
    };
    let probe = build(0)?;
    let base = ftyp_bytes.len() as u64 + probe.len() as u64 + MDAT_HEADER;
    let moov = build(base)?;
    if moov.len() != probe.len() {
        return Err(ClipError::Encode("the moov size changed between passes".into()));
    }

    let mut head = BytesMut::with_capacity(base as usize);
    head.put_slice(&ftyp_bytes);
    head.put_slice(&moov);
    head.put_u32(1);
    head.put_slice(b"mdat");
    head.put_u64(MDAT_HEADER + mdat_len);
    let duration = chosen.iter().map(|c| c.edit_total).max().unwrap_or(0);
    Ok(ClipPlan { head: head.freeze(), pieces, total_len: base + mdat_len, duration })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(samples: Vec<(u64, i64, bool)>) -> ClipTrack {
        ClipTrack {
            track_id: 1,
            timescale: 30,
            kind: TrackKind::Video,
            samples: samples
                .into_iter()
                .enumerate()
                .map(|(i, (decode, cts, sync))| ClipSample {
                    decode,
                    cts,
                    duration: 1,
                    size: 10,
                    sync,
                    fragment: (i / 30) as u32,
                    offset: 100 + (i % 30) as u64 * 10,
                })
                .collect(),
        }
    }

    #[test]
    fn chooses_from_the_keyframe_and_edits_to_the_start() {
        // 90 frames at 30 fps, keyframe every 30.
        let t = track((0..90).map(|i| (i, 0, i % 30 == 0)).collect());
        // [1.5 s, 2.5 s): decode from the keyframe at 1 s (frame 30) to frame 74.
        let c = choose(0, &t, 0, 1_500_000, 2_500_000).unwrap();
        assert_eq!((c.first, c.last), (30, 74));
        assert_eq!(c.edits.len(), 1);
        assert_eq!(c.edits[0].media_time, Some(15));
        assert_eq!(c.edits[0].segment_duration, 90_000);
    }

    #[test]
    fn a_gap_becomes_a_longer_sample() {
        let mut s: Vec<(u64, i64, bool)> = (0..30).map(|i| (i, 0, i == 0)).collect();
        s.extend((0..30).map(|i| (300 + i, 0, i == 0)));
        let t = track(s);
        let c = choose(0, &t, 0, 0, 11_000_000).unwrap();
        assert_eq!(c.durations[29], 271);
        assert_eq!(c.edit_total, 90_000 * 11);
    }

    #[test]
    fn keeps_references_presented_after_end() {
        // I P B: P decoded before B, presented after it.
        let t = track(vec![(0, 1, true), (1, 2, false), (2, 0, false)]);
        // end at 2.5 frames: the B (presented at 2) needs the P (presented at 3).
        let c = choose(0, &t, 1, 0, 2_500_000 / 30).unwrap();
        assert_eq!((c.first, c.last), (0, 2));
        assert_eq!(c.offsets, vec![0, 1, -1]);
    }

    #[test]
    fn splice_replaces_stsd_and_fixes_sizes() {
        fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
            let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
            v.extend_from_slice(kind);
            v.extend_from_slice(body);
            v
        }
        let stbl = bx(b"stbl", &[bx(b"stsd", b"old"), bx(b"stts", b"x")].concat());
        let moov = bx(b"moov", &bx(b"trak", &bx(b"mdia", &bx(b"minf", &stbl))));
        let raw = bx(b"stsd", b"brand new");
        let mut n = 0;
        let out = splice_stsd(&moov, std::slice::from_ref(&raw), &mut n, None);
        assert_eq!(out.len(), moov.len() + 6);
        assert_eq!(raw_stsds(&out), vec![raw]);
    }
}
