//! Whole error bodies for malformed requests, compared with what AWS Kinesis answers: the
//! exception and its message, every violated schema constraint of a request in one
//! `ValidationException` ("N validation errors detected", joined with "; ", in the order Kinesis
//! lists them, at most ten), member paths as AWS writes them (`records.N.member.partitionKey`),
//! values as AWS renders them, the shard-id forms Kinesis resolves with its numeric cut-offs,
//! and `SerializationException` for members of the wrong JSON type in AWS's words.
//!
//! The expected texts come from AWS's answers as recorded by tools that were checked against
//! the live service, and from the botocore model's constraints where newer members have no
//! recorded answer (docs/kinesis.md, "Validation").

use crate::harness::*;

const ACCOUNT: &str = "000000000000";
const NAME_PATTERN: &str = "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+";
const MIN1: &str = "Member must have length greater than or equal to 1";
const HASH_PATTERN: &str = r"Member must satisfy regular expression pattern: 0|([1-9]\d{0,38})";
const SEQ_PATTERN: &str = r"Member must satisfy regular expression pattern: 0|([1-9]\d{0,128})";
const MAX_HASH_KEY: &str = "340282366920938463463374607431768211455";

fn at(value: &str, member: &str, constraint: &str) -> String {
    format!("Value '{value}' at '{member}' failed to satisfy constraint: {constraint}")
}

fn null(member: &str) -> String {
    format!("Value null at '{member}' failed to satisfy constraint: Member must not be null")
}

fn max_len(value: &str, member: &str, n: usize) -> String {
    at(value, member, &format!("Member must have length less than or equal to {n}"))
}

/// `N validation error(s) detected: a; b; …`
fn errors(list: &[String]) -> String {
    let s = if list.len() == 1 { "" } else { "s" };
    format!("{} validation error{s} detected: {}", list.len(), list.join("; "))
}

