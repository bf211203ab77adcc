//! Crash safety and graceful shutdown against the real `sluice` binary: SIGKILL in the middle of
//! an ingest loses nothing that was acknowledged PERSISTED and leaves no torn fragment visible;
//! SIGTERM tells the producer, persists what it had, and exits.

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use common::*;

async fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..300 {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    panic!("the server did not exit within 30 s");
}

async fn list_fragments(
    http: &reqwest::Client,
    base: &str,
    stream: &str,
) -> Vec<serde_json::Value> {
    let v: serde_json::Value = http
        .get(format!("{base}/v1/streams/{stream}/fragments"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["fragments"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_ingest_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut server = spawn_server(tmp.path());
    let resp = http
        .post(format!("{}/v1/streams", server.base))
        .json(&serde_json::json!({ "name": "crash" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let (init, frags) = split_fixture(&fixture("h264-aac.mp4"));
    let mut producer =
        connect_producer(&http, format!("{}/v1/streams/crash/media?acks=stream", server.base))
            .await;
    producer.tx.send(Ok(init)).await.unwrap();
    let mut persisted = Vec::new();
    for f in &frags[..4] {
        producer.tx.send(Ok(f.clone())).await.unwrap();
        let ack = producer.next("PERSISTED").await;
        persisted.push(ack["FragmentNumber"].as_str().unwrap().parse::<usize>().unwrap());
    }
    // Half of the next fragment is on the wire when the power goes.
    let half = frags[4][..frags[4].len() / 2].to_vec();
    producer.tx.send(Ok(half)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();

    let server = spawn_server(tmp.path());
    let listed = list_fragments(&http, &server.base, "crash").await;
    assert_eq!(persisted, vec![0, 1, 2, 3]);
    assert_eq!(listed.len(), 4, "every PERSISTED fragment, and no torn one: {listed:?}");
    for (n, f) in listed.iter().enumerate() {
        assert_eq!(f["fragmentNumber"], n.to_string());
        let resp = http
            .get(format!("{}/v1/streams/crash/fragments/{n}/media", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let stored = resp.bytes().await.unwrap();
        assert!(
            stored.as_ref() == frags[n].as_slice(),
            "fragment {n} is byte-identical after the crash"
        );
    }
    // And it still plays and still ingests.
    let (frames, _) = ffprobe_frames(&format!("{}/v1/streams/crash/hls/index.m3u8", server.base));
    assert_eq!(frames, 120);
    let resp = http
        .put(format!("{}/v1/streams/crash/media", server.base))
        .body(fixture("h264-aac.mp4"))
        .send()
        .await
        .unwrap();
    let acks = parse_acks(&resp.text().await.unwrap());
    assert_eq!(acks_of(&acks, "PERSISTED").len(), frags.len());
    assert_eq!(acks_of(&acks, "PERSISTED")[0]["FragmentNumber"], "4");
    let mut child = server.child;
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_the_producer_and_keeps_what_was_persisted() {
    let tmp = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut server = spawn_server(tmp.path());
    http.post(format!("{}/v1/streams", server.base))
        .json(&serde_json::json!({ "name": "term" }))
        .send()
        .await
        .unwrap();
    let (init, frags) = split_fixture(&fixture("h264.mp4"));
    let mut producer =
        connect_producer(&http, format!("{}/v1/streams/term/media?acks=stream", server.base)).await;
    producer.tx.send(Ok(init)).await.unwrap();
    for f in &frags[..2] {
        producer.tx.send(Ok(f.clone())).await.unwrap();
        producer.next("PERSISTED").await;
    }
    let pid = server.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    assert!(status.success());
    let err = producer.next("ERROR").await;
    assert_eq!(err["ErrorCode"], 4008, "{err}");
    let status = wait_exit(&mut server.child).await;
    assert!(status.success(), "clean exit: {status}");

    let mut server = spawn_server(tmp.path());
    assert_eq!(list_fragments(&http, &server.base, "term").await.len(), 2);
    let _ = server.child.kill();
    let _ = server.child.wait();
}
