//! ON_DEMAND capacity: the per-shard limits, the scaler splitting a hot key range (lineage,
//! nothing lost or reordered per partition key), a single hot key left alone, warm throughput,
//! and the account's settings.

use super::harness::*;
use kinesis::types::{
    MinimumThroughputBillingCommitmentInput, MinimumThroughputBillingCommitmentInputStatus as In,
    MinimumThroughputBillingCommitmentOutputStatus as Out,
};

const QUARTER: u128 = u128::MAX / 4;

async fn create_on_demand(env: &Env, name: &str, warm: Option<i32>) {
    env.kds
        .create_stream()
        .stream_name(name)
        .stream_mode_details(
            StreamModeDetails::builder().stream_mode(StreamMode::OnDemand).build().unwrap(),
        )
        .set_warm_throughput_mibps(warm)
        .send()
        .await
        .unwrap();
    env.wait_active(name).await;
}

/// `n` partition keys whose hashes fall in `[lo, hi]`.
fn keys_in(lo: u128, hi: u128, n: usize) -> Vec<String> {
    (0..).map(|i| format!("key-{i}")).filter(|k| (lo..=hi).contains(&md5_hash(k))).take(n).collect()
}

/// PutRecords `records` (key, data); returns (key, data, sequence number) of the accepted ones
/// and how many were throttled.
async fn put(
    env: &Env,
    name: &str,
    records: &[(String, String)],
) -> (Vec<(String, String, String)>, usize) {
    let entries: Vec<_> = records.iter().map(|(k, d)| entry(k, d.clone())).collect();
    let r =
        env.kds.put_records().stream_name(name).set_records(Some(entries)).send().await.unwrap();
    let mut ok = Vec::new();
    let mut throttled = 0;
    for ((k, d), e) in records.iter().zip(r.records()) {
        match e.error_code() {
            None => ok.push((k.clone(), d.clone(), e.sequence_number().unwrap().to_owned())),
            Some("ProvisionedThroughputExceededException") => {
                assert!(e.error_message().unwrap().contains("Rate exceeded for shard"), "{e:?}");
                throttled += 1;
            }
            Some(other) => panic!("unexpected per-record error {other}: {e:?}"),
        }
    }
    assert_eq!(r.failed_record_count(), Some(throttled as i32));
    (ok, throttled)
}

