//! WHIP (RFC 9725) ingest: headless Chromium with a fake camera publishes over WebRTC; the
//! fragments are stored and the recording plays (ffprobe). Bad offers get precise 4xx answers, a
//! second publisher gets 409, a client that vanishes releases the stream, and garbage sent at the
//! media port changes nothing.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::Value;
use sluice::clock::SystemClock;

async fn start_server() -> TestServer {
    TestServer::start_with(
        |c| {
            // `udp_addrs` left empty: media binds where the HTTP listener does (127.0.0.1).
            c.webrtc.connect_timeout_secs = std::time::Duration::from_secs(3);
            c.webrtc.ice_disconnected_timeout_secs = std::time::Duration::from_secs(2);
            c.webrtc.ice_failed_timeout_secs = std::time::Duration::from_secs(2);
        },
        Arc::new(SystemClock),
    )
    .await
}

/// A well-formed offer for H.264 (and Opus), as a browser would send, with no candidates.
fn offer(video_codecs: &str) -> String {
    let fp = (0..32).map(|i| format!("{:02X}", i * 7 % 256)).collect::<Vec<_>>().join(":");
    let mut s = String::new();
    s.push_str("v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
    s.push_str("a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n");
    s.push_str(&format!("m=video 9 UDP/TLS/RTP/SAVPF {video_codecs}\r\n"));
    s.push_str("c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n");
    s.push_str("a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n");
    s.push_str(&format!("a=fingerprint:sha-256 {fp}\r\na=setup:actpass\r\na=mid:0\r\n"));
    s.push_str("a=sendonly\r\na=rtcp-mux\r\n");
    for pt in video_codecs.split(' ') {
        match pt {
            "102" => s.push_str(
                "a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
            ),
            "96" => s.push_str("a=rtpmap:96 VP8/90000\r\n"),
            "98" => s.push_str("a=rtpmap:98 VP9/90000\r\n"),
            _ => {}
        }
    }
    s.push_str("a=ssrc:1111 cname:test\r\n");
    s
}

async fn post_offer(
    server: &TestServer,
    stream: &str,
    ct: &str,
    body: String,
) -> reqwest::Response {
    server
        .http
        .post(server.url(&format!("/v1/streams/{stream}/whip")))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("post offer")
}

async fn error_message(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.expect("error json");
    (status, v["error"]["message"].as_str().unwrap_or_default().to_owned())
}

async fn wait_not_live(server: &TestServer, name: &str) {
    for _ in 0..100 {
        let d = server.get_json(&format!("/v1/streams/{name}")).await;
        if d["live"] == false {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("stream {name} still has a producer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_publishes_over_whip_and_the_recording_plays() {
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(node, "node is required for this test (installed by `scripts/setup.sh test`)");
    require_tool("ffprobe");
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is required (installed by `scripts/setup.sh test`)"
    );
    let server = start_server().await;
    server.create_stream("web").await;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/whip.mjs");
    let base = server.base.clone();
    let publisher = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .env("SLUICE_URL", base)
            .env("WHIP_STREAM", "web")
            .env("WHIP_SECONDS", "8")
            .output()
            .expect("run node tests/browser/whip.mjs")
    });

    // While it publishes: fragments arrive, and a second publisher is refused.
    let mut live = Value::Null;
    for _ in 0..240 {
        let d = server.get_json("/v1/streams/web").await;
        if d["producer"]["protocol"] == "whip" && d["fragmentCount"].as_u64().unwrap_or(0) >= 5 {
            live = d;
            break;
        }
        if publisher.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if live.is_null() {
        let out = publisher.await.expect("join");
        panic!(
            "no WHIP fragments; publisher said: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (status, message) =
        error_message(post_offer(&server, "web", "application/sdp", offer("102")).await).await;
    assert_eq!(status, 409, "{message}");
    assert!(message.contains("whip"), "{message}");

    let out = publisher.await.expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "whip.mjs failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value =
        serde_json::from_str(stdout.trim().lines().last().unwrap_or("")).expect("result json");
    assert_eq!(result["status"], 201, "{result}");
    assert_eq!(result["contentType"], "application/sdp", "{result}");
    let location = result["location"].as_str().expect("location");
    assert!(location.starts_with("/v1/streams/web/whip/"), "{location}");
    assert!(result["etag"].is_string(), "{result}");
    assert_eq!(result["deleteStatus"], 200, "{result}");

    // DELETE ended the session: the stream is free, the session gone.
    wait_not_live(&server, "web").await;
    let r = server.http.delete(server.url(location)).send().await.expect("delete");
    assert_eq!(r.status(), 404);

    // Stored fragments decode and the recording plays.
    let fragments = server.fragments("web").await;
    assert!(fragments.len() >= 10, "{} fragments", fragments.len());
    assert!(fragments.iter().any(|f| f["keyframe"] == true));
    let (frames, duration) = ffprobe_frames(&server.url("/v1/streams/web/hls/index.m3u8"));
    assert!(frames >= 60, "ffprobe decoded {frames} frames ({duration} s)");
    // Chromium's frame times are variable (its fake camera on a busy machine): ffmpeg's null
    // muxer, rounding decoded frames to a guessed frame rate, may see two in one tick and says
    // so. That is about ffmpeg's output clock, not about decoding; every other line counts.
    let errors = ffmpeg_decode_errors(&server.url("/v1/streams/web/hls/index.m3u8"), &[]);
    let errors: Vec<&str> = errors
        .lines()
        .filter(|l| !l.contains("non monotonically increasing dts to muxer"))
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(errors.is_empty(), "decode errors: {errors:?}");

    let (_, metrics) = server.get_text("/metrics").await;
    assert!(metrics.contains("sluice_whip_sessions_total 1"), "{metrics}");
    assert!(metrics.contains("sluice_whip_sessions_active 0"), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offers_get_precise_answers_and_a_vanished_client_frees_the_stream() {
    let server = start_server().await;
    server.create_stream("s").await;

    // Not SDP.
    let r = post_offer(&server, "s", "application/json", "{}".to_owned()).await;
    assert_eq!(r.status(), 415);
    // Unknown stream.
    let r = post_offer(&server, "nope", "application/sdp", offer("102")).await;
    assert_eq!(r.status(), 404);
    // Malformed SDP.
    let (status, m) =
        error_message(post_offer(&server, "s", "application/sdp", "hello".to_owned()).await).await;
    assert_eq!(status, 400);
    assert!(m.contains("malformed SDP"), "{m}");
    let (status, m) = error_message(
        post_offer(&server, "s", "application/sdp", "v=0\r\nm=video banana\r\n".to_owned()).await,
    )
    .await;
    assert_eq!(status, 400, "{m}");
    // No supported codec: the answer names what is supported.
    let (status, m) =
        error_message(post_offer(&server, "s", "application/sdp", offer("96 98")).await).await;
    assert_eq!(status, 400);
    assert!(m.contains("VP8") && m.contains("H264"), "{m}");
    // Unknown session.
    let r = server.http.delete(server.url("/v1/streams/s/whip/0123")).send().await.expect("delete");
    assert_eq!(r.status(), 404);
    assert_eq!(server.get_json("/v1/streams/s").await["live"], false);

    // A client that posts an offer and never connects: 201, then the session times out and the
    // stream is free again.
    let r = post_offer(&server, "s", "application/sdp", offer("102")).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "application/sdp");
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    let answer = r.text().await.expect("answer");
    assert!(answer.contains("a=recvonly") && answer.contains("H264"), "{answer}");
    assert_eq!(server.get_json("/v1/streams/s").await["producer"]["protocol"], "whip");
    // The session's UDP sockets are on loopback only, and no mDNS socket was opened.
    let udp = own_udp_sockets();
    assert!(!udp.is_empty(), "no UDP socket for the session");
    for (ip, port) in &udp {
        assert_eq!(ip, "0100007F", "a UDP socket beyond loopback: {udp:?}");
        assert_ne!(*port, 5353, "an mDNS socket: {udp:?}");
    }

    // Garbage at the media port (unauthenticated datagrams) is ignored.
    let port: Option<u16> = answer
        .lines()
        .filter(|l| l.starts_with("a=candidate:") && l.contains(" 127.0.0.1 "))
        .find_map(|l| l.split(' ').nth(5).and_then(|p| p.parse().ok()));
    let port = port.expect("a 127.0.0.1 candidate in the answer");
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    for i in 0..200u32 {
        let mut junk = vec![0x80u8, 96, (i >> 8) as u8, i as u8];
        junk.extend((0..(i % 300)).map(|j| (j * 31 + i) as u8));
        let _ = sock.send_to(&junk, ("127.0.0.1", port));
    }
    let (status, _) = server.get_text("/healthz").await;
    assert_eq!(status, 200);

    wait_not_live(&server, "s").await;
    let r = server.http.delete(server.url(&location)).send().await.expect("delete");
    assert_eq!(r.status(), 404, "the timed-out session is gone");
    // The stream takes a new publisher.
    let r = post_offer(&server, "s", "application/sdp", offer("102")).await;
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    let r = server.http.delete(server.url(&location)).send().await.expect("delete");
    assert_eq!(r.status(), 200);
    wait_not_live(&server, "s").await;
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(
        metrics.contains("sluice_whip_rejected_total{kind=\"unsupported_codec\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

/// This process's UDP sockets (IPv4) as (hex address as /proc shows it, port): the inodes of
/// `/proc/self/fd`'s sockets looked up in `/proc/self/net/udp`.
fn own_udp_sockets() -> Vec<(String, u16)> {
    let inodes: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/self/net/udp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (ip, port) = f.get(1)?.split_once(':')?;
            inodes
                .contains(&f.get(9)?.to_string())
                .then(|| (ip.to_owned(), u16::from_str_radix(port, 16).unwrap_or(0)))
        })
        .collect()
}
