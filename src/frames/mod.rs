//! The frame service: exact frames and image sets decoded with GStreamer on a bounded pool of
//! dedicated worker threads (never on the async runtime's threads).
//!
//! - [`Frames`] owns the pool: a bounded job queue (a full queue is [`FrameError::Busy`], which the
//!   API answers with 503 + Retry-After), workers that keep their decoder and encoder pipelines
//!   warm between jobs (`worker`), and the planning that turns an instant into "decode these access
//!   units from the preceding keyframe through the target" (`plan`).
//! - The frame on display at instant `t` is the video sample with the greatest presentation time
//!   `<= t`, timed on the producer or server clock as the fragment that holds it.
//! - [`Frames::images`] groups consecutive instants that share a keyframe into one decode job, so
//!   an image set decodes each needed run of access units once, and only what the instants need.
//!
//! The HTTP adapters are in `crate::api::frames`; the stored fragments come from `crate::video`.

mod plan;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::clock::{Timestamp, TimestampKind};
use crate::error::Result;
use crate::metrics::Metrics;
use crate::video::VideoStream;
use crate::video::fragment::FragmentNumber;

pub use crate::config::FramesConfig;
pub use worker::MAX_EDGE;

/// The fragment holding the frame on display at `t` on `clock`, if any (index reads only; a
/// blocking call).
pub fn locate_fragment(
    stream: &VideoStream,
    t: Timestamp,
    clock: TimestampKind,
) -> Option<FragmentNumber> {
    plan::locate(stream, plan::Want::At(t), clock).ok().map(|l| l.fragment)
}

/// The encoded image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ImageFormat {
    #[default]
    Jpeg,
    Png,
}

impl ImageFormat {
    /// The MIME type (`image/jpeg`, `image/png`).
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
        }
    }
    /// The file extension without the dot (`jpg`, `png`).
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
        }
    }
}

/// How to render an image. With only `width` or only `height`, the other keeps the aspect ratio;
/// with neither, the decoded size is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageOptions {
    pub format: ImageFormat,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// JPEG quality, 1–100 (ignored for PNG).
    pub quality: u8,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions { format: ImageFormat::Jpeg, width: None, height: None, quality: 85 }
    }
}

/// One encoded frame and where it came from.
#[derive(Debug, Clone)]
pub struct Image {
    pub bytes: Bytes,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    /// The frame's presentation time on the producer clock.
    pub producer_timestamp: Timestamp,
    /// The frame's presentation time on the server clock.
    pub server_timestamp: Timestamp,
    /// The fragment holding the frame.
    pub fragment_number: FragmentNumber,
}

/// Why no image could be made for an instant.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FrameError {
    /// No frame is on display at that instant (before the first fragment, in a gap, after the end).
    #[error("no media: {0}")]
    NoMedia(String),
    /// The media there cannot be decoded (corrupt data, unsupported codec, no keyframe before it).
    #[error("media error: {0}")]
    MediaError(String),
    /// Every worker is busy and the queue is full.
    #[error("the frame decoders are busy; retry after {} s", retry_after.as_secs())]
    Busy { retry_after: Duration },
    /// The request itself is invalid (a size out of range).
    #[error("{0}")]
    Invalid(String),
    /// Storage failed, or the service is shutting down.
    #[error("internal error: {0}")]
    Internal(String),
}

impl FrameError {
    /// The Kinesis GetImages error code for a per-image error (`NO_MEDIA`, `MEDIA_ERROR`).
    pub fn code(&self) -> &'static str {
        match self {
            FrameError::NoMedia(_) => "NO_MEDIA",
            FrameError::MediaError(_) => "MEDIA_ERROR",
            FrameError::Busy { .. } => "BUSY",
            FrameError::Invalid(_) => "INVALID_ARGUMENT",
            FrameError::Internal(_) => "INTERNAL_ERROR",
        }
    }
}

