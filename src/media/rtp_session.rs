//! RTP to fMP4, sans I/O: the state machine every RTP ingest (RTSP publish, RTSP pull, WHIP)
//! drives. It takes depacketized access units (video: the NAL units of one picture; audio: one
//! AAC access unit or one Opus packet) with their RTP timestamps and arrival times, and gives
//! back what to store: init segments and fragments, each already described for the store.
//!
//! - each track's 32-bit RTP clock is unwrapped to 64 bits ([`RtpClock`]);
//! - decode times for video come from presentation times through a small reorder window
//!   ([`ReorderWindow`], depth from the SPS), since RTP carries presentation times only;
//! - RTP time maps to absolute time by the track's RTCP sender report (NTP ↔ RTP) when one
//!   arrived before the session's first fragment and agrees with the arrival clock within
//!   [`SR_MAX_SKEW`], else by the arrival time of the track's first packet;
//! - an init segment comes from the parameter sets (out of band from the SDP, or in band; a
//!   change starts a new init segment), and a fragment is cut at every keyframe and every
//!   `part_duration`, so LL-HLS gets parts without configuration;
//! - the session starts no earlier than [`RtpSession::new`]'s `not_before` (the end of what the
//!   stream already holds), so a stream's timeline never runs backwards.
//!
//! The I/O around it (the store's writer, durability) is `crate::ingest::rtp`. See
//! `docs/design/rtp-ingest.md`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use super::fmp4::{Fragment, InitSegment};
use super::mux::{self, MuxCodec, MuxSample, MuxTrack, TrackRun};
use super::param_sets::{self, VideoParams, h264_nal, h265_nal};
use crate::clock::Timestamp;

/// The most an RTCP sender report's wall clock may differ from the server clock for Sluice to
/// trust it; beyond it (a camera with an unset clock) the server clock is used.
pub const SR_MAX_SKEW: Duration = Duration::from_secs(30);

/// Longest sample duration taken from RTP timestamps; a larger step (a pause, a jump of the
/// source's clock) is stored as a gap after a sample of the previous duration.
const MAX_SAMPLE_DURATION_SECS: u64 = 5;

/// Audio frames kept while waiting for video (10 s of 20 ms frames); older ones are dropped.
const MAX_PENDING_AUDIO: usize = 500;

/// A track's codec as the RTP source declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
    /// MPEG-4 AAC (RFC 3640 `mpeg4-generic`), with its AudioSpecificConfig (SDP `config=`).
    Aac {
        config: Bytes,
    },
    /// Opus (RFC 7587), 48 kHz.
    Opus {
        channels: u8,
    },
}

impl Codec {
    pub fn is_video(&self) -> bool {
        matches!(self, Codec::H264 | Codec::H265)
    }
}

/// One RTP track of a session.
#[derive(Debug, Clone)]
pub struct TrackSpec {
    pub codec: Codec,
    /// The RTP clock rate (90000 for video).
    pub clock_rate: u32,
    /// Out-of-band parameter sets (SDP `sprop-parameter-sets`, `sprop-vps/sps/pps`), as NAL units
    /// without start codes. May be empty: in-band ones are picked up at the first keyframe.
    pub params: Vec<Bytes>,
}

/// Unwraps a 32-bit RTP timestamp into a 64-bit one (RFC 3550 §5.1: the clock wraps). Steps of
/// up to ±2³¹ ticks from the previous timestamp are taken as the shortest way around, so
/// B-frames (earlier timestamps) and the wrap both come out right.
#[derive(Debug, Default, Clone, Copy)]
pub struct RtpClock {
    last: Option<i64>,
}

impl RtpClock {
    pub fn extend(&mut self, ts: u32) -> i64 {
        let ext = match self.last {
            None => i64::from(ts),
            Some(last) => last + i64::from(ts.wrapping_sub(last as u32) as i32),
        };
        self.last = Some(ext);
        ext
    }
}

/// Derives decode times from presentation times for a stream with B-frames: frames enter in
/// decode order; once `depth` more frames have arrived, the oldest leaves with the smallest
/// presentation time seen so far as its decode time. Decode times are thus the sorted
/// presentation times, which is exact when the encoder reorders at most `depth` frames (more
/// yields a negative composition offset, still valid in a version-1 `trun`).
#[derive(Debug)]
pub struct ReorderWindow<T> {
    depth: usize,
    frames: VecDeque<(i64, T)>,
    pts: BinaryHeap<Reverse<i64>>,
    last_dts: Option<i64>,
}

impl<T> ReorderWindow<T> {
    pub fn new(depth: usize) -> Self {
        ReorderWindow { depth, frames: VecDeque::new(), pts: BinaryHeap::new(), last_dts: None }
    }

    /// Adds a frame (in decode order) with its presentation time; returns the frames whose
    /// decode time is now known, as `(dts, pts, frame)`.
    pub fn push(&mut self, pts: i64, frame: T) -> Vec<(i64, i64, T)> {
        self.frames.push_back((pts, frame));
        self.pts.push(Reverse(pts));
        let mut out = Vec::new();
        while self.frames.len() > self.depth {
            out.extend(self.pop());
        }
        out
    }

