//! Bad input gets its documented error and loses nothing: garbage and truncated fMP4, decode
//! times going backwards, oversize fragments, a second producer, invalid names and JSON.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use sluice::clock::SystemClock;

fn error_acks(acks: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    acks_of(acks, "ERROR")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_good_fragments_is_4006_with_its_offset_and_keeps_the_good_ones() {
    let server = TestServer::start().await;
    server.create_stream("g").await;
    let (init, frags) = split_fixture(&fixture("h264.mp4"));
    let mut body = init.clone();
    body.extend_from_slice(&frags[0]);
    body.extend_from_slice(&frags[1]);
    let garbage_at = body.len();
    body.extend_from_slice(b"\x00\x00\x00\x03 this is not mp4 at all");
    let acks = server.push("g", body, "").await;
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 2, "{acks:?}");
    let errors = error_acks(&acks);
    assert_eq!(errors.len(), 1, "{acks:?}");
    assert_eq!(errors[0]["ErrorCode"], 4006);
    let msg = errors[0]["Message"].as_str().unwrap();
    assert!(msg.contains(&garbage_at.to_string()), "the error names byte {garbage_at}: {msg}");
    assert_eq!(server.fragments("g").await.len(), 2);

    // Garbage from the first byte.
    let acks = server.push("g", b"GET / HTTP/1.1\r\n\r\n".to_vec(), "").await;
    assert_eq!(error_acks(&acks)[0]["ErrorCode"], 4006);
    assert_eq!(server.fragments("g").await.len(), 2, "stored data is untouched");
    // The server still takes a good producer afterwards.
    let acks = server.push("g", fixture("h264.mp4"), "").await;
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 6);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_body_drops_only_the_partial_fragment() {
    let server = TestServer::start().await;
    server.create_stream("t").await;
    let (init, frags) = split_fixture(&fixture("h264.mp4"));
    let mut body = init.clone();
    for f in &frags[..3] {
        body.extend_from_slice(f);
    }
    body.extend_from_slice(&frags[3][..frags[3].len() / 2]);
    let acks = server.push("t", body, "").await;
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 3);
    let errors = error_acks(&acks);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["ErrorCode"], 4000);
    assert_eq!(server.fragments("t").await.len(), 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_time_going_backwards_is_4004_and_the_session_goes_on() {
    let server = TestServer::start().await;
    server.create_stream("b").await;
    let (init, frags) = split_fixture(&fixture("h264.mp4"));
    let mut body = init.clone();
    for i in [0, 2, 1, 3] {
        body.extend_from_slice(&frags[i]);
    }
    let acks = server.push("b", body, "").await;
    let errors = error_acks(&acks);
    assert_eq!(errors.len(), 1, "{acks:?}");
    assert_eq!(errors[0]["ErrorCode"], 4004);
    assert_eq!(errors[0]["ErrorName"], "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS");
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 3, "fragments 0, 2 and 3 are kept");
    let listed = server.fragments("b").await;
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[2]["sizeBytes"].as_u64().unwrap() as usize, frags[3].len());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_fragment_is_4001_and_long_fragment_is_4002() {
    let server = TestServer::start_with(
        |c| {
            c.ingest.max_fragment_bytes = 50_000;
        },
        Arc::new(SystemClock),
    )
    .await;
    server.create_stream("big").await;
    let acks = server.push("big", fixture("h264.mp4"), "").await;
    let errors = error_acks(&acks);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["ErrorCode"], 4001);
    assert_eq!(server.fragments("big").await.len(), 0);
    server.stop().await;

    let server = TestServer::start_with(
        |c| {
            c.ingest.max_fragment_duration_ms = std::time::Duration::from_millis(500);
        },
        Arc::new(SystemClock),
    )
    .await;
    server.create_stream("long").await;
    let acks = server.push("long", fixture("h264.mp4"), "").await;
    let errors = error_acks(&acks);
    assert_eq!(errors.len(), 6, "every 1-s fragment is over 500 ms: {acks:?}");
    assert!(errors.iter().all(|e| e["ErrorCode"] == 4002));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_gets_409_while_the_first_is_connected() {
    let server = TestServer::start().await;
    server.create_stream("one").await;
    let (init, frags) = split_fixture(&fixture("h264.mp4"));
    let first =
        connect_producer(&server.http, server.url("/v1/streams/one/media?acks=stream")).await;
    first.send(init.clone()).await;
    first.send(frags[0].clone()).await;
    // Wait (bounded) until the first producer is registered.
    for _ in 0..100 {
        if server.get_json("/v1/streams/one").await["live"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resp = server
        .http
        .put(server.url("/v1/streams/one/media"))
        .body(fixture("h264.mp4"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "ResourceInUse");
    assert!(err["error"]["message"].as_str().unwrap().contains("already has a producer"));
    first.send(frags[1].clone()).await;
    let acks = first.finish().await;
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 2, "{acks:?}");
    // Once the first has gone, the next producer is welcome.
    let acks = server.push("one", fixture("h264.mp4"), "").await;
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 6);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_that_vanishes_mid_fragment_loses_only_that_fragment() {
    let server = TestServer::start().await;
    server.create_stream("gone").await;
    let (init, frags) = split_fixture(&fixture("h264.mp4"));
    let producer = connect_producer(&server.http, server.url("/v1/streams/gone/media")).await;
    producer.send(init).await;
    producer.send(frags[0].clone()).await;
    producer.send(frags[1][..1000].to_vec()).await;
    for _ in 0..100 {
        if server.fragments("gone").await.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The client's body fails: the connection is torn down mid-fragment.
    producer.tx.send(Err(std::io::Error::other("producer crashed"))).await.unwrap();
    let _ = producer.finish().await;
    for _ in 0..100 {
        if server.get_json("/v1/streams/gone").await["live"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.get_json("/v1/streams/gone").await["live"], false);
    assert_eq!(server.fragments("gone").await.len(), 1);
    let acks = server.push("gone", fixture("h264.mp4"), "").await;
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 6);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_names_and_requests_get_precise_errors() {
    let server = TestServer::start().await;
    let post = |body: serde_json::Value| {
        let http = server.http.clone();
        let url = server.url("/v1/streams");
        async move { http.post(url).json(&body).send().await.unwrap() }
    };
    // Path components (`.`, `..`) and names of dots only are not names: a stream named `..`
    // would otherwise write its images beside, not inside, a configured directory.
    for bad in ["", "has space", "slash/y", "é", &"x".repeat(257), ".", "..", "..."] {
        let resp = post(json!({ "name": bad })).await;
        assert_eq!(resp.status(), 400, "name {bad:?}");
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "InvalidArgument");
    }
    // A name with dots and other characters is fine. A dots-only name in a URL path is refused
    // (`.` and `..` themselves are resolved away by every HTTP client before they are sent).
    assert_eq!(post(json!({ "name": ".cam." })).await.status(), 201);
    for path in ["/v1/streams/...", "/v1/streams/.../hls/live.m3u8"] {
        let resp = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
    }
    // A client that sends `..` as it is (curl --path-as-is) gets the same answer.
    for path in ["/v1/streams/..", "/v1/streams/./hls/live.m3u8"] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = server.base.trim_start_matches("http://").to_owned();
        let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut answer = String::new();
        sock.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
    }
    let resp = post(json!({ "name": "ok", "retentionHours": 87601 })).await;
    assert_eq!(resp.status(), 400);
    let resp = post(json!({ "name": "ok", "retentionHours": "ten" })).await;
    assert_eq!(resp.status(), 400);
    let resp = post(json!({ "name": "ok", "colour": "red" })).await;
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("colour"), "the unknown field is named: {text}");
    let resp = server
        .http
        .post(server.url("/v1/streams"))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = server
        .http
        .post(server.url("/v1/streams"))
        .body(vec![b' '; 1024 * 1024 + 100])
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    server.create_stream("ok").await;
    assert_eq!(post(json!({ "name": "ok" })).await.status(), 409);
    for path in ["/v1/streams/nope", "/v1/streams/nope/fragments", "/v1/streams/nope/hls/live.m3u8"]
    {
        let (status, body) = server.get_text(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("ResourceNotFound"), "{body}");
    }
    let (status, _) = server.get_text("/v1/streams/bad%20name").await;
    assert_eq!(status, 400);
    let resp = server
        .http
        .put(server.url("/v1/streams/nope/media"))
        .body(fixture("h264.mp4"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let (status, body) = server.get_text("/v1/streams/ok/fragments?start=yesterday").await;
    assert_eq!(status, 400);
    assert!(body.contains("start"), "{body}");
    let (status, _) = server.get_text("/v1/streams/ok/fragments?limit=0").await;
    assert_eq!(status, 400);
    let (status, _) = server.get_text("/v1/streams/ok/hls/index.m3u8?mode=sideways").await;
    assert_eq!(status, 400);
    let resp = server
        .http
        .put(server.url("/v1/streams/ok/media?timestamps=sometimes"))
        .body(vec![])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    server.stop().await;
}
