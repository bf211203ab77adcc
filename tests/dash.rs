//! MPEG-DASH of recorded ranges, checked with players Sluice did not write: ffmpeg's dash demuxer
//! (ffprobe, exact frame counts) and GStreamer's dashdemux2 (every frame to a sink, no warning),
//! per-track segments, B-frames, a codec change as a second Period, ranges and precise errors;
//! live DASH (dynamic MPDs of the live window and of a replay growing from a start) followed
//! from one MPD to the next and played by dash.js and Shaka in Chromium.

mod common;

use std::process::Command;

use common::*;

/// (video, audio) frames ffprobe decodes from `input`, which must print no error.
fn ffprobe_av(input: &str) -> (u64, u64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames"])
        .args(["-of", "csv=p=0", input])
        .output()
        .expect("run ffprobe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "ffprobe {input}: {stderr}");
    let (mut video, mut audio) = (0, 0);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        match line.split_once(',') {
            // A stream is listed under its program too: the same count twice.
            Some(("video", n)) => video = video.max(n.parse::<u64>().unwrap()),
            Some(("audio", n)) => audio = audio.max(n.parse::<u64>().unwrap()),
            _ => {}
        }
    }
    (video, audio)
}

/// (video, audio) buffers GStreamer's playbin3 with dashdemux2 hands its sinks; no ERROR or
/// WARNING line. One run per sink (two verbose sinks interleave their lines).
fn gstreamer_av(url: &str) -> (u64, u64) {
    require_tool("gst-launch-1.0");
    let run = |video: bool| {
        let (v, a) = if video { ("false", "true") } else { ("true", "false") };
        let out = Command::new("gst-launch-1.0")
            .env("GST_PLUGIN_FEATURE_RANK", "dashdemux:NONE")
            .args(["-v", "playbin3", &format!("uri={url}")])
            .arg(format!("video-sink=fakesink name=vsink silent={v} sync=false"))
            .arg(format!("audio-sink=fakesink name=asink silent={a} sync=false"))
            .output()
            .expect("run gst-launch-1.0");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let bad: Vec<&str> =
            text.lines().filter(|l| l.starts_with("ERROR") || l.starts_with("WARNING")).collect();
        assert!(out.status.success() && bad.is_empty(), "gst-launch-1.0 {url}: {bad:?}");
        let sink = if video { "(vsink:sink)" } else { "(asink:sink)" };
        text.lines().filter(|l| l.contains("chain") && l.contains(sink)).count() as u64
    };
    (run(true), run(false))
}

