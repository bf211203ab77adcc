//! The harness: a server with a manual clock, the SDK client on it, and helpers.

#![allow(dead_code)]

pub use std::collections::{BTreeMap, HashMap, HashSet};
pub use std::sync::Arc;
pub use std::time::Duration;

pub use crate::common::*;
pub use aws_sdk_kinesis as kinesis;
pub use kinesis::Client;
pub use kinesis::error::ProvideErrorMetadata;
pub use kinesis::primitives::{Blob, DateTime};
pub use kinesis::types::{
    ConsumerStatus, PutRecordsRequestEntry, Record, ScalingType, Shard, ShardFilter,
    ShardFilterType, ShardIteratorType, StreamMode, StreamModeDetails, StreamStatus,
};
pub use md5::{Digest, Md5};
pub use rand::Rng;
pub use serde_json::{Value, json};
pub use sluice::clock::{ManualClock, Timestamp};

pub const MAX_HASH: u128 = u128::MAX;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A server with a manual clock and an SDK client pointed at it (no retries: every exception
/// surfaces to the test).
pub struct Env {
    pub server: TestServer,
    pub clock: Arc<ManualClock>,
    pub kds: Client,
}

pub fn t0() -> Timestamp {
    Timestamp::parse_api("2026-03-01T00:00:00Z").unwrap()
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut sluice::config::Config)) -> Env {
        let clock = Arc::new(ManualClock::new(t0()));
        let server = TestServer::start_with(tweak, clock.clone()).await;
        let kds = kinesis_client(&server.base);
        Env { server, clock, kds }
    }

    /// One second passes: keeps paced calls under the per-shard limits of provisioned mode
    /// (1,000 records/s and 5 GetRecords/s).
    pub fn tick(&self) {
        self.clock.advance(Duration::from_secs(1));
    }

    pub fn now(&self) -> DateTime {
        DateTime::from_millis(sluice::clock::Clock::now(&*self.clock).as_millis())
    }

    pub async fn create(&self, name: &str, shards: i32) {
        self.kds.create_stream().stream_name(name).shard_count(shards).send().await.unwrap();
        self.wait_active(name).await;
    }

    /// Stream status may go CREATING/UPDATING → ACTIVE at once, but must get there.
    pub async fn wait_active(&self, name: &str) {
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

    pub async fn arn(&self, name: &str) -> String {
        let s = self.kds.describe_stream_summary().stream_name(name).send().await.unwrap();
        s.stream_description_summary().unwrap().stream_arn().to_owned()
    }

    /// Every shard (ListShards, all pages).
    pub async fn shards(&self, name: &str) -> Vec<Shard> {
        self.shards_filtered(name, None).await
    }

    pub async fn shards_filtered(&self, name: &str, filter: Option<ShardFilter>) -> Vec<Shard> {
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

    pub async fn iterator(
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
    pub async fn drain(
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

pub fn md5_hash(key: &str) -> u128 {
    let d = Md5::digest(key.as_bytes());
    u128::from_be_bytes(d.into())
}

pub fn range_of(s: &Shard) -> (u128, u128) {
    let r = s.hash_key_range().expect("HashKeyRange");
    (r.starting_hash_key().parse().unwrap(), r.ending_hash_key().parse().unwrap())
}

pub fn shard_for(shards: &[Shard], hash: u128) -> &str {
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

pub fn is_open(s: &Shard) -> bool {
    s.sequence_number_range().expect("SequenceNumberRange").ending_sequence_number().is_none()
}

/// Sequence numbers are decimal strings (model pattern `0|([1-9]\d{0,128})`), compared
/// numerically.
pub fn seq_key(s: &str) -> (usize, String) {
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
pub fn code<T, E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
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

pub async fn raw(env: &Env, op: &str, body: &str) -> (u16, Value) {
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

pub async fn raw_error(env: &Env, op: &str, body: &str) -> String {
    let (status, v) = raw(env, op, body).await;
    assert_eq!(status, 400, "{op} {body}: {v}");
    assert!(v["message"].is_string() || v["Message"].is_string(), "{op}: message in {v}");
    v["__type"].as_str().unwrap_or_else(|| panic!("{op}: no __type in {v}")).to_owned()
}

pub fn entry(key: &str, data: impl Into<Vec<u8>>) -> PutRecordsRequestEntry {
    PutRecordsRequestEntry::builder()
        .partition_key(key)
        .data(Blob::new(data.into()))
        .build()
        .unwrap()
}

pub fn random_key(rng: &mut impl Rng) -> String {
    // ASCII and multi-byte characters: the hash is MD5 of the UTF-8 bytes.
    const ALPHABET: &[char] = &[
        'a', 'b', 'c', 'x', 'y', 'z', 'A', 'Q', '0', '7', '9', '-', '_', '.', ':', '/', ' ', 'é',
        'ß', '日', '本', '🎥',
    ];
    let len = rng.random_range(1..=40);
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())]).collect()
}
