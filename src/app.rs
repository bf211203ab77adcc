//! Wiring: opens the catalog and the streams from a `Config`, builds the router, runs the server
//! and its background tasks, and shuts down in order: producers are told first, open requests get
//! a grace period, then every log is synced.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::catalog::Catalog;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::video::VideoStreams;

/// Opens everything the server needs under `config.server.data_dir`. `shutdown` ends long-lived
/// requests and background tasks when cancelled.
pub fn build(config: Config, clock: SharedClock, shutdown: CancellationToken) -> Result<ApiState> {
    let data_dir = &config.server.data_dir;
    std::fs::create_dir_all(data_dir)?;
    let catalog = Arc::new(Catalog::open(&data_dir.join("catalog.sqlite"))?);
    let metrics = Arc::new(Metrics::new());
    let video =
        Arc::new(VideoStreams::open(catalog, &config, clock, metrics.clone(), shutdown.clone())?);
    Ok(ApiState { config: Arc::new(config), video, metrics, shutdown })
}

/// The whole HTTP surface.
pub fn router(state: ApiState) -> Router {
    api::router(state.clone()).merge(crate::web::routes())
}

/// Serves on `listener` until `state.shutdown` is cancelled, then drains and syncs.
pub async fn run(listener: TcpListener, state: ApiState) -> Result<()> {
    let retention = tokio::spawn(retention_loop(state.clone()));
    let shutdown = state.shutdown.clone();
    let grace = Duration::from_secs(state.config.server.shutdown_grace_secs);
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let serve =
        axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    tokio::select! {
        r = serve => r?,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!("shutdown grace period over; closing the remaining connections");
        }
    }
    retention.abort();
    let video = state.video.clone();
    let _ = tokio::task::spawn_blocking(move || video.sync_all()).await;
    tracing::info!("stopped");
    Ok(())
}

/// Runs a retention pass every `storage.retention_interval_secs` until shutdown. Deletion is
/// file I/O, so it runs on a blocking thread.
async fn retention_loop(state: ApiState) {
    let every = Duration::from_secs(state.config.storage.retention_interval_secs);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let video = state.video.clone();
        match tokio::task::spawn_blocking(move || video.enforce_retention()).await {
            Ok(deleted) => {
                for (stream, d) in deleted {
                    tracing::info!(
                        %stream,
                        fragments = d.records,
                        bytes = d.bytes,
                        first = d.first.offset.0,
                        last = d.last.offset.0,
                        "retention deleted fragments"
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "retention task failed"),
        }
    }
}
