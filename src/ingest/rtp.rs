//! One path from any RTP source (RTSP publish, RTSP pull, WHIP) to the store.
//!
//! The protocol modules depacketize RTP into access units (video: NAL units of one picture;
//! audio: one AAC access unit or one Opus packet) and hand them to an [`RtpIngest`], which:
//!
//! - unwraps each track's 32-bit RTP clock to 64 bits ([`RtpClock`]);
//! - derives decode times for video from presentation times with a small reorder window
//!   ([`ReorderWindow`], depth from the SPS), since RTP carries presentation times only;
//! - maps RTP time to absolute time: by the track's RTCP sender report (NTP ↔ RTP) when one
//!   arrived before the session's first fragment and agrees with the server clock within
//!   [`SR_MAX_SKEW`], else by the server clock at the track's first packet;
//! - muxes fMP4 with [`crate::media::mux`]: an init segment from the parameter sets (out of band
//!   from the SDP, or in band; a change starts a new init segment), and a fragment at every
//!   keyframe and every `part_duration`, so LL-HLS gets parts without configuration;
//! - appends through the stream's single writer ([`ProducerSession`], absolute timestamps) and
//!   pipelines durability waits on a task of its own, exactly as `super::http_fmp4` does.
//!
//! See `docs/design/rtp-ingest.md`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, Timestamp};
use crate::media::fmp4::{Fmp4Reader, Item, Limits};
use crate::media::mux::{self, MuxCodec, MuxSample, MuxTrack, TrackRun};
use crate::media::param_sets::{self, VideoParams, h264_nal, h265_nal};
use crate::video::VideoStream;
pub use crate::video::writer::IngestError;
use crate::video::writer::{
    Appended, IngestErrorCode, ProducerInfo, ProducerSession, TimestampMode,
};

/// The most an RTCP sender report's wall clock may differ from the server clock for Sluice to
/// trust it; beyond it (a camera with an unset clock) the server clock is used.
pub const SR_MAX_SKEW: Duration = Duration::from_secs(30);

/// Longest sample duration taken from RTP timestamps; a larger step (a pause, a jump of the
/// source's clock) is stored as a gap after a sample of the previous duration.
const MAX_SAMPLE_DURATION_SECS: u64 = 5;

/// Audio frames kept while waiting for video (10 s of 20 ms frames); older ones are dropped.
const MAX_PENDING_AUDIO: usize = 500;

