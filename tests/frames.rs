//! Exact frames and image sets (`GET /v1/streams/{name}/frame.jpg|png`, `/images`), checked
//! against ffmpeg's decode of the same fixture.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{TestServer, fixture, fixture_path, require_tool, split_fixture};
use serde_json::Value;
use sluice::clock::SystemClock;

/// Producer start used for pushes: a fixed epoch-ms instant so instants are exact.
const T0: i64 = 1_795_000_000_000;

async fn push_at(s: &TestServer, name: &str, file: &str, start_ms: i64) {
    let acks = s.push(name, fixture(file), &format!("?producerStart={start_ms}")).await;
    assert!(acks.iter().any(|a| a["EventType"] == "PERSISTED"), "push {file}: {acks:?}");
}

/// Mean PSNR (dB) of the luma of two images, by ffmpeg's psnr filter.
fn luma_psnr(a: &Path, b: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-i"])
        .arg(a)
        .arg("-i")
        .arg(b)
        .args(["-lavfi", "[0]format=gray[a];[1]format=gray[b];[a][b]psnr", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stderr);
    let avg = text
        .split("average:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no psnr in ffmpeg output: {text}"));
    if avg == "inf" { f64::INFINITY } else { avg.parse().expect("psnr number") }
}

/// ffmpeg's decode of frame `n` (0-based, decode = presentation order here) as PNG.
fn reference_frame(file: &str, n: u32, out: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(fixture_path(file))
        .args(["-vf", &format!("select=eq(n\\,{n})"), "-vframes", "1"])
        .arg(out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg reference frame {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_match_ffmpeg_between_keyframes_and_at_fragment_boundaries() {
    require_tool("ffmpeg");
    let s = TestServer::start().await;
    s.create_stream("parts").await;
    // GOP 60 (2 s) in 200 ms fragments of 6 frames: most frames are in a fragment that does not
    // start with a keyframe, so the decode must start in an earlier fragment.
    push_at(&s, "parts", "h264-parts.mp4", T0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let http = reqwest::Client::new();
    // keyframe, just after it, fragment boundary (frame 6 starts fragment 1), mid-GOP, last of
    // the GOP, second keyframe, just after it, mid second GOP, last frame of the file.
    for n in [0u32, 1, 6, 29, 59, 60, 61, 95, 179] {
        // Instants 10 ms into the frame (frames are 33.3 ms).
        let at = T0 + i64::from(n) * 1000 / 30 + 10;
        let resp = http
            .get(s.url(&format!("/v1/streams/parts/frame.png?at={at}")))
            .send()
            .await
            .expect("frame");
        assert_eq!(resp.status(), 200, "frame {n}");
        let h = resp.headers().clone();
        assert_eq!(h["content-type"], "image/png");
        assert_eq!(h["x-sluice-fragment-number"], (n / 6).to_string().as_str(), "frame {n}");
        let ts = sluice::clock::Timestamp::parse_api(
            h["x-sluice-producer-timestamp"].to_str().expect("ascii"),
        )
        .expect("timestamp");
        assert_eq!(ts.as_millis(), T0 + i64::from(n) * 1000 / 30, "frame {n} timestamp");
        let got = dir.path().join(format!("got{n}.png"));
        std::fs::write(&got, resp.bytes().await.expect("body")).expect("write");
        let want = dir.path().join(format!("want{n}.png"));
        reference_frame("h264-parts.mp4", n, &want);
        let psnr = luma_psnr(&got, &want);
        assert!(psnr > 35.0, "frame {n}: PSNR {psnr:.1} dB against ffmpeg's frame {n}");
        // And it is not a neighbour: the next frame differs visibly (testsrc2 moves every frame).
        let other = if n == 179 { n - 1 } else { n + 1 };
        let near = dir.path().join(format!("near{n}.png"));
        reference_frame("h264-parts.mp4", other, &near);
        let psnr_near = luma_psnr(&got, &near);
        assert!(psnr_near < psnr - 5.0, "frame {n} is as close to frame {other} ({psnr_near:.1})");
    }
    // JPEG with a width only keeps the aspect ratio.
    let resp = http
        .get(s.url(&format!("/v1/streams/parts/frame.jpg?at={}&width=320", T0 + 1500)))
        .send()
        .await
        .expect("frame");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-sluice-width"], "320");
    assert_eq!(resp.headers()["x-sluice-height"], "180");
    let body = resp.bytes().await.expect("body");
    assert_eq!(&body[..3], &[0xff, 0xd8, 0xff], "a JPEG");
    // latest is the last frame.
    let resp = http.get(s.url("/v1/streams/parts/frame.jpg?at=latest")).send().await.expect("x");
    assert_eq!(resp.status(), 200);
    let ts = resp.headers()["x-sluice-producer-timestamp"].to_str().expect("ascii").to_owned();
    assert_eq!(
        sluice::clock::Timestamp::parse_api(&ts).expect("ts").as_millis(),
        T0 + 179 * 1000 / 30
    );
    // Before the stream, and bad parameters.
    let resp = http
        .get(s.url(&format!("/v1/streams/parts/frame.jpg?at={}", T0 - 5000)))
        .send()
        .await
        .expect("x");
    assert_eq!(resp.status(), 404);
    let resp = http.get(s.url("/v1/streams/parts/frame.jpg?at=nope")).send().await.expect("x");
    assert_eq!(resp.status(), 400);
    let resp = http.get(s.url("/v1/streams/parts/frame.jpg?width=0")).send().await.expect("x");
    assert_eq!(resp.status(), 400);
    s.stop().await;
}

async fn get_images(s: &TestServer, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let q = match &token {
            Some(t) => format!("{query}&nextToken={t}"),
            None => query.to_owned(),
        };
        let v = s.get_json(&format!("/v1/streams/mixed/images?{q}")).await;
        all.extend(v["Images"].as_array().expect("Images").iter().cloned());
        match v.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => return all,
        }
    }
    panic!("pagination did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_sets_count_instants_across_gaps_and_init_changes_and_stream_as_multipart_and_tar() {
    require_tool("ffmpeg");
    let s = TestServer::start().await;
    s.create_stream("mixed").await;
    // H.264 for 6 s, a 4 s gap, then H.265 (a new init segment) for 6 s.
    push_at(&s, "mixed", "h264.mp4", T0).await;
    push_at(&s, "mixed", "h265.mp4", T0 + 10_000).await;
    // Instants every 500 ms from 250 ms (inside the first fragment) to 16 s: 32 of them.
    let query = format!("start={}&end={}&intervalMs=500&maxResults=7", T0 + 250, T0 + 16_250);
    let images = get_images(&s, &query).await;
    assert_eq!(images.len(), 32);
    let mut ok = 0;
    for (k, img) in images.iter().enumerate() {
        let instant = T0 + 250 + 500 * k as i64;
        let ts = (img["TimeStamp"].as_f64().expect("TimeStamp") * 1000.0).round() as i64;
        assert_eq!(ts, instant, "image {k}");
        let rel = instant - T0;
        let in_media = rel < 6000 || (10_000..16_000).contains(&rel);
        if in_media {
            assert!(img.get("ImageContent").is_some(), "image {k} at {rel} ms: {img}");
            let produced = sluice::clock::Timestamp::parse_api(
                img["ProducerTimestamp"].as_str().expect("ProducerTimestamp"),
            )
            .expect("ts")
            .as_millis();
            // The frame on display: at most one frame (33 ms) before the instant.
            assert!(produced <= instant && instant - produced < 34, "image {k}: {produced}");
            ok += 1;
        } else {
            assert_eq!(img["Error"], "NO_MEDIA", "image {k} at {rel} ms: {img}");
        }
    }
    assert_eq!(ok, 24);

    // The same set as multipart/mixed: one part per instant.
    let http = reqwest::Client::new();
    let url = s.url(&format!(
        "/v1/streams/mixed/images?start={}&end={}&intervalMs=1000",
        T0 + 500,
        T0 + 16_500
    ));
    let resp = http.get(&url).header("accept", "multipart/mixed").send().await.expect("x");
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().expect("ct").to_owned();
    let boundary = ct.split("boundary=").nth(1).expect("boundary").to_owned();
    let body = resp.bytes().await.expect("body");
    let parts = parse_multipart(&body, &boundary);
    assert_eq!(parts.len(), 16);
    let jpegs = parts
        .iter()
        .filter(|(h, b)| h.contains("image/jpeg") && b.starts_with(&[0xff, 0xd8]))
        .count();
    let errors = parts.iter().filter(|(h, _)| h.contains("X-Sluice-Error: NO_MEDIA")).count();
    assert_eq!((jpegs, errors), (12, 4));

    // And as tar: a .json per instant and an image per instant with media.
    let resp = http.get(&url).header("accept", "application/x-tar").send().await.expect("x");
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.expect("body");
    let mut archive = tar::Archive::new(&body[..]);
    let (mut json, mut jpg) = (0, 0);
    for entry in archive.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).expect("read");
        if path.ends_with(".json") {
            let v: Value = serde_json::from_slice(&data).expect("metadata json");
            assert!(v.get("TimeStamp").is_some());
            json += 1;
        } else if path.ends_with(".jpg") {
            assert_eq!(&data[..2], &[0xff, 0xd8]);
            jpg += 1;
        }
    }
    assert_eq!((json, jpg), (16, 12));

    // A range with no media at all answers 404 NoMedia, not a page of errors.
    let resp = http
        .get(s.url(&format!(
            "/v1/streams/mixed/images?start={}&end={}&intervalMs=1000",
            T0 - 100_000,
            T0 - 50_000
        )))
        .send()
        .await
        .expect("x");
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["code"], "NoMedia");
    // Bad ranges are 400s.
    for q in
        ["start=5&end=1&intervalMs=10", "start=1&end=5&intervalMs=0", "start=x&end=5&intervalMs=1"]
    {
        let (status, _) = s.get_text(&format!("/v1/streams/mixed/images?{q}")).await;
        assert_eq!(status, 400, "{q}");
    }
    s.stop().await;
}

