//! Iterators: expiry and tampering.

use crate::harness::*;

// ---------------------------------------------------------------------------------------------
// Iterators: expiry and tampering
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iterators_expire_after_five_minutes() {
    let env = Env::start().await;
    env.create("exp", 1).await;
    env.kds
        .put_record()
        .stream_name("exp")
        .partition_key("a")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
    let it = env
        .iterator("exp", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    let fresh = env
        .iterator("exp", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    env.clock.advance(Duration::from_secs(299));
    // Still valid just before five minutes; its NextShardIterator is new.
    let page = env.kds.get_records().shard_iterator(&fresh).send().await.unwrap();
    assert_eq!(page.records().len(), 1);
    let next = page.next_shard_iterator().unwrap().to_owned();
    env.clock.advance(Duration::from_secs(2));
    let e = env.kds.get_records().shard_iterator(&it).send().await;
    match e {
        Err(e) => {
            assert_eq!(e.code(), Some("ExpiredIteratorException"), "{e:?}");
            assert!(matches!(
                e.as_service_error(),
                Some(kinesis::operation::get_records::GetRecordsError::ExpiredIteratorException(_))
            ));
        }
        Ok(_) => panic!("a 301-second-old iterator was accepted"),
    }
    env.kds.get_records().shard_iterator(&next).send().await.unwrap();
    env.clock.advance(Duration::from_secs(301));
    assert_eq!(
        code(env.kds.get_records().shard_iterator(&next).send().await),
        "ExpiredIteratorException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_iterators_are_rejected() {
    let env = Env::start().await;
    env.create("tam", 2).await;
    env.create("tam2", 1).await;
    env.kds
        .put_record()
        .stream_name("tam")
        .partition_key("a")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
    let it = env
        .iterator("tam", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    // Flip one character at a time at several positions.
    let chars: Vec<char> = it.chars().collect();
    for pos in [0, chars.len() / 3, chars.len() / 2, chars.len().saturating_sub(5)] {
        let mut t = chars.clone();
        t[pos] = if t[pos] == 'A' { 'B' } else { 'A' };
        let t: String = t.into_iter().collect();
        env.tick();
        let e = env.kds.get_records().shard_iterator(&t).send().await;
        assert_eq!(code(e), "InvalidArgumentException", "flipped position {pos}");
    }
    for junk in ["x", "not-an-iterator", &"A".repeat(300)] {
        env.tick();
        assert_eq!(
            code(env.kds.get_records().shard_iterator(junk).send().await),
            "InvalidArgumentException"
        );
    }
    // The genuine one still works.
    env.tick();
    let page = env.kds.get_records().shard_iterator(&it).send().await.unwrap();
    assert_eq!(page.records().len(), 1);
    // An iterator of a deleted stream: ResourceNotFoundException.
    let it2 = env
        .iterator("tam2", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    env.kds.delete_stream().stream_name("tam2").send().await.unwrap();
    for _ in 0..200 {
        if env.kds.describe_stream_summary().stream_name("tam2").send().await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.tick();
    assert_eq!(
        code(env.kds.get_records().shard_iterator(&it2).send().await),
        "ResourceNotFoundException"
    );
}
