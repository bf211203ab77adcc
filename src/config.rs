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
    pub frames: FramesConfig,
    pub image_generation: ImageGenerationConfig,
    pub rtsp_pull: RtspPullConfig,
    /// Cameras pulled over RTSP (`[[sources]]`), applied at start-up.
    pub sources: Vec<SourceEntry>,
    pub webrtc: WebRtcConfig,
    pub rtsp: RtspConfig,
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
    /// RTP producers (RTSP publish, RTSP pull, WHIP): a fragment (an LL-HLS part) is closed at
    /// every keyframe and at least this often, in milliseconds. Default 200.
    pub part_duration_ms: u64,
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
    /// Serve LL-HLS (parts, blocking reload, preload hints) on `live.m3u8` for streams whose
    /// fragments are shorter than their GOP. `false`: regular HLS for every stream. Default true.
    pub low_latency: bool,
    /// Segments in a low-latency live playlist's window (delta updates skip the older ones).
    /// Default 12.
    pub low_latency_window_segments: usize,
    /// EXT-X-SERVER-CONTROL PART-HOLD-BACK as a multiple of the part target duration (at least
    /// 3). Default 3.
    pub part_hold_back_multiplier: f64,
    /// Upper bound on how long a blocking playlist reload (`_HLS_msn`) or a blocking part request
    /// (the preload hint) waits, in milliseconds; a playlist reload also waits at most three
    /// target durations (RFC 8216bis §6.2.5.2). Default 10000.
    pub blocking_timeout_ms: u64,
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

/// The frame decode service (`[frames]`): exact frames and image sets (`crate::frames`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FramesConfig {
    /// Decode worker threads; 0 means one per CPU core. Default 0.
    pub workers: usize,
    /// Decode jobs that may wait for a worker; when the queue is full, frame requests get 503
    /// with Retry-After. Default 32.
    pub queue_depth: usize,
    /// Build an H.264 decoder in this many workers at start-up, so the first request does not pay
    /// the first-pipeline cost (0 = none, larger than `workers` = all). Default 2.
    pub warm_decoders: usize,
    /// JPEG quality used when a request gives none (1–100). Default 85.
    pub default_quality: u8,
    /// Most images a JSON image-set page holds when the request gives no `maxResults`. Default 25.
    pub default_page_size: usize,
}

impl Default for FramesConfig {
    fn default() -> Self {
        FramesConfig {
            workers: 0,
            queue_depth: 32,
            warm_decoders: 2,
            default_quality: 85,
            default_page_size: 25,
        }
    }
}

/// Continuous image generation per stream (`[image_generation]`, `crate::imagegen`): bounds on
/// what a stream's `imageGeneration` may ask for, and how webhook deliveries are queued and retried.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageGenerationConfig {
    /// Shortest `intervalMs` a stream may configure, in milliseconds. Default 100.
    pub min_interval_ms: u64,
    /// Longest `intervalMs` a stream may configure, in milliseconds. Default 86400000 (a day).
    pub max_interval_ms: u64,
    /// Images waiting for a stream's webhook, at most; beyond this new images are dropped and
    /// counted (`sluice_imagegen_dropped_total`), never slowing generation or ingest. Default 64.
    pub webhook_queue: usize,
    /// Webhook requests in flight across all streams, at most. Default 8.
    pub max_concurrent_webhooks: usize,
    /// Time limit of one webhook request (connect, send, response), in milliseconds. Default 10000.
    pub webhook_timeout_ms: u64,
    /// Attempts per image (the first try included) before it is dropped. Default 5.
    pub webhook_max_attempts: u32,
    /// Backoff before the first retry, in milliseconds; it doubles per retry, with full jitter.
    /// Default 200.
    pub webhook_initial_backoff_ms: u64,
    /// Longest backoff between retries, in milliseconds. Default 10000.
    pub webhook_max_backoff_ms: u64,
    /// How far generation may fall behind, in milliseconds: when the media of the next instant
    /// arrived longer ago than this (wall time, so a fast upload of recorded video is not behind),
    /// generation skips ahead to the live edge (skipped instants are counted in
    /// `sluice_imagegen_skipped_total`). Default 60000.
    pub max_lag_ms: u64,
}

impl Default for ImageGenerationConfig {
    fn default() -> Self {
        ImageGenerationConfig {
            min_interval_ms: 100,
            max_interval_ms: 86_400_000,
            webhook_queue: 64,
            max_concurrent_webhooks: 8,
            webhook_timeout_ms: 10_000,
            webhook_max_attempts: 5,
            webhook_initial_backoff_ms: 200,
            webhook_max_backoff_ms: 10_000,
            max_lag_ms: 60_000,
        }
    }
}

