//! RTSP pull from a real camera: GStreamer's RTSP server (tests/camera/rtsp_camera.py) serving a
//! live H.264 test pattern, with Basic authentication. The camera is restarted mid-stream: Sluice
//! backs off, reconnects, records a discontinuity, and reports it all in the stream's description,
//! metrics and lifecycle events, never showing the password.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use sluice::clock::SystemClock;

const PASSWORD: &str = "pa55-w0rd-xyz";

/// The test camera; killed when dropped.
struct Camera(Child);

impl Camera {
    fn start(port: u16, auth: bool) -> Camera {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/camera/rtsp_camera.py");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script).arg(port.to_string());
        if auth {
            cmd.args(["admin", PASSWORD]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run /usr/bin/python3 tests/camera/rtsp_camera.py");
        // Wait for "ready" (the server is listening).
        use std::io::BufRead;
        let stdout = child.stdout.take().expect("camera stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).expect("camera output");
        assert_eq!(line.trim(), "ready", "the test camera did not start");
        Camera(child)
    }

    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require_camera() {
    let ok = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); gi.require_version('Gst', '1.0')",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the RTSP test camera needs /usr/bin/python3 with python3-gi and gir1.2-gst-rtsp-server-1.0 \
         (installed by `scripts/setup.sh test`)"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

async fn start_server(sources: Vec<sluice::config::SourceEntry>) -> TestServer {
    TestServer::start_with(
        move |c| {
            c.rtsp_pull.backoff_initial_ms = std::time::Duration::from_millis(200);
            c.rtsp_pull.backoff_max_ms = std::time::Duration::from_millis(1000);
            c.rtsp_pull.connect_timeout_secs = std::time::Duration::from_secs(5);
            c.rtsp_pull.stall_timeout_secs = std::time::Duration::from_secs(3);
            c.sources = sources;
        },
        Arc::new(SystemClock),
    )
    .await
}

/// Polls the description (bounded) until `pred` holds.
async fn wait_describe(
    server: &TestServer,
    name: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..240 {
        let d = server.get_json(&format!("/v1/streams/{name}")).await;
        if pred(&d) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let d = server.get_json(&format!("/v1/streams/{name}")).await;
    panic!("stream {name}: never {what}; last description: {d:#}");
}

fn fragment_count(d: &Value) -> u64 {
    d["fragmentCount"].as_u64().unwrap_or(0)
}

async fn patch(server: &TestServer, name: &str, body: Value) -> (u16, String) {
    let r = server
        .http
        .patch(server.url(&format!("/v1/streams/{name}")))
        .json(&body)
        .send()
        .await
        .expect("patch");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// The stream's lifecycle events; none may show the camera's password.
async fn events(server: &TestServer, video: &str) -> Vec<Value> {
    let kds = kinesis_client(&server.base);
    for d in stream_records(&kds, "sluice-events").await {
        let text = String::from_utf8_lossy(&d);
        assert!(!text.contains(PASSWORD), "an event shows the password: {text}");
    }
    lifecycle_events(&server.base, video).await
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|t| t.starts_with("Producer"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_restart_is_survived_with_a_discontinuity_and_events() {
    require_camera();
    require_tool("ffprobe");
    let port = free_port();
    let camera = Camera::start(port, true);
    let server = start_server(Vec::new()).await;
    server.create_stream("cam").await;

    let url = format!("rtsp://admin:{PASSWORD}@127.0.0.1:{port}/cam");
    let (status, body) =
        patch(&server, "cam", json!({ "source": { "rtspUrl": url, "transport": "tcp" } })).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(PASSWORD), "the PATCH response shows the password: {body}");
    let d: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(d["source"]["rtspUrl"], format!("rtsp://127.0.0.1:{port}/cam"));
    assert_eq!(d["source"]["username"], "admin");
    assert_eq!(d["source"]["passwordSet"], true);
    assert_eq!(d["source"]["transport"], "tcp");
    // The catalog holds the password sealed, never in plain text (its WAL included).
    for file in ["catalog.sqlite", "catalog.sqlite-wal"] {
        let bytes = std::fs::read(server.dir.join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()),
            "{file} holds the camera password in plain text"
        );
    }

    // Streaming: fragments arrive.
    let d = wait_describe(&server, "cam", "streaming with 10 fragments", |d| {
        d["source"]["state"] == "streaming" && fragment_count(d) >= 10
    })
    .await;
    assert_eq!(d["producer"]["protocol"], "rtsp-pull");
    let before_restart = fragment_count(&d);

    // The camera reboots: the source backs off with the error, then reconnects.
    camera.kill();
    let d = wait_describe(&server, "cam", "backing off after the camera died", |d| {
        d["source"]["state"] == "backoff" && d["source"]["lastError"].is_string()
    })
    .await;
    let text = d.to_string();
    assert!(!text.contains(PASSWORD), "the description shows the password: {text}");
    let _camera = Camera::start(port, true);
    let d = wait_describe(&server, "cam", "streaming again after the restart", |d| {
        d["source"]["state"] == "streaming"
            && d["source"]["reconnects"].as_u64().unwrap_or(0) >= 1
            && fragment_count(d) >= before_restart + 10
    })
    .await;
    assert!(d["source"]["since"].is_string() || d["source"]["since"].is_number());

    // The store marks the second session's first fragment, and the playlist shows it.
    let fragments = server.fragments("cam").await;
    let starts: Vec<usize> = fragments
        .iter()
        .enumerate()
        .filter(|(_, f)| f["discontinuity"] == true)
        .map(|(i, _)| i)
        .collect();
    assert!(starts.iter().any(|&i| i > 0), "no discontinuity after the restart: {starts:?}");
    let (status, playlist) = server.get_text("/v1/streams/cam/hls/index.m3u8").await;
    assert_eq!(status, 200, "{playlist}");
    assert!(playlist.contains("#EXT-X-DISCONTINUITY"), "{playlist}");
    let (frames, _) = ffprobe_frames(&server.url("/v1/streams/cam/hls/index.m3u8"));
    assert!(frames >= 20, "ffprobe decoded {frames} frames of the recording");

    // Metrics: the state and the reconnects, without credentials.
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(!metrics.contains(PASSWORD));
    assert!(
        metrics.contains("sluice_source_state{stream=\"cam\",state=\"streaming\"} 1"),
        "{metrics}"
    );
    let reconnects = metrics
        .lines()
        .find(|l| l.starts_with("sluice_source_reconnects_total{stream=\"cam\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(reconnects >= 1.0, "{metrics}");

    // Removing the source ends the session and releases the stream.
    let (status, body) = patch(&server, "cam", json!({ "source": null })).await;
    assert_eq!(status, 200, "{body}");
    let d: Value = serde_json::from_str(&body).expect("json");
    assert!(d.get("source").is_none(), "{d}");
    assert_eq!(d["live"], false, "{d}");

    // Lifecycle: connected, disconnected (the restart), connected, disconnected (removed).
    let mut evs = Vec::new();
    for _ in 0..50 {
        evs = events(&server, "cam").await;
        if kinds(&evs).len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let k = kinds(&evs);
    assert_eq!(
        k[..4],
        ["ProducerConnected", "ProducerDisconnected", "ProducerConnected", "ProducerDisconnected"],
        "{k:?}"
    );
    let connected = evs.iter().find(|e| e["type"] == "ProducerConnected").expect("connected");
    assert_eq!(
        connected["details"]["protocol"].as_str().or(connected["protocol"].as_str()),
        Some("rtsp-pull"),
        "{connected}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_validated_precisely() {
    let server = TestServer::start().await;
    server.create_stream("v").await;
    for (source, expect) in [
        (json!({ "rtspUrl": "http://cam/x" }), "scheme \"http\""),
        (json!({ "rtspUrl": "rtsps://cam/x" }), "rtsps"),
        (json!({ "rtspUrl": "rtsp://cam/x", "transport": "quic" }), "\"tcp\" or \"udp\""),
        (json!({ "rtspUrl": "rtsp:///nohost" }), "source.rtspUrl"),
        (json!({ "rtspUrl": "rtsp://a:b@cam/x", "username": "u" }), "not both"),
        (json!({ "rtspUrl": "rtsp://cam/x", "password": "p" }), "needs a username"),
        (json!({ "rtspUrl": "rtsp://cam/x", "colour": "red" }), "colour"),
        (json!({ "transport": "tcp" }), "rtspUrl"),
    ] {
        let (status, body) = patch(&server, "v", json!({ "source": source })).await;
        assert_eq!(status, 400, "{source}: {body}");
        let v: Value = serde_json::from_str(&body).expect("error json");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expect), "{source}: expected {expect:?} in {body}");
        assert!(!body.contains("b@cam"), "{body}");
    }
    // Nothing was stored by the rejected requests.
    let d = server.get_json("/v1/streams/v").await;
    assert!(d.get("source").is_none(), "{d}");
    let (status, _) = patch(&server, "nope", json!({ "source": null })).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_source_is_pulled_at_start_up_and_kept_across_restarts() {
    require_camera();
    let port = free_port();
    let _camera = Camera::start(port, false);
    let entry = sluice::config::SourceEntry {
        stream: "door".to_owned(),
        rtsp_url: format!("rtsp://127.0.0.1:{port}/cam"),
        transport: "tcp".to_owned(),
        username: None,
        password: None,
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();
    let server = TestServer::start_in(
        &dir,
        |c| {
            c.rtsp_pull.backoff_initial_ms = std::time::Duration::from_millis(200);
            c.rtsp_pull.backoff_max_ms = std::time::Duration::from_millis(1000);
            c.sources = vec![entry];
        },
        Arc::new(SystemClock),
    )
    .await;
    wait_describe(&server, "door", "recording the configured camera", |d| {
        d["source"]["state"] == "streaming" && fragment_count(d) >= 3
    })
    .await;
    // Restart without the config entry: the stored source is pulled again.
    server.stop().await;
    let server = TestServer::start_in(
        &dir,
        |c| {
            c.rtsp_pull.backoff_initial_ms = std::time::Duration::from_millis(200);
            c.rtsp_pull.backoff_max_ms = std::time::Duration::from_millis(1000);
        },
        Arc::new(SystemClock),
    )
    .await;
    let before = fragment_count(&server.get_json("/v1/streams/door").await);
    wait_describe(&server, "door", "recording again after the restart", |d| {
        d["source"]["state"] == "streaming" && fragment_count(d) >= before + 3
    })
    .await;
    server.stop().await;
}
