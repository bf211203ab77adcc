//! Matroska to fragmented MP4, once, at ingest: what PutMedia receives becomes the same init
//! segments and fragments every other ingest stores, so playback, clips, frames and GetMedia treat
//! it like any push.
//!
//! - `Tracks` become an init segment through the fMP4 muxer (`crate::media::mux`): the
//!   CodecPrivate of `V_MPEG4/ISO/AVC` and `V_MPEGH/ISO/HEVC` is the avcC/hvcC record itself
//!   (kept whole, so the frames' NAL length size stays right), `A_AAC`'s is the
//!   AudioSpecificConfig, `A_OPUS`'s the OpusHead. Tracks of other kinds are left out; a video or
//!   audio codec without an MP4 mapping here ends the session.
//! - Each Cluster becomes one fragment. Matroska carries presentation times only; decode times
//!   are rebuilt per track as the presentation times in increasing order, moved back by the
//!   track's reordering delay (the largest amount a frame is presented after the one decoded in
//!   its place), so composition offsets are never negative. A sample lasts until the next one;
//!   the last of a cluster lasts the cluster's mean frame interval (or the track's
//!   `DefaultDuration`, or the previous cluster's).
//! - A Cluster whose video does not begin with a keyframe continues the fragment before it (as
//!   ffmpeg's and GStreamer's muxers cut clusters by time and size): it is stored as a fragment
//!   that is not a segment start, as the parts of low-latency sources are. Nothing decodable
//!   precedes it at the start of a session or after a refused Cluster: then it is refused.
//! - A Cluster is refused alone (the session goes on) when it cannot be decoded (above), a block
//!   names a track the Tracks do not declare, it holds no frame, or it is larger than the
//!   fragment limit — nothing of it is stored. Decode times rebuilt per Cluster assume that a
//!   Cluster of B-frame video begins at a keyframe; one that splits a reordering group is refused
//!   by the writer (its decode time would go backwards).
//!
//! Times in: ticks of the Segment's timestamp scale from `origin_ns` (0 for absolute
//! timecodes, the producer's start for relative ones); out: the MP4 tracks' timescale
//! (10⁹ / scale when that is whole, else microseconds), from the Unix epoch. Pure: no I/O.

use std::collections::VecDeque;

use bytes::Bytes;
use mp4_atom::Atom;

use super::read::{MkvError, MkvEvent, MkvLimits, MkvReader, SimpleTag, TrackEntry};
use crate::media::fmp4::{Fragment, InitSegment, Item};
use crate::media::mux::{self, MuxCodec, MuxSample, MuxTrack, TrackRun};
use crate::media::param_sets::{DecoderConfig, aac_config, h264_params, h265_params};

/// What ends a session: bytes that are not Matroska, or a track that cannot be stored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RemuxError {
    #[error("{0}")]
    Mkv(#[from] MkvError),
    #[error("track {track}: {reason}")]
    Track { track: u64, reason: String },
}

/// Why one Cluster was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its video does not start with a keyframe, it holds no frame, or its times do not fit.
    Invalid,
    /// A block of a track the Tracks do not declare.
    UnknownTrack,
    /// Larger than the fragment limit.
    TooLarge,
}

/// What the remuxer produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Remuxed {
    /// An init segment, as the fMP4 reader gives them.
    Item(Item),
    /// A Cluster's first bytes (the fMP4 reader's `FragmentStarted`), with its timecode in
    /// milliseconds as the producer sent it.
    ClusterStarted { offset: u64, timecode_ms: i64 },
    /// A Cluster as a fragment, with the Cluster's timecode in milliseconds as the producer sent
    /// it (what KVS acknowledges a fragment by) and the `SimpleTag`s of the `Tags` that came
    /// before it (after the Cluster before; KVS producers tag the fragment that follows).
    Cluster { fragment: Fragment, timecode_ms: i64, tags: Vec<SimpleTag> },
    /// A Cluster that was refused, and why.
    Refused(Refusal, String),
}

struct InTrack {
    number: u64,
    mux_id: u32,
    video: bool,
    /// The last frame interval and the reordering delay seen, in the MP4 timescale.
    interval: Option<i64>,
    default_interval: i64,
    delay: i64,
}

/// A frame of the Cluster being assembled.
struct Frame {
    track: usize,
    time: i64,
    keyframe: bool,
    data: Bytes,
}

