//! Delivery streams (the Amazon Data Firehose API), black-box: boto3's `firehose` client creates
//! streams with directory buckets (Sluice's default object store), puts records and reads them
//! back from the delivered objects exactly once (tests/python/firehose_clients.py); a Kinesis
//! data stream as the source; and what is acknowledged survives a graceful stop (flushed) and a
//! SIGKILL (delivered after the restart).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_delivers_records_into_directory_buckets() {
    let server = TestServer::start_with(|_| {}, Arc::new(sluice::clock::SystemClock)).await;
    let mut cmd = std::process::Command::new(venv_python());
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/firehose_clients.py"))
        .arg(&server.base)
        .arg(server.dir.join("buckets"));
    let (ok, stderr) = run_bounded(cmd).await;
    assert!(ok, "firehose_clients.py: {stderr}");
    // What was delivered is in /metrics too; a deleted stream's series are gone.
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(metrics.contains("sluice_firehose_records_total{stream=\"events\"} 2002"), "{metrics}");
    assert!(metrics.contains("sluice_firehose_buffered_records{stream=\"events\"} 0"));
    assert!(!metrics.contains("stream=\"from-kds\""), "a deleted stream's series");
    server.stop().await;
}

/// One Firehose call with the JSON 1.1 wire, as the SDKs send it.
async fn call(http: &reqwest::Client, base: &str, op: &str, body: Value) -> (u16, Value) {
    let resp = http
        .post(format!("{base}/"))
        .header("x-amz-target", format!("Firehose_20150804.{op}"))
        .header("content-type", "application/x-amz-json-1.1")
        .body(body.to_string())
        .send()
        .await
        .expect("firehose call");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Every line of every object in `bucket` under `dir`.
fn lines(dir: &Path, bucket: &str) -> Vec<String> {
    let mut out = Vec::new();
    let root = dir.join("buckets").join(bucket);
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !e.file_name().to_string_lossy().starts_with('.') {
                let text = std::fs::read_to_string(&p).unwrap();
                out.extend(text.lines().map(str::to_owned));
            }
        }
    }
    out.sort();
    out
}

async fn put_lines(http: &reqwest::Client, base: &str, stream: &str, lines: &[String]) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let records: Vec<Value> = lines.iter().map(|l| json!({ "Data": b64.encode(l) })).collect();
    let (status, out) = call(
        http,
        base,
        "PutRecordBatch",
        json!({ "DeliveryStreamName": stream, "Records": records }),
    )
    .await;
    assert_eq!((status, &out["FailedPutCount"]), (200, &json!(0)), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_a_graceful_stop_and_a_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let http = reqwest::Client::new();
    // A long interval: nothing is delivered until the stop flushes it.
    let mut server = spawn_server(&dir);
    let dest = json!({
        "RoleARN": "arn:aws:iam::000000000000:role/f", "BucketARN": "arn:aws:s3:::lake",
        "BufferingHints": { "SizeInMBs": 128, "IntervalInSeconds": 900 },
        "ProcessingConfiguration": { "Enabled": true, "Processors": [{ "Type": "AppendDelimiterToRecord" }] },
    });
    let (status, out) = call(
        &http,
        &server.base,
        "CreateDeliveryStream",
        json!({ "DeliveryStreamName": "hose", "ExtendedS3DestinationConfiguration": dest }),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let first: Vec<String> = (0..200).map(|i| format!("first-{i:03}")).collect();
    put_lines(&http, &server.base, "hose", &first).await;
    assert!(lines(&dir, "lake").is_empty(), "nothing is due yet");
    // SIGTERM: a graceful stop delivers what is buffered.
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let _ = server.child.wait();
    assert_eq!(lines(&dir, "lake"), first, "flushed at the stop");

    // Acknowledged, then SIGKILL before the interval: delivered after the restart.
    server = spawn_server(&dir);
    let (status, out) = call(
        &http,
        &server.base,
        "UpdateDestination",
        json!({ "DeliveryStreamName": "hose", "CurrentDeliveryStreamVersionId": "1",
                "DestinationId": "destinationId-000000000001",
                "ExtendedS3DestinationUpdate": { "BufferingHints": { "SizeInMBs": 128, "IntervalInSeconds": 3 } } }),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let second: Vec<String> = (0..300).map(|i| format!("second-{i:03}")).collect();
    put_lines(&http, &server.base, "hose", &second).await;
    server.child.kill().unwrap();
    let _ = server.child.wait();
    server = spawn_server(&dir);
    let mut want: Vec<String> = first.iter().chain(&second).cloned().collect();
    want.sort();
    let mut got = Vec::new();
    for _ in 0..100 {
        got = lines(&dir, "lake");
        if got.len() >= want.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got, want, "every acknowledged record, exactly once");
    let (_, d) = call(
        &http,
        &server.base,
        "DescribeDeliveryStream",
        json!({ "DeliveryStreamName": "hose" }),
    )
    .await;
    assert_eq!(d["DeliveryStreamDescription"]["VersionId"], "2", "{d}");
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// moto's S3-compatible server (from the test venv) on `port`, killed when dropped.
async fn moto(port: u16) -> common::browser::Guard {
    let bin = venv_python().with_file_name("moto_server");
    let child = std::process::Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn moto_server (tests/requirements.txt)");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    common::browser::Guard(child)
}

async fn s3_phase(base: &str, s3: &str, phase: &str) {
    let mut cmd = std::process::Command::new(venv_python());
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/firehose_s3.py"))
        .args([base, s3, phase]);
    let (ok, stderr) = run_bounded(cmd).await;
    assert!(ok, "firehose_s3.py {phase}: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_reach_an_s3_compatible_store_and_survive_its_outage() {
    let port = free_port();
    let s3 = format!("http://127.0.0.1:{port}");
    let store = moto(port).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // The endpoint from the config, the credentials from the standard variables.
    let config = format!("[object_store]\nendpoint = \"{s3}\"\n");
    let env = [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")];
    let mut server = spawn_server_with(&dir, &config, &env);
    s3_phase(&server.base, &s3, "first").await;
    // The store goes away: records are still taken, objects fail and are retried.
    drop(store);
    s3_phase(&server.base, &s3, "put").await;
    let http = reqwest::Client::new();
    let mut failures = 0;
    for _ in 0..150 {
        let (_, d) = call(
            &http,
            &server.base,
            "DescribeDeliveryStream",
            json!({ "DeliveryStreamName": "to-s3" }),
        )
        .await;
        failures =
            d["DeliveryStreamDescription"]["SluiceDelivery"]["Failures"].as_u64().unwrap_or(0);
        if failures > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failures > 0, "a write to the stopped store failed and was counted");
    let _store = moto(port).await;
    s3_phase(&server.base, &s3, "after").await;
    server.child.kill().unwrap();
    let _ = server.child.wait();
}
