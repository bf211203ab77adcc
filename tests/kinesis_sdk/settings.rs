//! Stream settings through the SDK: encryption recorded and reported, enhanced monitoring turning
//! the shard-level series of `/metrics` on and off (with counts that match what was written and
//! read), and resource policies stored on streams and consumers.

use kinesis::types::{EncryptionType, MetricsName};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_monitoring_and_policies_are_recorded() {
    let env = Env::start().await;
    let k = &env.kds;
    env.create("m", 1).await;
    let summary = || async { k.describe_stream_summary().stream_name("m").send().await.unwrap() };

    // Encryption: recorded and shown, not applied.
    let start = k.start_stream_encryption().stream_name("m").encryption_type(EncryptionType::Kms);
    start.clone().key_id("alias/aws/kinesis").send().await.unwrap();
    let s = summary().await;
    let d = s.stream_description_summary().unwrap();
    assert_eq!(d.encryption_type(), Some(&EncryptionType::Kms));
    assert_eq!(d.key_id(), Some("alias/aws/kinesis"));
    let none = k.start_stream_encryption().stream_name("m").encryption_type(EncryptionType::None);
    assert_eq!(code(none.key_id("k").send().await), "InvalidArgumentException");
    assert_eq!(code(start.key_id("").send().await), "ValidationException");
    let stop = k.stop_stream_encryption().stream_name("m").encryption_type(EncryptionType::Kms);
    stop.key_id("alias/aws/kinesis").send().await.unwrap();
    assert_eq!(
        summary().await.stream_description_summary().unwrap().encryption_type(),
        Some(&EncryptionType::None)
    );

    // Enhanced monitoring: the shard's series appear in /metrics with what was written and read.
    let (_, before) = env.server.get_text("/metrics").await;
    assert!(!before.contains("sluice_kinesis_shard_"), "no shard series before monitoring");
    let on = k
        .enable_enhanced_monitoring()
        .stream_name("m")
        .shard_level_metrics(MetricsName::IncomingBytes)
        .shard_level_metrics(MetricsName::OutgoingRecords)
        .send()
        .await
        .unwrap();
    assert!(on.current_shard_level_metrics().is_empty());
    assert_eq!(
        on.desired_shard_level_metrics(),
        [MetricsName::IncomingBytes, MetricsName::OutgoingRecords]
    );
    for data in ["abc", "defgh"] {
        k.put_record()
            .stream_name("m")
            .partition_key("pk")
            .data(Blob::new(data))
            .send()
            .await
            .unwrap();
    }
    let it =
        env.iterator("m", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None).await;
    let (records, _) = env.drain(it).await;
    assert_eq!(records.len(), 2);
    let (_, text) = env.server.get_text("/metrics").await;
    let labels = "{stream=\"m\",shard=\"shardId-000000000000\"}";
    assert!(
        text.contains(&format!("sluice_kinesis_shard_incoming_bytes_total{labels} 12")),
        "{text}"
    );
    assert!(
        text.contains(&format!("sluice_kinesis_shard_outgoing_records_total{labels} 2")),
        "{text}"
    );
    assert!(!text.contains("sluice_kinesis_shard_incoming_records"), "only what was enabled");
    assert!(text.trim_end().ends_with("# EOF"), "the series come before the end marker");
    let s = summary().await;
    let metrics =
        s.stream_description_summary().unwrap().enhanced_monitoring()[0].shard_level_metrics();
    assert_eq!(metrics, [MetricsName::IncomingBytes, MetricsName::OutgoingRecords]);
    let all = k.enable_enhanced_monitoring().stream_name("m").shard_level_metrics(MetricsName::All);
    assert_eq!(all.send().await.unwrap().desired_shard_level_metrics().len(), 7);
    let off =
        k.disable_enhanced_monitoring().stream_name("m").shard_level_metrics(MetricsName::All);
    assert!(off.send().await.unwrap().desired_shard_level_metrics().is_empty());
    let (_, after) = env.server.get_text("/metrics").await;
    assert!(!after.contains("sluice_kinesis_shard_"), "monitoring off: no shard series");

    // Resource policies on the stream and on a consumer.
    let arn = env.arn("m").await;
    let policy = r#"{"Version":"2012-10-17","Statement":[]}"#;
    let get = |arn: String| async move { k.get_resource_policy().resource_arn(arn).send().await };
    assert_eq!(get(arn.clone()).await.unwrap().policy(), "{}", "none attached");
    k.put_resource_policy().resource_arn(&arn).policy(policy).send().await.unwrap();
    assert_eq!(get(arn.clone()).await.unwrap().policy(), policy);
    let bad = k.put_resource_policy().resource_arn(&arn).policy("not json").send().await;
    assert_eq!(code(bad), "InvalidArgumentException");
    let consumer = k.register_stream_consumer().stream_arn(&arn).consumer_name("app").send().await;
    let carn = consumer.unwrap().consumer().unwrap().consumer_arn().to_owned();
    k.put_resource_policy().resource_arn(&carn).policy(policy).send().await.unwrap();
    assert_eq!(get(carn.clone()).await.unwrap().policy(), policy);
    k.delete_resource_policy().resource_arn(&arn).send().await.unwrap();
    assert_eq!(
        code(k.delete_resource_policy().resource_arn(&arn).send().await),
        "ResourceNotFoundException"
    );
    let missing = arn.replace("stream/m", "stream/nope");
    assert_eq!(code(get(missing).await), "ResourceNotFoundException");
}
