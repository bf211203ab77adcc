//! Resharding lineage.

use crate::harness::*;

// ---------------------------------------------------------------------------------------------
// Resharding lineage
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_merge_lineage() {
    let env = Env::start().await;
    env.create("lin", 1).await;
    let k = &env.kds;
    let put = |key: String, data: String| {
        k.put_record().stream_name("lin").partition_key(key).data(Blob::new(data)).send()
    };
    let mut before = Vec::new();
    for i in 0..30 {
        before.push(
            put(format!("k{i}"), format!("before-{i}")).await.unwrap().sequence_number().to_owned(),
        );
    }
    let mid: u128 = 1u128 << 127;
    k.split_shard()
        .stream_name("lin")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key(mid.to_string())
        .send()
        .await
        .unwrap();
    env.wait_active("lin").await;

    let shards = env.shards("lin").await;
    let ids: Vec<&str> = shards.iter().map(|s| s.shard_id()).collect();
    assert_eq!(ids, ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002"]);
    let parent = &shards[0];
    let end = parent
        .sequence_number_range()
        .unwrap()
        .ending_sequence_number()
        .expect("parent closed: EndingSequenceNumber");
    assert!(
        seq_key(end) >= seq_key(before.last().unwrap()),
        "EndingSequenceNumber ≥ the last record"
    );
    let (c1, c2) = (&shards[1], &shards[2]);
    assert_eq!(range_of(c1), (0, mid - 1));
    assert_eq!(range_of(c2), (mid, MAX_HASH));
    for c in [c1, c2] {
        assert_eq!(c.parent_shard_id(), Some("shardId-000000000000"));
        assert_eq!(c.adjacent_parent_shard_id(), None);
        assert!(is_open(c));
        // Children's sequence numbers start after the parent's end.
        assert!(
            seq_key(c.sequence_number_range().unwrap().starting_sequence_number()) > seq_key(end)
        );
    }

    // Writes now go to the children.
    let mut after = Vec::new();
    for i in 0..30 {
        let key = format!("k{i}");
        let r = put(key.clone(), format!("after-{i}")).await.unwrap();
        assert_eq!(r.shard_id(), shard_for(&shards, md5_hash(&key)));
        assert_ne!(r.shard_id(), "shardId-000000000000");
        after.push(r.sequence_number().to_owned());
    }

    // The parent still serves its records, then ends with ChildShards.
    let it = env
        .iterator("lin", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    let (recs, last) = env.drain(it).await;
    assert_eq!(recs.iter().map(|r| r.sequence_number().to_owned()).collect::<Vec<_>>(), before);
    assert!(last.next_shard_iterator().is_none(), "drained closed shard: NextShardIterator null");
    let mut children: Vec<(String, Vec<String>)> = last
        .child_shards()
        .iter()
        .map(|c| (c.shard_id().to_owned(), c.parent_shards().to_vec()))
        .collect();
    children.sort();
    assert_eq!(
        children,
        [
            ("shardId-000000000001".to_owned(), vec!["shardId-000000000000".to_owned()]),
            ("shardId-000000000002".to_owned(), vec!["shardId-000000000000".to_owned()]),
        ]
    );
    for c in last.child_shards() {
        let hk = c.hash_key_range().expect("ChildShard HashKeyRange");
        let want = if c.shard_id().ends_with('1') { (0, mid - 1) } else { (mid, MAX_HASH) };
        assert_eq!(
            (
                hk.starting_hash_key().parse::<u128>().unwrap(),
                hk.ending_hash_key().parse::<u128>().unwrap()
            ),
            want
        );
    }
    // LATEST on a closed shard: also at its end.
    let it =
        env.iterator("lin", "shardId-000000000000", ShardIteratorType::Latest, None, None).await;
    let (recs, last) = env.drain(it).await;
    assert!(recs.is_empty());
    assert!(last.next_shard_iterator().is_none());
    assert_eq!(last.child_shards().len(), 2);
    // Writing to the closed parent by ExplicitHashKey goes to a child instead.
    let r = k
        .put_record()
        .stream_name("lin")
        .partition_key("x")
        .explicit_hash_key("0")
        .data(Blob::new("e"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.shard_id(), "shardId-000000000001");

    // Merge the children: 1 is ShardToMerge, 2 the adjacent one.
    k.merge_shards()
        .stream_name("lin")
        .shard_to_merge("shardId-000000000001")
        .adjacent_shard_to_merge("shardId-000000000002")
        .send()
        .await
        .unwrap();
    env.wait_active("lin").await;
    let shards = env.shards("lin").await;
    assert_eq!(shards.len(), 4);
    let merged = &shards[3];
    assert_eq!(merged.shard_id(), "shardId-000000000003");
    assert_eq!(merged.parent_shard_id(), Some("shardId-000000000001"));
    assert_eq!(merged.adjacent_parent_shard_id(), Some("shardId-000000000002"));
    assert_eq!(range_of(merged), (0, MAX_HASH));
    assert!(is_open(merged));
    assert!(!is_open(&shards[1]) && !is_open(&shards[2]));

    // Children drained: their records (all of `after`, plus "e"), then ChildShards = the merged shard.
    let mut child_seqs = HashSet::new();
    for c in ["shardId-000000000001", "shardId-000000000002"] {
        let it = env.iterator("lin", c, ShardIteratorType::TrimHorizon, None, None).await;
        let (recs, last) = env.drain(it).await;
        child_seqs.extend(recs.iter().map(|r| r.sequence_number().to_owned()));
        assert!(last.next_shard_iterator().is_none(), "{c}: NextShardIterator null");
        let cs = last.child_shards();
        assert_eq!(cs.len(), 1, "{c}: {cs:?}");
        assert_eq!(cs[0].shard_id(), "shardId-000000000003");
        let mut parents = cs[0].parent_shards().to_vec();
        parents.sort();
        assert_eq!(parents, ["shardId-000000000001", "shardId-000000000002"]);
    }
    assert_eq!(child_seqs.len(), 31);
    assert!(after.iter().all(|s| child_seqs.contains(s)));

    // Invalid resharding requests.
    let e = k
        .merge_shards()
        .stream_name("lin")
        .shard_to_merge("shardId-000000000001")
        .adjacent_shard_to_merge("shardId-000000000003")
        .send()
        .await;
    let c = code(e);
    assert!(c == "InvalidArgumentException" || c == "ResourceInUseException", "merge closed: {c}");
    let e = k
        .split_shard()
        .stream_name("lin")
        .shard_to_split("shardId-000000000003")
        .new_starting_hash_key("0")
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException", "split at the range start");
    let e = k
        .split_shard()
        .stream_name("lin")
        .shard_to_split("shardId-000000000009")
        .new_starting_hash_key("5")
        .send()
        .await;
    assert_eq!(code(e), "ResourceNotFoundException");
    let e = k
        .split_shard()
        .stream_name("lin")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("5")
        .send()
        .await;
    // AWS: "… has already been merged or split, and thus is not eligible for merging or
    // splitting" (ResourceInUseException).
    let c = code(e);
    assert!(c == "ResourceInUseException" || c == "InvalidArgumentException", "split closed: {c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_non_adjacent_is_invalid() {
    let env = Env::start().await;
    env.create("na", 3).await;
    let e = env
        .kds
        .merge_shards()
        .stream_name("na")
        .shard_to_merge("shardId-000000000000")
        .adjacent_shard_to_merge("shardId-000000000002")
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
}