/// A frame request's failure as the crate error, for the one HTTP mapping (`api::error`):
/// 404 `NoMedia`, 422 `MediaError`, 503 with Retry-After, 400, 500.
impl From<FrameError> for crate::error::Error {
    fn from(e: FrameError) -> Self {
        use crate::error::{Error, ErrorKind};
        let message = e.to_string();
        match e {
            FrameError::NoMedia(_) => Error::new(ErrorKind::NotFound, message).with_code("NoMedia"),
            FrameError::MediaError(_) => {
                Error::new(ErrorKind::Unprocessable, message).with_code("MediaError")
            }
            FrameError::Busy { retry_after } => {
                Error::new(ErrorKind::Unavailable, message).with_retry_after(retry_after)
            }
            FrameError::Invalid(_) => Error::new(ErrorKind::InvalidArgument, message),
            FrameError::Internal(_) => Error::new(ErrorKind::Internal, message),
        }
    }
}

impl From<crate::error::Error> for FrameError {
    fn from(e: crate::error::Error) -> Self {
        FrameError::Internal(e.message)
    }
}

/// A unit of work for a worker thread.
type Job = Box<dyn FnOnce(&mut worker::Worker) + Send>;

/// Instants sent to one worker job at most (they share a segment start).
const MAX_BATCH: usize = 32;

/// Places of the pool held by [`Frames::hold`] until this is dropped.
pub struct HeldPlaces {
    _release: std::sync::mpsc::Sender<()>,
}

/// The decode service: a bounded pool of GStreamer worker threads. Shared as `Arc<Frames>`.
pub struct Frames {
    workers: usize,
    /// Decoder threads per worker for image sets, where all workers decode at once:
    /// cores / workers, at least 1.
    batch_threads: u32,
    /// Jobs to the workers. std `mpsc` (its `Sender` is `Sync`): workers block on it; the queue
    /// bound is `slots`, not the channel. Dropping `Frames` closes it and ends the workers.
    jobs: std::sync::mpsc::Sender<Job>,
    /// One permit per job queued or running: `workers + queue_depth`. Requests that find none
    /// get [`FrameError::Busy`]; the later batches of an image set wait for one instead.
    slots: Arc<tokio::sync::Semaphore>,
    capacity: usize,
    /// Moving average of a job's duration, in microseconds, for Retry-After.
    avg_job_us: Arc<std::sync::atomic::AtomicU64>,
    default_quality: u8,
    default_page_size: usize,
    metrics: Arc<Metrics>,
}

