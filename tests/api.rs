//! The native REST API for streams: create, describe, list with prefix and pagination, update,
//! delete (with its data), list fragments by either clock, health and metrics.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_lifecycle() {
    let server = TestServer::start().await;
    let created = server
        .create_stream_with(json!({
            "name": "cam-1", "retentionHours": 48, "retentionBytes": 1_000_000_000u64,
            "mediaType": "video/h264", "tags": { "site": "north" }
        }))
        .await;
    assert_eq!(created["name"], "cam-1");
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(created["retentionHours"], 48);
    assert_eq!(created["tags"]["site"], "north");
    assert_eq!(created["live"], false);
    assert_eq!(created["fragmentCount"], 0);
    let d = server.create_stream("cam-2").await;
    assert_eq!(d["retentionHours"], 24, "default retention");
    server.create_stream("door").await;

    let all = server.get_json("/v1/streams").await;
    assert_eq!(all["streams"].as_array().unwrap().len(), 3);
    let cams = server.get_json("/v1/streams?prefix=cam").await;
    assert_eq!(cams["streams"].as_array().unwrap().len(), 2);
    let page = server.get_json("/v1/streams?limit=2").await;
    assert_eq!(page["streams"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap();
    let page2 = server.get_json(&format!("/v1/streams?limit=2&next={next}")).await;
    assert_eq!(page2["streams"][0]["name"], "door");
    assert!(page2["next"].is_null());

    let resp = server
        .http
        .patch(server.url("/v1/streams/cam-1"))
        .json(&json!({ "retentionHours": 1, "retentionBytes": null, "tags": { "site": "south" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let d: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(d["retentionHours"], 1);
    assert!(d["retentionBytes"].is_null());
    assert_eq!(d["tags"]["site"], "south");
    assert_eq!(d["version"], 2);

    server.push("cam-1", fixture("h264.mp4"), "").await;
    let d = server.get_json("/v1/streams/cam-1").await;
    assert_eq!(d["fragmentCount"], 6);
    assert!(d["bytesStored"].as_u64().unwrap() > 600_000);
    assert!(d["earliestProducerTimestamp"].is_string());
    assert!(d["latestServerTimestamp"].is_string());
    assert_eq!(d["firstFragmentNumber"], "0");
    assert_eq!(d["lastFragmentNumber"], "5");

    let resp = server.http.delete(server.url("/v1/streams/cam-1")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let (status, _) = server.get_text("/v1/streams/cam-1").await;
    assert_eq!(status, 404);
    // Re-created under the same name, it starts empty and old segment URLs do not resolve.
    server.create_stream("cam-1").await;
    assert_eq!(server.fragments("cam-1").await.len(), 0);
    let (status, _) = server.get_text("/v1/streams/cam-1/hls/seg/1/0-0.m4s").await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_by_time_range_and_pages() {
    let server = TestServer::start().await;
    server.create_stream("f").await;
    server.push("f", fixture("h264.mp4"), "?producerStart=2026-01-01T00:00:00Z").await;
    let listed = server.fragments("f").await;
    assert_eq!(listed[0]["producerTimestamp"], "2026-01-01T00:00:00.000Z");
    assert_eq!(listed[3]["producerTimestamp"], "2026-01-01T00:00:03.000Z");
    assert_eq!(listed[0]["durationMs"], 1000.0);

    let v = server
        .get_json("/v1/streams/f/fragments?start=2026-01-01T00:00:02Z&end=2026-01-01T00:00:04Z")
        .await;
    let nums: Vec<&str> = v["fragments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fragmentNumber"].as_str().unwrap())
        .collect();
    assert_eq!(nums, ["2", "3", "4"]);
    // Epoch milliseconds work too.
    let start_ms = sluice::clock::Timestamp::parse_api("2026-01-01T00:00:05Z").unwrap().as_millis();
    let v = server.get_json(&format!("/v1/streams/f/fragments?start={start_ms}")).await;
    assert_eq!(v["fragments"].as_array().unwrap().len(), 1);

    let p1 = server.get_json("/v1/streams/f/fragments?limit=4").await;
    assert_eq!(p1["fragments"].as_array().unwrap().len(), 4);
    let next = p1["next"].as_str().unwrap();
    let p2 = server.get_json(&format!("/v1/streams/f/fragments?limit=4&next={next}")).await;
    assert_eq!(p2["fragments"].as_array().unwrap().len(), 2);
    assert_eq!(p2["fragments"][0]["fragmentNumber"], "4");
    assert!(p2["next"].is_null());

    // Server clock: everything arrived in the last minute.
    let now = sluice::clock::Timestamp::parse_api(&chrono_now()).unwrap();
    let v = server
        .get_json(&format!(
            "/v1/streams/f/fragments?timestamps=server&start={}",
            now.as_millis() - 60_000
        ))
        .await;
    assert_eq!(v["fragments"].as_array().unwrap().len(), 6);
    server.stop().await;
}

fn chrono_now() -> String {
    use sluice::clock::Clock;
    sluice::clock::SystemClock.now().as_millis().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_timestamps_use_the_decode_time_as_wall_clock() {
    let server = TestServer::start().await;
    server.create_stream("abs").await;
    let acks = server.push("abs", fixture("h264.mp4"), "?timestamps=absolute").await;
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 6);
    let listed = server.fragments("abs").await;
    // The fixture's decode times start at 0: the Unix epoch.
    assert_eq!(listed[0]["producerTimestamp"], "1970-01-01T00:00:00.000Z");
    assert_eq!(listed[5]["producerTimestamp"], "1970-01-01T00:00:05.000Z");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    let server = TestServer::start().await;
    let (status, body) = server.get_text("/healthz").await;
    assert_eq!(status, 200);
    assert!(body.contains("ok"));
    server.create_stream("m").await;
    server.push("m", fixture("h264.mp4"), "").await;
    server.push("m", b"garbage!".to_vec(), "").await;
    server.get_text("/v1/streams/m/hls/index.m3u8").await;
    let (_, text) = server.get_text("/metrics").await;
    for needle in [
        "sluice_ingest_fragments_total{stream=\"m\"} 6",
        "sluice_ingest_errors_total{stream=\"m\",code=\"4006\"} 1",
        "sluice_active_producers 0",
        "sluice_hls_requests_total{kind=\"index\"} 1",
        "sluice_stored_fragments{stream=\"m\"} 6",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    assert!(text.contains("sluice_ingest_bytes_total{stream=\"m\"}"));
    assert!(text.contains("sluice_stored_bytes{stream=\"m\"}"));
    assert!(text.contains("sluice_retention_deleted_fragments"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_is_served() {
    let server = TestServer::start().await;
    let (status, html) = server.get_text("/").await;
    assert_eq!(status, 200);
    assert!(html.contains("<title>Sluice</title>"));
    let (status, js) = server.get_text("/ui/api.js").await;
    assert_eq!(status, 200);
    assert!(js.contains("/v1/streams"));
    // hls.js, embedded from npm at a versioned path named by the page.
    let hls = html
        .split('"')
        .find(|s| s.starts_with("/vendor/hls-"))
        .expect("the page names the embedded hls.js");
    let (status, js) = server.get_text(hls).await;
    assert_eq!(status, 200);
    assert!(js.len() > 100_000, "hls.js is {} bytes", js.len());
    let (status, _) = server.get_text("/ui/missing.js").await;
    assert_eq!(status, 404);
    server.stop().await;
}
