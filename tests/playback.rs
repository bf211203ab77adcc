//! The main path: push each fixture over HTTP, check the acknowledgements and the fragment list,
//! and read the media back through HLS and the live tail with ffprobe/ffmpeg.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// Every fixture: all fragments PERSISTED in order, listed in order, and the on-demand playlist
/// decodes to exactly the fixture's frames and duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fixture_round_trips_through_hls() {
    let server = TestServer::start().await;
    for (i, file) in [
        "h264.mp4",
        "h264-bframes.mp4",
        "h264-aac.mp4",
        "h265.mp4",
        "h264-parts.mp4",
        "h264-avc3-opus.mp4",
        "h265-hev1.mp4",
    ]
    .iter()
    .enumerate()
    {
        let name = format!("fixture-{i}");
        server.create_stream(&name).await;
        let bytes = fixture(file);
        let (_, frags) = split_fixture(&bytes);
        let acks = server.push(&name, bytes, "").await;
        assert!(acks_of(&acks, "ERROR").is_empty(), "{file}: {acks:?}");
        let persisted = acks_of(&acks, "PERSISTED");
        assert_eq!(persisted.len(), frags.len(), "{file}: one PERSISTED per fragment");
        for (n, a) in persisted.iter().enumerate() {
            assert_eq!(a["FragmentNumber"], n.to_string(), "{file}: PERSISTED in order");
        }
        assert_eq!(acks_of(&acks, "RECEIVED").len(), frags.len());

        let listed = server.fragments(&name).await;
        assert_eq!(listed.len(), frags.len(), "{file}: listed");
        for (n, f) in listed.iter().enumerate() {
            assert_eq!(f["fragmentNumber"], n.to_string());
            assert_eq!(f["sizeBytes"].as_u64().unwrap() as usize, frags[n].len());
        }
        assert_eq!(listed[0]["keyframe"], true);

        let (want_frames, want_duration) = ffprobe_frames(fixture_path(file).to_str().unwrap());
        let playlist = server.url(&format!("/v1/streams/{name}/hls/index.m3u8"));
        let (got_frames, got_duration) = ffprobe_frames(&playlist);
        assert_eq!(got_frames, want_frames, "{file}: frames through HLS");
        assert!(
            (got_duration - want_duration).abs() < 0.05,
            "{file}: duration {got_duration} vs {want_duration}"
        );
        let errors = ffmpeg_decode_errors(&playlist, &[]);
        assert!(errors.trim().is_empty(), "{file}: decode errors: {errors}");

        // The playlist parses with an independent parser and names consistent segments.
        let (status, text) = server.get_text(&format!("/v1/streams/{name}/hls/index.m3u8")).await;
        assert_eq!(status, 200);
        match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => {
                assert!(p.end_list);
                let total: f32 = p.segments.iter().map(|s| s.duration).sum();
                assert!(
                    (f64::from(total) - want_duration).abs() < 0.05,
                    "{file}: EXTINF sum {total}"
                );
                for s in &p.segments {
                    assert!(
                        s.duration.round() as u64 <= p.target_duration,
                        "{file}: target duration"
                    );
                }
            }
            other => panic!("{file}: not a media playlist: {other:?}"),
        }
    }
    server.stop().await;
}

/// Sub-GOP fragments are grouped into segments that start at keyframes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_are_grouped_into_keyframe_segments() {
    let server = TestServer::start().await;
    server.create_stream("parts").await;
    server.push("parts", fixture("h264-parts.mp4"), "").await;
    let listed = server.fragments("parts").await;
    let keyframes = listed.iter().filter(|f| f["keyframe"] == true).count();
    assert!(
        keyframes < listed.len(),
        "the fixture has fragments that do not start with a keyframe"
    );
    let (_, text) = server.get_text("/v1/streams/parts/hls/index.m3u8").await;
    let segments: Vec<&str> = text.lines().filter(|l| l.starts_with("seg/")).collect();
    assert_eq!(segments.len(), keyframes, "one segment per keyframe fragment:\n{text}");
    for seg in segments {
        let first: usize =
            seg.rsplit('/').next().unwrap().split('-').next().unwrap().parse().unwrap();
        assert_eq!(listed[first]["keyframe"], true, "{seg} starts at a keyframe");
    }
    server.stop().await;
}

