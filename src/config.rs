//! Sluice's configuration: a strict TOML file (an unknown key is an error naming its path), then
//! the command line and `SLUICE_*` environment variables on top. Every field documents its unit
//! and default here and in `docs/config.md`; `sluice.example.toml` shows them all.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::log::{LogConfig, SyncPolicy};

/// Longest retention a video stream may have, in hours (10 years).
pub const MAX_RETENTION_HOURS: u32 = 87_600;

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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the HTTP listener (API, HLS, web UI). Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Directory holding the catalog and every stream's log. Default `./data`.
    pub data_dir: PathBuf,
    /// How long shutdown waits for open requests to finish, in seconds. Default 10.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Acknowledge only after fdatasync; concurrent appends share one sync (group commit).
    Always,
    /// Sync every `sync_interval_ms`; acknowledge after the write.
    Interval,
    /// Never sync explicitly (the OS writes back); acknowledge after the write.
    Never,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Durability policy: `always` (default), `interval` or `never`.
    pub sync: SyncMode,
    /// Sync period for `sync = "interval"`, in milliseconds. Default 200.
    pub sync_interval_ms: u64,
    /// A log segment file is sealed and a new one started at this size, in bytes. Default 256 MiB.
    pub segment_max_bytes: u64,
    /// ... or when its first record is this old, in seconds. Default 3600. Retention deletes whole
    /// segments, so this is also the granularity of age-based retention.
    pub segment_max_age_secs: u64,
    /// How often the background retention pass runs, in seconds. Default 30.
    pub retention_interval_secs: u64,
    /// The free-disk floor, in bytes: while the data directory's filesystem has less available,
    /// each retention pass deletes the oldest video (whole log segments, oldest first across all
    /// video streams, never a stream's newest segment) ahead of retention, so recording goes on.
    /// Data streams keep their own retention. 0 disables it. Default 1 GiB.
    pub min_free_bytes: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Largest fragment (moof+mdat) accepted, in bytes. Default 50 MB (Kinesis error 4001 above).
    pub max_fragment_bytes: u64,
    /// Longest fragment accepted, in milliseconds. Default 20000 (Kinesis error 4002 above).
    pub max_fragment_duration_ms: u64,
    /// Largest init segment (ftyp+moov) accepted, in bytes. Default 1 MiB.
    pub max_init_bytes: u64,
    /// An IDLE acknowledgement is sent after this long without bytes from the producer, in
    /// milliseconds. Default 3000.
    pub idle_ack_interval_ms: u64,
    /// Acknowledgements queued for a producer that does not read them; beyond this, BUFFERING,
    /// RECEIVED and IDLE acks are dropped (never PERSISTED or ERROR, and never blocking ingest).
    /// Default 4096.
    pub ack_queue: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HlsConfig {
    /// Segments in the live playlist's sliding window. Default 5.
    pub live_window_segments: usize,
    /// How long a live playlist request for a stream with no media yet waits before answering with
    /// an empty playlist, in seconds. Default 10.
    pub idle_wait_secs: u64,
    /// A gap between fragments larger than this counts as a discontinuity (`discontinuity=on_gap`),
    /// in milliseconds. Default 50.
    pub gap_threshold_ms: u64,
    /// Memory for recently served segments, shared by all streams, in bytes (0 disables it).
    /// Default 64 MiB.
    pub segment_cache_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamDefaults {
    /// Retention of a stream created without `retentionHours`, in hours. Default 24.
    pub default_retention_hours: u32,
}

/// Where events go (`[events]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Data stream for Sluice's lifecycle events, created at start-up if missing. Default
    /// `sluice-events`.
    pub events_stream: String,
    /// Its shard count when created. Default 1.
    pub events_shards: u32,
    /// Data stream for producers' metadata (`POST /v1/streams/{name}/events`), created at
    /// start-up if missing. Default `sluice-metadata`.
    pub metadata_stream: String,
    /// Its shard count when created. Default 1.
    pub metadata_shards: u32,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            events_stream: String::from("sluice-events"),
            events_shards: 1,
            metadata_stream: String::from("sluice-metadata"),
            metadata_shards: 1,
        }
    }
}

/// The Kinesis-compatible data streams (`[data_streams]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataStreamsConfig {
    /// Region named in stream and consumer ARNs. Default `us-east-1`.
    pub region: String,
    /// 12-digit account id named in ARNs. Default `000000000000`.
    pub account_id: String,
    /// Shortest retention `DecreaseStreamRetentionPeriod` accepts, in hours (1–24). Default 24
    /// (Kinesis's minimum); lower it for tests.
    pub min_retention_hours: u32,
    /// Most open shards across all data streams (DescribeLimits `ShardLimit`). Default 500.
    pub shard_limit: u32,
    /// Most on-demand streams. Default 50.
    pub on_demand_stream_limit: u32,
    /// Shards of a stream created in ON_DEMAND mode. Default 4.
    pub on_demand_shard_count: u32,
    /// Enforce the per-shard throughput limits below (provisioned streams for writes, every
    /// stream for reads). Default true.
    pub throughput_limits: bool,
    /// Per-shard write limit, in bytes of data + partition key per second. Default 1048576.
    pub write_bytes_per_sec: u64,
    /// Per-shard write limit, in records per second. Default 1000.
    pub write_records_per_sec: u64,
    /// Per-shard read limit, in bytes per second. Default 2097152.
    pub read_bytes_per_sec: u64,
    /// Per-shard read limit, in GetRecords calls per second. Default 5.
    pub read_calls_per_sec: u64,
}

