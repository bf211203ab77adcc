//! From instants to decode runs: which fragment holds the frame on display at an instant, which
//! stored samples lead from the preceding keyframe to it, and the decoder configuration of its
//! track. Runs on a worker thread (it reads fragments from the log).
//!
//! A frame's time on a clock is its fragment's time on that clock plus the frame's presentation
//! time minus the fragment's first decode time (the writer stamps a fragment with the time of its
//! first decode time), so both clocks order frames exactly as the producer's timeline does.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use mp4_atom::Atom;

use super::worker::{AccessUnit, DecoderConfig, VideoCodec, Worker};
use super::{FrameError, Image, ImageOptions};
use crate::clock::{Timestamp, TimestampKind};
use crate::media::fmp4::{self, InitSegment};
use crate::video::VideoStream;
use crate::video::fragment::FragmentInfo;
use crate::video::fragment::FragmentNumber;

/// Every run's timeline starts this far from zero, so negative composition offsets stay positive.
const ORIGIN_NS: i128 = 3_600_000_000_000;

/// What an instant asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The frame on display at this instant.
    At(Timestamp),
    /// The newest frame.
    Latest,
}

/// Where an instant's frame is: the fragment holding it and the segment start to decode from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    pub fragment: FragmentNumber,
    pub segment_start: FragmentNumber,
}

fn internal(e: impl std::fmt::Display) -> FrameError {
    FrameError::Internal(e.to_string())
}

/// Finds the fragment holding the frame on display at `want` (index reads only).
pub fn locate(
    stream: &VideoStream,
    want: Want,
    clock: TimestampKind,
) -> Result<Located, FrameError> {
    let start = stream.first_retained();
    let fragment = match want {
        Want::Latest => {
            let end = stream.committed_end();
            if end <= start {
                return Err(FrameError::NoMedia(format!("stream {} has no media", stream.name)));
            }
            FragmentNumber(end.0 - 1)
        }
        Want::At(t) => {
            let after = stream.first_at_or_after(clock, t.add_micros(1)).map_err(internal)?;
            if after <= start {
                return Err(FrameError::NoMedia(format!(
                    "{t} is before the first stored fragment of stream {}",
                    stream.name
                )));
            }
            let f = FragmentNumber(after.0 - 1);
            let info = stream
                .fragment(f)
                .map_err(internal)?
                .ok_or_else(|| FrameError::NoMedia(format!("fragment {} was deleted", f.0)))?;
            let end = info.time(clock).add_micros(i64::from(info.meta.duration_us));
            if t >= end {
                return Err(FrameError::NoMedia(format!(
                    "no media at {t}: the fragment before it ({}) ends at {end}",
                    f.0
                )));
            }
            f
        }
    };
    let segment_start = stream.segment_start_at_or_before(fragment).map_err(internal)?;
    Ok(Located { fragment, segment_start })
}

/// The decoder configuration of an init segment's first video track, and that track.
fn decoder_config(init: &InitSegment) -> Result<(DecoderConfig, u32, u32), FrameError> {
    let track = init
        .video()
        .ok_or_else(|| FrameError::MediaError("the init segment has no video track".to_owned()))?;
    let moov = crate::media::fmp4::moov_of(&init.bytes)
        .map_err(|e| FrameError::MediaError(format!("the moov does not decode: {e}")))?;
    let trak = moov
        .trak
        .iter()
        .find(|t| t.tkhd.track_id == track.track_id)
        .ok_or_else(|| FrameError::MediaError("the video track has no trak".to_owned()))?;
    let entry =
        trak.mdia.minf.stbl.stsd.codecs.first().ok_or_else(|| {
            FrameError::MediaError("the video track has no sample entry".to_owned())
        })?;
    let mut record = Vec::new();
    let encoded = |r: Result<(), mp4_atom::Error>| {
        r.map_err(|e| FrameError::MediaError(format!("decoder configuration: {e}")))
    };
    let (codec, stream_format) = match entry {
        mp4_atom::Codec::Avc1(a) => {
            encoded(a.avcc.encode_body(&mut record))?;
            (VideoCodec::H264, "avc")
        }
        mp4_atom::Codec::Avc3(a) => {
            encoded(a.avcc.encode_body(&mut record))?;
            (VideoCodec::H264, "avc3")
        }
        mp4_atom::Codec::Hvc1(h) => {
            encoded(h.hvcc.encode_body(&mut record))?;
            (VideoCodec::H265, "hvc1")
        }
        mp4_atom::Codec::Hev1(h) => {
            encoded(h.hvcc.encode_body(&mut record))?;
            (VideoCodec::H265, "hev1")
        }
        _ => {
            return Err(FrameError::MediaError(format!(
                "codec {} cannot be decoded to images (H.264 and H.265 can)",
                track.codec_string
            )));
        }
    };
    let config = DecoderConfig { codec, stream_format, codec_data: Bytes::from(record) };
    Ok((config, track.track_id, track.timescale))
}