/// Incremental Matroska → fMP4: push bytes, pull [`Remuxed`].
pub struct MkvRemuxer {
    reader: MkvReader,
    max_fragment_bytes: usize,
    origin_ns: i128,
    scale_ns: u64,
    timescale: u32,
    tracks: Vec<InTrack>,
    /// The Cluster being assembled: its frames, its bytes, and a refusal already decided.
    frames: Vec<Frame>,
    cluster_bytes: usize,
    refused: Option<(Refusal, String)>,
    cluster_offset: u64,
    cluster_timecode_ms: i64,
    sequence: u32,
    /// The Cluster before was stored: one that does not begin with a keyframe may continue it.
    decodable: bool,
    /// The Tracks of the current init segment.
    last_tracks: Option<(u64, Vec<TrackEntry>)>,
    /// Tags read since the last Cluster ended, for the next one.
    tags: Vec<SimpleTag>,
    out: VecDeque<Remuxed>,
}

/// Tags held for the next Cluster, at most (a producer that sends only tags cannot grow them).
const MAX_PENDING_TAGS: usize = 256;

impl MkvRemuxer {
    /// `origin_ns`: what a timecode of 0 is, in nanoseconds since the Unix epoch.
    pub fn new(limits: MkvLimits, max_fragment_bytes: usize, origin_ns: i128) -> MkvRemuxer {
        MkvRemuxer {
            reader: MkvReader::new(limits),
            max_fragment_bytes,
            origin_ns,
            scale_ns: 1_000_000,
            timescale: 1000,
            tracks: Vec::new(),
            frames: Vec::new(),
            cluster_bytes: 0,
            refused: None,
            cluster_offset: 0,
            cluster_timecode_ms: 0,
            sequence: 0,
            decodable: false,
            last_tracks: None,
            tags: Vec::new(),
            out: VecDeque::new(),
        }
    }

    pub fn push(&mut self, chunk: Bytes) {
        self.reader.push(chunk);
    }

    /// Bytes held: unparsed input and the frames of the Cluster being assembled.
    pub fn buffered(&self) -> usize {
        self.reader.buffered() + self.cluster_bytes
    }

    /// The end of the body (a Cluster of unknown size ends here).
    pub fn finish(&mut self) -> Result<(), RemuxError> {
        self.reader.finish()?;
        self.drain_reader()
    }

    pub fn next_remuxed(&mut self) -> Result<Option<Remuxed>, RemuxError> {
        if self.out.is_empty() {
            self.drain_reader()?;
        }
        Ok(self.out.pop_front())
    }

    fn drain_reader(&mut self) -> Result<(), RemuxError> {
        while self.out.is_empty() {
            let Some(event) = self.reader.next_event()? else { return Ok(()) };
            match event {
                MkvEvent::Tracks { timestamp_scale_ns, tracks } => {
                    // Each document of a chained body repeats its Tracks: only a change is a new
                    // init segment (and a new start for decoding).
                    let same = (timestamp_scale_ns, &tracks);
                    if self.last_tracks.as_ref().is_some_and(|(s, t)| (*s, t) == same) {
                        continue;
                    }
                    let init = self.tracks(timestamp_scale_ns, &tracks)?;
                    self.last_tracks = Some((timestamp_scale_ns, tracks));
                    self.decodable = false;
                    self.out.push_back(Remuxed::Item(Item::Init(init)));
                }
                MkvEvent::ClusterStarted { offset, timestamp } => {
                    self.cluster_offset = offset;
                    self.cluster_timecode_ms =
                        (i128::from(timestamp) * i128::from(self.scale_ns) / 1_000_000)
                            .clamp(0, i128::from(i64::MAX)) as i64;
                    self.out.push_back(Remuxed::ClusterStarted {
                        offset,
                        timecode_ms: self.cluster_timecode_ms,
                    });
                }
                MkvEvent::Block { track, time, keyframe, data } => {
                    self.block(track, time, keyframe, data)
                }
                MkvEvent::Tags(tags) => {
                    let room = MAX_PENDING_TAGS.saturating_sub(self.tags.len());
                    self.tags.extend(tags.into_iter().take(room));
                }
                MkvEvent::ClusterEnded => {
                    let done = self.cluster();
                    self.decodable = matches!(done, Remuxed::Cluster { .. });
                    if !self.decodable {
                        // The tags of a refused Cluster go with it.
                        self.tags.clear();
                    }
                    self.frames.clear();
                    self.cluster_bytes = 0;
                    self.refused = None;
                    self.out.push_back(done);
                }
            }
        }
        Ok(())
    }

