//! Firehose end to end: PutRecordBatch of `--size`-byte records (500 per call, `--tasks` calls in
//! flight) into a delivery stream of a running Sluice whose destination is a directory bucket
//! (GZIP, `--buffer-mib` MiB buffers), until `--mib` MiB are put; then waits until the stream
//! reports every record delivered (`SluiceDelivery.DeliveredRecords`). The time runs from the
//! first put to the last delivery, so it covers ingest, the internal log, compression and the
//! object writes. With `--pid` it reports the server's CPU seconds too.
//!
//! Prints `RESULT <records> <payload bytes> <wall seconds> <server cpu seconds> <object bytes>`.
//!
//! Usage: `firehose_put --endpoint http://127.0.0.1:4567 --dir <bucket dir> [--pid N] [--mib 1024]
//! [--size 1000] [--tasks 4] [--buffer-mib 5]` (run by `scripts/bench-firehose.sh`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

struct Args {
    endpoint: String,
    dir: String,
    pid: Option<u32>,
    mib: usize,
    size: usize,
    tasks: usize,
    buffer_mib: u32,
    /// Write `--mib` MiB of the records' bytes to this file and exit (gzip's input).
    sample: Option<String>,
    /// Put for this many seconds instead of `--mib`, and do not wait for delivery (the
    /// destination-down run: the backlog must stay on disk, not in the server's memory).
    seconds: Option<u64>,
}

fn args() -> Args {
    let mut a = Args {
        endpoint: String::new(),
        dir: String::new(),
        pid: None,
        mib: 1024,
        size: 1000,
        tasks: 4,
        buffer_mib: 5,
        sample: None,
        seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--endpoint" => a.endpoint = v,
            "--dir" => a.dir = v,
            "--pid" => a.pid = Some(v.parse().expect("--pid")),
            "--mib" => a.mib = v.parse().expect("--mib"),
            "--size" => a.size = v.parse().expect("--size"),
            "--tasks" => a.tasks = v.parse().expect("--tasks"),
            "--buffer-mib" => a.buffer_mib = v.parse().expect("--buffer-mib"),
            "--sample" => a.sample = Some(v),
            "--seconds" => a.seconds = Some(v.parse().expect("--seconds")),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!a.endpoint.is_empty(), "--endpoint is required");
    a
}

/// The server's user+system CPU seconds so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

async fn call(http: &reqwest::Client, endpoint: &str, op: &str, body: String) -> Value {
    let resp = http
        .post(format!("{endpoint}/"))
        .header("x-amz-target", format!("Firehose_20150804.{op}"))
        .header("content-type", "application/x-amz-json-1.1")
        .body(body)
        .send()
        .await
        .expect("firehose call");
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{op}: {status} {v}");
    v
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            total += if p.is_dir() { dir_bytes(&p) } else { e.metadata().map_or(0, |m| m.len()) };
        }
    }
    total
}

/// Record `i` of a batch: a JSON line of `size` bytes, varied so gzip has real work.
fn line(i: usize, size: usize) -> String {
    let mut line = format!(
        "{{\"camera\":\"cam-{:03}\",\"seq\":{i},\"label\":\"person\",\"score\":0.{:04},\"pad\":\"",
        i % 37,
        (i * 7919) % 10_000
    );
    while line.len() + 3 < size {
        line.push(char::from(b'a' + ((line.len() * 31 + i) % 26) as u8));
    }
    line.push_str("\"}\n");
    line.truncate(size);
    line
}

#[tokio::main]
async fn main() {
    let a = args();
    if let Some(path) = &a.sample {
        let lines: Vec<String> = (0..500).map(|i| line(i, a.size)).collect();
        let mut out = Vec::with_capacity(a.mib << 20);
        while out.len() < a.mib << 20 {
            for l in &lines {
                out.extend_from_slice(l.as_bytes());
            }
        }
        std::fs::write(path, &out).expect("write the sample");
        return;
    }
    let http = reqwest::Client::new();
    let create = json!({
        "DeliveryStreamName": "bench",
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::000000000000:role/bench", "BucketARN": "arn:aws:s3:::bench",
            "BufferingHints": { "SizeInMBs": a.buffer_mib, "IntervalInSeconds": 1 },
            "CompressionFormat": "GZIP",
        },
    });
    call(&http, &a.endpoint, "CreateDeliveryStream", create.to_string()).await;
    // One JSON-lines-like record, varied so gzip has real work (not one repeated byte).
    let b64 = base64::engine::general_purpose::STANDARD;
    let records: Vec<Value> =
        (0..500).map(|i| json!({ "Data": b64.encode(line(i, a.size)) })).collect();
    let body = Arc::new(json!({ "DeliveryStreamName": "bench", "Records": records }).to_string());
    let batches = match a.seconds {
        Some(_) => usize::MAX,
        None => (a.mib << 20) / (a.size * 500),
    };
    let until = a.seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let total_records = batches.saturating_mul(500) as u64;
    let cpu0 = a.pid.map(cpu_seconds);
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..a.tasks {
        let (http, endpoint, body, next) =
            (http.clone(), a.endpoint.clone(), body.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < batches
                && until.is_none_or(|u| Instant::now() < u)
            {
                let v = call(&http, &endpoint, "PutRecordBatch", body.to_string()).await;
                assert_eq!(v["FailedPutCount"], 0, "{v}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("put task");
    }
    let put = start.elapsed();
    if a.seconds.is_some() {
        let n = next.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(a.tasks) * 500;
        let cpu = match (a.pid, cpu0) {
            (Some(pid), Some(c0)) => cpu_seconds(pid) - c0,
            _ => 0.0,
        };
        println!("PUT\t{n}\t{}\t{:.3}\t{cpu:.2}", n * a.size, put.as_secs_f64());
        return;
    }
    loop {
        let d = call(
            &http,
            &a.endpoint,
            "DescribeDeliveryStream",
            json!({ "DeliveryStreamName": "bench" }).to_string(),
        )
        .await;
        let delivered = d["DeliveryStreamDescription"]["SluiceDelivery"]["DeliveredRecords"]
            .as_u64()
            .unwrap_or(0);
        // The last, partial buffer goes after its 1 s interval.
        if delivered >= total_records {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = match (a.pid, cpu0) {
        (Some(pid), Some(c0)) => cpu_seconds(pid) - c0,
        _ => 0.0,
    };
    let objects = dir_bytes(std::path::Path::new(&a.dir));
    eprintln!("put {:.2} s, delivered {:.2} s", put.as_secs_f64(), wall);
    println!(
        "RESULT\t{total_records}\t{}\t{wall:.3}\t{cpu:.2}\t{objects}",
        total_records as usize * a.size
    );
}
