//! Unit tests of the Kinesis wire adapter: each operation's members, answers and errors.
use super::ops::*;
use super::*;
use crate::datastream::GetRecordsOutput;
use crate::datastream::testing::Fixture;
use serde_json::Value;
use std::sync::Arc;

async fn call(ds: &Arc<DataStreams>, op: &str, body: Value) -> (StatusCode, Value) {
    let target = format!("{TARGET_PREFIX}{op}");
    let (status, out) = dispatch(ds, Some(&target), body.to_string().as_bytes()).await;
    (status, serde_json::from_slice(&out).unwrap())
}

async fn error_type(ds: &Arc<DataStreams>, op: &str, body: Value) -> String {
    let (status, v) = call(ds, op, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    v["__type"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn roundtrip_over_json() {
    let fx = Fixture::new(false);
    let ds = fx.open();
    let (s, v) = call(&ds, "CreateStream", json!({"StreamName": "s", "ShardCount": 2})).await;
    assert_eq!((s, v), (StatusCode::OK, json!({})));
    let (s, v) = call(
        &ds,
        "PutRecord",
        json!({"StreamName": "s", "PartitionKey": "k", "Data": STANDARD.encode(b"hello")}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["EncryptionType"], "NONE");
    let shard = v["ShardId"].as_str().unwrap().to_owned();
    let seq = v["SequenceNumber"].as_str().unwrap().to_owned();
    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
    let (_, v) = call(
        &ds,
        "GetShardIterator",
        json!({"StreamARN": arn, "ShardId": shard, "ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": seq}),
    )
    .await;
    let it = v["ShardIterator"].as_str().unwrap().to_owned();
    let (s, v) = call(&ds, "GetRecords", json!({"ShardIterator": it, "Limit": 10})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["Records"][0]["Data"], STANDARD.encode(b"hello"));
    assert_eq!(v["Records"][0]["PartitionKey"], "k");
    assert_eq!(v["Records"][0]["SequenceNumber"], seq.as_str());
    assert!(v["Records"][0]["ApproximateArrivalTimestamp"].is_f64());
    assert!(v["NextShardIterator"].is_string());
    assert_eq!(v["MillisBehindLatest"], 0);
    let (_, v) = call(&ds, "DescribeStream", json!({"StreamName": "s"})).await;
    let d = &v["StreamDescription"];
    assert_eq!((d["StreamStatus"].as_str(), d["StreamARN"].as_str()), (Some("ACTIVE"), Some(arn)));
    assert_eq!(
        d["Shards"][1]["HashKeyRange"]["StartingHashKey"],
        "170141183460469231731687303715884105728"
    );
    let (_, v) = call(&ds, "ListStreams", json!({})).await;
    assert_eq!(v["StreamNames"], json!(["s"]));
    let (_, v) = call(&ds, "DescribeLimits", json!({})).await;
    assert_eq!(v["OpenShardCount"], 2);
    let (_, v) =
        call(&ds, "RegisterStreamConsumer", json!({"StreamARN": arn, "ConsumerName": "c"})).await;
    let carn = v["Consumer"]["ConsumerARN"].as_str().unwrap().to_owned();
    assert!(carn.starts_with("arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:"));
    let (_, v) = call(&ds, "DescribeStreamConsumer", json!({"ConsumerARN": carn})).await;
    assert_eq!(v["ConsumerDescription"]["StreamARN"], arn);
    assert_eq!(
        error_type(&ds, "DeleteStream", json!({"StreamName": "s"})).await,
        "ResourceInUseException"
    );
    let (s, _) =
        call(&ds, "DeleteStream", json!({"StreamName": "s", "EnforceConsumerDeletion": true}))
            .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn errors_carry_kinesis_types() {
    let fx = Fixture::new(false);
    let ds = fx.open();
    call(&ds, "CreateStream", json!({"StreamName": "s", "ShardCount": 1})).await;
    let (s, out) = dispatch(&ds, Some("Kinesis_20131202.Nope"), b"{}").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&out).contains("UnknownOperationException"));
    let (s, _) = dispatch(&ds, None, b"{}").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, out) = dispatch(&ds, Some("Kinesis_20131202.ListStreams"), b"{not json").await;
    assert!(String::from_utf8_lossy(&out).contains("SerializationException"));
    let cases = [
        ("CreateStream", json!({}), "ValidationException"),
        ("CreateStream", json!({"StreamName": "s", "ShardCount": 0}), "ValidationException"),
        ("CreateStream", json!({"StreamName": "bad name", "ShardCount": 1}), "ValidationException"),
        ("CreateStream", json!({"StreamName": "x"}), "InvalidArgumentException"),
        ("CreateStream", json!({"StreamName": "s", "ShardCount": 1}), "ResourceInUseException"),
        ("CreateStream", json!({"StreamName": "x", "ShardCount": "one"}), "SerializationException"),
        (
            "CreateStream",
            json!({"StreamName": "x", "StreamModeDetails": {"StreamMode": "FAST"}}),
            "ValidationException",
        ),
        ("DescribeStream", json!({}), "ValidationException"),
        ("DescribeStream", json!({"StreamName": "missing"}), "ResourceNotFoundException"),
        ("DescribeStream", json!({"StreamARN": "nope"}), "ValidationException"),
        ("DescribeStream", json!({"StreamName": "s", "Limit": 0}), "ValidationException"),
        ("PutRecord", json!({"StreamName": "s", "Data": "aGk="}), "ValidationException"),
        (
            "PutRecord",
            json!({"StreamName": "s", "PartitionKey": "k", "Data": "***"}),
            "SerializationException",
        ),
        ("PutRecords", json!({"StreamName": "s", "Records": []}), "ValidationException"),
        ("PutRecords", json!({"StreamName": "s"}), "ValidationException"),
        (
            "GetShardIterator",
            json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "OLDEST"}),
            "ValidationException",
        ),
        (
            "GetShardIterator",
            json!({"StreamName": "s", "ShardId": "shardId-000000000009", "ShardIteratorType": "LATEST"}),
            "ResourceNotFoundException",
        ),
        (
            "GetShardIterator",
            json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_SEQUENCE_NUMBER"}),
            "InvalidArgumentException",
        ),
        ("GetRecords", json!({"ShardIterator": "garbage"}), "InvalidArgumentException"),
        ("GetRecords", json!({}), "ValidationException"),
        ("ListShards", json!({"StreamName": "s", "NextToken": "x"}), "InvalidArgumentException"),
        (
            "ListShards",
            json!({"StreamName": "s", "ShardFilter": {"Type": "SOMETIMES"}}),
            "ValidationException",
        ),
        ("ListShards", json!({"StreamName": "s", "MaxResults": 10001}), "ValidationException"),
        (
            "IncreaseStreamRetentionPeriod",
            json!({"StreamName": "s", "RetentionPeriodHours": 8761}),
            "InvalidArgumentException",
        ),
        (
            "IncreaseStreamRetentionPeriod",
            json!({"StreamName": "s", "RetentionPeriodHours": 0}),
            "ValidationException",
        ),
        (
            "GetShardIterator",
            json!({"StreamName": "s", "ShardId": "0", "ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": "1"}),
            "InvalidArgumentException",
        ),
        (
            "DecreaseStreamRetentionPeriod",
            json!({"StreamName": "s", "RetentionPeriodHours": 23}),
            "InvalidArgumentException",
        ),
        (
            "SplitShard",
            json!({"StreamName": "s", "ShardToSplit": "shardId-000000000000", "NewStartingHashKey": "1"}),
            "InvalidArgumentException",
        ),
        (
            "MergeShards",
            json!({"StreamName": "s", "ShardToMerge": "shardId-000000000000"}),
            "ValidationException",
        ),
        (
            "UpdateShardCount",
            json!({"StreamName": "s", "TargetShardCount": 3, "ScalingType": "UNIFORM_SCALING"}),
            "LimitExceededException",
        ),
        (
            "UpdateShardCount",
            json!({"StreamName": "s", "TargetShardCount": 2, "ScalingType": "FAST"}),
            "ValidationException",
        ),
        (
            "UpdateStreamMode",
            json!({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s", "StreamModeDetails": {"StreamMode": "PROVISIONED"}}),
            "ResourceInUseException",
        ),
        ("AddTagsToStream", json!({"StreamName": "s", "Tags": {}}), "ValidationException"),
        (
            "RegisterStreamConsumer",
            json!({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s", "ConsumerName": "a b"}),
            "ValidationException",
        ),
        (
            "DescribeStreamConsumer",
            json!({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s", "ConsumerName": "none"}),
            "ResourceNotFoundException",
        ),
    ];
    for (op, body, want) in cases {
        assert_eq!(error_type(&ds, op, body.clone()).await, want, "{op} {body}");
    }
    // Expired iterator.
    let (_, v) = call(
        &ds,
        "GetShardIterator",
        json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}),
    )
    .await;
    fx.clock.advance(std::time::Duration::from_secs(301));
    let it = v["ShardIterator"].clone();
    assert_eq!(
        error_type(&ds, "GetRecords", json!({"ShardIterator": it})).await,
        "ExpiredIteratorException"
    );
}

#[test]
fn get_records_body_is_the_json_kinesis_expects() {
    use crate::clock::Timestamp;
    use crate::datastream::DataRecord;
    use crate::datastream::SequenceNumber;
    use crate::log::Offset;
    let rec = |i: u64, key: &str, data: &'static [u8]| DataRecord {
        sequence_number: SequenceNumber::encode(
            Timestamp::from_millis(1_700_000_000_123),
            2,
            Offset(i),
        ),
        partition_key: key.to_owned(),
        data: Bytes::from_static(data),
        arrival: Timestamp::from_millis(1_700_000_000_123),
        offset: Offset(i),
    };
    let out = GetRecordsOutput {
        records: vec![
            rec(0, "plain", b"hello"),
            rec(1, "quo\"te\\ \u{e9}", b""),
            rec(2, "k", &[0xff; 100]),
        ],
        next_shard_iterator: Some("abc".to_owned()),
        millis_behind_latest: 42,
        child_shards: None,
        memory: None,
    };
    let v: Value = serde_json::from_slice(&get_records_body(&out)).unwrap();
    assert_eq!(v["Records"].as_array().unwrap().len(), 3);
    assert_eq!(v["Records"][0]["Data"], STANDARD.encode(b"hello"));
    assert_eq!(v["Records"][0]["PartitionKey"], "plain");
    assert_eq!(v["Records"][0]["ApproximateArrivalTimestamp"], 1_700_000_000.123);
    assert_eq!(v["Records"][0]["SequenceNumber"], out.records[0].sequence_number.to_string());
    assert_eq!(v["Records"][1]["PartitionKey"], "quo\"te\\ \u{e9}", "keys are escaped");
    assert_eq!(v["Records"][1]["Data"], "");
    assert_eq!(v["Records"][2]["Data"], STANDARD.encode([0xff; 100]));
    assert_eq!(v["MillisBehindLatest"], 42);
    assert_eq!(v["NextShardIterator"], "abc");
    assert!(v.get("ChildShards").is_none());
    let closed = GetRecordsOutput {
        records: vec![],
        next_shard_iterator: None,
        millis_behind_latest: 0,
        child_shards: Some(vec![]),
        memory: None,
    };
    let v: Value = serde_json::from_slice(&get_records_body(&closed)).unwrap();
    assert!(v["NextShardIterator"].is_null());
    assert_eq!(v["ChildShards"], json!([]));
}