/// What ffprobe counts from ffmpeg's own DASH of the fixture (its dash demuxer decodes one AAC
/// frame fewer than the file has, on its own output too: the reference for audio).
fn ffmpeg_own_dash(fixture_name: &str) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let mpd = dir.path().join("m.mpd");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(fixture_path(fixture_name))
        .args(["-c", "copy", "-f", "dash"])
        .arg(&mpd)
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    ffprobe_av(mpd.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_ranges_play_to_the_exact_frame_in_ffmpeg_and_gstreamer() {
    require_tool("ffprobe");
    let server = TestServer::start().await;
    for (name, f) in [("av", "h264-aac.mp4"), ("bf", "h264-bframes.mp4"), ("hevc", "h265.mp4")] {
        server.create_stream(name).await;
        server.push(name, fixture(f), "?producerStart=2026-03-01T11:00:00Z").await;
        let url = server.url(&format!("/v1/streams/{name}/dash/manifest.mpd"));
        let source = ffprobe_av(fixture_path(f).to_str().unwrap());
        let reference = ffmpeg_own_dash(f);
        assert_eq!(ffprobe_av(&url), (source.0, reference.1), "{f} in ffmpeg");
        assert_eq!(gstreamer_av(&url), source, "{f} in GStreamer");
    }
    // The manifest: one AdaptationSet per track, each with its own init and segments.
    let (status, mpd) = server.get_text("/v1/streams/av/dash/manifest.mpd").await;
    assert_eq!(status, 200);
    assert_eq!(mpd.matches("<AdaptationSet").count(), 2, "{mpd}");
    assert!(mpd.contains("contentType=\"audio\"") && mpd.contains("codecs=\"mp4a.40.2\""), "{mpd}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codec_change_is_a_new_period_and_ranges_and_errors_are_precise() {
    let server = TestServer::start().await;
    server.create_stream("codec").await;
    server.push("codec", fixture("h264.mp4"), "?producerStart=2026-03-01T11:00:00Z").await;
    server.push("codec", fixture("h265.mp4"), "?producerStart=2026-03-01T11:00:06Z").await;
    let (status, mpd) = server.get_text("/v1/streams/codec/dash/manifest.mpd").await;
    assert_eq!(status, 200);
    assert_eq!(mpd.matches("<Period").count(), 2, "{mpd}");
    assert!(mpd.contains("start=\"PT6.000S\""), "{mpd}");
    let h264 = ffprobe_frames(fixture_path("h264.mp4").to_str().unwrap()).0;
    let h265 = ffprobe_frames(fixture_path("h265.mp4").to_str().unwrap()).0;
    let url = server.url("/v1/streams/codec/dash/manifest.mpd");
    assert_eq!(gstreamer_av(&url).0, h264 + h265);

    // A range: the segments that cover it; maxSegments: the oldest of them.
    let range = "start=2026-03-01T11:00:02Z&end=2026-03-01T11:00:04Z";
    let (_, mpd) = server.get_text(&format!("/v1/streams/codec/dash/manifest.mpd?{range}")).await;
    assert_eq!(mpd.matches("<SegmentURL").count(), 2, "{mpd}");
    let url = server.url(&format!("/v1/streams/codec/dash/manifest.mpd?{range}"));
    assert_eq!(ffprobe_av(&url).0, h264 / 3);
    let (_, mpd) = server.get_text("/v1/streams/codec/dash/manifest.mpd?maxSegments=1").await;
    assert_eq!(mpd.matches("<SegmentURL").count(), 1, "{mpd}");

    for (path, want) in [
        ("/v1/streams/codec/dash/manifest.mpd?mode=live&start=2026-03-01T11:00:00Z", 400),
        ("/v1/streams/codec/dash/manifest.mpd?mode=live_replay", 400),
        ("/v1/streams/codec/dash/manifest.mpd?mode=rewind", 400),
        ("/v1/streams/codec/dash/seg/1/0/1-1.m4s", 404),
        ("/v1/streams/codec/dash/seg/1/0/x-1.m4s", 404),
        ("/v1/streams/codec/dash/manifest.mpd?maxSegments=0", 400),
        (
            "/v1/streams/codec/dash/manifest.mpd?start=2020-01-01T00:00:00Z&end=2020-01-01T00:01:00Z",
            404,
        ),
        ("/v1/streams/codec/dash/seg/1/0-0-9.m4s", 404),
        ("/v1/streams/codec/dash/seg/1/0-0.m4s", 404),
        ("/v1/streams/codec/dash/seg/1/5-7-1.m4s", 404),
        ("/v1/streams/codec/dash/seg/99/0-0-1.m4s", 404),
        ("/v1/streams/codec/dash/init/1/0-9.mp4", 404),
        ("/v1/streams/nope/dash/manifest.mpd", 404),
    ] {
        let (status, body) = server.get_text(path).await;
        assert_eq!(status, want, "{path}: {body}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_js_and_shaka_play_it_in_chromium() {
    use common::browser::{require_browser_tools, run_script};
    require_browser_tools();
    let server = TestServer::start().await;
    let mut jobs = Vec::new();
    for (name, f) in [("av", "h264-aac.mp4"), ("bf", "h264-bframes.mp4")] {
        server.create_stream(name).await;
        server.push(name, fixture(f), "?producerStart=2026-03-01T11:00:00Z").await;
        let url = server.url(&format!("/v1/streams/{name}/dash/manifest.mpd"));
        for player in ["dash.js", "shaka"] {
            jobs.push(serde_json::json!({"id": name, "player": player, "url": url}));
        }
        let source = fixture_path(f).to_string_lossy().into_owned();
        jobs.push(
            serde_json::json!({"id": format!("{name}-source"), "player": "native", "url": source}),
        );
    }
    let jobs = serde_json::Value::Array(jobs);
    let out = run_script("players.mjs", &server.base, &[("JOBS", jobs.to_string())]).await;
    let results: Vec<serde_json::Value> =
        out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert_eq!(results.len(), jobs.as_array().unwrap().len(), "{out}");
    for chunk in results.chunks(3) {
        let source = &chunk[2];
        assert!(source["errors"].as_array().unwrap().is_empty(), "the source: {source}");
        let want = source["frames"].as_u64().unwrap();
        for r in &chunk[..2] {
            let errors = r["errors"].as_array().unwrap();
            assert!(errors.is_empty(), "{} reported errors: {errors:?}\n{r}", r["player"]);
            // Every frame decoded (Shaka may decode a frame twice where it re-appends; see
            // tests/interop.rs), from one buffered range starting at 0.
            let got = r["frames"].as_u64().unwrap();
            if r["player"] == "dash.js" {
                assert_eq!(got, want, "dash.js frames vs the source in Chromium: {r} / {source}");
            } else {
                assert!(got >= want, "shaka decoded {got} of {want}: {r}");
            }
            let ranges = r["buffered"].as_array().unwrap();
            assert_eq!(ranges.len(), 1, "{r}");
            assert!(ranges[0][0].as_f64().unwrap() <= 0.0011, "buffered from 0: {r}");
            println!("{}: {} {got} frames of {want}", r["id"], r["player"]);
        }
    }
    server.stop().await;
}

/// A dynamic MPD's facts: `availabilityStartTime`, the Period's id and start, the template, and
/// every segment's (t, d) with implicit starts filled in.
struct Live {
    ast: String,
    period: (String, String),
    media: String,
    segments: Vec<(u64, u64)>,
}

fn attr<'a>(text: &'a str, name: &str) -> &'a str {
    let at = text.find(&format!(" {name}=\"")).unwrap_or_else(|| panic!("no {name} in {text}"));
    let rest = &text[at + name.len() + 3..];
    &rest[..rest.find('"').unwrap()]
}

fn live_facts(mpd: &str) -> Live {
    assert!(mpd.contains("type=\"dynamic\""), "{mpd}");
    assert_eq!(mpd.matches("<Period").count(), 1, "{mpd}");
    let period = &mpd[mpd.find("<Period").unwrap()..];
    let template = &mpd[mpd.find("<SegmentTemplate").unwrap()..];
    let mut segments = Vec::new();
    let mut next = 0;
    for s in mpd.split("<S ").skip(1) {
        let s = &s[..s.find("/>").unwrap()];
        let t = if s.contains("t=") { attr(&format!(" {s}"), "t").parse().unwrap() } else { next };
        let d: u64 = attr(&format!(" {s}"), "d").parse().unwrap();
        segments.push((t, d));
        next = t + d;
    }
    Live {
        ast: attr(mpd, "availabilityStartTime").to_owned(),
        period: (attr(period, "id").to_owned(), attr(period, "start").to_owned()),
        media: attr(template, "media").to_owned(),
        segments,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_mpds_slide_with_the_stream_and_every_listed_segment_is_served() {
    use common::browser::push_live;
    let server = TestServer::start().await;
    server.create_stream("cam").await;
    let live = push_live(&server.base, "cam", Some(40));
    // 200 ms fragments, a keyframe every 2 s: three complete segments.
    let wait_for = |n: usize| {
        let server = &server;
        async move {
            for _ in 0..200 {
                let (status, mpd) =
                    server.get_text("/v1/streams/cam/dash/manifest.mpd?mode=live").await;
                if status == 200 && live_facts(&mpd).segments.len() >= n {
                    return mpd;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("fewer than {n} live segments after 20 s");
        }
    };
    let first = live_facts(&wait_for(3).await);
    let base = server.url("/v1/streams/cam/dash/");
    for &(t, _) in &first.segments {
        let url = format!("{base}{}", first.media.replace("$Time$", &t.to_string()));
        let resp = server.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        let body = resp.bytes().await.unwrap();
        assert_eq!(&body[4..8], b"moof", "{url}");
    }
    let (t, d) = *first.segments.last().unwrap();
    let (status, _) = server
        .get_text(&format!(
            "/v1/streams/cam/dash/{}",
            first.media.replace("$Time$", &(t + 1).to_string())
        ))
        .await;
    assert_eq!(status, 404, "no segment starts one tick later");

    // A later MPD: the same clock anchor and Period, the window moved on, shared segments alike.
    let later = loop {
        let l = live_facts(&wait_for(3).await);
        if l.segments.last().unwrap().0 > t {
            break l;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        (&later.ast, &later.period, &later.media),
        (&first.ast, &first.period, &first.media)
    );
    assert!(later.segments.contains(&(t, d)), "{:?} / {:?}", first.segments, later.segments);
    assert!(later.segments.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0), "{:?}", later.segments);

    // A replay from the stream's start grows while the producer is there, and is static once it
    // has gone.
    let start = server.fragments("cam").await[0]["producerTimestamp"].as_str().unwrap().to_owned();
    let replay = format!("/v1/streams/cam/dash/manifest.mpd?mode=live_replay&start={start}");
    let (status, mpd) = server.get_text(&replay).await;
    assert_eq!(status, 200, "{mpd}");
    let r = live_facts(&mpd);
    assert_eq!(r.period.1, "PT0.000S");
    assert!(mpd.contains(&format!("presentationTimeOffset=\"{}\"", r.segments[0].0)), "{mpd}");
    drop(live);
    let mut done = String::new();
    for _ in 0..100 {
        let (_, mpd) = server.get_text(&replay).await;
        if mpd.contains("type=\"static\"") {
            done = mpd;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(done.contains("mediaPresentationDuration") && done.contains("<SegmentURL"), "{done}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_js_and_shaka_play_live_dash_in_chromium() {
    use common::browser::{push_live, require_browser_tools, run_script};
    require_browser_tools();
    let server = TestServer::start().await;
    server.create_stream("cam").await;
    let live = push_live(&server.base, "cam", Some(90));
    for _ in 0..200 {
        let (status, _) = server.get_text("/v1/streams/cam/dash/manifest.mpd?mode=live").await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let start = server.fragments("cam").await[0]["producerTimestamp"].as_str().unwrap().to_owned();
    let seconds = 10.0;
    for (mode, query) in [
        ("live", "mode=live".to_owned()),
        ("live_replay", format!("mode=live_replay&start={start}")),
    ] {
        let url = format!("/v1/streams/cam/dash/manifest.mpd?{query}");
        let env = [("URL", url.clone()), ("SECONDS_TO_PLAY", seconds.to_string())];
        let out = run_script("dash_live.mjs", &server.base, &env).await;
        let results: Vec<serde_json::Value> =
            out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        assert_eq!(results.len(), 2, "{out}");
        for r in &results {
            let errors = r["errors"].as_array().unwrap();
            assert!(errors.is_empty(), "{mode}: {} reported errors: {errors:?}", r["player"]);
            assert_eq!(r["live"], true, "{mode}: {r}");
            // Playback went on at the live edge (a stall on a busy machine costs some of it).
            let advanced = r["advanced"].as_f64().unwrap();
            assert!(advanced > seconds / 2.0, "{mode}: {r}");
            let latency = r["latency"].as_f64().unwrap();
            assert!((0.0..15.0).contains(&latency), "{mode}: {r}");
        }
    }
    drop(live);
    server.stop().await;
}