fn either(kind: &str, tail: &str) -> String {
    format!(
        "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {kind} {tail}."
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_match_aws() {
    let env = Env::start().await;
    env.create("t", 1).await;
    let long = "a".repeat(129);
    let long_key = "a".repeat(257);
    let nines = "9".repeat(39);
    let iterator_types = "Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]";
    let not_split = |key: &str| {
        format!(
            "NewStartingHashKey {key} used in SplitShard() on shard shardId-000000000000 in stream t under account {ACCOUNT} is not both greater than one plus the shard's StartingHashKey 0 and less than the shard's EndingHashKey {MAX_HASH_KEY}."
        )
    };
    let v = "ValidationException";
    let s = "SerializationException";
    let ia = "InvalidArgumentException";
    let nf = "ResourceNotFoundException";
    let cases: Vec<(&str, String, &str, String)> = vec![
        // CreateStream
        ("CreateStream", "{}".into(), v, errors(&[null("streamName")])),
        (
            "CreateStream",
            r#"{"StreamName":"","ShardCount":0}"#.into(),
            v,
            errors(&[
                at("0", "shardCount", "Member must have value greater than or equal to 1"),
                at("", "streamName", NAME_PATTERN),
                at("", "streamName", MIN1),
            ]),
        ),
        (
            "CreateStream",
            r#"{"StreamName":"a b","ShardCount":0}"#.into(),
            v,
            errors(&[
                at("0", "shardCount", "Member must have value greater than or equal to 1"),
                at("a b", "streamName", NAME_PATTERN),
            ]),
        ),
        (
            "CreateStream",
            format!(r#"{{"StreamName":"{long}","ShardCount":1}}"#),
            v,
            errors(&[max_len(&long, "streamName", 128)]),
        ),
        (
            "CreateStream",
            r#"{"ShardCount":1,"StreamModeDetails":{"StreamMode":"FAST"},"MaxRecordSizeInKiB":99999}"#.into(),
            v,
            errors(&[
                null("streamName"),
                at("FAST", "streamModeDetails.streamMode", "Member must satisfy enum value set: [ON_DEMAND, PROVISIONED]"),
                at("99999", "maxRecordSizeInKiB", "Member must have value less than or equal to 10240"),
            ]),
        ),
        (
            // The server's own streams (sluice-events, sluice-metadata) do not count.
            "CreateStream",
            r#"{"StreamName":"big","ShardCount":1000}"#.into(),
            "LimitExceededException",
            format!("This request would exceed the shard limit for the account {ACCOUNT} in us-east-1. Current shard count for the account: 1. Limit: 500. Number of additional shards that would have resulted from this request: 1000. Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits."),
        ),
        ("CreateStream", r#"{"StreamName":5}"#.into(), s, "class java.math.BigDecimal can not be converted to an String".into()),
        ("CreateStream", r#"{"StreamName":true}"#.into(), s, "class java.lang.Boolean can not be converted to an String".into()),
        ("CreateStream", r#"{"StreamName":"x","ShardCount":"2"}"#.into(), s, "class java.lang.String can not be converted to an Integer".into()),
        ("CreateStream", r#"{"StreamName":["x"]}"#.into(), s, "Start of list found where not expected".into()),
        ("CreateStream", r#"{"StreamName":{"a":1}}"#.into(), s, "Start of structure or map found where not expected.".into()),
        ("CreateStream", r#"{"StreamName":"x","StreamModeDetails":"ON_DEMAND"}"#.into(), s, "Expected null".into()),
        // PutRecord
        ("PutRecord", "{}".into(), v, errors(&[null("partitionKey"), null("data")])),
        ("PutRecord", r#"{"StreamName":"t","Data":"eA=="}"#.into(), v, errors(&[null("partitionKey")])),
        (
            "PutRecord",
            r#"{"StreamName":"","PartitionKey":"","Data":"","ExplicitHashKey":"","SequenceNumberForOrdering":""}"#.into(),
            v,
            errors(&[
                at("", "sequenceNumberForOrdering", SEQ_PATTERN),
                at("", "partitionKey", MIN1),
                at("", "explicitHashKey", HASH_PATTERN),
                at("", "streamName", NAME_PATTERN),
                at("", "streamName", MIN1),
            ]),
        ),
        (
            "PutRecord",
            format!(r#"{{"StreamName":"{long}","PartitionKey":"{long_key}","Data":"","ExplicitHashKey":""}}"#),
            v,
            errors(&[
                max_len(&long_key, "partitionKey", 256),
                at("", "explicitHashKey", HASH_PATTERN),
                max_len(&long, "streamName", 128),
            ]),
        ),
        (
            "PutRecord",
            r#"{"StreamName":"t!","PartitionKey":"","Data":"eA=="}"#.into(),
            v,
            errors(&[at("", "partitionKey", MIN1), at("t!", "streamName", NAME_PATTERN)]),
        ),
        (
            "PutRecord",
            r#"{"StreamName":"t","PartitionKey":"a","Data":"","ExplicitHashKey":"340282366920938463463374607431768211456"}"#.into(),
            ia,
            "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was 340282366920938463463374607431768211456".into(),
        ),
        (
            "PutRecord",
            r#"{"StreamName":"nope","PartitionKey":"a","Data":""}"#.into(),
            nf,
            format!("Stream nope under account {ACCOUNT} not found."),
        ),
        (
            "PutRecord",
            r#"{"StreamName":"t","PartitionKey":"a","Data":"abc"}"#.into(),
            s,
            "'abc' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 3".into(),
        ),
        (
            "PutRecord",
            r#"{"StreamName":"t","PartitionKey":"a","Data":"ab!="}"#.into(),
            s,
            "'ab!=' can not be converted to a Blob: Invalid Base64 character: '!'".into(),
        ),
        // PutRecords
        ("PutRecords", "{}".into(), v, errors(&[null("records")])),
        (
            "PutRecords",
            r#"{"StreamName":"","Records":[]}"#.into(),
            v,
            errors(&[
                at("[]", "records", MIN1),
                at("", "streamName", NAME_PATTERN),
                at("", "streamName", MIN1),
            ]),
        ),
        (
            "PutRecords",
            r#"{"StreamName":"","Records":[{"PartitionKey":"","Data":"","ExplicitHashKey":""}]}"#.into(),
            v,
            errors(&[
                at("", "records.1.member.partitionKey", MIN1),
                at("", "records.1.member.explicitHashKey", HASH_PATTERN),
                at("", "streamName", NAME_PATTERN),
                at("", "streamName", MIN1),
            ]),
        ),
        (
            "PutRecords",
            r#"{"StreamName":"t","Records":[{"PartitionKey":"a","Data":"eA=="},{"PartitionKey":"","Data":"eA=="}]}"#.into(),
            v,
            errors(&[at("", "records.2.member.partitionKey", MIN1)]),
        ),
        (
            "PutRecords",
            r#"{"StreamName":"t","Records":[{"Data":"eA=="},{"PartitionKey":"k"}]}"#.into(),
            v,
            errors(&[null("records.1.member.partitionKey"), null("records.2.member.data")]),
        ),
        ("PutRecords", r#"{"StreamName":"t","Records":"x"}"#.into(), s, "Expected list or null".into()),
        // GetShardIterator
        ("GetShardIterator", "{}".into(), v, errors(&[null("shardId"), null("shardIteratorType")])),
        (
            "GetShardIterator",
            r#"{"StreamName":"","ShardIteratorType":"","ShardId":"","StartingSequenceNumber":""}"#.into(),
            v,
            errors(&[
                at("", "shardId", NAME_PATTERN),
                at("", "shardId", MIN1),
                at("", "shardIteratorType", iterator_types),
                at("", "startingSequenceNumber", SEQ_PATTERN),
                at("", "streamName", NAME_PATTERN),
                at("", "streamName", MIN1),
            ]),
        ),
        (
            "GetShardIterator",
            format!(r#"{{"StreamName":"{long}","ShardId":"{long}","ShardIteratorType":"LATEST"}}"#),
            v,
            errors(&[max_len(&long, "shardId", 128), max_len(&long, "streamName", 128)]),
        ),
        (
            "GetShardIterator",
            r#"{"StreamName":"t","ShardId":"shardId-000000000000","ShardIteratorType":"OLDEST"}"#.into(),
            v,
            errors(&[at("OLDEST", "shardIteratorType", iterator_types)]),
        ),
        (
            "GetShardIterator",
            r#"{"StreamName":"nope","ShardId":"2147483647","ShardIteratorType":"LATEST"}"#.into(),
            nf,
            format!("Shard shardId-002147483647 in stream nope under account {ACCOUNT} does not exist"),
        ),
        (
            "GetShardIterator",
            r#"{"StreamName":"nope","ShardId":"a-00002147483647","ShardIteratorType":"LATEST"}"#.into(),
            nf,
            format!("Shard shardId-002147483647 in stream nope under account {ACCOUNT} does not exist"),
        ),
        (
            "GetShardIterator",
            r#"{"StreamName":"nope","ShardId":"2147483648","ShardIteratorType":"LATEST"}"#.into(),
            nf,
            format!("Could not find shard 2147483648 in stream nope under account {ACCOUNT}."),
        ),
        (
            "GetShardIterator",
            r#"{"StreamName":"nope","ShardId":"shardId-002147483648","ShardIteratorType":"LATEST"}"#.into(),
            nf,
            format!("Could not find shard shardId-002147483648 in stream nope under account {ACCOUNT}."),
        ),
        (
            "GetShardIterator",
            r#"{"StreamName":"nope","ShardId":"ABKLFD8","ShardIteratorType":"LATEST"}"#.into(),
            nf,
            format!("Could not find shard ABKLFD8 in stream nope under account {ACCOUNT}."),
        ),
        (
            "GetShardIterator",
            r#"{"StreamName":"t","ShardId":"shardId-5","ShardIteratorType":"LATEST"}"#.into(),
            nf,
            format!("Shard shardId-000000000005 in stream t under account {ACCOUNT} does not exist"),
        ),
        (
            "GetShardIterator",
            r#"{"StreamName":"t","ShardId":"shardId-0","ShardIteratorType":"AT_SEQUENCE_NUMBER"}"#.into(),
            ia,
            either("AT_SEQUENCE_NUMBER", "and no StartingSequenceNumber"),
        ),
        (
            "GetShardIterator",
            r#"{"StreamName":"t","ShardId":"shardId-0","ShardIteratorType":"AFTER_SEQUENCE_NUMBER"}"#.into(),
            ia,
            either("AFTER_SEQUENCE_NUMBER", "and no StartingSequenceNumber"),
        ),
        (
            "GetShardIterator",
            r#"{"StreamName":"t","ShardId":"shard-0","ShardIteratorType":"LATEST","StartingSequenceNumber":"5"}"#.into(),
            ia,
            either("LATEST", "and also a StartingSequenceNumber"),
        ),
        (
            "GetShardIterator",
            r#"{"StreamName":"t","ShardId":"0","ShardIteratorType":"TRIM_HORIZON","StartingSequenceNumber":"5"}"#.into(),
            ia,
            either("TRIM_HORIZON", "and also a StartingSequenceNumber"),
        ),
        // SplitShard
        ("SplitShard", "{}".into(), v, errors(&[null("newStartingHashKey"), null("shardToSplit")])),
        (
            "SplitShard",
            r#"{"StreamName":"","ShardToSplit":"","NewStartingHashKey":""}"#.into(),
            v,
            errors(&[
                at("", "newStartingHashKey", HASH_PATTERN),
                at("", "streamName", NAME_PATTERN),
                at("", "streamName", MIN1),
                at("", "shardToSplit", NAME_PATTERN),
                at("", "shardToSplit", MIN1),
            ]),
        ),
        (
            "SplitShard",
            format!(r#"{{"StreamName":"{long}","ShardToSplit":"{long}","NewStartingHashKey":"0"}}"#),
            v,
            errors(&[max_len(&long, "streamName", 128), max_len(&long, "shardToSplit", 128)]),
        ),
        (
            "SplitShard",
            r#"{"StreamName":"nope","ShardToSplit":"2147483648","NewStartingHashKey":"0"}"#.into(),
            nf,
            format!("Could not find shard 2147483648 in stream nope under account {ACCOUNT}."),
        ),
        (
            "SplitShard",
            r#"{"StreamName":"nope","ShardToSplit":"2.14E4","NewStartingHashKey":"0"}"#.into(),
            nf,
            format!("Could not find shard 2.14E4 in stream nope under account {ACCOUNT}."),
        ),
        (
            "SplitShard",
            r#"{"StreamName":"nope","ShardToSplit":"-00002147483647","NewStartingHashKey":"0"}"#.into(),
            nf,
            format!("Stream nope under account {ACCOUNT} not found."),
        ),
        (
            "SplitShard",
            r#"{"StreamName":"t","ShardToSplit":"shardId-5","NewStartingHashKey":"0"}"#.into(),
            nf,
            format!("Could not find shard shardId-000000000005 in stream t under account {ACCOUNT}."),
        ),
        (
            "SplitShard",
            r#"{"StreamName":"t","ShardToSplit":"shard-0","NewStartingHashKey":"1"}"#.into(),
            ia,
            not_split("1"),
        ),
        (
            "SplitShard",
            format!(r#"{{"StreamName":"t","ShardToSplit":"shard-0","NewStartingHashKey":"{nines}"}}"#),
            ia,
            not_split(&nines),
        ),
        // MergeShards
        ("MergeShards", "{}".into(), v, errors(&[null("shardToMerge"), null("adjacentShardToMerge")])),
        (
            "MergeShards",
            format!(r#"{{"StreamName":"{long}","ShardToMerge":"{long}","AdjacentShardToMerge":"{long}"}}"#),
            v,
            errors(&[
                max_len(&long, "shardToMerge", 128),
                max_len(&long, "adjacentShardToMerge", 128),
                max_len(&long, "streamName", 128),
            ]),
        ),
        // Retention
        (
            "IncreaseStreamRetentionPeriod",
            r#"{"StreamName":"t","RetentionPeriodHours":0}"#.into(),
            v,
            errors(&[at("0", "retentionPeriodHours", "Member must have value greater than or equal to 1")]),
        ),
        (
            "IncreaseStreamRetentionPeriod",
            r#"{"StreamName":"t","RetentionPeriodHours":9000}"#.into(),
            ia,
            "Maximum allowed retention period is 8760 hours. Requested retention period (9000 hours) is too long.".into(),
        ),
        (
            "DecreaseStreamRetentionPeriod",
            r#"{"StreamName":"t","RetentionPeriodHours":1}"#.into(),
            ia,
            "Minimum allowed retention period is 24 hours. Requested retention period (1 hours) is too short.".into(),
        ),
        // Describe and list
        (
            "DescribeStreamSummary",
            r#"{"StreamName":"nope"}"#.into(),
            nf,
            format!("Stream nope under account {ACCOUNT} not found."),
        ),
        (
            "DescribeStream",
            r#"{"StreamName":"t","Limit":0}"#.into(),
            v,
            errors(&[at("0", "limit", "Member must have value greater than or equal to 1")]),
        ),
        (
            "ListStreams",
            r#"{"Limit":10001,"ExclusiveStartStreamName":""}"#.into(),
            v,
            errors(&[
                at("10001", "limit", "Member must have value less than or equal to 10000"),
                at("", "exclusiveStartStreamName", NAME_PATTERN),
                at("", "exclusiveStartStreamName", MIN1),
            ]),
        ),
        (
            "ListTagsForStream",
            r#"{"StreamName":"t","Limit":51}"#.into(),
            v,
            errors(&[at("51", "limit", "Member must have value less than or equal to 50")]),
        ),
        ("DeleteStream", r#"{"StreamName":"t","EnforceConsumerDeletion":"yes"}"#.into(), s, "'YES' can not be converted to an Boolean".into()),
        ("AddTagsToStream", r#"{"StreamName":"t","Tags":[1]}"#.into(), s, "Start of list found where not expected".into()),
        // Tags
        (
            "AddTagsToStream",
            r#"{"StreamName":"","Tags":{}}"#.into(),
            v,
            errors(&[at("{}", "tags", MIN1), at("", "streamName", NAME_PATTERN), at("", "streamName", MIN1)]),
        ),
        (
            "AddTagsToStream",
            r#"{"StreamName":"t","Tags":{"":"x"}}"#.into(),
            v,
            errors(&[at("{=x}", "tags", "Map keys must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]")]),
        ),
        (
            "AddTagsToStream",
            r#"{"StreamName":"t","Tags":{"team":"a*b"}}"#.into(),
            ia,
            "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @ :.".into(),
        ),
        (
            "AddTagsToStream",
            r#"{"StreamName":"t","Tags":{"share":"50%"}}"#.into(),
            ia,
            format!("Failed to add tags to stream t under account {ACCOUNT} because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@',':'."),
        ),
        (
            "AddTagsToStream",
            json!({ "StreamName": "t", "Tags": (0..51).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>() }).to_string(),
            ia,
            format!("Failed to add tags to stream t under account {ACCOUNT} because a given stream cannot have more than 50 tags associated with it."),
        ),
        ("AddTagsToStream", r#"{"StreamName":"nope","Tags":{"a":"b"}}"#.into(), nf, format!("Stream nope under account {ACCOUNT} not found.")),
        // Capacity
        ("UpdateShardCount", "{}".into(), v, errors(&[null("targetShardCount"), null("scalingType")])),
        (
            "UpdateShardCount",
            r#"{"StreamName":"t","TargetShardCount":0,"ScalingType":"FAST"}"#.into(),
            v,
            errors(&[
                at("0", "targetShardCount", "Member must have value greater than or equal to 1"),
                at("FAST", "scalingType", "Member must satisfy enum value set: [UNIFORM_SCALING]"),
            ]),
        ),
        (
            "UpdateMaxRecordSize",
            r#"{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/t","MaxRecordSizeInKiB":1}"#.into(),
            v,
            errors(&[at("1", "maxRecordSizeInKiB", "Member must have value greater than or equal to 1024")]),
        ),
        // Consumers
        ("RegisterStreamConsumer", "{}".into(), v, errors(&[null("streamARN"), null("consumerName")])),
    ];
    assert!(cases.len() >= 50, "{} cases", cases.len());
    for (op, body, kind, message) in cases {
        let (status, got) = raw(&env, op, &body).await;
        assert_eq!(status, 400, "{op} {body}: {got}");
        assert_eq!(got["__type"], kind, "{op} {body}: {got}");
        assert_eq!(got["message"], message.as_str(), "{op} {body}");
    }
}

/// AWS lists at most ten violations: 501 records with empty keys name the list's length and the
/// first nine keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_ten_violations_are_listed() {
    let env = Env::start().await;
    let records: Vec<Value> = (0..501).map(|_| json!({ "PartitionKey": "", "Data": "" })).collect();
    let body = json!({ "StreamName": "t", "Records": records }).to_string();
    let (status, got) = raw(&env, "PutRecords", &body).await;
    assert_eq!(status, 400);
    let m = got["message"].as_str().unwrap();
    assert!(m.starts_with("10 validation errors detected: Value at 'records' failed to satisfy constraint: Member must have length less than or equal to 500; "), "{m}");
    assert_eq!(m.matches("failed to satisfy constraint").count(), 10, "{m}");
    assert!(m.ends_with(&format!("; {}", at("", "records.9.member.partitionKey", MIN1))), "{m}");
}
