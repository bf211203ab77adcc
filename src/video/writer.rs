//! The single writer of a video stream. A producer (any ingest protocol) first claims the stream
//! with [`VideoStream::claim_producer`](super::VideoStream::claim_producer); the returned
//! `ProducerSession` is the only thing that can append fragments, so "one owner per stream" is a
//! type-level fact. It validates each fragment (duration, decode-time order, tracks), stamps both
//! clocks, decides HLS segment and discontinuity boundaries, and appends to the stream's log.
//! Dropping the session frees the stream for the next producer.
//!
//! The session also owns durability, the same way for every ingest: each appended fragment's
//! `fdatasync` is awaited in order by a task of the session, which reports it (metrics, the
//! FragmentPersisted event, or an ingest error) and tells the producer's protocol if it asked
//! ([`ProducerSession::notify_durability`], PERSISTED acks). At most [`DURABILITY_QUEUE`]
//! fragments may wait for durability; `append` waits beyond that, so a producer runs ahead of
//! the disk by a bounded amount. [`ProducerSession::finish`] waits for every outcome.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::VideoStream;
use super::fragment::{
    FLAG_DISCONTINUITY, FLAG_KEYFRAME, FLAG_SEGMENT_START, FragmentInfo, FragmentMeta,
    FragmentNumber,
};
use crate::clock::Timestamp;
use crate::log::{LogError, NewRecord};
use crate::media::fmp4::{Fragment, InitSegment, TrackInfo};

/// Kinesis Video Streams PutMedia error codes (kinesis-reference.md), as Sluice uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IngestErrorCode {
    StreamReadError = 4000,
    MaxFragmentSizeReached = 4001,
    MaxFragmentDurationReached = 4002,
    FragmentTimecodeLesserThanPrevious = 4004,
    InvalidMedia = 4006,
    InvalidProducerTimestamp = 4007,
    StreamNotActive = 4008,
    TrackNumberMismatch = 4010,
    InternalError = 5000,
    ArchivalError = 5001,
}

impl IngestErrorCode {
    pub fn code(self) -> u32 {
        self as u32
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::StreamReadError => "STREAM_READ_ERROR",
            Self::MaxFragmentSizeReached => "MAX_FRAGMENT_SIZE_REACHED",
            Self::MaxFragmentDurationReached => "MAX_FRAGMENT_DURATION_REACHED",
            Self::FragmentTimecodeLesserThanPrevious => "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS",
            Self::InvalidMedia => "INVALID_MKV_DATA",
            Self::InvalidProducerTimestamp => "INVALID_PRODUCER_TIMESTAMP",
            Self::StreamNotActive => "STREAM_NOT_ACTIVE",
            Self::TrackNumberMismatch => "TRACK_NUMBER_MISMATCH",
            Self::InternalError => "INTERNAL_ERROR",
            Self::ArchivalError => "ARCHIVAL_ERROR",
        }
    }
}

/// A rejected fragment or a failed session, with a message that points at the bad input.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct IngestError {
    pub code: IngestErrorCode,
    pub message: String,
}

impl IngestError {
    pub fn new(code: IngestErrorCode, message: impl Into<String>) -> Self {
        IngestError { code, message: message.into() }
    }
}

/// How producer timestamps are derived from the fragments' decode times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampMode {
    /// Decode time is media time from `start` (tfdt 0 = `start`). With `start: None` the session's
    /// first fragment is placed at the connection's arrival time, or right after the stream's last
    /// fragment if that is later, so a stream's timeline never runs backwards.
    Relative { start: Option<Timestamp> },
    /// Decode time is wall-clock time since the Unix epoch.
    Absolute,
}

/// Who is producing, for describe and metrics.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerInfo {
    pub protocol: &'static str,
    pub remote_addr: Option<String>,
    pub connected_at: Timestamp,
}

/// The writer's memory of the stream's tail, recovered from the log's last entry at open.
#[derive(Debug, Default)]
pub(super) struct WriterState {
    pub last: Option<FragmentInfo>,
    /// Init segments are deduplicated: a reconnect with the same ftyp+moov reuses the id.
    pub last_init: Option<(u32, Bytes)>,
}

/// The exclusive right to append to one stream. See the module docs.
pub struct ProducerSession {
    stream: Arc<VideoStream>,
    mode: TimestampMode,
    connected_at: Timestamp,
    init: Option<SessionInit>,
    /// The next fragment starts a discontinuity (session start, new init).
    pending_discontinuity: bool,
    /// Relative mode: the anchor fragment's decode time (timescale units) and the session's base
    /// (the producer timestamp of decode time 0).
    anchor: Option<(u64, Timestamp)>,
    last_decode_time: Option<u64>,
    cancel: CancellationToken,
    /// Fragments appended in this session.
    fragments: u64,
    /// Why the session ended, reported in ProducerDisconnected.
    end_reason: String,
    /// Appended fragments waiting for durability, and the task that waits; started at the first
    /// append.
    durability: Option<(mpsc::Sender<Appended>, JoinHandle<()>)>,
    /// Where durability outcomes go, if the protocol reports them.
    notify: Option<mpsc::UnboundedSender<Durability>>,
}

