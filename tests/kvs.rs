//! The Kinesis Video Streams API, black-box, through boto3 (`kinesisvideo`,
//! `kinesis-video-archived-media`, `kinesis-video-media`, from the venv `make test` sets up) and
//! the AWS SDK for JavaScript v3 (from npm): the control plane over the same streams the native
//! API serves, SigV4 and grants, archived media checked with ffprobe, and GetMedia's Matroska
//! checked with ebmlite, ffprobe and GStreamer. The scripts are tests/python/kvs_*.py and
//! tests/node/kvs_clients.mjs.

mod common;

use std::sync::Arc;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_drives_the_control_plane() {
    let server = TestServer::start_with(|_| {}, Arc::new(sluice::clock::SystemClock)).await;
    let frames = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(venv_python());
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/kvs_control.py"))
        .arg(&server.base)
        .arg(frames.path());
    let (ok, stderr) = run_bounded(cmd).await;
    assert!(ok, "kvs_control.py: {stderr}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_and_grants_guard_the_control_plane() {
    use base64::Engine;
    use sluice::config::{Action, Grant, StreamPattern, UserEntry};
    let server = TestServer::start_with(
        |c| {
            c.auth.enabled = true;
            c.auth.failures_per_minute = 10_000;
            c.auth.users.push(UserEntry {
                name: "operator".into(),
                password_hash: sluice::auth::password::hash("operator-password"),
                grants: vec![Grant { action: Action::Admin, streams: StreamPattern::All }],
                cidrs: vec![],
            });
        },
        Arc::new(sluice::clock::SystemClock),
    )
    .await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("operator:operator-password")
    );
    let (admin_id, admin_secret) = access_key(&server, &basic, "admin", "cam*").await;
    let (read_id, read_secret) = access_key(&server, &basic, "read", "cam*").await;
    // Unsigned: refused before anything runs.
    let resp = server.http.post(server.url("/listStreams")).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["x-amzn-errortype"], "MissingAuthenticationTokenException");
    let mut cmd = std::process::Command::new(venv_python());
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/kvs_auth.py")).args([
        &server.base,
        &admin_id,
        &admin_secret,
        &read_id,
        &read_secret,
    ]);
    let (ok, stderr) = run_bounded(cmd).await;
    assert!(ok, "kvs_auth.py: {stderr}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_lists_fragments_and_plays_an_hls_session() {
    let server = TestServer::start_with(|_| {}, Arc::new(sluice::clock::SystemClock)).await;
    server.create_stream("arch").await;
    server.push("arch", fixture("h264.mp4"), "?producerStart=2026-03-01T11:00:00Z").await;
    let native = server.get_json("/v1/streams/arch/fragments").await;
    let numbers: Vec<String> = native["fragments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fragmentNumber"].as_str().unwrap().to_owned())
        .collect();
    assert!(numbers.len() >= 3, "{native}");
    let (frames, _) = ffprobe_frames(fixture_path("h264.mp4").to_str().unwrap());
    let mut cmd = std::process::Command::new(venv_python());
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/kvs_archived.py")).args([
        &server.base,
        "arch",
        &frames.to_string(),
        &numbers.join(","),
    ]);
    let (ok, stderr) = run_bounded(cmd).await;
    assert!(ok, "kvs_archived.py: {stderr}");
    server.stop().await;
}

/// Audio frames of a file, by ffprobe.
fn audio_frames(path: &str) -> u64 {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "a:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path])
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("audio frame count")
}

