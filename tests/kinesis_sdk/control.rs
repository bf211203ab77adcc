//! Stream lifecycle and control plane.

use crate::harness::*;

// ---------------------------------------------------------------------------------------------
// Stream lifecycle and control plane
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_describe_summary_delete() {
    let env = Env::start().await;
    let k = &env.kds;
    let out = k.create_stream().stream_name("orders").shard_count(3).send().await;
    out.unwrap();
    env.wait_active("orders").await;

    let d = k.describe_stream().stream_name("orders").send().await.unwrap();
    let d = d.stream_description().unwrap();
    assert_eq!(d.stream_name(), "orders");
    assert!(d.stream_arn().starts_with("arn:aws:kinesis:"), "{}", d.stream_arn());
    assert!(d.stream_arn().ends_with(":stream/orders"), "{}", d.stream_arn());
    assert_eq!(d.stream_status(), &StreamStatus::Active);
    assert_eq!(d.retention_period_hours(), 24);
    assert!(!d.has_more_shards());
    assert_eq!(
        d.stream_mode_details().map(|m| m.stream_mode().clone()),
        Some(StreamMode::Provisioned)
    );
    let shards = d.shards();
    assert_eq!(
        shards.iter().map(|s| s.shard_id()).collect::<Vec<_>>(),
        ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002"]
    );
    // The shards split the 128-bit hash space evenly and contiguously.
    let mut next = 0u128;
    for s in shards {
        let (a, b) = range_of(s);
        assert_eq!(a, next, "contiguous ranges");
        assert!(b >= a);
        next = b.wrapping_add(1);
        assert!(s.parent_shard_id().is_none() && s.adjacent_parent_shard_id().is_none());
        let seq = s.sequence_number_range().unwrap();
        seq_key(seq.starting_sequence_number());
        assert!(seq.ending_sequence_number().is_none(), "open shard has no EndingSequenceNumber");
    }
    assert_eq!(next, 0, "the last range ends at 2^128-1");

    // Limit on DescribeStream pages the shards with ExclusiveStartShardId.
    let p1 = k.describe_stream().stream_name("orders").limit(2).send().await.unwrap();
    let p1 = p1.stream_description().unwrap();
    assert_eq!(p1.shards().len(), 2);
    assert!(p1.has_more_shards());
    let p2 = k
        .describe_stream()
        .stream_name("orders")
        .exclusive_start_shard_id("shardId-000000000001")
        .send()
        .await
        .unwrap();
    let p2 = p2.stream_description().unwrap();
    assert_eq!(
        p2.shards().iter().map(|s| s.shard_id()).collect::<Vec<_>>(),
        ["shardId-000000000002"]
    );
    assert!(!p2.has_more_shards());

    let s = k.describe_stream_summary().stream_name("orders").send().await.unwrap();
    let s = s.stream_description_summary().unwrap();
    assert_eq!(s.stream_name(), "orders");
    assert_eq!(s.open_shard_count(), 3);
    assert_eq!(s.retention_period_hours(), 24);
    assert_eq!(s.stream_status(), &StreamStatus::Active);
    assert_eq!(s.consumer_count().unwrap_or(0), 0);
    assert_eq!(s.stream_creation_timestamp().as_secs_f64(), env.now().as_secs_f64());

    // StreamARN is accepted wherever StreamName is.
    let arn = s.stream_arn().to_owned();
    let by_arn = k.describe_stream_summary().stream_arn(&arn).send().await.unwrap();
    assert_eq!(by_arn.stream_description_summary().unwrap().stream_name(), "orders");

    // Duplicate create.
    let dup = k.create_stream().stream_name("orders").shard_count(1).send().await;
    assert_eq!(code(dup), "ResourceInUseException");

    k.delete_stream().stream_name("orders").send().await.unwrap();
    // DELETING may be observable briefly; then the stream is gone.
    let mut gone = false;
    for _ in 0..200 {
        match k.describe_stream_summary().stream_name("orders").send().await {
            Err(e) => {
                assert_eq!(e.code(), Some("ResourceNotFoundException"), "{e:?}");
                gone = true;
                break;
            }
            Ok(s) => assert_eq!(
                s.stream_description_summary().unwrap().stream_status(),
                &StreamStatus::Deleting
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "deleted stream still described");
    assert_eq!(
        code(k.delete_stream().stream_name("orders").send().await),
        "ResourceNotFoundException"
    );
    // The name can be used again, and the new stream starts empty.
    env.create("orders", 1).await;
    let it = env
        .iterator("orders", "shardId-000000000000", ShardIteratorType::TrimHorizon, None, None)
        .await;
    assert!(env.drain(it).await.0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_on_demand() {
    let env = Env::start().await;
    env.kds
        .create_stream()
        .stream_name("od")
        .stream_mode_details(
            StreamModeDetails::builder().stream_mode(StreamMode::OnDemand).build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    env.wait_active("od").await;
    let s = env.kds.describe_stream_summary().stream_name("od").send().await.unwrap();
    let s = s.stream_description_summary().unwrap();
    assert_eq!(s.stream_mode_details().unwrap().stream_mode(), &StreamMode::OnDemand);
    // AWS gives a new on-demand stream 4 shards; at least one, covering the hash space.
    assert!(s.open_shard_count() >= 1);
    let shards = env.shards("od").await;
    assert_eq!(shards.len() as i32, s.open_shard_count());
    assert_eq!(range_of(&shards[0]).0, 0);
    assert_eq!(range_of(shards.last().unwrap()).1, MAX_HASH);

    // Records flow the same way.
    let put = env.kds.put_record().stream_name("od").partition_key("k").data(Blob::new("v")).send();
    let put = put.await.unwrap();
    assert_eq!(put.shard_id(), shard_for(&shards, md5_hash("k")));
    let lim = env.kds.describe_limits().send().await.unwrap();
    assert!(lim.on_demand_stream_count() >= 1, "{lim:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_streams_pagination() {
    let env = Env::start().await;
    let names: Vec<String> = (0..7).map(|i| format!("ls-{i:02}")).collect();
    for n in &names {
        env.create(n, 1).await;
    }
    // Page with Limit 2 and NextToken.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 100, "ListStreams never ended");
        let req = match &token {
            Some(t) => env.kds.list_streams().next_token(t).limit(2),
            None => env.kds.list_streams().limit(2),
        };
        let r = req.send().await.unwrap();
        assert!(r.stream_names().len() <= 2);
        assert_eq!(r.stream_names().len(), r.stream_summaries().len());
        for (n, s) in r.stream_names().iter().zip(r.stream_summaries()) {
            assert_eq!(n, s.stream_name());
            assert!(s.stream_arn().ends_with(&format!(":stream/{n}")));
        }
        seen.extend(r.stream_names().iter().cloned());
        if !r.has_more_streams() {
            assert!(r.next_token().is_none(), "NextToken without HasMoreStreams");
            break;
        }
        token = Some(r.next_token().expect("NextToken when HasMoreStreams").to_owned());
    }
    let mine: Vec<&String> = seen.iter().filter(|n| n.starts_with("ls-")).collect();
    assert_eq!(mine, names.iter().collect::<Vec<_>>(), "every stream once, in name order");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no stream listed twice");

    // The legacy ExclusiveStartStreamName paging.
    let r = env.kds.list_streams().exclusive_start_stream_name("ls-04").send().await.unwrap();
    let after: Vec<&String> = r.stream_names().iter().filter(|n| n.starts_with("ls-")).collect();
    assert_eq!(after, ["ls-05", "ls-06"]);

    // A garbage NextToken.
    let bad = env.kds.list_streams().next_token("garbage-token").send().await;
    let c = code(bad);
    assert!(c == "InvalidArgumentException" || c == "ExpiredNextTokenException", "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shards_tokens_and_filters() {
    let env = Env::start().await;
    env.create("ls", 5).await;
    let all = env.shards("ls").await;
    assert_eq!(all.len(), 5);

    // MaxResults + NextToken (NextToken alone on follow-up calls).
    let p1 = env.kds.list_shards().stream_name("ls").max_results(2).send().await.unwrap();
    assert_eq!(p1.shards().len(), 2);
    let tok = p1.next_token().expect("NextToken").to_owned();
    let p2 = env.kds.list_shards().next_token(&tok).max_results(2).send().await.unwrap();
    assert_eq!(
        p2.shards().iter().map(|s| s.shard_id()).collect::<Vec<_>>(),
        ["shardId-000000000002", "shardId-000000000003"]
    );
    // NextToken with StreamName is invalid (AWS: they cannot be given together).
    let both = env.kds.list_shards().stream_name("ls").next_token(&tok).send().await;
    assert_eq!(code(both), "InvalidArgumentException");
    // A NextToken expires after 300 s.
    env.clock.advance(Duration::from_secs(301));
    let old = env.kds.list_shards().next_token(&tok).send().await;
    assert_eq!(code(old), "ExpiredNextTokenException");

    // ExclusiveStartShardId.
    let r = env
        .kds
        .list_shards()
        .stream_name("ls")
        .exclusive_start_shard_id("shardId-000000000002")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.shards().iter().map(|s| s.shard_id()).collect::<Vec<_>>(),
        ["shardId-000000000003", "shardId-000000000004"]
    );

    // Split one shard so that open and closed shards differ.
    let (a, b) = range_of(&all[0]);
    env.kds
        .split_shard()
        .stream_name("ls")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((a + (b - a) / 2 + 1).to_string())
        .send()
        .await
        .unwrap();
    env.wait_active("ls").await;
    let all = env.shards("ls").await;
    assert_eq!(all.len(), 7);

    let filter = |t: ShardFilterType| ShardFilter::builder().r#type(t).build().unwrap();
    let ids = |v: Vec<Shard>| v.iter().map(|s| s.shard_id().to_owned()).collect::<Vec<_>>();
    let latest = ids(env.shards_filtered("ls", Some(filter(ShardFilterType::AtLatest))).await);
    assert_eq!(
        latest,
        [
            "shardId-000000000001",
            "shardId-000000000002",
            "shardId-000000000003",
            "shardId-000000000004",
            "shardId-000000000005",
            "shardId-000000000006"
        ]
    );
    let horizon =
        ids(env.shards_filtered("ls", Some(filter(ShardFilterType::AtTrimHorizon))).await);
    // AT_TRIM_HORIZON: the shards open at the trim horizon — the original five.
    assert_eq!(horizon, ids(all.iter().take(5).cloned().collect()));
    let from = ids(env.shards_filtered("ls", Some(filter(ShardFilterType::FromTrimHorizon))).await);
    assert_eq!(from, ids(all.clone()));
    let after = ShardFilter::builder()
        .r#type(ShardFilterType::AfterShardId)
        .shard_id("shardId-000000000004")
        .build()
        .unwrap();
    let after = ids(env.shards_filtered("ls", Some(after)).await);
    assert_eq!(after, ["shardId-000000000005", "shardId-000000000006"]);

    // AFTER_SHARD_ID without ShardId is invalid.
    let bad = env
        .kds
        .list_shards()
        .stream_name("ls")
        .shard_filter(filter(ShardFilterType::AfterShardId))
        .send()
        .await;
    assert_eq!(code(bad), "InvalidArgumentException");
    assert_eq!(
        code(env.kds.list_shards().stream_name("nope").send().await),
        "ResourceNotFoundException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_period_operations() {
    let env = Env::start().await;
    env.create("ret", 1).await;
    let hours = |env: &Env| {
        let k = env.kds.clone();
        async move {
            let s = k.describe_stream_summary().stream_name("ret").send().await.unwrap();
            s.stream_description_summary().unwrap().retention_period_hours()
        }
    };
    let k = &env.kds;
    k.increase_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(168)
        .send()
        .await
        .unwrap();
    assert_eq!(hours(&env).await, 168);
    k.increase_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(8760)
        .send()
        .await
        .unwrap();
    assert_eq!(hours(&env).await, 8760);
    k.decrease_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(48)
        .send()
        .await
        .unwrap();
    assert_eq!(hours(&env).await, 48);

    // Increase to less than the current value, decrease to more: InvalidArgumentException.
    let e = k
        .increase_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(24)
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
    let e = k
        .decrease_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(72)
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
    // Out of 24–8760.
    let e = k
        .decrease_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(23)
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
    let e = k
        .increase_stream_retention_period()
        .stream_name("ret")
        .retention_period_hours(8761)
        .send()
        .await;
    // Above the model's range (ValidationException) or the service's (InvalidArgument).
    let c = code(e);
    assert!(c == "InvalidArgumentException" || c == "ValidationException", "8761 h: {c}");
    assert_eq!(hours(&env).await, 48);
    let e = k
        .increase_stream_retention_period()
        .stream_name("none")
        .retention_period_hours(48)
        .send()
        .await;
    assert_eq!(code(e), "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_add_list_remove() {
    let env = Env::start().await;
    env.create("tagged", 1).await;
    let k = &env.kds;
    k.add_tags_to_stream()
        .stream_name("tagged")
        .tags("team", "video")
        .tags("env", "test")
        .tags("empty", "")
        .send()
        .await
        .unwrap();
    let list = |excl: Option<&str>, limit: Option<i32>| {
        k.list_tags_for_stream()
            .stream_name("tagged")
            .set_exclusive_start_tag_key(excl.map(str::to_owned))
            .set_limit(limit)
            .send()
    };
    let r = list(None, None).await.unwrap();
    let tags: BTreeMap<&str, &str> =
        r.tags().iter().map(|t| (t.key(), t.value().unwrap_or(""))).collect();
    assert_eq!(tags, BTreeMap::from([("empty", ""), ("env", "test"), ("team", "video")]));
    assert!(!r.has_more_tags());
    // Keys are listed in order; Limit and ExclusiveStartTagKey page them.
    let r = list(None, Some(2)).await.unwrap();
    assert_eq!(r.tags().iter().map(|t| t.key()).collect::<Vec<_>>(), ["empty", "env"]);
    assert!(r.has_more_tags());
    let r = list(Some("env"), None).await.unwrap();
    assert_eq!(r.tags().iter().map(|t| t.key()).collect::<Vec<_>>(), ["team"]);

    // Overwrite a value; remove a key (removing an absent key is fine).
    k.add_tags_to_stream().stream_name("tagged").tags("env", "prod").send().await.unwrap();
    k.remove_tags_from_stream()
        .stream_name("tagged")
        .tag_keys("team")
        .tag_keys("absent")
        .send()
        .await
        .unwrap();
    let r = list(None, None).await.unwrap();
    let tags: BTreeMap<&str, &str> =
        r.tags().iter().map(|t| (t.key(), t.value().unwrap_or(""))).collect();
    assert_eq!(tags, BTreeMap::from([("empty", ""), ("env", "prod")]));

    // More than 50 tags on a stream: InvalidArgumentException (AWS limit per stream).
    let mut add = k.add_tags_to_stream().stream_name("tagged");
    for i in 0..50 {
        add = add.tags(format!("k{i:02}"), "v");
    }
    let c = code(add.send().await);
    assert!(c == "InvalidArgumentException" || c == "LimitExceededException", "51+ tags: {c}");
    assert_eq!(
        code(k.list_tags_for_stream().stream_name("none").send().await),
        "ResourceNotFoundException"
    );
    // Tags given at creation.
    k.create_stream()
        .stream_name("born-tagged")
        .shard_count(1)
        .tags("a", "1")
        .send()
        .await
        .unwrap();
    env.wait_active("born-tagged").await;
    let r = k.list_tags_for_stream().stream_name("born-tagged").send().await.unwrap();
    assert_eq!(
        r.tags().iter().map(|t| (t.key(), t.value())).collect::<Vec<_>>(),
        [("a", Some("1"))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_register_list_describe_deregister() {
    let env = Env::start().await;
    env.create("fan", 2).await;
    let arn = env.arn("fan").await;
    let k = &env.kds;
    let reg = k.register_stream_consumer().stream_arn(&arn).consumer_name("app-1").send().await;
    let reg = reg.unwrap();
    let c = reg.consumer().expect("Consumer");
    assert_eq!(c.consumer_name(), "app-1");
    assert!(
        c.consumer_arn().starts_with(&format!("{arn}/consumer/app-1:")),
        "{}",
        c.consumer_arn()
    );
    assert!(matches!(c.consumer_status(), ConsumerStatus::Creating | ConsumerStatus::Active));
    let consumer_arn = c.consumer_arn().to_owned();
    k.register_stream_consumer().stream_arn(&arn).consumer_name("app-2").send().await.unwrap();
    let dup = k.register_stream_consumer().stream_arn(&arn).consumer_name("app-1").send().await;
    assert_eq!(code(dup), "ResourceInUseException");

    // Describe by consumer ARN and by stream ARN + name.
    let mut active = false;
    for _ in 0..200 {
        let d = k.describe_stream_consumer().consumer_arn(&consumer_arn).send().await.unwrap();
        let d = d.consumer_description().unwrap();
        assert_eq!(d.consumer_name(), "app-1");
        assert_eq!(d.stream_arn(), arn);
        if d.consumer_status() == &ConsumerStatus::Active {
            active = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(active, "consumer never became ACTIVE");
    let d = k.describe_stream_consumer().stream_arn(&arn).consumer_name("app-1").send().await;
    assert_eq!(d.unwrap().consumer_description().unwrap().consumer_arn(), consumer_arn);

    let l = k.list_stream_consumers().stream_arn(&arn).send().await.unwrap();
    let mut names: Vec<&str> = l.consumers().iter().map(|c| c.consumer_name()).collect();
    names.sort();
    assert_eq!(names, ["app-1", "app-2"]);
    let p = k.list_stream_consumers().stream_arn(&arn).max_results(1).send().await.unwrap();
    assert_eq!(p.consumers().len(), 1);
    let tok = p.next_token().expect("NextToken").to_owned();
    let p2 = k.list_stream_consumers().next_token(&tok).stream_arn(&arn).max_results(1).send();
    let p2 = p2.await.unwrap();
    assert_eq!(p2.consumers().len(), 1);
    assert_ne!(p.consumers()[0].consumer_name(), p2.consumers()[0].consumer_name());

    let s = k.describe_stream_summary().stream_name("fan").send().await.unwrap();
    assert_eq!(s.stream_description_summary().unwrap().consumer_count(), Some(2));

    k.deregister_stream_consumer().consumer_arn(&consumer_arn).send().await.unwrap();
    k.deregister_stream_consumer().stream_arn(&arn).consumer_name("app-2").send().await.unwrap();
    let mut empty = false;
    for _ in 0..200 {
        let l = k.list_stream_consumers().stream_arn(&arn).send().await.unwrap();
        if l.consumers().is_empty() {
            empty = true;
            break;
        }
        assert!(l.consumers().iter().all(|c| c.consumer_status() == &ConsumerStatus::Deleting));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(empty, "deregistered consumers still listed");
    let gone = k.describe_stream_consumer().consumer_arn(&consumer_arn).send().await;
    assert_eq!(code(gone), "ResourceNotFoundException");
    let bad_stream = format!("{}x", arn);
    let e = k.register_stream_consumer().stream_arn(bad_stream).consumer_name("z").send().await;
    assert_eq!(code(e), "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_limits_counts_shards() {
    let env = Env::start().await;
    let before = env.kds.describe_limits().send().await.unwrap();
    env.create("l1", 3).await;
    env.create("l2", 2).await;
    let after = env.kds.describe_limits().send().await.unwrap();
    assert_eq!(after.open_shard_count(), before.open_shard_count() + 5);
    assert!(after.shard_limit() >= after.open_shard_count());
    assert!(after.on_demand_stream_count_limit() >= after.on_demand_stream_count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_stream_mode_both_ways() {
    let env = Env::start().await;
    env.create("mode", 2).await;
    let arn = env.arn("mode").await;
    let mode = |m: StreamMode| StreamModeDetails::builder().stream_mode(m).build().unwrap();
    env.kds
        .update_stream_mode()
        .stream_arn(&arn)
        .stream_mode_details(mode(StreamMode::OnDemand))
        .send()
        .await
        .unwrap();
    env.wait_active("mode").await;
    let s = env.kds.describe_stream_summary().stream_name("mode").send().await.unwrap();
    let s = s.stream_description_summary().unwrap();
    assert_eq!(s.stream_mode_details().unwrap().stream_mode(), &StreamMode::OnDemand);
    // Already ON_DEMAND: AWS refuses a no-op switch.
    let again = env
        .kds
        .update_stream_mode()
        .stream_arn(&arn)
        .stream_mode_details(mode(StreamMode::OnDemand))
        .send()
        .await;
    let c = code(again);
    assert!(c == "InvalidArgumentException" || c == "ResourceInUseException", "{c}");
    env.kds
        .update_stream_mode()
        .stream_arn(&arn)
        .stream_mode_details(mode(StreamMode::Provisioned))
        .send()
        .await
        .unwrap();
    env.wait_active("mode").await;
    let s = env.kds.describe_stream_summary().stream_name("mode").send().await.unwrap();
    let s = s.stream_description_summary().unwrap();
    assert_eq!(s.stream_mode_details().unwrap().stream_mode(), &StreamMode::Provisioned);
    // Records still flow.
    env.kds
        .put_record()
        .stream_name("mode")
        .partition_key("p")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_shard_count_uniform_scaling() {
    let env = Env::start().await;
    env.create("scale", 2).await;
    for i in 0..50 {
        env.kds
            .put_record()
            .stream_name("scale")
            .partition_key(format!("k{i}"))
            .data(Blob::new(format!("old-{i}")))
            .send()
            .await
            .unwrap();
    }
    let r = env
        .kds
        .update_shard_count()
        .stream_name("scale")
        .target_shard_count(4)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .unwrap();
    assert_eq!(r.current_shard_count(), Some(2));
    assert_eq!(r.target_shard_count(), Some(4));
    assert_eq!(r.stream_name(), Some("scale"));
    env.wait_active("scale").await;

    let check_open = |shards: &[Shard], n: usize| {
        let open: Vec<&Shard> = shards.iter().filter(|s| is_open(s)).collect();
        assert_eq!(open.len(), n, "open shards");
        let mut next = 0u128;
        let mut ranges: Vec<(u128, u128)> = open.iter().map(|s| range_of(s)).collect();
        ranges.sort();
        for (a, b) in &ranges {
            assert_eq!(*a, next, "open shards cover the hash space contiguously: {ranges:?}");
            next = b.wrapping_add(1);
        }
        assert_eq!(next, 0);
        // Uniform: every open range within 1% of the ideal width... or equal splits.
        let ideal = MAX_HASH / n as u128;
        for (a, b) in &ranges {
            let w = b - a;
            assert!(w.abs_diff(ideal) <= ideal / 100, "uneven range {a}..{b}");
        }
    };
    let shards = env.shards("scale").await;
    check_open(&shards, 4);
    let s = env.kds.describe_stream_summary().stream_name("scale").send().await.unwrap();
    assert_eq!(s.stream_description_summary().unwrap().open_shard_count(), 4);
    // Every closed shard has children among the shards (lineage is recorded).
    for s in shards.iter().filter(|s| !is_open(s)) {
        assert!(
            shards.iter().any(|c| c.parent_shard_id() == Some(s.shard_id())
                || c.adjacent_parent_shard_id() == Some(s.shard_id())),
            "closed shard {} has no child",
            s.shard_id()
        );
    }

    // Down to 1 (AWS allows halving per call... but 4 → 2 → 1 is always allowed).
    for target in [2, 1] {
        env.kds
            .update_shard_count()
            .stream_name("scale")
            .target_shard_count(target)
            .scaling_type(ScalingType::UniformScaling)
            .send()
            .await
            .unwrap();
        env.wait_active("scale").await;
        check_open(&env.shards("scale").await, target as usize);
    }
    // New records go to the single open shard; the old records are still readable.
    let put = env
        .kds
        .put_record()
        .stream_name("scale")
        .partition_key("z")
        .data(Blob::new("new"))
        .send()
        .await
        .unwrap();
    let shards = env.shards("scale").await;
    assert_eq!(put.shard_id(), shard_for(&shards, md5_hash("z")));
    let mut old = 0;
    for s in shards.iter().filter(|s| !is_open(s)) {
        let it =
            env.iterator("scale", s.shard_id(), ShardIteratorType::TrimHorizon, None, None).await;
        old += env.drain(it).await.0.len();
    }
    assert_eq!(old, 50);
    // More than doubling (AWS: a documented UpdateShardCount limit) or going to 0 is refused.
    let e = env
        .kds
        .update_shard_count()
        .stream_name("scale")
        .target_shard_count(3)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await;
    let c = code(e);
    assert!(c == "LimitExceededException" || c == "InvalidArgumentException", "1 → 3: {c}");
    let e = env
        .kds
        .update_shard_count()
        .stream_name("scale")
        .target_shard_count(0)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await;
    let c = code(e);
    assert!(c == "ValidationException" || c == "InvalidArgumentException", "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_by_resource_arn() {
    let env = Env::start().await;
    env.create("arn-tagged", 1).await;
    let k = &env.kds;
    let arn = env.arn("arn-tagged").await;
    k.tag_resource()
        .resource_arn(&arn)
        .tags("team", "video")
        .tags("env", "test")
        .send()
        .await
        .unwrap();
    let listed = k.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
    let tags: BTreeMap<&str, &str> =
        listed.tags().iter().map(|t| (t.key(), t.value().unwrap_or(""))).collect();
    assert_eq!(tags, BTreeMap::from([("env", "test"), ("team", "video")]));
    // The same tags as the stream-name operations see.
    let by_name = k.list_tags_for_stream().stream_name("arn-tagged").send().await.unwrap();
    assert_eq!(by_name.tags().len(), 2);
    k.untag_resource().resource_arn(&arn).tag_keys("team").send().await.unwrap();
    let listed = k.list_tags_for_resource().resource_arn(&arn).send().await.unwrap();
    assert_eq!(listed.tags().iter().map(|t| t.key()).collect::<Vec<_>>(), ["env"]);
    let consumer = format!("{arn}/consumer/app:1700000000");
    assert_eq!(
        code(k.tag_resource().resource_arn(&consumer).tags("a", "b").send().await),
        "InvalidArgumentException"
    );
    let unknown = arn.replace("arn-tagged", "nope");
    assert_eq!(
        code(k.list_tags_for_resource().resource_arn(&unknown).send().await),
        "ResourceNotFoundException"
    );
}