/// Segments and init segments: content types, immutable caching, ETag/304, byte ranges, CORS;
/// playlists are not cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_are_cacheable_and_support_ranges() {
    let server = TestServer::start().await;
    server.create_stream("seg").await;
    let bytes = fixture("h264.mp4");
    let (init, frags) = split_fixture(&bytes);
    server.push("seg", bytes, "").await;
    let (_, text) = server.get_text("/v1/streams/seg/hls/index.m3u8").await;
    let map = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .unwrap()
        .trim_end_matches('"');
    let seg = text.lines().find(|l| l.starts_with("seg/")).unwrap();

    let resp = server
        .http
        .get(server.url("/v1/streams/seg/hls/index.m3u8"))
        .header("origin", "http://example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/vnd.apple.mpegurl");
    assert!(resp.headers()["cache-control"].to_str().unwrap().contains("no-cache"));
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");

    let resp =
        server.http.get(server.url(&format!("/v1/streams/seg/hls/{map}"))).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "video/mp4");
    assert!(
        resp.bytes().await.unwrap().as_ref() == init.as_slice(),
        "init segment is the producer's ftyp+moov"
    );

    let url = server.url(&format!("/v1/streams/seg/hls/{seg}"));
    let resp = server.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "video/iso.segment");
    assert!(resp.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let body = resp.bytes().await.unwrap();
    // Segment 0 is fragment 0 byte for byte, except its decode time, which is moved onto the
    // stream timeline: producer timestamp minus the stream's first producer timestamp, so the
    // stream's first fragment starts at 0.
    assert_eq!(body.len(), frags[0].len());
    let stored = sluice::media::timeline::find_tfdts(&frags[0]).unwrap();
    let served = sluice::media::timeline::find_tfdts(&body).unwrap();
    assert_eq!(stored.len(), served.len());
    assert_eq!(served[0].value, 0, "the stream's first fragment starts the stream timeline");
    let mut patched = frags[0].clone();
    let at = stored[0].value_offset;
    patched[at..at + 8].copy_from_slice(&body[at..at + 8]);
    assert!(body.as_ref() == patched.as_slice(), "only the tfdt differs");

    let resp = server.http.get(&url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(resp.status(), 304);

    let resp = server.http.get(&url).header("range", "bytes=100-199").send().await.unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()["content-range"], format!("bytes 100-199/{}", frags[0].len()));
    assert!(resp.bytes().await.unwrap().as_ref() == &body[100..200]);

    let resp = server
        .http
        .get(&url)
        .header("range", format!("bytes={}-", frags[0].len() + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 416);

    // A segment that does not exist, and one under another stream id, are 404s.
    let (status, _) = server.get_text("/v1/streams/seg/hls/seg/1/100-101.m4s").await;
    assert_eq!(status, 404);
    let (status, _) = server.get_text("/v1/streams/seg/hls/seg/999/0-0.m4s").await;
    assert_eq!(status, 404);
    server.stop().await;
}

/// A real-time producer (`ffmpeg -re … -method PUT`) while ffmpeg reads live.m3u8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_push_with_ffmpeg_plays_live() {
    require_tool("ffmpeg");
    let server = TestServer::start().await;
    server.create_stream("live").await;
    let mut producer = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-re", "-i"])
        .arg(fixture_path("h264.mp4"))
        .args([
            "-c",
            "copy",
            "-f",
            "mp4",
            "-movflags",
            "frag_keyframe+empty_moov+default_base_moof",
        ])
        .args(["-method", "PUT"])
        .arg(server.url("/v1/streams/live/media"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg");

    // Wait (bounded) until a couple of fragments are in.
    let mut live_seen = false;
    for _ in 0..100 {
        let d = server.get_json("/v1/streams/live").await;
        live_seen |= d["live"] == true;
        if d["fragmentCount"].as_u64().unwrap_or(0) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(live_seen, "the stream shows as live while ffmpeg pushes");
    let (status, text) = server.get_text("/v1/streams/live/hls/live.m3u8").await;
    assert_eq!(status, 200);
    assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");
    assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:"), "{text}");
    // ffmpeg plays the live playlist while the producer is still pushing.
    let live_url = server.url("/v1/streams/live/hls/live.m3u8");
    let reader = tokio::task::spawn_blocking(move || {
        Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-v",
                "error",
                "-i",
                &live_url,
                "-frames:v",
                "30",
                "-f",
                "null",
                "-",
            ])
            .output()
            .expect("run ffmpeg reader")
    });
    let out = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("reader in time")
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg read live.m3u8: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let status = tokio::task::spawn_blocking(move || producer.wait()).await.unwrap().unwrap();
    assert!(status.success(), "ffmpeg producer exit");
    // ffmpeg does not wait for the response: wait (bounded) for the server to end the session.
    for _ in 0..100 {
        if server.get_json("/v1/streams/live").await["live"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = server.fragments("live").await;
    assert_eq!(listed.len(), 6);
    let d = server.get_json("/v1/streams/live").await;
    assert_eq!(d["live"], false, "the producer is gone");
    let (frames, _) = ffprobe_frames(&server.url("/v1/streams/live/hls/index.m3u8"));
    assert_eq!(frames, 180);
    server.stop().await;
}

/// The fMP4 tail follows the stream from the start and ffmpeg decodes it directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_tail_is_readable_by_ffmpeg() {
    let server = TestServer::start().await;
    server.create_stream("tail").await;
    server.push("tail", fixture("h264.mp4"), "").await;
    let url = server.url("/v1/streams/tail/media?start=earliest");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || {
            Command::new("ffmpeg")
                .args([
                    "-nostdin",
                    "-v",
                    "error",
                    "-i",
                    &url,
                    "-frames:v",
                    "150",
                    "-f",
                    "null",
                    "-",
                ])
                .output()
                .expect("ffmpeg")
        }),
    )
    .await
    .expect("tail read in time")
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // GStreamer reads it too (souphttpsrc from plugins-good, avdec_h264 from gstreamer1.0-libav).
    require_tool("gst-launch-1.0");
    let url = server.url("/v1/streams/tail/media?start=fragment:2");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || {
            Command::new("gst-launch-1.0")
                .args(["-q", "souphttpsrc"])
                .arg(format!("location={url}"))
                .args([
                    "!",
                    "qtdemux",
                    "!",
                    "avdec_h264",
                    "!",
                    "fakesink",
                    "num-buffers=90",
                    "sync=false",
                ])
                .output()
                .expect("gst-launch-1.0")
        }),
    )
    .await
    .expect("gstreamer read in time")
    .unwrap();
    assert!(
        out.status.success(),
        "gst-launch: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // fragment:<n> starts at that fragment; a fragment that does not exist is a 404.
    let (status, _) = server.get_text("/v1/streams/tail/media?start=fragment:99").await;
    assert_eq!(status, 404);
    let (status, _) = server.get_text("/v1/streams/tail/media?start=tomorrow").await;
    assert_eq!(status, 400);
    server.stop().await;
}

