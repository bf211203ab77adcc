//! Crash safety of the Kinesis data-stream API against the real `sluice` binary: PutRecords runs
//! in a loop while the server is SIGKILLed; after a restart on the same data directory every
//! record that was acknowledged (a SequenceNumber in a PutRecords response) reads back with the
//! same shard, sequence number, partition key and data, and new sequence numbers keep
//! increasing past the old ones.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis as kinesis;
use common::*;
use kinesis::Client;
use kinesis::error::ProvideErrorMetadata;
use kinesis::primitives::Blob;
use kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};
use rand::{Rng, SeedableRng};

async fn wait_active(k: &Client, name: &str) {
    for _ in 0..200 {
        let s = k.describe_stream_summary().stream_name(name).send().await.unwrap();
        if s.stream_description_summary().unwrap().stream_status() == &StreamStatus::Active {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("stream {name} never became ACTIVE");
}

#[derive(Debug, Clone, PartialEq)]
struct Acked {
    shard: String,
    key: String,
    data: Vec<u8>,
}

/// Reads a whole shard from TRIM_HORIZON, waiting out throttling (real clock here).
async fn read_shard(k: &Client, stream: &str, shard: &str) -> Vec<(String, Acked)> {
    let mut it = k
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .unwrap()
        .to_owned();
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let page = match k.get_records().shard_iterator(&it).send().await {
            Ok(p) => p,
            Err(e) if e.code() == Some("ProvisionedThroughputExceededException") => {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            Err(e) => panic!("GetRecords: {e:?}"),
        };
        for r in page.records() {
            out.push((
                r.sequence_number().to_owned(),
                Acked {
                    shard: shard.to_owned(),
                    key: r.partition_key().unwrap_or_default().to_owned(),
                    data: r.data().as_ref().to_vec(),
                },
            ));
        }
        match page.next_shard_iterator() {
            Some(next) if !page.records().is_empty() => it = next.to_owned(),
            _ => return out,
        }
    }
    panic!("reading {shard} never ended");
}

fn seq_key(s: &str) -> (usize, String) {
    (s.len(), s.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_put_records_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = spawn_server(tmp.path());
    let k = kinesis_client(&server.base);
    k.create_stream().stream_name("crash").shard_count(4).send().await.unwrap();
    wait_active(&k, "crash").await;

    let acked: Arc<Mutex<HashMap<String, Acked>>> = Arc::default();
    let writer = {
        let k = k.clone();
        let acked = acked.clone();
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::from_os_rng();
            // Bounded in count; ends when the server dies.
            for batch in 0..20_000u32 {
                let mut entries = Vec::new();
                let mut sent = Vec::new();
                for j in 0..100u32 {
                    let key = format!("key-{}", rng.random_range(0..50u32));
                    let len = rng.random_range(1..2000usize);
                    let mut data = format!("{batch}/{j}/").into_bytes();
                    data.extend((0..len).map(|_| rng.random::<u8>()));
                    entries.push(
                        PutRecordsRequestEntry::builder()
                            .partition_key(&key)
                            .data(Blob::new(data.clone()))
                            .build()
                            .unwrap(),
                    );
                    sent.push((key, data));
                }
                let r = match k
                    .put_records()
                    .stream_name("crash")
                    .set_records(Some(entries))
                    .send()
                    .await
                {
                    Ok(r) => r,
                    Err(_) => return batch, // the server is gone
                };
                let mut throttled = false;
                {
                    let mut a = acked.lock().unwrap();
                    for ((key, data), res) in sent.into_iter().zip(r.records()) {
                        match (res.sequence_number(), res.shard_id()) {
                            (Some(seq), Some(shard)) => {
                                let prev = a.insert(
                                    seq.to_owned(),
                                    Acked { shard: shard.to_owned(), key, data },
                                );
                                assert!(prev.is_none(), "sequence number {seq} acknowledged twice");
                            }
                            _ => {
                                assert_eq!(
                                    res.error_code(),
                                    Some("ProvisionedThroughputExceededException"),
                                    "{res:?}"
                                );
                                throttled = true;
                            }
                        }
                    }
                }
                if throttled {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            20_000
        })
    };

    // Let a few thousand records be acknowledged, then pull the plug mid-request.
    let mut waited = 0;
    while acked.lock().unwrap().len() < 5_000 {
        assert!(waited < 1200, "fewer than 5,000 records acknowledged within 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
    let batches = tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .expect("the writer notices the dead server")
        .expect("writer task");
    assert!(batches < 20_000, "the writer outran the kill");
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 5_000);

    // Restart on the same directory.
    let mut server = spawn_server(tmp.path());
    let k = kinesis_client(&server.base);
    wait_active(&k, "crash").await;
    let shards = k.list_shards().stream_name("crash").send().await.unwrap();
    assert_eq!(shards.shards().len(), 4);
    let mut found: HashMap<String, Acked> = HashMap::new();
    let mut last_seq: HashMap<String, String> = HashMap::new();
    for s in shards.shards() {
        let recs = read_shard(&k, "crash", s.shard_id()).await;
        let mut prev: Option<(usize, String)> = None;
        for (seq, rec) in recs {
            let key = seq_key(&seq);
            assert!(
                prev.as_ref().is_none_or(|p| key > *p),
                "{}: sequence numbers increase",
                s.shard_id()
            );
            prev = Some(key);
            last_seq.insert(s.shard_id().to_owned(), seq.clone());
            assert!(found.insert(seq.clone(), rec).is_none(), "duplicate sequence number {seq}");
        }
    }
    let mut missing = 0;
    for (seq, want) in &acked {
        match found.get(seq) {
            Some(got) => assert_eq!(got, want, "record {seq} changed across the crash"),
            None => missing += 1,
        }
    }
    eprintln!(
        "{} records acknowledged in {batches} PutRecords calls; {} read back after the restart",
        acked.len(),
        found.len()
    );
    assert_eq!(missing, 0, "{missing} of {} acknowledged records lost", acked.len());
    // At most the one in-flight batch was persisted without an acknowledgement.
    assert!(
        found.len() - acked.len() <= 100,
        "{} unacknowledged records",
        found.len() - acked.len()
    );

    // New writes get sequence numbers after everything from before the crash.
    for s in shards.shards() {
        let lo = s.hash_key_range().unwrap().starting_hash_key();
        let r = k
            .put_record()
            .stream_name("crash")
            .partition_key("after")
            .explicit_hash_key(lo)
            .data(Blob::new("after"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.shard_id(), s.shard_id());
        if let Some(last) = last_seq.get(s.shard_id()) {
            assert!(
                seq_key(r.sequence_number()) > seq_key(last),
                "{}: sequence number went backwards after the crash",
                s.shard_id()
            );
            assert!(!found.contains_key(r.sequence_number()));
        }
    }
    server.child.kill().ok();
    let _ = server.child.wait();
}
