//! One stream's generator: a background task that follows the stream's log (the committed-end
//! watch, `VideoStream::subscribe`) and, as fragments become durable, asks the image source for
//! one image per instant k·intervalMs on the configured clock, then hands each image to the
//! destination.
//!
//! It is a reader of the log, never in the ingest path: ingest does not wait for it. When it falls
//! behind (decoders busy, a slow disk) it lags; when the media of its next instant arrived more than
//! `max_lag_ms` ago (wall time, so a fast upload of recorded video is not "behind") it skips ahead
//! to the live edge and counts the skipped instants. Gaps in the media (a producer away) are jumped over, not
//! sampled one instant at a time. The cursor (next instant) is persisted at most once a second and
//! when the task stops, so a restart resumes where generation was: delivery is at least once, and
//! after a crash up to a second of images may be generated again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::destination::{
    Delivery, DirectoryDestination, ManifestLine, WebhookDestination, image_file_name,
};
use super::source::{ImageSource, SourceError, image_options};
use super::spec::ImageGenerationSpec;
use super::status::Status;
use super::store::{Cursor, Store};
use crate::clock::{Timestamp, TimestampKind};
use crate::events::EventDetails;
use crate::events::sink::Emitter;
use crate::frames::Image;
use crate::metrics::{Metrics, StreamLabel};
use crate::video::VideoStream;
use crate::video::fragment::FragmentInfo;
use crate::video::fragment::FragmentNumber;

/// Instants asked of the source at once, at most (one decode plan covers them).
const BATCH: usize = 16;
/// The cursor is written to the catalog at most this often while generating.
const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// Where this stream's images go.
pub enum Sink {
    Directory(DirectoryDestination),
    Webhook(WebhookDestination),
}

/// Everything one generator task needs.
pub struct Generator {
    pub stream: Arc<VideoStream>,
    pub spec: ImageGenerationSpec,
    pub cursor: Cursor,
    pub source: Arc<dyn ImageSource>,
    pub store: Arc<Store>,
    pub sink: Sink,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    pub events: Arc<Emitter>,
    pub max_lag: Duration,
    /// "Now", to measure the lag against the arrival of the media.
    pub clock: crate::clock::SharedClock,
    /// Cancelled when generation is reconfigured or removed, or at shutdown.
    pub stop: CancellationToken,
}

enum Step {
    /// Images were made (or instants passed); look again at once.
    Progress,
    /// Nothing to do until more media is durable.
    Idle,
    /// The decoders are saturated: wait, then ask again for the same instant.
    Busy(Duration),
}

/// `t` rounded up to a multiple of `interval_us` (epoch-aligned instants).
pub fn ceil_to(t: Timestamp, interval_us: i64) -> Timestamp {
    let us = t.as_micros();
    let r = us.rem_euclid(interval_us);
    if r == 0 {
        t
    } else {
        Timestamp::from_micros(us.saturating_sub(r).saturating_add(interval_us))
    }
}

fn start_of(f: &FragmentInfo, clock: TimestampKind) -> Timestamp {
    match clock {
        TimestampKind::Producer => f.producer_ts,
        TimestampKind::Server => f.server_ts,
    }
}

impl Generator {
    fn interval_us(&self) -> i64 {
        i64::try_from(self.spec.interval_ms).unwrap_or(i64::MAX / 1000).saturating_mul(1000)
    }

    fn label(&self) -> StreamLabel {
        Metrics::stream(self.stream.name.as_str())
    }

