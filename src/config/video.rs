//! The media sections: `[ingest]`, `[hls]`, `[rtsp]` (publish), `[rtsp_pull]` and `[[sources]]`
//! (cameras pulled), `[webrtc]` (WHIP).

use std::net::SocketAddr;

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Largest fragment (moof+mdat) accepted, in bytes. Default 50 MB (Kinesis error 4001 above).
    pub max_fragment_bytes: u64,
    /// Longest fragment accepted, in milliseconds. Default 20000 (Kinesis error 4002 above).
    #[serde(deserialize_with = "super::units::millis")]
    pub max_fragment_duration_ms: Duration,
    /// Largest init segment (ftyp+moov) accepted, in bytes. Default 1 MiB.
    pub max_init_bytes: u64,
    /// An IDLE acknowledgement is sent after this long without bytes from the producer, in
    /// milliseconds. Default 3000.
    #[serde(deserialize_with = "super::units::millis")]
    pub idle_ack_interval_ms: Duration,
    /// Acknowledgements queued for a producer that does not read them; beyond this, BUFFERING,
    /// RECEIVED and IDLE acks are dropped (never PERSISTED or ERROR, and never blocking ingest).
    /// Default 4096.
    pub ack_queue: usize,
    /// RTP producers (RTSP publish, RTSP pull, WHIP): a fragment (an LL-HLS part) is closed at
    /// every keyframe and at least this often, in milliseconds. Default 200.
    #[serde(deserialize_with = "super::units::millis")]
    pub part_duration_ms: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_fragment_bytes: 50_000_000,
            max_fragment_duration_ms: Duration::from_millis(20_000),
            max_init_bytes: 1024 * 1024,
            idle_ack_interval_ms: Duration::from_millis(3000),
            ack_queue: 4096,
            part_duration_ms: Duration::from_millis(200),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HlsConfig {
    /// Segments in the live playlist's sliding window. Default 5.
    pub live_window_segments: usize,
    /// How long a live playlist request for a stream with no media yet waits before answering with
    /// an empty playlist, in seconds. Default 10.
    #[serde(deserialize_with = "super::units::secs")]
    pub idle_wait_secs: Duration,
    /// A gap between fragments larger than this counts as a discontinuity (`discontinuity=on_gap`),
    /// in milliseconds. Default 50.
    #[serde(deserialize_with = "super::units::millis")]
    pub gap_threshold_ms: Duration,
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
    #[serde(deserialize_with = "super::units::millis")]
    pub blocking_timeout_ms: Duration,
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig {
            live_window_segments: 5,
            idle_wait_secs: Duration::from_secs(10),
            gap_threshold_ms: Duration::from_millis(50),
            segment_cache_bytes: 64 * 1024 * 1024,
            low_latency: true,
            low_latency_window_segments: 12,
            part_hold_back_multiplier: 3.0,
            blocking_timeout_ms: Duration::from_millis(10_000),
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
    #[serde(deserialize_with = "super::units::secs")]
    pub session_timeout_secs: Duration,
    /// With `[auth]` on, also offer Digest authentication to publishers (for access keys: Digest
    /// needs the secret, and users' passwords are kept only as hashes). Basic is always offered.
    /// Default false.
    pub digest: bool,
}

impl Default for RtspConfig {
    fn default() -> Self {
        RtspConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8554)),
            udp_ports: [30000, 30999],
            auto_create_streams: true,
            session_timeout_secs: Duration::from_secs(30),
            digest: false,
        }
    }
}

/// RTSP pull from cameras (`[rtsp_pull]`, `crate::ingest::pull`): how sources reconnect.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtspPullConfig {
    /// First delay after a failed attempt, in milliseconds; doubled per failure, with ±20 %
    /// jitter. Default 1000.
    #[serde(deserialize_with = "super::units::millis")]
    pub backoff_initial_ms: Duration,
    /// Longest delay between attempts, in milliseconds. Default 30000.
    #[serde(deserialize_with = "super::units::millis")]
    pub backoff_max_ms: Duration,
    /// DESCRIBE + SETUP + PLAY must finish within this, in seconds. Default 10.
    #[serde(deserialize_with = "super::units::secs")]
    pub connect_timeout_secs: Duration,
    /// A session with no frame for this long is dropped and reconnected, in seconds. Default 10.
    #[serde(deserialize_with = "super::units::secs")]
    pub stall_timeout_secs: Duration,
}

impl Default for RtspPullConfig {
    fn default() -> Self {
        RtspPullConfig {
            backoff_initial_ms: Duration::from_millis(1000),
            backoff_max_ms: Duration::from_millis(30_000),
            connect_timeout_secs: Duration::from_secs(10),
            stall_timeout_secs: Duration::from_secs(10),
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
    /// empty: the HTTP listener's address (`[server] listen`), so WebRTC binds no wider than
    /// the API.
    pub udp_addrs: Vec<String>,
    /// Resolve browsers' mDNS (`….local`) candidates, which opens a multicast socket on
    /// 224.0.0.251:5353. Not needed for WHIP (peer-reflexive candidates connect). Default false.
    pub mdns: bool,
    /// Lowest UDP port a session may use when an address has port 0 (0: any ephemeral port).
    /// Default 0.
    pub udp_port_min: u16,
    /// Highest UDP port (inclusive) of that range. Default 0.
    pub udp_port_max: u16,
    /// STUN/TURN servers used to gather candidates. Default none.
    pub ice_servers: Vec<IceServerConfig>,
    /// While the stream needs a keyframe, a PLI is sent this often, in milliseconds. Default 500.
    #[serde(deserialize_with = "super::units::millis")]
    pub pli_interval_ms: Duration,
    /// A session that is not connected within this is ended, in seconds. Default 15.
    #[serde(deserialize_with = "super::units::secs")]
    pub connect_timeout_secs: Duration,
    /// ICE: no traffic for this long marks the peer disconnected, in seconds. Default 5.
    #[serde(deserialize_with = "super::units::secs")]
    pub ice_disconnected_timeout_secs: Duration,
    /// ICE: disconnected for this long more ends the session (the client vanished), in seconds.
    /// Default 10.
    #[serde(deserialize_with = "super::units::secs")]
    pub ice_failed_timeout_secs: Duration,
    /// Most WHIP sessions at once. Default 64.
    pub max_sessions: usize,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        WebRtcConfig {
            udp_addrs: Vec::new(),
            mdns: false,
            udp_port_min: 0,
            udp_port_max: 0,
            ice_servers: Vec::new(),
            pli_interval_ms: Duration::from_millis(500),
            connect_timeout_secs: Duration::from_secs(15),
            ice_disconnected_timeout_secs: Duration::from_secs(5),
            ice_failed_timeout_secs: Duration::from_secs(10),
            max_sessions: 64,
        }
    }
}
