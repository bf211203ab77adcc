"""Kinesis through Python clients Sluice did not write: boto3 (botocore's JSON 1.1 and its
event-stream parser, over HTTP/1.1) for SubscribeToShard, and cbor2 for the CBOR wire.

Usage: kinesis_clients.py <endpoint>. Exits non-zero with a message on the first mismatch; every
wait is bounded."""

import datetime
import json
import sys
import time
import urllib.request

import boto3
import botocore.config
import cbor2

from checks import check

endpoint = sys.argv[1]
kds = boto3.client(
    "kinesis",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
    config=botocore.config.Config(retries={"max_attempts": 1}, read_timeout=30),
)


# --- SubscribeToShard through botocore's event-stream parser -------------------------------
kds.create_stream(StreamName="py", ShardCount=1)
arn = kds.describe_stream_summary(StreamName="py")["StreamDescriptionSummary"]["StreamARN"]
consumer = kds.register_stream_consumer(StreamARN=arn, ConsumerName="py-app")["Consumer"]
sent = [kds.put_record(StreamName="py", PartitionKey=f"k{i}", Data=bytes([i]) * (i + 1))
        for i in range(3)]
sub = kds.subscribe_to_shard(
    ConsumerARN=consumer["ConsumerARN"],
    ShardId="shardId-000000000000",
    StartingPosition={"Type": "TRIM_HORIZON"},
)
got, last = [], None
deadline = time.monotonic() + 30
for event in sub["EventStream"]:
    e = event["SubscribeToShardEvent"]
    got.extend(e["Records"])
    last = e
    if len(got) == 3:
        # Written while subscribed: pushed too.
        sent.append(kds.put_record(StreamName="py", PartitionKey="late", Data=b"late"))
    if len(got) >= 4 or time.monotonic() > deadline:
        break
check(len(got) == 4, f"4 records pushed, got {len(got)}")
check([r["SequenceNumber"] for r in got] == [s["SequenceNumber"] for s in sent], "sequence order")
check(got[2]["Data"] == b"\x02\x02\x02" and got[3]["Data"] == b"late", "data bytes")
check(last["ContinuationSequenceNumber"] == sent[-1]["SequenceNumber"], "continuation number")
check(hasattr(got[0]["ApproximateArrivalTimestamp"], "year"), "arrival parsed as a datetime")
sub["EventStream"].close()
try:
    kds.subscribe_to_shard(
        ConsumerARN=consumer["ConsumerARN"],
        ShardId="shardId-000000000000",
        StartingPosition={"Type": "LATEST"},
    )
    check(False, "a second subscription within 5 s is refused")
except kds.exceptions.ResourceInUseException:
    pass


# --- CBOR through cbor2 ----------------------------------------------------------------------
# Tag 1 carries epoch *milliseconds* on this wire (what the AWS SDK for Java writes and reads for
# Kinesis), not RFC 8949's seconds: the decoder is told so.
def epoch_ms(value, _immutable):
    return datetime.datetime.fromtimestamp(value / 1000, datetime.timezone.utc)


def cbor(op, body, status=200):
    req = urllib.request.Request(
        endpoint,
        data=cbor2.dumps(body),
        headers={"X-Amz-Target": f"Kinesis_20131202.{op}",
                 "Content-Type": "application/x-amz-cbor-1.1"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            code, ctype, raw = r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as err:
        code, ctype, raw = err.code, err.headers["Content-Type"], err.read()
    check(code == status, f"{op}: HTTP {code}, wanted {status}: {raw[:200]!r}")
    check(ctype == "application/x-amz-cbor-1.1", f"{op}: content type {ctype}")
    return cbor2.loads(raw, semantic_decoders={1: epoch_ms})


blob = bytes(range(256)) * 40
put = cbor("PutRecord", {"StreamName": "py", "PartitionKey": "cbor", "Data": blob})
it = cbor("GetShardIterator", {"StreamName": "py", "ShardId": "shardId-000000000000",
                               "ShardIteratorType": "AT_SEQUENCE_NUMBER",
                               "StartingSequenceNumber": put["SequenceNumber"]})
page = cbor("GetRecords", {"ShardIterator": it["ShardIterator"]})
rec = page["Records"][0]
check(rec["Data"] == blob, "CBOR GetRecords returns the bytes as a byte string")
arrival = rec["ApproximateArrivalTimestamp"]
check(abs(arrival.timestamp() - time.time()) < 600, f"tag 1 over epoch ms: {arrival}")
via_json = kds.get_records(ShardIterator=kds.get_shard_iterator(
    StreamName="py", ShardId="shardId-000000000000", ShardIteratorType="AT_SEQUENCE_NUMBER",
    StartingSequenceNumber=put["SequenceNumber"])["ShardIterator"])["Records"][0]
check(via_json["Data"] == blob, "the same bytes through JSON")
err = cbor("DescribeStreamSummary", {"StreamName": "missing"}, status=400)
check(err["__type"] == "ResourceNotFoundException", f"CBOR error {err}")

# --- A 10 MiB record through boto3 -----------------------------------------------------------
kds.create_stream(StreamName="py-big", ShardCount=1, MaxRecordSizeInKiB=10240)
summary = kds.describe_stream_summary(StreamName="py-big")["StreamDescriptionSummary"]
check(summary["MaxRecordSizeInKiB"] == 10240, f"MaxRecordSizeInKiB {summary.get('MaxRecordSizeInKiB')}")
big = bytes(i % 253 for i in range(10 * 1024 * 1024 - 1))
seq = kds.put_record(StreamName="py-big", PartitionKey="k", Data=big)["SequenceNumber"]
it = kds.get_shard_iterator(StreamName="py-big", ShardId="shardId-000000000000",
                            ShardIteratorType="AT_SEQUENCE_NUMBER",
                            StartingSequenceNumber=seq)["ShardIterator"]
records = kds.get_records(ShardIterator=it)["Records"]
check(len(records) == 1 and records[0]["Data"] == big, "the 10 MiB record, whole, through boto3")
print(json.dumps({"subscribed": len(got), "cbor_bytes": len(blob), "big": len(big)}))