/// The native fragment numbers of a stream.
async fn fragment_numbers(server: &TestServer, stream: &str) -> Vec<String> {
    let native = server.get_json(&format!("/v1/streams/{stream}/fragments")).await;
    native["fragments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fragmentNumber"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_gets_media_as_matroska_from_every_start_selector() {
    let server = TestServer::start_with(|_| {}, Arc::new(sluice::clock::SystemClock)).await;
    server.create_stream("mkv").await;
    server.push("mkv", fixture("h264-aac.mp4"), "?producerStart=2026-03-01T11:00:00Z").await;
    server.create_stream("bf").await;
    server.push("bf", fixture("h264-bframes.mp4"), "?producerStart=2026-03-01T11:00:00Z").await;
    let numbers = fragment_numbers(&server, "mkv").await;
    assert!(numbers.len() >= 5, "{numbers:?}");
    let path = fixture_path("h264-aac.mp4");
    let (video, _) = ffprobe_frames(path.to_str().unwrap());
    let audio = audio_frames(path.to_str().unwrap());
    let (bframes, _) = ffprobe_frames(fixture_path("h264-bframes.mp4").to_str().unwrap());
    let mut cmd = std::process::Command::new(venv_python());
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/kvs_media.py")).args([
        &server.base,
        "mkv",
        &format!("{video},{audio}"),
        &numbers.join(","),
        "bf",
        &bframes.to_string(),
    ]);
    let (ok, stderr) = run_bounded(cmd).await;
    assert!(ok, "kvs_media.py: {stderr}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_sdk_manages_streams_and_reads_archived_media() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("node_modules/@aws-sdk/client-kinesis-video-archived-media").exists(),
        "node_modules/@aws-sdk/client-kinesis-video* are required: run `make test` (its setup installs them)"
    );
    let server = TestServer::start_with(|_| {}, Arc::new(sluice::clock::SystemClock)).await;
    server.create_stream("jsarch").await;
    server.push("jsarch", fixture("h264.mp4"), "?producerStart=2026-03-01T11:00:00Z").await;
    let (frames, _) = ffprobe_frames(fixture_path("h264.mp4").to_str().unwrap());
    let mut cmd = std::process::Command::new("node");
    cmd.arg(root.join("tests/node/kvs_clients.mjs")).args([
        &server.base,
        "jsarch",
        &frames.to_string(),
    ]);
    let (ok, stderr) = run_bounded(cmd).await;
    assert!(ok, "kvs_clients.mjs: {stderr}");
    server.stop().await;
}

/// The values of tag `name` in a GetMedia body, in order (each `TagString` follows its
/// `TagName`; the values here are short, so their size is one byte).
fn tag_values(body: &[u8], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = body[at..].windows(name.len()).position(|w| w == name.as_bytes()) {
        let after = at + i + name.len();
        assert_eq!(&body[after..after + 2], [0x44, 0x87], "a TagString follows the TagName");
        let len = usize::from(body[after + 2] & 0x7F);
        out.push(String::from_utf8_lossy(&body[after + 3..after + 3 + len]).into_owned());
        at = after;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_media_follows_a_live_producer_and_ends_when_it_leaves() {
    use futures_util::StreamExt;
    let server = TestServer::start().await;
    server.create_stream("live").await;
    let (init, fragments) = split_fixture(&fixture("h264.mp4"));
    let mut producer =
        connect_producer(&server.http, server.url("/v1/streams/live/media?acks=stream")).await;
    producer.send(init).await;
    for f in &fragments[..2] {
        producer.send(f.clone()).await;
        producer.next("PERSISTED").await;
    }
    let resp = server
        .http
        .post(server.url("/getMedia"))
        .body(r#"{"StreamName":"live","StartSelector":{"StartSelectorType":"NOW"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut got = Vec::new();
    let token = "AWS_KINESISVIDEO_CONTINUATION_TOKEN";
    // Reads until `n` documents are complete (each ends with its continuation token).
    async fn until(
        body: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
        got: &mut Vec<u8>,
        token: &str,
        n: usize,
    ) {
        while tag_values(got, token).len() < n {
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), body.next())
                .await
                .expect("GetMedia sends within 20 s")
                .expect("the body goes on")
                .unwrap();
            got.extend_from_slice(&chunk);
        }
    }
    // NOW: the newest fragment (a keyframe) first.
    until(&mut body, &mut got, token, 1).await;
    assert_eq!(tag_values(&got, "AWS_KINESISVIDEO_FRAGMENT_NUMBER"), ["1"]);
    // Then every fragment as it is persisted, woken by the log.
    for (i, f) in fragments[2..].iter().enumerate() {
        producer.send(f.clone()).await;
        until(&mut body, &mut got, token, i + 2).await;
    }
    producer.finish().await;
    // The producer has left and everything was sent: the body ends.
    while let Some(chunk) = tokio::time::timeout(std::time::Duration::from_secs(20), body.next())
        .await
        .expect("the body ends within 20 s of the producer leaving")
    {
        got.extend_from_slice(&chunk.unwrap());
    }
    let numbers: Vec<String> = (1..fragments.len()).map(|n| n.to_string()).collect();
    assert_eq!(tag_values(&got, "AWS_KINESISVIDEO_FRAGMENT_NUMBER"), numbers);
    let tokens: Vec<String> = (2..=fragments.len()).map(|n| n.to_string()).collect();
    assert_eq!(tag_values(&got, token), tokens);
    // One self-contained document per fragment (frames are counted in the boto3 test).
    let headers = got.windows(4).filter(|w| *w == [0x1A, 0x45, 0xDF, 0xA3]).count();
    assert_eq!(headers, fragments.len() - 1);
    server.stop().await;
}
