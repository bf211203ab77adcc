//! CREATING, UPDATING and DELETING as AWS has them, with durations from the config (on the manual
//! clock): reads and writes wait for a created stream, changes for an ACTIVE one, writes go on
//! while a stream is UPDATING or DELETING, and a DELETING stream's name is not free until it is
//! gone.

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_pass_through_creating_and_updating() {
    let env = Env::start_with(|c| {
        c.data_streams.create_stream_ms = Duration::from_secs(2);
        c.data_streams.update_stream_ms = Duration::from_secs(3);
    })
    .await;
    let k = &env.kds;
    let status = || async {
        let s = k.describe_stream_summary().stream_name("st").send().await.unwrap();
        s.stream_description_summary().unwrap().stream_status().clone()
    };
    let put = || k.put_record().stream_name("st").partition_key("k").data(Blob::new("x")).send();
    k.create_stream().stream_name("st").shard_count(1).send().await.unwrap();
    assert_eq!(status().await, StreamStatus::Creating);
    assert_eq!(code(put().await), "ResourceNotFoundException", "no writes while CREATING");
    let split = || {
        k.split_shard()
            .stream_name("st")
            .shard_to_split("shardId-000000000000")
            .new_starting_hash_key((1u128 << 127).to_string())
            .send()
    };
    assert_eq!(code(split().await), "ResourceInUseException", "no changes while CREATING");

    env.clock.advance(Duration::from_secs(2));
    assert_eq!(status().await, StreamStatus::Active);
    put().await.unwrap();
    split().await.unwrap();
    assert_eq!(status().await, StreamStatus::Updating);
    put().await.unwrap();
    let more = k
        .update_shard_count()
        .stream_name("st")
        .target_shard_count(4)
        .scaling_type(kinesis::types::ScalingType::UniformScaling);
    let refused = code(more.clone().send().await);
    assert_eq!(refused, "ResourceInUseException", "no second change while UPDATING");
    env.clock.advance(Duration::from_secs(3));
    assert_eq!(status().await, StreamStatus::Active);
    more.send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_stream_is_deleting_for_a_while_then_gone() {
    let env = Env::start_with(|c| c.data_streams.delete_stream_ms = Duration::from_secs(4)).await;
    let k = &env.kds;
    env.create("del", 1).await;
    let put = || k.put_record().stream_name("del").partition_key("k").data(Blob::new("x")).send();
    put().await.unwrap();
    k.delete_stream().stream_name("del").send().await.unwrap();
    let s = k.describe_stream_summary().stream_name("del").send().await.unwrap();
    assert_eq!(s.stream_description_summary().unwrap().stream_status(), &StreamStatus::Deleting);
    // Reads and writes go on (as AWS allows); changes, a second delete and a new stream of the
    // name are refused.
    put().await.unwrap();
    let it = env
        .iterator("del", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    let (records, _) = env.drain(it).await;
    assert_eq!(records.len(), 2);
    let again = k.delete_stream().stream_name("del").send().await;
    assert_eq!(code(again), "ResourceInUseException");
    let retention = k
        .increase_stream_retention_period()
        .stream_name("del")
        .retention_period_hours(48)
        .send()
        .await;
    assert_eq!(code(retention), "ResourceInUseException");
    let create = k.create_stream().stream_name("del").shard_count(1).send().await;
    assert_eq!(code(create), "ResourceInUseException");
    let listed = k.list_streams().send().await.unwrap();
    assert!(listed.stream_names().iter().any(|n| n == "del"), "listed while DELETING");

    env.clock.advance(Duration::from_secs(4));
    let gone = k.describe_stream_summary().stream_name("del").send().await;
    assert_eq!(code(gone), "ResourceNotFoundException");
    assert_eq!(code(put().await), "ResourceNotFoundException");
    // The name is free again, for a new, empty stream.
    env.create("del", 1).await;
    let it = env
        .iterator("del", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    assert!(env.drain(it).await.0.is_empty());
}
