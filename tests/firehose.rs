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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_transforms_and_parquet_read_back_with_other_tools() {
    let server = TestServer::start_with(|_| {}, Arc::new(sluice::clock::SystemClock)).await;
    let mut cmd = std::process::Command::new(venv_python());
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/firehose_processing.py"))
        .arg(&server.base)
        .arg(server.dir.join("buckets"));
    let (ok, stderr) = run_bounded(cmd).await;
    assert!(ok, "firehose_processing.py: {stderr}");
    let (_, metrics) = server.get_text("/metrics").await;
    assert!(
        metrics.contains("sluice_firehose_error_records_total{stream=\"by-camera\"} 3"),
        "{metrics}"
    );
    server.stop().await;
}

/// Dynamic partitions flush on their own: a partition delivered while another is still open is
/// not delivered again after a SIGKILL (its mark says how far it went), and the open one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_delivers_no_partition_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let http = reqwest::Client::new();
    let mut server = spawn_server(&dir);
    let dest = json!({
        "RoleARN": "arn:aws:iam::000000000000:role/f", "BucketARN": "arn:aws:s3:::lake",
        "Prefix": "cam=!{partitionKeyFromQuery:cam}/",
        "ErrorOutputPrefix": "err/!{firehose:error-output-type}/",
        "BufferingHints": { "SizeInMBs": 1, "IntervalInSeconds": 900 },
        "DynamicPartitioningConfiguration": { "Enabled": true },
        "ProcessingConfiguration": { "Enabled": true, "Processors": [
            { "Type": "MetadataExtraction", "Parameters": [
                { "ParameterName": "MetadataExtractionQuery", "ParameterValue": "{cam: .cam}" },
                { "ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6" }] },
            { "Type": "AppendDelimiterToRecord" }] },
    });
    let (status, out) = call(
        &http,
        &server.base,
        "CreateDeliveryStream",
        json!({ "DeliveryStreamName": "hose", "ExtendedS3DestinationConfiguration": dest }),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let record =
        |cam: &str, i: usize| json!({ "cam": cam, "i": i, "pad": "x".repeat(900) }).to_string();
    // One record opens partition b; then partition a fills past 1 MiB and is delivered alone.
    let quiet = vec![record("b", 0)];
    put_lines(&http, &server.base, "hose", &quiet).await;
    let busy: Vec<String> = (0..1300).map(|i| record("a", i)).collect();
    for chunk in busy.chunks(250) {
        put_lines(&http, &server.base, "hose", chunk).await;
    }
    let mut objects = 0;
    for _ in 0..300 {
        let (_, d) = call(
            &http,
            &server.base,
            "DescribeDeliveryStream",
            json!({ "DeliveryStreamName": "hose" }),
        )
        .await;
        objects = d["DeliveryStreamDescription"]["SluiceDelivery"]["DeliveredObjects"]
            .as_u64()
            .unwrap_or(0);
        if objects > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(objects, 1, "partition a's first object, counted once its mark is saved");
    let delivered = lines(&dir, "lake");
    assert!(delivered.len() > 1000 && delivered.len() < 1300, "{}", delivered.len());
    assert!(delivered.iter().all(|l| l.contains(r#""cam":"a""#)));
    server.child.kill().unwrap();
    let _ = server.child.wait();
    // After the restart a graceful stop flushes both partitions: every record exactly once.
    server = spawn_server(&dir);
    let pid = server.child.id().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let _ = server.child.wait();
    let mut want: Vec<String> = quiet.iter().chain(&busy).cloned().collect();
    want.sort();
    assert_eq!(lines(&dir, "lake"), want, "every record exactly once");
}

/// One Firehose call with the JSON 1.1 wire, as the SDKs send it.
async fn call(http: &reqwest::Client, base: &str, op: &str, body: Value) -> (u16, Value) {
    aws_json(http, base, &format!("Firehose_20150804.{op}"), body).await
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

/// What the test's HTTP endpoint saw: each request's headers and JSON body.
#[derive(Default)]
struct Endpoint {
    /// Requests answered 500 before the endpoint works.
    fail_first: usize,
    seen: std::sync::Mutex<Vec<(axum::http::HeaderMap, Value)>>,
}

async fn serve_endpoint(e: Arc<Endpoint>) -> String {
    use axum::http::StatusCode;
    let app = axum::Router::new().route(
        "/ingest",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let e = e.clone();
            async move {
                let text = if headers.get("content-encoding").is_some() {
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(
                        &mut flate2::read::GzDecoder::new(&body[..]),
                        &mut out,
                    )
                    .unwrap();
                    out
                } else {
                    body.to_vec()
                };
                let v: Value = serde_json::from_slice(&text).unwrap();
                let id = v["requestId"].clone();
                let n = {
                    let mut seen = e.seen.lock().unwrap();
                    seen.push((headers, v));
                    seen.len()
                };
                if n <= e.fail_first {
                    return (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        axum::Json(
                            json!({ "requestId": id, "timestamp": 0, "errorMessage": "not yet" }),
                        ),
                    );
                }
                (StatusCode::OK, axum::Json(json!({ "requestId": id, "timestamp": 0 })))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/ingest")
}

fn http_destination(url: &str, retry_secs: u32, gzip: bool) -> Value {
    json!({
        "EndpointConfiguration": { "Url": url, "Name": "test", "AccessKey": "k-123" },
        "BufferingHints": { "SizeInMBs": 1, "IntervalInSeconds": 1 },
        "RequestConfiguration": {
            "ContentEncoding": if gzip { "GZIP" } else { "NONE" },
            "CommonAttributes": [{ "AttributeName": "site", "AttributeValue": "north" }],
        },
        "RetryOptions": { "DurationInSeconds": retry_secs },
        "RoleARN": "arn:aws:iam::000000000000:role/f",
        "S3Configuration": { "RoleARN": "arn:aws:iam::000000000000:role/f", "BucketARN": "arn:aws:s3:::backup",
                             "ErrorOutputPrefix": "failed/!{firehose:error-output-type}/" },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_endpoint_protocol_both_ways_with_retries_and_backup() {
    let server = TestServer::start_with(|_| {}, Arc::new(sluice::clock::SystemClock)).await;
    let http = &server.http;
    let base = &server.base;
    let b64 = base64::engine::general_purpose::STANDARD;

    // To an endpoint that fails twice, then takes the batch: the same request id every time.
    let endpoint = Arc::new(Endpoint { fail_first: 2, ..Endpoint::default() });
    let url = serve_endpoint(endpoint.clone()).await;
    let (status, out) = call(http, base, "CreateDeliveryStream", json!({
        "DeliveryStreamName": "to-http", "HttpEndpointDestinationConfiguration": http_destination(&url, 60, true),
    })).await;
    assert_eq!(status, 200, "{out}");
    let (_, d) =
        call(http, base, "DescribeDeliveryStream", json!({ "DeliveryStreamName": "to-http" }))
            .await;
    let h =
        &d["DeliveryStreamDescription"]["Destinations"][0]["HttpEndpointDestinationDescription"];
    assert_eq!(
        h["EndpointConfiguration"],
        json!({ "Url": url, "Name": "test" }),
        "the access key is never shown: {h}"
    );
    let sent: Vec<String> = (0..50).map(|i| format!("r{i}")).collect();
    put_lines(http, base, "to-http", &sent).await;
    for _ in 0..200 {
        if endpoint.seen.lock().unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = endpoint.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "two failures, then the batch was taken");
    let ids: Vec<&str> =
        seen.iter().map(|(h, _)| h["x-amz-firehose-request-id"].to_str().unwrap()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "one request id across retries: {ids:?}");
    let (h, body) = &seen[2];
    assert_eq!(h["x-amz-firehose-protocol-version"], "1.0");
    assert_eq!(h["x-amz-firehose-access-key"], "k-123");
    assert_eq!(h["content-encoding"], "gzip");
    assert!(h["x-amz-firehose-source-arn"].to_str().unwrap().ends_with(":deliverystream/to-http"));
    assert_eq!(h["x-amz-firehose-common-attributes"], r#"{"commonAttributes":{"site":"north"}}"#);
    assert_eq!(body["requestId"], ids[0]);
    let got: Vec<String> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| String::from_utf8(b64.decode(r["data"].as_str().unwrap()).unwrap()).unwrap())
        .collect();
    assert_eq!(got, sent);

    // Into Sluice's own receiver: a delivery stream whose endpoint is a data stream here.
    let kds = kinesis_client(base);
    kds.create_stream().stream_name("sink").shard_count(2).send().await.unwrap();
    let own = format!("{base}/v1/firehose-endpoint/sink");
    let (status, out) = call(http, base, "CreateDeliveryStream", json!({
        "DeliveryStreamName": "loop", "HttpEndpointDestinationConfiguration": http_destination(&own, 60, false),
    })).await;
    assert_eq!(status, 200, "{out}");
    let looped: Vec<String> = (0..120).map(|i| format!("loop-{i:03}")).collect();
    put_lines(http, base, "loop", &looped).await;
    let mut records = Vec::new();
    for _ in 0..100 {
        records = stream_records(&kds, "sink").await;
        if records.len() >= looped.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut got: Vec<String> =
        records.iter().map(|r| String::from_utf8(r.clone()).unwrap()).collect();
    got.sort();
    assert_eq!(got, looped, "every record once, through Sluice's receiver");
    // The receiver's rules: version, request id, no double write of a retried request.
    let post = |id: &str, version: &str| {
        http.post(&own)
            .header("x-amz-firehose-protocol-version", version.to_owned())
            .header("x-amz-firehose-request-id", id.to_owned())
            .body(json!({ "requestId": id, "timestamp": 0, "records": [{ "data": b64.encode("again") }] }).to_string())
            .send()
    };
    assert_eq!(post("req-1", "2.0").await.unwrap().status(), 400);
    let first = post("req-1", "1.0").await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.json::<Value>().await.unwrap()["requestId"], "req-1");
    assert_eq!(post("req-1", "1.0").await.unwrap().status(), 200);
    let again =
        stream_records(&kds, "sink").await.iter().filter(|r| r.as_slice() == b"again").count();
    assert_eq!(again, 1, "a retried request is not written twice");
    let missing = http
        .post(format!("{base}/v1/firehose-endpoint/nope"))
        .header("x-amz-firehose-protocol-version", "1.0")
        .header("x-amz-firehose-request-id", "x")
        .body(json!({ "requestId": "x", "records": [] }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // An endpoint that never takes it: after the retry window, the batch is in the backup bucket.
    let down = Arc::new(Endpoint { fail_first: usize::MAX, ..Endpoint::default() });
    let url = serve_endpoint(down.clone()).await;
    let (status, out) = call(http, base, "CreateDeliveryStream", json!({
        "DeliveryStreamName": "to-down", "HttpEndpointDestinationConfiguration": http_destination(&url, 1, false),
    })).await;
    assert_eq!(status, 200, "{out}");
    put_lines(http, base, "to-down", &["lost?".to_owned(), "no".to_owned()]).await;
    let mut backed = Vec::new();
    for _ in 0..100 {
        backed = lines(&server.dir, "backup");
        if backed.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(backed.len(), 2, "{backed:?}");
    let line: Value = serde_json::from_str(&backed[0]).unwrap();
    assert_eq!(line["errorCode"], "HttpEndpoint.ResponseCodeNot200", "{line}");
    assert!(line["attemptsMade"].as_u64().unwrap() >= 1);
    let raw: Vec<String> = backed
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["rawData"].as_str().unwrap().to_owned())
        .map(|d| String::from_utf8(b64.decode(d).unwrap()).unwrap())
        .collect();
    assert_eq!(raw, vec!["lost?".to_owned(), "no".to_owned()]);
    let root = server.dir.join("buckets/backup/failed/http-endpoint-failed");
    assert!(root.is_dir(), "the error prefix names the error type");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_api_manages_delivery_streams_and_takes_lines() {
    let server = TestServer::start_with(|_| {}, Arc::new(sluice::clock::SystemClock)).await;
    let create = json!({
        "DeliveryStreamName": "lines",
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::000000000000:role/f", "BucketARN": "arn:aws:s3:::native",
            "BufferingHints": { "SizeInMBs": 1, "IntervalInSeconds": 1 },
            "ProcessingConfiguration": { "Enabled": true, "Processors": [{ "Type": "AppendDelimiterToRecord" }] },
        },
    });
    let r =
        server.http.post(server.url("/v1/delivery-streams")).json(&create).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let made: Value = r.json().await.unwrap();
    assert_eq!(made["description"]["DeliveryStreamName"], "lines", "{made}");
    let again =
        server.http.post(server.url("/v1/delivery-streams")).json(&create).send().await.unwrap();
    assert_eq!(again.status(), 409, "a second stream of the name");
    let list = server.get_json("/v1/delivery-streams").await;
    assert_eq!(list["deliveryStreams"][0]["DeliveryStreamName"], "lines", "{list}");
    let body = "{\"a\":1}\n{\"a\":2}\r\n\n{\"a\":3}\n";
    let r = server
        .http
        .post(server.url("/v1/delivery-streams/lines/records"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["records"], 3);
    let empty = server
        .http
        .post(server.url("/v1/delivery-streams/lines/records"))
        .body("\n")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 400);
    let mut got = Vec::new();
    for _ in 0..100 {
        got = lines(&server.dir, "native");
        if got.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got, vec!["{\"a\":1}", "{\"a\":2}", "{\"a\":3}"]);
    let d = server.get_json("/v1/delivery-streams/lines").await;
    assert_eq!(d["SluiceDelivery"]["DeliveredRecords"], 3, "{d}");
    let gone = server.http.delete(server.url("/v1/delivery-streams/lines")).send().await.unwrap();
    assert_eq!(gone.status(), 204);
    let missing = server.http.get(server.url("/v1/delivery-streams/lines")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    server.stop().await;
}
