//! `[server]`, `[storage]` and `[streams]`: where Sluice listens, where and how it stores.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the HTTP listener (API, HLS, web UI). Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Directory holding the catalog and every stream's log. Default `./data`.
    pub data_dir: PathBuf,
    /// How long shutdown waits for open requests to finish, in seconds. Default 10.
    #[serde(deserialize_with = "super::units::secs")]
    pub shutdown_grace_secs: Duration,
    /// A client must send a whole request head within this, in seconds; it also closes a
    /// keep-alive connection that sends no next request. Default 30.
    #[serde(deserialize_with = "super::units::secs")]
    pub header_read_timeout_secs: Duration,
    /// A request body that sends no byte for this long ends with an error, in seconds (on
    /// progress, not duration: long uploads that keep sending are never cut). Default 60.
    #[serde(deserialize_with = "super::units::secs")]
    pub body_progress_timeout_secs: Duration,
    /// Most HTTP connections open at once; more are closed at once, and counted. Default 8192.
    pub max_connections: usize,
    /// Most HTTP connections from one source address. Default 1024.
    pub max_connections_per_ip: usize,
    /// The memory budget, in bytes: what the segment cache, producers' fragments being received,
    /// Kinesis request bodies and GetRecords answers may hold together (`crate::memory`). Past
    /// it, producers wait and then get ERROR 5000, Kinesis answers 503 `ServiceUnavailable` (or
    /// a shorter GetRecords). 0 (the default) sets no limit; the parts are still counted in
    /// /metrics.
    pub memory_limit_bytes: usize,
    /// A PEM certificate chain: with `tls_key`, the listener speaks HTTPS (HTTP/2 by ALPN).
    /// Reloaded on SIGHUP and when the files change. Default none (plain HTTP).
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Origins whose pages may call the management API cross-origin (`https://ops.example.org`,
    /// or `*` for any). Playback and WHIP are open to every origin. Default none.
    pub cors_origins: Vec<String>,
    /// The base URL clients reach this server at (`https://video.example.org`), which the KVS
    /// API's GetDataEndpoint answers. Default none: the scheme and `Host` of the request.
    pub public_url: Option<String>,
    /// With `[auth]` off, the host names requests may be addressed to besides IP literals and
    /// `localhost` (the `Host` header), so a web page cannot reach a Sluice on its visitor's
    /// machine through a name it controls (DNS rebinding). Default none.
    pub allowed_hosts: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            shutdown_grace_secs: Duration::from_secs(10),
            header_read_timeout_secs: Duration::from_secs(30),
            body_progress_timeout_secs: Duration::from_secs(60),
            max_connections: 8192,
            max_connections_per_ip: 1024,
            memory_limit_bytes: 0,
            tls_cert: None,
            tls_key: None,
            cors_origins: Vec::new(),
            public_url: None,
            allowed_hosts: Vec::new(),
        }
    }
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
    #[serde(deserialize_with = "super::units::millis")]
    pub sync_interval_ms: Duration,
    /// A log segment file is sealed and a new one started at this size, in bytes. Default 256 MiB.
    pub segment_max_bytes: u64,
    /// ... or when its first record is this old, in seconds. Default 3600. Retention deletes whole
    /// segments, so this is also the granularity of age-based retention.
    #[serde(deserialize_with = "super::units::secs")]
    pub segment_max_age_secs: Duration,
    /// How often the background retention pass runs, in seconds. Default 30.
    #[serde(deserialize_with = "super::units::secs")]
    pub retention_interval_secs: Duration,
    /// The free-disk floor, in bytes: while the data directory's filesystem has less available,
    /// each retention pass deletes the oldest video (whole log segments, oldest first across all
    /// video streams, never a stream's newest segment) ahead of retention, so recording goes on.
    /// When every stream is down to one segment, the largest stream's is sealed so that a later
    /// pass can delete it.
    /// Data streams keep their own retention. 0 disables it. Default 1 GiB.
    pub min_free_bytes: u64,
    /// Not a setting: fault injection for tests (a stalled or slow disk), called before the logs'
    /// syncs. Cannot be set from TOML.
    #[serde(skip)]
    pub before_sync: Option<crate::log::SyncHook>,
    /// Not a setting: the object tier's bucket, made from `[tiering]` and `[object_store]` when
    /// the server is built (`crate::tiering::target`), handed to every log.
    #[serde(skip)]
    pub tier: Option<crate::log::tier::TierTarget>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            sync: SyncMode::Always,
            sync_interval_ms: Duration::from_millis(200),
            segment_max_bytes: 256 * 1024 * 1024,
            segment_max_age_secs: Duration::from_secs(3600),
            retention_interval_secs: Duration::from_secs(30),
            min_free_bytes: 1024 * 1024 * 1024,
            before_sync: None,
            tier: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamDefaults {
    /// Retention of a stream created without `retentionHours`, in hours. Default 24.
    pub default_retention_hours: u32,
}

impl Default for StreamDefaults {
    fn default() -> Self {
        StreamDefaults { default_retention_hours: 24 }
    }
}
