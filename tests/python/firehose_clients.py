"""Amazon Data Firehose through boto3's `firehose` client against Sluice: delivery streams with a
directory bucket (Sluice's default object store), records put in batches and read back from the
delivered objects exactly once, gzip, Firehose's object names and prefixes, versions and errors;
and a Kinesis data stream as a source.

Usage: firehose_clients.py <endpoint> <buckets directory>. Exits non-zero on the first mismatch."""

import gzip
import json
import os
import re
import struct
import sys
import time

import boto3
import botocore.config
import cramjam

from checks import check, code

endpoint, buckets = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
          aws_secret_access_key="test", config=botocore.config.Config(retries={"max_attempts": 1}))
fh = boto3.client("firehose", **kw)
kds = boto3.client("kinesis", **kw)
ROLE = "arn:aws:iam::000000000000:role/firehose"


def objects(bucket, prefix=""):
    root = os.path.join(buckets, bucket)
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), root)
            if rel.startswith(prefix) and not f.startswith("."):
                out.append(rel)
    return sorted(out)


def delivered(bucket, prefix, want, gz):
    """The records of every object under prefix, once `want` of them have arrived (60 s at most)."""
    deadline = time.time() + 60
    while True:
        recs = []
        for key in objects(bucket, prefix):
            with open(os.path.join(buckets, bucket, key), "rb") as f:
                data = f.read()
            if gz:
                data = gzip.decompress(data)
            recs += [l for l in data.decode().split("\n") if l]
        if len(recs) >= want or time.time() > deadline:
            return recs
        time.sleep(0.2)


# --- a DirectPut stream into a directory bucket, gzip, a delimiter after each record --------------
dest = {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lake", "Prefix": "events/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}, "CompressionFormat": "GZIP",
        "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "AppendDelimiterToRecord", "Parameters": []}]}}
arn = fh.create_delivery_stream(DeliveryStreamName="events", DeliveryStreamType="DirectPut",
                                ExtendedS3DestinationConfiguration=dest,
                                Tags=[{"Key": "team", "Value": "vision"}])["DeliveryStreamARN"]
check(arn.startswith("arn:aws:firehose:") and arn.endswith(":deliverystream/events"), f"arn {arn}")
check(code(fh.create_delivery_stream, DeliveryStreamName="events", ExtendedS3DestinationConfiguration=dest)
      == "ResourceInUseException", "a second stream of the name")
d = fh.describe_delivery_stream(DeliveryStreamName="events")["DeliveryStreamDescription"]
check(d["DeliveryStreamStatus"] == "ACTIVE" and d["VersionId"] == "1" and d["DeliveryStreamType"] == "DirectPut", f"describe {d}")
x = d["Destinations"][0]["ExtendedS3DestinationDescription"]
check(x["BucketARN"] == "arn:aws:s3:::lake" and x["CompressionFormat"] == "GZIP" and x["BufferingHints"]["SizeInMBs"] == 1, f"destination {x}")
check(fh.list_delivery_streams()["DeliveryStreamNames"] == ["events"], "list")
check(fh.list_tags_for_delivery_stream(DeliveryStreamName="events")["Tags"] == [{"Key": "team", "Value": "vision"}], "tags")

sent = []
for b in range(4):
    batch = [json.dumps({"batch": b, "i": i, "pad": "x" * 200}) for i in range(500)]
    r = fh.put_record_batch(DeliveryStreamName="events", Records=[{"Data": s.encode()} for s in batch])
    check(r["FailedPutCount"] == 0 and len(r["RequestResponses"]) == 500 and all("RecordId" in x for x in r["RequestResponses"]), f"batch {b}")
    sent += batch
r = fh.put_record(DeliveryStreamName="events", Record={"Data": b'{"single": true}'})
check(r["RecordId"], "a record id")
sent.append('{"single": true}')
got = delivered("lake", "events/", len(sent), True)
check(sorted(got) == sorted(sent), f"delivered {len(got)} records, sent {len(sent)} (each exactly once)")
for key in objects("lake", "events/"):
    check(re.fullmatch(r"events/\d{4}/\d\d/\d\d/\d\d/events-1-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.gz", key), f"object name {key}")

# --- Snappy (framing format) and HADOOP_SNAPPY (Hadoop's block format), read with cramjam ---------
def hadoop_snappy(data):
    out, at = b"", 0
    while at < len(data):
        raw_len, comp_len = struct.unpack(">II", data[at:at + 8])
        block = bytes(cramjam.snappy.decompress_raw(data[at + 8:at + 8 + comp_len]))
        check(len(block) == raw_len, "a Hadoop Snappy block's length")
        out, at = out + block, at + 8 + comp_len
    return out