    /// Releases every frame (end of stream, or before a new configuration).
    pub fn drain(&mut self) -> Vec<(i64, i64, T)> {
        let mut out = Vec::new();
        while !self.frames.is_empty() {
            out.extend(self.pop());
        }
        out
    }

    pub fn set_depth(&mut self, depth: usize) {
        self.depth = depth;
    }

    fn pop(&mut self) -> Option<(i64, i64, T)> {
        let (pts, frame) = self.frames.pop_front()?;
        let min = self.pts.pop().map_or(pts, |Reverse(p)| p);
        // Strictly increasing: two pictures with one RTP timestamp (or a timestamp going back)
        // still get distinct decode times, as MP4 requires.
        let dts = self.last_dts.map_or(min, |l| min.max(l + 1));
        self.last_dts = Some(dts);
        Some((dts, pts, frame))
    }
}

/// A frame waiting for the next one (its duration is the next decode time minus its own).
#[derive(Debug)]
struct Held {
    dts: i64,
    pts: i64,
    sync: bool,
    data: Bytes,
    arrival: Timestamp,
}

#[derive(Debug)]
struct VideoFrame {
    sync: bool,
    data: Bytes,
    arrival: Timestamp,
    /// The parameters this keyframe brings (a new init segment starts before it).
    new_params: Option<VideoParams>,
}

#[derive(Debug, Default)]
struct ParamSets {
    vps: Option<Bytes>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
}

struct Track {
    codec: Codec,
    clock_rate: u32,
    track_id: u32,
    rtp: RtpClock,
    /// RTP ↔ absolute time from the first packet's arrival: (extended RTP time, µs since epoch).
    arrival_mapping: Option<(i64, i64)>,
    /// The same from an RTCP sender report.
    sr_mapping: Option<(i64, i64)>,
    /// Fixed when the session starts: `tfdt = tfdt_base + extended RTP time`.
    tfdt_base: Option<i128>,
    // Video.
    param_sets: ParamSets,
    params: Option<VideoParams>,
    reorder: ReorderWindow<VideoFrame>,
    last_duration: u32,
    // Both: the frame waiting for its duration, and the samples of the open fragment.
    held: Option<Held>,
    samples: Vec<(i64, MuxSample)>,
    /// When the open fragment's first sample arrived.
    open_arrival: Option<Timestamp>,
}

impl Track {
    fn nominal_duration(&self) -> u32 {
        match &self.codec {
            Codec::Aac { .. } => 1024,
            Codec::Opus { .. } => self.clock_rate / 50,
            _ => self.clock_rate / 30,
        }
    }

    /// The RTP ↔ absolute time mapping in force (see the module docs).
    fn mapping(&self) -> Option<(i64, i64)> {
        match (self.sr_mapping, self.arrival_mapping) {
            (Some(sr), Some(arr)) => {
                // Trust the sender report only if it agrees with our clock at the first packet.
                let sr_at_first = sr.1 + ticks_to_us(arr.0 - sr.0, self.clock_rate);
                let skew = (sr_at_first - arr.1).unsigned_abs();
                if skew <= SR_MAX_SKEW.as_micros() as u64 { Some(sr) } else { Some(arr) }
            }
            (sr, arr) => arr.or(sr),
        }
    }
}

fn ticks_to_us(ticks: i64, clock_rate: u32) -> i64 {
    (i128::from(ticks) * 1_000_000 / i128::from(clock_rate.max(1))) as i64
}

/// What a session gives the store, in order.
#[derive(Debug)]
pub enum Output {
    /// A new init segment: the fragments after it refer to it.
    Init(InitSegment),
    /// A fragment and when its first sample arrived.
    Fragment { fragment: Fragment, arrival: Timestamp },
}

/// Why a frame or a session cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// The tracks as declared cannot be recorded (no track, two video tracks, a bad AAC config).
    #[error("{0}")]
    Tracks(String),
    /// A frame for a track that does not exist or is of the other kind.
    #[error("{0}")]
    WrongTrack(String),
    /// The muxer could not write the media (a fault, not the source's).
    #[error("{0}")]
    Mux(String),
}

/// One RTP session's state. See the module docs.
pub struct RtpSession {
    tracks: Vec<Track>,
    /// The track whose keyframes and times close fragments: the video track, else the first.
    timing: usize,
    part_duration: Duration,
    sequence: u32,
    init_pending: bool,
    /// Set at the first fragment: the session's tracks are anchored from then on.
    started: bool,
    /// The session's first fragment starts no earlier than this (µs since the epoch).
    not_before_us: Option<i64>,
    /// Added to every track's absolute time so the session starts after `not_before_us`.
    shift_us: i64,
    got_keyframe: bool,
    keyframe_wanted: bool,
    dropped_frames: u64,
    /// Bytes output so far: the byte position fragments are described at.
    position: u64,
    /// Why the last keyframe's parameter sets could not be used, if they could not.
    param_error: Option<String>,
    out: Vec<Output>,
}

