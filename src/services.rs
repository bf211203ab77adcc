//! The services one server runs, built once by `app` and shared by every surface (`api` today;
//! the RTSP listener, and later more protocols, reach the same objects). Holding them in one
//! struct keeps the wiring in one place and keeps protocol adapters free of lifecycle decisions.
//!
//! The stream lifecycle across services lives here and in `video`: creating, updating and
//! describing a stream with its attachments (pulled source, image generation) is
//! [`Services::update_stream`] and [`Services::describe`]; deleting is `VideoStreams::delete`
//! alone, because every attachment keeps its catalog rows in tables the catalog deletes with the
//! stream, and runs as a `video::tasks::PerStream` task that stops with it.

use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::config::Config;
use crate::datastream::DataStreams;
use crate::error::Result;
use crate::events::store::MetadataStore;
use crate::frames::Frames;
use crate::imagegen::spec::{Destination, ImageGenerationSpec};
use crate::imagegen::{ImageGeneration, ImageGenerationView};
use crate::ingest::pull::{PullManager, SourceConfig, SourceDescription};
use crate::ingest::whip::WhipSessions;
use crate::memory::{MemoryBudget, Reservation};
use crate::metrics::Metrics;
use crate::name::StreamName;
use crate::video::{NewStream, StreamDescription, StreamUpdate, VideoStream, VideoStreams};

/// Everything a request handler can reach.
pub struct Services {
    pub config: Arc<Config>,
    pub video: Arc<VideoStreams>,
    pub metrics: Arc<Metrics>,
    /// The Kinesis-compatible data streams (`crate::datastream`).
    pub data: Arc<DataStreams>,
    /// Producers' metadata on the video timeline (`crate::events::store`).
    pub metadata: Arc<MetadataStore>,
    /// The frame decode service (`crate::frames`): exact frames and image sets.
    pub frames: Arc<Frames>,
    /// Continuous image generation per stream (`crate::imagegen`).
    pub imagegen: Arc<ImageGeneration>,
    /// Delivery streams (`crate::firehose`).
    pub firehose: Arc<crate::firehose::Firehose>,
    /// Fragment notifications (`crate::notify`).
    pub notifications: Arc<crate::notify::Notifications>,
    /// Pulled RTSP sources (`crate::ingest::pull`).
    pub pulls: Arc<PullManager>,
    /// Open WHIP sessions (`crate::ingest::whip`).
    pub whip: Arc<WhipSessions>,
    /// Who may do what (`crate::auth`): every surface asks it.
    pub auth: Arc<Auth>,
    /// The memory budget (`crate::memory`) the large buffers reserve from.
    pub memory: Arc<MemoryBudget>,
    /// The segment cache's share of the budget, held while the server runs.
    pub segment_cache_memory: Reservation,
    /// Cancelled at shutdown: long-lived responses (ingest, live tails, blocking playlists) end.
    pub shutdown: CancellationToken,
}

/// A video stream as every API shows it (list, create, describe, update): the stream and its
/// attachments.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamView {
    #[serde(flatten)]
    pub stream: StreamDescription,
    /// The pulled RTSP source, if the stream has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceDescription>,
    /// Continuous image generation: configuration and status, or `null`.
    pub image_generation: Option<ImageGenerationView>,
}

/// A change to a stream and its attachments; `None` leaves a part as it is, `Some(None)`
/// removes an attachment.
#[derive(Default)]
pub struct StreamChange {
    pub update: StreamUpdate,
    pub source: Option<Option<SourceConfig>>,
    pub image_generation: Option<Option<ImageGenerationSpec>>,
}

/// Runs catalog and file work on the blocking pool (see "Blocking work" in `crate`).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| crate::error::Error::internal(format!("catalog task: {e}")))?
}

impl Services {
    /// Creates a video stream (its catalog row and log directories); `by` names the principal
    /// in the lifecycle event.
    pub async fn create_stream(&self, req: NewStream, by: &str) -> Result<Arc<VideoStream>> {
        let (video, by) = (self.video.clone(), by.to_owned());
        blocking(move || video.create(req, &by)).await
    }

    /// Deletes a video stream with everything attached to it (see the module docs).
    pub async fn delete_stream(&self, name: &StreamName, by: &str) -> Result<()> {
        let (video, name, by) = (self.video.clone(), name.clone(), by.to_owned());
        blocking(move || video.delete(&name, &by)).await
    }

    pub fn describe(&self, stream: &VideoStream) -> StreamView {
        StreamView {
            stream: stream.describe(),
            source: self.pulls.describe(stream.id),
            image_generation: self.imagegen.describe(stream.id),
        }
    }

    /// Applies `change`: what can be checked before anything changes is checked first (the image
    /// destination can be created), then the stream's own fields, then its attachments.
    pub async fn update_stream(
        &self,
        name: &StreamName,
        change: StreamChange,
        by: &str,
    ) -> Result<Arc<VideoStream>> {
        self.check_destinations(&change).await?;
        if let Some(Some(g)) = &change.image_generation {
            self.video.get(name)?;
            self.imagegen.check_destination(name, g).await?;
        }
        let (video, n, update, by) =
            (self.video.clone(), name.clone(), change.update, by.to_owned());
        let stream = blocking(move || video.update(&n, update, &by)).await?;
        if let Some(source) = change.source {
            self.pulls.set(&stream, source).await?;
        }
        if let Some(g) = change.image_generation {
            self.imagegen.configure(&stream, g).await?;
        }
        Ok(stream)
    }

    /// With `[auth]` on, that a webhook URL (`member` names it in the error) points where Sluice
    /// may send (`crate::auth::outbound`); a URL that does not parse is always refused.
    pub async fn check_webhook(&self, member: &str, url: &str) -> Result<()> {
        use crate::auth::outbound::Outbound;
        let parsed = url::Url::parse(url)
            .map_err(|e| crate::error::Error::invalid(format!("{member}: {e}")))?;
        if !self.auth.enabled() {
            return Ok(());
        }
        let port = parsed.port_or_known_default().unwrap_or(80);
        let host = parsed.host_str().unwrap_or("");
        Outbound::from_config(self.auth.config()).check(member, host, port).await
    }

    /// With `[auth]` on, where a change points Sluice (`crate::auth::outbound`): no loopback or
    /// link-local webhook or camera unless allowed, image directories under the allowed roots.
    async fn check_destinations(&self, change: &StreamChange) -> Result<()> {
        use crate::auth::outbound::{self, Outbound};
        if !self.auth.enabled() {
            return Ok(());
        }
        let a = self.auth.config();
        let policy = Outbound::from_config(a);
        if let Some(Some(s)) = &change.source {
            let host = s.url.host_str().unwrap_or("");
            let port = s.url.port().unwrap_or(554);
            policy.check("source.rtspUrl", host, port).await?;
        }
        match change.image_generation.as_ref().and_then(Option::as_ref).map(|g| &g.destination) {
            Some(Destination::Webhook { url }) => {
                self.check_webhook("imageGeneration.destination.url", url).await
            }
            Some(Destination::Directory { path }) => {
                outbound::check_directory(path, &self.config.server.data_dir, &a.image_roots)
            }
            None => Ok(()),
        }
    }
}
