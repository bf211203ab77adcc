//! RTSP pull: Sluice connects to cameras and records them, as if they had pushed.
//!
//! A stream's source (`PATCH /v1/streams/{name}` `source`, or `[[sources]]` in the config file)
//! is kept in the catalog table `rtsp_sources`, owned by this module. Each source has one
//! supervisor task ([`session::supervise`]) that connects with retina, feeds the frames to the
//! shared RTP → store path (`ingest::rtp::RtpIngest`, which holds the stream's single-writer
//! lease), and on any failure backs off exponentially with jitter and tries again. Its state
//! (connecting, streaming, backoff with the last error) is shown in the stream's description and
//! in metrics; ProducerConnected / ProducerDisconnected events come from the lease.
//!
//! Credentials never leave this module in clear: see [`source`].

pub mod session;
pub mod source;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::auth::outbound::Outbound;
use crate::auth::seal::Sealer;
use crate::catalog::Catalog;
use crate::catalog::VideoStreamId;
use crate::clock::{SharedClock, Timestamp};
use crate::config::{Config, RtspPullConfig};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::name::StreamName;
use crate::video::tasks::PerStream;
use crate::video::{NewStream, VideoStream, VideoStreams};

pub use source::{PullTransport, SourceBody, SourceConfig, redact};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rtsp_sources (
    stream_id INTEGER PRIMARY KEY,
    url       TEXT NOT NULL,
    transport TEXT NOT NULL,
    username  TEXT,
    password  TEXT
);
";

/// Where a source's supervisor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// Connecting (DESCRIBE/SETUP/PLAY) or waiting for the first frame.
    Connecting,
    /// Frames are flowing into the stream.
    Streaming,
    /// The last attempt failed; waiting before the next.
    Backoff,
}

impl SourceState {
    pub const ALL: [SourceState; 3] =
        [SourceState::Connecting, SourceState::Streaming, SourceState::Backoff];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Connecting => "connecting",
            SourceState::Streaming => "streaming",
            SourceState::Backoff => "backoff",
        }
    }
}

/// A source's live status, shared by its supervisor (writer) and describe (readers).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceStatus {
    pub state: SourceState,
    /// The error that ended the last attempt (credentials redacted), kept while reconnecting.
    pub last_error: Option<String>,
    /// When `state` was entered.
    pub since: Timestamp,
    /// Connection attempts that followed a failure, since the source was set.
    pub reconnects: u64,
}

/// The status cell plus what it reports into. std `Mutex`: short copies, never held across
/// `.await`.
pub struct StatusCell {
    stream: String,
    status: Mutex<SourceStatus>,
    pub(crate) clock: SharedClock,
    metrics: Arc<Metrics>,
}

impl StatusCell {
    fn new(stream: &str, clock: SharedClock, metrics: Arc<Metrics>) -> StatusCell {
        let cell = StatusCell {
            stream: stream.to_owned(),
            status: Mutex::new(SourceStatus {
                state: SourceState::Connecting,
                last_error: None,
                since: clock.now(),
                reconnects: 0,
            }),
            clock,
            metrics,
        };
        cell.metrics.sources.reconnects.get_or_create(&Metrics::stream(stream)).inc_by(0);
        cell.publish(SourceState::Connecting);
        cell
    }

    pub fn get(&self) -> SourceStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Enters `state`; `error` replaces the last error when given.
    pub fn set(&self, state: SourceState, error: Option<String>) {
        {
            let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
            if s.state != state {
                s.since = self.clock.now();
            }
            s.state = state;
            if error.is_some() {
                s.last_error = error;
            }
        }
        self.publish(state);
    }

    pub fn count_reconnect(&self) {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).reconnects += 1;
        self.metrics.sources.reconnects.get_or_create(&Metrics::stream(&self.stream)).inc();
    }

    fn publish(&self, state: SourceState) {
        for s in SourceState::ALL {
            self.metrics.source_state(&self.stream, s.as_str()).set(i64::from(s == state));
        }
    }

    fn forget(&self) {
        self.metrics.forget_source(&self.stream);
    }
}

