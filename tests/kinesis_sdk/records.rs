//! Records.

use crate::harness::*;

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_record_and_basic_iterators() {
    let env = Env::start().await;
    env.create("basic", 2).await;
    let shards = env.shards("basic").await;
    let k = &env.kds;

    let r1 = k
        .put_record()
        .stream_name("basic")
        .partition_key("alpha")
        .data(Blob::new("one"))
        .send()
        .await
        .unwrap();
    assert_eq!(r1.shard_id(), shard_for(&shards, md5_hash("alpha")));
    seq_key(r1.sequence_number());
    env.tick();
    // SequenceNumberForOrdering: the new number is greater than the given one.
    let r2 = k
        .put_record()
        .stream_name("basic")
        .partition_key("alpha")
        .data(Blob::new("two"))
        .sequence_number_for_ordering(r1.sequence_number())
        .send()
        .await
        .unwrap();
    assert_eq!(r2.shard_id(), r1.shard_id());
    assert!(seq_key(r2.sequence_number()) > seq_key(r1.sequence_number()));
    // ExplicitHashKey overrides the partition key's hash.
    let other = shards.iter().find(|s| s.shard_id() != r1.shard_id()).unwrap();
    let ehk = range_of(other).0.to_string();
    let r3 = k
        .put_record()
        .stream_name("basic")
        .partition_key("alpha")
        .explicit_hash_key(&ehk)
        .data(Blob::new(vec![0u8, 255, 1, 254]))
        .send()
        .await
        .unwrap();
    assert_eq!(r3.shard_id(), other.shard_id());

    // Read back with each iterator type.
    let shard = r1.shard_id();
    let it = env.iterator("basic", shard, ShardIteratorType::TrimHorizon, None, None).await;
    let (recs, last) = env.drain(it).await;
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].data().as_ref(), b"one");
    assert_eq!(recs[0].partition_key(), Some("alpha"));
    assert_eq!(recs[0].sequence_number(), r1.sequence_number());
    assert_eq!(recs[1].data().as_ref(), b"two");
    let ts0 = recs[0].approximate_arrival_timestamp().expect("ApproximateArrivalTimestamp");
    let ts1 = recs[1].approximate_arrival_timestamp().unwrap();
    assert_eq!(ts0.to_millis().unwrap(), t0().as_millis());
    assert_eq!(ts1.to_millis().unwrap(), t0().as_millis() + 1000);
    assert_eq!(last.millis_behind_latest(), Some(0));
    assert!(last.next_shard_iterator().is_some(), "an open shard always has a next iterator");

    let it = env
        .iterator(
            "basic",
            shard,
            ShardIteratorType::AtSequenceNumber,
            Some(r2.sequence_number()),
            None,
        )
        .await;
    assert_eq!(
        env.drain(it).await.0.iter().map(|r| r.data().as_ref().to_vec()).collect::<Vec<_>>(),
        [b"two".to_vec()]
    );
    let it = env
        .iterator(
            "basic",
            shard,
            ShardIteratorType::AfterSequenceNumber,
            Some(r1.sequence_number()),
            None,
        )
        .await;
    assert_eq!(env.drain(it).await.0.len(), 1);
    let it = env
        .iterator(
            "basic",
            shard,
            ShardIteratorType::AfterSequenceNumber,
            Some(r2.sequence_number()),
            None,
        )
        .await;
    assert!(env.drain(it).await.0.is_empty());
    let at = DateTime::from_millis(t0().as_millis() + 500);
    let it = env.iterator("basic", shard, ShardIteratorType::AtTimestamp, None, Some(at)).await;
    assert_eq!(
        env.drain(it).await.0.iter().map(|r| r.data().as_ref().to_vec()).collect::<Vec<_>>(),
        [b"two".to_vec()]
    );
    // A timestamp in the future: nothing yet, then what arrives.
    let future = DateTime::from_millis(t0().as_millis() + 3_600_000);
    let it = env.iterator("basic", shard, ShardIteratorType::AtTimestamp, None, Some(future)).await;
    assert!(env.drain(it).await.0.is_empty());

    // LATEST sees only what comes after it.
    let latest = env.iterator("basic", shard, ShardIteratorType::Latest, None, None).await;
    env.tick();
    k.put_record()
        .stream_name("basic")
        .partition_key("alpha")
        .data(Blob::new("three"))
        .send()
        .await
        .unwrap();
    let (recs, _) = env.drain(latest).await;
    assert_eq!(
        recs.iter().map(|r| r.data().as_ref().to_vec()).collect::<Vec<_>>(),
        [b"three".to_vec()]
    );

    // The binary record on the other shard round-trips byte for byte.
    let it =
        env.iterator("basic", other.shard_id(), ShardIteratorType::TrimHorizon, None, None).await;
    let (recs, _) = env.drain(it).await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].data().as_ref(), &[0u8, 255, 1, 254]);
    assert_eq!(recs[0].sequence_number(), r3.sequence_number());

    // GetRecords Limit.
    let it = env.iterator("basic", shard, ShardIteratorType::TrimHorizon, None, None).await;
    env.tick();
    let page = k.get_records().shard_iterator(&it).limit(1).send().await.unwrap();
    assert_eq!(page.records().len(), 1);
    assert!(page.millis_behind_latest().is_some());
    env.tick();
    let page = k
        .get_records()
        .shard_iterator(page.next_shard_iterator().unwrap())
        .limit(10_000)
        .send()
        .await
        .unwrap();
    assert_eq!(page.records().len(), 2);

    // Sequence numbers are unique across the stream.
    let mut all = HashSet::new();
    for s in &shards {
        let it =
            env.iterator("basic", s.shard_id(), ShardIteratorType::TrimHorizon, None, None).await;
        for r in env.drain(it).await.0 {
            assert!(all.insert(r.sequence_number().to_owned()), "duplicate sequence number");
        }
    }
    assert_eq!(all.len(), 4);
}