/// Two producer sessions: the second is placed after the first on the producer timeline, the
/// playlist marks the discontinuity, and everything still decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_is_a_discontinuity() {
    let server = TestServer::start().await;
    server.create_stream("re").await;
    server.push("re", fixture("h264.mp4"), "").await;
    server.push("re", fixture("h264.mp4"), "").await;
    let listed = server.fragments("re").await;
    assert_eq!(listed.len(), 12);
    assert_eq!(listed[6]["discontinuity"], true);
    let t = |i: usize| {
        sluice::clock::Timestamp::parse_api(listed[i]["producerTimestamp"].as_str().unwrap())
            .unwrap()
    };
    assert!(t(6) >= t(5).add_micros(1_000_000), "the second session starts after the first ends");
    let (_, text) = server.get_text("/v1/streams/re/hls/index.m3u8").await;
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    let (frames, _) = ffprobe_frames(&server.url("/v1/streams/re/hls/index.m3u8"));
    assert_eq!(frames, 360);
    // A range inside the second session only.
    let start = listed[7]["producerTimestamp"].as_str().unwrap();
    let end = listed[9]["producerTimestamp"].as_str().unwrap();
    let (status, text) =
        server.get_text(&format!("/v1/streams/re/hls/index.m3u8?start={start}&end={end}")).await;
    assert_eq!(status, 200);
    assert_eq!(text.lines().filter(|l| l.starts_with("seg/")).count(), 2, "{text}");
    // A range with nothing in it says so.
    let (status, body) = server.get_text("/v1/streams/re/hls/index.m3u8?start=1000&end=2000").await;
    assert_eq!(status, 404);
    assert!(body.contains("no media"), "{body}");
    server.stop().await;
}

