//! Sluice's configuration: a strict TOML file (an unknown key is an error naming its path), then
//! the command line and `SLUICE_*` environment variables on top. Every field documents its unit
//! and default here and in `docs/config.md`; `sluice.example.toml` shows them all.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod auth;
mod server;
mod services;
#[cfg(test)]
mod tests;
mod units;
mod video;

pub use auth::*;
pub use server::*;
pub use services::*;
pub use video::*;

use crate::log::{LogConfig, SyncPolicy};

/// Longest retention a video stream may have, in hours (10 years, as Kinesis Video Streams).
/// Data streams have their own, shorter limit (`datastream::MAX_RETENTION_HOURS`, 365 days, as
/// Kinesis Data Streams).
pub const MAX_VIDEO_RETENTION_HOURS: u32 = 87_600;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub ingest: IngestConfig,
    pub hls: HlsConfig,
    pub streams: StreamDefaults,
    pub data_streams: DataStreamsConfig,
    pub events: EventsConfig,
    pub frames: FramesConfig,
    pub image_generation: ImageGenerationConfig,
    pub rtsp_pull: RtspPullConfig,
    /// Cameras pulled over RTSP (`[[sources]]`), applied at start-up.
    pub sources: Vec<SourceEntry>,
    pub webrtc: WebRtcConfig,
    pub rtsp: RtspConfig,
    pub auth: AuthConfig,
    pub object_store: ObjectStoreConfig,
    pub tiering: TieringConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: at `{key}`: {message}")]
    Invalid { path: PathBuf, key: String, message: String },
    #[error("config: `{key}`: {message}")]
    Value { key: &'static str, message: String },
}