    /// A new `Tracks`: the MP4 tracks and their init segment.
    fn tracks(&mut self, scale_ns: u64, entries: &[TrackEntry]) -> Result<InitSegment, RemuxError> {
        self.scale_ns = scale_ns;
        self.timescale = if 1_000_000_000 % scale_ns == 0 {
            u32::try_from(1_000_000_000 / scale_ns).unwrap_or(1_000_000)
        } else {
            1_000_000
        };
        self.tracks.clear();
        let mut mux_tracks = Vec::new();
        for e in entries.iter().filter(|e| e.kind == 1 || e.kind == 2) {
            let mux_id = mux_tracks.len() as u32 + 1;
            let codec = codec_of(e)?;
            let per_second = |n: f64| (f64::from(self.timescale) / n).round() as i64;
            let default_interval = match (&codec, e.default_duration_ns) {
                (_, Some(ns)) if ns > 0 => {
                    (i128::from(ns) * i128::from(self.timescale) / 1_000_000_000).max(1) as i64
                }
                (MuxCodec::Video(_), _) => per_second(30.0),
                (MuxCodec::Aac(a), _) => per_second(f64::from(a.sample_rate.max(1)) / 1024.0),
                (MuxCodec::Opus { .. }, _) => per_second(50.0),
            };
            self.tracks.push(InTrack {
                number: e.number,
                mux_id,
                video: e.kind == 1,
                interval: None,
                default_interval: default_interval.max(1),
                delay: 0,
            });
            mux_tracks.push(MuxTrack { track_id: mux_id, timescale: self.timescale, codec });
        }
        if mux_tracks.is_empty() {
            return Err(RemuxError::Track {
                track: 0,
                reason: "the Tracks have no video or audio track".to_owned(),
            });
        }
        mux::init_segment(&mux_tracks)
            .map_err(|e| RemuxError::Track { track: 0, reason: e.to_string() })
    }

    fn block(&mut self, number: u64, time: i64, keyframe: bool, data: Bytes) {
        if self.refused.is_some() {
            return;
        }
        let Some(track) = self.tracks.iter().position(|t| t.number == number) else {
            self.refused = Some((
                Refusal::UnknownTrack,
                format!("a block of track {number}, which the Tracks do not declare"),
            ));
            return;
        };
        self.cluster_bytes += data.len();
        if self.cluster_bytes > self.max_fragment_bytes {
            self.refused = Some((
                Refusal::TooLarge,
                format!(
                    "the Cluster is larger than the fragment limit of {} bytes",
                    self.max_fragment_bytes
                ),
            ));
            self.frames.clear();
            self.cluster_bytes = 0;
            return;
        }
        self.frames.push(Frame { track, time, keyframe, data });
    }

