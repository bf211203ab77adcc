//! Low-latency HLS on `live.m3u8` (RFC 8216bis): parts, blocking playlist reload, blocking part
//! requests for the preload hint, delta updates, and regular HLS kept for GOP-sized fragments.
//! The producer pushes `h264-parts.mp4` (GOP 2 s, 200 ms fragments; keyframes at fragments 0,
//! 10, 20) fragment by fragment; parts are checked with ffprobe.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;

/// Blocking requests give up after this long in these tests (3 target durations would be 6 s).
const BLOCKING_TIMEOUT: Duration = Duration::from_millis(3000);

async fn ll_server() -> TestServer {
    TestServer::start_with(
        |c| c.hls.blocking_timeout_ms = BLOCKING_TIMEOUT,
        Arc::new(sluice::clock::SystemClock),
    )
    .await
}

/// The value of `attr` (`NAME=value`) on the first line starting with `tag`.
fn attr(text: &str, tag: &str, attr: &str) -> String {
    let line = text.lines().find(|l| l.starts_with(tag)).unwrap_or_else(|| panic!("{tag}: {text}"));
    line[tag.len()..]
        .split(',')
        .find_map(|kv| kv.strip_prefix(&format!("{attr}=")))
        .unwrap_or_else(|| panic!("{attr} in {line}"))
        .trim_matches('"')
        .to_owned()
}

fn parts(text: &str) -> Vec<String> {
    text.lines().filter(|l| l.starts_with("#EXT-X-PART:")).map(str::to_owned).collect()
}

/// Starts a request in the background (a blocking one) and returns its handle.
fn spawn_get(server: &TestServer, path: &str) -> tokio::task::JoinHandle<(u16, bytes::Bytes)> {
    let (http, url) = (server.http.clone(), server.url(path));
    tokio::spawn(async move {
        let resp = http.get(url).send().await.expect("get");
        let status = resp.status().as_u16();
        (status, resp.bytes().await.expect("body"))
    })
}

/// The request has not been answered yet (it is blocked): checked after a pause, because
/// answering early would be the bug.
async fn assert_pending(h: &mut tokio::task::JoinHandle<(u16, bytes::Bytes)>, what: &str) {
    if let Ok(done) = tokio::time::timeout(Duration::from_millis(300), &mut *h).await {
        panic!("{what} answered before its part existed: {done:?}");
    }
}

