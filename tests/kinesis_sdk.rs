//! The Kinesis Data Streams API, black-box, through the AWS SDK for Rust (`aws-sdk-kinesis`) —
//! a parser and serializer we did not write — plus raw JSON for the request shapes the SDK will
//! not build. Every test runs a real server on 127.0.0.1:0 with a `ManualClock`, so throughput
//! limits, iterator expiry, AT_TIMESTAMP and retention are deterministic: the tests advance the
//! clock by a second before every paced call and never assert on durations.
//!
//! Expectations follow AWS Kinesis (botocore model `kinesis/2013-12-02` and the service docs).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis as kinesis;
use common::*;
use kinesis::Client;
use kinesis::error::ProvideErrorMetadata;
use kinesis::primitives::{Blob, DateTime};
use kinesis::types::{
    ConsumerStatus, PutRecordsRequestEntry, Record, ScalingType, Shard, ShardFilter,
    ShardFilterType, ShardIteratorType, StreamMode, StreamModeDetails, StreamStatus,
};
use md5::{Digest, Md5};
use rand::Rng;
use serde_json::{Value, json};
use sluice::clock::{ManualClock, Timestamp};

const MAX_HASH: u128 = u128::MAX;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A server with a manual clock and an SDK client pointed at it (no retries: every exception
/// surfaces to the test).
struct Env {
    server: TestServer,
    clock: Arc<ManualClock>,
    kds: Client,
}

fn t0() -> Timestamp {
    Timestamp::parse_api("2026-03-01T00:00:00Z").unwrap()
}

impl Env {
    async fn start() -> Env {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut sluice::config::Config)) -> Env {
        let clock = Arc::new(ManualClock::new(t0()));
        let server = TestServer::start_with(tweak, clock.clone()).await;
        let kds = kinesis_client(&server.base);
        Env { server, clock, kds }
    }

    /// One second passes: keeps paced calls under the per-shard limits of provisioned mode
    /// (1,000 records/s and 5 GetRecords/s).
    fn tick(&self) {
        self.clock.advance(Duration::from_secs(1));
    }

    fn now(&self) -> DateTime {
        DateTime::from_millis(sluice::clock::Clock::now(&*self.clock).as_millis())
    }

    async fn create(&self, name: &str, shards: i32) {
        self.kds.create_stream().stream_name(name).shard_count(shards).send().await.unwrap();
        self.wait_active(name).await;
    }

    /// Stream status may go CREATING/UPDATING → ACTIVE at once, but must get there.
    async fn wait_active(&self, name: &str) {
        for _ in 0..200 {
            let s = self.kds.describe_stream_summary().stream_name(name).send().await.unwrap();
            let d = s.stream_description_summary().unwrap();
            match d.stream_status() {
                StreamStatus::Active => return,
                StreamStatus::Creating | StreamStatus::Updating => {}
                other => panic!("stream {name} is {other:?} while waiting for ACTIVE"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("stream {name} never became ACTIVE");
    }

    async fn arn(&self, name: &str) -> String {
        let s = self.kds.describe_stream_summary().stream_name(name).send().await.unwrap();
        s.stream_description_summary().unwrap().stream_arn().to_owned()
    }

    /// Every shard (ListShards, all pages).
    async fn shards(&self, name: &str) -> Vec<Shard> {
        self.shards_filtered(name, None).await
    }

    async fn shards_filtered(&self, name: &str, filter: Option<ShardFilter>) -> Vec<Shard> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..1000 {
            let req = match &token {
                Some(t) => self.kds.list_shards().next_token(t),
                None => self.kds.list_shards().stream_name(name).set_shard_filter(filter.clone()),
            };
            let r = req.send().await.unwrap();
            out.extend(r.shards().iter().cloned());
            match r.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return out,
            }
        }
        panic!("ListShards never ended");
    }

    async fn iterator(
        &self,
        name: &str,
        shard: &str,
        kind: ShardIteratorType,
        seq: Option<&str>,
        at: Option<DateTime>,
    ) -> String {
        let r = self
            .kds
            .get_shard_iterator()
            .stream_name(name)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .set_starting_sequence_number(seq.map(str::to_owned))
            .set_timestamp(at)
            .send()
            .await
            .unwrap();
        let it = r.shard_iterator().expect("ShardIterator").to_owned();
        assert!(!it.is_empty() && it.len() <= 512, "ShardIterator length 1–512: {}", it.len());
        it
    }

    /// Reads from `it` until caught up (an empty page) or until a closed shard ends
    /// (NextShardIterator null). Returns the records and the last page.
    async fn drain(
        &self,
        mut it: String,
    ) -> (Vec<Record>, kinesis::operation::get_records::GetRecordsOutput) {
        let mut out = Vec::new();
        for _ in 0..10_000 {
            self.tick();
            let page = self.kds.get_records().shard_iterator(&it).send().await.unwrap();
            out.extend(page.records().iter().cloned());
            match page.next_shard_iterator() {
                None => return (out, page),
                Some(next) => {
                    if page.records().is_empty() {
                        return (out, page);
                    }
                    it = next.to_owned();
                }
            }
        }
        panic!("GetRecords never caught up");
    }
}

fn md5_hash(key: &str) -> u128 {
    let d = Md5::digest(key.as_bytes());
    u128::from_be_bytes(d.into())
}

fn range_of(s: &Shard) -> (u128, u128) {
    let r = s.hash_key_range().expect("HashKeyRange");
    (r.starting_hash_key().parse().unwrap(), r.ending_hash_key().parse().unwrap())
}

fn shard_for(shards: &[Shard], hash: u128) -> &str {
    let open: Vec<&Shard> = shards.iter().filter(|s| is_open(s)).collect();
    let hits: Vec<&&Shard> = open
        .iter()
        .filter(|s| {
            let (a, b) = range_of(s);
            a <= hash && hash <= b
        })
        .collect();
    assert_eq!(hits.len(), 1, "exactly one open shard owns hash {hash}");
    hits[0].shard_id()
}

fn is_open(s: &Shard) -> bool {
    s.sequence_number_range().expect("SequenceNumberRange").ending_sequence_number().is_none()
}

/// Sequence numbers are decimal strings (model pattern `0|([1-9]\d{0,128})`), compared
/// numerically.
fn seq_key(s: &str) -> (usize, String) {
    assert!(
        s == "0"
            || (!s.is_empty()
                && s.len() <= 129
                && !s.starts_with('0')
                && s.bytes().all(|b| b.is_ascii_digit())),
        "sequence number {s:?} is not a decimal string"
    );
    (s.len(), s.to_owned())
}

/// The exception name the SDK parsed from the response (`__type`).
fn code<T, E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    r: Result<T, kinesis::error::SdkError<E, R>>,
) -> String {
    match r {
        Ok(_) => panic!("expected an error, got success"),
        Err(e) => match e.code() {
            Some(c) => c.to_owned(),
            None => panic!("error without a code: {e:?}"),
        },
    }
}

async fn raw(env: &Env, op: &str, body: &str) -> (u16, Value) {
    let resp = env
        .server
        .http
        .post(env.server.url("/"))
        .header("X-Amz-Target", format!("Kinesis_20131202.{op}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "_raw": text }));
    (status, v)
}

async fn raw_error(env: &Env, op: &str, body: &str) -> String {
    let (status, v) = raw(env, op, body).await;
    assert_eq!(status, 400, "{op} {body}: {v}");
    assert!(v["message"].is_string() || v["Message"].is_string(), "{op}: message in {v}");
    v["__type"].as_str().unwrap_or_else(|| panic!("{op}: no __type in {v}")).to_owned()
}

fn entry(key: &str, data: impl Into<Vec<u8>>) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .partition_key(key)
        .data(Blob::new(data.into()))
        .build()
        .unwrap()
}

fn random_key(rng: &mut impl Rng) -> String {
    // ASCII and multi-byte characters: the hash is MD5 of the UTF-8 bytes.
    const ALPHABET: &[char] = &[
        'a', 'b', 'c', 'x', 'y', 'z', 'A', 'Q', '0', '7', '9', '-', '_', '.', ':', '/', ' ', 'é',
        'ß', '日', '本', '🎥',
    ];
    let len = rng.random_range(1..=40);
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())]).collect()
}