    /// The Cluster just ended as a fragment, or its refusal.
    fn cluster(&mut self) -> Remuxed {
        if let Some((why, message)) = self.refused.take() {
            return Remuxed::Refused(why, message);
        }
        if self.frames.is_empty() {
            return Remuxed::Refused(Refusal::Invalid, "a Cluster without frames".to_owned());
        }
        let mut samples: Vec<Vec<MuxSample>> = vec![Vec::new(); self.tracks.len()];
        let mut bases = vec![0u64; self.tracks.len()];
        for (i, track) in self.tracks.iter_mut().enumerate() {
            let frames: Vec<&Frame> = self.frames.iter().filter(|f| f.track == i).collect();
            if frames.is_empty() {
                continue;
            }
            if track.video && !frames[0].keyframe && !self.decodable {
                return Remuxed::Refused(
                    Refusal::Invalid,
                    format!(
                        "the Cluster's video (track {}) does not begin with a keyframe, and no \
                         stored Cluster precedes it in this session",
                        track.number
                    ),
                );
            }
            let mut pts = Vec::with_capacity(frames.len());
            for f in &frames {
                let ns = i128::from(f.time) * i128::from(self.scale_ns) + self.origin_ns;
                let t = ns * i128::from(self.timescale) / 1_000_000_000;
                match i64::try_from(t) {
                    Ok(t) if t >= 0 => pts.push(t),
                    _ => {
                        return Remuxed::Refused(
                            Refusal::Invalid,
                            format!("a frame of track {} is timed before 1970", track.number),
                        );
                    }
                }
            }
            let mut sorted = pts.clone();
            sorted.sort_unstable();
            let reorder = sorted.iter().zip(&pts).map(|(s, p)| s - p).max().unwrap_or(0);
            track.delay = track.delay.max(reorder);
            let decode: Vec<i64> = sorted.iter().map(|s| s - track.delay).collect();
            if decode[0] < 0 {
                return Remuxed::Refused(
                    Refusal::Invalid,
                    format!("track {}: a decode time before 1970", track.number),
                );
            }
            let n = decode.len();
            let interval = if n >= 2 {
                ((decode[n - 1] - decode[0]) / (n as i64 - 1)).max(1)
            } else {
                track.interval.unwrap_or(track.default_interval)
            };
            track.interval = Some(interval);
            bases[i] = decode[0] as u64;
            for (k, f) in frames.iter().enumerate() {
                let duration = if k + 1 < n { decode[k + 1] - decode[k] } else { interval };
                samples[i].push(MuxSample {
                    duration: u32::try_from(duration).unwrap_or(u32::MAX),
                    composition_offset: i32::try_from(pts[k] - decode[k]).unwrap_or(i32::MAX),
                    sync: f.keyframe || !track.video,
                    data: f.data.clone(),
                });
            }
        }
        let runs: Vec<TrackRun<'_>> = self
            .tracks
            .iter()
            .zip(&samples)
            .zip(&bases)
            .filter(|((_, s), _)| !s.is_empty())
            .map(|((t, s), &b)| TrackRun { track_id: t.mux_id, base_decode_time: b, samples: s })
            .collect();
        self.sequence = self.sequence.wrapping_add(1);
        match mux::fragment(self.sequence, &runs, self.cluster_offset) {
            Ok(fragment) => Remuxed::Cluster {
                fragment,
                timecode_ms: self.cluster_timecode_ms,
                tags: std::mem::take(&mut self.tags),
            },
            Err(e) => Remuxed::Refused(Refusal::Invalid, e.to_string()),
        }
    }
}

/// The MP4 codec of a Matroska track.
fn codec_of(e: &TrackEntry) -> Result<MuxCodec, RemuxError> {
    let fail = |reason: String| RemuxError::Track { track: e.number, reason };
    let private = &e.codec_private;
    match e.codec_id.as_str() {
        "V_MPEG4/ISO/AVC" => {
            let avcc = mp4_atom::Avcc::decode_body(&mut &private[..])
                .map_err(|err| fail(format!("its CodecPrivate is not an avcC record: {err}")))?;
            let (Some(sps), Some(pps)) =
                (avcc.sequence_parameter_sets.first(), avcc.picture_parameter_sets.first())
            else {
                return Err(fail("its avcC record has no SPS or PPS".to_owned()));
            };
            let mut params = h264_params(sps, pps).map_err(|err| fail(err.to_string()))?;
            params.config = DecoderConfig::Avc(avcc);
            Ok(MuxCodec::Video(params))
        }
        "V_MPEGH/ISO/HEVC" => {
            let hvcc = mp4_atom::Hvcc::decode_body(&mut &private[..])
                .map_err(|err| fail(format!("its CodecPrivate is not an hvcC record: {err}")))?;
            let nal = |t: u8| {
                hvcc.arrays.iter().find(|a| a.nal_unit_type == t).and_then(|a| a.nalus.first())
            };
            let (Some(vps), Some(sps), Some(pps)) = (nal(32), nal(33), nal(34)) else {
                return Err(fail("its hvcC record lacks a VPS, SPS or PPS".to_owned()));
            };
            let mut params = h265_params(vps, sps, pps).map_err(|err| fail(err.to_string()))?;
            params.config = DecoderConfig::Hevc(hvcc);
            Ok(MuxCodec::Video(params))
        }
        id if id.starts_with("A_AAC") => aac_config(private.clone())
            .map(MuxCodec::Aac)
            .map_err(|err| fail(format!("its CodecPrivate is not an AudioSpecificConfig: {err}"))),
        "A_OPUS" => {
            let channels = if private.starts_with(b"OpusHead") && private.len() > 9 {
                private[9]
            } else {
                u8::try_from(e.channels).unwrap_or(2)
            };
            Ok(MuxCodec::Opus { channels: channels.max(1) })
        }
        other => Err(fail(format!(
            "codec {other:?} cannot be stored (V_MPEG4/ISO/AVC, V_MPEGH/ISO/HEVC, A_AAC and \
             A_OPUS can)"
        ))),
    }
}
