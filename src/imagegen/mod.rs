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
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::catalog::VideoStreamId;
use crate::clock::SharedClock;
use crate::config::ImageGenerationConfig;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::video::tasks::PerStream;
use crate::video::{VideoStream, VideoStreams};
use destination::{DirectoryDestination, WebhookDestination, WebhookShared};
use generator::{Generator, Sink};
use source::ImageSource;
use spec::{Destination, ImageGenerationSpec};
use status::Status;
use store::{Cursor, Store};

/// A generator that is running: its configuration and what it has done.
pub struct Generating {
    spec: ImageGenerationSpec,
    status: Arc<Status>,
}

/// The `imageGeneration` object of a stream's description.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageGenerationView {
    #[serde(flatten)]
    pub spec: ImageGenerationSpec,
    pub status: status::StatusView,
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
    /// Stream id → its running generator (and, with it, its webhook delivery task).
    running: PerStream<VideoStreamId, Generating>,
    /// Serialises reconfiguration of streams (a tokio `Mutex` because it is held while the old
    /// generator finishes), so two PATCHes cannot interleave.
    admin: tokio::sync::Mutex<()>,
}

impl ImageGeneration {
    /// Opens the table; generators start with [`ImageGeneration::start`].
    pub fn open(
        catalog: Arc<Catalog>,
        video: Arc<VideoStreams>,
        source: Arc<dyn ImageSource>,
        metrics: Arc<Metrics>,
        config: &ImageGenerationConfig,
        outbound: crate::auth::outbound::Outbound,
    ) -> Result<Arc<ImageGeneration>> {
        let clock = video.clock().clone();
        Ok(Arc::new(ImageGeneration {
            store: Arc::new(Store::open(catalog)?),
            video,
            source,
            metrics,
            clock,
            config: config.clone(),
            webhook: Arc::new(WebhookShared::new(config, outbound)),
            running: PerStream::new(),
            admin: tokio::sync::Mutex::new(()),
        }))
    }

    /// The webhook client, limits and retry policy, shared with fragment notifications.
    pub fn webhook(&self) -> &Arc<WebhookShared> {
        &self.webhook
    }

    /// The limits a stream's configuration is validated against.
    pub fn limits(&self) -> &ImageGenerationConfig {
        &self.config
    }

    /// Starts the generator of every configured stream (at server start), resuming from its
    /// stored cursor. Rows of streams that no longer exist are removed.
    pub fn start(self: &Arc<Self>) -> Result<()> {
        let streams: HashMap<VideoStreamId, Arc<VideoStream>> =
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
        let dir = path.join(stream.as_path_component());
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
    /// Deleting the stream removes it too (its row goes in the stream's catalog transaction, the
    /// generator stops with the stream's `closed()` token).
    pub async fn configure(
        self: &Arc<Self>,
        stream: &Arc<VideoStream>,
        spec: Option<ImageGenerationSpec>,
    ) -> Result<()> {
        let _admin = self.admin.lock().await;
        self.running.remove(&stream.id).await;
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
            _ => Cursor::FromFragment(stream.committed_end()),
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
        let status = Arc::new(Status::new(self.clock.clone()));
        let label = Metrics::stream(stream.name.as_str());
        // Every series exists from the start, at 0, so dashboards see the stream at once.
        for f in self.metrics.imagegen.all() {
            f.get_or_create(&label).inc_by(0);
        }
        let generating = Arc::new(Generating { spec: spec.clone(), status: status.clone() });
        let this = self.clone();
        let s = stream.clone();
        // Ends when its configuration is replaced or removed, the stream is deleted, or the
        // server shuts down (`video::tasks`); the webhook delivery task shares its token.
        self.running.insert(stream.id, &stream, generating, move |stop| {
            let sink = match &spec.destination {
                Destination::Directory { path } => {
                    Sink::Directory(DirectoryDestination::new(path, &s.name))
                }
                Destination::Webhook { url } => Sink::Webhook(WebhookDestination::start(
                    url.clone(),
                    this.webhook.clone(),
                    this.metrics.clone(),
                    status.clone(),
                    stop.clone(),
                )),
            };
            let generator = Generator {
                stream: s,
                spec,
                cursor,
                source: this.source.clone(),
                store: this.store.clone(),
                sink,
                metrics: this.metrics.clone(),
                status,
                events: this.video.events().clone(),
                max_lag: this.config.max_lag_ms,
                clock: this.clock.clone(),
                stop,
            };
            generator.run()
        });
    }

    /// The `imageGeneration` object of a stream's description: its configuration and status, or
    /// `None` when not configured.
    pub fn describe(&self, stream_id: VideoStreamId) -> Option<ImageGenerationView> {
        self.running
            .get(&stream_id)
            .map(|g| ImageGenerationView { spec: g.spec.clone(), status: g.status.view() })
    }

    /// Stops every generator and waits for them (they save their cursors). At shutdown.
    pub async fn stop(&self) {
        self.running.stop_all().await;
    }
}