/// `source` in a stream's description. No credentials: the URL has none, the username is shown,
/// the password only as `passwordSet`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceDescription {
    pub rtsp_url: String,
    pub transport: PullTransport,
    pub username: Option<String>,
    pub password_set: bool,
    #[serde(flatten)]
    pub status: SourceStatus,
}

/// A running source: what it pulls and where its supervisor is.
pub struct Pulled {
    source: SourceConfig,
    status: Arc<StatusCell>,
}

/// Settings every supervisor uses.
#[derive(Debug, Clone)]
pub struct PullSettings {
    pub pull: RtspPullConfig,
    /// LL-HLS part duration for fragments muxed from RTP.
    pub part_duration: Duration,
    /// Where cameras may be (`crate::auth::outbound`), checked at every connection.
    pub outbound: Outbound,
}

/// Every stream's pulled source. One per server.
pub struct PullManager {
    catalog: Arc<Catalog>,
    video: Arc<VideoStreams>,
    metrics: Arc<Metrics>,
    /// Camera passwords are sealed in the catalog (`crate::auth::seal`).
    sealer: Arc<Sealer>,
    settings: PullSettings,
    /// Stream id → its running supervisor.
    running: PerStream<VideoStreamId, Pulled>,
    /// Serialises `set` calls (tokio `Mutex`: held across the old supervisor's shutdown).
    admin: tokio::sync::Mutex<()>,
}

impl PullManager {
    /// Opens the table, applies `[[sources]]` from the config (creating their streams if
    /// missing), and starts a supervisor for every stored source. Needs a tokio runtime.
    pub fn start(
        catalog: Arc<Catalog>,
        video: Arc<VideoStreams>,
        metrics: Arc<Metrics>,
        sealer: Arc<Sealer>,
        config: &Config,
        part_duration: Duration,
    ) -> Result<Arc<PullManager>> {
        catalog.ensure_stream_table(SCHEMA, "rtsp_sources")?;
        let manager = Arc::new(PullManager {
            catalog,
            video,
            metrics,
            sealer,
            settings: PullSettings {
                pull: config.rtsp_pull.clone(),
                part_duration,
                outbound: Outbound::from_config(&config.auth),
            },
            running: PerStream::new(),
            admin: tokio::sync::Mutex::new(()),
        });
        for entry in &config.sources {
            let name = StreamName::new(entry.stream.clone())?;
            let source = SourceConfig::parse(
                &entry.rtsp_url,
                Some(entry.transport.as_str()),
                entry.username.clone(),
                entry.password.clone(),
            )
            .map_err(|e| Error::invalid(format!("[[sources]] stream {name}: {}", e.message)))?;
            let stream = match manager.video.get(&name) {
                Ok(s) => s,
                Err(_) => manager.video.create(
                    NewStream {
                        name: name.clone(),
                        retention_hours: None,
                        retention_bytes: None,
                        media_type: Some("video/h264".to_owned()),
                        tags: Default::default(),
                        device_name: None,
                        kms_key_id: None,
                    },
                    "config",
                )?,
            };
            store(&manager.catalog, &manager.sealer, stream.id, Some(&source))?;
        }
        let rows = manager.load()?;
        let streams = manager.video.all();
        for (id, source) in rows {
            match streams.iter().find(|s| s.id == id) {
                Some(stream) => manager.spawn(stream, source),
                // Written before a stream's rows went with it in one transaction.
                None => store(&manager.catalog, &manager.sealer, id, None)?,
            }
        }
        Ok(manager)
    }

    /// Sets (`Some`) or removes (`None`) a stream's source. A running supervisor is stopped first
    /// (its session flushed and its lease released), then the new one starts. Deleting the stream
    /// removes its source too (the catalog row goes in the stream's transaction; the supervisor
    /// stops with the stream's `closed()` token).
    pub async fn set(&self, stream: &Arc<VideoStream>, source: Option<SourceConfig>) -> Result<()> {
        let _admin = self.admin.lock().await;
        let (catalog, id, stored) = (self.catalog.clone(), stream.id, source.clone());
        let sealer = self.sealer.clone();
        tokio::task::spawn_blocking(move || store(&catalog, &sealer, id, stored.as_ref()))
            .await
            .map_err(|e| Error::internal(format!("catalog task: {e}")))??;
        self.running.remove(&stream.id).await;
        match source {
            Some(source) => {
                tracing::info!(stream = %stream.name, url = %source.url, transport = source.transport.as_str(), "RTSP source set");
                self.spawn(stream, source);
            }
            None => tracing::info!(stream = %stream.name, "RTSP source removed"),
        }
        Ok(())
    }

