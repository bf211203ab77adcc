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

use std::time::Duration;

use bytes::Bytes;

use super::fmp4::{Fragment, InitSegment};
use super::mux::{self, MuxCodec, MuxSample, MuxTrack, TrackRun};
use super::param_sets::{self, VideoParams, h264_nal, h265_nal};
use crate::clock::Timestamp;

mod timing;

pub use timing::{ReorderWindow, RtpClock};

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
mod tests;