/// Fragments of one session that may wait for durability at once (see the module docs).
pub const DURABILITY_QUEUE: usize = 256;

/// A fragment's durability, reported in append order.
#[derive(Debug)]
pub enum Durability {
    /// On stable storage.
    Persisted(Appended),
    /// It could not be made durable (the error is also reported on the stream).
    Failed(Appended, IngestError),
}

#[derive(Debug)]
struct SessionInit {
    id: u32,
    timing: TrackInfo,
    track_ids: Vec<u32>,
}

/// A validated fragment, ready to be written.
struct Prepared {
    record: NewRecord,
    /// Its description, but for the number the log gives it.
    info: FragmentInfo,
    /// The stream's first fragment (it fixes the timeline's epoch).
    first: bool,
    decode: u64,
    timecode_ms: i64,
}

/// Runs storage work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::error::Error> + Send + 'static,
) -> Result<T, crate::error::Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| crate::error::Error::internal(format!("storage task: {e}")))?
}

/// What an accepted fragment became.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    pub number: FragmentNumber,
    pub info: FragmentInfo,
    /// The producer's own timecode for the fragment (its decode time), in milliseconds.
    pub timecode_ms: i64,
}

impl ProducerSession {
    pub(super) fn new(
        stream: Arc<VideoStream>,
        mode: TimestampMode,
        connected_at: Timestamp,
        cancel: CancellationToken,
    ) -> Self {
        ProducerSession {
            stream,
            mode,
            connected_at,
            init: None,
            pending_discontinuity: true,
            anchor: None,
            last_decode_time: None,
            cancel,
            fragments: 0,
            end_reason: String::from("connection dropped"),
            durability: None,
            notify: None,
        }
    }

    /// Sends every appended fragment's durability outcome to `tx`, in append order. Call before
    /// the first append.
    pub fn notify_durability(&mut self, tx: mpsc::UnboundedSender<Durability>) {
        self.notify = Some(tx);
    }

    /// Waits until every appended fragment's durability is settled and reported, then ends the
    /// session (the stream is free for the next producer).
    pub async fn finish(mut self) {
        if let Some((tx, task)) = self.durability.take() {
            drop(tx);
            let _ = task.await;
        }
    }

