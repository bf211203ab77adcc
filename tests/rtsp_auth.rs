//! RTSP publish with `[auth]` on: ffmpeg (`rtsp://user:pass@…`, Basic; an access key over
//! Digest) and GStreamer's rtspclientsink (`user-id`/`user-pw`) publish after the 401 challenge;
//! no credentials, wrong ones and a stream without the grant are refused, and nothing is stored.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::{RUN_TIMED_OUT, TestServer, fixture_path, require_tool, run_bounded};
use sluice::auth::password;
use sluice::clock::SystemClock;
use sluice::config::{Action, Grant, KeyEntry, StreamPattern, UserEntry};
use sluice::name::StreamName;

const KEY_ID: &str = "DOORCAMERAKEY001";
const KEY_SECRET: &str = "a-long-camera-secret-0123456789abcdefghi";

async fn server(digest: bool) -> TestServer {
    TestServer::start_with(
        |c| {
            c.auth.enabled = true;
            c.rtsp.digest = digest;
            let publish =
                Grant { action: Action::Publish, streams: StreamPattern::parse("door*").unwrap() };
            c.auth.users.push(UserEntry {
                name: "cam".into(),
                password_hash: password::hash("cam-password"),
                grants: vec![publish.clone()],
                cidrs: vec![],
            });
            c.auth.keys.push(KeyEntry {
                access_key_id: KEY_ID.into(),
                secret: Some(KEY_SECRET.into()),
                secret_env: None,
                grants: vec![publish],
                cidrs: vec![],
            });
        },
        Arc::new(SystemClock),
    )
    .await
}

/// `rtsp://user:pass@host:port/stream` (or without credentials).
fn url(server: &TestServer, creds: Option<(&str, &str)>, stream: &str) -> String {
    let plain = server.rtsp_url(stream);
    match creds {
        Some((u, p)) => plain.replacen("rtsp://", &format!("rtsp://{u}:{p}@"), 1),
        None => plain,
    }
}

fn ffmpeg(target: &str) -> std::process::Command {
    require_tool("ffmpeg");
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(fixture_path("h264.mp4"))
        .args(["-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", target]);
    cmd
}

/// Fragments stored for `stream` (0 when it does not exist), read past the HTTP surface.
async fn stored(server: &TestServer, stream: &str) -> u64 {
    // The session releases the stream after its last fragment is durable.
    for _ in 0..100 {
        match server.state.video.get(&StreamName::new(stream).unwrap()) {
            Ok(s) if s.producer().is_none() && !s.describe().live => {
                return s.describe().fragment_count;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(_) => return 0,
        }
    }
    panic!("{stream} still has a producer after 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_with_basic_credentials_only() {
    let server = server(false).await;
    let (ok, err) =
        run_bounded(ffmpeg(&url(&server, Some(("cam", "cam-password")), "door-1"))).await;
    assert!(ok, "ffmpeg with credentials: {err}");
    assert!(stored(&server, "door-1").await > 0);
    let (ok, err) = run_bounded(ffmpeg(&url(&server, None, "door-2"))).await;
    assert!(!ok && err.contains("401"), "without credentials: {err}");
    let (ok, err) =
        run_bounded(ffmpeg(&url(&server, Some(("cam", "wrong-password")), "door-2"))).await;
    assert!(!ok && err.contains("401"), "wrong password: {err}");
    let (ok, err) = run_bounded(ffmpeg(&url(&server, Some(("cam", "cam-password")), "yard"))).await;
    assert!(!ok && err.contains("403"), "not granted: {err}");
    assert_eq!(stored(&server, "door-2").await + stored(&server, "yard").await, 0);
    let (_, text) = server.get_text("/metrics").await;
    assert!(
        text.contains("sluice_auth_denied_total{surface=\"rtsp\",reason=\"missing\"}"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_key_publishes_over_digest() {
    let server = server(true).await;
    let (ok, err) = run_bounded(ffmpeg(&url(&server, Some((KEY_ID, KEY_SECRET)), "door-3"))).await;
    assert!(ok, "ffmpeg over Digest: {err}");
    assert!(stored(&server, "door-3").await > 0);
    let (ok, err) =
        run_bounded(ffmpeg(&url(&server, Some((KEY_ID, "not-the-secret-at-all")), "door-4"))).await;
    assert!(!ok && err.contains("401"), "wrong secret: {err}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_publishes_with_user_id_and_password() {
    require_tool("gst-launch-1.0");
    let server = server(false).await;
    let mut gst = std::process::Command::new("gst-launch-1.0");
    gst.args(["-q", "videotestsrc", "num-buffers=60", "is-live=true"])
        .args(["!", "video/x-raw,width=320,height=240,framerate=30/1"])
        .args(["!", "x264enc", "tune=zerolatency", "key-int-max=30"])
        // UDP, as in tests/rtsp_publish.rs (GStreamer 1.22's TCP shutdown race).
        .args(["!", "rtspclientsink", "protocols=udp", "user-id=cam", "user-pw=cam-password"])
        .arg(format!("location={}", url(&server, None, "door-gst")))
        .stdin(Stdio::null());
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gst-rtspclientsink-auth.log");
    gst.env("GST_DEBUG", "rtspclientsink:5").env("GST_DEBUG_FILE", &log);
    let (ok, err) = run_bounded(gst).await;
    // As in tests/rtsp_publish.rs: under a loaded full suite, GStreamer 1.22's client has been
    // seen to send everything and then not exit; what Sluice stored is what is checked.
    let hung = err == RUN_TIMED_OUT;
    if hung {
        eprintln!("gst-launch-1.0 did not exit within 60 s; its log: {}", log.display());
    }
    assert!(ok || hung, "gst-launch-1.0: {err}");
    assert!(stored(&server, "door-gst").await > 0);
    server.stop().await;
}
