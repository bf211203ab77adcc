//! A bounded, seeded HTTP fuzz over every route: random methods, path segments (names, numbers,
//! dots, percent-escapes, garbage), query parameters, headers and bodies, against a server that
//! holds a recorded stream and a data stream. No request may get a 5xx other than a documented
//! 503 with Retry-After, and the server must answer every request (nothing hangs, nothing
//! panics).

mod common;

use std::time::Duration;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const REQUESTS: usize = 3000;

const ROUTES: &[&str] = &[
    "/",
    "/healthz",
    "/metrics",
    "/ui/{file}",
    "/vendor/{file}",
    "/v1/streams",
    "/v1/streams/{name}",
    "/v1/streams/{name}/clip.mp4",
    "/v1/streams/{name}/events",
    "/v1/streams/{name}/fragments",
    "/v1/streams/{name}/fragments/{number}/media",
    "/v1/streams/{name}/frame.jpg",
    "/v1/streams/{name}/frame.png",
    "/v1/streams/{name}/hls/index.m3u8",
    "/v1/streams/{name}/hls/init/{id}/{file}",
    "/v1/streams/{name}/hls/live.m3u8",
    "/v1/streams/{name}/hls/master.m3u8",
    "/v1/streams/{name}/hls/part/{id}/{file}",
    "/v1/streams/{name}/hls/replay.m3u8",
    "/v1/streams/{name}/hls/seg/{id}/{file}",
    "/v1/streams/{name}/images",
    "/v1/streams/{name}/timeline",
    "/v1/streams/{name}/whip",
    "/v1/streams/{name}/whip/{session}",
    "/v1/data-streams/{stream}/shards/{shard}/records",
];

const PARAMS: &[&str] = &[
    "start",
    "end",
    "timestamps",
    "limit",
    "next",
    "mode",
    "discontinuity",
    "pdt",
    "epoch",
    "_HLS_msn",
    "_HLS_part",
    "_HLS_skip",
    "at",
    "width",
    "height",
    "quality",
    "format",
    "every",
    "buckets",
    "resolution",
    "gapMs",
    "type",
    "from",
    "producerStart",
    "acks",
    "maxResults",
];

fn pick<'a>(rng: &mut StdRng, options: &[&'a str]) -> &'a str {
    options[rng.random_range(0..options.len())]
}

fn segment(rng: &mut StdRng) -> String {
    match rng.random_range(0..12) {
        0 => "cam".into(),
        1 => "ds".into(),
        2 => rng.random_range(0..40u64).to_string(),
        3 => format!("{}-{}.m4s", rng.random_range(0..20u64), rng.random_range(0..20u64)),
        4 => format!("{}.mp4", rng.random_range(0..3u64)),
        5 => "shardId-000000000000".into(),
        6 => pick(rng, &["...", ".a", "%2e%2e", "%00", "%ff%fe", "a%2Fb", "x".repeat(300).leak()])
            .into(),
        7 => u64::MAX.to_string(),
        8 => "-1".into(),
        9 => "1".into(),
        10 => (0..rng.random_range(1..12)).map(|_| rng.random_range(b'a'..=b'z') as char).collect(),
        _ => format!("{}.m4s", rng.random_range(0..30u64)),
    }
}

fn value(rng: &mut StdRng) -> String {
    match rng.random_range(0..10) {
        0 => "2026-01-01T00:00:00Z".into(),
        1 => "2026-01-01T00:00:05.500Z".into(),
        2 => rng.random_range(0..2_000_000_000_000i64).to_string(),
        3 => (-rng.random_range(0..1000i64)).to_string(),
        4 => pick(
            rng,
            &[
                "producer",
                "server",
                "on_demand",
                "live_replay",
                "live",
                "always",
                "never",
                "on_gap",
                "v2",
                "YES",
                "true",
                "false",
                "latest",
                "now",
                "earliest",
                "fragment:3",
                "TRIM_HORIZON",
                "LATEST",
            ],
        )
        .into(),
        5 => u64::MAX.to_string(),
        6 => "".into(),
        7 => "%zz".into(),
        8 => "1e309".into(),
        _ => rng.random_range(0..100u64).to_string(),
    }
}

