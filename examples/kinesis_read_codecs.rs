//! GetRecords throughput by wire encoding, from the page cache: fills one shard of a running
//! Sluice with `--mib` MiB of `--size`-byte records (CBOR PutRecords), then reads the whole shard
//! back with GetRecords (Limit 10,000) over JSON and over CBOR, `--passes` times each,
//! alternating. With `--pid` (the server's) it also reports the server's CPU time per pass from
//! `/proc/<pid>/stat`, so the rate is per core of server work, not only per wall second. The
//! client decodes every answer fully (JSON base64 included), as a real consumer would.
//!
//! Prints one line per pass:
//!
//! ```text
//! RESULT <codec> <records> <payload bytes> <wall seconds> <server cpu seconds>
//! ```
//!
//! Usage: `kinesis_read_codecs --endpoint http://127.0.0.1:4567 [--pid N] [--mib 256]
//! [--size 10000] [--passes 3]` (run by `scripts/bench-kinesis-codecs.sh`).

use std::time::Instant;

use base64::Engine;
use ciborium::Value as C;

struct Args {
    endpoint: String,
    pid: Option<u32>,
    mib: usize,
    size: usize,
    passes: usize,
}

fn args() -> Args {
    let mut a = Args { endpoint: String::new(), pid: None, mib: 256, size: 10_000, passes: 3 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--endpoint" => a.endpoint = v,
            "--pid" => a.pid = Some(v.parse().expect("--pid")),
            "--mib" => a.mib = v.parse().expect("--mib"),
            "--size" => a.size = v.parse().expect("--size"),
            "--passes" => a.passes = v.parse().expect("--passes"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!a.endpoint.is_empty(), "--endpoint is required");
    a
}

/// The server's user + system CPU time, in seconds (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_secs(pid: Option<u32>) -> f64 {
    let Some(pid) = pid else { return 0.0 };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("server stat");
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn text(s: &str) -> C {
    C::Text(s.to_owned())
}

fn get<'a>(v: &'a C, name: &str) -> &'a C {
    v.as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some(name)))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in the answer"))
}

struct Client {
    http: reqwest::Client,
    endpoint: String,
}

impl Client {
    async fn json(&self, op: &str, body: serde_json::Value) -> serde_json::Value {
        let r = self
            .http
            .post(&self.endpoint)
            .header("x-amz-target", format!("Kinesis_20131202.{op}"))
            .header("content-type", "application/x-amz-json-1.1")
            .body(body.to_string())
            .send()
            .await
            .expect("request");
        assert!(r.status().is_success(), "{op}: {}", r.status());
        serde_json::from_slice(&r.bytes().await.expect("body")).expect("json")
    }

    async fn cbor(&self, op: &str, body: &C) -> C {
        let mut buf = Vec::new();
        ciborium::into_writer(body, &mut buf).expect("encode");
        let r = self
            .http
            .post(&self.endpoint)
            .header("x-amz-target", format!("Kinesis_20131202.{op}"))
            .header("content-type", "application/x-amz-cbor-1.1")
            .body(buf)
            .send()
            .await
            .expect("request");
        assert!(r.status().is_success(), "{op}: {}", r.status());
        ciborium::from_reader(&r.bytes().await.expect("body")[..]).expect("cbor")
    }

    async fn iterator(&self) -> String {
        let v = self
            .json(
                "GetShardIterator",
                serde_json::json!({"StreamName": "codecs", "ShardId": "shardId-000000000000",
                                   "ShardIteratorType": "TRIM_HORIZON"}),
            )
            .await;
        v["ShardIterator"].as_str().expect("iterator").to_owned()
    }

    /// Reads the shard to its end over `codec`: (records, payload bytes).
    async fn read_all(&self, codec: &str) -> (u64, u64) {
        let (mut records, mut bytes) = (0u64, 0u64);
        let mut it = self.iterator().await;
        loop {
            let (n, b, next) = if codec == "cbor" {
                let page = self
                    .cbor(
                        "GetRecords",
                        &C::Map(vec![
                            (text("ShardIterator"), text(&it)),
                            (text("Limit"), C::Integer(10_000.into())),
                        ]),
                    )
                    .await;
                let recs = get(&page, "Records").as_array().expect("records");
                let b: usize = recs
                    .iter()
                    .map(|r| match get(r, "Data") {
                        C::Bytes(d) => d.len(),
                        _ => panic!("Data is not a byte string"),
                    })
                    .sum();
                (recs.len(), b, get(&page, "NextShardIterator").as_text().map(str::to_owned))
            } else {
                let page = self
                    .json("GetRecords", serde_json::json!({"ShardIterator": it, "Limit": 10_000}))
                    .await;
                let recs = page["Records"].as_array().expect("records");
                let b: usize = recs
                    .iter()
                    .map(|r| {
                        let d = r["Data"].as_str().expect("Data");
                        base64::engine::general_purpose::STANDARD.decode(d).expect("base64").len()
                    })
                    .sum();
                (recs.len(), b, page["NextShardIterator"].as_str().map(str::to_owned))
            };
            if n == 0 {
                return (records, bytes);
            }
            records += n as u64;
            bytes += b as u64;
            it = next.expect("an open shard has a next iterator");
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    let c = Client { http: reqwest::Client::new(), endpoint: a.endpoint.clone() };
    c.json("CreateStream", serde_json::json!({"StreamName": "codecs", "ShardCount": 1})).await;
    let record = C::Bytes((0..a.size).map(|i| (i % 251) as u8).collect());
    let per_request = (8 * 1024 * 1024 / a.size).clamp(1, 500);
    let total = a.mib * 1024 * 1024 / a.size;
    let mut written = 0;
    while written < total {
        let n = per_request.min(total - written);
        let entries = (0..n)
            .map(|i| {
                C::Map(vec![
                    (text("PartitionKey"), text(&format!("k{}", written + i))),
                    (text("Data"), record.clone()),
                ])
            })
            .collect();
        let req = C::Map(vec![
            (text("StreamName"), text("codecs")),
            (text("Records"), C::Array(entries)),
        ]);
        let out = c.cbor("PutRecords", &req).await;
        assert_eq!(get(&out, "FailedRecordCount"), &C::Integer(0.into()));
        written += n;
    }
    // A first read brings every segment into the page cache.
    c.read_all("cbor").await;
    for _ in 0..a.passes {
        for codec in ["json", "cbor"] {
            let (cpu0, t0) = (cpu_secs(a.pid), Instant::now());
            let (records, bytes) = c.read_all(codec).await;
            let wall = t0.elapsed().as_secs_f64();
            let cpu = cpu_secs(a.pid) - cpu0;
            assert_eq!(records as usize, total, "every record read back");
            println!("RESULT\t{codec}\t{records}\t{bytes}\t{wall:.3}\t{cpu:.3}");
        }
    }
}