/// Polls ListShards (the scaler runs once a second) until `done` holds.
async fn wait_shards(env: &Env, name: &str, done: impl Fn(&[Shard]) -> bool) -> Vec<Shard> {
    for _ in 0..100 {
        let shards = env.shards(name).await;
        if done(&shards) {
            return shards;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the on-demand scaler never reached the expected shards: {:#?}", env.shards(name).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_key_range_splits_with_lineage_and_keeps_every_key_in_order() {
    let env =
        Env::start_with(|c| c.data_streams.on_demand_scale_secs = Duration::from_secs(5)).await;
    create_on_demand(&env, "od", None).await;
    let s = env.kds.describe_stream_summary().stream_name("od").send().await.unwrap();
    let d = s.stream_description_summary().unwrap();
    assert_eq!(d.open_shard_count(), 4, "4 MiB/s and 4,000 records/s to start");
    let w = d.warm_throughput().expect("WarmThroughput of an ON_DEMAND stream");
    assert_eq!((w.target_mibps(), w.current_mibps()), (Some(0), Some(4)));

    // Shard 0 (the lowest quarter) gets 1,200 records over 40 keys in one second: 1,000 pass,
    // 200 are throttled (on-demand shards keep the per-shard limits). Shard 3 gets 800 records
    // of one key: hot too, but one key cannot be split. Shards 1 and 2 get a trickle.
    let hot = keys_in(0, QUARTER, 40);
    let solo = keys_in(3 * QUARTER + 3, u128::MAX, 1).remove(0);
    let cold = keys_in(QUARTER + 1, 3 * QUARTER, 10);
    env.tick();
    let mut accepted = Vec::new();
    let mut throttled = 0;
    for batch in 0..3 {
        let recs: Vec<(String, String)> =
            (0..400).map(|i| (hot[i % hot.len()].clone(), format!("hot-{batch}-{i}"))).collect();
        let (ok, t) = put(&env, "od", &recs).await;
        accepted.extend(ok);
        throttled += t;
    }
    assert_eq!(throttled, 200, "1,000 records per second per shard");
    for batch in 0..2 {
        let recs: Vec<(String, String)> =
            (0..400).map(|i| (solo.clone(), format!("solo-{batch}-{i}"))).collect();
        accepted.extend(put(&env, "od", &recs).await.0);
    }
    let recs: Vec<(String, String)> =
        cold.iter().enumerate().map(|(i, k)| (k.clone(), format!("cold-{i}"))).collect();
    accepted.extend(put(&env, "od", &recs).await.0);

    // The window ends; the scaler splits shard 0 only.
    env.clock.advance(Duration::from_secs(5));
    let shards = wait_shards(&env, "od", |s| s.len() > 4).await;
    assert_eq!(shards.len(), 6, "one split: {shards:#?}");
    let parent = &shards[0];
    assert_eq!(parent.shard_id(), "shardId-000000000000");
    assert!(!is_open(parent), "the hot shard is closed");
    for s in &shards[1..4] {
        assert!(is_open(s), "{} stays open", s.shard_id());
    }
    let children = &shards[4..];
    let (plo, phi) = range_of(parent);
    let (a_lo, a_hi) = range_of(&children[0]);
    let (b_lo, b_hi) = range_of(&children[1]);
    assert_eq!((a_lo, a_hi + 1, b_hi), (plo, b_lo, phi), "children cover the parent exactly");
    for c in children {
        assert_eq!(c.parent_shard_id(), Some("shardId-000000000000"));
        assert_eq!(c.adjacent_parent_shard_id(), None);
        let (lo, hi) = range_of(c);
        let n = hot.iter().filter(|k| (lo..=hi).contains(&md5_hash(k))).count();
        assert!((10..=30).contains(&n), "the split divides the hot keys' load: {n} of 40");
    }
    let s = env.kds.describe_stream_summary().stream_name("od").send().await.unwrap();
    let w = s.stream_description_summary().unwrap().warm_throughput().unwrap().clone();
    assert_eq!(w.current_mibps(), Some(5));

    // Writes after the split go to the children; every key reads back complete and in order,
    // parent first (as a KCL consumer reads lineage).
    env.tick();
    let recs: Vec<(String, String)> =
        (0..200).map(|i| (hot[i % hot.len()].clone(), format!("after-{i}"))).collect();
    let (ok, t) = put(&env, "od", &recs).await;
    assert_eq!(t, 0);
    accepted.extend(ok);
    let mut got: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for s in &shards {
        let it = env.iterator("od", s.shard_id(), ShardIteratorType::TrimHorizon, None, None).await;
        let (records, _) = env.drain(it).await;
        for r in records {
            got.entry(r.partition_key().unwrap().to_owned()).or_default().push((
                String::from_utf8(r.data().as_ref().to_vec()).unwrap(),
                r.sequence_number().to_owned(),
            ));
        }
    }
    let mut want: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (k, d, seq) in accepted {
        want.entry(k).or_default().push((d, seq));
    }
    assert_eq!(got.len(), want.len());
    for (k, w) in &want {
        assert_eq!(got.get(k), Some(w), "key {k}: every accepted record, in order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_throughput_opens_capacity_at_once_and_only_for_on_demand() {
    let env = Env::start().await;
    create_on_demand(&env, "warm", Some(10)).await;
    let shards = env.shards("warm").await;
    assert_eq!(shards.len(), 10, "10 MiB/s warm: 10 uniform shards from the start");
    env.tick();
    let arn = env.arn("warm").await;
    let r = env
        .kds
        .update_stream_warm_throughput()
        .stream_arn(&arn)
        .warm_throughput_mibps(40)
        .send()
        .await
        .unwrap();
    assert_eq!(r.stream_name(), Some("warm"));
    let w = r.warm_throughput().unwrap();
    assert_eq!((w.target_mibps(), w.current_mibps()), (Some(40), Some(40)));
    let open: Vec<Shard> = env.shards("warm").await.into_iter().filter(is_open).collect();
    assert_eq!(open.len(), 40);
    let mut covered: Vec<(u128, u128)> = open.iter().map(range_of).collect();
    covered.sort();
    assert_eq!(covered[0].0, 0);
    assert_eq!(covered.last().unwrap().1, u128::MAX);
    assert!(covered.windows(2).all(|w| w[0].1 + 1 == w[1].0), "open ranges tile the key space");
    assert!(open.iter().all(|s| s.parent_shard_id().is_some()), "each new shard names its parent");

    // A lower target is recorded; capacity stays.
    let r = env
        .kds
        .update_stream_warm_throughput()
        .stream_name("warm")
        .warm_throughput_mibps(5)
        .send()
        .await
        .unwrap();
    let w = r.warm_throughput().unwrap();
    assert_eq!((w.target_mibps(), w.current_mibps()), (Some(5), Some(40)));

    let e = env
        .kds
        .update_stream_warm_throughput()
        .stream_name("warm")
        .warm_throughput_mibps(100_000)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("LimitExceededException"), "{e:?}");
    env.create("prov", 1).await;
    let e = env
        .kds
        .update_stream_warm_throughput()
        .stream_name("prov")
        .warm_throughput_mibps(5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidArgumentException"), "{e:?}");
    let s = env.kds.describe_stream_summary().stream_name("prov").send().await.unwrap();
    assert!(s.stream_description_summary().unwrap().warm_throughput().is_none());
    let e = env
        .kds
        .create_stream()
        .stream_name("prov2")
        .shard_count(1)
        .warm_throughput_mibps(5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidArgumentException"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_billing_commitment_is_kept_for_at_least_a_day() {
    let env = Env::start().await;
    let r = env.kds.describe_account_settings().send().await.unwrap();
    assert_eq!(r.minimum_throughput_billing_commitment().unwrap().status(), &Out::Disabled);
    let set = |s: In| {
        env.kds.update_account_settings().minimum_throughput_billing_commitment(
            MinimumThroughputBillingCommitmentInput::builder().status(s).build().unwrap(),
        )
    };
    let r = set(In::Enabled).send().await.unwrap();
    let c = r.minimum_throughput_billing_commitment().unwrap();
    assert_eq!(c.status(), &Out::Enabled);
    let started = c.started_at().unwrap().secs();
    assert_eq!(started, env.now().secs());
    assert_eq!(c.earliest_allowed_end_at().unwrap().secs(), started + 24 * 3600);
    // Disabling early schedules the end; enabling again cancels it.
    let r = set(In::Disabled).send().await.unwrap();
    assert_eq!(
        r.minimum_throughput_billing_commitment().unwrap().status(),
        &Out::EnabledUntilEarliestAllowedEnd
    );
    let r = set(In::Enabled).send().await.unwrap();
    assert_eq!(r.minimum_throughput_billing_commitment().unwrap().status(), &Out::Enabled);
    set(In::Disabled).send().await.unwrap();
    env.clock.advance(Duration::from_secs(25 * 3600));
    let r = env.kds.describe_account_settings().send().await.unwrap();
    let c = r.minimum_throughput_billing_commitment().unwrap();
    assert_eq!(c.status(), &Out::Disabled);
    assert_eq!(c.ended_at().unwrap().secs(), started + 24 * 3600);
    let (status, v) = raw(
        &env,
        "UpdateAccountSettings",
        r#"{"MinimumThroughputBillingCommitment":{"Status":"MAYBE"}}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        v,
        json!({
            "__type": "ValidationException",
            "message": "1 validation error detected: Value 'MAYBE' at 'minimumThroughputBillingCommitment.status' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]"
        })
    );
}
