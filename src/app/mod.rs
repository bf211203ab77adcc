//! Wiring: opens the catalog and the streams from a `Config`, builds the router, runs the server
//! and its background tasks, and shuts down in order: producers are told first, open requests get
//! a grace period, then every log is synced. The HTTP server loop, with its timeouts and
//! connection limits, is [`http`].

pub mod http;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::catalog::Catalog;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::datastream::DataStreams;
use crate::error::{Error, Result};
use crate::events::sink::{DataStreamWriter, QueueSink};
use crate::events::store::MetadataStore;
use crate::memory::{self, MemoryBudget};
use crate::metrics::Metrics;
use crate::name::{DataStreamName, StreamName};
use crate::services::Services;
use crate::video::VideoStreams;

/// A built server, ready to [`run`].
pub struct Server {
    /// What every surface serves from.
    pub services: Arc<Services>,
    /// The RTSP publish listener's address, when `[rtsp] enabled`.
    pub rtsp_addr: Option<SocketAddr>,
    background: Background,
}

/// Opens everything the server needs under `config.server.data_dir`. `shutdown` ends long-lived
/// requests and background tasks when cancelled.
pub fn build(
    mut config: Config,
    clock: SharedClock,
    shutdown: CancellationToken,
) -> Result<Server> {
    // Listeners first: a port that is taken is reported as such, before any store is opened.
    // RTSP publish is bound here so its address (port 0 in tests) is known before `run` serves it.
    let rtsp = if config.rtsp.enabled {
        Some(crate::ingest::rtsp::RtspListener::bind(&config.rtsp).map_err(|e| {
            crate::error::Error::unavailable(format!(
                "cannot listen for RTSP publish on {}: {e} (set [rtsp] listen, --rtsp-listen or \
                 SLUICE_RTSP_LISTEN, or [rtsp] enabled = false)",
                config.rtsp.listen
            ))
            .with_source(e)
        })?)
    } else {
        None
    };
    let data_dir = &config.server.data_dir.clone();
    let in_data_dir = |e: crate::error::Error| {
        let message = format!("cannot open the data directory {}: {}", data_dir.display(), e);
        crate::error::Error::new(e.kind, message).with_source(e)
    };
    // Everything Sluice creates is private to its user (the catalog holds hashes and sealed
    // secrets; media is the operator's), and a data directory from an older version is tightened.
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
    std::fs::create_dir_all(data_dir).map_err(|e| in_data_dir(e.into()))?;
    make_private(data_dir);
    let catalog = Arc::new(Catalog::open(&data_dir.join("catalog.sqlite")).map_err(in_data_dir)?);
    let metrics = Arc::new(Metrics::new());
    let sealer =
        Arc::new(crate::auth::seal::Sealer::load_or_create(data_dir).map_err(in_data_dir)?);
    let auth = Arc::new(crate::auth::Auth::open(
        &config.auth,
        catalog.clone(),
        sealer.clone(),
        clock.clone(),
    )?);
    let buckets =
        Arc::new(crate::buckets::Buckets::new(&config.object_store, &config.server.data_dir));
    tracing::info!(buckets = %buckets.describe(), "object store");
    // The object tier, before any log opens: logs with segments in the bucket read them there.
    config.storage.tier =
        crate::tiering::target(&config.tiering, &buckets, &config.server.data_dir)
            .map_err(|e| Error::invalid(format!("[tiering]: {e}")))?;
    let limit = Some(config.server.memory_limit_bytes).filter(|&l| l != 0);
    let memory = MemoryBudget::new(limit, metrics.clone());
    // The segment cache stays full by design: its bytes are held for the process's life.
    let segment_cache_memory = memory
        .reserve(memory::Part::SegmentCache, config.hls.segment_cache_bytes)
        .map_err(|e| Error::invalid(format!("hls.segment_cache_bytes: {e}")))?;
    let data = Arc::new(
        DataStreams::open(catalog.clone(), &config, clock.clone(), memory.clone())
            .map_err(|e| in_data_dir(e.into()))?,
    );
    let video = Arc::new(
        VideoStreams::open(catalog.clone(), &config, clock, metrics.clone(), shutdown.clone())
            .map_err(in_data_dir)?,
    );
    if let Some(a) = video.disk_status().available_bytes {
        metrics.disk_available_bytes.set(i64::try_from(a).unwrap_or(i64::MAX));
    }

    // Lifecycle events: the video layer emits into a queue drained into the events stream.
    let events_stream = DataStreamName::new(config.events.events_stream.clone())?.as_name().clone();
    data.ensure_stream(&events_stream, config.events.events_shards)?;
    let writer = Arc::new(DataStreamWriter { data: data.clone(), stream: events_stream });
    let events_stop = CancellationToken::new();
    let (sink, events_task) = QueueSink::start(writer, metrics.clone(), events_stop.clone());
    video.events().set_sink(sink);
    // RTSP pull: after the event sink, so the sources' ProducerConnected events are written.
    let pulls = crate::ingest::pull::PullManager::start(
        catalog.clone(),
        video.clone(),
        metrics.clone(),
        sealer.clone(),
        &config,
        config.ingest.part_duration_ms,
    )?;
    let whip = crate::ingest::whip::WhipSessions::new(
        crate::config::WebRtcConfig {
            udp_addrs: config.webrtc_udp_addrs(),
            ..config.webrtc.clone()
        },
        metrics.clone(),
        video.clock().clone(),
        config.ingest.part_duration_ms,
    );

    let metadata_stream =
        DataStreamName::new(config.events.metadata_stream.clone())?.as_name().clone();
    let lookup = video.clone();
    let metadata = Arc::new(MetadataStore::open(
        catalog.clone(),
        data.clone(),
        metadata_stream,
        config.events.metadata_shards,
        move |name| StreamName::new(name).ok().and_then(|n| lookup.get(&n).ok()).map(|s| s.id),
    )?);
    let frames = crate::frames::Frames::new(&config.frames, metrics.clone())?;
    // Image generation follows the streams' logs and asks the decode service for images.
    let imagegen = crate::imagegen::ImageGeneration::open(
        catalog.clone(),
        video.clone(),
        Arc::new(crate::imagegen::source::FramesSource(frames.clone())),
        metrics.clone(),
        &config.image_generation,
        crate::auth::outbound::Outbound::from_config(&config.auth),
    )?;
    imagegen.start()?;
    let firehose = crate::firehose::Firehose::open(
        catalog.clone(),
        data.clone(),
        buckets,
        video.clock().clone(),
        metrics.clone(),
        crate::firehose::http::HttpSender::new(
            crate::auth::outbound::Outbound::from_config(&config.auth),
            sealer.clone(),
            video.clock().clone(),
        ),
        &config.data_streams,
    )?;
    firehose.start()?;
    let notifications = crate::notify::Notifications::open(
        catalog.clone(),
        &video,
        imagegen.webhook().clone(),
        metrics.clone(),
        &config.data_streams,
    )?;
    let rtsp_addr = rtsp.as_ref().map(|l| l.local_addr());
    let tls = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => Some(tls::Tls::open(cert, key)?),
        _ => None,
    };
    let background = Background { events_stop, events_task, rtsp, tls };
    let services = Arc::new(Services {
        config: Arc::new(config),
        video,
        metrics,
        data,
        metadata,
        frames,
        imagegen,
        firehose,
        notifications,
        pulls,
        whip,
        auth,
        memory,
        segment_cache_memory,
        shutdown,
    });
    Ok(Server { services, rtsp_addr, background })
}

