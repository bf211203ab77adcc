//! Retention by age and by bytes, driven by an injected clock (no sleeps), checking the order of
//! side effects: append → playlist names it → delete → no playlist names it, its URLs are gone.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use sluice::clock::{ManualClock, Timestamp};

fn segment_uris(playlist: &str) -> Vec<String> {
    playlist.lines().filter(|l| l.starts_with("seg/")).map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_age_then_by_bytes() {
    let t0 = Timestamp::parse_api("2026-01-01T00:00:00Z").unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let server = TestServer::start_with(
        |c| {
            // One fragment per segment file, and no background pass during the test.
            c.storage.segment_max_bytes = 4096;
            c.storage.retention_interval_secs = std::time::Duration::from_secs(3600);
        },
        clock.clone(),
    )
    .await;
    server.create_stream_with(json!({ "name": "r", "retentionHours": 3 })).await;

    // Session A at t0, session B two hours later.
    server.push("r", fixture("h264.mp4"), "").await;
    clock.advance(Duration::from_secs(2 * 3600));
    server.push("r", fixture("h264.mp4"), "").await;
    assert_eq!(server.fragments("r").await.len(), 12);

    // Append → playlist: every fragment is named.
    let (_, before) = server.get_text("/v1/streams/r/hls/index.m3u8").await;
    let before = segment_uris(&before);
    assert_eq!(before.len(), 12);
    let (_, live_before) = server.get_text("/v1/streams/r/hls/live.m3u8").await;
    assert!(!segment_uris(&live_before).is_empty());

    // Nothing has expired yet.
    assert!(server.state.video.enforce_retention().is_empty());

    // Three hours and a second after t0, session A has expired; session B has not.
    clock.advance(Duration::from_secs(3600 + 1));
    let deleted = server.state.video.enforce_retention();
    let fragments_deleted: u64 = deleted.iter().map(|(_, d)| d.records).sum();
    assert_eq!(fragments_deleted, 6, "{deleted:?}");
    assert_eq!(deleted.iter().map(|(_, d)| d.first.offset.0).min(), Some(0));
    assert_eq!(deleted.iter().map(|(_, d)| d.last.offset.0).max(), Some(5));

    // Delete → no playlist names deleted data, and their URLs are gone.
    let (_, after) = server.get_text("/v1/streams/r/hls/index.m3u8").await;
    let after = segment_uris(&after);
    assert_eq!(after, before[6..].to_vec());
    let (_, live_after) = server.get_text("/v1/streams/r/hls/live.m3u8").await;
    for uri in segment_uris(&live_after) {
        assert!(!before[..6].contains(&uri), "live playlist names deleted {uri}");
    }
    for uri in &before[..6] {
        let (status, _) = server.get_text(&format!("/v1/streams/r/hls/{uri}")).await;
        assert_eq!(status, 404, "{uri}");
    }
    for uri in &after {
        let (status, _) = server.get_text(&format!("/v1/streams/r/hls/{uri}")).await;
        assert_eq!(status, 200, "{uri}");
    }
    let listed = server.fragments("r").await;
    assert_eq!(listed.len(), 6);
    assert_eq!(listed[0]["fragmentNumber"], "6");
    let (frames, _) = ffprobe_frames(&server.url("/v1/streams/r/hls/index.m3u8"));
    assert_eq!(frames, 180, "what remains still plays");
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(
        metrics.contains("sluice_retention_deleted_fragments_total{stream=\"r\"} 6"),
        "{metrics}"
    );

    // By bytes: keep at most three fragments' worth; the oldest go first.
    let sizes: Vec<u64> = listed.iter().map(|f| f["sizeBytes"].as_u64().unwrap()).collect();
    let limit = sizes[3..].iter().sum::<u64>() + 3 * 4096;
    let resp = server
        .http
        .patch(server.url("/v1/streams/r"))
        .json(&json!({ "retentionBytes": limit }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    server.state.video.enforce_retention();
    let listed = server.fragments("r").await;
    let numbers: Vec<&str> = listed.iter().map(|f| f["fragmentNumber"].as_str().unwrap()).collect();
    assert_eq!(numbers, ["9", "10", "11"]);
    let d = server.get_json("/v1/streams/r").await;
    assert!(d["bytesStored"].as_u64().unwrap() <= limit + 8192, "{d}");

    // New data after deletion continues the numbering.
    clock.advance(Duration::from_secs(60));
    server.push("r", fixture("h264.mp4"), "").await;
    let listed = server.fragments("r").await;
    assert_eq!(listed.last().unwrap()["fragmentNumber"], "17");
    server.stop().await;
}

/// Retention keeps working across a restart, and a stream idle for longer than its retention
/// ends up empty but keeps its numbering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_stream_expires_completely_and_numbering_survives_restart() {
    let t0 = Timestamp::parse_api("2026-01-01T00:00:00Z").unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let tmp = tempfile::tempdir().unwrap();
    let tweak = |c: &mut sluice::config::Config| {
        c.storage.retention_interval_secs = std::time::Duration::from_secs(3600);
    };
    let server = TestServer::start_in(tmp.path(), tweak, clock.clone()).await;
    server.create_stream_with(json!({ "name": "idle", "retentionHours": 1 })).await;
    server.push("idle", fixture("h264.mp4"), "").await;
    server.stop().await;

    clock.advance(Duration::from_secs(2 * 3600));
    let server = TestServer::start_in(tmp.path(), tweak, clock.clone()).await;
    assert_eq!(server.fragments("idle").await.len(), 6, "recovered after restart");
    server.state.video.enforce_retention();
    assert_eq!(server.fragments("idle").await.len(), 0);
    let (status, _) = server.get_text("/v1/streams/idle/hls/index.m3u8").await;
    assert_eq!(status, 404);
    server.push("idle", fixture("h264.mp4"), "").await;
    let listed = server.fragments("idle").await;
    assert_eq!(listed[0]["fragmentNumber"], "6");
    server.stop().await;
}

/// A disk of `capacity` bytes whose used space is what Sluice stores under its data directory.
struct SimulatedDisk {
    dir: std::path::PathBuf,
    capacity: std::sync::atomic::AtomicU64,
}

fn du(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            total += if p.is_dir() { du(&p) } else { e.metadata().map(|m| m.len()).unwrap_or(0) };
        }
    }
    total
}