    /// Queues `a`'s durability wait, waiting for room when [`DURABILITY_QUEUE`] fragments wait.
    async fn track_durability(&mut self, a: Appended) {
        let (tx, _) = self.durability.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel(DURABILITY_QUEUE);
            // Ends when the session's sender goes (finish, or drop) and the queue is drained.
            let task = tokio::spawn(wait_durable(self.stream.clone(), rx, self.notify.take()));
            (tx, task)
        });
        let _ = tx.send(a).await;
    }

    /// Records why the session is ending (reported when it is dropped).
    pub fn set_end_reason(&mut self, reason: impl Into<String>) {
        self.end_reason = reason.into();
    }

    pub fn stream(&self) -> &Arc<VideoStream> {
        &self.stream
    }

    /// Cancelled when the stream is deleted or the server shuts down.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Records a new init segment (the session's first, or a codec change mid-stream). Stored
    /// and synced on the blocking pool.
    pub async fn set_init(&mut self, init: &InitSegment) -> Result<u32, IngestError> {
        let timing =
            init.video().or_else(|| init.tracks.first()).cloned().ok_or_else(|| {
                IngestError::new(IngestErrorCode::InvalidMedia, "moov has no tracks")
            })?;
        if timing.timescale == 0 {
            return Err(IngestError::new(
                IngestErrorCode::InvalidMedia,
                format!("track {} has timescale 0", timing.track_id),
            ));
        }
        let (stream, bytes, at) = (self.stream.clone(), init.bytes.clone(), self.connected_at);
        let id = blocking(move || stream.store_init(&bytes, at)).await.map_err(|e| {
            IngestError::new(IngestErrorCode::ArchivalError, format!("storing init segment: {e}"))
        })?;
        let changed = self.init.as_ref().is_some_and(|i| i.id != id);
        if changed {
            // A new codec configuration: decode times may restart with it. Without an explicit
            // producerStart, the new configuration's first fragment is re-anchored right after
            // the stream's last fragment, as a new session would be.
            self.pending_discontinuity = true;
            self.last_decode_time = None;
            if self.mode == (TimestampMode::Relative { start: None }) {
                self.anchor = None;
            }
        }
        self.init = Some(SessionInit {
            id,
            track_ids: init.tracks.iter().map(|t| t.track_id).collect(),
            timing,
        });
        Ok(id)
    }

    /// Validates and appends one fragment. `arrival` is when its first byte arrived. The fragment
    /// is written (readers see it) but not yet durable: its outcome comes later, in order (see
    /// the module docs). An error rejects only this fragment; the session may go on.
    pub async fn append(
        &mut self,
        fragment: &Fragment,
        arrival: Timestamp,
        max_duration_us: u64,
    ) -> Result<Appended, IngestError> {
        let p = self.prepare(fragment, arrival, max_duration_us)?;
        // The write (and, at the first fragment, the timeline's catalog row) on the blocking
        // pool: a slow disk holds this session, not an async worker.
        let (stream, record, first) = (self.stream.clone(), p.record, p.first);
        let number = tokio::task::spawn_blocking(move || {
            if first {
                stream.start_timeline(record.time);
            }
            stream.fragments.append(record)
        })
        .await
        .map_err(|e| {
            IngestError::new(IngestErrorCode::ArchivalError, format!("storage task: {e}"))
        })?
        .map_err(|e| match e {
            LogError::TimeWentBackwards { .. } => IngestError::new(
                IngestErrorCode::FragmentTimecodeLesserThanPrevious,
                format!("fragment at byte {}: {e}", fragment.offset),
            ),
            e => IngestError::new(
                IngestErrorCode::ArchivalError,
                format!("storing fragment at byte {}: {e}", fragment.offset),
            ),
        })?;
        let number = FragmentNumber::from(number);
        let info = FragmentInfo { number, ..p.info };
        self.stream.writer.lock().unwrap_or_else(|p| p.into_inner()).last = Some(info);
        self.pending_discontinuity = false;
        self.last_decode_time = Some(p.decode);
        self.fragments += 1;
        let a = Appended { number, info, timecode_ms: p.timecode_ms };
        self.track_durability(a).await;
        Ok(a)
    }

    /// Validates a fragment against the session and the stream, and lays out its record.
    fn prepare(
        &mut self,
        fragment: &Fragment,
        arrival: Timestamp,
        max_duration_us: u64,
    ) -> Result<Prepared, IngestError> {
        let init = self.init.as_ref().ok_or_else(|| {
            IngestError::new(IngestErrorCode::InvalidMedia, "fragment before any init segment")
        })?;
        for t in &fragment.tracks {
            if !init.track_ids.contains(&t.track_id) {
                return Err(IngestError::new(
                    IngestErrorCode::TrackNumberMismatch,
                    format!(
                        "fragment at byte {} has track {} which the init segment does not declare (tracks {:?})",
                        fragment.offset, t.track_id, init.track_ids
                    ),
                ));
            }
        }
        let (init_id, timing_track) = (init.id, init.timing.track_id);
        let timescale = u64::from(init.timing.timescale);
        let timing = fragment.track(timing_track).ok_or_else(|| {
            IngestError::new(
                IngestErrorCode::TrackNumberMismatch,
                format!(
                    "fragment at byte {} has no samples for track {timing_track}",
                    fragment.offset
                ),
            )
        })?;
        let duration_us = scale_to_micros(timing.duration, timescale);
        if duration_us > max_duration_us {
            return Err(IngestError::new(
                IngestErrorCode::MaxFragmentDurationReached,
                format!(
                    "fragment at byte {} lasts {} ms, over the limit of {} ms",
                    fragment.offset,
                    duration_us / 1000,
                    max_duration_us / 1000
                ),
            ));
        }
        let decode = timing.base_decode_time;
        // A fragment that starts where the previous one started repeats it (a producer that
        // resent its media, or a cluster whose timecodes went back): refused like one before it.
        if let Some(last) = self.last_decode_time
            && decode <= last
        {
            return Err(IngestError::new(
                IngestErrorCode::FragmentTimecodeLesserThanPrevious,
                format!(
                    "fragment at byte {} has decode time {decode} (timescale {timescale}), not after the previous fragment's {last}",
                    fragment.offset
                ),
            ));
        }
        let producer_ts = self.producer_timestamp(decode, timescale)?;

        let state = self.stream.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = &state.last
            && producer_ts < last.producer_ts
        {
            return Err(IngestError::new(
                IngestErrorCode::FragmentTimecodeLesserThanPrevious,
                format!(
                    "fragment at byte {} has producer timestamp {producer_ts}, before the stream's last fragment at {}",
                    fragment.offset, last.producer_ts
                ),
            ));
        }
        let keyframe = timing.starts_with_sync;
        let discontinuity = self.pending_discontinuity;
        let segment_start = keyframe || discontinuity || state.last.is_none();
        let (segment, disc_seq) = match &state.last {
            None => (0, 0),
            Some(l) => (
                l.meta.segment + u32::from(segment_start),
                l.meta.discontinuity + u32::from(discontinuity),
            ),
        };
        let mut flags = 0;
        if keyframe {
            flags |= FLAG_KEYFRAME;
        }
        if segment_start {
            flags |= FLAG_SEGMENT_START;
        }
        if discontinuity {
            flags |= FLAG_DISCONTINUITY;
        }
        let meta = FragmentMeta {
            flags,
            duration_us: u32::try_from(duration_us).unwrap_or(u32::MAX),
            init_id,
            segment,
            discontinuity: disc_seq,
        };
        let record = NewRecord {
            time: producer_ts,
            arrival,
            meta: meta.encode(),
            payload: fragment.bytes.clone(),
        };
        let info = FragmentInfo {
            number: FragmentNumber(0),
            size: u32::try_from(fragment.bytes.len()).unwrap_or(u32::MAX),
            producer_ts,
            server_ts: arrival.max(state.last.map_or(Timestamp::MIN, |l| l.server_ts)),
            meta,
        };
        let timecode_ms =
            i64::try_from(scale_to_micros(decode, timescale) / 1000).unwrap_or(i64::MAX);
        Ok(Prepared { record, info, first: state.last.is_none(), decode, timecode_ms })
    }

    fn producer_timestamp(
        &mut self,
        decode: u64,
        timescale: u64,
    ) -> Result<Timestamp, IngestError> {
        let decode_us = i64::try_from(scale_to_micros(decode, timescale)).map_err(|_| {
            IngestError::new(
                IngestErrorCode::InvalidProducerTimestamp,
                format!("decode time {decode} (timescale {timescale}) is out of range"),
            )
        })?;
        match self.mode {
            TimestampMode::Absolute => Ok(Timestamp::from_micros(decode_us)),
            TimestampMode::Relative { start: Some(start) } => Ok(start.add_micros(decode_us)),
            TimestampMode::Relative { start: None } => {
                // The session's base: the anchor fragment lands exactly on the anchor timestamp,
                // and every fragment is base + its decode time, so the shift onto the served
                // timeline (`media::timeline::session_shift_us`) is the same for the whole session.
                let base = match self.anchor {
                    Some((_, base)) => base,
                    None => {
                        let after_last = self
                            .stream
                            .last_fragment()
                            .map_or(Timestamp::MIN, |l| l.producer_end());
                        let base = self.connected_at.max(after_last).add_micros(-decode_us);
                        self.anchor = Some((decode, base));
                        base
                    }
                };
                Ok(base.add_micros(decode_us))
            }
        }
    }
}