/// The live playlist of a stream with no media waits for it (woken by the writer), and answers
/// with an empty playlist, never 404, if none comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_live_playlist_waits_instead_of_404() {
    // With no media at all: an empty live playlist after the (2 s, in tests) idle wait.
    let server = TestServer::start().await;
    server.create_stream("idle").await;
    let (status, text) = server.get_text("/v1/streams/idle/hls/live.m3u8").await;
    assert_eq!(status, 200);
    assert!(text.starts_with("#EXTM3U"), "{text}");
    assert!(!text.contains("#EXT-X-ENDLIST"));
    assert_eq!(text.lines().filter(|l| l.starts_with("seg/")).count(), 0);
    server.stop().await;

    // Media arriving while the request waits: the same response names it.
    let server = TestServer::start_with(
        |c| c.hls.idle_wait_secs = Duration::from_secs(60),
        Arc::new(sluice::clock::SystemClock),
    )
    .await;
    server.create_stream("late").await;
    let mut waiting = tokio::spawn({
        let http = server.http.clone();
        let url = server.url("/v1/streams/late/hls/live.m3u8");
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    });
    // The request is in the handler (counted) and has not been answered: it is waiting. Only
    // then does the media come.
    for _ in 0..300 {
        let (_, metrics) = server.get_text("/metrics").await;
        if metrics.contains("sluice_hls_requests_total{kind=\"live\"} 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(metrics.contains("sluice_hls_requests_total{kind=\"live\"} 1"), "the request arrived");
    if let Ok(done) = tokio::time::timeout(Duration::from_millis(300), &mut waiting).await {
        panic!("the live playlist answered before any media existed: {done:?}");
    }
    server.push("late", fixture("h264.mp4"), "").await;
    let text = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the waiting request is woken")
        .unwrap();
    assert!(text.lines().any(|l| l.starts_with("seg/")), "{text}");
    server.stop().await;
}

/// A new moov mid-stream (a codec change) is a new init segment: recorded, numbered on, and a
/// discontinuity with a new EXT-X-MAP in the playlist. Each side decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codec_change_mid_session_is_a_new_init_segment() {
    let server = TestServer::start().await;
    server.create_stream("cc").await;
    let mut body = fixture("h264.mp4");
    body.extend_from_slice(&fixture("h265.mp4"));
    let acks = server.push("cc", body, "").await;
    assert!(acks_of(&acks, "ERROR").is_empty(), "{acks:?}");
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 12);
    let listed = server.fragments("cc").await;
    assert_eq!(listed[5]["initId"], 0);
    assert_eq!(listed[6]["initId"], 1);
    assert_eq!(listed[6]["discontinuity"], true);
    let t = |i: usize| {
        sluice::clock::Timestamp::parse_api(listed[i]["producerTimestamp"].as_str().unwrap())
            .unwrap()
    };
    assert!(t(6) >= t(5).add_micros(1_000_000), "the new configuration continues the timeline");

    let (_, text) = server.get_text("/v1/streams/cc/hls/index.m3u8").await;
    assert_eq!(text.matches("#EXT-X-MAP:").count(), 2, "{text}");
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    let split = listed[6]["producerTimestamp"].as_str().unwrap();
    let (h264, _) =
        ffprobe_frames(&server.url(&format!("/v1/streams/cc/hls/index.m3u8?end={split}")));
    let (h265, _) =
        ffprobe_frames(&server.url(&format!("/v1/streams/cc/hls/index.m3u8?start={split}")));
    assert_eq!((h264, h265), (180, 180));
    server.stop().await;
}