impl Frames {
    /// Starts the worker threads (`cfg.workers`, 0 = one per core); the first
    /// `cfg.warm_decoders` of them load the H.264 decoder and JPEG encoder right away.
    pub fn new(cfg: &FramesConfig, metrics: Arc<Metrics>) -> Result<Arc<Frames>> {
        worker::init().map_err(|e| crate::error::Error::internal(e.to_string()))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = if cfg.workers == 0 { cores } else { cfg.workers };
        let batch_threads = u32::try_from((cores / workers.max(1)).max(1)).unwrap_or(1);
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        // std Mutex: workers take turns waiting on the receiver; it is held only while waiting.
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            let warm = i < cfg.warm_decoders;
            std::thread::Builder::new()
                .name(format!("frames-{i}"))
                .spawn(move || {
                    let mut w = worker::Worker::default();
                    if warm {
                        w.warm();
                    }
                    loop {
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            Ok(job) => job(&mut w),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| crate::error::Error::internal(format!("frame worker thread: {e}")))?;
        }
        let capacity = workers + cfg.queue_depth;
        Ok(Arc::new(Frames {
            workers,
            batch_threads,
            jobs: tx,
            slots: Arc::new(tokio::sync::Semaphore::new(capacity)),
            capacity,
            avg_job_us: Arc::new(std::sync::atomic::AtomicU64::new(50_000)),
            default_quality: cfg.default_quality,
            default_page_size: cfg.default_page_size,
            metrics,
        }))
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Images per JSON page when a request gives no `maxResults`.
    pub fn default_page_size(&self) -> usize {
        self.default_page_size
    }

    /// The JPEG quality used when a request gives none.
    pub fn default_quality(&self) -> u8 {
        self.default_quality
    }

    /// How long a refused client should wait: the queue's expected drain time, 1–30 s.
    fn retry_after(&self) -> Duration {
        use std::sync::atomic::Ordering;
        let queued = self.capacity.saturating_sub(self.slots.available_permits()) as u64;
        let avg = self.avg_job_us.load(Ordering::Relaxed);
        let us = queued.saturating_mul(avg) / self.workers.max(1) as u64;
        Duration::from_secs(us.div_ceil(1_000_000).clamp(1, 30))
    }

    /// Fills `n` places of the pool (workers first, then the queue) with jobs that wait until
    /// the returned guard is dropped. Tests use it to make the pool full without racing real
    /// decodes against each other; `Busy` if fewer than `n` places are free.
    #[doc(hidden)]
    pub fn hold(&self, n: usize) -> Result<HeldPlaces, FrameError> {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(std::sync::Mutex::new(wait));
        for _ in 0..n {
            let permit = self
                .slots
                .clone()
                .try_acquire_owned()
                .map_err(|_| FrameError::Busy { retry_after: self.retry_after() })?;
            let wait = wait.clone();
            let job: Job = Box::new(move |_| {
                // Returns when the guard's sender is dropped.
                let _ = wait.lock().unwrap_or_else(|p| p.into_inner()).recv();
                drop(permit);
            });
            self.jobs
                .send(job)
                .map_err(|_| FrameError::Internal("the frame workers have stopped".to_owned()))?;
        }
        Ok(HeldPlaces { _release: release })
    }

    /// Runs `f` on a worker. With `wait` false a full queue is [`FrameError::Busy`].
    async fn run<T: Send + 'static>(
        &self,
        wait: bool,
        f: impl FnOnce(&mut worker::Worker) -> T + Send + 'static,
    ) -> Result<T, FrameError> {
        use std::sync::atomic::Ordering;
        let permit = if wait {
            self.slots.clone().acquire_owned().await.map_err(|_| {
                FrameError::Internal("the frame service is shutting down".to_owned())
            })?
        } else {
            match self.slots.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    self.metrics.frames_busy.inc();
                    return Err(FrameError::Busy { retry_after: self.retry_after() });
                }
            }
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let avg = self.avg_job_us.clone();
        let job: Job = Box::new(move |w| {
            let started = std::time::Instant::now();
            let r = f(w);
            let us = started.elapsed().as_micros() as u64;
            let old = avg.load(Ordering::Relaxed);
            avg.store((old * 7 + us) / 8, Ordering::Relaxed);
            drop(permit);
            let _ = tx.send(r);
        });
        self.jobs
            .send(job)
            .map_err(|_| FrameError::Internal("the frame workers have stopped".to_owned()))?;
        rx.await.map_err(|_| FrameError::Internal("a frame worker failed".to_owned()))
    }

    async fn one(
        &self,
        stream: &Arc<VideoStream>,
        want: plan::Want,
        clock: TimestampKind,
        opts: &ImageOptions,
    ) -> Result<Image, FrameError> {
        let stream = stream.clone();
        let opts = opts.clone();
        let metrics = self.metrics.clone();
        let mut out = self
            .run(false, move |w| {
                // One frame: let the decoder use every core (frame threading shortens the run).
                w.decode_threads = 0;
                let at = plan::locate(&stream, want, clock);
                let r = plan::render_batch(w, &stream, &[(want, at)], clock, &opts);
                count(&metrics, &r);
                r
            })
            .await?;
        out.pop().unwrap_or_else(|| Err(FrameError::Internal("no result".to_owned())))
    }

    /// The exact frame on display at `at` on `clock`: decoded from the preceding keyframe
    /// through that frame.
    pub async fn frame_at(
        &self,
        stream: &Arc<VideoStream>,
        at: Timestamp,
        clock: TimestampKind,
        opts: &ImageOptions,
    ) -> Result<Image, FrameError> {
        self.one(stream, plan::Want::At(at), clock, opts).await
    }

    /// The newest decodable frame.
    pub async fn latest(
        &self,
        stream: &Arc<VideoStream>,
        opts: &ImageOptions,
    ) -> Result<Image, FrameError> {
        self.one(stream, plan::Want::Latest, TimestampKind::Producer, opts).await
    }