impl Drop for ProducerSession {
    fn drop(&mut self) {
        self.stream.release_producer(std::mem::take(&mut self.end_reason), self.fragments);
    }
}

/// Waits for each appended fragment to be durable, in order, reports it on the stream (metrics
/// and FragmentPersisted, or an ingest error) and to `notify`.
async fn wait_durable(
    stream: Arc<VideoStream>,
    mut rx: mpsc::Receiver<Appended>,
    notify: Option<mpsc::UnboundedSender<Durability>>,
) {
    while let Some(a) = rx.recv().await {
        let outcome = match stream.wait_durable(a.number).await {
            Ok(()) => {
                stream.fragment_persisted(&a.info);
                Durability::Persisted(a)
            }
            Err(e) => {
                let err = IngestError::new(
                    IngestErrorCode::ArchivalError,
                    format!("fragment {} could not be made durable: {e}", a.number.0),
                );
                stream.ingest_error(&err);
                Durability::Failed(a, err)
            }
        };
        if let Some(n) = &notify {
            let _ = n.send(outcome);
        }
    }
}

/// `value / timescale` seconds in microseconds, without overflow for any u64 input.
pub fn scale_to_micros(value: u64, timescale: u64) -> u64 {
    if timescale == 0 {
        return 0;
    }
    let us = u128::from(value) * 1_000_000 / u128::from(timescale);
    u64::try_from(us).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_without_overflow() {
        assert_eq!(scale_to_micros(90_000, 90_000), 1_000_000);
        assert_eq!(scale_to_micros(1, 3), 333_333);
        assert_eq!(scale_to_micros(u64::MAX, 1), u64::MAX);
        assert_eq!(scale_to_micros(5, 0), 0);
    }
}
