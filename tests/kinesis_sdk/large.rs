//! Records up to 10 MiB: `MaxRecordSizeInKiB` on CreateStream, `UpdateMaxRecordSize`, the limit
//! enforced per stream, and a 10 MiB record written and read back whole (JSON through the SDK).

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_mib_records_round_trip_once_the_stream_allows_them() {
    let env = Env::start().await;
    let k = &env.kds;
    k.create_stream().stream_name("big").shard_count(1).send().await.unwrap();
    let summary = |name: &'static str| {
        let req = k.describe_stream_summary().stream_name(name).send();
        async move { req.await.unwrap().stream_description_summary().unwrap().max_record_size_in_kib() }
    };
    assert_eq!(summary("big").await, Some(1024), "1 MiB unless raised");
    let ten_mib: Vec<u8> = (0..10 * 1024 * 1024 - 1).map(|i| (i % 251) as u8).collect();
    let put = |data: Vec<u8>| {
        k.put_record().stream_name("big").partition_key("k").data(Blob::new(data)).send()
    };
    assert_eq!(code(put(ten_mib.clone()).await), "InvalidArgumentException", "past 1024 KiB");

    // Out of range, then raised to the most AWS allows.
    let arn = env.arn("big").await;
    for bad in [1023, 10241, 0] {
        let r =
            k.update_max_record_size().stream_arn(&arn).max_record_size_in_kib(bad).send().await;
        assert_eq!(code(r), "ValidationException", "{bad} KiB");
    }
    k.update_max_record_size().stream_arn(&arn).max_record_size_in_kib(10240).send().await.unwrap();
    assert_eq!(summary("big").await, Some(10240));
    let seq = put(ten_mib.clone()).await.unwrap().sequence_number().to_owned();
    let it = env
        .iterator(
            "big",
            "shardId-000000000000",
            ShardIteratorType::AtSequenceNumber,
            Some(&seq),
            None,
        )
        .await;
    env.tick();
    let page = k.get_records().shard_iterator(it).send().await.unwrap();
    assert_eq!(page.records().len(), 1);
    assert_eq!(page.records()[0].data().as_ref(), &ten_mib[..], "the 10 MiB record, whole");
    // The shard's 1 MiB/s is repaid before the next write is admitted.
    let small = || put(b"x".to_vec());
    assert_eq!(code(small().await), "ProvisionedThroughputExceededException");
    env.clock.advance(Duration::from_secs(11));
    small().await.unwrap();

    // CreateStream takes the size; out of range is a ValidationException.
    let create = |name: &'static str, kib: i32| {
        k.create_stream().stream_name(name).shard_count(1).max_record_size_in_kib(kib).send()
    };
    create("roomy", 4096).await.unwrap();
    assert_eq!(summary("roomy").await, Some(4096));
    assert_eq!(code(create("tiny", 512).await), "ValidationException");
}