impl ImageGenerationConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, message: &str| Err(ConfigError::Value { key, message: message.to_owned() });
        if self.min_interval_ms == 0 || self.min_interval_ms > self.max_interval_ms {
            return bad(
                "image_generation.min_interval_ms",
                "must be at least 1 and at most max_interval_ms",
            );
        }
        if self.webhook_queue == 0 {
            return bad("image_generation.webhook_queue", "must be at least 1");
        }
        if self.max_concurrent_webhooks == 0 {
            return bad("image_generation.max_concurrent_webhooks", "must be at least 1");
        }
        if self.webhook_timeout_ms == 0 {
            return bad("image_generation.webhook_timeout_ms", "must be at least 1");
        }
        if !(1..=100).contains(&self.webhook_max_attempts) {
            return bad("image_generation.webhook_max_attempts", "must be between 1 and 100");
        }
        if self.webhook_initial_backoff_ms > self.webhook_max_backoff_ms {
            return bad(
                "image_generation.webhook_initial_backoff_ms",
                "must be at most webhook_max_backoff_ms",
            );
        }
        Ok(())
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

/// RTSP pull from cameras (`[rtsp_pull]`, `crate::ingest::pull`): how sources reconnect.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtspPullConfig {
    /// First delay after a failed attempt, in milliseconds; doubled per failure, with ±20 %
    /// jitter. Default 1000.
    pub backoff_initial_ms: u64,
    /// Longest delay between attempts, in milliseconds. Default 30000.
    pub backoff_max_ms: u64,
    /// DESCRIBE + SETUP + PLAY must finish within this, in seconds. Default 10.
    pub connect_timeout_secs: u64,
    /// A session with no frame for this long is dropped and reconnected, in seconds. Default 10.
    pub stall_timeout_secs: u64,
}

impl Default for RtspPullConfig {
    fn default() -> Self {
        RtspPullConfig {
            backoff_initial_ms: 1000,
            backoff_max_ms: 30_000,
            connect_timeout_secs: 10,
            stall_timeout_secs: 10,
        }
    }
}

/// One pulled camera (`[[sources]]`). The stream is created if missing; the entry replaces the
/// stream's stored source at every start-up (a `PATCH` lasts until the next restart).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceEntry {
    /// The video stream to record into.
    pub stream: String,
    /// `rtsp://host[:port]/path`; credentials may be embedded or given below.
    pub rtsp_url: String,
    /// `tcp` (interleaved, the default) or `udp`.
    #[serde(default = "default_transport")]
    pub transport: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

fn default_transport() -> String {
    String::from("tcp")
}

/// An ICE server offered to WebRTC peers (`[[webrtc.ice_servers]]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IceServerConfig {
    /// `stun:host:port` or `turn:host:port?transport=udp`.
    pub urls: Vec<String>,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub credential: String,
}

/// WebRTC ingest (`[webrtc]`, WHIP: `crate::ingest::whip`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebRtcConfig {
    /// Local addresses for media (ICE host candidates). A wildcard (`0.0.0.0`) means every
    /// non-loopback interface; port 0 picks a port per session (see the port range). Default
    /// `["0.0.0.0:0"]`.
    pub udp_addrs: Vec<String>,
    /// Lowest UDP port a session may use when an address has port 0 (0: any ephemeral port).
    /// Default 0.
    pub udp_port_min: u16,
    /// Highest UDP port (inclusive) of that range. Default 0.
    pub udp_port_max: u16,
    /// STUN/TURN servers used to gather candidates. Default none.
    pub ice_servers: Vec<IceServerConfig>,
    /// While the stream needs a keyframe, a PLI is sent this often, in milliseconds. Default 500.
    pub pli_interval_ms: u64,
    /// A session that is not connected within this is ended, in seconds. Default 15.
    pub connect_timeout_secs: u64,
    /// ICE: no traffic for this long marks the peer disconnected, in seconds. Default 5.
    pub ice_disconnected_timeout_secs: u64,
    /// ICE: disconnected for this long more ends the session (the client vanished), in seconds.
    /// Default 10.
    pub ice_failed_timeout_secs: u64,
    /// Most WHIP sessions at once. Default 64.
    pub max_sessions: usize,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        WebRtcConfig {
            udp_addrs: vec![String::from("0.0.0.0:0")],
            udp_port_min: 0,
            udp_port_max: 0,
            ice_servers: Vec::new(),
            pli_interval_ms: 500,
            connect_timeout_secs: 15,
            ice_disconnected_timeout_secs: 5,
            ice_failed_timeout_secs: 10,
            max_sessions: 64,
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

/// RTSP publish (`[rtsp]`, `crate::ingest::rtsp`): producers push with ANNOUNCE/RECORD.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtspConfig {
    /// Whether the RTSP listener runs. Default true.
    pub enabled: bool,
    /// Address of the RTSP listener. Default `127.0.0.1:8554`.
    pub listen: SocketAddr,
    /// UDP ports for RTP/RTCP over UDP, as an inclusive range `[first, last]`; each UDP track takes
    /// an even/odd pair. Default `[30000, 30999]`.
    pub udp_ports: [u16; 2],
    /// Create a stream on its first publish (with the default retention); when false, publishing
    /// to an unknown stream gets 404. Default true.
    pub auto_create_streams: bool,
    /// A publisher that sends nothing (no RTP, no request) for this long is disconnected, in
    /// seconds. Default 30.
    pub session_timeout_secs: u64,
}

