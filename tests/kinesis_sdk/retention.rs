//! Retention, driven by the manual clock.

use crate::harness::*;

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
        c.storage.segment_max_age_secs = std::time::Duration::from_secs(60);
        c.storage.retention_interval_secs = std::time::Duration::from_secs(3600);
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