    /// One result per instant, in order, decoding only what the instants need; a `Stream` so
    /// callers can stream an hour of images without holding them. Consecutive instants that share
    /// a segment start go to one worker job (their keyframe run is decoded once); up to `workers`
    /// jobs run at once. The first job is refused with `Busy` when the queue is full (so an HTTP
    /// request can answer 503); later jobs wait for room. Dropping the stream stops the work.
    pub fn images(
        self: &Arc<Self>,
        stream: Arc<VideoStream>,
        instants: impl Iterator<Item = Timestamp> + Send + 'static,
        clock: TimestampKind,
        opts: ImageOptions,
    ) -> impl futures_util::Stream<Item = (Timestamp, Result<Image, FrameError>)> + Send + 'static
    {
        use futures_util::StreamExt;
        // Bounded: the producer task runs ahead of a slow consumer by at most a few images.
        let (tx, rx) = tokio::sync::mpsc::channel::<(Timestamp, Result<Image, FrameError>)>(4);
        let frames = self.clone();
        // Ends when the instants run out or the receiver (the stream) is dropped.
        tokio::spawn(async move {
            let mut instants = instants;
            let mut inflight = futures_util::stream::FuturesOrdered::new();
            let mut first = true;
            // Instants located ahead, in order; refilled MAX_BATCH at a time by one blocking
            // task (index reads), not one task per instant.
            let mut located: std::collections::VecDeque<(
                Timestamp,
                Result<plan::Located, FrameError>,
            )> = std::collections::VecDeque::new();
            loop {
                while inflight.len() < frames.workers.max(1) {
                    let mut batch: Vec<(Timestamp, Result<plan::Located, FrameError>)> = Vec::new();
                    let mut key: Option<FragmentNumber> = None;
                    loop {
                        if located.is_empty() {
                            let chunk: Vec<Timestamp> = instants.by_ref().take(MAX_BATCH).collect();
                            if chunk.is_empty() {
                                break;
                            }
                            let s = stream.clone();
                            let times = chunk.clone();
                            let found = tokio::task::spawn_blocking(move || {
                                times
                                    .into_iter()
                                    .map(|t| (t, plan::locate(&s, plan::Want::At(t), clock)))
                                    .collect::<Vec<_>>()
                            })
                            .await
                            .unwrap_or_else(|e| {
                                let e = FrameError::Internal(e.to_string());
                                chunk.iter().map(|t| (*t, Err(e.clone()))).collect()
                            });
                            located.extend(found);
                        }
                        let Some(item) = located.pop_front() else { break };
                        let item_key = item.1.as_ref().ok().map(|l| l.segment_start);
                        let joins = batch.is_empty()
                            || (item_key.is_some() && (key.is_none() || key == item_key));
                        if !joins || batch.len() >= MAX_BATCH {
                            located.push_front(item);
                            break;
                        }
                        if key.is_none() {
                            key = item_key;
                        }
                        batch.push(item);
                    }
                    if batch.is_empty() {
                        break;
                    }
                    let wait = !first;
                    first = false;
                    let (frames, stream, opts) = (frames.clone(), stream.clone(), opts.clone());
                    let threads = frames.batch_threads;
                    inflight.push_back(async move {
                        let times: Vec<Timestamp> = batch.iter().map(|(t, _)| *t).collect();
                        let metrics = frames.metrics.clone();
                        let work: Vec<(plan::Want, Result<plan::Located, FrameError>)> =
                            batch.into_iter().map(|(t, l)| (plan::Want::At(t), l)).collect();
                        let r = frames
                            .run(wait, move |w| {
                                w.decode_threads = threads;
                                let r = plan::render_batch(w, &stream, &work, clock, &opts);
                                count(&metrics, &r);
                                r
                            })
                            .await;
                        match r {
                            Ok(images) => times.into_iter().zip(images).collect::<Vec<_>>(),
                            Err(e) => times.into_iter().map(|t| (t, Err(e.clone()))).collect(),
                        }
                    });
                }
                match inflight.next().await {
                    None => return,
                    Some(results) => {
                        for r in results {
                            if tx.send(r).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
            .boxed()
    }
}

fn count(metrics: &Metrics, results: &[Result<Image, FrameError>]) {
    for r in results {
        match r {
            Ok(_) => metrics.frames_images.inc(),
            Err(_) => metrics.frames_image_errors.inc(),
        };
    }
}
