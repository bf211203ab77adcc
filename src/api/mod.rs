//! The HTTP surfaces, as thin adapters over the services: the native REST API under `/v1/`
//! ([`streams`]), HLS ([`hls`]), the live fMP4 tail ([`media`]), the AWS Kinesis Data Streams
//! JSON protocol on `POST /` ([`kinesis`]), the HTTP ingests ([`push`] for fMP4, [`whip`] for
//! WebRTC; their protocol state machines are `crate::ingest`), and operations (`/healthz`,
//! `/metrics`). A stream named in a path is looked up once, by [`path::StreamPath`]. Errors
//! become responses in [`error`] only.

pub mod access;
pub mod auth_admin;
pub mod byte_range;
pub mod clip;
pub mod dash;
pub mod datastream_sse;
pub mod delivery_streams;
pub mod error;
pub mod firehose_endpoint;
pub mod frames;
pub mod hls;
pub mod kinesis;
pub mod kvs;
pub mod media;
pub mod params;
pub mod path;
pub mod push;
pub mod sessions;
pub mod stream_events;
pub mod streams;
pub mod timeline;
pub mod whip;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::services::Services;

/// What every handler can reach: the server's services. Cheap to clone.
pub type ApiState = Arc<Services>;

/// Largest JSON request body, in bytes.
const MAX_JSON_BODY: usize = 1024 * 1024;

pub fn router(state: ApiState) -> Router {
    // CORS: what a player or a browser publisher needs is open to every origin (playlists,
    // segments, clips, frames, playback sessions, WHIP); management answers only the origins of
    // `[server] cors_origins` (default none: same-origin pages only, so a web page elsewhere
    // cannot drive a Sluice on its visitor's machine).
    let open = cors(AllowOrigin::any());
    let origins: Vec<HeaderValue> = state
        .config
        .server
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let managed = if state.config.server.cors_origins.iter().any(|o| o == "*") {
        cors(AllowOrigin::any())
    } else {
        cors(AllowOrigin::list(origins))
    };
    let access = axum::middleware::from_fn_with_state(state.clone(), access::authorize);
    let playback = Router::new()
        .merge(hls::routes())
        .merge(dash::routes())
        .merge(clip::routes())
        .merge(frames::routes())
        .merge(sessions::routes())
        .merge(whip::routes())
        .layer(access.clone())
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(open);
    let management = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(streams::routes())
        .merge(media::routes())
        .merge(push::routes())
        .merge(kinesis::routes())
        .merge(firehose_endpoint::routes())
        .merge(delivery_streams::routes())
        .merge(kvs::routes())
        .merge(stream_events::routes())
        .merge(timeline::routes())
        .merge(datastream_sse::routes())
        .merge(auth_admin::routes())
        .layer(access)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(managed);
    playback.merge(management).with_state(state)
}

fn cors(origins: AllowOrigin) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::RANGE,
            header::IF_NONE_MATCH,
            header::AUTHORIZATION,
        ])
        .expose_headers([
            header::CONTENT_LENGTH,
            header::CONTENT_RANGE,
            header::ETAG,
            header::LOCATION,
            header::HeaderName::from_static("x-sluice-fragment-number"),
        ])
}

/// Liveness with detail: `degraded` when a stream could not be opened at start-up or the disk
/// is below the free-disk floor (the server serves on; writes that cannot be stored get 503).
async fn healthz(State(state): State<ApiState>) -> impl IntoResponse {
    let video = state.video.clone();
    let disk = tokio::task::spawn_blocking(move || video.disk_status()).await.ok();
    let unavailable = state.video.unavailable();
    let below = disk.as_ref().is_some_and(|d| d.below_floor);
    let status = if unavailable.is_empty() && !below { "ok" } else { "degraded" };
    axum::Json(serde_json::json!({
        "status": status,
        "unavailableStreams": unavailable,
        "disk": disk,
    }))
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    // Data streams with enhanced monitoring add their shard-level series (before the end marker).
    let shards = kinesis::settings::shard_metrics_text(&state.data);
    if !shards.is_empty() {
        match text.rfind("# EOF") {
            Some(at) => text.insert_str(at, &shards),
            None => text.push_str(&shards),
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
}