impl sluice::video::DiskSpace for SimulatedDisk {
    fn available_bytes(&self) -> std::io::Result<u64> {
        let cap = self.capacity.load(std::sync::atomic::Ordering::SeqCst);
        Ok(cap.saturating_sub(du(&self.dir.join("video"))))
    }
}

/// The free-disk floor deletes the oldest video across streams, one segment at a time, until
/// there is room again, and never a stream's newest segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_disk_floor_deletes_the_oldest_video_first() {
    let t0 = Timestamp::parse_api("2026-01-01T00:00:00Z").unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let floor = 1_000_000;
    let server = TestServer::start_with(
        |c| {
            c.storage.segment_max_bytes = 4096;
            c.storage.retention_interval_secs = std::time::Duration::from_secs(3600);
            c.storage.min_free_bytes = floor;
        },
        clock.clone(),
    )
    .await;
    server.create_stream("a").await;
    server.create_stream("b").await;
    server.push("a", fixture("h264.mp4"), "").await;
    clock.advance(Duration::from_secs(3600));
    server.push("b", fixture("h264.mp4"), "").await;

    let disk = Arc::new(SimulatedDisk { dir: server.dir.clone(), capacity: u64::MAX.into() });
    server.state.video.set_disk_space(disk.clone());
    assert!(server.state.video.enforce_disk_floor().is_empty(), "plenty of room: nothing goes");

    // 250 KB short of the floor: the three oldest fragments of the older stream go.
    let used = du(&server.dir.join("video"));
    disk.capacity.store(used + floor - 250_000, std::sync::atomic::Ordering::SeqCst);
    let deleted = server.state.video.enforce_disk_floor();
    let gone: u64 = deleted.iter().map(|(_, d)| d.records).sum();
    assert!(deleted.iter().all(|(s, _)| s.as_str() == "a"), "{deleted:?}");
    assert!((3..=4).contains(&gone), "about 250 KB of ~105 KB fragments: {gone}");
    assert_eq!(server.fragments("b").await.len(), 6);
    assert_eq!(server.fragments("a").await.len() as u64, 6 - gone);
    let (frames, _) = ffprobe_frames(&server.url("/v1/streams/a/hls/index.m3u8"));
    assert_eq!(frames, 30 * (6 - gone), "what remains plays");

    // A disk that can never satisfy the floor: everything but each stream's newest segment goes.
    disk.capacity.store(0, std::sync::atomic::Ordering::SeqCst);
    server.state.video.enforce_disk_floor();
    assert_eq!(server.fragments("a").await.len(), 1);
    assert_eq!(server.fragments("b").await.len(), 1);
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(
        metrics.contains("sluice_retention_deleted_fragments_total{stream=\"b\"} 5"),
        "{metrics}"
    );
    // Recording goes on.
    let acks = server.push("b", fixture("h264.mp4"), "").await;
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 6);
    server.stop().await;
}

