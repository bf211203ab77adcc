//! Continuous image generation per stream, Kinesis Video Streams' image generation done on one
//! machine: a stream configured with `imageGeneration` (`PATCH /v1/streams/{name}`) gets one image
//! per instant k·intervalMs on its producer or server clock, rendered by the decode service
//! (`crate::frames`) and stored in a directory with a JSON-lines manifest or POSTed to a webhook.
//! Each image emits an `ImageGenerated` event.
//!
//! - [`spec`]: the configuration as clients send it, validated strictly.
//! - [`store`]: the catalog table of configurations and cursors (restarts resume).
//! - [`generator`]: the per-stream task that follows the log; never in the ingest path.
//! - [`destination`]: directory and webhook destinations (bounded queue, retries with backoff).
//! - [`source`]: the image source the generator asks (the decode service, or a fake in tests).
//! - [`status`]: per-stream counters and the last error, shown by describe.
//!
//! The HTTP surface is the `imageGeneration` field of `crate::api::streams`; the dataset-export
//! CLI is `crate::frames_cli`.

pub mod destination;
pub mod generator;
pub mod source;
pub mod spec;
pub mod status;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;
use crate::clock::SharedClock;
use crate::config::ImageGenerationConfig;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::video::{VideoStream, VideoStreams};
use destination::{DirectoryDestination, WebhookDestination, WebhookShared};
use generator::{Generator, Sink};
use source::ImageSource;
use spec::{Destination, ImageGenerationSpec};
use status::Status;
use store::{Cursor, Store};

/// A generator that is running.
struct Running {
    spec: ImageGenerationSpec,
    status: Arc<Status>,
    /// Cancelling it stops the generator and its webhook delivery task.
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// The image-generation service: one generator task per configured stream.
pub struct ImageGeneration {
    store: Arc<Store>,
    video: Arc<VideoStreams>,
    source: Arc<dyn ImageSource>,
    metrics: Arc<Metrics>,
    clock: SharedClock,
    config: ImageGenerationConfig,
    webhook: Arc<WebhookShared>,
    /// Stream id → its running generator. std `Mutex`: short map updates, never held across an
    /// `.await` (tasks are awaited after removal).
    running: Mutex<HashMap<i64, Running>>,
    /// Serialises reconfiguration of streams (a tokio `Mutex` because it is held while the old
    /// generator finishes), so two PATCHes cannot interleave.
    admin: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
}

impl ImageGeneration {
    /// Opens the table; generators start with [`ImageGeneration::start`].
    pub fn open(
        catalog: Arc<Catalog>,
        video: Arc<VideoStreams>,
        source: Arc<dyn ImageSource>,
        metrics: Arc<Metrics>,
        config: &ImageGenerationConfig,
        shutdown: CancellationToken,
    ) -> Result<Arc<ImageGeneration>> {
        let clock = video.clock().clone();
        Ok(Arc::new(ImageGeneration {
            store: Arc::new(Store::open(catalog)?),
            video,
            source,
            metrics,
            clock,
            config: config.clone(),
            webhook: Arc::new(WebhookShared::new(config)),
            running: Mutex::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(()),
            shutdown,
        }))
    }

    /// The limits a stream's configuration is validated against.
    pub fn limits(&self) -> &ImageGenerationConfig {
        &self.config
    }

    /// Starts the generator of every configured stream (at server start), resuming from its
    /// stored cursor. Rows of streams that no longer exist are removed.
    pub fn start(self: &Arc<Self>) -> Result<()> {
        let streams: HashMap<i64, Arc<VideoStream>> =
            self.video.all().into_iter().map(|s| (s.id, s)).collect();
        for row in self.store.all()? {
            match streams.get(&row.stream_id) {
                Some(stream) => self.spawn(stream.clone(), row.spec, row.cursor),
                None => self.store.delete(row.stream_id)?,
            }
        }
        Ok(())
    }

    /// Checks what validation of the JSON cannot: that a directory destination can be created
    /// (`<path>/<stream>`, created now). Call before applying anything, so a bad destination is a
    /// precise 400 and not an error per image later.
    pub async fn check_destination(
        &self,
        stream: &crate::name::StreamName,
        spec: &ImageGenerationSpec,
    ) -> Result<()> {
        let Destination::Directory { path } = &spec.destination else { return Ok(()) };
        let dir = path.join(stream.as_str());
        let d = dir.clone();
        let created = tokio::task::spawn_blocking(move || std::fs::create_dir_all(&d))
            .await
            .map_err(|e| crate::error::Error::internal(format!("directory task: {e}")))?;
        created.map_err(|e| {
            crate::error::Error::invalid(format!(
                "imageGeneration.destination.path: cannot create {}: {e}",
                dir.display()
            ))
        })
    }

