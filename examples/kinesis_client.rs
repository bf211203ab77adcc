//! The Kinesis benchmark client: one binary, the AWS SDK for Rust, run against Sluice, kinesalite
//! and kinesis-mock in turn by `scripts/bench-kinesis.sh` with the same workload.
//!
//! For each record size (100 B, 10 KB) and shard count (1, 4) it creates a stream, runs
//! `--writers` concurrent PutRecords loops for `--secs` seconds or `--max-records` records or
//! `--max-bytes` bytes (whichever comes first), then reads the stream back from TRIM_HORIZON on
//! every shard at once with GetRecords (Limit 10,000). It prints one tab-separated `RESULT` line
//! per measurement:
//!
//! ```text
//! RESULT <target> <op> <record bytes> <shards> <records> <bytes> <seconds> <failed records>
//!        <server CPU seconds> <client CPU seconds>
//! ```
//!
//! The CPU seconds (user + system, from `/proc/<pid>/stat`) are the server's, given
//! `--server-pid`, and this client's own, over the phase: on a machine whose cores the client and
//! the server share, they tell what each side costs per byte.
//!
//! and, with `--page-cache-dir`, a `BASELINE` line: reading that directory's files (already in
//! the page cache) with plain `read(2)`, as the ceiling for reads.
//!
//! Usage: `cargo run --release --example kinesis_client -- --endpoint http://127.0.0.1:4567
//! --target sluice [--secs 10] [--max-records 1000000] [--writers 8]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_kinesis as kinesis;
use kinesis::Client;
use kinesis::config::retry::RetryConfig;
use kinesis::config::timeout::TimeoutConfig;
use kinesis::config::{BehaviorVersion, Credentials, Region};
use kinesis::primitives::Blob;
use kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};
use rand::{Rng, SeedableRng};

struct Args {
    endpoint: String,
    target: String,
    secs: f64,
    max_records: u64,
    max_bytes: u64,
    writers: usize,
    sizes: Vec<usize>,
    shard_counts: Vec<i32>,
    page_cache_dir: Option<String>,
    server_pid: Option<u32>,
}

/// User + system CPU seconds of process `pid` (`self` for this one), from `/proc`.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) closed by the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // Linux reports clock ticks of USER_HZ, 100 per second on every platform Sluice builds for.
    Some(ticks / 100.0)
}

/// CPU seconds of the server and this client, to subtract around a phase.
fn cpu_now(a: &Args) -> (Option<f64>, Option<f64>) {
    (a.server_pid.and_then(|p| cpu_secs(&p.to_string())), cpu_secs("self"))
}

fn cpu_since(a: &Args, before: (Option<f64>, Option<f64>)) -> String {
    let after = cpu_now(a);
    let d = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => format!("{:.2}", y - x),
        _ => "-".to_owned(),
    };
    format!("{}\t{}", d(before.0, after.0), d(before.1, after.1))
}

fn parse_args() -> Args {
    let mut a = Args {
        endpoint: String::new(),
        target: "target".into(),
        secs: 10.0,
        max_records: 1_000_000,
        max_bytes: 1 << 30,
        writers: 8,
        sizes: vec![100, 10_000],
        shard_counts: vec![1, 4],
        page_cache_dir: None,
        server_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--endpoint" => a.endpoint = val(),
            "--target" => a.target = val(),
            "--secs" => a.secs = val().parse().expect("--secs"),
            "--max-records" => a.max_records = val().parse().expect("--max-records"),
            "--max-bytes" => a.max_bytes = val().parse().expect("--max-bytes"),
            "--writers" => a.writers = val().parse().expect("--writers"),
            "--sizes" => a.sizes = val().split(',').map(|s| s.parse().expect("size")).collect(),
            "--shards" => {
                a.shard_counts = val().split(',').map(|s| s.parse().expect("shards")).collect()
            }
            "--page-cache-dir" => a.page_cache_dir = Some(val()),
            "--server-pid" => a.server_pid = Some(val().parse().expect("--server-pid")),
            "--bench" => {} // passed by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!a.endpoint.is_empty(), "--endpoint is required");
    a
}

fn client(endpoint: &str) -> Client {
    let conf = kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".into()),
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".into()),
            None,
            None,
            "static",
        ))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder().operation_timeout(Duration::from_secs(120)).build(),
        )
        .build();
    Client::from_conf(conf)
}