impl RtpSession {
    /// A session over `tracks` (at most one video track), cutting parts of `part_duration`,
    /// whose media starts no earlier than `not_before`.
    pub fn new(
        tracks: Vec<TrackSpec>,
        part_duration: Duration,
        not_before: Option<Timestamp>,
    ) -> Result<RtpSession, RtpError> {
        if tracks.is_empty() {
            return Err(RtpError::Tracks("an RTP session needs at least one track".into()));
        }
        if tracks.iter().filter(|t| t.codec.is_video()).count() > 1 {
            return Err(RtpError::Tracks("at most one video track per stream is supported".into()));
        }
        let mut built = Vec::with_capacity(tracks.len());
        for (i, spec) in tracks.into_iter().enumerate() {
            if spec.clock_rate == 0 {
                return Err(RtpError::Tracks(format!("track {i} has clock rate 0")));
            }
            if let Codec::Aac { config } = &spec.codec {
                param_sets::aac_config(config.clone())
                    .map_err(|e| RtpError::Tracks(format!("track {i}: AAC config: {e}")))?;
            }
            let mut track = Track {
                codec: spec.codec,
                clock_rate: spec.clock_rate,
                track_id: u32::try_from(i + 1).unwrap_or(u32::MAX),
                rtp: RtpClock::default(),
                arrival_mapping: None,
                sr_mapping: None,
                tfdt_base: None,
                param_sets: ParamSets::default(),
                params: None,
                reorder: ReorderWindow::new(0),
                last_duration: 0,
                held: None,
                samples: Vec::new(),
                open_arrival: None,
            };
            track.last_duration = track.nominal_duration();
            for p in &spec.params {
                note_param_set(&mut track, p);
            }
            if track.codec.is_video()
                && let Ok(Some(params)) = parse_params(&track)
            {
                track.reorder.set_depth(params.max_reorder_frames as usize);
                track.params = Some(params);
            }
            built.push(track);
        }
        let timing = built.iter().position(|t| t.codec.is_video()).unwrap_or(0);
        Ok(RtpSession {
            tracks: built,
            timing,
            part_duration,
            sequence: 0,
            init_pending: true,
            started: false,
            not_before_us: not_before.map(|t| t.as_micros()),
            shift_us: 0,
            got_keyframe: false,
            keyframe_wanted: true,
            dropped_frames: 0,
            position: 0,
            param_error: None,
            out: Vec::new(),
        })
    }

    /// Whether a keyframe is wanted soon (none seen yet, or loss reported since the last one):
    /// WHIP sends a PLI on it.
    pub fn needs_keyframe(&self) -> bool {
        self.keyframe_wanted
    }

    /// Reports lost packets on `track` (a gap in RTP sequence numbers): a keyframe is wanted, and
    /// video frames are dropped until it comes.
    pub fn packet_loss(&mut self, track: usize) {
        if self.tracks.get(track).is_some_and(|t| t.codec.is_video()) {
            self.keyframe_wanted = true;
        }
    }