async fn finish(h: tokio::task::JoinHandle<(u16, bytes::Bytes)>) -> (u16, String) {
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(20), h).await.expect("answered").expect("task");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn ll_hls_parts_blocking_reload_and_preload_hint() {
    require_tool("ffprobe");
    let server = ll_server().await;
    server.create_stream("ll").await;
    let (init, frags) = split_fixture(&fixture("h264-parts.mp4"));
    assert_eq!(frags.len(), 30);
    let mut producer =
        connect_producer(&server.http, server.url("/v1/streams/ll/media?acks=stream")).await;
    let push = async |p: &mut Producer, i: usize| {
        let mut bytes = if i == 0 { init.clone() } else { Vec::new() };
        bytes.extend_from_slice(&frags[i]);
        p.send(bytes).await;
        let ack = p.next("PERSISTED").await;
        assert_eq!(ack["FragmentNumber"], i.to_string(), "{ack}");
    };
    for i in 0..12 {
        push(&mut producer, i).await;
    }

    // Segment 0 (fragments 0-9) is complete; segment 1 has parts 10 and 11 so far.
    let (status, text) = server.get_text("/v1/streams/ll/hls/live.m3u8").await;
    assert_eq!(status, 200, "{text}");
    let hint = attr(&text, "#EXT-X-PRELOAD-HINT:", "URI");
    let id = hint.split('/').nth(1).expect("stream id in the hint").to_owned();
    assert_eq!(hint, format!("part/{id}/12.m4s"), "{text}");
    assert_eq!(attr(&text, "#EXT-X-PRELOAD-HINT:", "TYPE"), "PART");
    assert_eq!(attr(&text, "#EXT-X-SERVER-CONTROL:", "CAN-BLOCK-RELOAD"), "YES");
    let part_target: f64 = attr(&text, "#EXT-X-PART-INF:", "PART-TARGET").parse().expect("f64");
    let hold_back: f64 = attr(&text, "#EXT-X-SERVER-CONTROL:", "PART-HOLD-BACK").parse().unwrap();
    assert!((0.2..0.25).contains(&part_target), "{text}");
    assert!(hold_back >= 3.0 * part_target - 1e-9, "{text}");
    let skip_until: f64 = attr(&text, "#EXT-X-SERVER-CONTROL:", "CAN-SKIP-UNTIL").parse().unwrap();
    assert!(skip_until >= 6.0 * 2.0, "{text}");
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:0\n"), "{text}");
    assert!(text.contains(&format!("#EXTINF:2.00000,\nseg/{id}/0-9.m4s\n")), "{text}");
    assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:"), "{text}");
    let listed = parts(&text);
    assert_eq!(listed.len(), 12, "{text}");
    for (n, line) in listed.iter().enumerate() {
        assert!(line.contains(&format!("URI=\"part/{id}/{n}.m4s\"")), "{line}");
        // Parts that start with a keyframe (0 and 10) are independent; the others are not.
        assert_eq!(line.ends_with(",INDEPENDENT=YES"), n % 10 == 0, "{line}");
        let d: f64 = attr(line, "#EXT-X-PART:", "DURATION").parse().expect("f64");
        assert!(d <= part_target + 1e-9, "{line} > PART-TARGET {part_target}");
    }
    assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => assert_eq!(m.segments.len(), 1, "{text}"),
        other => panic!("m3u8-rs: {other:?}"),
    }

    // Parts are playable: init + parts 0-9 decode to the 60 frames of the first GOP.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut gop = server.http.get(server.url(&format!("/v1/streams/ll/hls/init/{id}/0.mp4")));
    let mut bytes = gop.send().await.expect("init").bytes().await.expect("init").to_vec();
    for n in 0..10 {
        gop = server.http.get(server.url(&format!("/v1/streams/ll/hls/part/{id}/{n}.m4s")));
        let resp = gop.send().await.expect("part");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "video/iso.segment");
        bytes.extend_from_slice(&resp.bytes().await.expect("part"));
    }
    let path = tmp.path().join("gop.mp4");
    std::fs::write(&path, &bytes).expect("write");
    assert_eq!(ffprobe_frames(path.to_str().expect("utf-8")).0, 60);

    // Bad blocking requests are refused at once.
    for (q, why) in [
        ("_HLS_msn=4", "more than two segments ahead"),
        ("_HLS_msn=1&_HLS_part=9", "more than three parts ahead"),
        ("_HLS_part=1", "_HLS_part without _HLS_msn"),
        ("_HLS_msn=x", "not a number"),
        ("_HLS_skip=NO", "_HLS_skip neither YES nor v2"),
    ] {
        let (status, body) = server.get_text(&format!("/v1/streams/ll/hls/live.m3u8?{q}")).await;
        assert_eq!(status, 400, "{why}: {body}");
    }
    // Requests for what the playlist already holds answer at once.
    for q in ["_HLS_msn=0", "_HLS_msn=0&_HLS_part=3", "_HLS_msn=1&_HLS_part=1"] {
        let (status, body) = server.get_text(&format!("/v1/streams/ll/hls/live.m3u8?{q}")).await;
        assert_eq!(status, 200, "{q}: {body}");
        assert!(body.contains(&hint), "{q}: {body}");
    }

    // A blocking reload for part 2 of segment 1 (fragment 12) returns once it is persisted.
    let mut reload = spawn_get(&server, "/v1/streams/ll/hls/live.m3u8?_HLS_msn=1&_HLS_part=2");
    // The preload hint's part request blocks too, and gets exactly that fragment.
    let mut hinted = spawn_get(&server, &format!("/v1/streams/ll/hls/{hint}"));
    assert_pending(&mut reload, "the blocking reload").await;
    assert_pending(&mut hinted, "the hinted part").await;
    push(&mut producer, 12).await;
    let (status, text) = finish(reload).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(&format!("URI=\"part/{id}/12.m4s\"")), "{text}");
    assert_eq!(attr(&text, "#EXT-X-PRELOAD-HINT:", "URI"), format!("part/{id}/13.m4s"));
    let (status, hinted) =
        tokio::time::timeout(Duration::from_secs(20), hinted).await.expect("answered").unwrap();
    assert_eq!(status, 200);
    let again = server.http.get(server.url(&format!("/v1/streams/ll/hls/seg/{id}/12-12.m4s")));
    let again = again.send().await.expect("seg").bytes().await.expect("seg");
    assert_eq!(hinted, again, "the hinted part is fragment 12, retimed like its segment");
    // A part further ahead than the hint is not there.
    let (status, _) = server.get_text(&format!("/v1/streams/ll/hls/part/{id}/20.m4s")).await;
    assert_eq!(status, 404);

    // Waiting for segment 2 (which needs fragment 20 and the next keyframe) times out cleanly.
    let (status, body) = server.get_text("/v1/streams/ll/hls/live.m3u8?_HLS_msn=2").await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = server.get_text(&format!("/v1/streams/ll/hls/part/{id}/13.m4s")).await;
    assert_eq!(status, 503, "{body}");

    // Completing the GOP: a blocking reload for segment 1 returns when fragment 20 (the next
    // keyframe) arrives, with segment 1 complete.
    for i in 13..20 {
        push(&mut producer, i).await;
    }
    let mut reload = spawn_get(&server, "/v1/streams/ll/hls/live.m3u8?_HLS_msn=1");
    assert_pending(&mut reload, "the reload for segment 1").await;
    push(&mut producer, 20).await;
    let (status, text) = finish(reload).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(&format!("#EXTINF:2.00000,\nseg/{id}/10-19.m4s\n")), "{text}");
    assert!(text.contains(&format!("URI=\"part/{id}/20.m4s\",INDEPENDENT=YES\n")), "{text}");

    // The producer leaves: a part request for the next fragment fails at once with 404, and
    // the playlist shows the last segment complete, without a preload hint.
    // A blocked reload for segment 2 returns then too: leaving completes the segment in progress.
    let mut hinted = spawn_get(&server, &format!("/v1/streams/ll/hls/part/{id}/21.m4s"));
    assert_pending(&mut hinted, "the hinted part").await;
    let reload = spawn_get(&server, "/v1/streams/ll/hls/live.m3u8?_HLS_msn=2");
    producer.finish().await;
    let (status, body) = finish(hinted).await;
    assert_eq!(status, 404, "{body}");
    let (status, text) = finish(reload).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(&format!("#EXTINF:0.20000,\nseg/{id}/20-20.m4s\n")), "{text}");
    let (_, text) = server.get_text("/v1/streams/ll/hls/live.m3u8").await;
    assert!(!text.contains("PRELOAD-HINT"), "{text}");
    assert!(text.contains(&format!("#EXTINF:0.20000,\nseg/{id}/20-20.m4s\n")), "{text}");
    assert!(text.contains("CAN-BLOCK-RELOAD=YES"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn delta_update_skips_old_segments() {
    let server = ll_server().await;
    server.create_stream("delta").await;
    // Three sessions of three 2 s segments each: 18 s, more than CAN-SKIP-UNTIL (12 s).
    for _ in 0..3 {
        server.push("delta", fixture("h264-parts.mp4"), "").await;
    }
    let (status, full) = server.get_text("/v1/streams/delta/hls/live.m3u8").await;
    assert_eq!(status, 200, "{full}");
    assert_eq!(attr(&full, "#EXT-X-SERVER-CONTROL:", "CAN-SKIP-UNTIL"), "12");
    let uris = |t: &str| -> Vec<String> {
        t.lines().filter(|l| l.starts_with("seg/")).map(str::to_owned).collect()
    };
    assert_eq!(uris(&full).len(), 9, "{full}");
    assert!(full.contains("#EXT-X-VERSION:7\n") && !full.contains("EXT-X-SKIP"), "{full}");
    for q in ["YES", "v2"] {
        let (status, delta) =
            server.get_text(&format!("/v1/streams/delta/hls/live.m3u8?_HLS_skip={q}")).await;
        assert_eq!(status, 200, "{delta}");
        // v2 also skips date ranges (there are none): version 10, an empty removed list.
        let (version, skip) = match q {
            "v2" => ("10", "#EXT-X-SKIP:SKIPPED-SEGMENTS=3,RECENTLY-REMOVED-DATERANGES=\"\"\n"),
            _ => ("9", "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n"),
        };
        assert!(delta.contains(&format!("#EXT-X-VERSION:{version}\n")), "{delta}");
        assert!(delta.contains(skip), "{delta}");
        assert!(delta.contains("#EXT-X-MEDIA-SEQUENCE:0\n"), "{delta}");
        assert_eq!(uris(&delta), uris(&full)[3..], "{delta}");
        // The first segment kept starts a session: its discontinuity is still signalled.
        assert!(delta.contains(&format!("{skip}#EXT-X-DISCONTINUITY\n")), "{delta}");
    }
    server.stop().await;
}

#[tokio::test]
async fn gop_sized_fragments_keep_regular_hls() {
    let server = ll_server().await;
    server.create_stream("gop").await;
    server.push("gop", fixture("h264.mp4"), "").await;
    let (status, text) = server.get_text("/v1/streams/gop/hls/live.m3u8").await;
    assert_eq!(status, 200);
    for tag in ["EXT-X-PART", "EXT-X-SERVER-CONTROL", "EXT-X-PRELOAD-HINT", "EXT-X-SKIP"] {
        assert!(!text.contains(tag), "{tag} in {text}");
    }
    assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n"), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("#EXTINF:1.00000,")).count(), 5, "{text}");
    // Delta requests get the full playlist; a blocking reload for a held segment answers.
    let (_, skipped) = server.get_text("/v1/streams/gop/hls/live.m3u8?_HLS_skip=YES").await;
    assert_eq!(skipped, text);
    let (status, held) = server.get_text("/v1/streams/gop/hls/live.m3u8?_HLS_msn=5").await;
    assert_eq!((status, held), (200, text));
    server.stop().await;
}