async fn create_and_wait(k: &Client, name: &str, shards: i32) {
    k.create_stream().stream_name(name).shard_count(shards).send().await.expect("CreateStream");
    for _ in 0..600 {
        if let Ok(s) = k.describe_stream_summary().stream_name(name).send().await
            && s.stream_description_summary().map(|d| d.stream_status())
                == Some(&StreamStatus::Active)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never became ACTIVE");
}

/// Records per PutRecords call: 500 (the maximum) for small records, fewer for 10 KB ones so
/// that a request stays well under 5 MiB.
fn batch_for(size: usize) -> usize {
    (4 * 1024 * 1024 / (size + 64)).clamp(1, 500)
}

struct WriteResult {
    records: u64,
    bytes: u64,
    failed: u64,
    secs: f64,
}

async fn write(a: &Args, k: &Client, stream: &str, size: usize) -> WriteResult {
    let records = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let budget = Arc::new(AtomicU64::new(a.max_records.min(a.max_bytes / size as u64)));
    let deadline = Instant::now() + Duration::from_secs_f64(a.secs);
    let batch = batch_for(size);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..a.writers {
        let (k, stream, records, failed, budget) =
            (k.clone(), stream.to_owned(), records.clone(), failed.clone(), budget.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
            let entries: Vec<PutRecordsRequestEntry> = (0..batch)
                .map(|_| {
                    let key = format!("pk-{}", rng.random::<u64>());
                    let data: Vec<u8> = (0..size).map(|_| rng.random()).collect();
                    PutRecordsRequestEntry::builder()
                        .partition_key(key)
                        .data(Blob::new(data))
                        .build()
                        .unwrap()
                })
                .collect();
            while Instant::now() < deadline {
                // Take this batch's share of the record budget.
                let b = batch as u64;
                if budget
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(b))
                    .is_err()
                {
                    break;
                }
                let r = k
                    .put_records()
                    .stream_name(&stream)
                    .set_records(Some(entries.clone()))
                    .send()
                    .await;
                match r {
                    Ok(r) => {
                        let f = r.failed_record_count().unwrap_or(0) as u64;
                        failed.fetch_add(f, Ordering::Relaxed);
                        records.fetch_add(batch as u64 - f, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("PutRecords failed: {e:?}");
                        failed.fetch_add(batch as u64, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let secs = start.elapsed().as_secs_f64();
    let n = records.load(Ordering::Relaxed);
    WriteResult { records: n, bytes: n * size as u64, failed: failed.load(Ordering::Relaxed), secs }
}

struct ReadResult {
    records: u64,
    bytes: u64,
    secs: f64,
    throttled: u64,
}

async fn read(k: &Client, stream: &str) -> ReadResult {
    let shards = k.list_shards().stream_name(stream).send().await.expect("ListShards");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for s in shards.shards() {
        let (k, stream, shard) = (k.clone(), stream.to_owned(), s.shard_id().to_owned());
        tasks.push(tokio::spawn(async move {
            let mut it = k
                .get_shard_iterator()
                .stream_name(&stream)
                .shard_id(&shard)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("GetShardIterator")
                .shard_iterator()
                .unwrap()
                .to_owned();
            let (mut records, mut bytes, mut throttled) = (0u64, 0u64, 0u64);
            for _ in 0..1_000_000 {
                let page = match k.get_records().shard_iterator(&it).limit(10_000).send().await {
                    Ok(p) => p,
                    Err(e) => {
                        throttled += 1;
                        if throttled > 1000 {
                            panic!("GetRecords keeps failing: {e:?}");
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                records += page.records().len() as u64;
                bytes += page.records().iter().map(|r| r.data().as_ref().len() as u64).sum::<u64>();
                match page.next_shard_iterator() {
                    Some(n) if !page.records().is_empty() => it = n.to_owned(),
                    _ => break,
                }
            }
            (records, bytes, throttled)
        }));
    }
    let mut out = ReadResult { records: 0, bytes: 0, secs: 0.0, throttled: 0 };
    for t in tasks {
        let (r, b, th) = t.await.expect("reader");
        out.records += r;
        out.bytes += b;
        out.throttled += th;
    }
    out.secs = start.elapsed().as_secs_f64();
    out
}

/// Reads every file under `dir` twice and times the second pass: what the page cache gives.
fn page_cache_baseline(dir: &str) -> (u64, f64) {
    fn files(p: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                if path.is_dir() {
                    files(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
    }
    let mut list = Vec::new();
    files(std::path::Path::new(dir), &mut list);
    let mut buf = vec![0u8; 1 << 20];
    let mut pass = || {
        use std::io::Read;
        let mut total = 0u64;
        for f in &list {
            if let Ok(mut fh) = std::fs::File::open(f) {
                while let Ok(n) = fh.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
            }
        }
        total
    };
    pass();
    let t = Instant::now();
    let total = pass();
    (total, t.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = parse_args();
    let k = client(&a.endpoint);
    let run = std::process::id();
    for &size in &a.sizes {
        for &shards in &a.shard_counts {
            let stream = format!("bench-{run}-{size}-{shards}");
            create_and_wait(&k, &stream, shards).await;
            let cpu = cpu_now(&a);
            let w = write(&a, &k, &stream, size).await;
            println!(
                "RESULT\t{}\tput\t{size}\t{shards}\t{}\t{}\t{:.3}\t{}\t{}",
                a.target,
                w.records,
                w.bytes,
                w.secs,
                w.failed,
                cpu_since(&a, cpu)
            );
            let cpu = cpu_now(&a);
            let r = read(&k, &stream).await;
            assert!(
                r.records >= w.records,
                "{}: read {} of {} records",
                a.target,
                r.records,
                w.records
            );
            println!(
                "RESULT\t{}\tget\t{size}\t{shards}\t{}\t{}\t{:.3}\t{}\t{}",
                a.target,
                r.records,
                r.bytes,
                r.secs,
                r.throttled,
                cpu_since(&a, cpu)
            );
        }
    }
    if let Some(dir) = &a.page_cache_dir {
        let (bytes, secs) = page_cache_baseline(dir);
        println!("BASELINE\tpage-cache\t{bytes}\t{secs:.3}");
    }
}
