//! `GET /v1/streams/{name}/timeline`: recorded ranges and gaps (exact), per-bucket coverage
//! (zoomed out), both clocks, default windows, and precise 400/404s.

mod common;

use common::*;
use serde_json::Value;

/// 2026-11-21T10:00:00Z in epoch milliseconds.
const T0: i64 = 1_795_255_200_000;

fn rfc(ms: i64) -> String {
    sluice::clock::Timestamp::from_millis(ms).to_rfc3339()
}

/// Two 6-second sessions of 1-second fragments: [T0, T0+6 s) and [T0+60 s, T0+66 s).
async fn two_sessions() -> TestServer {
    let server = TestServer::start().await;
    server.create_stream("cam").await;
    for start in [T0, T0 + 60_000] {
        let acks =
            server.push("cam", fixture("h264.mp4"), &format!("?producerStart={start}")).await;
        assert_eq!(acks_of(&acks, "PERSISTED").len(), 6, "{acks:?}");
    }
    server
}

async fn timeline(server: &TestServer, query: &str) -> Value {
    server.get_json(&format!("/v1/streams/cam/timeline{query}")).await
}

fn spans(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| {
            (
                s["start"].as_str().unwrap_or("").to_owned(),
                s["end"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn exact_ranges_and_gaps_of_a_small_window() {
    let server = two_sessions().await;
    let t = timeline(&server, &format!("?start={}&end={}", T0 - 10_000, T0 + 100_000)).await;
    assert_eq!(t["resolution"], "exact");
    assert_eq!(t["fragmentCount"], 12);
    assert_eq!(t["start"], rfc(T0 - 10_000));
    assert_eq!(t["end"], rfc(T0 + 100_000));
    assert_eq!(
        spans(&t["ranges"]),
        vec![(rfc(T0), rfc(T0 + 6_000)), (rfc(T0 + 60_000), rfc(T0 + 66_000))]
    );
    assert_eq!(t["ranges"][0]["fragments"], 6);
    assert_eq!(t["ranges"][1]["durationMs"], 6000.0);
    assert_eq!(
        spans(&t["gaps"]),
        vec![
            (rfc(T0 - 10_000), rfc(T0)),
            (rfc(T0 + 6_000), rfc(T0 + 60_000)),
            (rfc(T0 + 66_000), rfc(T0 + 100_000)),
        ]
    );
    assert!(t["buckets"].as_array().expect("buckets").is_empty());

    // A window that starts inside a fragment includes it, clipped.
    let t = timeline(&server, &format!("?start={}&end={}", T0 + 2_500, T0 + 4_000)).await;
    assert_eq!(spans(&t["ranges"]), vec![(rfc(T0 + 2_500), rfc(T0 + 4_000))]);
    assert_eq!(t["ranges"][0]["fragments"], 2, "{t}");
    assert!(t["gaps"].as_array().expect("gaps").is_empty());

    // A window with no media is one gap.
    let t = timeline(&server, &format!("?start={}&end={}", T0 + 20_000, T0 + 30_000)).await;
    assert_eq!(t["fragmentCount"], 0);
    assert!(t["ranges"].as_array().expect("ranges").is_empty());
    assert_eq!(spans(&t["gaps"]), vec![(rfc(T0 + 20_000), rfc(T0 + 30_000))]);

    // A gap threshold above the hole merges the sessions.
    let t = timeline(&server, &format!("?start={T0}&end={}&gapMs=60000", T0 + 66_000)).await;
    assert_eq!(spans(&t["ranges"]), vec![(rfc(T0), rfc(T0 + 66_000))]);
    server.stop().await;
}

#[tokio::test]
async fn buckets_cover_the_recorded_time() {
    let server = two_sessions().await;
    let q = format!("?start={T0}&end={}&buckets=100&resolution=buckets", T0 + 100_000);
    let t = timeline(&server, &q).await;
    assert_eq!(t["resolution"], "buckets");
    let buckets = t["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 100);
    for (i, b) in buckets.iter().enumerate() {
        assert_eq!(b["start"], rfc(T0 + i as i64 * 1000));
        let recorded = i < 6 || (60..66).contains(&i);
        assert_eq!(b["fragments"], u64::from(recorded), "bucket {i}: {b}");
        assert_eq!(b["coverage"], if recorded { 1.0 } else { 0.0 }, "bucket {i}: {b}");
    }
    assert_eq!(
        spans(&t["ranges"]),
        vec![(rfc(T0), rfc(T0 + 6_000)), (rfc(T0 + 60_000), rfc(T0 + 66_000))]
    );
    assert_eq!(spans(&t["gaps"]).len(), 2);

    // Zoomed out to 30 days: everything is in the first one-day bucket, covering 12 s of it.
    let q = format!("?start={T0}&end={}&buckets=30&resolution=buckets", T0 + 30 * 86_400_000);
    let t = timeline(&server, &q).await;
    let buckets = t["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 30);
    assert_eq!(buckets[0]["fragments"], 12);
    let coverage = buckets[0]["coverage"].as_f64().expect("coverage");
    assert!((coverage - 12.0 / 86_400.0).abs() < 0.001, "{coverage}");
    assert!(buckets[1..].iter().all(|b| b["fragments"] == 0));
    assert_eq!(spans(&t["ranges"]), vec![(rfc(T0), rfc(T0 + 86_400_000))]);
    server.stop().await;
}

#[tokio::test]
async fn default_window_server_clock_and_empty_streams() {
    let server = two_sessions().await;
    let t = timeline(&server, "").await;
    assert_eq!(t["start"], rfc(T0));
    assert_eq!(t["end"], rfc(T0 + 66_000));
    assert_eq!(t["timestamps"], "producer");
    assert_eq!(t["gapMs"], 50);
    assert_eq!(t["ranges"].as_array().expect("ranges").len(), 2);

    // The server clock: both sessions arrived just now, faster than real time, so their arrival
    // times overlap into one range.
    let t = timeline(&server, "?timestamps=server").await;
    assert_eq!(t["timestamps"], "server");
    assert_eq!(t["gapMs"], 1000);
    assert_eq!(t["fragmentCount"], 12);
    assert_eq!(t["ranges"].as_array().expect("ranges").len(), 1, "{t}");

    server.create_stream("empty").await;
    let e = server.get_json("/v1/streams/empty/timeline").await;
    assert_eq!(e["start"], Value::Null);
    assert_eq!(e["fragmentCount"], 0);
    assert!(e["ranges"].as_array().expect("ranges").is_empty());
    server.stop().await;
}

#[tokio::test]
async fn bad_queries_are_precise_errors() {
    let server = two_sessions().await;
    for (query, needle) in [
        ("?buckets=0", "buckets"),
        ("?buckets=100000", "buckets"),
        ("?start=2026-11-21T10:00:10Z&end=2026-11-21T10:00:00Z", "before"),
        ("?start=yesterday", "start"),
        ("?timestamps=wall", "timestamps"),
        ("?resolution=fine", "resolution"),
        ("?gapMs=-1", "gapMs"),
        ("?gapMs=999999999999", "gapMs"),
        ("?color=red", "color"),
    ] {
        let (status, body) = server.get_text(&format!("/v1/streams/cam/timeline{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let v: Value = serde_json::from_str(&body).expect("json error");
        assert_eq!(v["error"]["code"], "InvalidArgument", "{query}: {body}");
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(needle), "{query}: {msg:?} should name {needle:?}");
    }
    let (status, _) = server.get_text("/v1/streams/nope/timeline").await;
    assert_eq!(status, 404);
    let (status, _) = server.get_text("/v1/streams/bad%20name/timeline").await;
    assert_eq!(status, 400);
    server.stop().await;
}
