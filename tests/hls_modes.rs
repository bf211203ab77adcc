//! HLS playlist modes: live replay pacing (with an injected clock), discontinuity modes across a
//! gap, program date-times on either clock, and the live window's sequence numbers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use sluice::clock::{ManualClock, Timestamp};

/// Seconds between the first and the last video packet's presentation time, per ffprobe.
fn pts_span(url: &str) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
            url,
        ])
        .output()
        .expect("ffprobe");
    let pts: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let (min, max) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), &p| (a.min(p), b.max(p)));
    max - min
}

fn segs(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("seg/")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_replay_grows_in_real_time_until_end() {
    let t0 = Timestamp::parse_api("2026-03-01T12:00:00Z").unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let server = TestServer::start_with(|_| {}, clock.clone()).await;
    server.create_stream("rp").await;
    server.push("rp", fixture("h264.mp4"), "?producerStart=2026-03-01T11:00:00Z").await;

    let (status, master) = server
        .get_text("/v1/streams/rp/hls/index.m3u8?mode=live_replay&start=2026-03-01T11:00:01Z&end=2026-03-01T11:00:05Z")
        .await;
    assert_eq!(status, 200);
    assert!(master.contains("#EXT-X-STREAM-INF:BANDWIDTH="), "{master}");
    assert!(master.contains("CODECS=\"avc1."), "{master}");
    assert!(master.contains("RESOLUTION=640x360"), "{master}");
    let variant = master.lines().find(|l| l.starts_with("replay.m3u8?")).unwrap().to_owned();
    match m3u8_rs::parse_playlist_res(master.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => assert_eq!(m.variants.len(), 1),
        other => panic!("not a multivariant playlist: {other:?}"),
    }

    // At the viewer's start: the segment playing at `start` plus one of lead, no end yet.
    let (_, p) = server.get_text(&format!("/v1/streams/rp/hls/{variant}")).await;
    assert!(p.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{p}");
    assert!(!p.contains("#EXT-X-ENDLIST"));
    assert_eq!(segs(&p), 2, "{p}");
    // A second later, one more segment (and the next as lead).
    clock.advance(Duration::from_secs(1));
    let (_, p) = server.get_text(&format!("/v1/streams/rp/hls/{variant}")).await;
    assert_eq!(segs(&p), 3, "{p}");
    assert!(!p.contains("#EXT-X-ENDLIST"));
    // Another second: every segment of the range is listed and its end is stored already, so
    // nothing more can come: the playlist ends (players play on to the end, no stall).
    clock.advance(Duration::from_secs(1));
    let (_, p) = server.get_text(&format!("/v1/streams/rp/hls/{variant}")).await;
    assert!(p.contains("#EXT-X-ENDLIST"), "{p}");
    assert_eq!(segs(&p), 4, "fragments 1-4 start in [01, 05): {p}");
    // Past the end: the same, final playlist.
    clock.advance(Duration::from_secs(10));
    let (_, later) = server.get_text(&format!("/v1/streams/rp/hls/{variant}")).await;
    assert_eq!(later, p);
    let (frames, _) = ffprobe_frames(&server.url(&format!("/v1/streams/rp/hls/{variant}")));
    assert_eq!(frames, 120);

    let (status, _) = server.get_text("/v1/streams/rp/hls/index.m3u8?mode=live_replay").await;
    assert_eq!(status, 400, "live replay needs a start");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discontinuity_modes_and_program_date_times_across_a_gap() {
    let server = TestServer::start().await;
    server.create_stream("gap").await;
    server.push("gap", fixture("h264.mp4"), "?producerStart=2026-03-01T10:00:00Z").await;
    // A second session a minute later: a 54-second gap on the producer timeline.
    server.push("gap", fixture("h264.mp4"), "?producerStart=2026-03-01T10:01:00Z").await;

    let (_, on_gap) = server.get_text("/v1/streams/gap/hls/index.m3u8").await;
    assert_eq!(on_gap.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{on_gap}");
    assert!(on_gap.contains("#EXT-X-PROGRAM-DATE-TIME:2026-03-01T10:00:00.000Z"));
    assert!(on_gap.contains("#EXT-X-PROGRAM-DATE-TIME:2026-03-01T10:01:05.000Z"));
    let (_, always) = server.get_text("/v1/streams/gap/hls/index.m3u8?discontinuity=always").await;
    assert_eq!(always.matches("#EXT-X-DISCONTINUITY\n").count(), 11);
    let (_, never) =
        server.get_text("/v1/streams/gap/hls/index.m3u8?discontinuity=never&pdt=false").await;
    assert_eq!(never.matches("#EXT-X-DISCONTINUITY").count(), 0);
    assert!(!never.contains("PROGRAM-DATE-TIME"));
    // The server clock selects the range; program date times stay on the producer clock, which
    // media time follows (the two pushes arrived faster than real time).
    let (_, server_clock) =
        server.get_text("/v1/streams/gap/hls/index.m3u8?timestamps=server").await;
    assert_eq!(server_clock, on_gap, "server-clock selection of everything");

    // The whole thing, gap included, decodes; the timeline keeps the gap.
    let (frames, _) = ffprobe_frames(&server.url("/v1/streams/gap/hls/index.m3u8"));
    assert_eq!(frames, 360);
    let span = pts_span(&server.url("/v1/streams/gap/hls/index.m3u8"));
    assert!(span > 64.0 && span < 66.0, "the 54-second gap is on the media timeline: {span}");
    let errors = ffmpeg_decode_errors(&server.url("/v1/streams/gap/hls/index.m3u8"), &[]);
    assert!(errors.trim().is_empty(), "{errors}");

    // A range inside the gap has no media.
    let (status, _) = server
        .get_text(
            "/v1/streams/gap/hls/index.m3u8?start=2026-03-01T10:00:10Z&end=2026-03-01T10:00:50Z",
        )
        .await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_window_slides_with_consistent_sequence_numbers() {
    let server = TestServer::start_with(
        |c| c.hls.live_window_segments = 3,
        Arc::new(sluice::clock::SystemClock),
    )
    .await;
    server.create_stream("w").await;
    server.push("w", fixture("h264.mp4"), "").await;
    let (_, p1) = server.get_text("/v1/streams/w/hls/live.m3u8").await;
    assert_eq!(segs(&p1), 3);
    assert!(p1.contains("#EXT-X-MEDIA-SEQUENCE:3\n"), "{p1}");
    assert!(p1.contains("seg/1/3-3.m4s"));
    server.push("w", fixture("h264.mp4"), "").await;
    let (_, p2) = server.get_text("/v1/streams/w/hls/live.m3u8").await;
    assert!(p2.contains("#EXT-X-MEDIA-SEQUENCE:9\n"), "{p2}");
    // Fragment 6 (first of the second session) slid out of the window; its discontinuity is
    // counted by the sequence number.
    assert!(p2.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{p2}");
    assert!(!p2.contains("#EXT-X-ENDLIST"));
    match m3u8_rs::parse_playlist_res(p2.as_bytes()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => {
            assert_eq!(m.media_sequence, 9);
            assert_eq!(m.segments.len(), 3);
        }
        other => panic!("{other:?}"),
    }
    server.stop().await;
}