/// Fragments appended but not yet durable, per session, before `video`/`audio` wait.
const PERSIST_QUEUE: usize = 256;

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
    fn is_video(&self) -> bool {
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

/// An RTP session's ingest into one stream. See the module docs.
pub struct RtpIngest {
    stream: Arc<VideoStream>,
    clock: SharedClock,
    session: Option<ProducerSession>,
    tracks: Vec<Track>,
    /// The track whose keyframes and times close fragments: the video track, else the first.
    timing: usize,
    part_duration: Duration,
    /// Parses our own fragments back into the values the session takes.
    reader: Fmp4Reader,
    sequence: u32,
    init_pending: bool,
    /// Set at the first fragment: the session's tracks are anchored from then on.
    started: bool,
    /// Added to every track's absolute time so the session starts after the stream's last
    /// fragment (the store's timeline never runs backwards).
    shift_us: i64,
    got_keyframe: bool,
    keyframe_wanted: bool,
    dropped_frames: u64,
    persist_tx: Option<mpsc::Sender<Appended>>,
    persister: Option<JoinHandle<()>>,
    name: String,
}

impl RtpIngest {
    /// Claims the stream's single-writer lease (a `Conflict` error naming the current producer
    /// if it is taken: RTSP answers 453, HTTP 409), emits ProducerConnected.
    pub fn start(
        stream: Arc<VideoStream>,
        clock: SharedClock,
        protocol: &'static str,
        remote_addr: Option<String>,
        tracks: Vec<TrackSpec>,
        part_duration: Duration,
    ) -> Result<RtpIngest, crate::error::Error> {
        if tracks.is_empty() {
            return Err(crate::error::Error::invalid("an RTP session needs at least one track"));
        }
        if tracks.iter().filter(|t| t.codec.is_video()).count() > 1 {
            return Err(crate::error::Error::invalid(
                "at most one video track per stream is supported",
            ));
        }
        let mut built = Vec::with_capacity(tracks.len());
        for (i, spec) in tracks.into_iter().enumerate() {
            if spec.clock_rate == 0 {
                return Err(crate::error::Error::invalid(format!("track {i} has clock rate 0")));
            }
            if let Codec::Aac { config } = &spec.codec {
                param_sets::aac_config(config.clone()).map_err(|e| {
                    crate::error::Error::invalid(format!("track {i}: AAC config: {e}"))
                })?;
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
        let connected_at = clock.now();
        let session = stream.claim_producer(
            ProducerInfo { protocol, remote_addr, connected_at },
            TimestampMode::Absolute,
        )?;
        let (persist_tx, persist_rx) = mpsc::channel(PERSIST_QUEUE);
        // Ends when the ingest drops its sender (finish, or drop) and the queue is drained.
        let persister = tokio::spawn(persist_loop(stream.clone(), persist_rx));
        let name = stream.name.to_string();
        Ok(RtpIngest {
            stream,
            clock,
            session: Some(session),
            tracks: built,
            timing,
            part_duration,
            reader: Fmp4Reader::new(Limits {
                max_fragment_bytes: u64::MAX,
                max_init_bytes: u64::MAX,
            }),
            sequence: 0,
            init_pending: true,
            started: false,
            shift_us: 0,
            got_keyframe: false,
            keyframe_wanted: true,
            dropped_frames: 0,
            persist_tx: Some(persist_tx),
            persister: Some(persister),
            name,
        })
    }

    /// Cancelled when the stream is deleted or the server shuts down: the caller stops reading
    /// and calls [`RtpIngest::finish`].
    pub fn cancelled(&self) -> CancellationToken {
        self.session.as_ref().map(|s| s.cancelled().clone()).unwrap_or_default()
    }

    /// Whether the store wants a keyframe soon (none seen yet, or loss reported since the last
    /// one): WHIP sends a PLI on it.
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

    /// One video access unit: its NAL units (no start codes, no length prefixes) and its 32-bit
    /// RTP timestamp. In-band parameter sets are picked up; a changed set starts a new init
    /// segment; keyframes are detected from the NAL types. Frames before the first keyframe are
    /// dropped (counted). An error means the session cannot go on (storage failed); a rejected
    /// fragment is reported as an ingest error event and the session goes on.
    pub async fn video(
        &mut self,
        track: usize,
        rtp_ts: u32,
        nalus: &[Bytes],
    ) -> Result<(), IngestError> {
        let now = self.clock.now();
        let Some(t) = self.tracks.get_mut(track) else {
            return Err(IngestError::new(
                IngestErrorCode::TrackNumberMismatch,
                format!("video for unknown track {track}"),
            ));
        };
        if !t.codec.is_video() {
            return Err(IngestError::new(
                IngestErrorCode::TrackNumberMismatch,
                format!("video for audio track {track}"),
            ));
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
            return Ok(());
        }
        let mut new_params = None;
        if sync && (saw_params || t.params.is_none()) {
            match parse_params(t) {
                Ok(Some(p)) if t.params.as_ref() != Some(&p) => new_params = Some(p),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(stream = %self.name, error = %e, "unusable parameter sets");
                }
            }
        }
        if sync && t.params.is_none() && new_params.is_none() {
            sync = false; // a keyframe we cannot describe: wait for one with parameter sets
        }
        if (!self.got_keyframe || self.keyframe_wanted) && !sync {
            // Before the first keyframe, and after packet loss until the next one: these frames
            // would decode against pictures the store does not have.
            self.dropped_frames += 1;
            return Ok(());
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
            self.video_decoded(track, dts, pts, frame).await?;
        }
        Ok(())
    }

    /// A video frame with its decode time: completes the held frame, closes the fragment at a
    /// keyframe or after `part_duration`, starts a new init segment on new parameters.
    async fn video_decoded(
        &mut self,
        track: usize,
        dts: i64,
        pts: i64,
        frame: VideoFrame,
    ) -> Result<(), IngestError> {
        let part_ticks = duration_ticks(self.part_duration, self.tracks[track].clock_rate);
        let t = &mut self.tracks[track];
        complete_held(t, dts);
        let open_since = t.samples.first().map(|(d, _)| *d);
        let close = frame.sync || open_since.is_some_and(|start| dts - start >= part_ticks);
        if close && open_since.is_some() {
            self.flush(Some((track, dts))).await?;
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

    /// One audio frame (a raw AAC access unit, or one Opus packet) and its RTP timestamp.
    pub async fn audio(
        &mut self,
        track: usize,
        rtp_ts: u32,
        frame: Bytes,
    ) -> Result<(), IngestError> {
        let now = self.clock.now();
        let timing = self.timing;
        let part_ticks =
            self.tracks.get(track).map_or(0, |t| duration_ticks(self.part_duration, t.clock_rate));
        let Some(t) = self.tracks.get_mut(track) else {
            return Err(IngestError::new(
                IngestErrorCode::TrackNumberMismatch,
                format!("audio for unknown track {track}"),
            ));
        };
        if t.codec.is_video() {
            return Err(IngestError::new(
                IngestErrorCode::TrackNumberMismatch,
                format!("audio for video track {track}"),
            ));
        }
        if frame.is_empty() {
            return Ok(());
        }
        let ts = t.rtp.extend(rtp_ts);
        t.arrival_mapping.get_or_insert((ts, now.as_micros()));
        if t.held.as_ref().is_some_and(|h| ts <= h.dts) {
            self.dropped_frames += 1; // a duplicate or reordered audio packet
            return Ok(());
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
                self.flush(Some((track, ts))).await?;
            }
        }
        Ok(())
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

    /// Flushes the open fragment, waits for durability, emits ProducerDisconnected with `reason`.
    pub async fn finish(mut self, reason: &str) {
        for i in 0..self.tracks.len() {
            let t = &mut self.tracks[i];
            let rest = t.reorder.drain();
            for (dts, pts, frame) in rest {
                if self.video_decoded(i, dts, pts, frame).await.is_err() {
                    break;
                }
            }
            let t = &mut self.tracks[i];
            if let Some(h) = &t.held {
                let end = h.dts + i64::from(t.last_duration.max(1));
                complete_held(t, end);
            }
        }
        if self.tracks.iter().any(|t| !t.samples.is_empty()) {
            let _ = self.flush(None).await;
        }
        drop(self.persist_tx.take());
        if let Some(p) = self.persister.take() {
            let _ = p.await;
        }
        self.stream.update_stored_gauges();
        if let Some(mut s) = self.session.take() {
            tracing::info!(stream = %self.name, %reason, dropped = self.dropped_frames, "RTP producer disconnected");
            s.set_end_reason(reason);
        }
    }

    /// Writes the open fragment: the timing track's samples (all of them: the frame at `end` is
    /// still held) and every other track's samples that start before `end` (all of them when
    /// `end` is `None`, at the end of the session).
    async fn flush(&mut self, end: Option<(usize, i64)>) -> Result<(), IngestError> {
        if self.tracks[self.timing].samples.is_empty() {
            return Ok(());
        }
        if !self.started {
            self.start_timeline();
        }
        if self.init_pending && !self.write_init()? {
            // No init segment yet (parameter sets missing): these samples cannot be described.
            let t = &mut self.tracks[self.timing];
            self.dropped_frames += t.samples.len() as u64;
            t.samples.clear();
            return Ok(());
        }
        let end_us = end.map(|(track, ext)| self.abs_us(track, ext));
        let arrival =
            self.tracks[self.timing].open_arrival.take().unwrap_or_else(|| self.clock.now());
        let mut runs: Vec<(u32, u64, Vec<MuxSample>)> = Vec::new();
        for i in 0..self.tracks.len() {
            let count = match end_us {
                Some(end_us) if i != self.timing => self.tracks[i]
                    .samples
                    .iter()
                    .take_while(|(dts, _)| self.abs_us(i, *dts) < end_us)
                    .count(),
                _ => self.tracks[i].samples.len(),
            };
            if count == 0 {
                continue;
            }
            if self.tracks[i].tfdt_base.is_none() {
                let base = self.tfdt_base_for(i);
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
        let bytes = mux::fragment(self.sequence, &track_runs)
            .map_err(|e| IngestError::new(IngestErrorCode::InternalError, e.to_string()))?;
        self.append(bytes, arrival).await
    }

    /// Fixes the session's timeline at its first fragment: where it starts in absolute time.
    fn start_timeline(&mut self) {
        self.started = true;
        let timing = self.timing;
        let Some(&(first, _)) = self.tracks[timing].samples.first() else { return };
        let start = self.abs_us(timing, first);
        let after_last =
            self.stream.last_fragment().map_or(i64::MIN, |l| l.producer_end().as_micros());
        self.shift_us = after_last.saturating_sub(start).max(0);
        if self.shift_us > 0 {
            tracing::debug!(stream = %self.name, shift_us = self.shift_us, "session placed after the stream's last fragment");
        }
    }

    /// The absolute time (µs since the epoch, before the session shift) of a track's extended
    /// RTP time.
    fn abs_us(&self, track: usize, ext: i64) -> i64 {
        let t = &self.tracks[track];
        let (ref_ext, ref_us) = t.mapping().unwrap_or((ext, self.clock.now().as_micros()));
        ref_us.saturating_add(ticks_to_us(ext - ref_ext, t.clock_rate))
    }

    /// `tfdt = base + extended RTP time`, with `base` from the track's mapping and the shift.
    fn tfdt_base_for(&self, track: usize) -> i128 {
        let t = &self.tracks[track];
        let (ref_ext, ref_us) = t.mapping().unwrap_or((0, self.clock.now().as_micros()));
        let abs = i128::from(ref_us) + i128::from(self.shift_us);
        abs * i128::from(t.clock_rate) / 1_000_000 - i128::from(ref_ext)
    }

    /// Builds and records the init segment. `Ok(false)` when a video track has no parameter
    /// sets yet.
    fn write_init(&mut self) -> Result<bool, IngestError> {
        let mut mux_tracks = Vec::with_capacity(self.tracks.len());
        for t in &self.tracks {
            let codec = match &t.codec {
                Codec::H264 | Codec::H265 => match &t.params {
                    Some(p) => MuxCodec::Video(p.clone()),
                    None => return Ok(false),
                },
                Codec::Aac { config } => {
                    MuxCodec::Aac(param_sets::aac_config(config.clone()).map_err(|e| {
                        IngestError::new(IngestErrorCode::InvalidMedia, e.to_string())
                    })?)
                }
                Codec::Opus { channels } => MuxCodec::Opus { channels: *channels },
            };
            mux_tracks.push(MuxTrack { track_id: t.track_id, timescale: t.clock_rate, codec });
        }
        let bytes = mux::init_segment(&mux_tracks)
            .map_err(|e| IngestError::new(IngestErrorCode::InternalError, e.to_string()))?;
        self.reader.push(bytes);
        let init = match self.reader.next_item() {
            Ok(Some(Item::Init(init))) => init,
            other => {
                return Err(IngestError::new(
                    IngestErrorCode::InternalError,
                    format!("the muxed init segment did not parse back: {other:?}"),
                ));
            }
        };
        let Some(session) = self.session.as_mut() else { return Ok(false) };
        session.set_init(&init)?;
        self.init_pending = false;
        Ok(true)
    }

    /// Hands a muxed fragment to the writer and queues its durability wait.
    async fn append(&mut self, bytes: Bytes, arrival: Timestamp) -> Result<(), IngestError> {
        self.reader.push(bytes);
        let fragment = loop {
            match self.reader.next_item() {
                Ok(Some(Item::Fragment(f))) => break f,
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(IngestError::new(
                        IngestErrorCode::InternalError,
                        "the muxed fragment did not parse back (incomplete)",
                    ));
                }
                Err(e) => {
                    return Err(IngestError::new(
                        IngestErrorCode::InternalError,
                        format!("the muxed fragment did not parse back: {e}"),
                    ));
                }
            }
        };
        let Some(session) = self.session.as_mut() else { return Ok(()) };
        match session.append(&fragment, arrival, u64::MAX) {
            Ok(appended) => {
                if let Some(tx) = &self.persist_tx {
                    let _ = tx.send(appended).await;
                }
                Ok(())
            }
            Err(e) => {
                self.stream.ingest_error(&e);
                tracing::warn!(stream = %self.name, code = e.code.code(), error = %e, "muxed fragment rejected");
                if e.code == IngestErrorCode::ArchivalError { Err(e) } else { Ok(()) }
            }
        }
    }
}

impl Drop for RtpIngest {
    fn drop(&mut self) {
        if let Some(s) = self.session.as_mut() {
            s.set_end_reason("the RTP session ended without finishing");
        }
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

/// Waits for each appended fragment to be durable, in order, then reports it (metrics and the
/// FragmentPersisted event); a failure is reported as an ingest error.
async fn persist_loop(stream: Arc<VideoStream>, mut rx: mpsc::Receiver<Appended>) {
    while let Some(a) = rx.recv().await {
        match stream.wait_durable(a.number).await {
            Ok(()) => stream.fragment_persisted(&a.info),
            Err(e) => {
                let err = IngestError::new(
                    IngestErrorCode::ArchivalError,
                    format!("fragment {} could not be made durable: {e}", a.number.0),
                );
                stream.ingest_error(&err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
