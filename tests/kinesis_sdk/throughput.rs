//! Throughput limits (provisioned mode), deterministic with the manual clock.

use crate::harness::*;

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
