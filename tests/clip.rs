//! Clip export (`clip.mp4`): progressive MP4 and fragmented clips checked with ffprobe/ffmpeg.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

const T0: &str = "2026-01-01T00:00:00Z";

async fn pushed(server: &TestServer, name: &str, file: &str, start: &str) {
    server.create_stream(name).await;
    let acks = server.push(name, fixture(file), &format!("?producerStart={start}")).await;
    assert!(acks_of(&acks, "ERROR").is_empty(), "{file}: {acks:?}");
}

/// GETs a clip; returns status, headers and body.
async fn get_clip(
    server: &TestServer,
    name: &str,
    query: &str,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = server.http.get(server.url(&format!("/v1/streams/{name}/clip.mp4?{query}")));
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let resp = tokio::time::timeout(Duration::from_secs(60), req.send())
        .await
        .expect("clip in time")
        .expect("clip");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

/// Writes the clip to a temp file and returns its path.
fn save(dir: &tempfile::TempDir, file: &str, body: &[u8]) -> String {
    let p = dir.path().join(file);
    std::fs::write(&p, body).expect("write clip");
    p.to_str().unwrap().to_owned()
}

/// The duration of each stream (by codec type), from ffprobe.
fn stream_durations(path: &str) -> Vec<(String, f64)> {
    let out = Command::new("timeout")
        .args(["60", "ffprobe", "-v", "error", "-show_entries", "stream=codec_type,duration"])
        .args(["-of", "json", path])
        .output()
        .expect("ffprobe");
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or("").to_owned(),
                s["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0),
            )
        })
        .collect()
}

/// Frames ffmpeg outputs when decoding the whole file (what a player presents).
fn presented_frames(path: &str) -> u64 {
    let out = Command::new("timeout")
        .args(["60", "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0"])
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')).count() as u64
}

