//! The CBOR wire (`application/x-amz-cbor-1.1`, what the Java SDK and the KCL send by default),
//! driven by a CBOR client built here on `ciborium`: byte strings for blobs, tag 1 over epoch
//! milliseconds for timestamps. Records written through JSON (the Rust SDK) read back the same
//! through CBOR and the other way round.

use ciborium::Value as C;

use crate::harness::*;

fn t(s: &str) -> C {
    C::Text(s.to_owned())
}

fn map(members: &[(&str, C)]) -> C {
    C::Map(members.iter().map(|(k, v)| (t(k), v.clone())).collect())
}

fn get<'a>(v: &'a C, name: &str) -> &'a C {
    v.as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some(name)))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in {v:?}"))
}

/// One CBOR request: status, the answer's Content-Type and its decoded body.
async fn cbor(env: &Env, op: &str, body: Vec<u8>) -> (u16, String, C) {
    let resp = env
        .server
        .http
        .post(env.server.url("/"))
        .header("X-Amz-Target", format!("Kinesis_20131202.{op}"))
        .header("Content-Type", "application/x-amz-cbor-1.1")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let bytes = resp.bytes().await.unwrap();
    let v = ciborium::from_reader(&bytes[..]).unwrap_or_else(|e| panic!("{op}: not CBOR: {e}"));
    (status, ct, v)
}

async fn call(env: &Env, op: &str, req: C) -> C {
    let mut body = Vec::new();
    ciborium::into_writer(&req, &mut body).unwrap();
    let (status, ct, v) = cbor(env, op, body).await;
    assert_eq!((status, ct.as_str()), (200, "application/x-amz-cbor-1.1"), "{op}: {v:?}");
    v
}

async fn error(env: &Env, op: &str, body: Vec<u8>) -> String {
    let (status, ct, v) = cbor(env, op, body).await;
    assert_eq!((status, ct.as_str()), (400, "application/x-amz-cbor-1.1"), "{op}: {v:?}");
    assert!(get(&v, "message").is_text());
    get(&v, "__type").as_text().unwrap().to_owned()
}

fn encoded(v: &C) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

/// Every record of `stream` through CBOR GetRecords: (sequence number, partition key, data).
async fn read_all(env: &Env, stream: &str) -> BTreeMap<String, (String, Vec<u8>)> {
    let shards = call(env, "ListShards", map(&[("StreamName", t(stream))])).await;
    let mut out = BTreeMap::new();
    for shard in get(&shards, "Shards").as_array().unwrap() {
        let it = call(
            env,
            "GetShardIterator",
            map(&[
                ("StreamName", t(stream)),
                ("ShardId", get(shard, "ShardId").clone()),
                ("ShardIteratorType", t("TRIM_HORIZON")),
            ]),
        )
        .await;
        env.tick();
        let page =
            call(env, "GetRecords", map(&[("ShardIterator", get(&it, "ShardIterator").clone())]))
                .await;
        assert!(get(&page, "MillisBehindLatest").is_integer());
        for r in get(&page, "Records").as_array().unwrap() {
            let C::Tag(1, ms) = get(r, "ApproximateArrivalTimestamp") else { panic!("{r:?}") };
            let ms = i128::from(ms.as_integer().unwrap());
            assert_eq!(ms, i128::from(t0().as_millis()), "tag 1 over the arrival's epoch ms");
            let C::Bytes(data) = get(r, "Data") else { panic!("Data is a byte string: {r:?}") };
            out.insert(
                get(r, "SequenceNumber").as_text().unwrap().to_owned(),
                (get(r, "PartitionKey").as_text().unwrap().to_owned(), data.clone()),
            );
        }
    }
    out
}