/// One stored video sample with its place and times.
struct StoredSample {
    fragment: FragmentInfo,
    data: Bytes,
    decode: u64,
    pts: u64,
    duration: u32,
    sync: bool,
    producer: Timestamp,
    server: Timestamp,
}

impl StoredSample {
    fn time(&self, clock: TimestampKind) -> Timestamp {
        match clock {
            TimestampKind::Producer => self.producer,
            TimestampKind::Server => self.server,
        }
    }
}

/// The video samples of fragments `from..=to` that share the last one's init segment, in decode
/// order.
struct Run {
    config: DecoderConfig,
    timescale: u32,
    samples: Vec<StoredSample>,
}

fn ticks_to_us(ticks: i128, timescale: u32) -> i64 {
    i64::try_from(ticks * 1_000_000 / i128::from(timescale.max(1))).unwrap_or(i64::MAX)
}

fn load_run(
    stream: &VideoStream,
    from: FragmentNumber,
    to: FragmentNumber,
) -> Result<Run, FrameError> {
    let last = stream
        .fragment(to)
        .map_err(internal)?
        .ok_or_else(|| FrameError::NoMedia(format!("fragment {} was deleted", to.0)))?;
    let init_id = last.meta.init_id;
    let init = stream
        .init(init_id)
        .map_err(internal)?
        .ok_or_else(|| FrameError::MediaError(format!("init segment {init_id} is missing")))?;
    let (config, track_id, timescale) = decoder_config(&init)?;
    let mut samples = Vec::new();
    for n in from.0..=to.0 {
        let Some((info, bytes)) = stream.read_fragment(FragmentNumber(n)).map_err(internal)? else {
            samples.clear();
            continue;
        };
        if info.meta.init_id != init_id {
            samples.clear();
            continue;
        }
        let tracks = match fmp4::samples(&init, &bytes) {
            Ok(t) => t,
            Err(e) => {
                if n == to.0 {
                    return Err(FrameError::MediaError(format!("fragment {n}: {e}")));
                }
                samples.clear();
                continue;
            }
        };
        let Some(track) = tracks.into_iter().find(|t| t.track_id == track_id) else { continue };
        let base = i128::from(track.base_decode_time);
        for s in track.samples {
            let Some(data) = (s.range.end <= bytes.len()).then(|| bytes.slice(s.range.clone()))
            else {
                continue;
            };
            let pts = s.presentation_time();
            let delta = ticks_to_us(i128::from(pts) - base, timescale);
            samples.push(StoredSample {
                fragment: info,
                data,
                decode: s.decode_time,
                pts,
                duration: s.duration,
                sync: s.sync,
                producer: info.producer_ts.add_micros(delta),
                server: info.server_ts.add_micros(delta),
            });
        }
    }
    Ok(Run { config, timescale, samples })
}

/// Picks the frame for `want` among the run's samples: the greatest time `<= t` among the samples
/// of fragments up to the located one (for `Latest`, the greatest time of the last fragment).
fn pick(run: &Run, want: Want, at: Located, clock: TimestampKind) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, s) in run.samples.iter().enumerate() {
        if s.fragment.number > at.fragment {
            break;
        }
        let ok = match want {
            Want::At(t) => s.time(clock) <= t,
            Want::Latest => s.fragment.number == at.fragment,
        };
        if ok && best.is_none_or(|b| run.samples[b].time(clock) <= s.time(clock)) {
            best = Some(i);
        }
    }
    best
}