    /// The stream's source as describe shows it.
    pub fn describe(&self, stream_id: VideoStreamId) -> Option<SourceDescription> {
        self.running.get(&stream_id).map(|p| describe(&p.source, &p.status))
    }

    /// Stops every supervisor (server shutdown): sessions are flushed and leases released.
    pub async fn stop_all(&self) {
        self.running.stop_all().await;
    }

    fn spawn(&self, stream: &Arc<VideoStream>, source: SourceConfig) {
        let status = Arc::new(StatusCell::new(
            stream.name.as_str(),
            self.video.clock().clone(),
            self.metrics.clone(),
        ));
        let pulled = Arc::new(Pulled { source: source.clone(), status: status.clone() });
        let settings = self.settings.clone();
        let s = stream.clone();
        // The supervisor: ends when its source is replaced or removed, the stream is deleted, or
        // the server shuts down (`video::tasks`); its metrics series go with it.
        self.running.insert(stream.id, stream, pulled, move |stop| async move {
            session::supervise(s, source, status.clone(), settings, stop).await;
            status.forget();
        });
    }

    fn load(&self) -> Result<Vec<(VideoStreamId, SourceConfig)>> {
        let rows: Vec<StoredRow> = self.catalog.transaction(|tx| {
            let mut st = tx.prepare(
                "SELECT stream_id, url, transport, username, password FROM rtsp_sources",
            )?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let mut out = Vec::new();
        for (id, url, transport, user, pass) in rows {
            // Rows from before sealing hold the password in plain text: sealed now.
            let (pass, plain) = match pass {
                Some(p) if Sealer::is_sealed(&p) => match self.sealer.open(&p) {
                    Ok(p) => (Some(p), false),
                    Err(e) => {
                        tracing::error!(stream_id = %id, error = %e, "stored RTSP source's password cannot be opened; skipped");
                        continue;
                    }
                },
                Some(p) => (Some(p), true),
                None => (None, false),
            };
            match SourceConfig::parse(&url, Some(&transport), user, pass) {
                Ok(s) => {
                    if plain {
                        store(&self.catalog, &self.sealer, id, Some(&s))?;
                        tracing::info!(stream_id = %id, "RTSP source's password sealed in the catalog");
                    }
                    out.push((id, s))
                }
                Err(e) => {
                    tracing::error!(stream_id = %id, error = %e, "stored RTSP source is invalid; skipped")
                }
            }
        }
        Ok(out)
    }
}

/// A `rtsp_sources` row: stream id, URL, transport, username, password.
type StoredRow = (VideoStreamId, String, String, Option<String>, Option<String>);

fn describe(source: &SourceConfig, status: &StatusCell) -> SourceDescription {
    SourceDescription {
        rtsp_url: source.url.to_string(),
        transport: source.transport,
        username: source.username.clone(),
        password_set: source.password.is_some(),
        status: status.get(),
    }
}

/// Writes (`Some`, the password sealed) or deletes (`None`) a stream's `rtsp_sources` row.
fn store(
    catalog: &Catalog,
    sealer: &Sealer,
    stream_id: VideoStreamId,
    source: Option<&SourceConfig>,
) -> Result<()> {
    let sealed = source.and_then(|s| s.password.as_deref()).map(|p| sealer.seal(p));
    catalog.transaction(|tx| {
        match source {
            Some(s) => tx.execute(
                "INSERT INTO rtsp_sources (stream_id, url, transport, username, password)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(stream_id) DO UPDATE SET url = excluded.url,
                   transport = excluded.transport, username = excluded.username,
                   password = excluded.password",
                rusqlite::params![
                    stream_id,
                    s.url.as_str(),
                    s.transport.as_str(),
                    s.username,
                    sealed
                ],
            )?,
            None => tx.execute("DELETE FROM rtsp_sources WHERE stream_id = ?1", [stream_id])?,
        };
        Ok(())
    })
}
