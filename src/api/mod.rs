//! The HTTP surfaces, as thin adapters over the services: the native REST API under `/v1/`
//! ([`streams`]), HLS ([`hls`]), the live fMP4 tail ([`media`]), the AWS Kinesis Data Streams
//! JSON protocol on `POST /` ([`kinesis`]), ingest (routed to `crate::ingest`), and operations (`/healthz`, `/metrics`). Errors become responses in
//! [`error`] only.

pub mod byte_range;
pub mod clip;
pub mod datastream_sse;
pub mod error;
pub mod frames;
pub mod hls;
pub mod kinesis;
pub mod media;
pub mod stream_events;
pub mod streams;
pub mod timeline;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::datastream::DataStreams;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::name::StreamName;
use crate::video::VideoStreams;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub config: Arc<Config>,
    pub video: Arc<VideoStreams>,
    pub metrics: Arc<Metrics>,
    /// The Kinesis-compatible data streams (`crate::datastream`).
    pub data: Arc<DataStreams>,
    /// Producers' metadata on the video timeline (`crate::events::store`).
    pub metadata: Arc<crate::events::store::MetadataStore>,
    /// The frame decode service (`crate::frames`): exact frames and image sets.
    pub frames: Arc<crate::frames::Frames>,
    /// Continuous image generation per stream (`crate::imagegen`).
    pub imagegen: Arc<crate::imagegen::ImageGeneration>,
    /// Pulled RTSP sources (`crate::ingest::pull`).
    pub pulls: Arc<crate::ingest::pull::PullManager>,
    /// Open WHIP sessions (`crate::ingest::whip`).
    pub whip: Arc<crate::ingest::whip::WhipSessions>,
    /// Background work that must finish before the final sync (the event writer).
    pub background: Arc<crate::app::Background>,
    /// Cancelled at shutdown: long-lived responses (ingest, live tails, blocking playlists) end.
    pub shutdown: CancellationToken,
}

/// Largest JSON request body, in bytes.
const MAX_JSON_BODY: usize = 1024 * 1024;

pub fn router(state: ApiState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([header::CONTENT_TYPE, header::RANGE, header::IF_NONE_MATCH])
        .expose_headers([
            header::CONTENT_LENGTH,
            header::CONTENT_RANGE,
            header::ETAG,
            header::HeaderName::from_static("x-sluice-fragment-number"),
        ]);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(streams::routes())
        .merge(hls::routes())
        .merge(clip::routes())
        .merge(frames::routes())
        .merge(media::routes())
        .merge(crate::ingest::http_fmp4::routes())
        .merge(crate::ingest::whip::routes())
        .merge(kinesis::routes())
        .merge(stream_events::routes())
        .merge(timeline::routes())
        .merge(datastream_sse::routes())
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(cors)
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
}

/// Validates a stream name taken from a URL path.
pub fn stream_name(raw: &str) -> Result<StreamName, Error> {
    Ok(StreamName::new(raw)?)
}
