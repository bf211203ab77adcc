//! Validation errors.

use crate::harness::*;

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

    // Records: Data ≤ 10 MiB (model constraint), data + key ≤ the stream's MaxRecordSizeInKiB
    // (1024 unless raised), partition key 1–256 characters.
    let e = k
        .put_record()
        .stream_name("v")
        .partition_key("a")
        .data(Blob::new(vec![0u8; 10 * 1024 * 1024 + 1]))
        .send()
        .await;
    assert_eq!(code(e), "ValidationException", "record over 10 MiB");
    // Exactly 1 MiB of data plus the key exceeds the stream's 1 MiB record limit.
    let e = k
        .put_record()
        .stream_name("v")
        .partition_key("a")
        .data(Blob::new(vec![0u8; 1024 * 1024]))
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException", "data+key over the stream's 1024 KiB");
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

    // PutRecords: 1–500 records, ≤ 10 MiB in total.
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
        .set_records(Some((0..18).map(|i| entry(&i.to_string(), big.clone())).collect()))
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException", "PutRecords over 10 MiB");
    let e = k
        .put_records()
        .stream_name("v")
        .records(entry("a", vec![0u8; 1024 * 1024 + 1]))
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException", "PutRecords record over the stream's 1 MiB");
    let e = k
        .put_records()
        .stream_name("v")
        .records(entry("a", vec![0u8; 10 * 1024 * 1024 + 1]))
        .send()
        .await;
    assert_eq!(code(e), "ValidationException", "PutRecords record over 10 MiB");

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