/// Tightens the data directory to 0700 and the catalog's files to 0600 (best effort: a directory
/// the operator shares on purpose through a parent's permissions keeps working).
fn make_private(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let set = |p: &std::path::Path, mode: u32| {
        if let Err(e) = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %p.display(), error = %e, "cannot make private");
        }
    };
    set(dir, 0o700);
    for f in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", "secret.key"] {
        set(&dir.join(f), 0o600);
    }
}

/// Background work that outlives request handling and must finish before the final sync.
struct Background {
    /// Cancelled after the server has drained, so the events of sessions that shutdown ended
    /// (ProducerDisconnected) are still written.
    events_stop: CancellationToken,
    events_task: tokio::task::JoinHandle<()>,
    /// The bound RTSP publish listener, served by `run`.
    rtsp: Option<crate::ingest::rtsp::RtspListener>,
    /// The listener's certificate, when `[server] tls_cert` is set.
    tls: Option<Arc<tls::Tls>>,
}

/// The whole HTTP surface.
pub fn router(state: ApiState) -> Router {
    api::router(state.clone()).merge(crate::web::routes())
}

/// Serves on `listener` until `services.shutdown` is cancelled, then drains and syncs.
pub async fn run(listener: TcpListener, server: Server) -> Result<()> {
    let Server { services: state, background, .. } = server;
    let retention = tokio::spawn(retention_loop(state.clone()));
    // Ends with the shutdown; an upload in flight finishes on its thread, and a segment cut
    // short is uploaded again after the restart.
    tokio::spawn(tiering_loop(state.clone()));
    let housekeeping = tokio::spawn(data_streams_loop(state.clone()));
    // RTSP publish: ends at shutdown after its sessions have flushed and released their streams.
    let rtsp = background.rtsp.map(|l| {
        let ctx = Arc::new(crate::ingest::rtsp::RtspContext {
            video: state.video.clone(),
            auth: state.auth.clone(),
            metrics: state.metrics.clone(),
            clock: state.video.clock().clone(),
            config: state.config.rtsp.clone(),
            part_duration: state.config.ingest.part_duration_ms,
            ports: crate::ingest::rtsp::UdpPorts::new(state.config.rtsp.udp_ports),
            shutdown: state.shutdown.clone(),
        });
        tokio::spawn(l.serve(ctx))
    });
    let shutdown = state.shutdown.clone();
    let grace = state.config.server.shutdown_grace_secs;
    // Certificate reloads (SIGHUP, changed files) until shutdown.
    let tls = background.tls.clone();
    if let Some(t) = &tls {
        tokio::spawn(t.clone().watch(shutdown.clone()));
    }
    let serve = http::serve(
        listener,
        router(state.clone()),
        &state.config.server,
        state.metrics.clone(),
        tls,
        shutdown.clone(),
    );
    tokio::select! {
        () = serve => {},
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!("shutdown grace period over; closing the remaining connections");
        }
    }
    retention.abort();
    housekeeping.abort();
    if let Some(rtsp) = rtsp {
        let _ = rtsp.await;
    }
    // Pulled sources flush and release their streams (ProducerDisconnected) before events stop.
    state.pulls.stop_all().await;
    state.whip.stop_all().await;
    // Generators save their cursors; their last ImageGenerated events are queued before events stop.
    state.imagegen.stop().await;
    // Delivery streams deliver what they have buffered (bounded: a destination that is down keeps
    // it in the source log for the next start).
    state.firehose.stop(std::time::Duration::from_secs(10)).await;
    // The event writer drains its queue last, so the events of everything above are written.
    background.events_stop.cancel();
    let _ = background.events_task.await;
    let video = state.video.clone();
    let _ = tokio::task::spawn_blocking(move || video.sync_all()).await;
    let data = state.data.clone();
    let _ = tokio::task::spawn_blocking(move || data.sync_all()).await;
    tracing::info!("stopped");
    Ok(())
}