/// The same records through the Rust SDK (JSON).
async fn read_all_json(env: &Env, stream: &str) -> BTreeMap<String, (String, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for shard in env.shards(stream).await {
        let it = env
            .iterator(stream, shard.shard_id(), ShardIteratorType::TrimHorizon, None, None)
            .await;
        let (records, _) = env.drain(it).await;
        for r in records {
            out.insert(
                r.sequence_number().to_owned(),
                (r.partition_key().unwrap_or_default().to_owned(), r.data().as_ref().to_vec()),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbor_clients_write_and_read_the_same_records_as_json_clients() {
    let env = Env::start().await;
    env.create("c", 2).await;
    let mut rng = rand::rng();
    let blobs: Vec<Vec<u8>> = (0..20)
        .map(|i| {
            let n = if i == 0 { 1 } else { rng.random_range(1..20_000) };
            (0..n).map(|_| rng.random::<u8>()).collect()
        })
        .collect();
    // PutRecords over CBOR, then PutRecord over CBOR and over JSON.
    let entries: Vec<C> = blobs[..18]
        .iter()
        .enumerate()
        .map(|(i, b)| map(&[("PartitionKey", t(&format!("k{i}"))), ("Data", C::Bytes(b.clone()))]))
        .collect();
    let put =
        call(&env, "PutRecords", map(&[("StreamName", t("c")), ("Records", C::Array(entries))]))
            .await;
    assert_eq!(get(&put, "FailedRecordCount"), &C::Integer(0.into()));
    assert_eq!(get(&put, "Records").as_array().unwrap().len(), 18);
    let one = call(
        &env,
        "PutRecord",
        map(&[
            ("StreamName", t("c")),
            ("PartitionKey", t("k18")),
            ("Data", C::Bytes(blobs[18].clone())),
        ]),
    )
    .await;
    assert!(get(&one, "SequenceNumber").as_text().is_some_and(|s| !s.is_empty()));
    env.kds
        .put_record()
        .stream_name("c")
        .partition_key("k19")
        .data(Blob::new(blobs[19].clone()))
        .send()
        .await
        .unwrap();

    let via_cbor = read_all(&env, "c").await;
    let via_json = read_all_json(&env, "c").await;
    assert_eq!(via_cbor.len(), 20);
    assert_eq!(via_cbor, via_json, "the same records, byte for byte, through either codec");
    let mut data: Vec<Vec<u8>> = via_cbor.values().map(|(_, d)| d.clone()).collect();
    let mut sent = blobs.clone();
    data.sort();
    sent.sort();
    assert_eq!(data, sent);

    // Timestamps in answers are tagged; in requests, tag 1 over milliseconds is understood.
    let summary = call(&env, "DescribeStreamSummary", map(&[("StreamName", t("c"))])).await;
    let created = get(get(&summary, "StreamDescriptionSummary"), "StreamCreationTimestamp");
    assert_eq!(created, &C::Tag(1, Box::new(C::Integer(t0().as_millis().into()))));
    let shard = get(&call(&env, "ListShards", map(&[("StreamName", t("c"))])).await, "Shards")
        .as_array()
        .unwrap()[0]
        .clone();
    let later = C::Tag(1, Box::new(C::Integer((t0().as_millis() + 1000).into())));
    let it = call(
        &env,
        "GetShardIterator",
        map(&[
            ("StreamName", t("c")),
            ("ShardId", get(&shard, "ShardId").clone()),
            ("ShardIteratorType", t("AT_TIMESTAMP")),
            ("Timestamp", later),
        ]),
    )
    .await;
    env.tick();
    let page =
        call(&env, "GetRecords", map(&[("ShardIterator", get(&it, "ShardIterator").clone())]))
            .await;
    assert_eq!(
        get(&page, "Records").as_array().unwrap().len(),
        0,
        "nothing arrived after t0 + 1 s"
    );

    // Errors: CBOR bodies with the same exception names.
    let missing = encoded(&map(&[("StreamName", t("nope"))]));
    assert_eq!(error(&env, "DescribeStreamSummary", missing).await, "ResourceNotFoundException");
    let no_key = encoded(&map(&[("StreamName", t("c")), ("Data", C::Bytes(vec![1]))]));
    assert_eq!(error(&env, "PutRecord", no_key).await, "ValidationException");
    let text_data = encoded(&map(&[
        ("StreamName", t("c")),
        ("PartitionKey", t("k")),
        ("Data", C::Integer(5.into())),
    ]));
    assert_eq!(error(&env, "PutRecord", text_data).await, "SerializationException");
    assert_eq!(error(&env, "ListStreams", vec![0xbf, 0x61]).await, "SerializationException");
    assert_eq!(
        error(&env, "NoSuchOperation", encoded(&map(&[]))).await,
        "UnknownOperationException"
    );
}
