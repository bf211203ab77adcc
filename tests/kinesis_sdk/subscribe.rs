//! SubscribeToShard (enhanced fan-out) through the AWS SDK for Rust's event-stream client:
//! records pushed as they are written, the continuation sequence number, the one-subscription
//! rule (a second call within 5 s is refused; a later one takes over and the older ends with
//! ResourceInUseException), a split shard's ChildShards, and the end of a subscription's life.

use kinesis::types::{StartingPosition, SubscribeToShardEvent, SubscribeToShardEventStream};

use crate::harness::*;

type Events = kinesis::operation::subscribe_to_shard::SubscribeToShardOutput;

async fn consumer(env: &Env, stream: &str, name: &str) -> String {
    let arn = env.arn(stream).await;
    let r = env.kds.register_stream_consumer().stream_arn(arn).consumer_name(name).send().await;
    r.unwrap().consumer().unwrap().consumer_arn().to_owned()
}

async fn subscribe(env: &Env, consumer: &str, shard: &str, kind: ShardIteratorType) -> Events {
    let start = StartingPosition::builder().r#type(kind).build().unwrap();
    env.kds
        .subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id(shard)
        .starting_position(start)
        .send()
        .await
        .unwrap()
}

/// The next SubscribeToShardEvent (bounded: a heartbeat comes every 5 s).
async fn next_event(out: &mut Events) -> Option<SubscribeToShardEvent> {
    let r = tokio::time::timeout(Duration::from_secs(30), out.event_stream.recv()).await;
    match r.expect("an event within 30 s").expect("an event, not an error") {
        Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)) => Some(e),
        None => None,
        Some(other) => panic!("unexpected event {other:?}"),
    }
}

/// Events until `n` records arrived: the records and the last event.
async fn records(out: &mut Events, n: usize) -> (Vec<Record>, SubscribeToShardEvent) {
    let mut got = Vec::new();
    loop {
        let e = next_event(out).await.expect("the subscription ended early");
        got.extend(e.records().iter().cloned());
        if got.len() >= n {
            return (got, e);
        }
    }
}

async fn put(env: &Env, stream: &str, key: &str, data: &str) -> String {
    let r = env.kds.put_record().stream_name(stream).partition_key(key).data(Blob::new(data));
    r.send().await.unwrap().sequence_number().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_pushed_as_they_are_written() {
    let env = Env::start().await;
    env.create("push", 1).await;
    let shard = "shardId-000000000000";
    let before = put(&env, "push", "k", "before").await;
    let app = consumer(&env, "push", "app").await;
    let mut sub = subscribe(&env, &app, shard, ShardIteratorType::TrimHorizon).await;
    let (got, _) = records(&mut sub, 1).await;
    assert_eq!(got[0].sequence_number(), before);
    // Written after the subscription opened: delivered without asking.
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(put(&env, "push", &format!("k{i}"), &format!("after-{i}")).await);
    }
    let (got, last) = records(&mut sub, 5).await;
    let seqs: Vec<&str> = got.iter().map(|r| r.sequence_number()).collect();
    assert_eq!(seqs, sent.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(got[4].data().as_ref(), b"after-4");
    assert_eq!(last.continuation_sequence_number(), sent[4], "resume after the last record");
    assert_eq!(last.millis_behind_latest(), 0);

    // Within 5 s of the last subscription: refused. Later: it takes over, the first one ends.
    let start = StartingPosition::builder()
        .r#type(ShardIteratorType::AfterSequenceNumber)
        .sequence_number(&sent[4])
        .build()
        .unwrap();
    let again = env.kds.subscribe_to_shard().consumer_arn(&app).shard_id(shard);
    assert_eq!(
        code(again.clone().starting_position(start.clone()).send().await),
        "ResourceInUseException"
    );
    env.clock.advance(Duration::from_secs(6));
    let mut second = again.starting_position(start).send().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match sub.event_stream.recv().await {
                Ok(Some(_)) => continue,
                Ok(None) => return "ended without an error".to_owned(),
                Err(e) => return format!("{e:?}"),
            }
        }
    })
    .await
    .expect("the first subscription ends");
    assert!(ended.contains("ResourceInUseException"), "{ended}");
    // The second one continues after the continuation number: only what comes next.
    let next = put(&env, "push", "k", "next").await;
    let (got, _) = records(&mut second, 1).await;
    assert_eq!(got[0].sequence_number(), next);

    // Unknown consumer or shard: errors before any event.
    let latest = StartingPosition::builder().r#type(ShardIteratorType::Latest).build().unwrap();
    let nobody = format!("{}/consumer/nobody:1", env.arn("push").await);
    let r = env.kds.subscribe_to_shard().consumer_arn(nobody).shard_id(shard);
    assert_eq!(code(r.starting_position(latest.clone()).send().await), "ResourceNotFoundException");
    let r = env.kds.subscribe_to_shard().consumer_arn(&app).shard_id("shardId-000000000009");
    assert_eq!(code(r.starting_position(latest).send().await), "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_shard_ends_with_its_children_and_subscriptions_expire() {
    let env = Env::start_with(|c| c.data_streams.subscription_secs = Duration::from_secs(3)).await;
    env.create("split", 1).await;
    let app = consumer(&env, "split", "app").await;
    let parent = "shardId-000000000000";
    let mut sub = subscribe(&env, &app, parent, ShardIteratorType::Latest).await;
    put(&env, "split", "k", "x").await;
    records(&mut sub, 1).await;
    env.kds
        .split_shard()
        .stream_name("split")
        .shard_to_split(parent)
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    let last = loop {
        let e = next_event(&mut sub).await.expect("an event with the children");
        if !e.child_shards().is_empty() {
            break e;
        }
    };
    let children: Vec<&str> = last.child_shards().iter().map(|c| c.shard_id()).collect();
    assert_eq!(children, ["shardId-000000000001", "shardId-000000000002"]);
    assert!(next_event(&mut sub).await.is_none(), "a drained closed shard ends the subscription");

    // An idle subscription ends after its lifetime (3 s here), after a heartbeat or not.
    env.clock.advance(Duration::from_secs(10));
    let mut idle = subscribe(&env, &app, "shardId-000000000001", ShardIteratorType::Latest).await;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while next_event(&mut idle).await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the subscription ended by itself");
}