/// The data streams' housekeeping, once a second: the on-demand scaler (each ON_DEMAND stream
/// is looked at when its window, `data_streams.on_demand_scale_secs` on the server's clock, has
/// run) and the end of `DELETING` streams. Splits sync and write the catalog, so the pass runs
/// on a blocking thread.
async fn data_streams_loop(state: ApiState) {
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
        let data = state.data.clone();
        let pass = move || {
            data.autoscale();
            data.finish_deletions();
        };
        if let Err(e) = tokio::task::spawn_blocking(pass).await {
            tracing::error!(error = %e, "on-demand scaling task failed");
        }
    }
}

/// With `[tiering]` on, an object-tier pass every `tiering.interval_secs` until shutdown: video
/// streams' and data streams' sealed segments uploaded, then evicted from local disk. Uploads run
/// on a blocking thread, apart from retention and from ingest.
async fn tiering_loop(state: ApiState) {
    let t = &state.config.tiering;
    if !t.enabled {
        return;
    }
    let policy = crate::tiering::policy(t);
    let every = t.interval_secs;
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let (video, data, p) = (state.video.clone(), state.data.clone(), policy.clone());
        let pass = tokio::task::spawn_blocking(move || {
            let mut r = video.tier_pass(&p);
            let p = crate::log::tier::TierPolicy { uploads: r.error.is_none(), ..p };
            r.add(data.tier_pass(&p));
            r
        });
        let r = match pass.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "tier pass task failed");
                continue;
            }
        };
        let m = &state.metrics.tier;
        m.uploaded_segments.inc_by(r.uploaded);
        m.uploaded_bytes.inc_by(r.uploaded_bytes);
        m.evicted_segments.inc_by(r.evicted);
        m.evicted_bytes.inc_by(r.evicted_bytes);
        m.pending_segments.set(i64::try_from(r.pending).unwrap_or(i64::MAX));
        m.oldest_pending_seconds.set(r.oldest_pending.map_or(0, |d| d.as_secs() as i64));
        if let Some(e) = &r.error {
            m.failures.inc();
            tracing::warn!(error = %e, pending = r.pending, "object tier: an upload failed; retrying on the next pass");
        }
        if r.uploaded + r.evicted > 0 {
            tracing::info!(
                uploaded = r.uploaded,
                uploaded_bytes = r.uploaded_bytes,
                evicted = r.evicted,
                "object tier pass"
            );
        }
    }
}

