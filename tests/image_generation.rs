//! Continuous image generation, end to end: a stream configured with `imageGeneration` gets one
//! image per interval into a directory (checked with ffprobe) or POSTed to a webhook served by the
//! test; a failing webhook is retried until it recovers, with the failures counted; a hung webhook
//! never delays ingest; a restart resumes without duplicates; bad configurations are precise 400s.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::*;
use serde_json::{Value, json};
use sluice::clock::{SystemClock, Timestamp};

const T0: &str = "2026-11-21T10:00:00.000Z";

fn t0() -> Timestamp {
    Timestamp::parse_api(T0).unwrap()
}

async fn patch(s: &TestServer, name: &str, body: Value) -> (u16, Value) {
    let resp = s
        .http
        .patch(s.url(&format!("/v1/streams/{name}")))
        .json(&body)
        .send()
        .await
        .expect("patch");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn manifest(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("manifest line is JSON"))
        .collect()
}

/// Polls `f` (bounded: 60 s) until it returns `Some`.
async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The value of a metric series in Prometheus text, e.g. `sluice_imagegen_generated_total{stream="cam"}`.
async fn metric(s: &TestServer, series: &str) -> f64 {
    let (_, text) = s.get_text("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_destination_writes_images_manifest_and_events() {
    let s = TestServer::start().await;
    let out = tempfile::tempdir().unwrap();
    s.create_stream("cam").await;
    let (status, body) = patch(
        &s,
        "cam",
        json!({ "imageGeneration": {
            "intervalMs": 1000, "width": 320,
            "destination": { "kind": "directory", "path": out.path() }
        }}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["imageGeneration"]["intervalMs"], 1000);
    assert_eq!(body["imageGeneration"]["format"], "jpeg");
    assert_eq!(body["imageGeneration"]["status"]["imagesGenerated"], 0);

    // 6 s of video in 1 s fragments from T0: instants T0 + 0..5 s.
    let acks = s.push("cam", fixture("h264.mp4"), &format!("?producerStart={T0}")).await;
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 6);
    let dir = out.path().join("cam");
    let lines = eventually("6 manifest lines", async || {
        let m = manifest(&dir.join("manifest.jsonl"));
        (m.len() >= 6).then_some(m)
    })
    .await;
    assert_eq!(lines.len(), 6, "one image per instant: {lines:?}");
    for (k, l) in lines.iter().enumerate() {
        let instant = t0().add_micros(k as i64 * 1_000_000);
        assert_eq!(l["stream"], "cam");
        assert_eq!(l["instant"], instant.to_rfc3339());
        assert_eq!(l["timestamps"], "producer");
        // The frame on display at the instant: at or before it, within one frame (30 fps).
        let p = Timestamp::parse_api(l["producerTimestamp"].as_str().unwrap()).unwrap();
        assert!(p <= instant && instant.micros_since(p) < 34_000, "{l}");
        assert!(l["serverTimestamp"].is_string());
        assert_eq!(l["fragmentNumber"], k.to_string(), "{l}");
        let file = l["file"].as_str().unwrap();
        assert!(file.starts_with("cam_2026-11-21T10-00-0") && file.ends_with(".jpg"), "{file}");
        assert_eq!((l["width"].as_u64(), l["height"].as_u64()), (Some(320), Some(180)));
        let (codec, w, h) = ffprobe_image(&dir.join(file));
        assert_eq!((codec.as_str(), w, h), ("mjpeg", 320, 180), "{file}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    let d = s.get_json("/v1/streams/cam").await;
    let st = &d["imageGeneration"]["status"];
    assert_eq!(st["imagesGenerated"], 6, "{d}");
    assert_eq!(st["imagesDelivered"], 6);
    assert_eq!(st["errors"], 0);
    assert_eq!(metric(&s, "sluice_imagegen_generated_total{stream=\"cam\"}").await, 6.0);

    let events = eventually("6 ImageGenerated events", async || {
        let e: Vec<Value> = lifecycle_events(&s.base, "cam")
            .await
            .into_iter()
            .filter(|e| e["type"] == "ImageGenerated")
            .collect();
        (e.len() >= 6).then_some(e)
    })
    .await;
    assert_eq!(events.len(), 6);
    assert_eq!(events[0]["details"]["instant"], T0);
    assert_eq!(events[0]["details"]["destination"], "directory");
    assert_eq!(events[0]["details"]["file"], lines[0]["file"]);
    assert_eq!(events[0]["details"]["width"], 320);

    // Removing generation: describe says null, and nothing more is generated.
    let (status, body) = patch(&s, "cam", json!({ "imageGeneration": null })).await;
    assert_eq!(status, 200);
    assert!(body["imageGeneration"].is_null(), "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configurations_are_precise_400s_and_change_nothing() {
    let s = TestServer::start().await;
    s.create_stream("cam").await;
    let dir = json!({ "kind": "directory", "path": "/tmp/sluice-never-written" });
    // A directory under a regular file cannot be created, even by root.
    let file = tempfile::NamedTempFile::new().unwrap();
    let not_a_dir = file.path().join("frames");
    let cases = [
        (json!({ "intervalMs": 10, "destination": dir }), "intervalMs"),
        (json!({ "intervalMs": 1000, "format": "gif", "destination": dir }), "format"),
        (json!({ "intervalMs": 1000, "width": 0, "destination": dir }), "width"),
        (json!({ "intervalMs": 1000, "quality": 101, "destination": dir }), "quality"),
        (
            json!({ "intervalMs": 1000, "destination": { "kind": "ftp", "url": "x" } }),
            "destination",
        ),
        (
            json!({ "intervalMs": 1000, "destination": { "kind": "directory", "path": "relative/dir" } }),
            "destination.path",
        ),
        (
            json!({ "intervalMs": 1000, "destination": { "kind": "webhook", "url": "gopher://h/" } }),
            "destination.url",
        ),
        (json!({ "intervalMs": 1000 }), "destination"),
        (json!("every second"), "imageGeneration"),
        (
            json!({ "intervalMs": 1000, "destination": { "kind": "directory", "path": not_a_dir } }),
            "cannot create",
        ),
    ];
    for (cfg, field) in cases {
        let (status, body) =
            patch(&s, "cam", json!({ "retentionHours": 1, "imageGeneration": cfg })).await;
        assert_eq!(status, 400, "{cfg}: {body}");
        let msg = body["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(field), "{cfg}: {msg}");
    }
    let d = s.get_json("/v1/streams/cam").await;
    assert!(d["imageGeneration"].is_null(), "{d}");
    assert_eq!(d["retentionHours"], 24, "a rejected PATCH changes nothing");
    s.stop().await;
}

/// What the test's webhook saw.
#[derive(Default)]
struct Hook {
    /// Requests answered 500 before recovering.
    fail_first: usize,
    calls: AtomicUsize,
    received: std::sync::Mutex<Vec<(HeaderMap, bytes::Bytes)>>,
    /// While set, requests hang until it is cleared (bounded by the handler's own timeout).
    hang: tokio::sync::watch::Sender<bool>,
}

async fn hook_handler(
    State(h): State<Arc<Hook>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> StatusCode {
    let n = h.calls.fetch_add(1, Ordering::SeqCst);
    let mut rx = h.hang.subscribe();
    let _ = tokio::time::timeout(Duration::from_secs(60), rx.wait_for(|hang| !hang)).await;
    if n < h.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    h.received.lock().unwrap().push((headers, body));
    StatusCode::NO_CONTENT
}

async fn serve_hook(hook: Arc<Hook>) -> String {
    let app =
        axum::Router::new().route("/hook", axum::routing::post(hook_handler)).with_state(hook);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_is_retried_until_it_recovers() {
    let hook = Arc::new(Hook { fail_first: 3, ..Hook::default() });
    let url = serve_hook(hook.clone()).await;
    let s = TestServer::start_with(
        |c| {
            c.image_generation.webhook_initial_backoff_ms = std::time::Duration::from_millis(20);
            c.image_generation.webhook_max_backoff_ms = std::time::Duration::from_millis(100);
            c.image_generation.webhook_max_attempts = 5;
        },
        Arc::new(SystemClock),
    )
    .await;
    s.create_stream("cam").await;
    let (status, body) = patch(
        &s,
        "cam",
        json!({ "imageGeneration": {
            "intervalMs": 2000, "format": "png", "height": 90,
            "destination": { "kind": "webhook", "url": url }
        }}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    s.push("cam", fixture("h264.mp4"), &format!("?producerStart={T0}")).await;
    // Instants T0, T0+2 s, T0+4 s; the first image needs four attempts.
    let got = eventually("3 delivered images", async || {
        let r = hook.received.lock().unwrap();
        (r.len() >= 3).then(|| r.clone())
    })
    .await;
    assert_eq!(got.len(), 3);
    assert_eq!(hook.calls.load(Ordering::SeqCst), 6, "3 failures + 3 successes");
    for (k, (headers, body)) in got.iter().enumerate() {
        let instant = t0().add_micros(k as i64 * 2_000_000);
        assert_eq!(headers["content-type"], "image/png");
        assert_eq!(headers["x-sluice-stream"], "cam");
        assert_eq!(headers["x-sluice-instant"], instant.to_rfc3339().as_str());
        assert_eq!(headers["x-sluice-fragment-number"], (2 * k).to_string().as_str());
        let p =
            Timestamp::parse_api(headers["x-sluice-producer-timestamp"].to_str().unwrap()).unwrap();
        assert!(p <= instant && instant.micros_since(p) < 34_000);
        assert!(headers.contains_key("x-sluice-server-timestamp"));
        assert!(body.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG body");
        assert_eq!(sluice::frames_cli::image_size(body), Some((160, 90)));
    }
    let failures = metric(&s, "sluice_imagegen_webhook_failures_total{stream=\"cam\"}").await;
    let retries = metric(&s, "sluice_imagegen_webhook_retries_total{stream=\"cam\"}").await;
    let delivered = metric(&s, "sluice_imagegen_delivered_total{stream=\"cam\"}").await;
    assert_eq!((failures, retries, delivered), (3.0, 3.0, 3.0));
    let d = s.get_json("/v1/streams/cam").await;
    let st = &d["imageGeneration"]["status"];
    assert_eq!(st["webhookFailures"], 3, "{d}");
    assert_eq!(st["imagesDropped"], 0);
    assert!(st["lastError"].as_str().unwrap_or("").contains("500"), "{d}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_never_recovers_gets_bounded_attempts_then_drops() {
    let hook = Arc::new(Hook { fail_first: usize::MAX, ..Hook::default() });
    let url = serve_hook(hook.clone()).await;
    let s = TestServer::start_with(
        |c| {
            c.image_generation.webhook_initial_backoff_ms = std::time::Duration::from_millis(10);
            c.image_generation.webhook_max_backoff_ms = std::time::Duration::from_millis(40);
            c.image_generation.webhook_max_attempts = 3;
        },
        Arc::new(SystemClock),
    )
    .await;
    s.create_stream("cam").await;
    let cfg = json!({ "imageGeneration": {
        "intervalMs": 2000, "width": 64, "destination": { "kind": "webhook", "url": url }
    }});
    assert_eq!(patch(&s, "cam", cfg).await.0, 200);
    s.push("cam", fixture("h264.mp4"), &format!("?producerStart={T0}")).await;
    // Three images, three attempts each, then each is dropped.
    let dropped = eventually("3 dropped images", async || {
        let d = metric(&s, "sluice_imagegen_dropped_total{stream=\"cam\"}").await;
        (d >= 3.0).then_some(d)
    })
    .await;
    assert_eq!(dropped, 3.0);
    assert_eq!(hook.calls.load(Ordering::SeqCst), 9);
    assert_eq!(metric(&s, "sluice_imagegen_webhook_failures_total{stream=\"cam\"}").await, 9.0);
    assert_eq!(metric(&s, "sluice_imagegen_webhook_retries_total{stream=\"cam\"}").await, 6.0);
    assert_eq!(metric(&s, "sluice_imagegen_delivered_total{stream=\"cam\"}").await, 0.0);
    let st = s.get_json("/v1/streams/cam").await["imageGeneration"]["status"].clone();
    assert_eq!((st["imagesGenerated"].as_u64(), st["imagesDropped"].as_u64()), (Some(3), Some(3)));
    assert!(st["lastError"].as_str().unwrap_or("").contains("attempt 3 of 3"), "{st}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_webhook_never_delays_ingest() {
    let hook = Arc::new(Hook::default());
    hook.hang.send_replace(true);
    let url = serve_hook(hook.clone()).await;
    let s = TestServer::start_with(
        |c| {
            c.image_generation.webhook_queue = 1;
            c.image_generation.webhook_max_attempts = 1;
            c.image_generation.webhook_timeout_ms = std::time::Duration::from_millis(120_000);
            c.image_generation.max_concurrent_webhooks = 1;
        },
        Arc::new(SystemClock),
    )
    .await;
    s.create_stream("cam").await;
    let (status, _) = patch(
        &s,
        "cam",
        json!({ "imageGeneration": {
            "intervalMs": 100, "width": 64,
            "destination": { "kind": "webhook", "url": url }
        }}),
    )
    .await;
    assert_eq!(status, 200);
    // h264-parts.mp4: 30 fragments of 200 ms.
    let (init, frags) = split_fixture(&fixture("h264-parts.mp4"));
    assert_eq!(frags.len(), 30);
    let mut p = connect_producer(
        &s.http,
        s.url(&format!("/v1/streams/cam/media?acks=stream&producerStart={T0}")),
    )
    .await;
    p.send(init).await;
    for f in &frags[..5] {
        p.send(f.clone()).await;
        p.next("PERSISTED").await;
    }
    // The webhook now holds a request and answers nothing.
    eventually("the webhook to be called", async || {
        (hook.calls.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    // Every remaining fragment is acknowledged while the webhook hangs.
    for f in &frags[5..] {
        p.send(f.clone()).await;
        p.next("PERSISTED").await;
    }
    assert!(*hook.hang.borrow(), "the webhook was still hanging");
    assert!(hook.received.lock().unwrap().is_empty(), "no delivery completed");
    let rest = p.finish().await;
    assert!(acks_of(&rest, "ERROR").is_empty(), "{rest:?}");
    assert_eq!(s.fragments("cam").await.len(), 30);
    // Generation went on and dropped what the bounded queue could not hold.
    let dropped = eventually("dropped images", async || {
        let d = metric(&s, "sluice_imagegen_dropped_total{stream=\"cam\"}").await;
        (d > 0.0).then_some(d)
    })
    .await;
    assert!(dropped >= 1.0);
    let d = s.get_json("/v1/streams/cam").await;
    assert!(d["imageGeneration"]["status"]["imagesDropped"].as_u64().unwrap_or(0) >= 1, "{d}");
    // Released, the webhook gets what was in flight and queued.
    hook.hang.send_replace(false);
    eventually("a delivery after release", async || {
        (!hook.received.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_without_duplicates() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(data.path(), |_| {}, Arc::new(SystemClock)).await;
    s.create_stream("cam").await;
    let (status, _) = patch(
        &s,
        "cam",
        json!({ "imageGeneration": {
            "intervalMs": 1000, "width": 64,
            "destination": { "kind": "directory", "path": out.path() }
        }}),
    )
    .await;
    assert_eq!(status, 200);
    s.push("cam", fixture("h264.mp4"), &format!("?producerStart={T0}")).await;
    let mpath = out.path().join("cam").join("manifest.jsonl");
    eventually("6 images", async || (manifest(&mpath).len() >= 6).then_some(())).await;
    s.stop().await;

    // After the restart, the next session's media continues the sequence; nothing is redone.
    let s = TestServer::start_in(data.path(), |_| {}, Arc::new(SystemClock)).await;
    let d = s.get_json("/v1/streams/cam").await;
    assert_eq!(d["imageGeneration"]["intervalMs"], 1000, "configuration survives: {d}");
    s.push("cam", fixture("h264.mp4"), "?producerStart=2026-11-21T10:00:10.000Z").await;
    let lines = eventually("12 images", async || {
        let m = manifest(&mpath);
        (m.len() >= 12).then_some(m)
    })
    .await;
    let instants: Vec<&str> = lines.iter().map(|l| l["instant"].as_str().unwrap()).collect();
    let mut unique = instants.clone();
    unique.dedup();
    assert_eq!(unique.len(), instants.len(), "no duplicates: {instants:?}");
    // The gap between the sessions (10:00:06–10:00:10) is skipped, not sampled.
    assert_eq!(instants[6], "2026-11-21T10:00:10.000Z", "{instants:?}");
    assert_eq!(instants.len(), 12, "{instants:?}");
    s.stop().await;
}

/// A stream's attachments (image generation, a pulled source) are part of it: every view shows
/// them the same way, and deleting the stream takes them along, across a restart too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_stream_takes_its_attachments_along() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(data.path(), |_| {}, Arc::new(SystemClock)).await;
    let created = s.create_stream("cam").await;
    assert_eq!(created["imageGeneration"], Value::Null, "create shows the field: {created}");
    // A camera that is not there: the source stays in backoff, which is all this test needs.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (status, body) = patch(
        &s,
        "cam",
        json!({
            "imageGeneration": {
                "intervalMs": 1000, "width": 64,
                "destination": { "kind": "directory", "path": out.path() }
            },
            "source": { "rtspUrl": format!("rtsp://127.0.0.1:{port}/cam") },
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let described = s.get_json("/v1/streams/cam").await;
    let listed = s.get_json("/v1/streams").await["streams"][0].clone();
    for view in [&body, &described, &listed] {
        assert_eq!(view["imageGeneration"]["intervalMs"], 1000, "{view}");
        assert_eq!(view["source"]["rtspUrl"], format!("rtsp://127.0.0.1:{port}/cam"), "{view}");
    }

    let resp = s.http.delete(s.url("/v1/streams/cam")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    // The source's supervisor stopped with the stream: its series are gone.
    eventually("the source's metrics to go", async || {
        let (_, text) = s.get_text("/metrics").await;
        (!text.contains("sluice_source_state{stream=\"cam\"")).then_some(())
    })
    .await;
    let again = s.create_stream("cam").await;
    assert_eq!(again["imageGeneration"], Value::Null, "{again}");
    assert!(again.get("source").is_none(), "{again}");
    s.stop().await;
    // The attachments' rows went in the stream's own catalog transaction (not at the next start).
    let db = rusqlite::Connection::open(data.path().join("catalog.sqlite")).unwrap();
    for table in ["rtsp_sources", "image_generation"] {
        let n: i64 =
            db.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0, "{table} keeps rows of a deleted stream");
    }
    drop(db);

    let s = TestServer::start_in(data.path(), |_| {}, Arc::new(SystemClock)).await;
    let d = s.get_json("/v1/streams/cam").await;
    assert_eq!(d["imageGeneration"], Value::Null, "nothing comes back after a restart: {d}");
    assert!(d.get("source").is_none(), "{d}");
    s.stop().await;
}