fn parse_multipart(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(i) = find(rest, delim.as_bytes()) {
        rest = &rest[i + delim.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").expect("part headers");
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .expect("Content-Length")
            .trim()
            .parse()
            .expect("length");
        let data = rest[head_end + 4..head_end + 4 + len].to_vec();
        rest = &rest[head_end + 4 + len..];
        parts.push((head, data));
    }
    parts
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_media_fails_only_its_own_images() {
    let s = TestServer::start().await;
    s.create_stream("mixed").await;
    let (init, frags) = split_fixture(&fixture("h264.mp4"));
    let mut body = init;
    for (i, mut f) in frags.into_iter().enumerate() {
        if i == 2 {
            // Zero the mdat payload: the boxes still parse, the pictures are gone.
            let moof = u32::from_be_bytes([f[0], f[1], f[2], f[3]]) as usize;
            for b in &mut f[moof + 8..] {
                *b = 0;
            }
        }
        body.extend_from_slice(&f);
    }
    let acks = s.push("mixed", body, &format!("?producerStart={T0}")).await;
    assert!(acks.iter().any(|a| a["EventType"] == "PERSISTED"));
    let images =
        get_images(&s, &format!("start={}&end={}&intervalMs=1000", T0 + 500, T0 + 6000)).await;
    assert_eq!(images.len(), 6);
    for (k, img) in images.iter().enumerate() {
        if k == 2 {
            assert_eq!(img["Error"], "MEDIA_ERROR", "{img}");
        } else {
            assert!(img.get("ImageContent").is_some(), "image {k}: {img}");
        }
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after() {
    let s = TestServer::start_with(
        |c| {
            c.frames.workers = 1;
            c.frames.queue_depth = 1;
        },
        Arc::new(SystemClock),
    )
    .await;
    s.create_stream("parts").await;
    push_at(&s, "parts", "h264-parts.mp4", T0).await;
    let url = s.url(&format!("/v1/streams/parts/frame.png?at={}", T0 + 1990));
    // The one worker and the one queue place are taken: a request is refused at once.
    let held = s.state.frames.hold(2).expect("the pool is idle");
    let resp = s.http.get(&url).send().await.expect("request");
    assert_eq!(resp.status(), 503);
    let retry: u64 =
        resp.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "ServiceUnavailable", "{body}");
    // Freed, the same request is served.
    drop(held);
    let mut status = 0;
    for _ in 0..50 {
        status = s.http.get(&url).send().await.expect("request").status().as_u16();
        if status == 200 {
            break;
        }
        // The held jobs release their places as the worker reaches them.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "served once the pool has room");
    s.stop().await;
}
