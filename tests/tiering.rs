//! The object tier against an S3-compatible server (moto's, on 127.0.0.1, started here): sealed
//! segments of a video stream and of a data stream go to the bucket and leave local disk, and
//! everything still reads — the on-demand playlist decodes to every frame (ffprobe), fragments
//! are byte-identical, Kinesis GetRecords from TRIM_HORIZON gives every record (the AWS SDK) —
//! before and after a restart; a deleted object fails its own range only.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::json;

/// Files named `*.log` (segment data) under `dir`, recursively, spares aside.
fn local_logs(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".log") && name != "spare.log" {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// Keys in the bucket (S3 ListObjectsV2, unsigned: moto does not check signatures).
async fn keys(http: &reqwest::Client, s3: &str) -> Vec<String> {
    let xml = http
        .get(format!("{s3}/sluice-tier?list-type=2&max-keys=1000"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    xml.split("<Key>").skip(1).filter_map(|k| k.split("</Key>").next()).map(str::to_owned).collect()
}

async fn metric(http: &reqwest::Client, base: &str, name: &str) -> u64 {
    let text = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

async fn kinesis(
    http: &reqwest::Client,
    base: &str,
    op: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let (status, out) = aws_json(http, base, &format!("Kinesis_20131202.{op}"), body).await;
    assert_eq!(status, 200, "{op}: {out}");
    out
}

/// The config of a server tiering to the S3 server at `s3`: tiny segments, uploaded at once and
/// not kept locally; and the credentials' environment.
fn tiered_config(s3: &str) -> String {
    format!(
        "[storage]\nsegment_max_bytes = 65536\nmin_free_bytes = 0\n\
         [object_store]\nendpoint = \"{s3}\"\n\
         [tiering]\nenabled = true\nupload_after_secs = 0\nlocal_retention_hours = 0\ninterval_secs = 1\n"
    )
}

const CREDENTIALS: [(&str, &str); 2] =
    [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")];

/// Creates video stream `cam` and pushes the fixture into it; returns the fixture.
async fn push_video(http: &reqwest::Client, base: &str) -> Vec<u8> {
    let resp = http
        .post(format!("{base}/v1/streams"))
        .json(&json!({ "name": "cam" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let video = fixture("h264-aac.mp4");
    let resp = http
        .put(format!("{base}/v1/streams/cam/media?producerStart=2026-01-01T00:00:00Z"))
        .body(video.clone())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    // The acknowledgements, to the end: every fragment persisted.
    let acks = resp.text().await.unwrap();
    assert!(!acks.contains("\"ERROR\""), "{acks}");
    video
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_segments_live_in_the_bucket_and_still_play() {
    let port = free_port();
    let s3 = format!("http://127.0.0.1:{port}");
    let _store = moto(port).await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    assert!(http.put(format!("{s3}/sluice-tier")).send().await.unwrap().status().is_success());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (config, env) = (tiered_config(&s3), CREDENTIALS);
    let mut server = spawn_server_with(&dir, &config, &env);
    let video = push_video(&http, &server.base).await;
    let (_, frags) = split_fixture(&video);
    let (want_frames, _) = ffprobe_frames(&fixture_path("h264-aac.mp4").display().to_string());
    kinesis(
        &http,
        &server.base,
        "CreateStream",
        json!({ "StreamName": "telemetry", "ShardCount": 1 }),
    )
    .await;
    for _ in 0..50 {
        let d = kinesis(
            &http,
            &server.base,
            "DescribeStreamSummary",
            json!({ "StreamName": "telemetry" }),
        )
        .await;
        if d["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let sent: Vec<Vec<u8>> =
        (0..600).map(|i| format!("{i:05}-{}", "t".repeat(994)).into_bytes()).collect();
    for chunk in sent.chunks(200) {
        let records: Vec<_> =
            chunk.iter().map(|r| json!({ "Data": b64.encode(r), "PartitionKey": "k" })).collect();
        let out = kinesis(
            &http,
            &server.base,
            "PutRecords",
            json!({ "StreamName": "telemetry", "Records": records }),
        )
        .await;
        assert_eq!(out["FailedRecordCount"], 0, "{out}");
    }

    // Every sealed segment goes up and leaves local disk: each log keeps one .log, its active
    // segment (each fragment here is a segment; each PutRecords batch too).
    let most_in_a_dir = |root: &Path| -> usize {
        let mut per_dir = std::collections::HashMap::new();
        for p in local_logs(root) {
            *per_dir.entry(Path::new(&p).parent().unwrap().to_path_buf()).or_insert(0) += 1;
        }
        per_dir.values().copied().max().unwrap_or(0)
    };
    let mut evicted = 0;
    for _ in 0..300 {
        evicted = metric(&http, &server.base, "sluice_tier_evicted_segments_total").await;
        if most_in_a_dir(&dir) == 1 && evicted >= 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(evicted >= 7, "segments evicted: {evicted}");
    assert_eq!(most_in_a_dir(&dir), 1, "only active segments stay local: {:?}", local_logs(&dir));
    assert_eq!(metric(&http, &server.base, "sluice_tier_pending_segments").await, 0);
    let in_bucket = keys(&http, &s3).await;
    assert!(
        in_bucket.iter().filter(|k| k.contains("/fragments/") && k.ends_with(".log")).count() >= 3,
        "{in_bucket:?}"
    );
    assert!(in_bucket.iter().any(|k| k.ends_with(".log.json")), "manifests: {in_bucket:?}");

    let check = |base: String| {
        let http = http.clone();
        let sent = sent.clone();
        let frags = frags.clone();
        async move {
            let (frames, _) = ffprobe_frames(&format!("{base}/v1/streams/cam/hls/index.m3u8"));
            assert_eq!(frames, want_frames, "every frame of the recording, from the bucket");
            for (n, want) in frags.iter().enumerate() {
                let got = http
                    .get(format!("{base}/v1/streams/cam/fragments/{n}/media"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(got.status(), 200, "fragment {n}");
                assert!(
                    got.bytes().await.unwrap().as_ref() == want.as_slice(),
                    "fragment {n} byte-identical"
                );
            }
            let got = stream_records(&kinesis_client(&base), "telemetry").await;
            assert_eq!(got, sent, "every record from TRIM_HORIZON, in order");
        }
    };
    check(server.base.clone()).await;

    // A restart knows what is in the bucket.
    server.child.kill().unwrap();
    let _ = server.child.wait();
    let mut server = spawn_server_with(&dir, &config, &env);
    check(server.base.clone()).await;

    // Segments read from the bucket are fetched whole into the read cache; a cached segment
    // reads even once its object is gone.
    let statuses = |base: String| {
        let http = http.clone();
        let n = frags.len();
        async move {
            let mut out = Vec::new();
            for i in 0..n {
                let url = format!("{base}/v1/streams/cam/fragments/{i}/media");
                out.push(http.get(url).send().await.unwrap().status().as_u16());
            }
            out
        }
    };
    let remote =
        in_bucket.iter().filter(|k| k.contains("/fragments/") && k.ends_with(".log")).count();
    let cache = dir.join("tier-cache");
    let cached = || {
        std::fs::read_dir(&cache).map_or(0, |d| {
            d.flatten().filter(|e| !e.file_name().to_string_lossy().ends_with(".part")).count()
        })
    };
    for _ in 0..100 {
        if cached() >= remote {
            break;
        }
        statuses(server.base.clone()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cached() >= remote, "{} of {remote} segments cached", cached());
    let victim = in_bucket
        .iter()
        .find(|k| k.contains("/fragments/") && k.ends_with(".log"))
        .unwrap()
        .clone();
    let script = "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
                  aws_access_key_id='test', aws_secret_access_key='test').delete_object(Bucket='sluice-tier', Key=sys.argv[2])";
    let mut rm = std::process::Command::new(venv_python());
    rm.args(["-c", script, &s3, &victim]);
    let (ok, stderr) = run_bounded(rm).await;
    assert!(ok, "deleting {victim}: {stderr}");
    assert!(statuses(server.base.clone()).await.iter().all(|s| *s == 200), "served from the cache");

    // After a restart the cache is empty: the deleted object fails its own fragments only, with
    // a clear status; the rest still reads.
    server.child.kill().unwrap();
    let _ = server.child.wait();
    let mut server = spawn_server_with(&dir, &config, &env);
    let got = statuses(server.base.clone()).await;
    assert!(got.iter().all(|s| *s == 200 || *s >= 500), "{got:?}");
    let failed = got.iter().filter(|s| **s != 200).count();
    assert!(failed > 0 && failed < frags.len(), "{failed} of {} fragments fail", frags.len());
    assert_eq!(http.get(format!("{}/healthz", server.base)).send().await.unwrap().status(), 200);
    // Deleting the streams deletes their objects.
    let resp = http.delete(format!("{}/v1/streams/cam", server.base)).send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    kinesis(&http, &server.base, "DeleteStream", json!({ "StreamName": "telemetry" })).await;
    let mut left = keys(&http, &s3).await;
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = keys(&http, &s3).await;
    }
    assert!(left.is_empty(), "objects of deleted streams: {left:?}");
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// The bucket down: uploads fail and are retried, nothing is evicted, everything still plays
/// from local disk; once the bucket is back the segments go up and leave local disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_is_down_loses_nothing() {
    let port = free_port();
    let s3 = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // No S3 server yet.
    let server = spawn_server_with(&dir, &tiered_config(&s3), &CREDENTIALS);
    push_video(&http, &server.base).await;
    let mut failures = 0;
    for _ in 0..300 {
        failures = metric(&http, &server.base, "sluice_tier_failures_total").await;
        if failures > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failures > 0, "uploads fail while the bucket is down");
    assert!(metric(&http, &server.base, "sluice_tier_pending_segments").await >= 5);
    assert_eq!(metric(&http, &server.base, "sluice_tier_evicted_segments_total").await, 0);
    let (want, _) = ffprobe_frames(&fixture_path("h264-aac.mp4").display().to_string());
    let playlist = format!("{}/v1/streams/cam/hls/index.m3u8", server.base);
    assert_eq!(ffprobe_frames(&playlist).0, want, "plays from local disk meanwhile");

    // The bucket comes back.
    let _store = moto(port).await;
    assert!(http.put(format!("{s3}/sluice-tier")).send().await.unwrap().status().is_success());
    let mut evicted = 0;
    for _ in 0..300 {
        evicted = metric(&http, &server.base, "sluice_tier_evicted_segments_total").await;
        if evicted >= 5 && metric(&http, &server.base, "sluice_tier_pending_segments").await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(evicted >= 5, "uploaded and evicted once the bucket is back: {evicted}");
    assert_eq!(ffprobe_frames(&playlist).0, want, "plays from the bucket");
    let mut server = server;
    server.child.kill().unwrap();
    let _ = server.child.wait();
}