/// Resolves and renders a batch of instants whose frames share one segment start. One result per
/// instant, in order; each error concerns that instant only.
pub fn render_batch(
    worker: &mut Worker,
    stream: &VideoStream,
    batch: &[(Want, Result<Located, FrameError>)],
    clock: TimestampKind,
    opts: &ImageOptions,
) -> Vec<Result<Image, FrameError>> {
    let mut out: Vec<Result<Image, FrameError>> = batch
        .iter()
        .map(|(_, l)| Err(l.clone().err().unwrap_or(FrameError::NoMedia(String::new()))))
        .collect();
    let located: Vec<(usize, Want, Located)> = batch
        .iter()
        .enumerate()
        .filter_map(|(i, (w, l))| l.as_ref().ok().map(|l| (i, *w, *l)))
        .collect();
    let (Some(from), Some(to)) = (
        located.iter().map(|(_, _, l)| l.segment_start).min(),
        located.iter().map(|(_, _, l)| l.fragment).max(),
    ) else {
        return out;
    };
    let run = match load_run(stream, from, to) {
        Ok(r) => r,
        Err(e) => {
            for (i, _, _) in &located {
                out[*i] = Err(e.clone());
            }
            return out;
        }
    };
    // Targets grouped by the keyframe they decode from: keyframe -> instants' (slot, sample).
    let mut groups: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
    for (slot, want, at) in &located {
        let Some(target) = pick(&run, *want, *at, clock) else {
            out[*slot] = Err(FrameError::NoMedia(match want {
                Want::At(t) => {
                    format!("no frame of fragment {} is on display at {t}", at.fragment.0)
                }
                Want::Latest => "the newest fragment has no video frame".to_owned(),
            }));
            continue;
        };
        match run.samples[..=target].iter().rposition(|s| s.sync) {
            Some(k) => groups.entry(k).or_default().push((*slot, target)),
            None => {
                out[*slot] = Err(FrameError::MediaError(format!(
                    "no keyframe precedes the frame in fragment {} (searched from fragment {})",
                    run.samples[target].fragment.number.0, from.0
                )));
            }
        }
    }
    let origin = |k: usize| i128::from(run.samples[k].decode);
    let ns = |ticks: u64, origin: i128| -> u64 {
        let rel = i128::from(ticks) - origin;
        let v = ORIGIN_NS + rel * 1_000_000_000 / i128::from(run.timescale.max(1));
        u64::try_from(v.max(0)).unwrap_or(0)
    };
    for (k, targets) in groups {
        let o = origin(k);
        let last = targets.iter().map(|(_, t)| *t).max().unwrap_or(k);
        let aus: Vec<AccessUnit> = run.samples[k..=last]
            .iter()
            .map(|s| AccessUnit {
                data: s.data.clone(),
                pts_ns: ns(s.pts, o),
                dts_ns: ns(s.decode, o),
                duration_ns: ns(u64::from(s.duration), 0).saturating_sub(ORIGIN_NS as u64),
            })
            .collect();
        let wanted: Vec<u64> = targets.iter().map(|(_, t)| ns(run.samples[*t].pts, o)).collect();
        let decoded = worker.decode(&run.config, &aus, &wanted);
        let mut encoded: HashMap<usize, Result<Image, FrameError>> = HashMap::new();
        for (slot, t) in targets {
            let result = encoded
                .entry(t)
                .or_insert_with(|| {
                    let frames = decoded.as_ref().map_err(Clone::clone)?;
                    let s = &run.samples[t];
                    let frame = frames.get(&ns(s.pts, o)).ok_or_else(|| {
                        FrameError::MediaError(format!(
                            "the decoder produced no picture for the frame at {} (fragment {}): \
                             the data is corrupt",
                            s.producer, s.fragment.number.0
                        ))
                    })?;
                    let (bytes, width, height) = worker.encode(frame, opts)?;
                    Ok(Image {
                        bytes,
                        format: opts.format,
                        width,
                        height,
                        producer_timestamp: s.producer,
                        server_timestamp: s.server,
                        fragment_number: s.fragment.number,
                    })
                })
                .clone();
            out[slot] = result;
        }
    }
    out
}
