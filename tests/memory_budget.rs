//! `[server] memory_limit_bytes`: one setting caps what the large buffers hold together. A
//! producer's fragment being received, Kinesis request bodies and GetRecords answers reserve from
//! it; past it, Kinesis answers 503 `ServiceUnavailable` with `Retry-After` (or a shorter
//! GetRecords), nothing acknowledged is lost, and everything works again once the bytes are
//! given back.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{TestServer, connect_producer, fixture, split_fixture};
use serde_json::{Value, json};
use sluice::clock::SystemClock;

const MIB: usize = 1024 * 1024;

async fn kinesis(server: &TestServer, op: &str, body: &Value) -> (u16, Option<String>, Value) {
    let resp = server
        .http
        .post(server.url("/"))
        .header("x-amz-target", format!("Kinesis_20131202.{op}"))
        .header("content-type", "application/x-amz-json-1.1")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

/// The value of an unlabelled or `kind`-labelled metric line.
async fn metric(server: &TestServer, line_start: &str) -> f64 {
    let (_, text) = server.get_text("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in /metrics:\n{text}"))
}

fn records(n: usize, size: usize) -> Value {
    let data = STANDARD.encode(vec![7u8; size - 8]);
    let recs: Vec<Value> =
        (0..n).map(|i| json!({"Data": data, "PartitionKey": format!("k{i}")})).collect();
    json!({"StreamName": "mem", "Records": recs})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_limit_refuses_past_it_and_loses_nothing() {
    let server = TestServer::start_with(
        |c| {
            c.server.memory_limit_bytes = 32 * MIB;
            c.hls.segment_cache_bytes = 16 * MIB;
            c.ingest.max_fragment_bytes = 16 * MIB as u64;
            c.data_streams.throughput_limits = false;
        },
        Arc::new(SystemClock),
    )
    .await;
    assert_eq!(metric(&server, "sluice_memory_limit_bytes ").await, (32 * MIB) as f64);
    let cache = "sluice_memory_reserved_bytes{kind=\"segment_cache\"} ";
    assert_eq!(metric(&server, cache).await, (16 * MIB) as f64);

    // Three 1 MiB records (an 8 MiB reservation for the request) fit in the 16 MiB left.
    let (s, _, _) =
        kinesis(&server, "CreateStream", &json!({"StreamName": "mem", "ShardCount": 1})).await;
    assert_eq!(s, 200);
    let (s, _, out) = kinesis(&server, "PutRecords", &records(3, MIB)).await;
    assert_eq!((s, &out["FailedRecordCount"]), (200, &json!(0)), "{out}");

    // A producer holds 12 MiB: a fragment that has not finished arriving.
    server.create_stream("cam").await;
    let (init, frags) = split_fixture(&fixture("h264.mp4"));
    let mut producer = connect_producer(&server.http, server.url("/v1/streams/cam/media")).await;
    producer.send(init).await;
    producer.send(frags[0].clone()).await;
    producer.next("PERSISTED").await;
    let moof_len = u32::from_be_bytes(frags[1][..4].try_into().unwrap()) as usize;
    let mut big = frags[1][..moof_len].to_vec();
    big.extend_from_slice(&((14 * MIB) as u32).to_be_bytes());
    big.extend_from_slice(b"mdat");
    producer.send(big).await;
    for _ in 0..12 {
        producer.send(vec![0; MIB]).await;
    }
    let ingest = "sluice_memory_reserved_bytes{kind=\"ingest\"} ";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while metric(&server, ingest).await < (12 * MIB) as f64 {
        assert!(tokio::time::Instant::now() < deadline, "the fragment's bytes were not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Five 1 MiB records need 14 MiB; 4 are left: 503 ServiceUnavailable, retry later.
    let (s, retry, out) = kinesis(&server, "PutRecords", &records(5, MIB)).await;
    assert_eq!((s, retry.as_deref()), (503, Some("1")), "{out}");
    assert_eq!(out["__type"], "ServiceUnavailable");
    assert!(out["message"].as_str().unwrap().contains("memory budget"), "{out}");
    assert_eq!(metric(&server, "sluice_memory_refused_total{kind=\"kinesis\"} ").await, 1.0);

    // GetRecords answers shorter (one record), and the next iterator goes on from there.
    let (_, _, shards) = kinesis(&server, "ListShards", &json!({"StreamName": "mem"})).await;
    let shard = shards["Shards"][0]["ShardId"].clone();
    let (_, _, it) = kinesis(
        &server,
        "GetShardIterator",
        &json!({"StreamName": "mem", "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
    )
    .await;
    let get = json!({"ShardIterator": it["ShardIterator"]});
    let (s, _, first) = kinesis(&server, "GetRecords", &get).await;
    assert_eq!(s, 200);
    assert_eq!(first["Records"].as_array().unwrap().len(), 1, "a shorter answer under pressure");
    assert_eq!(server.get_text("/healthz").await.0, 200, "the server keeps serving");

    // The producer goes away mid-fragment: its bytes are given back, the fragment it had
    // acknowledged is intact, and everything fits again.
    let rest = producer.finish().await;
    assert!(rest.iter().all(|a| a["EventType"] != "PERSISTED"), "{rest:?}");
    assert_eq!(metric(&server, ingest).await, 0.0);
    assert_eq!(server.fragments("cam").await.len(), 1);
    let (s, _, out) = kinesis(&server, "PutRecords", &records(5, MIB)).await;
    assert_eq!((s, &out["FailedRecordCount"]), (200, &json!(0)), "{out}");
    let get = json!({"ShardIterator": first["NextShardIterator"]});
    let (_, _, second) = kinesis(&server, "GetRecords", &get).await;
    // 16 MiB free: a GetRecords takes 3/7 of it for records (≈ 6.9 MiB): 6 of the 7 left.
    assert_eq!(second["Records"].as_array().unwrap().len(), 6);
    server.stop().await;
}