for fmt, ext, unpack in [("Snappy", ".snappy", lambda b: bytes(cramjam.snappy.decompress(b))), ("HADOOP_SNAPPY", ".hsnappy", hadoop_snappy)]:
    name = "snap-" + ext[1:]
    fh.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=dict(dest, Prefix=name + "/", CompressionFormat=fmt))
    # More than one 256 KiB Hadoop block: 600 records of ~1 KB.
    batch = [json.dumps({"fmt": fmt, "i": i, "pad": "y" * 1000}) for i in range(600)]
    for k in range(0, 600, 300):
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": s.encode()} for s in batch[k:k + 300]])
    deadline, got = time.time() + 60, []
    while len(got) < len(batch) and time.time() < deadline:
        got = []
        for key in objects("lake", name + "/"):
            check(key.endswith(ext), f"{fmt} object name {key}")
            with open(os.path.join(buckets, "lake", key), "rb") as f:
                got += [l for l in unpack(f.read()).decode().split("\n") if l]
        time.sleep(0.2)
    check(sorted(got) == sorted(batch), f"{fmt}: {len(got)} of {len(batch)} records read back")
    fh.delete_delivery_stream(DeliveryStreamName=name)

# --- errors as Firehose gives them ----------------------------------------------------------------
check(code(fh.describe_delivery_stream, DeliveryStreamName="nope") == "ResourceNotFoundException", "unknown stream")
check(code(fh.put_record, DeliveryStreamName="nope", Record={"Data": b"x"}) == "ResourceNotFoundException", "put to an unknown stream")
check(code(fh.create_delivery_stream, DeliveryStreamName="bad",
           ExtendedS3DestinationConfiguration=dict(dest, BucketARN="arn:aws:s3:::UPPER")) == "InvalidArgumentException", "a bad bucket")
check(code(fh.create_delivery_stream, DeliveryStreamName="bad",
           ExtendedS3DestinationConfiguration=dict(dest, Prefix="p/!{timestamp:yyyy}/")) == "InvalidArgumentException", "an expression without an error prefix")
check(code(fh.update_destination, DeliveryStreamName="events", CurrentDeliveryStreamVersionId="7",
           DestinationId="destinationId-000000000001", ExtendedS3DestinationUpdate={"CompressionFormat": "UNCOMPRESSED"})
      == "ConcurrentModificationException", "a stale version")

# --- an update: a new version, new objects uncompressed under a timestamped prefix ----------------
fh.update_destination(DeliveryStreamName="events", CurrentDeliveryStreamVersionId="1",
                      DestinationId="destinationId-000000000001",
                      ExtendedS3DestinationUpdate={"CompressionFormat": "UNCOMPRESSED",
                                                   "Prefix": "v2/dt=!{timestamp:yyyy-MM-dd}/",
                                                   "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/"})
d = fh.describe_delivery_stream(DeliveryStreamName="events")["DeliveryStreamDescription"]
check(d["VersionId"] == "2" and d["Destinations"][0]["ExtendedS3DestinationDescription"]["CompressionFormat"] == "UNCOMPRESSED", f"updated {d}")
fh.put_record(DeliveryStreamName="events", Record={"Data": b"after-update"})
got = delivered("lake", "v2/", 1, False)
check(got == ["after-update"], f"after the update {got}")
key = objects("lake", "v2/")[0]
check(re.fullmatch(r"v2/dt=\d{4}-\d\d-\d\d/events-2-.*", key), f"updated object name {key}")

# --- a Kinesis data stream as the source ------------------------------------------------------------
kds.create_stream(StreamName="telemetry", ShardCount=2)
kds.put_record(StreamName="telemetry", Data=b"before", PartitionKey="k")
sarn = kds.describe_stream_summary(StreamName="telemetry")["StreamDescriptionSummary"]["StreamARN"]
fh.create_delivery_stream(DeliveryStreamName="from-kds", DeliveryStreamType="KinesisStreamAsSource",
                          KinesisStreamSourceConfiguration={"KinesisStreamARN": sarn, "RoleARN": ROLE},
                          ExtendedS3DestinationConfiguration={"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lake", "Prefix": "kds/",
                                                              "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
                                                              "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "AppendDelimiterToRecord", "Parameters": []}]}})
d = fh.describe_delivery_stream(DeliveryStreamName="from-kds")["DeliveryStreamDescription"]
check(d["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == sarn, f"source {d.get('Source')}")
check(code(fh.put_record, DeliveryStreamName="from-kds", Record={"Data": b"x"}) == "InvalidArgumentException", "put to a Kinesis-sourced stream")
want = [f"t{i}" for i in range(300)]
kds.put_records(StreamName="telemetry", Records=[{"Data": s.encode(), "PartitionKey": s} for s in want])
got = delivered("lake", "kds/", len(want), False)
check(sorted(got) == sorted(want), f"from Kinesis: {len(got)} of {len(want)} (what was there before creation is not read)")
check(sorted(fh.list_delivery_streams(DeliveryStreamType="KinesisStreamAsSource")["DeliveryStreamNames"]) == ["from-kds"], "type filter")

fh.delete_delivery_stream(DeliveryStreamName="from-kds")
check(code(fh.describe_delivery_stream, DeliveryStreamName="from-kds") == "ResourceNotFoundException", "deleted")
print("ok")