/// Runs a retention pass every `storage.retention_interval_secs` until shutdown. Deletion is
/// file I/O, so it runs on a blocking thread.
async fn retention_loop(state: ApiState) {
    let every = state.config.storage.retention_interval_secs;
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        // The disk, as metrics show it, then the free-disk floor: it is what keeps recording
        // going on a full disk.
        let video = state.video.clone();
        if let Ok(disk) = tokio::task::spawn_blocking(move || video.disk_status()).await
            && let Some(a) = disk.available_bytes
        {
            state.metrics.disk_available_bytes.set(i64::try_from(a).unwrap_or(i64::MAX));
        }
        let video = state.video.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || video.enforce_disk_floor()).await {
            tracing::error!(error = %e, "free-disk floor task failed");
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
        let data = state.data.clone();
        match tokio::task::spawn_blocking(move || data.enforce_retention()).await {
            Ok(deleted) => {
                for d in deleted {
                    match d.range {
                        Some(r) => tracing::info!(
                            stream = %d.stream,
                            shard = %d.shard_id,
                            records = r.records,
                            bytes = r.bytes,
                            first = r.first.offset.0,
                            last = r.last.offset.0,
                            "retention deleted data records"
                        ),
                        None => tracing::info!(
                            stream = %d.stream,
                            shard = %d.shard_id,
                            "retention removed an expired closed shard"
                        ),
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "data stream retention task failed"),
        }
        let ids: Vec<_> = state.video.all().iter().map(|s| s.id).collect();
        let metadata = state.metadata.clone();
        match tokio::task::spawn_blocking(move || metadata.purge(&ids)).await {
            Ok(Ok(n)) if n > 0 => {
                tracing::info!(rows = n, "metadata index rows of deleted data purged")
            }
            Ok(Err(e)) => tracing::error!(error = %e, "metadata index purge failed"),
            _ => {}
        }
    }
}