    /// Frames dropped so far (before the first keyframe, without parameter sets, unusable).
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_frames
    }

    /// Why the newest keyframe's parameter sets could not be used; taken once.
    pub fn take_param_error(&mut self) -> Option<String> {
        self.param_error.take()
    }

    /// The init segment last output was not stored: output it again before the next fragment.
    pub fn init_not_stored(&mut self) {
        self.init_pending = true;
    }

    /// One video access unit arriving at `now`: its NAL units (no start codes, no length
    /// prefixes) and its 32-bit RTP timestamp. In-band parameter sets are picked up; a changed
    /// set starts a new init segment; keyframes are detected from the NAL types. Frames before
    /// the first keyframe are dropped (counted).
    pub fn video(
        &mut self,
        track: usize,
        rtp_ts: u32,
        nalus: &[Bytes],
        now: Timestamp,
    ) -> Result<Vec<Output>, RtpError> {
        let Some(t) = self.tracks.get_mut(track) else {
            return Err(RtpError::WrongTrack(format!("video for unknown track {track}")));
        };
        if !t.codec.is_video() {
            return Err(RtpError::WrongTrack(format!("video for audio track {track}")));
        }
        let pts = t.rtp.extend(rtp_ts);
        t.arrival_mapping.get_or_insert((pts, now.as_micros()));
        let h265 = t.codec == Codec::H265;
        let mut sync = false;
        let mut kept: Vec<&Bytes> = Vec::with_capacity(nalus.len());
        let mut saw_params = false;
        for nal in nalus {
            if nal.is_empty() {
                continue;
            }
            let (is_param, is_key, drop) = if h265 {
                let k = h265_nal::kind(nal).unwrap_or(0);
                (
                    matches!(k, h265_nal::VPS | h265_nal::SPS | h265_nal::PPS),
                    (h265_nal::IRAP_FIRST..=h265_nal::IRAP_LAST).contains(&k),
                    k == h265_nal::AUD || k == h265_nal::FD,
                )
            } else {
                let k = h264_nal::kind(nal).unwrap_or(0);
                (
                    matches!(k, h264_nal::SPS | h264_nal::PPS),
                    k == h264_nal::IDR,
                    k == h264_nal::AUD || k == h264_nal::FILLER,
                )
            };
            if is_param {
                saw_params |= note_param_set(t, nal);
            }
            sync |= is_key;
            if !drop {
                kept.push(nal);
            }
        }
        if kept.is_empty() {
            return Ok(Vec::new());
        }
        let mut new_params = None;
        if sync && (saw_params || t.params.is_none()) {
            match parse_params(t) {
                Ok(Some(p)) if t.params.as_ref() != Some(&p) => new_params = Some(p),
                Ok(_) => {}
                Err(e) => self.param_error = Some(e.to_string()),
            }
        }
        if sync && t.params.is_none() && new_params.is_none() {
            sync = false; // a keyframe we cannot describe: wait for one with parameter sets
        }
        if (!self.got_keyframe || self.keyframe_wanted) && !sync {
            // Before the first keyframe, and after packet loss until the next one: these frames
            // would decode against pictures the store does not have.
            self.dropped_frames += 1;
            return Ok(Vec::new());
        }
        if sync {
            self.got_keyframe = true;
            self.keyframe_wanted = false;
        }
        let frame = VideoFrame { sync, data: mux::length_prefixed(kept), arrival: now, new_params };
        let mut ready = Vec::new();
        if let Some(p) = &frame.new_params {
            // A new configuration: release the frames of the old one first.
            ready.extend(t.reorder.drain());
            t.reorder.set_depth(p.max_reorder_frames as usize);
        }
        ready.extend(t.reorder.push(pts, frame));
        for (dts, pts, frame) in ready {
            self.video_decoded(track, dts, pts, frame, now)?;
        }
        Ok(std::mem::take(&mut self.out))
    }

    /// A video frame with its decode time: completes the held frame, closes the fragment at a
    /// keyframe or after `part_duration`, starts a new init segment on new parameters.
    fn video_decoded(
        &mut self,
        track: usize,
        dts: i64,
        pts: i64,
        frame: VideoFrame,
        now: Timestamp,
    ) -> Result<(), RtpError> {
        let part_ticks = duration_ticks(self.part_duration, self.tracks[track].clock_rate);
        let t = &mut self.tracks[track];
        complete_held(t, dts);
        let open_since = t.samples.first().map(|(d, _)| *d);
        let close = frame.sync || open_since.is_some_and(|start| dts - start >= part_ticks);
        if close && open_since.is_some() {
            self.flush(Some((track, dts)), now)?;
        }
        let t = &mut self.tracks[track];
        if let Some(p) = frame.new_params {
            t.params = Some(p);
            self.init_pending = true;
        }
        t.held =
            Some(Held { dts, pts, sync: frame.sync, data: frame.data, arrival: frame.arrival });
        Ok(())
    }

    /// One audio frame (a raw AAC access unit, or one Opus packet) arriving at `now`, and its RTP
    /// timestamp.
    pub fn audio(
        &mut self,
        track: usize,
        rtp_ts: u32,
        frame: Bytes,
        now: Timestamp,
    ) -> Result<Vec<Output>, RtpError> {
        let timing = self.timing;
        let part_ticks =
            self.tracks.get(track).map_or(0, |t| duration_ticks(self.part_duration, t.clock_rate));
        let Some(t) = self.tracks.get_mut(track) else {
            return Err(RtpError::WrongTrack(format!("audio for unknown track {track}")));
        };
        if t.codec.is_video() {
            return Err(RtpError::WrongTrack(format!("audio for video track {track}")));
        }
        if frame.is_empty() {
            return Ok(Vec::new());
        }
        let ts = t.rtp.extend(rtp_ts);
        t.arrival_mapping.get_or_insert((ts, now.as_micros()));
        if t.held.as_ref().is_some_and(|h| ts <= h.dts) {
            self.dropped_frames += 1; // a duplicate or reordered audio packet
            return Ok(Vec::new());
        }
        complete_held(t, ts);
        t.held = Some(Held { dts: ts, pts: ts, sync: true, data: frame, arrival: now });
        if t.samples.len() > MAX_PENDING_AUDIO {
            let excess = t.samples.len() - MAX_PENDING_AUDIO;
            t.samples.drain(..excess);
            self.dropped_frames += excess as u64;
        }
        if track == timing {
            // An audio-only session: parts of `part_duration`.
            self.got_keyframe = true;
            self.keyframe_wanted = false;
            let t = &self.tracks[track];
            if t.samples.first().is_some_and(|(start, _)| ts - start >= part_ticks) {
                self.flush(Some((track, ts)), now)?;
            }
        }
        Ok(std::mem::take(&mut self.out))
    }

    /// An RTCP sender report (RFC 3550 §6.4.1): anchors this track's RTP clock to absolute (NTP)
    /// time. Used only if it arrives before the session's first fragment.
    pub fn sender_report(&mut self, track: usize, rtp_ts: u32, ntp: Timestamp) {
        if self.started {
            return;
        }
        if let Some(t) = self.tracks.get_mut(track) {
            let mut probe = t.rtp;
            let ext = probe.extend(rtp_ts);
            t.sr_mapping = Some((ext, ntp.as_micros()));
        }
    }

    /// The end of the session: everything still held, with the last frames given their tracks'
    /// usual durations.
    pub fn finish(&mut self, now: Timestamp) -> Result<Vec<Output>, RtpError> {
        for i in 0..self.tracks.len() {
            let rest = self.tracks[i].reorder.drain();
            for (dts, pts, frame) in rest {
                self.video_decoded(i, dts, pts, frame, now)?;
            }
            let t = &mut self.tracks[i];
            if let Some(h) = &t.held {
                let end = h.dts + i64::from(t.last_duration.max(1));
                complete_held(t, end);
            }
        }
        if self.tracks.iter().any(|t| !t.samples.is_empty()) {
            self.flush(None, now)?;
        }
        Ok(std::mem::take(&mut self.out))
    }

    /// Cuts the open fragment: the timing track's samples (all of them: the frame at `end` is
    /// still held) and every other track's samples that start before `end` (all of them when
    /// `end` is `None`, at the end of the session).
    fn flush(&mut self, end: Option<(usize, i64)>, now: Timestamp) -> Result<(), RtpError> {
        if self.tracks[self.timing].samples.is_empty() {
            return Ok(());
        }
        if !self.started {
            self.start_timeline(now);
        }
        if self.init_pending && !self.write_init()? {
            // No init segment yet (parameter sets missing): these samples cannot be described.
            let t = &mut self.tracks[self.timing];
            self.dropped_frames += t.samples.len() as u64;
            t.samples.clear();
            return Ok(());
        }
        let end_us = end.map(|(track, ext)| self.abs_us(track, ext, now));
        let arrival = self.tracks[self.timing].open_arrival.take().unwrap_or(now);
        let mut runs: Vec<(u32, u64, Vec<MuxSample>)> = Vec::new();
        for i in 0..self.tracks.len() {
            let count = match end_us {
                Some(end_us) if i != self.timing => self.tracks[i]
                    .samples
                    .iter()
                    .take_while(|(dts, _)| self.abs_us(i, *dts, now) < end_us)
                    .count(),
                _ => self.tracks[i].samples.len(),
            };
            if count == 0 {
                continue;
            }
            if self.tracks[i].tfdt_base.is_none() {
                let base = self.tfdt_base_for(i, now);
                self.tracks[i].tfdt_base = Some(base);
            }
            let t = &mut self.tracks[i];
            if t.samples.len() == count {
                t.open_arrival = None;
            }
            let base = t.tfdt_base.unwrap_or(0);
            let run: Vec<(i64, MuxSample)> = t.samples.drain(..count).collect();
            let Ok(first) = u64::try_from(base + i128::from(run[0].0)) else {
                self.dropped_frames += run.len() as u64;
                continue;
            };
            runs.push((t.track_id, first, run.into_iter().map(|(_, s)| s).collect()));
        }
        if runs.is_empty() {
            return Ok(());
        }
        self.sequence = self.sequence.wrapping_add(1);
        let track_runs: Vec<TrackRun<'_>> = runs
            .iter()
            .map(|(id, base, samples)| TrackRun { track_id: *id, base_decode_time: *base, samples })
            .collect();
        let fragment = mux::fragment(self.sequence, &track_runs, self.position)
            .map_err(|e| RtpError::Mux(e.to_string()))?;
        self.position += fragment.bytes.len() as u64;
        self.out.push(Output::Fragment { fragment, arrival });
        Ok(())
    }

    /// Fixes the session's timeline at its first fragment: where it starts in absolute time.
    fn start_timeline(&mut self, now: Timestamp) {
        self.started = true;
        let timing = self.timing;
        let Some(&(first, _)) = self.tracks[timing].samples.first() else { return };
        let start = self.abs_us(timing, first, now);
        self.shift_us = self.not_before_us.map_or(0, |nb| nb.saturating_sub(start).max(0));
    }

    /// How far the session was moved to start after what the stream holds, in microseconds.
    pub fn shift_us(&self) -> i64 {
        self.shift_us
    }

    /// The absolute time (µs since the epoch, before the session shift) of a track's extended
    /// RTP time.
    fn abs_us(&self, track: usize, ext: i64, now: Timestamp) -> i64 {
        let t = &self.tracks[track];
        let (ref_ext, ref_us) = t.mapping().unwrap_or((ext, now.as_micros()));
        ref_us.saturating_add(ticks_to_us(ext - ref_ext, t.clock_rate))
    }

    /// `tfdt = base + extended RTP time`, with `base` from the track's mapping and the shift.
    fn tfdt_base_for(&self, track: usize, now: Timestamp) -> i128 {
        let t = &self.tracks[track];
        let (ref_ext, ref_us) = t.mapping().unwrap_or((0, now.as_micros()));
        let abs = i128::from(ref_us) + i128::from(self.shift_us);
        abs * i128::from(t.clock_rate) / 1_000_000 - i128::from(ref_ext)
    }

    /// Outputs the init segment. `Ok(false)` when a video track has no parameter sets yet.
    fn write_init(&mut self) -> Result<bool, RtpError> {
        let mut mux_tracks = Vec::with_capacity(self.tracks.len());
        for t in &self.tracks {
            let codec = match &t.codec {
                Codec::H264 | Codec::H265 => match &t.params {
                    Some(p) => MuxCodec::Video(p.clone()),
                    None => return Ok(false),
                },
                Codec::Aac { config } => MuxCodec::Aac(
                    param_sets::aac_config(config.clone())
                        .map_err(|e| RtpError::Tracks(e.to_string()))?,
                ),
                Codec::Opus { channels } => MuxCodec::Opus { channels: *channels },
            };
            mux_tracks.push(MuxTrack { track_id: t.track_id, timescale: t.clock_rate, codec });
        }
        let init = mux::init_segment(&mux_tracks).map_err(|e| RtpError::Mux(e.to_string()))?;
        self.position += init.bytes.len() as u64;
        self.out.push(Output::Init(init));
        self.init_pending = false;
        Ok(true)
    }
}

