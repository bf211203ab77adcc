//! Parsing, validation and overrides of the configuration.

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
    let err = Config::from_toml("[hls]\nlive_window_segments = \"five\"\n", Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("hls.live_window_segments"), "{err}");
}

#[test]
fn example_config_parses_and_matches_defaults() {
    let text = include_str!("../../sluice.example.toml");
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
    let (o, e) = (&c.object_store, &d.object_store);
    assert_eq!(
        (&o.endpoint, o.s3, &o.region, o.path_style),
        (&e.endpoint, e.s3, &e.region, e.path_style)
    );
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
        (a.min_retention_hours, a.shard_limit, a.on_demand_stream_limit, a.on_demand_shard_count),
        (b.min_retention_hours, b.shard_limit, b.on_demand_stream_limit, b.on_demand_shard_count)
    );
    assert_eq!(a.throughput_limits, b.throughput_limits);
    assert_eq!(
        (a.on_demand_scale_secs, a.on_demand_max_shards, a.delete_stream_ms),
        (b.on_demand_scale_secs, b.on_demand_max_shards, b.delete_stream_ms)
    );
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

#[test]
fn system_data_stream_names_follow_the_data_stream_limit() {
    let mut c = Config::default();
    c.events.events_stream = "e".repeat(129);
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("events.events_stream") && err.contains("1-128"), "{err}");
    c.events.events_stream = "e".repeat(128);
    c.validate().unwrap();
}

#[test]
fn the_memory_limit_must_hold_its_fixed_parts() {
    let check = |toml: &str| Config::from_toml(toml, Path::new("x.toml")).map(drop);
    assert!(check("[server]\nmemory_limit_bytes = 0\n").is_ok(), "0 is no limit");
    assert!(check("[server]\nmemory_limit_bytes = 268435456\n").is_ok());
    let small = check("[server]\nmemory_limit_bytes = 1000000\n").unwrap_err().to_string();
    assert!(small.contains("at least 32 MiB"), "{small}");
    // The default 64 MiB segment cache is more than half of 100 MiB.
    let cache = check("[server]\nmemory_limit_bytes = 104857600\n").unwrap_err().to_string();
    assert!(cache.contains("hls.segment_cache_bytes"), "{cache}");
    let fragment =
        check("[server]\nmemory_limit_bytes = 67108864\n[hls]\nsegment_cache_bytes = 33554432\n")
            .unwrap_err()
            .to_string();
    assert!(fragment.contains("ingest.max_fragment_bytes"), "{fragment}");
}
