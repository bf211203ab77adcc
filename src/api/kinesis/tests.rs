//! Unit tests of the Kinesis wire adapter: each operation's members, answers and errors.
use super::ops::*;
use super::*;
use crate::datastream::GetRecordsOutput;
use crate::datastream::testing::Fixture;
use serde_json::Value;
use std::sync::Arc;

async fn call(ds: &Arc<DataStreams>, op: &str, body: Value) -> (StatusCode, Value) {
    let target = format!("{TARGET_PREFIX}{op}");
    let (status, out) = dispatch(ds, Some(&target), body.to_string().as_bytes(), Codec::Json).await;
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
    let (s, out) = dispatch(&ds, Some("Kinesis_20131202.Nope"), b"{}", Codec::Json).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&out).contains("UnknownOperationException"));
    let (s, _) = dispatch(&ds, None, b"{}", Codec::Json).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, out) =
        dispatch(&ds, Some("Kinesis_20131202.ListStreams"), b"{not json", Codec::Json).await;
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

/// One CBOR call: the request map as CBOR, the answer decoded.
async fn call_cbor(
    ds: &Arc<DataStreams>,
    op: &str,
    req: ciborium::Value,
) -> (StatusCode, ciborium::Value) {
    let mut body = Vec::new();
    ciborium::into_writer(&req, &mut body).unwrap();
    let target = format!("{TARGET_PREFIX}{op}");
    let (status, out) = dispatch(ds, Some(&target), &body, Codec::Cbor).await;
    (status, ciborium::from_reader(&out[..]).unwrap())
}

fn member<'a>(v: &'a ciborium::Value, name: &str) -> &'a ciborium::Value {
    v.as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some(name)))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in {v:?}"))
}

#[tokio::test]
async fn roundtrip_over_cbor() {
    use ciborium::Value as C;
    let t = |s: &str| C::Text(s.to_owned());
    let fx = Fixture::new(false);
    let ds = fx.open();
    let create = C::Map(vec![(t("StreamName"), t("s")), (t("ShardCount"), C::Integer(1.into()))]);
    let (s, _) = call_cbor(&ds, "CreateStream", create.clone()).await;
    assert_eq!(s, StatusCode::OK);
    let data: Vec<u8> = (0..=255u8).collect();
    let put = C::Map(vec![
        (t("StreamName"), t("s")),
        (t("PartitionKey"), t("k")),
        (t("Data"), C::Bytes(data.clone())),
    ]);
    let (s, v) = call_cbor(&ds, "PutRecord", put).await;
    assert_eq!(s, StatusCode::OK, "{v:?}");
    assert_eq!(member(&v, "ShardId").as_text(), Some("shardId-000000000000"));
    let it = C::Map(vec![
        (t("StreamName"), t("s")),
        (t("ShardId"), t("shardId-000000000000")),
        (t("ShardIteratorType"), t("AT_TIMESTAMP")),
        // Tag 1 over epoch milliseconds, as the SDKs send it: the epoch, so every record.
        (t("Timestamp"), C::Tag(1, Box::new(C::Integer(0.into())))),
    ]);
    let (s, v) = call_cbor(&ds, "GetShardIterator", it).await;
    assert_eq!(s, StatusCode::OK, "{v:?}");
    let iterator = member(&v, "ShardIterator").clone();
    let (s, v) = call_cbor(&ds, "GetRecords", C::Map(vec![(t("ShardIterator"), iterator)])).await;
    assert_eq!(s, StatusCode::OK, "{v:?}");
    let records = member(&v, "Records").as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(member(&records[0], "Data"), &C::Bytes(data));
    assert_eq!(member(&records[0], "PartitionKey").as_text(), Some("k"));
    let C::Tag(1, ms) = member(&records[0], "ApproximateArrivalTimestamp") else { panic!("{v:?}") };
    assert!(ms.as_integer().is_some_and(|i| i128::from(i) > 1_000_000_000_000));
    assert!(member(&v, "MillisBehindLatest").is_integer());
    assert!(member(&v, "NextShardIterator").is_text());
    let (s, v) =
        call_cbor(&ds, "DescribeStreamSummary", C::Map(vec![(t("StreamName"), t("s"))])).await;
    assert_eq!(s, StatusCode::OK);
    let summary = member(&v, "StreamDescriptionSummary");
    assert!(matches!(member(summary, "StreamCreationTimestamp"), C::Tag(1, _)));
    // Errors are CBOR too.
    let (s, v) = call_cbor(&ds, "CreateStream", create).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(member(&v, "__type").as_text(), Some("ResourceInUseException"));
    let target = format!("{TARGET_PREFIX}ListStreams");
    let (s, out) = dispatch(&ds, Some(&target), b"\xff\x00", Codec::Cbor).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v: C = ciborium::from_reader(&out[..]).unwrap();
    assert_eq!(member(&v, "__type").as_text(), Some("SerializationException"));
}