impl Config {
    /// Parses TOML strictly: an unknown key or a wrongly typed value is an error that names the
    /// key's path (`storage.segment_max_bytes`).
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            key: String::from("(syntax)"),
            message: e.to_string(),
        })?;
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let message = e.into_inner().message().to_owned();
            ConfigError::Invalid { path: path.to_owned(), key, message }
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::from_toml(&text, path)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, message: &str| Err(ConfigError::Value { key, message: message.to_owned() });
        if self.rtsp.udp_ports[0] > self.rtsp.udp_ports[1] || self.rtsp.udp_ports[1] == u16::MAX {
            return bad("rtsp.udp_ports", "must be [first, last] with first <= last < 65535");
        }
        if self.server.header_read_timeout_secs.is_zero()
            || self.server.body_progress_timeout_secs.is_zero()
        {
            return bad(
                "server.header_read_timeout_secs",
                "header_read_timeout_secs and body_progress_timeout_secs must be at least 1",
            );
        }
        if self.server.max_connections == 0 || self.server.max_connections_per_ip == 0 {
            return bad(
                "server.max_connections",
                "max_connections and max_connections_per_ip must be at least 1",
            );
        }
        if let Some(u) = &self.server.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return bad("server.public_url", "must be an http:// or https:// URL");
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return bad("server.tls_cert", "tls_cert and tls_key go together");
        }
        let memory = self.server.memory_limit_bytes;
        if memory != 0 {
            if memory < 32 * 1024 * 1024 {
                return bad("server.memory_limit_bytes", "must be 0 (no limit) or at least 32 MiB");
            }
            if self.hls.segment_cache_bytes > memory / 2 {
                return bad(
                    "hls.segment_cache_bytes",
                    "must be at most half of server.memory_limit_bytes (lower one or raise the other)",
                );
            }
            if self.ingest.max_fragment_bytes > (memory - self.hls.segment_cache_bytes) as u64 {
                return bad(
                    "ingest.max_fragment_bytes",
                    "must fit in server.memory_limit_bytes beside hls.segment_cache_bytes, or no fragment of that size could be received",
                );
            }
        }
        if self.rtsp.session_timeout_secs.is_zero() {
            return bad("rtsp.session_timeout_secs", "must be at least 1");
        }
        if self.ingest.part_duration_ms.is_zero()
            || self.ingest.part_duration_ms > Duration::from_secs(10)
        {
            return bad("ingest.part_duration_ms", "must be between 1 and 10000");
        }
        if self.storage.segment_max_bytes < 4096 {
            return bad("storage.segment_max_bytes", "must be at least 4096");
        }
        if self.storage.segment_max_age_secs.is_zero() {
            return bad("storage.segment_max_age_secs", "must be at least 1");
        }
        if self.storage.sync == SyncMode::Interval && self.storage.sync_interval_ms.is_zero() {
            return bad("storage.sync_interval_ms", "must be at least 1 with sync = \"interval\"");
        }
        if self.tiering.enabled {
            let t = &self.tiering;
            let bucket_ok = (3..=63).contains(&t.bucket.len())
                && t.bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                });
            if !bucket_ok {
                return bad(
                    "tiering.bucket",
                    "must be an S3 bucket name (3-63 of a-z, 0-9, '.', '-')",
                );
            }
            if t.local_retention_hours.is_some_and(|h| !(h >= 0.0 && h.is_finite())) {
                return bad("tiering.local_retention_hours", "must be 0 or more");
            }
            if t.interval_secs.is_zero() {
                return bad("tiering.interval_secs", "must be at least 1");
            }
        }
        if self.storage.retention_interval_secs.is_zero() {
            return bad("storage.retention_interval_secs", "must be at least 1");
        }
        if self.ingest.max_fragment_bytes < 1024 {
            return bad("ingest.max_fragment_bytes", "must be at least 1024");
        }
        if self.ingest.max_fragment_duration_ms.is_zero() {
            return bad("ingest.max_fragment_duration_ms", "must be at least 1");
        }
        if self.ingest.ack_queue == 0 {
            return bad("ingest.ack_queue", "must be at least 1");
        }
        if self.hls.live_window_segments == 0 {
            return bad("hls.live_window_segments", "must be at least 1");
        }
        if self.hls.low_latency_window_segments == 0 {
            return bad("hls.low_latency_window_segments", "must be at least 1");
        }
        if !(self.hls.part_hold_back_multiplier >= 3.0
            && self.hls.part_hold_back_multiplier <= 100.0)
        {
            return bad("hls.part_hold_back_multiplier", "must be between 3 and 100");
        }
        if self.hls.blocking_timeout_ms.is_zero() {
            return bad("hls.blocking_timeout_ms", "must be at least 1");
        }
        self.image_generation.validate()?;
        if self.frames.queue_depth == 0 {
            return bad("frames.queue_depth", "must be at least 1");
        }
        if !(1..=100).contains(&self.frames.default_quality) {
            return bad("frames.default_quality", "must be between 1 and 100");
        }
        if !(1..=1000).contains(&self.frames.default_page_size) {
            return bad("frames.default_page_size", "must be between 1 and 1000");
        }
        if self.streams.default_retention_hours > MAX_VIDEO_RETENTION_HOURS {
            return bad("streams.default_retention_hours", "must be at most 87600");
        }
        let ds = &self.data_streams;
        if ds.region.is_empty()
            || !ds.region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad("data_streams.region", "must be letters, digits and '-'");
        }
        if ds.account_id.len() != 12 || !ds.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return bad("data_streams.account_id", "must be 12 digits");
        }
        if !(1..=24).contains(&ds.min_retention_hours) {
            return bad("data_streams.min_retention_hours", "must be between 1 and 24");
        }
        if ds.shard_limit == 0 {
            return bad("data_streams.shard_limit", "must be at least 1");
        }
        for (key, name, shards) in [
            ("events.events_stream", &self.events.events_stream, self.events.events_shards),
            ("events.metadata_stream", &self.events.metadata_stream, self.events.metadata_shards),
        ] {
            if let Err(e) = crate::name::DataStreamName::new(name.as_str()) {
                return bad(key, &e.to_string());
            }
            if !(1..=64).contains(&shards) {
                return bad(key, "its shard count must be between 1 and 64");
            }
        }
        if self.rtsp_pull.backoff_initial_ms.is_zero()
            || self.rtsp_pull.backoff_max_ms < self.rtsp_pull.backoff_initial_ms
        {
            return bad(
                "rtsp_pull.backoff_max_ms",
                "backoff_initial_ms must be at least 1 and backoff_max_ms at least backoff_initial_ms",
            );
        }
        if self.rtsp_pull.connect_timeout_secs.is_zero()
            || self.rtsp_pull.stall_timeout_secs.is_zero()
        {
            return bad("rtsp_pull.stall_timeout_secs", "timeouts must be at least 1 second");
        }
        for a in &self.webrtc.udp_addrs {
            if a.parse::<SocketAddr>().is_err() {
                return bad("webrtc.udp_addrs", "each entry must be ip:port (port 0: any)");
            }
        }
        if self.webrtc.udp_port_min > self.webrtc.udp_port_max {
            return bad("webrtc.udp_port_min", "must not exceed webrtc.udp_port_max");
        }
        if self.webrtc.pli_interval_ms.is_zero() || self.webrtc.connect_timeout_secs.is_zero() {
            return bad(
                "webrtc.pli_interval_ms",
                "pli_interval_ms and connect_timeout_secs must be at least 1",
            );
        }
        if self.webrtc.ice_disconnected_timeout_secs.is_zero()
            || self.webrtc.ice_failed_timeout_secs.is_zero()
        {
            return bad("webrtc.ice_failed_timeout_secs", "ICE timeouts must be at least 1 second");
        }
        if self.webrtc.max_sessions == 0 {
            return bad("webrtc.max_sessions", "must be at least 1");
        }
        if self.events.events_stream == self.events.metadata_stream {
            return bad("events.metadata_stream", "must differ from events.events_stream");
        }
        if ds.subscription_secs.is_zero() {
            return bad("data_streams.subscription_secs", "must be at least 1");
        }
        if !(1..=1000).contains(&ds.on_demand_shard_count) {
            return bad("data_streams.on_demand_shard_count", "must be between 1 and 1000");
        }
        if ds.on_demand_max_shards < ds.on_demand_shard_count {
            return bad(
                "data_streams.on_demand_max_shards",
                "must be at least data_streams.on_demand_shard_count",
            );
        }
        if ds.on_demand_scale_secs.is_zero() {
            return bad("data_streams.on_demand_scale_secs", "must be at least 1");
        }
        for (key, v) in [
            ("data_streams.write_bytes_per_sec", ds.write_bytes_per_sec),
            ("data_streams.write_records_per_sec", ds.write_records_per_sec),
            ("data_streams.read_bytes_per_sec", ds.read_bytes_per_sec),
            ("data_streams.read_calls_per_sec", ds.read_calls_per_sec),
        ] {
            if v == 0 {
                return bad(
                    key,
                    "must be at least 1 (turn limits off with throughput_limits = false)",
                );
            }
        }
        Ok(())
    }

    /// The storage engine settings every video stream's log uses.
    /// The WebRTC media addresses in force: `[webrtc] udp_addrs`, or when empty the HTTP
    /// listener's address (any port), so media binds no wider than the API does.
    pub fn webrtc_udp_addrs(&self) -> Vec<String> {
        if self.webrtc.udp_addrs.is_empty() {
            vec![SocketAddr::new(self.server.listen.ip(), 0).to_string()]
        } else {
            self.webrtc.udp_addrs.clone()
        }
    }

    pub fn log_config(&self) -> LogConfig {
        let sync = match self.storage.sync {
            SyncMode::Always => SyncPolicy::Always,
            SyncMode::Interval => SyncPolicy::Interval(self.storage.sync_interval_ms),
            SyncMode::Never => SyncPolicy::Never,
        };
        LogConfig {
            segment_max_bytes: self.storage.segment_max_bytes,
            segment_max_age: self.storage.segment_max_age_secs,
            sync,
            before_sync: self.storage.before_sync.clone(),
            spare_segment: true,
            tier: self.storage.tier.clone(),
        }
    }
}