/// Gives the held frame its duration (up to `next_dts`) and moves it into the open fragment.
fn complete_held(t: &mut Track, next_dts: i64) {
    let Some(h) = t.held.take() else { return };
    let step = next_dts - h.dts;
    let max = i64::from(t.clock_rate) * MAX_SAMPLE_DURATION_SECS as i64;
    let duration = if step > 0 && step <= max {
        u32::try_from(step).unwrap_or(t.last_duration)
    } else {
        t.last_duration
    };
    t.last_duration = duration.max(1);
    let composition_offset =
        i32::try_from(h.pts - h.dts).unwrap_or(if h.pts > h.dts { i32::MAX } else { i32::MIN });
    if t.samples.is_empty() {
        t.open_arrival = Some(h.arrival);
    }
    t.samples.push((
        h.dts,
        MuxSample { duration: t.last_duration, composition_offset, sync: h.sync, data: h.data },
    ));
}

/// Records a parameter set NAL unit; true if it differs from the one held.
fn note_param_set(t: &mut Track, nal: &Bytes) -> bool {
    let slot = match t.codec {
        Codec::H264 => match h264_nal::kind(nal) {
            Some(h264_nal::SPS) => &mut t.param_sets.sps,
            Some(h264_nal::PPS) => &mut t.param_sets.pps,
            _ => return false,
        },
        Codec::H265 => match h265_nal::kind(nal) {
            Some(h265_nal::VPS) => &mut t.param_sets.vps,
            Some(h265_nal::SPS) => &mut t.param_sets.sps,
            Some(h265_nal::PPS) => &mut t.param_sets.pps,
            _ => return false,
        },
        _ => return false,
    };
    if slot.as_ref() == Some(nal) {
        return false;
    }
    *slot = Some(nal.clone());
    true
}

