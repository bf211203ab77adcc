//! Service-level tests of the data-stream core: round trips across restarts, resharding
//! lineage, retention and throttling on a `ManualClock`.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use super::read::IteratorStart;
use super::reshard::ListShardsRequest;
use super::testing::Fixture;
use super::*;

fn entry(key: &str, data: &str) -> PutEntry {
    PutEntry {
        partition_key: key.to_owned(),
        explicit_hash_key: None,
        data: Bytes::from(data.to_owned()),
    }
}

fn sel(name: &str) -> StreamSel<'_> {
    StreamSel::name(name)
}

fn read_all(
    ds: &DataStreams,
    stream: &str,
    shard: &str,
) -> (Vec<DataRecord>, Option<Vec<ChildShard>>) {
    let mut it = ds.get_shard_iterator(sel(stream), shard, IteratorStart::TrimHorizon).unwrap();
    let mut out = Vec::new();
    loop {
        let r = ds.get_records(&it, Some(3)).unwrap();
        let empty = r.records.is_empty();
        out.extend(r.records);
        match r.next_shard_iterator {
            None => return (out, r.child_shards),
            Some(next) if empty => {
                let _ = next;
                return (out, None);
            }
            Some(next) => it = next,
        }
    }
}

#[tokio::test]
async fn put_get_roundtrip_survives_restart() {
    let fx = Fixture::new(false);
    let mut expected: BTreeMap<String, Vec<(String, SequenceNumber)>> = BTreeMap::new();
    {
        let ds = fx.open();
        ds.create_stream("s", Capacity::Provisioned { shard_count: 4 }, BTreeMap::new(), None)
            .unwrap();
        let entries: Vec<PutEntry> =
            (0..40).map(|i| entry(&format!("k{}", i % 7), &format!("v{i}"))).collect();
        let out = ds.put_records(sel("s"), entries).await.unwrap();
        for (i, o) in out.iter().enumerate() {
            let PutOutcome::Ok { shard_id, sequence_number } = o else { panic!("{o:?}") };
            expected
                .entry(shard_id.to_string())
                .or_default()
                .push((format!("v{i}"), *sequence_number));
        }
        let (shard, seq) = ds.put_record(sel("s"), entry("k0", "last"), None).await.unwrap();
        expected.entry(shard.to_string()).or_default().push(("last".into(), seq));
        ds.sync_all();
    }
    let ds = fx.open();
    let mut total = 0;
    for (shard, want) in &expected {
        let (got, children) = read_all(&ds, "s", shard);
        assert!(children.is_none());
        let got: Vec<(String, SequenceNumber)> = got
            .iter()
            .map(|r| (String::from_utf8(r.data.to_vec()).unwrap(), r.sequence_number))
            .collect();
        assert_eq!(&got, want, "shard {shard}");
        assert!(got.windows(2).all(|w| w[0].1 < w[1].1), "sequence numbers increase");
        total += got.len();
    }
    assert_eq!(total, 41);
    // Each key went to the shard its MD5 names.
    let reader_shard = ds.shard_for_key(&StreamName::new("s").unwrap(), "k3").unwrap();
    let ranges = hashkey::uniform_ranges(4);
    assert!(ranges[reader_shard.0 as usize].contains(HashKey::of_partition_key("k3")));
    // AT/AFTER_SEQUENCE_NUMBER and LATEST.
    let (shard, list) = expected.iter().next().unwrap();
    let it = ds
        .get_shard_iterator(sel("s"), shard, IteratorStart::AfterSequenceNumber(list[0].1))
        .unwrap();
    let r = ds.get_records(&it, None).unwrap();
    assert_eq!(r.records.first().map(|r| r.sequence_number), list.get(1).map(|x| x.1));
    let it =
        ds.get_shard_iterator(sel("s"), shard, IteratorStart::AtSequenceNumber(list[0].1)).unwrap();
    assert_eq!(ds.get_records(&it, Some(1)).unwrap().records[0].sequence_number, list[0].1);
    let it = ds.get_shard_iterator(sel("s"), shard, IteratorStart::Latest).unwrap();
    assert!(ds.get_records(&it, None).unwrap().records.is_empty());
    // A sequence number of another shard is rejected.
    let other = expected.keys().nth(1).unwrap();
    let e = ds
        .get_shard_iterator(sel("s"), other, IteratorStart::AtSequenceNumber(list[0].1))
        .unwrap_err();
    assert!(matches!(e, DsError::InvalidArgument(_)), "{e:?}");
}

