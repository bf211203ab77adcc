//! End-to-end tests of the web UI and of HLS playback in a real browser: Debian's headless
//! Chromium driven by playwright-core (npm, pinned in package-lock.json) through the scripts in
//! `tests/browser/*.mjs`, against a real server on 127.0.0.1 fed by ffmpeg and the fixtures.
//! Screenshots land in `artifacts/browser/` (gitignored).

mod common;

use std::time::Duration;

use common::browser::*;
use common::*;

/// Waits (bounded) until the stream has at least `n` fragments.
async fn wait_fragments(server: &TestServer, name: &str, n: u64) {
    for _ in 0..150 {
        let d = server.get_json(&format!("/v1/streams/{name}")).await;
        if d["fragmentCount"].as_u64().unwrap_or(0) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("stream {name} did not reach {n} fragments within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_lists_plays_live_and_replays_a_range() {
    require_browser_tools();
    let server = TestServer::start().await;

    // Empty state, then a stream created through the UI's form.
    run_script("ui_empty.mjs", &server.base, &[]).await;
    let cam = server.get_json("/v1/streams/cam1").await;
    assert_eq!(cam["fragmentCount"], 0, "created by the UI, still empty: {cam}");

    // A recorded range on one stream, a live producer on the other.
    server.create_stream("archive").await;
    let acks = server.push("archive", fixture("h264.mp4"), "").await;
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 6);
    let live = push_live(&server.base, "cam1", Some(90));
    wait_fragments(&server, "cam1", 5).await;

    let out = run_script("ui.mjs", &server.base, &[]).await;
    println!("{out}");
    drop(live);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ll_hls_plays_live_in_low_latency_mode() {
    require_browser_tools();
    let server = TestServer::start().await;
    server.create_stream("ll").await;
    let live = push_live(&server.base, "ll", Some(60));
    wait_fragments(&server, "ll", 5).await;
    let out = run_script("llhls.mjs", &server.base, &[("STREAM", "ll".into())]).await;
    println!("{out}");
    drop(live);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_signs_in_and_plays_through_a_playback_session() {
    use sluice::config::{Action, Grant, StreamPattern, UserEntry};
    require_browser_tools();
    let server = TestServer::start_with(
        |c| {
            c.auth.enabled = true;
            let cam1 = StreamPattern::parse("cam1").unwrap();
            // The camera publishes without credentials (anonymous publish on cam1 only).
            c.auth.anonymous = vec![Grant { action: Action::Publish, streams: cam1.clone() }];
            c.auth.users.push(UserEntry {
                name: "viewer".into(),
                password_hash: sluice::auth::password::hash("viewer-password"),
                grants: vec![Grant { action: Action::Read, streams: cam1 }],
                cidrs: vec![],
            });
        },
        std::sync::Arc::new(sluice::clock::SystemClock),
    )
    .await;
    for name in ["cam1", "door"] {
        let created = server.state.video.create(
            sluice::video::NewStream {
                name: sluice::name::StreamName::new(name).unwrap(),
                retention_hours: None,
                retention_bytes: None,
                media_type: None,
                tags: Default::default(),
                device_name: None,
                kms_key_id: None,
            },
            "test",
        );
        assert!(created.is_ok());
    }
    let live = push_live(&server.base, "cam1", Some(90));
    for _ in 0..150 {
        let s = server.state.video.get(&sluice::name::StreamName::new("cam1").unwrap()).unwrap();
        if s.describe().fragment_count >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = run_script("ui_auth.mjs", &server.base, &[]).await;
    println!("{out}");
    drop(live);
    server.stop().await;
}

/// The system clock moved by an offset the test sets: the server's "now" jumps forward while
/// ingest and playback keep running in real time.
#[derive(Debug, Default)]
struct OffsetClock(std::sync::atomic::AtomicI64);

impl sluice::clock::Clock for OffsetClock {
    fn now(&self) -> sluice::clock::Timestamp {
        let offset = self.0.load(std::sync::atomic::Ordering::SeqCst);
        let now = sluice::clock::SystemClock.now().as_micros();
        sluice::clock::Timestamp::from_micros(now + offset)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_plays_a_playback_session_until_it_expires() {
    use sluice::clock::Clock;
    use sluice::config::{Action, Grant, StreamPattern};
    require_browser_tools();
    let clock = std::sync::Arc::new(OffsetClock::default());
    let server = TestServer::start_with(
        |c| {
            c.auth.enabled = true;
            let cam = StreamPattern::parse("cam").unwrap();
            // The camera publishes without credentials; sessions need `playback`.
            c.auth.anonymous = vec![
                Grant { action: Action::Publish, streams: cam.clone() },
                Grant { action: Action::Playback, streams: cam },
            ];
        },
        clock.clone(),
    )
    .await;
    let created = server.state.video.create(
        sluice::video::NewStream {
            name: sluice::name::StreamName::new("cam").unwrap(),
            retention_hours: None,
            retention_bytes: None,
            media_type: None,
            tags: Default::default(),
            device_name: None,
            kms_key_id: None,
        },
        "test",
    );
    assert!(created.is_ok());
    let live = push_live(&server.base, "cam", Some(90));
    // Three whole segments (2 s GOPs of 200 ms fragments) first, so the session plays an
    // established live stream: hls.js's live-edge boundary defect (docs/design/playback.md) is
    // at its worst in a new stream's first segment, and it is not what this test is about.
    wait_fragments(&server, "cam", 30).await;
    let session = server
        .http
        .post(server.url("/v1/streams/cam/playback-sessions"))
        .json(&serde_json::json!({"expiresInSeconds": 300}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let url = session["url"].as_str().expect("a session url").to_owned();
    let flag = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    std::fs::remove_file(&flag).unwrap();
    let env = [("SESSION_URL", url), ("FLAG", flag.display().to_string())];
    let script = run_script("session_expiry.mjs", &server.base, &env);
    let expire = async {
        for _ in 0..600 {
            if flag.exists() {
                // Past the session's expiry.
                clock.0.store(301_000_000, std::sync::atomic::Ordering::SeqCst);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (out, ()) = tokio::join!(script, expire);
    println!("{out}");
    assert!(clock.now() > sluice::clock::SystemClock.now(), "the clock was moved");
    drop(live);
    server.stop().await;
}