/// The track's parameters from the parameter sets held, `None` while some are missing.
fn parse_params(t: &Track) -> Result<Option<VideoParams>, param_sets::ParamSetError> {
    let p = &t.param_sets;
    match (&t.codec, &p.vps, &p.sps, &p.pps) {
        (Codec::H264, _, Some(sps), Some(pps)) => param_sets::h264_params(sps, pps).map(Some),
        (Codec::H265, Some(vps), Some(sps), Some(pps)) => {
            param_sets::h265_params(vps, sps, pps).map(Some)
        }
        _ => Ok(None),
    }
}

/// `d` in ticks of `clock_rate`.
fn duration_ticks(d: Duration, clock_rate: u32) -> i64 {
    i64::try_from(d.as_micros() * u128::from(clock_rate) / 1_000_000).unwrap_or(i64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::media::fmp4::{Fmp4Reader, Item, Limits};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_800_000_000_000 + ms)
    }

    fn video_only() -> Vec<TrackSpec> {
        vec![TrackSpec {
            codec: Codec::H264,
            clock_rate: 90_000,
            params: vec![Bytes::from_static(SPS), Bytes::from_static(PPS)],
        }]
    }

    fn idr() -> Vec<Bytes> {
        vec![Bytes::from_static(&[0x65, 0x88, 0x80, 0x40])]
    }

    fn p_frame() -> Vec<Bytes> {
        vec![Bytes::from_static(&[0x41, 0x9a, 0x02])]
    }

    /// Checks every output the way the store would see it: each init parses, each fragment's
    /// bytes parse after its init to exactly the description given with them, and each track's
    /// decode times never go backwards. Returns the fragments' descriptions.
    fn check_outputs(outputs: &[Output]) -> Vec<Fragment> {
        let mut reader = Fmp4Reader::new(Limits::default());
        let mut seen_init = false;
        let mut last_end: std::collections::HashMap<u32, u64> = Default::default();
        let mut fragments = Vec::new();
        for o in outputs {
            match o {
                Output::Init(init) => {
                    reader = Fmp4Reader::new(Limits::default());
                    reader.push(init.bytes.clone());
                    match reader.next_item().unwrap() {
                        Some(Item::Init(parsed)) => assert_eq!(&parsed, init),
                        other => panic!("not an init segment: {other:?}"),
                    }
                    seen_init = true;
                }
                Output::Fragment { fragment, .. } => {
                    assert!(seen_init, "a fragment before any init segment");
                    reader.push(fragment.bytes.clone());
                    let parsed = loop {
                        match reader.next_item().unwrap() {
                            Some(Item::Fragment(f)) => break f,
                            Some(_) => continue,
                            None => panic!("the fragment is incomplete"),
                        }
                    };
                    assert_eq!(parsed.tracks, fragment.tracks, "described as parsed");
                    for tf in &fragment.tracks {
                        let end = last_end.entry(tf.track_id).or_insert(0);
                        assert!(tf.base_decode_time >= *end, "decode time went backwards");
                        *end = tf.base_decode_time + tf.duration;
                    }
                    fragments.push(fragment.clone());
                }
            }
        }
        fragments
    }

    #[test]
    fn cuts_fragments_at_keyframes_and_parts_at_part_duration() {
        let mut s = RtpSession::new(video_only(), Duration::from_millis(200), None).unwrap();
        let mut out = Vec::new();
        // 30 fps, a keyframe every 30 frames, for 60 frames.
        for i in 0..60u32 {
            let nalus = if i % 30 == 0 { idr() } else { p_frame() };
            out.extend(s.video(0, i * 3000, &nalus, t(i64::from(i) * 33)).unwrap());
        }
        out.extend(s.finish(t(2000)).unwrap());
        assert!(matches!(out[0], Output::Init(_)), "the init segment comes first");
        let frags = check_outputs(&out);
        // 200 ms parts of 6 frames: 5 parts per 1 s GOP, two GOPs.
        assert_eq!(frags.len(), 10, "{:?}", frags.iter().map(|f| f.tracks[0]).collect::<Vec<_>>());
        assert!(frags.iter().all(|f| f.tracks[0].sample_count == 6));
        let keyframes: Vec<bool> = frags.iter().map(|f| f.tracks[0].starts_with_sync).collect();
        assert_eq!(keyframes.iter().filter(|k| **k).count(), 2);
        assert!(keyframes[0] && keyframes[5]);
        // Contiguous: each part starts where the previous ended.
        for w in frags.windows(2) {
            let (a, b) = (w[0].tracks[0], w[1].tracks[0]);
            assert_eq!(a.base_decode_time + a.duration, b.base_decode_time);
        }
        assert_eq!(s.dropped_frames(), 0);
    }

    #[test]
    fn frames_before_the_first_keyframe_are_dropped_and_counted() {
        let mut s = RtpSession::new(video_only(), Duration::from_millis(200), None).unwrap();
        for i in 0..5u32 {
            assert!(s.video(0, i * 3000, &p_frame(), t(0)).unwrap().is_empty());
        }
        assert_eq!(s.dropped_frames(), 5);
        assert!(s.needs_keyframe());
        s.video(0, 15_000, &idr(), t(0)).unwrap();
        assert!(!s.needs_keyframe());
        s.packet_loss(0);
        assert!(s.needs_keyframe(), "loss asks for a keyframe");
        assert!(s.video(0, 18_000, &p_frame(), t(0)).unwrap().is_empty());
        assert_eq!(s.dropped_frames(), 6, "frames after loss wait for the next keyframe");
    }

    #[test]
    fn a_session_starts_after_what_the_stream_holds() {
        // The arrival clock says t(0), but the stream already holds media up to t(10_000).
        let mut s =
            RtpSession::new(video_only(), Duration::from_millis(200), Some(t(10_000))).unwrap();
        let mut out = Vec::new();
        for i in 0..10u32 {
            let nalus = if i == 0 { idr() } else { p_frame() };
            out.extend(s.video(0, 1_000 + i * 3000, &nalus, t(i64::from(i) * 33)).unwrap());
        }
        out.extend(s.finish(t(400)).unwrap());
        let frags = check_outputs(&out);
        let first = frags[0].tracks[0].base_decode_time as i128;
        let start_us = first * 1_000_000 / 90_000;
        assert!((start_us - i128::from(t(10_000).as_micros())).abs() <= 1, "{start_us}");
        assert_eq!(s.shift_us(), 10_000_000);
    }

    #[test]
    fn bad_declarations_and_wrong_tracks_are_errors() {
        assert!(RtpSession::new(Vec::new(), Duration::from_millis(200), None).is_err());
        let two = [video_only(), video_only()].concat();
        assert!(RtpSession::new(two, Duration::from_millis(200), None).is_err());
        let aac = vec![TrackSpec {
            codec: Codec::Aac { config: Bytes::from_static(&[0xff]) },
            clock_rate: 48_000,
            params: Vec::new(),
        }];
        assert!(RtpSession::new(aac, Duration::from_millis(200), None).is_err());
        let mut s = RtpSession::new(video_only(), Duration::from_millis(200), None).unwrap();
        assert!(matches!(
            s.audio(0, 0, Bytes::from_static(b"x"), t(0)),
            Err(RtpError::WrongTrack(_))
        ));
        assert!(matches!(s.video(3, 0, &idr(), t(0)), Err(RtpError::WrongTrack(_))));
    }

    /// Seeded random sessions: any mix of video and audio frames with jumping, wrapping and
    /// repeated timestamps, garbage NAL units, sender reports and loss never panics, and all
    /// that comes out is media the store can take (see `check_outputs`).
    #[test]
    fn random_sessions_never_panic_and_output_valid_media() {
        let mut fragments = 0;
        for seed in 0..200u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let tracks = vec![
                TrackSpec {
                    codec: if rng.random_bool(0.5) { Codec::H264 } else { Codec::H265 },
                    clock_rate: 90_000,
                    params: if rng.random_bool(0.5) {
                        vec![Bytes::from_static(SPS), Bytes::from_static(PPS)]
                    } else {
                        Vec::new()
                    },
                },
                TrackSpec {
                    codec: Codec::Opus { channels: 2 },
                    clock_rate: 48_000,
                    params: Vec::new(),
                },
            ];
            let part = Duration::from_millis(rng.random_range(20..1000));
            let mut s = RtpSession::new(tracks, part, Some(t(rng.random_range(0..5000)))).unwrap();
            let mut out = Vec::new();
            let (mut vts, mut ats) = (rng.random::<u32>(), rng.random::<u32>());
            let mut now = 0i64;
            for _ in 0..rng.random_range(1..300) {
                now += rng.random_range(0..50);
                match rng.random_range(0..10) {
                    0..=4 => {
                        vts = vts.wrapping_add(match rng.random_range(0..10) {
                            0 => rng.random(),
                            1 => 0,
                            2 => 3000u32.wrapping_neg(),
                            _ => 3000,
                        });
                        let nalus: Vec<Bytes> = match rng.random_range(0..6) {
                            0 => vec![
                                Bytes::from_static(SPS),
                                Bytes::from_static(PPS),
                                idr()[0].clone(),
                            ],
                            1 => idr(),
                            2 => {
                                let n = rng.random_range(0..40);
                                vec![Bytes::from(
                                    (0..n).map(|_| rng.random::<u8>()).collect::<Vec<_>>(),
                                )]
                            }
                            3 => Vec::new(),
                            _ => p_frame(),
                        };
                        if let Ok(o) = s.video(0, vts, &nalus, t(now)) {
                            out.extend(o);
                        }
                    }
                    5..=7 => {
                        ats =
                            ats.wrapping_add(if rng.random_bool(0.9) { 960 } else { rng.random() });
                        let frame = Bytes::from(vec![0xfc; rng.random_range(0..20)]);
                        out.extend(s.audio(1, ats, frame, t(now)).unwrap());
                    }
                    8 => s.sender_report(
                        rng.random_range(0..3),
                        rng.random(),
                        t(now + rng.random_range(-100_000..100_000)),
                    ),
                    _ => s.packet_loss(rng.random_range(0..3)),
                }
            }
            out.extend(s.finish(t(now)).unwrap());
            fragments += check_outputs(&out).len();
        }
        // The sessions are not all refused: most of them store media.
        eprintln!("{fragments} fragments");
        assert!(fragments > 1000, "only {fragments} fragments from 200 sessions");
    }

    #[test]
    fn rtp_clock_unwraps_forward_and_back() {
        let mut c = RtpClock::default();
        assert_eq!(c.extend(u32::MAX - 1000), i64::from(u32::MAX - 1000));
        // Wraps forward.
        assert_eq!(c.extend(2000), i64::from(u32::MAX) + 1 + 2000);
        // A B-frame slightly earlier, across the wrap again.
        assert_eq!(c.extend(u32::MAX - 10), i64::from(u32::MAX - 10));
        assert_eq!(c.extend(5000), i64::from(u32::MAX) + 1 + 5000);
        // Many wraps in steps of 2^30.
        let mut c = RtpClock::default();
        let mut ts = 0u32;
        let mut expect = 0i64;
        c.extend(0);
        for _ in 0..20 {
            ts = ts.wrapping_add(1 << 30);
            expect += 1 << 30;
            assert_eq!(c.extend(ts), expect);
        }
    }

    #[test]
    fn reorder_window_gives_sorted_decode_times() {
        // Decode order I0 P3 B1 B2 P6 B4 B5 (presentation times in frames).
        let mut w = ReorderWindow::new(2);
        let mut out = Vec::new();
        for pts in [0, 3, 1, 2, 6, 4, 5] {
            out.extend(w.push(pts, ()));
        }
        out.extend(w.drain());
        let dts: Vec<i64> = out.iter().map(|o| o.0).collect();
        let pts: Vec<i64> = out.iter().map(|o| o.1).collect();
        assert_eq!(dts, vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(pts, vec![0, 3, 1, 2, 6, 4, 5]);
        // Decode times always increase, even when the window is too shallow or two pictures
        // share a timestamp.
        let mut w = ReorderWindow::new(0);
        let mut last = i64::MIN;
        for pts in [0, 3, 1, 2, 6, 6, 4, 5] {
            for (dts, _, ()) in w.push(pts, ()) {
                assert!(dts > last, "{dts} after {last}");
                last = dts;
            }
        }
    }

    #[test]
    fn ticks_and_durations() {
        assert_eq!(ticks_to_us(90_000, 90_000), 1_000_000);
        assert_eq!(ticks_to_us(-45_000, 90_000), -500_000);
        assert_eq!(duration_ticks(Duration::from_millis(200), 90_000), 18_000);
        assert_eq!(duration_ticks(Duration::from_millis(200), 48_000), 9_600);
    }
}