    /// Runs until `stop` is cancelled or the stream closes; persists the cursor on the way out.
    pub async fn run(mut self) {
        let mut watch = self.stream.subscribe();
        let mut persisted = self.cursor;
        let mut last_persist = Instant::now();
        let closed = self.stream.closed().clone();
        loop {
            if self.stop.is_cancelled() || closed.is_cancelled() {
                break;
            }
            watch.borrow_and_update();
            let step = self.step().await;
            if self.cursor != persisted
                && (last_persist.elapsed() >= PERSIST_EVERY || !matches!(step, Step::Progress))
            {
                self.persist().await;
                persisted = self.cursor;
                last_persist = Instant::now();
            }
            match step {
                Step::Progress => tokio::task::yield_now().await,
                Step::Idle => {
                    tokio::select! {
                        r = watch.changed() => if r.is_err() { break },
                        _ = self.stop.cancelled() => break,
                        _ = closed.cancelled() => break,
                    }
                }
                Step::Busy(d) => {
                    let d = d.clamp(Duration::from_millis(50), Duration::from_secs(10));
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = self.stop.cancelled() => break,
                        _ = closed.cancelled() => break,
                    }
                }
            }
        }
        // Also at shutdown (which closes every stream): a restart resumes exactly here. For a
        // deleted stream the row is gone and this is a no-op.
        if self.cursor != persisted {
            self.persist().await;
        }
    }

    async fn persist(&self) {
        let (store, id, cursor) = (self.store.clone(), self.stream.id, self.cursor);
        match tokio::task::spawn_blocking(move || store.set_cursor(id, cursor)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(stream = %self.stream.name, error = %e, "cannot save the image generation cursor")
            }
            Err(e) => tracing::warn!(stream = %self.stream.name, error = %e, "cursor task failed"),
        }
    }

    /// How long ago (wall time, µs) the fragment holding instant `t` arrived.
    fn lag(&self, t: Timestamp) -> Option<i64> {
        let after = self.stream.first_at_or_after(self.spec.timestamps, t.add_micros(1)).ok()?;
        let holder = FragmentNumber(after.0.checked_sub(1)?.max(self.stream.first_retained().0));
        let f = self.stream.fragment(holder).ok().flatten()?;
        Some(self.clock.now().micros_since(f.server_ts))
    }

    /// The next instant to generate, or `None` until the media it depends on exists.
    fn next_instant(&mut self, end: FragmentNumber) -> Option<Timestamp> {
        let clock = self.spec.timestamps;
        match self.cursor {
            Cursor::At(t) => Some(t),
            Cursor::FromFragment(n) => {
                let n = n.max(self.stream.first_retained());
                if n >= end {
                    return None;
                }
                let f = self.stream.fragment(n).ok().flatten()?;
                let t = ceil_to(start_of(&f, clock), self.interval_us());
                self.cursor = Cursor::At(t);
                Some(t)
            }
        }
    }

    async fn step(&mut self) -> Step {
        let clock = self.spec.timestamps;
        let end = self.stream.committed_end();
        if end.0 == 0 {
            return Step::Idle;
        }
        let Some(last) = self.stream.fragment(FragmentNumber(end.0 - 1)).ok().flatten() else {
            return Step::Idle;
        };
        // Instants before the end of the newest durable fragment can be rendered.
        let horizon = start_of(&last, clock).add_micros(i64::from(last.meta.duration_us));
        let Some(mut next) = self.next_instant(end) else { return Step::Idle };
        self.status.set_next(Some(next));
        let interval = self.interval_us();
        let max_lag = i64::try_from(self.max_lag.as_micros()).unwrap_or(i64::MAX);
        if self.lag(next).is_some_and(|lag| lag > max_lag) && horizon.micros_since(next) > interval
        {
            // Too far behind: jump to the newest instant the media allows.
            let newest = ceil_to(horizon.add_micros(-interval), interval);
            let skipped = u64::try_from(newest.micros_since(next) / interval).unwrap_or(0);
            if skipped > 0 {
                self.metrics.imagegen.skipped.get_or_create(&self.label()).inc_by(skipped);
                self.status.note_skipped(skipped);
                tracing::warn!(
                    stream = %self.stream.name,
                    skipped,
                    from = %next,
                    to = %newest,
                    "image generation fell behind; skipping ahead to the live edge"
                );
                next = newest;
                self.cursor = Cursor::At(next);
            }
        }
        let instants: Vec<Timestamp> = (0..BATCH as i64)
            .map(|k| next.add_micros(k.saturating_mul(interval)))
            .take_while(|t| *t < horizon)
            .collect();
        if instants.is_empty() {
            return Step::Idle;
        }
        let opts = image_options(&self.spec);
        let mut results = self.source.images(self.stream.clone(), instants, clock, opts);
        loop {
            // A reconfiguration or shutdown does not wait for the rest of a batch.
            let next = tokio::select! {
                n = results.next() => n,
                _ = self.stop.cancelled() => return Step::Progress,
            };
            let Some((t, result)) = next else { break };
            match result {
                Ok(image) => {
                    self.deliver(t, image).await;
                    self.cursor = Cursor::At(t.add_micros(interval));
                }
                Err(SourceError::NoMedia) => {
                    // A gap (or media removed by retention): resume at the next fragment.
                    let after = self
                        .stream
                        .list_fragments(clock, Some(t), None, None, 1)
                        .ok()
                        .and_then(|p| p.fragments.first().copied());
                    let resume = after
                        .map(|f| ceil_to(start_of(&f, clock), interval))
                        .unwrap_or(t)
                        .max(t.add_micros(interval));
                    self.cursor = Cursor::At(resume);
                    if resume > t.add_micros(interval) {
                        // The rest of this batch is inside the gap.
                        return Step::Progress;
                    }
                }
                Err(SourceError::Busy(d)) => return Step::Busy(d),
                Err(SourceError::Failed(e)) => {
                    self.metrics.imagegen.errors.get_or_create(&self.label()).inc();
                    self.status.note_error(format!("image at {t}: {e}"));
                    self.cursor = Cursor::At(t.add_micros(interval));
                }
            }
        }
        if let Cursor::At(t) = self.cursor {
            self.status.set_next(Some(t));
        }
        Step::Progress
    }

    async fn deliver(&mut self, instant: Timestamp, image: Image) {
        let stream = self.stream.name.as_str();
        let label = self.label();
        let g = &self.metrics.imagegen;
        let line = ManifestLine {
            stream: stream.to_owned(),
            instant,
            timestamps: self.spec.timestamps,
            producer_timestamp: image.producer_timestamp,
            server_timestamp: image.server_timestamp,
            fragment_number: image.fragment_number.0.to_string(),
            file: image_file_name(stream, instant, image.format.extension()),
            width: image.width,
            height: image.height,
            format: self.spec.format.name().to_owned(),
        };
        let file = match &self.sink {
            Sink::Directory(dir) => {
                let (dir, img, l) = (dir.clone(), image.clone(), line.clone());
                let stored = tokio::task::spawn_blocking(move || dir.store(&img, &l)).await;
                match stored {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        g.errors.get_or_create(&label).inc();
                        self.status.note_error(format!("writing {}: {e}", line.file));
                        return;
                    }
                    Err(e) => {
                        g.errors.get_or_create(&label).inc();
                        self.status.note_error(format!("writing {}: {e}", line.file));
                        return;
                    }
                }
                g.generated.get_or_create(&label).inc();
                g.delivered.get_or_create(&label).inc();
                self.status.note_generated(instant);
                self.status.note_delivered();
                Some(line.file.clone())
            }
            Sink::Webhook(hook) => {
                g.generated.get_or_create(&label).inc();
                self.status.note_generated(instant);
                let size = image.bytes.len();
                if !hook.offer(Delivery { image: image.clone(), line: line.clone() }) {
                    g.dropped.get_or_create(&label).inc();
                    self.status.note_dropped();
                    tracing::debug!(stream, %instant, size, "webhook queue full; image dropped");
                    return;
                }
                None
            }
        };
        self.events.emit(
            stream,
            EventDetails::ImageGenerated {
                instant,
                timestamps: self.spec.timestamps,
                producer_timestamp: image.producer_timestamp,
                server_timestamp: image.server_timestamp,
                fragment_number: line.fragment_number,
                format: self.spec.format.name(),
                width: image.width,
                height: image.height,
                size_bytes: image.bytes.len() as u64,
                destination: self.spec.destination.kind(),
                file,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::clock::SystemClock;
    use crate::config::Config;
    use crate::frames::ImageFormat;
    use crate::imagegen::source::ImageStream;
    use crate::imagegen::spec::{Destination, OutputFormat};
    use crate::media::fmp4::{Fmp4Reader, Item, Limits};
    use crate::video::writer::{ProducerInfo, TimestampMode};
    use crate::video::{NewStream, VideoStreams};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers Busy `busy` times, then a 1-byte "image" per instant; records what it was asked.
    struct FakeSource {
        busy: AtomicUsize,
        asked: Mutex<Vec<Timestamp>>,
    }

    impl ImageSource for FakeSource {
        fn images(
            &self,
            _stream: Arc<VideoStream>,
            instants: Vec<Timestamp>,
            _clock: TimestampKind,
            _opts: crate::frames::ImageOptions,
        ) -> ImageStream {
            let busy = self
                .busy
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1))
                .is_ok();
            self.asked.lock().unwrap().extend(instants.iter().copied());
            let items: Vec<_> = instants
                .into_iter()
                .map(|t| {
                    if busy {
                        return (t, Err(SourceError::Busy(Duration::from_millis(1))));
                    }
                    let img = Image {
                        bytes: bytes::Bytes::from_static(b"x"),
                        format: ImageFormat::Jpeg,
                        width: 1,
                        height: 1,
                        producer_timestamp: t,
                        server_timestamp: t,
                        fragment_number: FragmentNumber(0),
                    };
                    (t, Ok(img))
                })
                .collect();
            Box::pin(futures_util::stream::iter(items))
        }
    }

    /// A stream holding `fixtures/h264.mp4` (6 fragments of 1 s) from `t0`.
    async fn stream_with_media(dir: &std::path::Path, t0: Timestamp) -> Arc<VideoStream> {
        let catalog = Arc::new(Catalog::open(&dir.join("catalog.sqlite")).unwrap());
        let mut config = Config::default();
        config.server.data_dir = dir.to_owned();
        let video = VideoStreams::open(
            catalog,
            &config,
            Arc::new(SystemClock),
            Arc::new(Metrics::new()),
            CancellationToken::new(),
        )
        .unwrap();
        let stream = video
            .create(
                NewStream {
                    name: crate::name::StreamName::new("cam").unwrap(),
                    retention_hours: None,
                    retention_bytes: None,
                    media_type: None,
                    tags: Default::default(),
                    device_name: None,
                    kms_key_id: None,
                },
                "test",
            )
            .unwrap();
        let info = ProducerInfo { protocol: "test", remote_addr: None, connected_at: t0 };
        let mut session =
            stream.claim_producer(info, TimestampMode::Relative { start: Some(t0) }).unwrap();
        let bytes =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/h264.mp4")).unwrap();
        let mut reader = Fmp4Reader::new(Limits::default());
        reader.push(bytes::Bytes::from(bytes));
        let mut last = None;
        while let Some(item) = reader.next_item().unwrap() {
            match item {
                Item::Init(i) => {
                    session.set_init(&i).await.unwrap();
                }
                Item::Fragment(f) => {
                    last = Some(session.append(&f, t0, u64::MAX).await.unwrap().number)
                }
                Item::FragmentStarted { .. } => {}
            }
        }
        stream.wait_durable(last.unwrap()).await.unwrap();
        stream
    }

    struct Outcome {
        status: super::super::status::StatusView,
        skipped_metric: u64,
        asked: Vec<Timestamp>,
        manifest: Vec<String>,
        cursor: Option<Cursor>,
    }

    /// Runs a generator (100 ms interval, 1 s max lag) over 6 s of media that arrived at `t0`,
    /// with "now" at `now`, until it has made `want` images.
    async fn run_generator(t0: Timestamp, now: Timestamp, busy: usize, want: u64) -> Outcome {
        let dir = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let stream = stream_with_media(dir.path(), t0).await;
        let catalog = Arc::new(Catalog::open(&dir.path().join("catalog.sqlite")).unwrap());
        let store = Arc::new(Store::open(catalog).unwrap());
        let spec = ImageGenerationSpec {
            interval_ms: 100,
            format: OutputFormat::Jpeg,
            width: None,
            height: None,
            quality: 80,
            timestamps: TimestampKind::Producer,
            destination: Destination::Directory { path: out.path().to_owned() },
        };
        store.put(stream.id, &spec, Cursor::FromFragment(FragmentNumber(0))).unwrap();
        let source = Arc::new(FakeSource { busy: AtomicUsize::new(busy), asked: Mutex::default() });
        let metrics = Arc::new(Metrics::new());
        let clock: crate::clock::SharedClock = Arc::new(crate::clock::ManualClock::new(now));
        let status = Arc::new(Status::new(clock.clone()));
        let stop = CancellationToken::new();
        let generator = Generator {
            stream: stream.clone(),
            spec,
            cursor: Cursor::FromFragment(FragmentNumber(0)),
            source: source.clone(),
            store: store.clone(),
            sink: Sink::Directory(DirectoryDestination::new(
                out.path(),
                &crate::name::StreamName::new("cam").unwrap(),
            )),
            metrics: metrics.clone(),
            status: status.clone(),
            events: Arc::new(Emitter::new(clock.clone())),
            max_lag: Duration::from_secs(1),
            clock,
            stop: stop.clone(),
        };
        let task = tokio::spawn(generator.run());
        for _ in 0..1000 {
            if status.view().images_generated >= want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.cancel();
        task.await.unwrap();
        let manifest = std::fs::read_to_string(out.path().join("cam").join("manifest.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        Outcome {
            status: status.view(),
            skipped_metric: metrics.imagegen.skipped.get_or_create(&Metrics::stream("cam")).get(),
            asked: source.asked.lock().unwrap().clone(),
            manifest,
            cursor: store.cursor(stream.id).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_generator_far_behind_skips_to_the_live_edge_and_waits_out_busy() {
        let t0 = Timestamp::parse_api("2026-11-21T10:00:00Z").unwrap();
        // The media arrived an hour ago: generation from T0 is far behind.
        let o = run_generator(t0, t0.add_micros(3_600_000_000), 2, 1).await;
        // 6 s of media at 100 ms: it jumps from T0 to T0 + 5.9 s, the newest ready instant.
        assert_eq!(o.status.instants_skipped, 59, "{:?}", o.status);
        assert_eq!(o.skipped_metric, 59);
        assert_eq!(o.status.images_generated, 1);
        let last = t0.add_micros(5_900_000);
        assert_eq!(o.asked, vec![last, last, last], "asked again after each Busy");
        assert_eq!(o.manifest.len(), 1);
        assert!(o.manifest[0].contains("2026-11-21T10:00:05.900Z"), "{:?}", o.manifest);
        // The cursor was saved when the generator stopped.
        assert_eq!(o.cursor, Some(Cursor::At(t0.add_micros(6_000_000))));
    }

    #[tokio::test]
    async fn a_fast_upload_of_recorded_media_is_not_behind() {
        let t0 = Timestamp::parse_api("2026-11-21T10:00:00Z").unwrap();
        // 6 s of media that arrived half a second ago: every instant is generated, in order.
        let o = run_generator(t0, t0.add_micros(500_000), 0, 60).await;
        assert_eq!(o.status.instants_skipped, 0, "{:?}", o.status);
        assert_eq!(o.status.images_generated, 60);
        let expected: Vec<Timestamp> = (0..60).map(|k| t0.add_micros(k * 100_000)).collect();
        assert_eq!(o.asked, expected);
        assert_eq!(o.manifest.len(), 60);
        assert_eq!(o.cursor, Some(Cursor::At(t0.add_micros(6_000_000))));
    }

    #[test]
    fn instants_are_epoch_aligned() {
        let i = 1_000_000;
        assert_eq!(ceil_to(Timestamp::from_micros(0), i), Timestamp::from_micros(0));
        assert_eq!(ceil_to(Timestamp::from_micros(1), i), Timestamp::from_micros(i));
        assert_eq!(ceil_to(Timestamp::from_micros(i), i), Timestamp::from_micros(i));
        assert_eq!(ceil_to(Timestamp::from_micros(-1), i), Timestamp::from_micros(0));
        assert_eq!(ceil_to(Timestamp::from_micros(2_500_000), 2_000_000).as_micros(), 4_000_000);
    }
}