// ---------------------------------------------------------------------------------------------
// Stream lifecycle and control plane
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_describe_summary_delete() {
    let env = Env::start().await;
    let k = &env.kds;
    let out = k.create_stream().stream_name("orders").shard_count(3).send().await;
    out.unwrap();
    env.wait_active("orders").await;

    let d = k.describe_stream().stream_name("orders").send().await.unwrap();
    let d = d.stream_description().unwrap();
    assert_eq!(d.stream_name(), "orders");
    assert!(d.stream_arn().starts_with("arn:aws:kinesis:"), "{}", d.stream_arn());
    assert!(d.stream_arn().ends_with(":stream/orders"), "{}", d.stream_arn());
    assert_eq!(d.stream_status(), &StreamStatus::Active);
    assert_eq!(d.retention_period_hours(), 24);
    assert!(!d.has_more_shards());
    assert_eq!(
        d.stream_mode_details().map(|m| m.stream_mode().clone()),
        Some(StreamMode::Provisioned)
    );
    let shards = d.shards();
    assert_eq!(
        shards.iter().map(|s| s.shard_id()).collect::<Vec<_>>(),
        ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002"]
    );
    // The shards split the 128-bit hash space evenly and contiguously.
    let mut next = 0u128;
    for s in shards {
        let (a, b) = range_of(s);
        assert_eq!(a, next, "contiguous ranges");
        assert!(b >= a);
        next = b.wrapping_add(1);
        assert!(s.parent_shard_id().is_none() && s.adjacent_parent_shard_id().is_none());
        let seq = s.sequence_number_range().unwrap();
        seq_key(seq.starting_sequence_number());
        assert!(seq.ending_sequence_number().is_none(), "open shard has no EndingSequenceNumber");
    }
    assert_eq!(next, 0, "the last range ends at 2^128-1");

    // Limit on DescribeStream pages the shards with ExclusiveStartShardId.
    let p1 = k.describe_stream().stream_name("orders").limit(2).send().await.unwrap();
    let p1 = p1.stream_description().unwrap();
    assert_eq!(p1.shards().len(), 2);
    assert!(p1.has_more_shards());
    let p2 = k
        .describe_stream()
        .stream_name("orders")
        .exclusive_start_shard_id("shardId-000000000001")
        .send()
        .await
        .unwrap();
    let p2 = p2.stream_description().unwrap();
    assert_eq!(
        p2.shards().iter().map(|s| s.shard_id()).collect::<Vec<_>>(),
        ["shardId-000000000002"]
    );
    assert!(!p2.has_more_shards());

    let s = k.describe_stream_summary().stream_name("orders").send().await.unwrap();
    let s = s.stream_description_summary().unwrap();
    assert_eq!(s.stream_name(), "orders");
    assert_eq!(s.open_shard_count(), 3);
    assert_eq!(s.retention_period_hours(), 24);
    assert_eq!(s.stream_status(), &StreamStatus::Active);
    assert_eq!(s.consumer_count().unwrap_or(0), 0);
    assert_eq!(s.stream_creation_timestamp().as_secs_f64(), env.now().as_secs_f64());

    // StreamARN is accepted wherever StreamName is.
    let arn = s.stream_arn().to_owned();
    let by_arn = k.describe_stream_summary().stream_arn(&arn).send().await.unwrap();
    assert_eq!(by_arn.stream_description_summary().unwrap().stream_name(), "orders");

    // Duplicate create.
    let dup = k.create_stream().stream_name("orders").shard_count(1).send().await;
    assert_eq!(code(dup), "ResourceInUseException");

    k.delete_stream().stream_name("orders").send().await.unwrap();
    // DELETING may be observable briefly; then the stream is gone.
    let mut gone = false;
    for _ in 0..200 {
        match k.describe_stream_summary().stream_name("orders").send().await {
            Err(e) => {
                assert_eq!(e.code(), Some("ResourceNotFoundException"), "{e:?}");
                gone = true;
                break;
            }
            Ok(s) => assert_eq!(
                s.stream_description_summary().unwrap().stream_status(),
                &StreamStatus::Deleting
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "deleted stream still described");
    assert_eq!(
        code(k.delete_stream().stream_name("orders").send().await),
        "ResourceNotFoundException"
    );
    // The name can be used again, and the new stream starts empty.
    env.create("orders", 1).await;
    let it = env
        .iterator("orders", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    assert!(env.drain(it).await.0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_on_demand() {
    let env = Env::start().await;
    env.kds
        .create_stream()
        .stream_name("od")
        .stream_mode_details(
            StreamModeDetails::builder().stream_mode(StreamMode::OnDemand).build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    env.wait_active("od").await;
    let s = env.kds.describe_stream_summary().stream_name("od").send().await.unwrap();
    let s = s.stream_description_summary().unwrap();
    assert_eq!(s.stream_mode_details().unwrap().stream_mode(), &StreamMode::OnDemand);
    // AWS gives a new on-demand stream 4 shards; at least one, covering the hash space.
    assert!(s.open_shard_count() >= 1);
    let shards = env.shards("od").await;
    assert_eq!(shards.len() as i32, s.open_shard_count());
    assert_eq!(range_of(&shards[0]).0, 0);
    assert_eq!(range_of(shards.last().unwrap()).1, MAX_HASH);

    // Records flow the same way.
    let put = env.kds.put_record().stream_name("od").partition_key("k").data(Blob::new("v")).send();
    let put = put.await.unwrap();
    assert_eq!(put.shard_id(), shard_for(&shards, md5_hash("k")));
    let lim = env.kds.describe_limits().send().await.unwrap();
    assert!(lim.on_demand_stream_count() >= 1, "{lim:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_streams_pagination() {
    let env = Env::start().await;
    let names: Vec<String> = (0..7).map(|i| format!("ls-{i:02}")).collect();
    for n in &names {
        env.create(n, 1).await;
    }
    // Page with Limit 2 and NextToken.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 100, "ListStreams never ended");
        let req = match &token {
            Some(t) => env.kds.list_streams().next_token(t).limit(2),
            None => env.kds.list_streams().limit(2),
        };
        let r = req.send().await.unwrap();
        assert!(r.stream_names().len() <= 2);
        assert_eq!(r.stream_names().len(), r.stream_summaries().len());
        for (n, s) in r.stream_names().iter().zip(r.stream_summaries()) {
            assert_eq!(n, s.stream_name());
            assert!(s.stream_arn().ends_with(&format!(":stream/{n}")));
        }
        seen.extend(r.stream_names().iter().cloned());
        if !r.has_more_streams() {
            assert!(r.next_token().is_none(), "NextToken without HasMoreStreams");
            break;
        }
        token = Some(r.next_token().expect("NextToken when HasMoreStreams").to_owned());
    }
    let mine: Vec<&String> = seen.iter().filter(|n| n.starts_with("ls-")).collect();
    assert_eq!(mine, names.iter().collect::<Vec<_>>(), "every stream once, in name order");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no stream listed twice");

    // The legacy ExclusiveStartStreamName paging.
    let r = env.kds.list_streams().exclusive_start_stream_name("ls-04").send().await.unwrap();
    let after: Vec<&String> = r.stream_names().iter().filter(|n| n.starts_with("ls-")).collect();
    assert_eq!(after, ["ls-05", "ls-06"]);

    // A garbage NextToken.
    let bad = env.kds.list_streams().next_token("garbage-token").send().await;
    let c = code(bad);
    assert!(c == "InvalidArgumentException" || c == "ExpiredNextTokenException", "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shards_tokens_and_filters() {
    let env = Env::start().await;
    env.create("ls", 5).await;
    let all = env.shards("ls").await;
    assert_eq!(all.len(), 5);

    // MaxResults + NextToken (NextToken alone on follow-up calls).
    let p1 = env.kds.list_shards().stream_name("ls").max_results(2).send().await.unwrap();
    assert_eq!(p1.shards().len(), 2);
    let tok = p1.next_token().expect("NextToken").to_owned();
    let p2 = env.kds.list_shards().next_token(&tok).max_results(2).send().await.unwrap();
    assert_eq!(
        p2.shards().iter().map(|s| s.shard_id()).collect::<Vec<_>>(),
        ["shardId-000000000002", "shardId-000000000003"]
    );
    // NextToken with StreamName is invalid (AWS: they cannot be given together).
    let both = env.kds.list_shards().stream_name("ls").next_token(&tok).send().await;
    assert_eq!(code(both), "InvalidArgumentException");
    // A NextToken expires after 300 s.
    env.clock.advance(Duration::from_secs(301));
    let old = env.kds.list_shards().next_token(&tok).send().await;
    assert_eq!(code(old), "ExpiredNextTokenException");

    // ExclusiveStartShardId.
    let r = env
        .kds
        .list_shards()
        .stream_name("ls")
        .exclusive_start_shard_id("shardId-000000000002")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.shards().iter().map(|s| s.shard_id()).collect::<Vec<_>>(),
        ["shardId-000000000003", "shardId-000000000004"]
    );

    // Split one shard so that open and closed shards differ.
    let (a, b) = range_of(&all[0]);
    env.kds
        .split_shard()
        .stream_name("ls")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((a + (b - a) / 2 + 1).to_string())
        .send()
        .await
        .unwrap();
    env.wait_active("ls").await;
    let all = env.shards("ls").await;
    assert_eq!(all.len(), 7);

    let filter = |t: ShardFilterType| ShardFilter::builder().r#type(t).build().unwrap();
    let ids = |v: Vec<Shard>| v.iter().map(|s| s.shard_id().to_owned()).collect::<Vec<_>>();
    let latest = ids(env.shards_filtered("ls", Some(filter(ShardFilterType::AtLatest))).await);
    assert_eq!(
        latest,
        [
            "shardId-000000000001",
            "shardId-000000000002",
            "shardId-000000000003",
            "shardId-000000000004",
            "shardId-000000000005",
            "shardId-000000000006"
        ]
    );
    let horizon =
        ids(env.shards_filtered("ls", Some(filter(ShardFilterType::AtTrimHorizon))).await);
    // AT_TRIM_HORIZON: the shards open at the trim horizon — the original five.
    assert_eq!(horizon, ids(all.iter().take(5).cloned().collect()));
    let from = ids(env.shards_filtered("ls", Some(filter(ShardFilterType::FromTrimHorizon))).await);
    assert_eq!(from, ids(all.clone()));
    let after = ShardFilter::builder()
        .r#type(ShardFilterType::AfterShardId)
        .shard_id("shardId-000000000004")
        .build()
        .unwrap();
    let after = ids(env.shards_filtered("ls", Some(after)).await);
    assert_eq!(after, ["shardId-000000000005", "shardId-000000000006"]);

    // AFTER_SHARD_ID without ShardId is invalid.
    let bad = env
        .kds
        .list_shards()
        .stream_name("ls")
        .shard_filter(filter(ShardFilterType::AfterShardId))
        .send()
        .await;
    assert_eq!(code(bad), "InvalidArgumentException");
    assert_eq!(
        code(env.kds.list_shards().stream_name("nope").send().await),
        "ResourceNotFoundException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_period_operations() {
    let env = Env::start().await;
    env.create("ret", 1).await;
    let hours = |env: &Env| {
        let k = env.kds.clone();
        async move {
            let s = k.describe_stream_summary().stream_name("ret").send().await.unwrap();
            s.stream_description_summary().unwrap().retention_period_hours()
        }
    };
    let k = &env.kds;
    k.increase_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(168)
        .send()
        .await
        .unwrap();
    assert_eq!(hours(&env).await, 168);
    k.increase_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(8760)
        .send()
        .await
        .unwrap();
    assert_eq!(hours(&env).await, 8760);
    k.decrease_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(48)
        .send()
        .await
        .unwrap();
    assert_eq!(hours(&env).await, 48);

    // Increase to less than the current value, decrease to more: InvalidArgumentException.
    let e = k
        .increase_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(24)
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
    let e = k
        .decrease_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(72)
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
    // Out of 24–8760.
    let e = k
        .decrease_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(23)
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
    let e = k
        .increase_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(8761)
        .send()
        .await;
    // Above the model's range (ValidationException) or the service's (InvalidArgument).
    let c = code(e);
    assert!(c == "InvalidArgumentException" || c == "ValidationException", "8761 h: {c}");
    assert_eq!(hours(&env).await, 48);
    let e = k
        .increase_stream_retention_period()
        .stream_name("none")
        .retention_period_hours(48)
        .send()
        .await;
    assert_eq!(code(e), "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_add_list_remove() {
    let env = Env::start().await;
    env.create("tagged", 1).await;
    let k = &env.kds;
    k.add_tags_to_stream()
        .stream_name("tagged")
        .tags("team", "video")
        .tags("env", "test")
        .tags("empty", "")
        .send()
        .await
        .unwrap();
    let list = |excl: Option<&str>, limit: Option<i32>| {
        k.list_tags_for_stream()
            .stream_name("tagged")
            .set_exclusive_start_tag_key(excl.map(str::to_owned))
            .set_limit(limit)
            .send()
    };
    let r = list(None, None).await.unwrap();
    let tags: BTreeMap<&str, &str> =
        r.tags().iter().map(|t| (t.key(), t.value().unwrap_or(""))).collect();
    assert_eq!(tags, BTreeMap::from([("empty", ""), ("env", "test"), ("team", "video")]));
    assert!(!r.has_more_tags());
    // Keys are listed in order; Limit and ExclusiveStartTagKey page them.
    let r = list(None, Some(2)).await.unwrap();
    assert_eq!(r.tags().iter().map(|t| t.key()).collect::<Vec<_>>(), ["empty", "env"]);
    assert!(r.has_more_tags());
    let r = list(Some("env"), None).await.unwrap();
    assert_eq!(r.tags().iter().map(|t| t.key()).collect::<Vec<_>>(), ["team"]);

    // Overwrite a value; remove a key (removing an absent key is fine).
    k.add_tags_to_stream().stream_name("tagged").tags("env", "prod").send().await.unwrap();
    k.remove_tags_from_stream()
        .stream_name("tagged")
        .tag_keys("team")
        .tag_keys("absent")
        .send()
        .await
        .unwrap();
    let r = list(None, None).await.unwrap();
    let tags: BTreeMap<&str, &str> =
        r.tags().iter().map(|t| (t.key(), t.value().unwrap_or(""))).collect();
    assert_eq!(tags, BTreeMap::from([("empty", ""), ("env", "prod")]));

    // More than 50 tags on a stream: InvalidArgumentException (AWS limit per stream).
    let mut add = k.add_tags_to_stream().stream_name("tagged");
    for i in 0..50 {
        add = add.tags(format!("k{i:02}"), "v");
    }
    let c = code(add.send().await);
    assert!(c == "InvalidArgumentException" || c == "LimitExceededException", "51+ tags: {c}");
    assert_eq!(
        code(k.list_tags_for_stream().stream_name("none").send().await),
        "ResourceNotFoundException"
    );
    // Tags given at creation.
    k.create_stream()
        .stream_name("born-tagged")
        .shard_count(1)
        .tags("a", "1")
        .send()
        .await
        .unwrap();
    env.wait_active("born-tagged").await;
    let r = k.list_tags_for_stream().stream_name("born-tagged").send().await.unwrap();
    assert_eq!(
        r.tags().iter().map(|t| (t.key(), t.value())).collect::<Vec<_>>(),
        [("a", Some("1"))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_register_list_describe_deregister() {
    let env = Env::start().await;
    env.create("fan", 2).await;
    let arn = env.arn("fan").await;
    let k = &env.kds;
    let reg = k.register_stream_consumer().stream_arn(&arn).consumer_name("app-1").send().await;
    let reg = reg.unwrap();
    let c = reg.consumer().expect("Consumer");
    assert_eq!(c.consumer_name(), "app-1");
    assert!(
        c.consumer_arn().starts_with(&format!("{arn}/consumer/app-1:")),
        "{}",
        c.consumer_arn()
    );
    assert!(matches!(c.consumer_status(), ConsumerStatus::Creating | ConsumerStatus::Active));
    let consumer_arn = c.consumer_arn().to_owned();
    k.register_stream_consumer().stream_arn(&arn).consumer_name("app-2").send().await.unwrap();
    let dup = k.register_stream_consumer().stream_arn(&arn).consumer_name("app-1").send().await;
    assert_eq!(code(dup), "ResourceInUseException");

    // Describe by consumer ARN and by stream ARN + name.
    let mut active = false;
    for _ in 0..200 {
        let d = k.describe_stream_consumer().consumer_arn(&consumer_arn).send().await.unwrap();
        let d = d.consumer_description().unwrap();
        assert_eq!(d.consumer_name(), "app-1");
        assert_eq!(d.stream_arn(), arn);
        if d.consumer_status() == &ConsumerStatus::Active {
            active = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(active, "consumer never became ACTIVE");
    let d = k.describe_stream_consumer().stream_arn(&arn).consumer_name("app-1").send().await;
    assert_eq!(d.unwrap().consumer_description().unwrap().consumer_arn(), consumer_arn);

    let l = k.list_stream_consumers().stream_arn(&arn).send().await.unwrap();
    let mut names: Vec<&str> = l.consumers().iter().map(|c| c.consumer_name()).collect();
    names.sort();
    assert_eq!(names, ["app-1", "app-2"]);
    let p = k.list_stream_consumers().stream_arn(&arn).max_results(1).send().await.unwrap();
    assert_eq!(p.consumers().len(), 1);
    let tok = p.next_token().expect("NextToken").to_owned();
    let p2 = k.list_stream_consumers().next_token(&tok).stream_arn(&arn).max_results(1).send();
    let p2 = p2.await.unwrap();
    assert_eq!(p2.consumers().len(), 1);
    assert_ne!(p.consumers()[0].consumer_name(), p2.consumers()[0].consumer_name());

    let s = k.describe_stream_summary().stream_name("fan").send().await.unwrap();
    assert_eq!(s.stream_description_summary().unwrap().consumer_count(), Some(2));

    k.deregister_stream_consumer().consumer_arn(&consumer_arn).send().await.unwrap();
    k.deregister_stream_consumer().stream_arn(&arn).consumer_name("app-2").send().await.unwrap();
    let mut empty = false;
    for _ in 0..200 {
        let l = k.list_stream_consumers().stream_arn(&arn).send().await.unwrap();
        if l.consumers().is_empty() {
            empty = true;
            break;
        }
        assert!(l.consumers().iter().all(|c| c.consumer_status() == &ConsumerStatus::Deleting));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(empty, "deregistered consumers still listed");
    let gone = k.describe_stream_consumer().consumer_arn(&consumer_arn).send().await;
    assert_eq!(code(gone), "ResourceNotFoundException");
    let bad_stream = format!("{}x", arn);
    let e = k.register_stream_consumer().stream_arn(bad_stream).consumer_name("z").send().await;
    assert_eq!(code(e), "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_limits_counts_shards() {
    let env = Env::start().await;
    let before = env.kds.describe_limits().send().await.unwrap();
    env.create("l1", 3).await;
    env.create("l2", 2).await;
    let after = env.kds.describe_limits().send().await.unwrap();
    assert_eq!(after.open_shard_count(), before.open_shard_count() + 5);
    assert!(after.shard_limit() >= after.open_shard_count());
    assert!(after.on_demand_stream_count_limit() >= after.on_demand_stream_count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_stream_mode_both_ways() {
    let env = Env::start().await;
    env.create("mode", 2).await;
    let arn = env.arn("mode").await;
    let mode = |m: StreamMode| StreamModeDetails::builder().stream_mode(m).build().unwrap();
    env.kds
        .update_stream_mode()
        .stream_arn(&arn)
        .stream_mode_details(mode(StreamMode::OnDemand))
        .send()
        .await
        .unwrap();
    env.wait_active("mode").await;
    let s = env.kds.describe_stream_summary().stream_name("mode").send().await.unwrap();
    let s = s.stream_description_summary().unwrap();
    assert_eq!(s.stream_mode_details().unwrap().stream_mode(), &StreamMode::OnDemand);
    // Already ON_DEMAND: AWS refuses a no-op switch.
    let again = env
        .kds
        .update_stream_mode()
        .stream_arn(&arn)
        .stream_mode_details(mode(StreamMode::OnDemand))
        .send()
        .await;
    let c = code(again);
    assert!(c == "InvalidArgumentException" || c == "ResourceInUseException", "{c}");
    env.kds
        .update_stream_mode()
        .stream_arn(&arn)
        .stream_mode_details(mode(StreamMode::Provisioned))
        .send()
        .await
        .unwrap();
    env.wait_active("mode").await;
    let s = env.kds.describe_stream_summary().stream_name("mode").send().await.unwrap();
    let s = s.stream_description_summary().unwrap();
    assert_eq!(s.stream_mode_details().unwrap().stream_mode(), &StreamMode::Provisioned);
    // Records still flow.
    env.kds
        .put_record()
        .stream_name("mode")
        .partition_key("p")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_shard_count_uniform_scaling() {
    let env = Env::start().await;
    env.create("scale", 2).await;
    for i in 0..50 {
        env.kds
            .put_record()
            .stream_name("scale")
            .partition_key(format!("k{i}"))
            .data(Blob::new(format!("old-{i}")))
            .send()
            .await
            .unwrap();
    }
    let r = env
        .kds
        .update_shard_count()
        .stream_name("scale")
        .target_shard_count(4)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .unwrap();
    assert_eq!(r.current_shard_count(), Some(2));
    assert_eq!(r.target_shard_count(), Some(4));
    assert_eq!(r.stream_name(), Some("scale"));
    env.wait_active("scale").await;

    let check_open = |shards: &[Shard], n: usize| {
        let open: Vec<&Shard> = shards.iter().filter(|s| is_open(s)).collect();
        assert_eq!(open.len(), n, "open shards");
        let mut next = 0u128;
        let mut ranges: Vec<(u128, u128)> = open.iter().map(|s| range_of(s)).collect();
        ranges.sort();
        for (a, b) in &ranges {
            assert_eq!(*a, next, "open shards cover the hash space contiguously: {ranges:?}");
            next = b.wrapping_add(1);
        }
        assert_eq!(next, 0);
        // Uniform: every open range within 1% of the ideal width... or equal splits.
        let ideal = MAX_HASH / n as u128;
        for (a, b) in &ranges {
            let w = b - a;
            assert!(w.abs_diff(ideal) <= ideal / 100, "uneven range {a}..{b}");
        }
    };
    let shards = env.shards("scale").await;
    check_open(&shards, 4);
    let s = env.kds.describe_stream_summary().stream_name("scale").send().await.unwrap();
    assert_eq!(s.stream_description_summary().unwrap().open_shard_count(), 4);
    // Every closed shard has children among the shards (lineage is recorded).
    for s in shards.iter().filter(|s| !is_open(s)) {
        assert!(
            shards.iter().any(|c| c.parent_shard_id() == Some(s.shard_id())
                || c.adjacent_parent_shard_id() == Some(s.shard_id())),
            "closed shard {} has no child",
            s.shard_id()
        );
    }

    // Down to 1 (AWS allows halving per call... but 4 → 2 → 1 is always allowed).
    for target in [2, 1] {
        env.kds
            .update_shard_count()
            .stream_name("scale")
            .target_shard_count(target)
            .scaling_type(ScalingType::UniformScaling)
            .send()
            .await
            .unwrap();
        env.wait_active("scale").await;
        check_open(&env.shards("scale").await, target as usize);
    }
    // New records go to the single open shard; the old records are still readable.
    let put = env
        .kds
        .put_record()
        .stream_name("scale")
        .partition_key("z")
        .data(Blob::new("new"))
        .send()
        .await
        .unwrap();
    let shards = env.shards("scale").await;
    assert_eq!(put.shard_id(), shard_for(&shards, md5_hash("z")));
    let mut old = 0;
    for s in shards.iter().filter(|s| !is_open(s)) {
        let it =
            env.iterator("scale", s.shard_id(), ShardIteratorType::TrimHorizon, None, None).await;
        old += env.drain(it).await.0.len();
    }
    assert_eq!(old, 50);
    // More than doubling (AWS: a documented UpdateShardCount limit) or going to 0 is refused.
    let e = env
        .kds
        .update_shard_count()
        .stream_name("scale")
        .target_shard_count(3)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await;
    let c = code(e);
    assert!(c == "LimitExceededException" || c == "InvalidArgumentException", "1 → 3: {c}");
    let e = env
        .kds
        .update_shard_count()
        .stream_name("scale")
        .target_shard_count(0)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await;
    let c = code(e);
    assert!(c == "ValidationException" || c == "InvalidArgumentException", "{c}");
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_record_and_basic_iterators() {
    let env = Env::start().await;
    env.create("basic", 2).await;
    let shards = env.shards("basic").await;
    let k = &env.kds;

    let r1 = k
        .put_record()
        .stream_name("basic")
        .partition_key("alpha")
        .data(Blob::new("one"))
        .send()
        .await
        .unwrap();
    assert_eq!(r1.shard_id(), shard_for(&shards, md5_hash("alpha")));
    seq_key(r1.sequence_number());
    env.tick();
    // SequenceNumberForOrdering: the new number is greater than the given one.
    let r2 = k
        .put_record()
        .stream_name("basic")
        .partition_key("alpha")
        .data(Blob::new("two"))
        .sequence_number_for_ordering(r1.sequence_number())
        .send()
        .await
        .unwrap();
    assert_eq!(r2.shard_id(), r1.shard_id());
    assert!(seq_key(r2.sequence_number()) > seq_key(r1.sequence_number()));
    // ExplicitHashKey overrides the partition key's hash.
    let other = shards.iter().find(|s| s.shard_id() != r1.shard_id()).unwrap();
    let ehk = range_of(other).0.to_string();
    let r3 = k
        .put_record()
        .stream_name("basic")
        .partition_key("alpha")
        .explicit_hash_key(&ehk)
        .data(Blob::new(vec![0u8, 255, 1, 254]))
        .send()
        .await
        .unwrap();
    assert_eq!(r3.shard_id(), other.shard_id());

    // Read back with each iterator type.
    let shard = r1.shard_id();
    let it = env.iterator("basic", shard, ShardIteratorType::TrimHorizon, None, None).await;
    let (recs, last) = env.drain(it).await;
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].data().as_ref(), b"one");
    assert_eq!(recs[0].partition_key(), Some("alpha"));
    assert_eq!(recs[0].sequence_number(), r1.sequence_number());
    assert_eq!(recs[1].data().as_ref(), b"two");
    let ts0 = recs[0].approximate_arrival_timestamp().expect("ApproximateArrivalTimestamp");
    let ts1 = recs[1].approximate_arrival_timestamp().unwrap();
    assert_eq!(ts0.to_millis().unwrap(), t0().as_millis());
    assert_eq!(ts1.to_millis().unwrap(), t0().as_millis() + 1000);
    assert_eq!(last.millis_behind_latest(), Some(0));
    assert!(last.next_shard_iterator().is_some(), "an open shard always has a next iterator");

    let it = env
        .iterator(
            "basic",
            shard,
            ShardIteratorType::AtSequenceNumber,
            Some(r2.sequence_number()),
            None,
        )
        .await;
    assert_eq!(
        env.drain(it).await.0.iter().map(|r| r.data().as_ref().to_vec()).collect::<Vec<_>>(),
        [b"two".to_vec()]
    );
    let it = env
        .iterator(
            "basic",
            shard,
            ShardIteratorType::AfterSequenceNumber,
            Some(r1.sequence_number()),
            None,
        )
        .await;
    assert_eq!(env.drain(it).await.0.len(), 1);
    let it = env
        .iterator(
            "basic",
            shard,
            ShardIteratorType::AfterSequenceNumber,
            Some(r2.sequence_number()),
            None,
        )
        .await;
    assert!(env.drain(it).await.0.is_empty());
    let at = DateTime::from_millis(t0().as_millis() + 500);
    let it = env.iterator("basic", shard, ShardIteratorType::AtTimestamp, None, Some(at)).await;
    assert_eq!(
        env.drain(it).await.0.iter().map(|r| r.data().as_ref().to_vec()).collect::<Vec<_>>(),
        [b"two".to_vec()]
    );
    // A timestamp in the future: nothing yet, then what arrives.
    let future = DateTime::from_millis(t0().as_millis() + 3_600_000);
    let it = env.iterator("basic", shard, ShardIteratorType::AtTimestamp, None, Some(future)).await;
    assert!(env.drain(it).await.0.is_empty());

    // LATEST sees only what comes after it.
    let latest = env.iterator("basic", shard, ShardIteratorType::Latest, None, None).await;
    env.tick();
    k.put_record()
        .stream_name("basic")
        .partition_key("alpha")
        .data(Blob::new("three"))
        .send()
        .await
        .unwrap();
    let (recs, _) = env.drain(latest).await;
    assert_eq!(
        recs.iter().map(|r| r.data().as_ref().to_vec()).collect::<Vec<_>>(),
        [b"three".to_vec()]
    );

    // The binary record on the other shard round-trips byte for byte.
    let it =
        env.iterator("basic", other.shard_id(), ShardIteratorType::TrimHorizon, None, None).await;
    let (recs, _) = env.drain(it).await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].data().as_ref(), &[0u8, 255, 1, 254]);
    assert_eq!(recs[0].sequence_number(), r3.sequence_number());

    // GetRecords Limit.
    let it = env.iterator("basic", shard, ShardIteratorType::TrimHorizon, None, None).await;
    env.tick();
    let page = k.get_records().shard_iterator(&it).limit(1).send().await.unwrap();
    assert_eq!(page.records().len(), 1);
    assert!(page.millis_behind_latest().is_some());
    env.tick();
    let page = k
        .get_records()
        .shard_iterator(page.next_shard_iterator().unwrap())
        .limit(10_000)
        .send()
        .await
        .unwrap();
    assert_eq!(page.records().len(), 2);

    // Sequence numbers are unique across the stream.
    let mut all = HashSet::new();
    for s in &shards {
        let it =
            env.iterator("basic", s.shard_id(), ShardIteratorType::TrimHorizon, None, None).await;
        for r in env.drain(it).await.0 {
            assert!(all.insert(r.sequence_number().to_owned()), "duplicate sequence number");
        }
    }
    assert_eq!(all.len(), 4);
}

/// 10,000 records with random partition keys into 4 shards (PutRecords batches of 500), read
/// back from every shard with every iterator type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_every_iterator_type() {
    let env = Env::start().await;
    env.create("big", 4).await;
    let shards = env.shards("big").await;
    assert_eq!(shards.len(), 4);
    let mut rng = rand::rng();
    let keys: Vec<String> = (0..400).map(|_| random_key(&mut rng)).collect();

    // (key, per-key index) → (shard, sequence number, data, batch)
    let mut next_idx: HashMap<String, usize> = HashMap::new();
    let mut acked: HashMap<String, (String, Vec<u8>, usize, String)> = HashMap::new(); // seq → (shard, data, batch, key)
    let batch_time = |b: usize| t0().as_millis() + 1000 * (b as i64 + 1);
    for batch in 0..20 {
        env.tick(); // batch b is written at t0 + (b+1) s: ~125 records per shard per second.
        let mut entries = Vec::new();
        let mut sent = Vec::new();
        for _ in 0..500 {
            let key = keys[rng.random_range(0..keys.len())].clone();
            let idx = next_idx.entry(key.clone()).or_default();
            let pad: String = (0..rng.random_range(0..200)).map(|_| 'x').collect();
            let data = format!("{key}|{idx}|{pad}").into_bytes();
            *idx += 1;
            entries.push(entry(&key, data.clone()));
            sent.push((key, data));
        }
        let r = env
            .kds
            .put_records()
            .stream_name("big")
            .set_records(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(r.failed_record_count(), Some(0));
        assert_eq!(r.records().len(), 500);
        for ((key, data), res) in sent.into_iter().zip(r.records()) {
            assert!(res.error_code().is_none(), "{res:?}");
            let shard = res.shard_id().unwrap().to_owned();
            assert_eq!(shard, shard_for(&shards, md5_hash(&key)), "routing of {key:?}");
            let seq = res.sequence_number().unwrap().to_owned();
            seq_key(&seq);
            assert!(
                acked.insert(seq, (shard, data, batch, key)).is_none(),
                "duplicate sequence number"
            );
        }
    }
    assert_eq!(acked.len(), 10_000);

    let mut seen_total = 0;
    for s in &shards {
        let id = s.shard_id();
        let (lo, hi) = range_of(s);
        let it = env.iterator("big", id, ShardIteratorType::TrimHorizon, None, None).await;
        let (recs, last) = env.drain(it).await;
        assert_eq!(last.millis_behind_latest(), Some(0), "caught up");
        // Exactly the records acknowledged for this shard, in increasing sequence order.
        let expected: usize = acked.values().filter(|(sh, ..)| sh == id).count();
        assert_eq!(recs.len(), expected, "{id}: records read");
        let mut prev: Option<(usize, String)> = None;
        for r in &recs {
            let k = seq_key(r.sequence_number());
            if let Some(p) = &prev {
                assert!(k > *p, "{id}: sequence numbers increase");
            }
            prev = Some(k);
            let (shard, data, batch, key) = acked.get(r.sequence_number()).expect("acknowledged");
            assert_eq!(shard, id);
            assert_eq!(r.data().as_ref(), &data[..]);
            assert_eq!(r.partition_key(), Some(key.as_str()));
            let h = md5_hash(key);
            assert!(lo <= h && h <= hi, "{key:?} hashes outside {id}'s range");
            let ts = r.approximate_arrival_timestamp().unwrap().to_millis().unwrap();
            assert_eq!(ts, batch_time(*batch), "ApproximateArrivalTimestamp");
        }
        seen_total += recs.len();

        // Per partition key, records come in the order they were put.
        let mut last_idx: HashMap<&str, i64> = HashMap::new();
        for r in &recs {
            let text = std::str::from_utf8(r.data().as_ref()).unwrap();
            let mut parts = text.rsplitn(3, '|');
            let _pad = parts.next();
            let idx: i64 = parts.next().unwrap().parse().unwrap();
            let key = r.partition_key().unwrap();
            let prev = last_idx.insert(key, idx).unwrap_or(-1);
            assert_eq!(idx, prev + 1, "{id}: order of key {key:?}");
        }

        // AT_SEQUENCE_NUMBER / AFTER_SEQUENCE_NUMBER from the middle: the exact suffix.
        let mid = recs.len() / 2;
        let at_seq = recs[mid].sequence_number();
        let it =
            env.iterator("big", id, ShardIteratorType::AtSequenceNumber, Some(at_seq), None).await;
        let got: Vec<String> =
            env.drain(it).await.0.iter().map(|r| r.sequence_number().to_owned()).collect();
        let want: Vec<String> =
            recs[mid..].iter().map(|r| r.sequence_number().to_owned()).collect();
        assert_eq!(got, want, "{id}: AT_SEQUENCE_NUMBER");
        let it = env
            .iterator("big", id, ShardIteratorType::AfterSequenceNumber, Some(at_seq), None)
            .await;
        let got: Vec<String> =
            env.drain(it).await.0.iter().map(|r| r.sequence_number().to_owned()).collect();
        assert_eq!(got, want[1..].to_vec(), "{id}: AFTER_SEQUENCE_NUMBER");

        // AT_TIMESTAMP at batch 10's time: batches 10.. exactly.
        let at = DateTime::from_millis(batch_time(10));
        let it = env.iterator("big", id, ShardIteratorType::AtTimestamp, None, Some(at)).await;
        let got: Vec<String> =
            env.drain(it).await.0.iter().map(|r| r.sequence_number().to_owned()).collect();
        let want: Vec<String> = recs
            .iter()
            .filter(|r| acked[r.sequence_number()].2 >= 10)
            .map(|r| r.sequence_number().to_owned())
            .collect();
        assert_eq!(got, want, "{id}: AT_TIMESTAMP");
        // Before the first record: everything.
        let it = env
            .iterator(
                "big",
                id,
                ShardIteratorType::AtTimestamp,
                None,
                Some(DateTime::from_millis(0)),
            )
            .await;
        assert_eq!(env.drain(it).await.0.len(), recs.len(), "{id}: AT_TIMESTAMP 0");

        // LATEST: nothing of the old; then exactly one new record sent to this shard.
        let it = env.iterator("big", id, ShardIteratorType::Latest, None, None).await;
        env.tick();
        let put = env
            .kds
            .put_record()
            .stream_name("big")
            .partition_key("latest")
            .explicit_hash_key(lo.to_string())
            .data(Blob::new(format!("latest-{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(put.shard_id(), id);
        let (got, _) = env.drain(it).await;
        assert_eq!(got.len(), 1, "{id}: LATEST");
        assert_eq!(got[0].data().as_ref(), format!("latest-{id}").as_bytes());
        assert!(
            seq_key(got[0].sequence_number()) > seq_key(recs.last().unwrap().sequence_number())
        );
    }
    assert_eq!(seen_total, 10_000, "every record exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_records_partial_failure_shape() {
    // A PutRecords response has one entry per request record, in order, each either
    // SequenceNumber+ShardId or ErrorCode+ErrorMessage. Wire check with raw JSON.
    let env = Env::start().await;
    env.create("shape", 1).await;
    let (status, v) = raw(
        &env,
        "PutRecords",
        r#"{"StreamName":"shape","Records":[{"Data":"aGVsbG8=","PartitionKey":"a"},{"Data":"","PartitionKey":"b"}]}"#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["FailedRecordCount"], 0);
    let recs = v["Records"].as_array().unwrap();
    assert_eq!(recs.len(), 2);
    for r in recs {
        assert!(r["SequenceNumber"].is_string() && r["ShardId"] == "shardId-000000000000", "{r}");
    }
    // GetRecords on the wire: Data base64, timestamps epoch seconds as numbers.
    let (_, it) = raw(&env, "GetShardIterator", r#"{"StreamName":"shape","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}"#).await;
    env.tick();
    let body = json!({ "ShardIterator": it["ShardIterator"] }).to_string();
    let (status, page) = raw(&env, "GetRecords", &body).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["Records"][0]["Data"], "aGVsbG8=");
    assert_eq!(page["Records"][1]["Data"], "");
    assert!(page["Records"][0]["ApproximateArrivalTimestamp"].is_number(), "{page}");
    assert!(page["MillisBehindLatest"].is_number(), "{page}");
    assert!(page["NextShardIterator"].is_string(), "{page}");
    // Required members of DescribeStream's output are present on the wire.
    let (_, d) = raw(&env, "DescribeStream", r#"{"StreamName":"shape"}"#).await;
    let sd = &d["StreamDescription"];
    for m in [
        "StreamName",
        "StreamARN",
        "StreamStatus",
        "Shards",
        "HasMoreShards",
        "RetentionPeriodHours",
        "StreamCreationTimestamp",
        "EnhancedMonitoring",
    ] {
        assert!(!sd[m].is_null(), "DescribeStream lacks {m}: {d}");
    }
    assert!(sd["StreamCreationTimestamp"].is_number(), "{d}");
}

// ---------------------------------------------------------------------------------------------
// Resharding lineage
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_merge_lineage() {
    let env = Env::start().await;
    env.create("lin", 1).await;
    let k = &env.kds;
    let put = |key: String, data: String| {
        k.put_record().stream_name("lin").partition_key(key).data(Blob::new(data)).send()
    };
    let mut before = Vec::new();
    for i in 0..30 {
        before.push(
            put(format!("k{i}"), format!("before-{i}")).await.unwrap().sequence_number().to_owned(),
        );
    }
    let mid: u128 = 1u128 << 127;
    k.split_shard()
        .stream_name("lin")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key(mid.to_string())
        .send()
        .await
        .unwrap();
    env.wait_active("lin").await;

    let shards = env.shards("lin").await;
    let ids: Vec<&str> = shards.iter().map(|s| s.shard_id()).collect();
    assert_eq!(ids, ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002"]);
    let parent = &shards[0];
    let end = parent
        .sequence_number_range()
        .unwrap()
        .ending_sequence_number()
        .expect("parent closed: EndingSequenceNumber");
    assert!(
        seq_key(end) >= seq_key(before.last().unwrap()),
        "EndingSequenceNumber ≥ the last record"
    );
    let (c1, c2) = (&shards[1], &shards[2]);
    assert_eq!(range_of(c1), (0, mid - 1));
    assert_eq!(range_of(c2), (mid, MAX_HASH));
    for c in [c1, c2] {
        assert_eq!(c.parent_shard_id(), Some("shardId-000000000000"));
        assert_eq!(c.adjacent_parent_shard_id(), None);
        assert!(is_open(c));
        // Children's sequence numbers start after the parent's end.
        assert!(
            seq_key(c.sequence_number_range().unwrap().starting_sequence_number()) > seq_key(end)
        );
    }

    // Writes now go to the children.
    let mut after = Vec::new();
    for i in 0..30 {
        let key = format!("k{i}");
        let r = put(key.clone(), format!("after-{i}")).await.unwrap();
        assert_eq!(r.shard_id(), shard_for(&shards, md5_hash(&key)));
        assert_ne!(r.shard_id(), "shardId-000000000000");
        after.push(r.sequence_number().to_owned());
    }

    // The parent still serves its records, then ends with ChildShards.
    let it = env
        .iterator("lin", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    let (recs, last) = env.drain(it).await;
    assert_eq!(recs.iter().map(|r| r.sequence_number().to_owned()).collect::<Vec<_>>(), before);
    assert!(last.next_shard_iterator().is_none(), "drained closed shard: NextShardIterator null");
    let mut children: Vec<(String, Vec<String>)> = last
        .child_shards()
        .iter()
        .map(|c| (c.shard_id().to_owned(), c.parent_shards().to_vec()))
        .collect();
    children.sort();
    assert_eq!(
        children,
        [
            ("shardId-000000000001".to_owned(), vec!["shardId-000000000000".to_owned()]),
            ("shardId-000000000002".to_owned(), vec!["shardId-000000000000".to_owned()]),
        ]
    );
    for c in last.child_shards() {
        let hk = c.hash_key_range().expect("ChildShard HashKeyRange");
        let want = if c.shard_id().ends_with('1') { (0, mid - 1) } else { (mid, MAX_HASH) };
        assert_eq!(
            (
                hk.starting_hash_key().parse::<u128>().unwrap(),
                hk.ending_hash_key().parse::<u128>().unwrap()
            ),
            want
        );
    }
    // LATEST on a closed shard: also at its end.
    let it =
        env.iterator("lin", "shardId-000000000000", ShardIteratorType::Latest, None, None).await;
    let (recs, last) = env.drain(it).await;
    assert!(recs.is_empty());
    assert!(last.next_shard_iterator().is_none());
    assert_eq!(last.child_shards().len(), 2);
    // Writing to the closed parent by ExplicitHashKey goes to a child instead.
    let r = k
        .put_record()
        .stream_name("lin")
        .partition_key("x")
        .explicit_hash_key("0")
        .data(Blob::new("e"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.shard_id(), "shardId-000000000001");

    // Merge the children: 1 is ShardToMerge, 2 the adjacent one.
    k.merge_shards()
        .stream_name("lin")
        .shard_to_merge("shardId-000000000001")
        .adjacent_shard_to_merge("shardId-000000000002")
        .send()
        .await
        .unwrap();
    env.wait_active("lin").await;
    let shards = env.shards("lin").await;
    assert_eq!(shards.len(), 4);
    let merged = &shards[3];
    assert_eq!(merged.shard_id(), "shardId-000000000003");
    assert_eq!(merged.parent_shard_id(), Some("shardId-000000000001"));
    assert_eq!(merged.adjacent_parent_shard_id(), Some("shardId-000000000002"));
    assert_eq!(range_of(merged), (0, MAX_HASH));
    assert!(is_open(merged));
    assert!(!is_open(&shards[1]) && !is_open(&shards[2]));

    // Children drained: their records (all of `after`, plus "e"), then ChildShards = the merged shard.
    let mut child_seqs = HashSet::new();
    for c in ["shardId-000000000001", "shardId-000000000002"] {
        let it = env.iterator("lin", c, ShardIteratorType::TrimHorizon, None, None).await;
        let (recs, last) = env.drain(it).await;
        child_seqs.extend(recs.iter().map(|r| r.sequence_number().to_owned()));
        assert!(last.next_shard_iterator().is_none(), "{c}: NextShardIterator null");
        let cs = last.child_shards();
        assert_eq!(cs.len(), 1, "{c}: {cs:?}");
        assert_eq!(cs[0].shard_id(), "shardId-000000000003");
        let mut parents = cs[0].parent_shards().to_vec();
        parents.sort();
        assert_eq!(parents, ["shardId-000000000001", "shardId-000000000002"]);
    }
    assert_eq!(child_seqs.len(), 31);
    assert!(after.iter().all(|s| child_seqs.contains(s)));

    // Invalid resharding requests.
    let e = k
        .merge_shards()
        .stream_name("lin")
        .shard_to_merge("shardId-000000000001")
        .adjacent_shard_to_merge("shardId-000000000003")
        .send()
        .await;
    let c = code(e);
    assert!(c == "InvalidArgumentException" || c == "ResourceInUseException", "merge closed: {c}");
    let e = k
        .split_shard()
        .stream_name("lin")
        .shard_to_split("shardId-000000000003")
        .new_starting_hash_key("0")
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException", "split at the range start");
    let e = k
        .split_shard()
        .stream_name("lin")
        .shard_to_split("shardId-000000000009")
        .new_starting_hash_key("5")
        .send()
        .await;
    assert_eq!(code(e), "ResourceNotFoundException");
    let e = k
        .split_shard()
        .stream_name("lin")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("5")
        .send()
        .await;
    // AWS: "… has already been merged or split, and thus is not eligible for merging or
    // splitting" (ResourceInUseException).
    let c = code(e);
    assert!(c == "ResourceInUseException" || c == "InvalidArgumentException", "split closed: {c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_non_adjacent_is_invalid() {
    let env = Env::start().await;
    env.create("na", 3).await;
    let e = env
        .kds
        .merge_shards()
        .stream_name("na")
        .shard_to_merge("shardId-000000000000")
        .adjacent_shard_to_merge("shardId-000000000002")
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
}

// ---------------------------------------------------------------------------------------------
// Throughput limits (provisioned mode), deterministic with the manual clock
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_records_per_second_exceeded() {
    let env = Env::start().await;
    env.create("tp", 1).await;
    let k = &env.kds;
    // 1,000 records in one second are within the limit...
    for b in 0..2 {
        let entries: Vec<_> = (0..500).map(|i| entry(&format!("k{b}-{i}"), "x")).collect();
        let r = k.put_records().stream_name("tp").set_records(Some(entries)).send().await.unwrap();
        assert_eq!(r.failed_record_count(), Some(0), "within 1,000 records/s");
    }
    // ...the 1,001st is not.
    let e =
        k.put_record().stream_name("tp").partition_key("over").data(Blob::new("x")).send().await;
    match e {
        Err(e) => {
            assert_eq!(e.code(), Some("ProvisionedThroughputExceededException"), "{e:?}");
            assert!(matches!(
                e.as_service_error(),
                Some(kinesis::operation::put_record::PutRecordError::ProvisionedThroughputExceededException(_))
            ));
        }
        Ok(_) => panic!("PutRecord over 1,000 records/s accepted"),
    }
    // PutRecords: per-record ErrorCode, FailedRecordCount, HTTP 200.
    let entries: Vec<_> = (0..10).map(|i| entry(&format!("p{i}"), "x")).collect();
    let r = k.put_records().stream_name("tp").set_records(Some(entries)).send().await.unwrap();
    assert_eq!(r.failed_record_count(), Some(10));
    assert_eq!(r.records().len(), 10);
    for rec in r.records() {
        assert_eq!(rec.error_code(), Some("ProvisionedThroughputExceededException"));
        assert!(rec.error_message().is_some_and(|m| !m.is_empty()));
        assert!(rec.sequence_number().is_none() && rec.shard_id().is_none());
    }
    // A second later there is room again.
    env.clock.advance(Duration::from_secs(2));
    k.put_record()
        .stream_name("tp")
        .partition_key("later")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();

    // The throttled records were not stored.
    let it = env
        .iterator("tp", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    let (recs, _) = env.drain(it).await;
    assert_eq!(recs.len(), 1001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_bytes_per_second_exceeded() {
    let env = Env::start().await;
    env.create("tpb", 2).await;
    let shards = env.shards("tpb").await;
    let k = &env.kds;
    let half_mib = vec![7u8; 512 * 1024];
    let ehk = range_of(&shards[0]).0.to_string();
    let put = || {
        k.put_record()
            .stream_name("tpb")
            .partition_key("b")
            .explicit_hash_key(&ehk)
            .data(Blob::new(half_mib.clone()))
            .send()
    };
    put().await.unwrap();
    let _second = put().await; // 1 MiB: at the limit, either way
    let third = put().await; // 1.5 MiB in one second into one shard
    assert_eq!(code(third), "ProvisionedThroughputExceededException");
    // The other shard has its own budget.
    let other = range_of(&shards[1]).0.to_string();
    k.put_record()
        .stream_name("tpb")
        .partition_key("b")
        .explicit_hash_key(other)
        .data(Blob::new(half_mib.clone()))
        .send()
        .await
        .unwrap();
    // PutRecords: the over-budget records fail individually, the rest succeed.
    let entries = vec![
        PutRecordsRequestEntry::builder()
            .partition_key("b")
            .explicit_hash_key(&ehk)
            .data(Blob::new(half_mib.clone()))
            .build()
            .unwrap(),
        PutRecordsRequestEntry::builder()
            .partition_key("b")
            .explicit_hash_key(range_of(&shards[1]).0.to_string())
            .data(Blob::new(vec![1u8; 10]))
            .build()
            .unwrap(),
    ];
    let r = k.put_records().stream_name("tpb").set_records(Some(entries)).send().await.unwrap();
    assert_eq!(r.failed_record_count(), Some(1));
    assert_eq!(r.records()[0].error_code(), Some("ProvisionedThroughputExceededException"));
    assert!(r.records()[1].error_code().is_none());
    assert_eq!(r.records()[1].shard_id(), Some(shards[1].shard_id()));
    env.clock.advance(Duration::from_secs(3));
    put().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_records_calls_per_second_exceeded() {
    let env = Env::start().await;
    env.create("tpr", 1).await;
    env.kds
        .put_record()
        .stream_name("tpr")
        .partition_key("a")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
    let mut it = env
        .iterator("tpr", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    env.tick();
    for _ in 0..5 {
        let page = env.kds.get_records().shard_iterator(&it).send().await.unwrap();
        it = page.next_shard_iterator().unwrap().to_owned();
    }
    let sixth = env.kds.get_records().shard_iterator(&it).send().await;
    match sixth {
        Err(e) => {
            assert_eq!(e.code(), Some("ProvisionedThroughputExceededException"), "{e:?}");
            assert!(matches!(
                e.as_service_error(),
                Some(kinesis::operation::get_records::GetRecordsError::ProvisionedThroughputExceededException(_))
            ));
        }
        Ok(_) => panic!("a 6th GetRecords in one second was served"),
    }
    // The iterator is still good after the throttle, a second later.
    env.tick();
    env.kds.get_records().shard_iterator(&it).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_is_not_throttled_at_provisioned_limits() {
    let env = Env::start().await;
    env.kds
        .create_stream()
        .stream_name("odt")
        .stream_mode_details(
            StreamModeDetails::builder().stream_mode(StreamMode::OnDemand).build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    env.wait_active("odt").await;
    // 1,500 records with one key (one shard) in one second: over the provisioned per-shard
    // limit, within on-demand's (AWS: up to 2× the previous peak, 4 MB/s per new stream).
    for b in 0..3 {
        let entries: Vec<_> = (0..500).map(|i| entry("same", format!("{b}-{i}"))).collect();
        let r = env
            .kds
            .put_records()
            .stream_name("odt")
            .set_records(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(r.failed_record_count(), Some(0));
    }
}

// ---------------------------------------------------------------------------------------------
// Iterators: expiry and tampering
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iterators_expire_after_five_minutes() {
    let env = Env::start().await;
    env.create("exp", 1).await;
    env.kds
        .put_record()
        .stream_name("exp")
        .partition_key("a")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
    let it = env
        .iterator("exp", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    let fresh = env
        .iterator("exp", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    env.clock.advance(Duration::from_secs(299));
    // Still valid just before five minutes; its NextShardIterator is new.
    let page = env.kds.get_records().shard_iterator(&fresh).send().await.unwrap();
    assert_eq!(page.records().len(), 1);
    let next = page.next_shard_iterator().unwrap().to_owned();
    env.clock.advance(Duration::from_secs(2));
    let e = env.kds.get_records().shard_iterator(&it).send().await;
    match e {
        Err(e) => {
            assert_eq!(e.code(), Some("ExpiredIteratorException"), "{e:?}");
            assert!(matches!(
                e.as_service_error(),
                Some(kinesis::operation::get_records::GetRecordsError::ExpiredIteratorException(_))
            ));
        }
        Ok(_) => panic!("a 301-second-old iterator was accepted"),
    }
    env.kds.get_records().shard_iterator(&next).send().await.unwrap();
    env.clock.advance(Duration::from_secs(301));
    assert_eq!(
        code(env.kds.get_records().shard_iterator(&next).send().await),
        "ExpiredIteratorException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_iterators_are_rejected() {
    let env = Env::start().await;
    env.create("tam", 2).await;
    env.create("tam2", 1).await;
    env.kds
        .put_record()
        .stream_name("tam")
        .partition_key("a")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
    let it = env
        .iterator("tam", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    // Flip one character at a time at several positions.
    let chars: Vec<char> = it.chars().collect();
    for pos in [0, chars.len() / 3, chars.len() / 2, chars.len().saturating_sub(5)] {
        let mut t = chars.clone();
        t[pos] = if t[pos] == 'A' { 'B' } else { 'A' };
        let t: String = t.into_iter().collect();
        env.tick();
        let e = env.kds.get_records().shard_iterator(&t).send().await;
        assert_eq!(code(e), "InvalidArgumentException", "flipped position {pos}");
    }
    for junk in ["x", "not-an-iterator", &"A".repeat(300)] {
        env.tick();
        assert_eq!(
            code(env.kds.get_records().shard_iterator(junk).send().await),
            "InvalidArgumentException"
        );
    }
    // The genuine one still works.
    env.tick();
    let page = env.kds.get_records().shard_iterator(&it).send().await.unwrap();
    assert_eq!(page.records().len(), 1);
    // An iterator of a deleted stream: ResourceNotFoundException.
    let it2 = env
        .iterator("tam2", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    env.kds.delete_stream().stream_name("tam2").send().await.unwrap();
    for _ in 0..200 {
        if env.kds.describe_stream_summary().stream_name("tam2").send().await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.tick();
    assert_eq!(
        code(env.kds.get_records().shard_iterator(&it2).send().await),
        "ResourceNotFoundException"
    );
}

// ---------------------------------------------------------------------------------------------
// Validation errors
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_through_the_sdk() {
    let env = Env::start().await;
    env.create("v", 1).await;
    let k = &env.kds;

    // Stream names: [a-zA-Z0-9_.-]{1,128}.
    for bad in ["has space", "slash/name", "ünï", &"n".repeat(129), "star*"] {
        let e = k.create_stream().stream_name(bad).shard_count(1).send().await;
        assert_eq!(code(e), "ValidationException", "CreateStream {bad:?}");
        let e = k.describe_stream().stream_name(bad).send().await;
        assert_eq!(code(e), "ValidationException", "DescribeStream {bad:?}");
    }
    let e = k.create_stream().stream_name("").shard_count(1).send().await;
    assert_eq!(code(e), "ValidationException", "empty name");
    k.create_stream().stream_name("n".repeat(128)).shard_count(1).send().await.unwrap();
    k.create_stream().stream_name("ok_name-1.2").shard_count(1).send().await.unwrap();
    // ShardCount ≥ 1.
    let e = k.create_stream().stream_name("zero").shard_count(0).send().await;
    assert_eq!(code(e), "ValidationException");

    // Unknown stream and shard.
    assert_eq!(
        code(k.describe_stream().stream_name("nope").send().await),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(k.delete_stream().stream_name("nope").send().await),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(
            k.put_record().stream_name("nope").partition_key("a").data(Blob::new("x")).send().await
        ),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(k.put_records().stream_name("nope").records(entry("a", "x")).send().await),
        "ResourceNotFoundException"
    );
    let e = k
        .get_shard_iterator()
        .stream_name("nope")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await;
    assert_eq!(code(e), "ResourceNotFoundException");
    let e = k
        .get_shard_iterator()
        .stream_name("v")
        .shard_id("shardId-000000000007")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await;
    assert_eq!(code(e), "ResourceNotFoundException");
    assert_eq!(
        code(
            k.split_shard()
                .stream_name("nope")
                .shard_to_split("shardId-000000000000")
                .new_starting_hash_key("1")
                .send()
                .await
        ),
        "ResourceNotFoundException"
    );

    // Records: Data ≤ 1 MiB (model constraint), partition key 1–256 characters.
    let e = k
        .put_record()
        .stream_name("v")
        .partition_key("a")
        .data(Blob::new(vec![0u8; 1024 * 1024 + 1]))
        .send()
        .await;
    assert_eq!(code(e), "ValidationException", "record over 1 MiB");
    // Exactly 1 MiB of data plus the key exceeds the 1 MiB record limit.
    let e = k
        .put_record()
        .stream_name("v")
        .partition_key("a")
        .data(Blob::new(vec![0u8; 1024 * 1024]))
        .send()
        .await;
    let c = code(e);
    assert!(
        c == "InvalidArgumentException" || c == "ValidationException",
        "data+key over 1 MiB: {c}"
    );
    let e = k
        .put_record()
        .stream_name("v")
        .partition_key("k".repeat(257))
        .data(Blob::new("x"))
        .send()
        .await;
    assert_eq!(code(e), "ValidationException", "partition key over 256");
    let e = k.put_record().stream_name("v").partition_key("").data(Blob::new("x")).send().await;
    assert_eq!(code(e), "ValidationException", "empty partition key");
    k.put_record()
        .stream_name("v")
        .partition_key("k".repeat(256))
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
    // ExplicitHashKey: a decimal in 0..2^128.
    for bad in ["-1", "abc", "1.5", "007"] {
        let e = k
            .put_record()
            .stream_name("v")
            .partition_key("a")
            .explicit_hash_key(bad)
            .data(Blob::new("x"))
            .send()
            .await;
        let c = code(e);
        assert!(
            c == "ValidationException" || c == "InvalidArgumentException",
            "ExplicitHashKey {bad}: {c}"
        );
    }
    let e = k
        .put_record()
        .stream_name("v")
        .partition_key("a")
        .explicit_hash_key("340282366920938463463374607431768211456")
        .data(Blob::new("x"))
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException", "ExplicitHashKey = 2^128");

    // PutRecords: 1–500 records, ≤ 5 MiB in total.
    let e = k
        .put_records()
        .stream_name("v")
        .set_records(Some((0..501).map(|i| entry(&i.to_string(), "x")).collect()))
        .send()
        .await;
    assert_eq!(code(e), "ValidationException", "501 records");
    let e = k.put_records().stream_name("v").set_records(Some(vec![])).send().await;
    assert_eq!(code(e), "ValidationException", "0 records");
    let big = vec![1u8; 600 * 1024];
    let e = k
        .put_records()
        .stream_name("v")
        .set_records(Some((0..10).map(|i| entry(&i.to_string(), big.clone())).collect()))
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException", "PutRecords over 5 MiB");
    let e = k
        .put_records()
        .stream_name("v")
        .records(entry("a", vec![0u8; 1024 * 1024 + 1]))
        .send()
        .await;
    assert_eq!(code(e), "ValidationException", "PutRecords record over 1 MiB");

    // GetShardIterator: sequence number required for AT_/AFTER_, timestamp for AT_TIMESTAMP.
    let gsi = |t: ShardIteratorType| {
        k.get_shard_iterator()
            .stream_name("v")
            .shard_id("shardId-000000000000")
            .shard_iterator_type(t)
    };
    assert_eq!(
        code(gsi(ShardIteratorType::AtSequenceNumber).send().await),
        "InvalidArgumentException"
    );
    assert_eq!(
        code(gsi(ShardIteratorType::AfterSequenceNumber).send().await),
        "InvalidArgumentException"
    );
    assert_eq!(code(gsi(ShardIteratorType::AtTimestamp).send().await), "InvalidArgumentException");
    let e = gsi(ShardIteratorType::AtSequenceNumber).starting_sequence_number("12abc").send().await;
    assert_eq!(code(e), "ValidationException", "malformed sequence number");
    // A well-formed number that came from another shard (AWS: "… is invalid because it did
    // not come from this stream" / kinesalite: "It encodes shardId-000000000001").
    env.create("v2", 2).await;
    let foreign = k
        .put_record()
        .stream_name("v2")
        .partition_key("a")
        .explicit_hash_key(u128::MAX.to_string())
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.shard_id(), "shardId-000000000001");
    let e = gsi(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(foreign.sequence_number())
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException", "sequence number of another shard");
    let e = k
        .get_shard_iterator()
        .stream_name("v")
        .shard_id("bogus")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await;
    let c = code(e);
    assert!(
        c == "ResourceNotFoundException"
            || c == "ValidationException"
            || c == "InvalidArgumentException",
        "{c}"
    );

    // GetRecords Limit 1–10,000.
    let it =
        env.iterator("v", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None).await;
    env.tick();
    assert_eq!(
        code(k.get_records().shard_iterator(&it).limit(0).send().await),
        "ValidationException"
    );
    env.tick();
    assert_eq!(
        code(k.get_records().shard_iterator(&it).limit(10_001).send().await),
        "ValidationException"
    );

    // Limits on list calls.
    assert_eq!(code(k.list_streams().limit(0).send().await), "ValidationException");
    assert_eq!(
        code(k.list_shards().stream_name("v").max_results(0).send().await),
        "ValidationException"
    );
    // Resharding arguments.
    let e = k
        .split_shard()
        .stream_name("v")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("x1")
        .send()
        .await;
    assert_eq!(code(e), "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_on_the_wire() {
    let env = Env::start().await;
    env.create("w", 1).await;
    // Missing required members (AWS: 1 validation error … Member must not be null).
    assert_eq!(raw_error(&env, "CreateStream", r#"{"ShardCount":1}"#).await, "ValidationException");
    assert_eq!(
        raw_error(&env, "PutRecord", r#"{"StreamName":"w","Data":"eA=="}"#).await,
        "ValidationException"
    );
    assert_eq!(
        raw_error(&env, "PutRecord", r#"{"StreamName":"w","PartitionKey":"a"}"#).await,
        "ValidationException"
    );
    assert_eq!(raw_error(&env, "PutRecords", r#"{"StreamName":"w"}"#).await, "ValidationException");
    assert_eq!(
        raw_error(&env, "PutRecords", r#"{"StreamName":"w","Records":[{"PartitionKey":"a"}]}"#)
            .await,
        "ValidationException"
    );
    assert_eq!(
        raw_error(
            &env,
            "GetShardIterator",
            r#"{"StreamName":"w","ShardId":"shardId-000000000000"}"#
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        raw_error(&env, "GetShardIterator", r#"{"StreamName":"w","ShardIteratorType":"LATEST"}"#)
            .await,
        "ValidationException"
    );
    assert_eq!(raw_error(&env, "GetRecords", r#"{}"#).await, "ValidationException");
    assert_eq!(
        raw_error(
            &env,
            "SplitShard",
            r#"{"StreamName":"w","ShardToSplit":"shardId-000000000000"}"#
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        raw_error(
            &env,
            "MergeShards",
            r#"{"StreamName":"w","ShardToMerge":"shardId-000000000000"}"#
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        raw_error(&env, "IncreaseStreamRetentionPeriod", r#"{"StreamName":"w"}"#).await,
        "ValidationException"
    );
    assert_eq!(
        raw_error(&env, "AddTagsToStream", r#"{"StreamName":"w"}"#).await,
        "ValidationException"
    );
    assert_eq!(
        raw_error(&env, "RegisterStreamConsumer", r#"{"ConsumerName":"c"}"#).await,
        "ValidationException"
    );
    assert_eq!(
        raw_error(&env, "UpdateShardCount", r#"{"StreamName":"w","TargetShardCount":2}"#).await,
        "ValidationException"
    );
    // Neither StreamName nor StreamARN.
    let c = raw_error(&env, "DescribeStreamSummary", r#"{}"#).await;
    assert!(c == "ValidationException" || c == "InvalidArgumentException", "{c}");
    // Enum values outside the model.
    assert_eq!(
        raw_error(
            &env,
            "GetShardIterator",
            r#"{"StreamName":"w","ShardId":"shardId-000000000000","ShardIteratorType":"SOMETIMES"}"#
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        raw_error(
            &env,
            "UpdateShardCount",
            r#"{"StreamName":"w","TargetShardCount":2,"ScalingType":"RANDOM"}"#
        )
        .await,
        "ValidationException"
    );
    // Data that is not base64; members of the wrong type; malformed JSON.
    let c =
        raw_error(&env, "PutRecord", r#"{"StreamName":"w","PartitionKey":"a","Data":"!!!"}"#).await;
    assert!(c == "SerializationException" || c == "ValidationException", "{c}");
    assert_eq!(
        raw_error(&env, "CreateStream", r#"{"StreamName":"t","ShardCount":"two"}"#).await,
        "SerializationException"
    );
    assert_eq!(
        raw_error(&env, "CreateStream", r#"{"StreamName":"t","ShardCount":1"#).await,
        "SerializationException"
    );
    // Unknown operation.
    assert_eq!(raw_error(&env, "FlyToTheMoon", "{}").await, "UnknownOperationException");
    // Unknown members are ignored (forward compatibility), as AWS does.
    let (status, v) =
        raw(&env, "DescribeStreamSummary", r#"{"StreamName":"w","FutureMember":1}"#).await;
    assert_eq!(status, 200, "{v}");
    // Content type of responses.
    let resp = env
        .server
        .http
        .post(env.server.url("/"))
        .header("X-Amz-Target", "Kinesis_20131202.DescribeStreamSummary")
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(r#"{"StreamName":"w"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-amz-json-1.1");
    assert!(resp.headers().contains_key("x-amzn-requestid"), "x-amzn-RequestId header");
    // Unsigned requests are accepted while authentication is off (raw() sends no signature).
}

// ---------------------------------------------------------------------------------------------
// Retention, driven by the manual clock
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_old_records_and_expired_shards() {
    let env = Env::start_with(|c| {
        c.data_streams.min_retention_hours = 1;
        // Small segments, rolled by age too, so that retention (whole segments) is precise;
        // no background pass during the test.
        c.storage.segment_max_bytes = 4096;
        c.storage.segment_max_age_secs = 60;
        c.storage.retention_interval_secs = 3600;
    })
    .await;
    let k = &env.kds;
    env.create("ret", 1).await;
    env.create("ret-split", 1).await;
    k.decrease_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(1)
        .send()
        .await
        .unwrap();
    k.decrease_stream_retention_period()
        .stream_name("ret-split")
        .retention_period_hours(1)
        .send()
        .await
        .unwrap();
    let e = k
        .decrease_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(0)
        .send()
        .await;
    let c = code(e);
    assert!(c == "InvalidArgumentException" || c == "ValidationException", "0 hours: {c}");
    let s = k.describe_stream_summary().stream_name("ret").send().await.unwrap();
    assert_eq!(s.stream_description_summary().unwrap().retention_period_hours(), 1);

    let put = |i: usize, tag: &str| {
        k.put_record()
            .stream_name("ret")
            .partition_key("p")
            .data(Blob::new(format!("{tag}-{i}-{}", "x".repeat(1000))))
            .send()
    };
    let mut old = Vec::new();
    for i in 0..20 {
        old.push(put(i, "old").await.unwrap().sequence_number().to_owned());
    }
    k.put_record()
        .stream_name("ret-split")
        .partition_key("p")
        .data(Blob::new("old"))
        .send()
        .await
        .unwrap();
    k.split_shard()
        .stream_name("ret-split")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    env.wait_active("ret-split").await;

    env.clock.advance(Duration::from_secs(40 * 60));
    let mut new = Vec::new();
    for i in 0..20 {
        new.push(put(i, "new").await.unwrap().sequence_number().to_owned());
    }
    // Nothing is old enough yet.
    let deleted = env.server.state.data.enforce_retention();
    assert!(deleted.is_empty(), "{} deletions before retention", deleted.len());
    let it = env
        .iterator("ret", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    assert_eq!(env.drain(it).await.0.len(), 40);

    // 61 minutes after the old records: they go, the new ones stay.
    env.clock.advance(Duration::from_secs(21 * 60));
    let stale = env
        .iterator("ret", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    let stale_at = env
        .iterator(
            "ret",
            "shardId-000000000000",
            ShardIteratorType::AtSequenceNumber,
            Some(&old[5]),
            None,
        )
        .await;
    let deleted = env.server.state.data.enforce_retention();
    assert!(!deleted.is_empty(), "the retention pass deleted nothing");

    let it = env
        .iterator("ret", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    let (recs, _) = env.drain(it).await;
    let seqs: Vec<String> = recs.iter().map(|r| r.sequence_number().to_owned()).collect();
    assert_eq!(seqs, new, "TRIM_HORIZON now starts at the first unexpired record");
    // Iterators taken before the pass skip what was deleted (they start at the trim horizon).
    let (recs, _) = env.drain(stale).await;
    assert_eq!(recs.iter().map(|r| r.sequence_number().to_owned()).collect::<Vec<_>>(), new);
    let (recs, _) = env.drain(stale_at).await;
    assert_eq!(recs.iter().map(|r| r.sequence_number().to_owned()).collect::<Vec<_>>(), new);
    // AT_TIMESTAMP before the horizon: the same.
    let it = env
        .iterator(
            "ret",
            "shardId-000000000000",
            ShardIteratorType::AtTimestamp,
            None,
            Some(DateTime::from_millis(0)),
        )
        .await;
    assert_eq!(env.drain(it).await.0.len(), 20);

    // The closed parent of ret-split has lost its records and closed more than an hour ago:
    // it is no longer listed, its children are.
    let ids: Vec<String> =
        env.shards("ret-split").await.iter().map(|s| s.shard_id().to_owned()).collect();
    assert_eq!(ids, ["shardId-000000000001", "shardId-000000000002"]);
}