/// 10,000 records with random partition keys into 4 shards (PutRecords batches of 500), read
/// back from every shard with every iterator type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_every_iterator_type() {
    let env = Env::start().await;
    env.create("big", 4).await;
    let shards = env.shards("big").await;
    assert_eq!(shards.len(), 4);
    let mut rng = rand::rng();
    let keys: Vec<String> = (0..400).map(|_| random_key(&mut rng)).collect();

    // (key, per-key index) → (shard, sequence number, data, batch)
    let mut next_idx: HashMap<String, usize> = HashMap::new();
    let mut acked: HashMap<String, (String, Vec<u8>, usize, String)> = HashMap::new(); // seq → (shard, data, batch, key)
    let batch_time = |b: usize| t0().as_millis() + 1000 * (b as i64 + 1);
    for batch in 0..20 {
        env.tick(); // batch b is written at t0 + (b+1) s: ~125 records per shard per second.
        let mut entries = Vec::new();
        let mut sent = Vec::new();
        for _ in 0..500 {
            let key = keys[rng.random_range(0..keys.len())].clone();
            let idx = next_idx.entry(key.clone()).or_default();
            let pad: String = (0..rng.random_range(0..200)).map(|_| 'x').collect();
            let data = format!("{key}|{idx}|{pad}").into_bytes();
            *idx += 1;
            entries.push(entry(&key, data.clone()));
            sent.push((key, data));
        }
        let r = env
            .kds
            .put_records()
            .stream_name("big")
            .set_records(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(r.failed_record_count(), Some(0));
        assert_eq!(r.records().len(), 500);
        for ((key, data), res) in sent.into_iter().zip(r.records()) {
            assert!(res.error_code().is_none(), "{res:?}");
            let shard = res.shard_id().unwrap().to_owned();
            assert_eq!(shard, shard_for(&shards, md5_hash(&key)), "routing of {key:?}");
            let seq = res.sequence_number().unwrap().to_owned();
            seq_key(&seq);
            assert!(
                acked.insert(seq, (shard, data, batch, key)).is_none(),
                "duplicate sequence number"
            );
        }
    }
    assert_eq!(acked.len(), 10_000);

    let mut seen_total = 0;
    for s in &shards {
        let id = s.shard_id();
        let (lo, hi) = range_of(s);
        let it = env.iterator("big", id, ShardIteratorType::TrimHorizon, None, None).await;
        let (recs, last) = env.drain(it).await;
        assert_eq!(last.millis_behind_latest(), Some(0), "caught up");
        // Exactly the records acknowledged for this shard, in increasing sequence order.
        let expected: usize = acked.values().filter(|(sh, ..)| sh == id).count();
        assert_eq!(recs.len(), expected, "{id}: records read");
        let mut prev: Option<(usize, String)> = None;
        for r in &recs {
            let k = seq_key(r.sequence_number());
            if let Some(p) = &prev {
                assert!(k > *p, "{id}: sequence numbers increase");
            }
            prev = Some(k);
            let (shard, data, batch, key) = acked.get(r.sequence_number()).expect("acknowledged");
            assert_eq!(shard, id);
            assert_eq!(r.data().as_ref(), &data[..]);
            assert_eq!(r.partition_key(), Some(key.as_str()));
            let h = md5_hash(key);
            assert!(lo <= h && h <= hi, "{key:?} hashes outside {id}'s range");
            let ts = r.approximate_arrival_timestamp().unwrap().to_millis().unwrap();
            assert_eq!(ts, batch_time(*batch), "ApproximateArrivalTimestamp");
        }
        seen_total += recs.len();

        // Per partition key, records come in the order they were put.
        let mut last_idx: HashMap<&str, i64> = HashMap::new();
        for r in &recs {
            let text = std::str::from_utf8(r.data().as_ref()).unwrap();
            let mut parts = text.rsplitn(3, '|');
            let _pad = parts.next();
            let idx: i64 = parts.next().unwrap().parse().unwrap();
            let key = r.partition_key().unwrap();
            let prev = last_idx.insert(key, idx).unwrap_or(-1);
            assert_eq!(idx, prev + 1, "{id}: order of key {key:?}");
        }

        // AT_SEQUENCE_NUMBER / AFTER_SEQUENCE_NUMBER from the middle: the exact suffix.
        let mid = recs.len() / 2;
        let at_seq = recs[mid].sequence_number();
        let it =
            env.iterator("big", id, ShardIteratorType::AtSequenceNumber, Some(at_seq), None).await;
        let got: Vec<String> =
            env.drain(it).await.0.iter().map(|r| r.sequence_number().to_owned()).collect();
        let want: Vec<String> =
            recs[mid..].iter().map(|r| r.sequence_number().to_owned()).collect();
        assert_eq!(got, want, "{id}: AT_SEQUENCE_NUMBER");
        let it = env
            .iterator("big", id, ShardIteratorType::AfterSequenceNumber, Some(at_seq), None)
            .await;
        let got: Vec<String> =
            env.drain(it).await.0.iter().map(|r| r.sequence_number().to_owned()).collect();
        assert_eq!(got, want[1..].to_vec(), "{id}: AFTER_SEQUENCE_NUMBER");

        // AT_TIMESTAMP at batch 10's time: batches 10.. exactly.
        let at = DateTime::from_millis(batch_time(10));
        let it = env.iterator("big", id, ShardIteratorType::AtTimestamp, None, Some(at)).await;
        let got: Vec<String> =
            env.drain(it).await.0.iter().map(|r| r.sequence_number().to_owned()).collect();
        let want: Vec<String> = recs
            .iter()
            .filter(|r| acked[r.sequence_number()].2 >= 10)
            .map(|r| r.sequence_number().to_owned())
            .collect();
        assert_eq!(got, want, "{id}: AT_TIMESTAMP");
        // Before the first record: everything.
        let it = env
            .iterator(
                "big",
                id,
                ShardIteratorType::AtTimestamp,
                None,
                Some(DateTime::from_millis(0)),
            )
            .await;
        assert_eq!(env.drain(it).await.0.len(), recs.len(), "{id}: AT_TIMESTAMP 0");

        // LATEST: nothing of the old; then exactly one new record sent to this shard.
        let it = env.iterator("big", id, ShardIteratorType::Latest, None, None).await;
        env.tick();
        let put = env
            .kds
            .put_record()
            .stream_name("big")
            .partition_key("latest")
            .explicit_hash_key(lo.to_string())
            .data(Blob::new(format!("latest-{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(put.shard_id(), id);
        let (got, _) = env.drain(it).await;
        assert_eq!(got.len(), 1, "{id}: LATEST");
        assert_eq!(got[0].data().as_ref(), format!("latest-{id}").as_bytes());
        assert!(
            seq_key(got[0].sequence_number()) > seq_key(recs.last().unwrap().sequence_number())
        );
    }
    assert_eq!(seen_total, 10_000, "every record exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_records_partial_failure_shape() {
    // A PutRecords response has one entry per request record, in order, each either
    // SequenceNumber+ShardId or ErrorCode+ErrorMessage. Wire check with raw JSON.
    let env = Env::start().await;
    env.create("shape", 1).await;
    let (status, v) = raw(
        &env,
        "PutRecords",
        r#"{"StreamName":"shape","Records":[{"Data":"aGVsbG8=","PartitionKey":"a"},{"Data":"","PartitionKey":"b"}]}"#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["FailedRecordCount"], 0);
    let recs = v["Records"].as_array().unwrap();
    assert_eq!(recs.len(), 2);
    for r in recs {
        assert!(r["SequenceNumber"].is_string() && r["ShardId"] == "shardId-000000000000", "{r}");
    }
    // GetRecords on the wire: Data base64, timestamps epoch seconds as numbers.
    let (_, it) = raw(&env, "GetShardIterator", r#"{"StreamName":"shape","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}"#).await;
    env.tick();
    let body = json!({ "ShardIterator": it["ShardIterator"] }).to_string();
    let (status, page) = raw(&env, "GetRecords", &body).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["Records"][0]["Data"], "aGVsbG8=");
    assert_eq!(page["Records"][1]["Data"], "");
    assert!(page["Records"][0]["ApproximateArrivalTimestamp"].is_number(), "{page}");
    assert!(page["MillisBehindLatest"].is_number(), "{page}");
    assert!(page["NextShardIterator"].is_string(), "{page}");
    // Required members of DescribeStream's output are present on the wire.
    let (_, d) = raw(&env, "DescribeStream", r#"{"StreamName":"shape"}"#).await;
    let sd = &d["StreamDescription"];
    for m in [
        "StreamName",
        "StreamARN",
        "StreamStatus",
        "Shards",
        "HasMoreShards",
        "RetentionPeriodHours",
        "StreamCreationTimestamp",
        "EnhancedMonitoring",
    ] {
        assert!(!sd[m].is_null(), "DescribeStream lacks {m}: {d}");
    }
    assert!(sd["StreamCreationTimestamp"].is_number(), "{d}");
}