/// With segments larger than the disk (the default 256 MiB on a small disk), a stream's media is
/// all in its one active segment, which the floor may not delete. The floor seals it, and a later
/// pass deletes it once newer media sits after it: recording goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_disk_floor_seals_a_lone_segment_then_deletes_it() {
    let t0 = Timestamp::parse_api("2026-01-01T00:00:00Z").unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let floor = 1_000_000;
    let server = TestServer::start_with(
        |c| {
            c.storage.retention_interval_secs = std::time::Duration::from_secs(3600);
            c.storage.min_free_bytes = floor;
        },
        clock.clone(),
    )
    .await;
    server.create_stream("a").await;
    server.push("a", fixture("h264.mp4"), "").await;
    let disk = Arc::new(SimulatedDisk { dir: server.dir.clone(), capacity: u64::MAX.into() });
    server.state.video.set_disk_space(disk.clone());
    let used = du(&server.dir.join("video"));
    disk.capacity.store(used + floor - 250_000, std::sync::atomic::Ordering::SeqCst);

    // First pass: nothing can go yet, the segment is sealed.
    assert!(server.state.video.enforce_disk_floor().is_empty());
    assert_eq!(server.fragments("a").await.len(), 6, "sealing deletes nothing");
    // Newer media arrives after it; the next pass deletes the sealed, older segment.
    clock.advance(Duration::from_secs(60));
    let acks = server.push("a", fixture("h264.mp4"), "").await;
    assert_eq!(acks_of(&acks, "PERSISTED").len(), 6);
    let deleted = server.state.video.enforce_disk_floor();
    let gone: u64 = deleted.iter().map(|(_, d)| d.records).sum();
    assert_eq!(gone, 6, "the sealed segment's six fragments: {deleted:?}");
    assert_eq!(server.fragments("a").await.len(), 6, "the newer media stays");
    server.stop().await;
}

/// With the object tier, the free-disk floor first evicts video already in the bucket (nothing is
/// lost: it still plays), never deletes what is only in the bucket, and says so when it has to
/// delete video that was not uploaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_disk_floor_evicts_uploaded_video_first() {
    let t0 = Timestamp::parse_api("2026-01-01T00:00:00Z").unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let floor = 1_000_000;
    let server = TestServer::start_with(
        |c| {
            c.storage.segment_max_bytes = 4096;
            c.storage.retention_interval_secs = std::time::Duration::from_secs(3600);
            c.storage.min_free_bytes = floor;
            // A bucket in the data directory; passes are run by the test, not the timer.
            c.tiering.enabled = true;
            c.tiering.upload_after_secs = Duration::ZERO;
            c.tiering.local_retention_hours = None;
            c.tiering.interval_secs = Duration::from_secs(3600);
        },
        clock.clone(),
    )
    .await;
    server.create_stream("a").await;
    server.create_stream("b").await;
    server.push("a", fixture("h264.mp4"), "").await;
    let policy = sluice::tiering::policy(&server.state.config.tiering);
    let r = server.state.video.tier_pass(&policy);
    assert_eq!((r.uploaded, r.evicted), (5, 0), "a's sealed segments are in the bucket: {r:?}");
    clock.advance(Duration::from_secs(3600));
    server.push("b", fixture("h264.mp4"), "").await;

    let disk = Arc::new(SimulatedDisk { dir: server.dir.clone(), capacity: u64::MAX.into() });
    server.state.video.set_disk_space(disk.clone());
    // 250 KB short: a's uploaded segments leave local disk; nothing is deleted.
    let used = du(&server.dir.join("video"));
    disk.capacity.store(used + floor - 250_000, std::sync::atomic::Ordering::SeqCst);
    assert!(server.state.video.enforce_disk_floor().is_empty(), "evicted, not deleted");
    assert!(du(&server.dir.join("video")) <= used - 250_000);
    assert_eq!(server.fragments("a").await.len(), 6);
    let (frames, _) = ffprobe_frames(&server.url("/v1/streams/a/hls/index.m3u8"));
    assert_eq!(frames, 180, "all of a still plays, partly from the bucket");

    // Far short: every uploaded segment is evicted, then b's (not uploaded) oldest go; a's
    // segments that are only in the bucket stay.
    disk.capacity.store(
        du(&server.dir.join("video")) + floor - 400_000,
        std::sync::atomic::Ordering::SeqCst,
    );
    let deleted = server.state.video.enforce_disk_floor();
    assert!(!deleted.is_empty() && deleted.iter().all(|(s, _)| s.as_str() == "b"), "{deleted:?}");
    assert_eq!(server.fragments("a").await.len(), 6, "nothing of a is deleted");
    let (_, metrics) = server.get_text("/metrics").await;
    let gone: u64 = deleted.iter().map(|(_, d)| d.records).sum();
    assert!(
        metrics.contains(&format!("sluice_tier_deleted_not_uploaded_fragments_total {gone}")),
        "{metrics}"
    );
    server.stop().await;
}