fn path(rng: &mut StdRng) -> String {
    let route = pick(rng, ROUTES);
    let mut out = String::new();
    for part in route.split('/').skip(1) {
        out.push('/');
        // Mostly the fixtures' real names and ids, so requests reach the handlers.
        let real = match part {
            "{name}" => Some("cam"),
            "{stream}" => Some("ds"),
            "{id}" => Some("1"),
            "{shard}" => Some("shardId-000000000000"),
            _ => None,
        };
        match real {
            Some(r) if rng.random_bool(0.7) => out.push_str(r),
            _ if part.starts_with('{') => out.push_str(&segment(rng)),
            _ => out.push_str(part),
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    let n = rng.random_range(0..4);
    for i in 0..n {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(pick(rng, PARAMS));
        out.push('=');
        out.push_str(&value(rng));
    }
    out
}

fn body(rng: &mut StdRng) -> Vec<u8> {
    match rng.random_range(0..6) {
        0 => Vec::new(),
        1 => br#"{"name":"fuzz"}"#.to_vec(),
        2 => br#"{"retentionHours":1,"tags":{"a":"b"}}"#.to_vec(),
        3 => br#"{"imageGeneration":{"intervalMs":1000,"destination":{"kind":"webhook","url":"http://127.0.0.1:9/x"}}}"#.to_vec(),
        4 => (0..rng.random_range(0..200)).map(|_| rng.random()).collect(),
        _ => br#"{"events":[{"timestamp":"2026-01-01T00:00:01Z","type":"t","data":{}}]}"#.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_gets_an_undocumented_5xx() {
    let server = TestServer::start_with(
        |c| {
            c.hls.blocking_timeout_ms = Duration::from_millis(300);
            c.hls.idle_wait_secs = Duration::from_secs(0);
        },
        std::sync::Arc::new(sluice::clock::SystemClock),
    )
    .await;
    server.create_stream("cam").await;
    server.push("cam", fixture("h264.mp4"), "?producerStart=2026-01-01T00:00:00Z").await;
    let resp = server
        .http
        .post(server.url("/"))
        .header("x-amz-target", "Kinesis_20131202.CreateStream")
        .header("content-type", "application/x-amz-json-1.1")
        .body(r#"{"StreamName":"ds","ShardCount":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut rng = StdRng::seed_from_u64(0x51u64);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..REQUESTS {
        let method = pick(
            &mut rng,
            &["GET", "GET", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        );
        let p = path(&mut rng);
        // Deleting the fixtures would leave little to fuzz: their deletion is tested elsewhere.
        if method == "DELETE" && (p.starts_with("/v1/streams/cam?") || p == "/v1/streams/cam") {
            continue;
        }
        let mut req = http.request(method.parse().unwrap(), server.url(&p));
        match rng.random_range(0..5) {
            0 => req = req.header("content-type", "application/json"),
            1 => {
                req = req.header(
                    "range",
                    format!("bytes={}-{}", rng.random_range(0..5000), rng.random_range(0..5000)),
                )
            }
            2 => req = req.header("content-type", "application/sdp"),
            3 => req = req.header("if-none-match", "\"m2-1-0-0\""),
            _ => {}
        }
        if matches!(method, "POST" | "PUT" | "PATCH") {
            req = req.body(body(&mut rng));
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("request {i} {method} {p}: {e}"));
        let status = resp.status().as_u16();
        let retry = resp.headers().contains_key("retry-after");
        // Live tails and SSE follows stream for as long as the client stays: their status is
        // what counts here, and a little of their body.
        let text = tokio::time::timeout(Duration::from_millis(500), resp.text())
            .await
            .map(|t| t.unwrap_or_default())
            .unwrap_or_default();
        *statuses.entry(status).or_default() += 1;
        assert!(
            status < 500 || (status == 503 && retry),
            "request {i}: {method} {p} → {status}: {}",
            text.chars().take(300).collect::<String>()
        );
    }
    eprintln!("statuses: {statuses:?}");
    // The server is still fine.
    let (status, _) = server.get_text("/healthz").await;
    assert_eq!(status, 200);
    server.stop().await;
}