impl Default for RtspConfig {
    fn default() -> Self {
        RtspConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8554)),
            udp_ports: [30000, 30999],
            auto_create_streams: true,
            session_timeout_secs: 30,
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
            part_duration_ms: 200,
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
            low_latency: true,
            low_latency_window_segments: 12,
            part_hold_back_multiplier: 3.0,
            blocking_timeout_ms: 10_000,
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
        if self.rtsp.udp_ports[0] > self.rtsp.udp_ports[1] || self.rtsp.udp_ports[1] == u16::MAX {
            return bad("rtsp.udp_ports", "must be [first, last] with first <= last < 65535");
        }
        if self.rtsp.session_timeout_secs == 0 {
            return bad("rtsp.session_timeout_secs", "must be at least 1");
        }
        if self.ingest.part_duration_ms == 0 || self.ingest.part_duration_ms > 10_000 {
            return bad("ingest.part_duration_ms", "must be between 1 and 10000");
        }
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
        if self.hls.low_latency_window_segments == 0 {
            return bad("hls.low_latency_window_segments", "must be at least 1");
        }
        if !(self.hls.part_hold_back_multiplier >= 3.0
            && self.hls.part_hold_back_multiplier <= 100.0)
        {
            return bad("hls.part_hold_back_multiplier", "must be between 3 and 100");
        }
        if self.hls.blocking_timeout_ms == 0 {
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
        if self.rtsp_pull.backoff_initial_ms == 0
            || self.rtsp_pull.backoff_max_ms < self.rtsp_pull.backoff_initial_ms
        {
            return bad(
                "rtsp_pull.backoff_max_ms",
                "backoff_initial_ms must be at least 1 and backoff_max_ms at least backoff_initial_ms",
            );
        }
        if self.rtsp_pull.connect_timeout_secs == 0 || self.rtsp_pull.stall_timeout_secs == 0 {
            return bad("rtsp_pull.stall_timeout_secs", "timeouts must be at least 1 second");
        }
        for a in &self.webrtc.udp_addrs {
            if a.parse::<SocketAddr>().is_err() {
                return bad("webrtc.udp_addrs", "each entry must be ip:port (port 0: any)");
            }
        }
        if self.webrtc.udp_addrs.is_empty() {
            return bad("webrtc.udp_addrs", "needs at least one address");
        }
        if self.webrtc.udp_port_min > self.webrtc.udp_port_max {
            return bad("webrtc.udp_port_min", "must not exceed webrtc.udp_port_max");
        }
        if self.webrtc.pli_interval_ms == 0 || self.webrtc.connect_timeout_secs == 0 {
            return bad(
                "webrtc.pli_interval_ms",
                "pli_interval_ms and connect_timeout_secs must be at least 1",
            );
        }
        if self.webrtc.ice_disconnected_timeout_secs == 0
            || self.webrtc.ice_failed_timeout_secs == 0
        {
            return bad("webrtc.ice_failed_timeout_secs", "ICE timeouts must be at least 1 second");
        }
        if self.webrtc.max_sessions == 0 {
            return bad("webrtc.max_sessions", "must be at least 1");
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
        let (p, q) = (&c.rtsp_pull, &d.rtsp_pull);
        assert_eq!(
            (p.backoff_initial_ms, p.backoff_max_ms, p.connect_timeout_secs, p.stall_timeout_secs),
            (q.backoff_initial_ms, q.backoff_max_ms, q.connect_timeout_secs, q.stall_timeout_secs)
        );
        assert!(c.sources.is_empty());
        let (w, x) = (&c.webrtc, &d.webrtc);
        assert_eq!(
            (&w.udp_addrs, w.udp_port_min, w.udp_port_max),
            (&x.udp_addrs, x.udp_port_min, x.udp_port_max)
        );
        assert_eq!(
            (
                w.pli_interval_ms,
                w.connect_timeout_secs,
                w.ice_disconnected_timeout_secs,
                w.ice_failed_timeout_secs,
                w.max_sessions
            ),
            (
                x.pli_interval_ms,
                x.connect_timeout_secs,
                x.ice_disconnected_timeout_secs,
                x.ice_failed_timeout_secs,
                x.max_sessions
            )
        );
        let (g, h) = (&c.image_generation, &d.image_generation);
        assert_eq!(
            (g.min_interval_ms, g.max_interval_ms, g.webhook_queue, g.max_concurrent_webhooks),
            (h.min_interval_ms, h.max_interval_ms, h.webhook_queue, h.max_concurrent_webhooks)
        );
        assert_eq!(
            (g.webhook_timeout_ms, g.webhook_max_attempts, g.max_lag_ms),
            (h.webhook_timeout_ms, h.webhook_max_attempts, h.max_lag_ms)
        );
        assert_eq!(
            (g.webhook_initial_backoff_ms, g.webhook_max_backoff_ms),
            (h.webhook_initial_backoff_ms, h.webhook_max_backoff_ms)
        );
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