/// The event stream over HTTP/2 (what the Java SDK uses), here with curl speaking h2c with prior
/// knowledge; the frames it saved are read back with the AWS event-stream decoder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_flows_over_http2() {
    use aws_smithy_types::event_stream::HeaderValue;
    require_tool("curl");
    let env = Env::start().await;
    env.create("h2", 1).await;
    let seq = put(&env, "h2", "k", "over-h2").await;
    let app = consumer(&env, "h2", "app").await;
    let body = json!({"ConsumerARN": app, "ShardId": "shardId-000000000000",
                      "StartingPosition": {"Type": "TRIM_HORIZON"}});
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("events.bin");
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-s", "--http2-prior-knowledge", "--max-time", "4", "-X", "POST"])
        .args(["-H", "x-amz-target: Kinesis_20131202.SubscribeToShard"])
        .args(["-H", "content-type: application/x-amz-json-1.1"])
        .args(["--data-binary", &body.to_string(), "-o"])
        .arg(&saved)
        .args(["-w", "%{http_version} %{http_code} %{content_type}"])
        .arg(env.server.url("/"));
    // The subscription outlives curl's 4 s; curl ends it (exit 28) with what it received.
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(summary, "2 200 application/vnd.amazon.eventstream", "{out:?}");
    let mut bytes = bytes::Bytes::from(std::fs::read(&saved).unwrap());
    let mut events = Vec::new();
    while !bytes.is_empty() {
        let m =
            aws_smithy_eventstream::frame::read_message_from(&mut bytes).expect("a whole frame");
        let kind = m
            .headers()
            .iter()
            .find(|h| h.name().as_str() == ":event-type")
            .map(|h| h.value().clone());
        events.push((kind, m.payload().clone()));
    }
    assert!(events.len() >= 2, "the initial response and an event: {events:?}");
    assert_eq!(events[0].0, Some(HeaderValue::String("initial-response".into())));
    assert_eq!(events[1].0, Some(HeaderValue::String("SubscribeToShardEvent".into())));
    let first: Value = serde_json::from_slice(&events[1].1).unwrap();
    assert_eq!(first["Records"][0]["SequenceNumber"], seq.as_str());
    assert_eq!(first["Records"][0]["Data"], "b3Zlci1oMg==", "base64 of over-h2");
    assert_eq!(first["ContinuationSequenceNumber"], seq.as_str());
}