impl Default for DataStreamsConfig {
    fn default() -> Self {
        DataStreamsConfig {
            region: String::from("us-east-1"),
            account_id: String::from("000000000000"),
            min_retention_hours: 24,
            shard_limit: 500,
            on_demand_stream_limit: 50,
            on_demand_shard_count: 4,
            throughput_limits: true,
            write_bytes_per_sec: 1024 * 1024,
            write_records_per_sec: 1000,
            read_bytes_per_sec: 2 * 1024 * 1024,
            read_calls_per_sec: 5,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            shutdown_grace_secs: 10,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            sync: SyncMode::Always,
            sync_interval_ms: 200,
            segment_max_bytes: 256 * 1024 * 1024,
            segment_max_age_secs: 3600,
            retention_interval_secs: 30,
            min_free_bytes: 1024 * 1024 * 1024,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_fragment_bytes: 50_000_000,
            max_fragment_duration_ms: 20_000,
            max_init_bytes: 1024 * 1024,
            idle_ack_interval_ms: 3000,
            ack_queue: 4096,
        }
    }
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig {
            live_window_segments: 5,
            idle_wait_secs: 10,
            gap_threshold_ms: 50,
            segment_cache_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Default for StreamDefaults {
    fn default() -> Self {
        StreamDefaults { default_retention_hours: 24 }
    }
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
        if self.storage.segment_max_bytes < 4096 {
            return bad("storage.segment_max_bytes", "must be at least 4096");
        }
        if self.storage.segment_max_age_secs == 0 {
            return bad("storage.segment_max_age_secs", "must be at least 1");
        }
        if self.storage.sync == SyncMode::Interval && self.storage.sync_interval_ms == 0 {
            return bad("storage.sync_interval_ms", "must be at least 1 with sync = \"interval\"");
        }
        if self.storage.retention_interval_secs == 0 {
            return bad("storage.retention_interval_secs", "must be at least 1");
        }
        if self.ingest.max_fragment_bytes < 1024 {
            return bad("ingest.max_fragment_bytes", "must be at least 1024");
        }
        if self.ingest.max_fragment_duration_ms == 0 {
            return bad("ingest.max_fragment_duration_ms", "must be at least 1");
        }
        if self.ingest.ack_queue == 0 {
            return bad("ingest.ack_queue", "must be at least 1");
        }
        if self.hls.live_window_segments == 0 {
            return bad("hls.live_window_segments", "must be at least 1");
        }
        if self.streams.default_retention_hours > MAX_RETENTION_HOURS {
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
            if crate::name::StreamName::new(name.as_str()).is_err() {
                return bad(key, "must be a valid stream name ([a-zA-Z0-9_.-]{1,256})");
            }
            if !(1..=64).contains(&shards) {
                return bad(key, "its shard count must be between 1 and 64");
            }
        }
        if self.events.events_stream == self.events.metadata_stream {
            return bad("events.metadata_stream", "must differ from events.events_stream");
        }
        if !(1..=1000).contains(&ds.on_demand_shard_count) {
            return bad("data_streams.on_demand_shard_count", "must be between 1 and 1000");
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
    pub fn log_config(&self) -> LogConfig {
        let sync = match self.storage.sync {
            SyncMode::Always => SyncPolicy::Always,
            SyncMode::Interval => {
                SyncPolicy::Interval(Duration::from_millis(self.storage.sync_interval_ms))
            }
            SyncMode::Never => SyncPolicy::Never,
        };
        LogConfig {
            segment_max_bytes: self.storage.segment_max_bytes,
            segment_max_age: Duration::from_secs(self.storage.segment_max_age_secs),
            sync,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_its_path() {
        let err = Config::from_toml("[storage]\nsegment_max_byte = 5\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("storage.segment_max_byte"), "{err}");
    }

    #[test]
    fn wrong_type_names_its_path() {
        let err =
            Config::from_toml("[hls]\nlive_window_segments = \"five\"\n", Path::new("x.toml"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("hls.live_window_segments"), "{err}");
    }

    #[test]
    fn example_config_parses_and_matches_defaults() {
        let text = include_str!("../sluice.example.toml");
        let c = Config::from_toml(text, Path::new("sluice.example.toml")).unwrap();
        let d = Config::default();
        assert_eq!(c.server.listen, d.server.listen);
        assert_eq!(c.storage.segment_max_bytes, d.storage.segment_max_bytes);
        assert_eq!(c.ingest.max_fragment_bytes, d.ingest.max_fragment_bytes);
        assert_eq!(c.hls.live_window_segments, d.hls.live_window_segments);
        assert_eq!(c.streams.default_retention_hours, d.streams.default_retention_hours);
        assert_eq!(c.events.events_stream, d.events.events_stream);
        assert_eq!(c.events.metadata_shards, d.events.metadata_shards);
        let (a, b) = (&c.data_streams, &d.data_streams);
        assert_eq!((&a.region, &a.account_id), (&b.region, &b.account_id));
        assert_eq!(
            (
                a.min_retention_hours,
                a.shard_limit,
                a.on_demand_stream_limit,
                a.on_demand_shard_count
            ),
            (
                b.min_retention_hours,
                b.shard_limit,
                b.on_demand_stream_limit,
                b.on_demand_shard_count
            )
        );
        assert_eq!(a.throughput_limits, b.throughput_limits);
        assert_eq!(
            (
                a.write_bytes_per_sec,
                a.write_records_per_sec,
                a.read_bytes_per_sec,
                a.read_calls_per_sec
            ),
            (
                b.write_bytes_per_sec,
                b.write_records_per_sec,
                b.read_bytes_per_sec,
                b.read_calls_per_sec
            )
        );
    }
}
