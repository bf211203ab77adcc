//! Sluice's own events and producers' metadata, read the way users read them: lifecycle events
//! with a Kinesis consumer (the AWS SDK for Rust), metadata through the REST API and its live
//! Server-Sent Events, and shard records through the SSE push endpoint.

mod common;

use std::time::Duration;

use aws_sdk_kinesis::Client;
use common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};

/// Every record of every shard of `stream`, from TRIM_HORIZON, as JSON documents.
async fn read_all(kds: &Client, stream: &str) -> Vec<Value> {
    let records = stream_records(kds, stream).await;
    records.iter().map(|d| serde_json::from_slice(d).expect("event json")).collect()
}

/// Waits (bounded) until `stream` holds at least `n` events of `video`.
async fn events_of(kds: &Client, stream: &str, video: &str, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let all: Vec<Value> =
            read_all(kds, stream).await.into_iter().filter(|e| e["stream"] == video).collect();
        if all.len() >= n {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} events for {video} in {stream}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kinesis_consumer_reads_the_lifecycle_in_order() {
    let server = TestServer::start().await;
    let kds = kinesis_client(&server.base);
    server.create_stream("cam").await;
    let acks = server.push("cam", fixture("h264.mp4"), "").await;
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 6);
    server.push("cam", b"\x00\x00\x00\x03 not mp4 at all".to_vec(), "").await;

    let events = events_of(&kds, "sluice-events", "cam", 12).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "StreamCreated",
            "ProducerConnected",
            "FragmentPersisted",
            "FragmentPersisted",
            "FragmentPersisted",
            "FragmentPersisted",
            "FragmentPersisted",
            "FragmentPersisted",
            "ProducerDisconnected",
            "ProducerConnected",
            "IngestError",
            "ProducerDisconnected",
        ]
    );
    for (i, e) in events[2..8].iter().enumerate() {
        assert_eq!(e["version"], 1);
        assert_eq!(e["details"]["fragmentNumber"], i.to_string(), "one per fragment, in order");
        assert_eq!(e["details"]["keyframe"], true);
        assert_eq!(e["details"]["durationMs"], 1000.0);
    }
    assert_eq!(events[1]["details"]["protocol"], "http-fmp4");
    assert_eq!(events[8]["details"]["reason"], "finished");
    assert_eq!(events[8]["details"]["fragments"], 6);
    assert_eq!(events[10]["details"]["code"], 4006);
    assert_eq!(events[0]["details"]["by"], "anonymous", "auth is off");

    // Deletion is the last event of the stream.
    server.http.delete(server.url("/v1/streams/cam")).send().await.unwrap();
    let events = events_of(&kds, "sluice-events", "cam", 13).await;
    assert_eq!(events.last().unwrap()["type"], "StreamDeleted");
    assert_eq!(events.last().unwrap()["details"]["by"], "anonymous");
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(metrics.contains("sluice_events_dropped_total 0"), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_metadata_round_trips_in_timestamp_order() {
    let server = TestServer::start().await;
    server.create_stream("drone").await;
    let post = |body: Value| {
        let http = server.http.clone();
        let url = server.url("/v1/streams/drone/events");
        async move { http.post(url).json(&body).send().await.unwrap() }
    };
    // Out of order on purpose, across two requests, with both clocks.
    let resp = post(json!([
        {"timestamp": "2026-05-01T10:00:03Z", "type": "gps", "data": {"lat": 3}},
        {"timestamp": "2026-05-01T10:00:01Z", "type": "gps", "data": {"lat": 1}},
        {"timestamp": "2026-05-01T10:00:02Z", "type": "detection", "data": {"label": "person"}},
    ]))
    .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["events"].as_array().unwrap().len(), 3);
    assert!(body["events"][0]["sequenceNumber"].is_string());
    let resp =
        post(json!({"timestamp": "2026-05-01T10:00:00Z", "timestamps": "server", "type": "note"}))
            .await;
    assert_eq!(resp.status(), 201);

    let v = server
        .get_json("/v1/streams/drone/events?start=2026-05-01T10:00:00Z&end=2026-05-01T10:00:05Z")
        .await;
    let lats: Vec<i64> =
        v["events"].as_array().unwrap().iter().filter_map(|e| e["data"]["lat"].as_i64()).collect();
    assert_eq!(lats, [1, 3]);
    let types: Vec<&str> =
        v["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["gps", "detection", "gps"], "producer clock, timestamp order");
    let v = server.get_json("/v1/streams/drone/events?type=gps&end=2026-05-01T10:00:02Z").await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
    let v = server.get_json("/v1/streams/drone/events?timestamps=server").await;
    assert_eq!(v["events"][0]["type"], "note");
    let p1 = server.get_json("/v1/streams/drone/events?limit=2").await;
    assert_eq!(p1["events"].as_array().unwrap().len(), 2);
    let next = p1["next"].as_str().unwrap();
    let p2 = server.get_json(&format!("/v1/streams/drone/events?limit=2&next={next}")).await;
    assert_eq!(p2["events"].as_array().unwrap().len(), 1);
    assert_eq!(p2["events"][0]["data"]["lat"], 3);

    // Bad input is a precise 4xx and stores nothing.
    assert_eq!(post(json!({"data": 1})).await.status(), 400);
    assert_eq!(post(json!([])).await.status(), 400);
    let (status, _) = server.get_text("/v1/streams/nope/events").await;
    assert_eq!(status, 404);

    // The same events are in the metadata data stream, for Kinesis clients.
    let kds = kinesis_client(&server.base);
    let stored = events_of(&kds, "sluice-metadata", "drone", 4).await;
    assert_eq!(stored.len(), 4);
    server.stop().await;
}

/// Reads SSE `data:` payloads from a response until `n` arrived (bounded).
async fn sse_data(resp: reqwest::Response, n: usize) -> Vec<Value> {
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("SSE event in time")
            .expect("SSE stream open")
            .expect("SSE bytes");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            for line in block.lines() {
                if let Some(d) = line.strip_prefix("data:") {
                    out.push(serde_json::from_str(d.trim()).expect("SSE json"));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_shard_records_are_pushed_live_over_sse() {
    let server = TestServer::start().await;
    server.create_stream("live").await;
    server
        .http
        .post(server.url("/v1/streams/live/events"))
        .json(&json!({"timestamp": "2026-05-01T09:00:00Z", "type": "old"}))
        .send()
        .await
        .unwrap();
    // Stored range first, then live events.
    let follow = server
        .http
        .get(server.url("/v1/streams/live/events?start=2026-05-01T00:00:00Z"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(follow.headers()["content-type"], "text/event-stream");
    let shard_follow = server
        .http
        .get(server.url("/v1/data-streams/sluice-metadata/shards/shardId-000000000000/records?from=TRIM_HORIZON"))
        .send()
        .await
        .unwrap();
    for i in 0..3 {
        let resp = server
            .http
            .post(server.url("/v1/streams/live/events"))
            .json(&json!({"timestamp": format!("2026-05-01T10:00:0{i}Z"), "type": "new", "data": {"i": i}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    }
    let got = sse_data(follow, 4).await;
    assert_eq!(got[0]["type"], "old");
    let is: Vec<i64> = got[1..].iter().map(|e| e["data"]["i"].as_i64().unwrap()).collect();
    assert_eq!(is, [0, 1, 2]);
    let records = sse_data(shard_follow, 4).await;
    assert!(records.iter().all(|r| r["partitionKey"] == "live"));
    assert!(records.iter().all(|r| r["sequenceNumber"].is_string() && r["data"].is_string()));

    let (status, _) = server
        .get_text(
            "/v1/data-streams/sluice-metadata/shards/shardId-000000000000/records?from=SOMEWHERE",
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) =
        server.get_text("/v1/data-streams/nope/shards/shardId-000000000000/records").await;
    assert_eq!(status, 404);
    server.stop().await;
}