#[tokio::test]
async fn iterators_expire_and_die_with_their_stream() {
    let fx = Fixture::new(false);
    let ds = fx.open();
    ds.create_stream("s", Capacity::Provisioned { shard_count: 1 }, BTreeMap::new(), None).unwrap();
    let it = ds
        .get_shard_iterator(sel("s"), "shardId-000000000000", IteratorStart::TrimHorizon)
        .unwrap();
    fx.clock.advance(Duration::from_secs(301));
    assert!(matches!(ds.get_records(&it, None), Err(DsError::ExpiredIterator(_))));
    let it = ds
        .get_shard_iterator(sel("s"), "shardId-000000000000", IteratorStart::TrimHorizon)
        .unwrap();
    ds.delete_stream(sel("s"), false).unwrap();
    ds.create_stream("s", Capacity::Provisioned { shard_count: 1 }, BTreeMap::new(), None).unwrap();
    assert!(matches!(ds.get_records(&it, None), Err(DsError::ResourceNotFound(_))));
    let mut tampered = it.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(matches!(ds.get_records(&tampered, None), Err(DsError::InvalidArgument(_))));
}

#[tokio::test]
async fn split_merge_and_update_keep_lineage() {
    let fx = Fixture::new(false);
    let ds = fx.open();
    ds.create_stream("s", Capacity::Provisioned { shard_count: 2 }, BTreeMap::new(), None).unwrap();
    let (_, seq0) = ds
        .put_record(
            sel("s"),
            PutEntry { explicit_hash_key: Some("0".into()), ..entry("a", "before") },
            None,
        )
        .await
        .unwrap();
    let mid = (1u128 << 126).to_string();
    ds.split_shard(sel("s"), "shardId-000000000000", &mid).unwrap();
    let e = ds.split_shard(sel("s"), "shardId-000000000000", &mid).unwrap_err();
    assert!(matches!(e, DsError::ResourceInUse(_)), "{e:?}");
    let (_, shards, _) = ds.describe_stream(sel("s"), None, None).unwrap();
    let ids: Vec<String> = shards.iter().map(|s| s.shard_id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002",
            "shardId-000000000003"
        ]
    );
    assert_eq!(shards[0].ending, Some(seq0), "ending = the last record's sequence number");
    assert_eq!(shards[1].ending, None);
    assert_eq!(shards[2].parent, Some(ShardId(0)));
    assert_eq!(shards[3].range.start.to_string(), mid);
    // New writes go to the children; the parent stays readable and ends with its children.
    let (shard, _) = ds
        .put_record(
            sel("s"),
            PutEntry { explicit_hash_key: Some("0".into()), ..entry("a", "after") },
            None,
        )
        .await
        .unwrap();
    assert_eq!(shard, ShardId(2));
    let (recs, children) = read_all(&ds, "s", "shardId-000000000000");
    assert_eq!(recs.len(), 1);
    let children = children.expect("child shards at the end of a closed shard");
    assert_eq!(children.iter().map(|c| c.shard_id.0).collect::<Vec<_>>(), [2, 3]);
    // Merge: only adjacent pairs.
    let e = ds.merge_shards(sel("s"), "shardId-000000000002", "shardId-000000000001").unwrap_err();
    assert!(matches!(e, DsError::InvalidArgument(_)), "{e:?}");
    ds.merge_shards(sel("s"), "shardId-000000000003", "shardId-000000000001").unwrap();
    let (_, shards, _) = ds.describe_stream(sel("s"), None, None).unwrap();
    let merged = shards.last().unwrap();
    assert_eq!(
        shards[3].ending,
        Some(shards[3].starting),
        "a shard closed empty ends at its start"
    );
    assert_eq!((merged.parent, merged.adjacent_parent), (Some(ShardId(3)), Some(ShardId(1))));
    // Open now: 2 and 4. UpdateShardCount must stay within [1, 4].
    let e = ds.update_shard_count(sel("s"), 5, "UNIFORM_SCALING").unwrap_err();
    assert!(matches!(e, DsError::LimitExceeded(_)), "{e:?}");
    assert_eq!(ds.update_shard_count(sel("s"), 3, "UNIFORM_SCALING").unwrap(), (2, 3));
    let (open, _) = ds
        .list_shards(ListShardsRequest {
            stream: sel("s"),
            filter: Some(ShardFilter::AtLatest),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(open.len(), 3);
    assert_eq!(open.iter().map(|s| s.range).collect::<Vec<_>>(), hashkey::uniform_ranges(3));
    // Old open ranges: 2 = [0, 2^126), 4 = [2^126, 2^128).
    assert_eq!((open[0].parent, open[0].adjacent_parent), (Some(ShardId(2)), Some(ShardId(4))));
    assert_eq!((open[1].parent, open[1].adjacent_parent), (Some(ShardId(4)), None));
    assert_eq!((open[2].parent, open[2].adjacent_parent), (Some(ShardId(4)), None));
    let (horizon, _) = ds
        .list_shards(ListShardsRequest {
            stream: sel("s"),
            filter: Some(ShardFilter::AtTrimHorizon),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(horizon.iter().map(|s| s.shard_id.0).collect::<Vec<_>>(), [0, 1]);
    // Paging with NextToken.
    let (page, token) = ds
        .list_shards(ListShardsRequest {
            stream: sel("s"),
            max_results: Some(4),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.len(), 4);
    let token = token.unwrap();
    let e = ds
        .list_shards(ListShardsRequest {
            stream: sel("s"),
            next_token: Some(&token),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(e, DsError::InvalidArgument(_)));
    let (rest, more) = ds
        .list_shards(ListShardsRequest { next_token: Some(&token), ..Default::default() })
        .unwrap();
    assert_eq!((rest.len(), more), (4, None));
    fx.clock.advance(Duration::from_secs(301));
    let e = ds
        .list_shards(ListShardsRequest { next_token: Some(&token), ..Default::default() })
        .unwrap_err();
    assert!(matches!(e, DsError::ExpiredNextToken(_)));
    // Lineage survives a restart.
    drop(ds);
    let ds = fx.open();
    let (_, again, _) = ds.describe_stream(sel("s"), None, None).unwrap();
    assert_eq!(again.len(), 8);
    assert_eq!(again[0].ending, Some(seq0));
}

#[tokio::test]
async fn retention_drops_old_segments_then_expired_closed_shards() {
    let fx = Fixture::new(false);
    let ds = fx.open();
    ds.create_stream("s", Capacity::Provisioned { shard_count: 1 }, BTreeMap::new(), None).unwrap();
    ds.put_record(sel("s"), entry("a", "old"), None).await.unwrap();
    assert!(matches!(
        ds.set_retention_period(sel("s"), 12, false),
        Err(DsError::InvalidArgument(_))
    ));
    assert!(matches!(
        ds.set_retention_period(sel("s"), 48, false),
        Err(DsError::InvalidArgument(_))
    ));
    assert!(matches!(
        ds.set_retention_period(sel("s"), 9000, true),
        Err(DsError::InvalidArgument(_))
    ));
    assert!(matches!(ds.set_retention_period(sel("s"), 0, true), Err(DsError::Validation(_))));
    ds.set_retention_period(sel("s"), 48, true).unwrap();
    ds.set_retention_period(sel("s"), 24, false).unwrap();
    fx.clock.advance(Duration::from_secs(23 * 3600));
    assert!(ds.enforce_retention().is_empty());
    ds.split_shard(sel("s"), "shardId-000000000000", &(1u128 << 127).to_string()).unwrap();
    fx.clock.advance(Duration::from_secs(2 * 3600));
    let deleted = ds.enforce_retention();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0].range.as_ref().map(|r| r.records), Some(1));
    let (recs, _) = read_all(&ds, "s", "shardId-000000000000");
    assert!(recs.is_empty());
    fx.clock.advance(Duration::from_secs(23 * 3600));
    let removed = ds.enforce_retention();
    assert_eq!(removed.iter().filter(|d| d.range.is_none()).count(), 1);
    let (_, shards, _) = ds.describe_stream(sel("s"), None, None).unwrap();
    assert_eq!(shards.iter().map(|s| s.shard_id.0).collect::<Vec<_>>(), [1, 2]);
    drop(ds);
    assert_eq!(fx.open().describe_stream(sel("s"), None, None).unwrap().1.len(), 2);
}

#[tokio::test]
async fn put_records_fails_per_record_over_the_limit() {
    let fx = Fixture::new(true);
    let ds = fx.open();
    ds.create_stream("s", Capacity::Provisioned { shard_count: 1 }, BTreeMap::new(), None).unwrap();
    let entries: Vec<PutEntry> = (0..500).map(|i| entry("k", &"x".repeat(2200 + i % 2))).collect();
    let out = ds.put_records(sel("s"), entries).await.unwrap();
    let failed: Vec<&PutOutcome> =
        out.iter().filter(|o| matches!(o, PutOutcome::Failed { .. })).collect();
    // 1 MiB/s of 2.2 KB records: about 476 of the 500 fit.
    let ok = out.len() - failed.len();
    assert!(ok > 400 && !failed.is_empty(), "ok {ok}");
    assert!(failed.iter().all(|f| matches!(
        f,
        PutOutcome::Failed { code: "ProvisionedThroughputExceededException", .. }
    )));
    let e = ds.put_record(sel("s"), entry("k", &"x".repeat(100_000)), None).await.unwrap_err();
    assert!(matches!(e, DsError::ProvisionedThroughputExceeded(_)));
    fx.clock.advance(Duration::from_secs(1));
    ds.put_record(sel("s"), entry("k", "fits again"), None).await.unwrap();
    // The internal append is never throttled.
    for _ in 0..2000 {
        ds.append(&StreamName::new("s").unwrap(), "k", Bytes::from_static(b"e")).unwrap();
    }
    // Reads: five calls a second.
    let it =
        ds.get_shard_iterator(sel("s"), "shardId-000000000000", IteratorStart::Latest).unwrap();
    for _ in 0..5 {
        ds.get_records(&it, Some(1)).unwrap();
    }
    assert!(matches!(ds.get_records(&it, Some(1)), Err(DsError::ProvisionedThroughputExceeded(_))));
}

#[tokio::test]
async fn internal_append_reader_and_validation() {
    let fx = Fixture::new(false);
    let ds = fx.open();
    let name = StreamName::new("sluice-events").unwrap();
    ds.ensure_stream(&name, 2).unwrap();
    ds.ensure_stream(&name, 2).unwrap();
    let a = ds.append(&name, "cam1", Bytes::from_static(b"{}")).unwrap();
    ds.wait_durable(&a).await.unwrap();
    let reader = ds.shard_reader(&name, &a.shard_id).unwrap();
    let recs = reader.read(reader.start(), 10, 1 << 20).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(
        (recs[0].partition_key.as_str(), recs[0].sequence_number),
        ("cam1", a.sequence_number)
    );
    assert_eq!(reader.committed_end(), a.offset.next());
    assert_eq!(reader.lower_bound_arrival(a.arrival).unwrap(), a.offset);
    assert_eq!(ds.shard_for_key(&name, "cam1").unwrap(), a.shard_id);

    let bad = |e: Result<(), DsError>| e.unwrap_err().type_name();
    let cap = Capacity::Provisioned { shard_count: 1 };
    assert_eq!(bad(ds.create_stream("a/b", cap, BTreeMap::new(), None)), "ValidationException");
    assert_eq!(
        bad(ds.create_stream(&"a".repeat(129), cap, BTreeMap::new(), None)),
        "ValidationException"
    );
    assert_eq!(
        bad(ds.create_stream("sluice-events", cap, BTreeMap::new(), None)),
        "ResourceInUseException"
    );
    let kept = ds.delete_stream(sel("sluice-events"), true).unwrap_err();
    assert_eq!(kept.type_name(), "ResourceInUseException");
    assert!(kept.message().contains("system stream"), "{kept}");
    assert_eq!(
        bad(ds.create_stream(
            "big",
            Capacity::Provisioned { shard_count: 501 },
            BTreeMap::new(),
            None
        )),
        "LimitExceededException"
    );
    let put =
        |e: PutEntry| async { ds.put_record(sel("sluice-events"), e, None).await.map(|_| ()) };
    assert_eq!(bad(put(entry("", "x")).await), "ValidationException");
    assert_eq!(bad(put(entry(&"k".repeat(257), "x")).await), "ValidationException");
    let huge = PutEntry { data: Bytes::from(vec![0u8; 10 * 1024 * 1024 + 1]), ..entry("k", "") };
    assert_eq!(bad(put(huge).await), "ValidationException");
    let over = PutEntry { data: Bytes::from(vec![0u8; 1024 * 1024 + 1]), ..entry("k", "") };
    assert_eq!(bad(put(over).await), "InvalidArgumentException", "past the stream's 1024 KiB");
    let full = PutEntry { data: Bytes::from(vec![0u8; 1024 * 1024]), ..entry("k", "") };
    assert_eq!(bad(put(full).await), "InvalidArgumentException");
    let ehk = PutEntry { explicit_hash_key: Some("x".into()), ..entry("k", "") };
    assert_eq!(bad(put(ehk).await), "ValidationException");
    assert_eq!(
        bad(ds.put_record(sel("nope"), entry("k", "x"), None).await.map(|_| ())),
        "ResourceNotFoundException"
    );
    let many: Vec<PutEntry> = (0..501).map(|_| entry("k", "x")).collect();
    assert_eq!(
        bad(ds.put_records(sel("sluice-events"), many).await.map(|_| ())),
        "ValidationException"
    );
    // More than 10 MiB in one request, each record within the stream's 1 MiB.
    let big: Vec<PutEntry> = (0..11)
        .map(|_| PutEntry { data: Bytes::from(vec![0u8; 1_000_000]), ..entry("k", "") })
        .collect();
    assert_eq!(
        bad(ds.put_records(sel("sluice-events"), big).await.map(|_| ())),
        "InvalidArgumentException"
    );
}

#[tokio::test]
async fn stream_settings_survive_a_restart_and_old_catalogs_gain_them() {
    let fx = Fixture::new(false);
    {
        // A catalog from before the setting: its table has no max_record_kib column.
        let cat = Catalog::open(&fx.dir.path().join("catalog.sqlite")).unwrap();
        let old = store::SCHEMA.replace(
            ",\n    max_record_kib  INTEGER NOT NULL DEFAULT 1024,\n    encryption_key  TEXT,\n    shard_metrics   TEXT NOT NULL DEFAULT ''",
            "",
        );
        assert_ne!(old, store::SCHEMA);
        cat.ensure_schema(&old).unwrap();
    }
    let ds = fx.open();
    ds.create_stream("s", Capacity::Provisioned { shard_count: 1 }, BTreeMap::new(), Some(2048))
        .unwrap();
    ds.create_stream("t", Capacity::Provisioned { shard_count: 1 }, BTreeMap::new(), None).unwrap();
    ds.update_max_record_size(sel("t"), 10240).unwrap();
    ds.set_encryption(sel("t"), "KMS", "key-1", true).unwrap();
    let metrics = ["IncomingBytes".to_owned(), "IteratorAgeMilliseconds".to_owned()];
    ds.set_enhanced_monitoring(sel("t"), &metrics, true).unwrap();
    drop(ds);
    let ds = fx.open();
    assert_eq!(ds.describe_stream_summary(sel("s")).unwrap().max_record_kib, 2048);
    let t = ds.describe_stream_summary(sel("t")).unwrap();
    assert_eq!(t.max_record_kib, 10240);
    assert_eq!(t.encryption_key.as_deref(), Some("key-1"));
    assert_eq!(t.shard_metrics, metrics);
    let two_mib = PutEntry { data: Bytes::from(vec![7u8; 2 * 1024 * 1024 - 1]), ..entry("k", "") };
    assert!(ds.put_record(sel("s"), two_mib.clone(), None).await.is_ok());
    let more = PutEntry { data: Bytes::from(vec![7u8; 2 * 1024 * 1024]), ..entry("k", "") };
    let e = ds.put_record(sel("s"), more, None).await.unwrap_err();
    assert_eq!(e.type_name(), "InvalidArgumentException");
}

#[test]
fn warm_throughput_and_scaled_shards_survive_a_restart() {
    let fx = Fixture::new(true);
    {
        let ds = fx.open();
        ds.create_stream("w", Capacity::OnDemand { warm_mibps: Some(8) }, BTreeMap::new(), None)
            .unwrap();
        assert_eq!(ds.describe_stream_summary(sel("w")).unwrap().open_shard_count, 8);
        let (_, _, w) = ds.update_warm_throughput(sel("w"), 12).unwrap();
        assert_eq!((w.target_mibps, w.current_mibps), (12, 12));
        ds.sync_all();
    }
    let ds = fx.open();
    let d = ds.describe_stream_summary(sel("w")).unwrap();
    assert_eq!(d.open_shard_count, 12);
    assert_eq!(d.warm_throughput, Some(WarmThroughput { target_mibps: 12, current_mibps: 12 }));
    // Nothing is hot: a pass after the window splits nothing.
    fx.clock.advance(Duration::from_secs(60));
    assert!(ds.autoscale().is_empty());
}