    /// Sets (`Some`) or removes (`None`) a stream's image generation. A new configuration starts
    /// from the stream's current end; a changed one keeps its cursor if the clock is unchanged.
    pub async fn configure(
        self: &Arc<Self>,
        stream: &Arc<VideoStream>,
        spec: Option<ImageGenerationSpec>,
    ) -> Result<()> {
        let _admin = self.admin.lock().await;
        let old = self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&stream.id);
        if let Some(old) = old {
            old.stop.cancel();
            let _ = old.task.await;
        }
        let store = self.store.clone();
        let id = stream.id;
        let previous = tokio::task::spawn_blocking(move || {
            store.all().map(|rows| rows.into_iter().find(|r| r.stream_id == id))
        })
        .await
        .map_err(|e| crate::error::Error::internal(format!("catalog task: {e}")))??;
        let Some(spec) = spec else {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.delete(id))
                .await
                .map_err(|e| crate::error::Error::internal(format!("catalog task: {e}")))??;
            tracing::info!(stream = %stream.name, "image generation removed");
            return Ok(());
        };
        let cursor = match previous {
            Some(p) if p.spec.timestamps == spec.timestamps => match p.cursor {
                Cursor::At(t) => {
                    let interval =
                        i64::try_from(spec.interval_ms).unwrap_or(i64::MAX / 1000) * 1000;
                    Cursor::At(generator::ceil_to(t, interval))
                }
                c => c,
            },
            _ => Cursor::FromFragment(stream.fragment_log().committed_end()),
        };
        let (store, s) = (self.store.clone(), spec.clone());
        tokio::task::spawn_blocking(move || store.put(id, &s, cursor))
            .await
            .map_err(|e| crate::error::Error::internal(format!("catalog task: {e}")))??;
        tracing::info!(stream = %stream.name, interval_ms = spec.interval_ms, destination = spec.destination.kind(), "image generation configured");
        self.spawn(stream.clone(), spec, cursor);
        Ok(())
    }

    fn spawn(
        self: &Arc<Self>,
        stream: Arc<VideoStream>,
        spec: ImageGenerationSpec,
        cursor: Cursor,
    ) {
        let id = stream.id;
        let stop = self.shutdown.child_token();
        let status = Arc::new(Status::new(self.clock.clone()));
        let label = Metrics::stream(stream.name.as_str());
        // Every series exists from the start, at 0, so dashboards see the stream at once.
        for f in self.metrics.imagegen.all() {
            f.get_or_create(&label).inc_by(0);
        }
        let sink = match &spec.destination {
            Destination::Directory { path } => {
                Sink::Directory(DirectoryDestination::new(path, stream.name.as_str()))
            }
            Destination::Webhook { url } => Sink::Webhook(WebhookDestination::start(
                url.clone(),
                self.webhook.clone(),
                self.metrics.clone(),
                status.clone(),
                stop.clone(),
            )),
        };
        let generator = Generator {
            stream: stream.clone(),
            spec: spec.clone(),
            cursor,
            source: self.source.clone(),
            store: self.store.clone(),
            sink,
            metrics: self.metrics.clone(),
            status: status.clone(),
            events: self.video.events().clone(),
            max_lag: Duration::from_millis(self.config.max_lag_ms),
            clock: self.clock.clone(),
            stop: stop.clone(),
        };
        // Ends when `stop` is cancelled (reconfiguration, shutdown) or the stream closes.
        let this = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            generator.run().await;
            // A deleted stream (closed, while the server goes on) takes its configuration along.
            if stream.closed().is_cancelled()
                && let Some(this) = this.upgrade()
                && !this.shutdown.is_cancelled()
            {
                let _ = this.store.delete(stream.id);
                this.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&stream.id);
            }
        });
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Running { spec, status, stop, task });
    }

    /// The `imageGeneration` object of a stream's description: its configuration and status, or
    /// `null` when not configured.
    pub fn describe(&self, stream: &VideoStream) -> serde_json::Value {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        match running.get(&stream.id) {
            Some(r) => {
                let mut v = serde_json::to_value(&r.spec).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert(
                        "status".into(),
                        serde_json::to_value(r.status.view()).unwrap_or_default(),
                    );
                }
                v
            }
            None => serde_json::Value::Null,
        }
    }

    /// Stops every generator and waits for them (they save their cursors). At shutdown.
    pub async fn stop(&self) {
        let all: Vec<Running> = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, r)| r)
            .collect();
        for r in &all {
            r.stop.cancel();
        }
        for r in all {
            let _ = r.task.await;
        }
    }
}
