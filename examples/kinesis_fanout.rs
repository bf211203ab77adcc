//! Enhanced fan-out load: `--consumers` registered consumers each subscribe (SubscribeToShard,
//! the AWS SDK for Rust's event-stream client) to every one of `--shards` shards while one writer
//! puts `--size`-byte records at `--rate` MB/s per shard for `--secs` seconds. Every record
//! carries its put time; each consumer measures put → event delivered (wall clock, same host).
//!
//! Prints `RESULT <delivered bytes> <seconds> <slowest consumer-shard MB/s> <p50 ms> <p99 ms>
//! <max ms> <server cpu s>` (run by `scripts/bench-kinesis-fanout.sh`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_kinesis as kinesis;
use kinesis::config::{BehaviorVersion, Credentials, Region};
use kinesis::primitives::Blob;
use kinesis::types::{
    PutRecordsRequestEntry, ShardIteratorType, StartingPosition, SubscribeToShardEventStream,
};

struct Args {
    endpoint: String,
    pid: Option<u32>,
    consumers: usize,
    shards: usize,
    secs: f64,
    size: usize,
    rate: f64,
}

fn args() -> Args {
    let mut a = Args {
        endpoint: String::new(),
        pid: None,
        consumers: 20,
        shards: 4,
        secs: 20.0,
        size: 10_000,
        rate: 2.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--endpoint" => a.endpoint = v,
            "--pid" => a.pid = Some(v.parse().expect("--pid")),
            "--consumers" => a.consumers = v.parse().expect("--consumers"),
            "--shards" => a.shards = v.parse().expect("--shards"),
            "--secs" => a.secs = v.parse().expect("--secs"),
            "--size" => a.size = v.parse().expect("--size"),
            "--rate" => a.rate = v.parse().expect("--rate"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

fn cpu_secs(pid: Option<u32>) -> f64 {
    let Some(pid) = pid else { return 0.0 };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("server stat");
    let f: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

#[tokio::main]
async fn main() {
    let a = args();
    let conf = kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("bench", "bench", None, None, "static"))
        .endpoint_url(&a.endpoint)
        .build();
    let kds = kinesis::Client::from_conf(conf);
    kds.create_stream().stream_name("fanout").shard_count(a.shards as i32).send().await.unwrap();
    let summary = kds.describe_stream_summary().stream_name("fanout").send().await.unwrap();
    let arn = summary.stream_description_summary().unwrap().stream_arn().to_owned();
    let shards = kds.list_shards().stream_name("fanout").send().await.unwrap();
    let shards: Vec<(String, String)> = shards
        .shards()
        .iter()
        .map(|s| {
            let r = s.hash_key_range().unwrap();
            (s.shard_id().to_owned(), r.starting_hash_key().to_owned())
        })
        .collect();

    // Consumers, subscribed before any record is written (LATEST).
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let per_sub: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; a.consumers * a.shards]));
    let stop_at = Instant::now() + Duration::from_secs_f64(a.secs + 5.0);
    let mut tasks = Vec::new();
    for c in 0..a.consumers {
        let reg = kds.register_stream_consumer().stream_arn(&arn).consumer_name(format!("c{c}"));
        let consumer = reg.send().await.unwrap().consumer().unwrap().consumer_arn().to_owned();
        for (s, (shard, _)) in shards.iter().enumerate() {
            let start =
                StartingPosition::builder().r#type(ShardIteratorType::Latest).build().unwrap();
            let mut out = kds
                .subscribe_to_shard()
                .consumer_arn(&consumer)
                .shard_id(shard)
                .starting_position(start)
                .send()
                .await
                .unwrap();
            let (latencies, per_sub) = (latencies.clone(), per_sub.clone());
            let slot = c * a.shards + s;
            tasks.push(tokio::spawn(async move {
                let mut local = Vec::new();
                let mut bytes = 0u64;
                while Instant::now() < stop_at {
                    let ev = tokio::time::timeout(Duration::from_secs(10), out.event_stream.recv())
                        .await;
                    match ev {
                        Ok(Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)))) => {
                            let now = now_us();
                            for r in e.records() {
                                let d = r.data().as_ref();
                                bytes += d.len() as u64;
                                let sent = u64::from_le_bytes(d[..8].try_into().unwrap());
                                local.push(now.saturating_sub(sent));
                            }
                        }
                        Ok(Ok(Some(_))) => {}
                        Ok(Ok(None)) | Err(_) => break,
                        Ok(Err(e)) => panic!("subscription failed: {e:?}"),
                    }
                }
                latencies.lock().unwrap().extend(local);
                per_sub.lock().unwrap()[slot] = bytes;
            }));
        }
    }

    // The writer: every 50 ms, each shard's share of the rate, in one PutRecords per shard.
    let cpu0 = cpu_secs(a.pid);
    let t0 = Instant::now();
    let tick = Duration::from_millis(50);
    let per_tick = ((a.rate * 1e6 * tick.as_secs_f64()) / a.size as f64).max(1.0) as usize;
    let mut next = Instant::now();
    while t0.elapsed().as_secs_f64() < a.secs {
        let mut puts = Vec::new();
        for (_, hash) in &shards {
            let entries: Vec<PutRecordsRequestEntry> = (0..per_tick)
                .map(|_| {
                    let mut data = vec![0u8; a.size];
                    data[..8].copy_from_slice(&now_us().to_le_bytes());
                    PutRecordsRequestEntry::builder()
                        .partition_key("k")
                        .explicit_hash_key(hash)
                        .data(Blob::new(data))
                        .build()
                        .unwrap()
                })
                .collect();
            puts.push(kds.put_records().stream_name("fanout").set_records(Some(entries)).send());
        }
        for p in futures_util::future::join_all(puts).await {
            assert_eq!(p.unwrap().failed_record_count(), Some(0));
        }
        next += tick;
        tokio::time::sleep_until(next.into()).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    for t in tasks {
        let _ = t.await;
    }
    let cpu = cpu_secs(a.pid) - cpu0;
    let mut l = latencies.lock().unwrap().clone();
    l.sort_unstable();
    let q = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or(0)
            as f64
            / 1000.0
    };
    let per_sub = per_sub.lock().unwrap();
    let total: u64 = per_sub.iter().sum();
    let slowest = per_sub.iter().min().copied().unwrap_or(0) as f64 / secs / 1e6;
    println!(
        "RESULT\t{total}\t{secs:.2}\t{slowest:.2}\t{:.1}\t{:.1}\t{:.1}\t{cpu:.2}",
        q(0.5),
        q(0.99),
        l.last().copied().unwrap_or(0) as f64 / 1000.0
    );
}