fn assert_clip(path: &str, frames: u64, duration: f64, what: &str) {
    const FRAME: f64 = 1.0 / 30.0;
    let (probed, got) = ffprobe_frames(path);
    assert!((got - duration).abs() <= FRAME, "{what}: duration {got}, want {duration}");
    assert_eq!(probed, frames, "{what}: ffprobe -count_frames");
    assert_eq!(presented_frames(path), frames, "{what}: frames ffmpeg outputs");
    let errors = ffmpeg_decode_errors(path, &[]);
    assert!(errors.trim().is_empty(), "{what}: decode errors: {errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progressive_clip_is_exact_and_streams_with_ranges() {
    let server = TestServer::start().await;
    pushed(&server, "cam", "h264.mp4", T0).await;
    let dir = tempfile::tempdir().unwrap();

    let q = "start=2026-01-01T00:00:01Z&end=2026-01-01T00:00:03Z";
    let (status, headers, body) = get_clip(&server, "cam", q, None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "video/mp4");
    assert_eq!(headers["content-length"], body.len().to_string().as_str());
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment; filename=\"cam-"), "{disposition}");
    // moov before mdat.
    let moov = body.windows(4).position(|w| w == b"moov").unwrap();
    let mdat = body.windows(4).position(|w| w == b"mdat").unwrap();
    assert!(moov < mdat);
    assert_clip(&save(&dir, "a.mp4", &body), 60, 2.0, "[1 s, 3 s)");

    // Byte ranges match the full body; ETag is stable.
    let etag = headers["etag"].to_str().unwrap().to_owned();
    for (spec, a, b) in [
        ("bytes=0-99", 0, 100),
        (&*format!("bytes={}-{}", mdat - 10, mdat + 5000), mdat - 10, mdat + 5001),
        ("bytes=-1000", body.len() - 1000, body.len()),
    ] {
        let (status, h, part) = get_clip(&server, "cam", q, Some(spec)).await;
        assert_eq!(status, 206, "{spec}");
        assert_eq!(h["etag"].to_str().unwrap(), etag);
        assert_eq!(
            h["content-range"].to_str().unwrap(),
            format!("bytes {a}-{}/{}", b - 1, body.len())
        );
        assert_eq!(part, body[a..b], "{spec}");
    }
    let (status, _, _) = get_clip(&server, "cam", q, Some("bytes=99999999-")).await;
    assert_eq!(status, 416);

    // A start between keyframes plays from that instant (the edit list skips the pre-roll).
    let q = "start=2026-01-01T00:00:01.5Z&end=2026-01-01T00:00:02.5Z";
    let (status, _, body) = get_clip(&server, "cam", q, None).await;
    assert_eq!(status, 200);
    assert_clip(&save(&dir, "b.mp4", &body), 30, 1.0, "[1.5 s, 2.5 s)");

    // Epoch milliseconds work too; the fragmented form has whole segments.
    let (s, e) = (1_767_225_601_000i64, 1_767_225_603_000i64);
    let (status, _, body) =
        get_clip(&server, "cam", &format!("start={s}&end={e}&format=fmp4"), None).await;
    assert_eq!(status, 200);
    let (frames, _) = ffprobe_frames(&save(&dir, "c.mp4", &body));
    assert_eq!(frames, 60, "fmp4 clip of two 1-s segments");

    // Errors.
    for (q, want) in [
        ("start=2026-01-01T00:00:03Z&end=2026-01-01T00:00:01Z", 400),
        ("start=2026-01-01T00:00:01Z", 400),
        ("start=nope&end=2026-01-01T00:00:01Z", 400),
        ("start=2026-01-01T00:00:01Z&end=2026-01-01T00:00:02Z&format=avi", 400),
        ("start=2027-01-01T00:00:00Z&end=2027-01-01T00:00:01Z", 404),
    ] {
        let (status, _, _) = get_clip(&server, "cam", q, None).await;
        assert_eq!(status, want, "{q}");
    }
    let (status, _, _) =
        get_clip(&server, "nope", "start=2026-01-01T00:00:01Z&end=2026-01-01T00:00:02Z", None)
            .await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_frames_and_audio() {
    let server = TestServer::start().await;
    pushed(&server, "bf", "h264-bframes.mp4", T0).await;
    pushed(&server, "av", "h264-aac.mp4", T0).await;
    let dir = tempfile::tempdir().unwrap();

    let q = "start=2026-01-01T00:00:01Z&end=2026-01-01T00:00:03Z";
    let (status, _, body) = get_clip(&server, "bf", q, None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(body.windows(4).any(|w| w == b"ctts"), "B-frames need a ctts");
    assert_clip(&save(&dir, "bf.mp4", &body), 60, 2.0, "B-frames [1 s, 3 s)");
    let q2 = "start=2026-01-01T00:00:01.5Z&end=2026-01-01T00:00:02.5Z";
    let (_, _, body) = get_clip(&server, "bf", q2, None).await;
    assert_clip(&save(&dir, "bf2.mp4", &body), 30, 1.0, "B-frames [1.5 s, 2.5 s)");

    let (status, _, body) = get_clip(&server, "av", q, None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let path = save(&dir, "av.mp4", &body);
    assert_clip(&path, 60, 2.0, "audio+video");
    let durations = stream_durations(&path);
    let v = durations.iter().find(|d| d.0 == "video").expect("video stream").1;
    let a = durations.iter().find(|d| d.0 == "audio").expect("audio stream").1;
    assert!((v - a).abs() < 0.03, "video {v} s vs audio {a} s");
    server.stop().await;
}

/// Two sessions a minute apart: the clip spans the gap as one timeline (the last frame before
/// the gap is held), with every frame of both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_spanning_a_gap() {
    let server = TestServer::start().await;
    pushed(&server, "gap", "h264.mp4", T0).await;
    let acks = server.push("gap", fixture("h264.mp4"), "?producerStart=2026-01-01T00:01:00Z").await;
    assert!(acks_of(&acks, "ERROR").is_empty(), "{acks:?}");
    let dir = tempfile::tempdir().unwrap();
    let q = "start=2026-01-01T00:00:04Z&end=2026-01-01T00:01:02Z";
    let (status, _, body) = get_clip(&server, "gap", q, None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let path = save(&dir, "gap.mp4", &body);
    let (frames, duration) = ffprobe_frames(&path);
    assert_eq!(frames, 120, "2 s before and 2 s after the gap");
    assert!((duration - 58.0).abs() <= 1.0 / 30.0, "duration {duration}");
    let errors = ffmpeg_decode_errors(&path, &[]);
    assert!(errors.trim().is_empty(), "decode errors: {errors}");
    server.stop().await;
}

/// The server clock selects by arrival; a range crossing a codec change is refused clearly; a
/// cached clip revalidates with 304.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_clock_codec_change_and_revalidation() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();

    // Server clock: the whole recording arrived within the last minute.
    pushed(&server, "srv", "h264.mp4", T0).await;
    let listed = server.fragments("srv").await;
    let first = sluice::clock::Timestamp::parse_api(listed[0]["serverTimestamp"].as_str().unwrap())
        .unwrap();
    let last = sluice::clock::Timestamp::parse_api(listed[5]["serverTimestamp"].as_str().unwrap())
        .unwrap();
    let query = format!(
        "timestamps=server&start={}&end={}",
        first.as_millis(),
        last.add_micros(1_000_000).as_millis()
    );
    let (status, headers, body) = get_clip(&server, "srv", &query, None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let path = save(&dir, "srv.mp4", &body);
    assert!(presented_frames(&path) > 0, "a server-clock clip plays");

    // If-None-Match with the clip's ETag → 304, nothing re-sent.
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let resp = server
        .http
        .get(server.url(&format!("/v1/streams/srv/clip.mp4?{query}")))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);

    // H.264 then H.265 in one session (relative timestamps re-anchor at the change): a clip
    // across the change is a clear 400; each side works.
    server.create_stream("cc").await;
    let mut body = fixture("h264.mp4");
    body.extend_from_slice(&fixture("h265.mp4"));
    let acks = server.push("cc", body, "").await;
    assert!(acks_of(&acks, "ERROR").is_empty(), "{acks:?}");
    let listed = server.fragments("cc").await;
    let at = |i: usize| listed[i]["producerTimestamp"].as_str().unwrap().to_owned();
    let (status, _, body) =
        get_clip(&server, "cc", &format!("start={}&end={}", at(0), at(8)), None).await;
    assert_eq!(status, 400);
    let msg = String::from_utf8_lossy(&body);
    assert!(msg.contains("InvalidArgument"), "{msg}");
    let (status, _, body) =
        get_clip(&server, "cc", &format!("start={}&end={}", at(6), at(8)), None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let path = save(&dir, "h265.mp4", &body);
    assert_clip(&path, 60, 2.0, "the H.265 side");
    server.stop().await;
}
