"""Delivery into an S3-compatible store (moto's server, started by the test on 127.0.0.1), read
back with boto3's `s3` client: every record exactly once, Firehose's object names, gzip.

Usage: firehose_s3.py <sluice endpoint> <s3 endpoint> <phase>
  first   create the bucket and a delivery stream into it, put 500 records, read them back
  put     put 300 more records (the test has stopped the store)
  after   the store is back (empty: moto keeps nothing): create the bucket again and read the
          300 records back, delivered by the retries"""

import gzip
import re
import sys
import time

import boto3
import botocore.config

from checks import check

endpoint, s3_endpoint, phase = sys.argv[1], sys.argv[2], sys.argv[3]
creds = dict(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
             config=botocore.config.Config(retries={"max_attempts": 1}))
fh = boto3.client("firehose", endpoint_url=endpoint, **creds)
s3 = boto3.client("s3", endpoint_url=s3_endpoint, **creds)
ROLE = "arn:aws:iam::000000000000:role/firehose"


def records_in(prefix, want):
    """Every line of every object under prefix, once `want` have arrived (60 s at most)."""
    deadline = time.time() + 60
    while True:
        lines, keys = [], []
        for o in s3.list_objects_v2(Bucket="lake", Prefix=prefix).get("Contents", []):
            keys.append(o["Key"])
            body = s3.get_object(Bucket="lake", Key=o["Key"])["Body"].read()
            lines += [l for l in gzip.decompress(body).decode().split("\n") if l]
        if len(lines) >= want or time.time() > deadline:
            return lines, keys
        time.sleep(0.3)


def put(tag, n):
    sent = [f"{tag}-{i:04d}" for i in range(n)]
    for i in range(0, n, 250):
        r = fh.put_record_batch(DeliveryStreamName="to-s3", Records=[{"Data": s.encode()} for s in sent[i:i + 250]])
        check(r["FailedPutCount"] == 0, f"put {tag}")
    return sent


if phase == "first":
    s3.create_bucket(Bucket="lake")
    fh.create_delivery_stream(
        DeliveryStreamName="to-s3",
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lake", "Prefix": "raw/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}, "CompressionFormat": "GZIP",
            "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "AppendDelimiterToRecord", "Parameters": []}]}})
    sent = put("first", 500)
    got, keys = records_in("raw/", len(sent))
    check(sorted(got) == sorted(sent), f"first: {len(got)} delivered of {len(sent)}, each exactly once")
    for k in keys:
        check(re.fullmatch(r"raw/\d{4}/\d\d/\d\d/\d\d/to-s3-1-\d{4}(-\d\d){5}-[0-9a-f-]{36}\.gz", k), f"object name {k}")
elif phase == "put":
    put("outage", 300)
elif phase == "after":
    s3.create_bucket(Bucket="lake")
    want = [f"outage-{i:04d}" for i in range(300)]
    got, _ = records_in("raw/", len(want))
    check(sorted(got) == want, f"after the outage: {len(got)} delivered of {len(want)}, each exactly once")
print("ok")
