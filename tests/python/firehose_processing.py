"""Firehose processing through boto3 against Sluice, read back with tools Sluice did not write:
dynamic partitioning by a jq query (objects per camera, zstd, read with cramjam), the transform
contract over HTTP (a receiver here that fails once, then transforms, drops and fails records)
with ZIP objects (Python's zipfile) and the source backup, records converted to Parquet with an
inline schema (read with pyarrow and with DuckDB), and HttpEndpointDestinationUpdate.

Usage: firehose_processing.py <endpoint> <buckets directory>. Exits non-zero on the first mismatch."""

import base64
import collections
import io
import json
import os
import sys
import threading
import time
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import botocore.config
import cramjam
import duckdb
import pyarrow
import pyarrow.parquet as pq

from checks import check, code

endpoint, buckets = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
          aws_secret_access_key="test", config=botocore.config.Config(retries={"max_attempts": 1}))
fh = boto3.client("firehose", **kw)
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


def read(bucket, key):
    with open(os.path.join(buckets, bucket, key), "rb") as f:
        return f.read()


def wait_for(what, probe, timeout=60):
    deadline = time.time() + timeout
    while True:
        got = probe()
        if got or time.time() > deadline:
            check(got, what)
            return got
        time.sleep(0.3)


def put(stream, records):
    for i in range(0, len(records), 250):
        r = fh.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": d} for d in records[i:i + 250]])
        check(r["FailedPutCount"] == 0, f"put into {stream}")


def refused(fn, expected):
    got = code(fn)
    check(got == expected, f"expected {expected}, got {got}")


def error_lines(bucket, prefix):
    lines = []
    for k in objects(bucket, prefix):
        lines += [json.loads(l) for l in read(bucket, k).decode().splitlines() if l]
    return lines


# --- Dynamic partitioning by a jq query, zstd objects. -------------------------------------------
fh.create_delivery_stream(
    DeliveryStreamName="by-camera",
    ExtendedS3DestinationConfiguration={
        "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::parts",
        "Prefix": "camera=!{partitionKeyFromQuery:camera}/kind=!{partitionKeyFromQuery:kind}/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}, "CompressionFormat": "ZSTD",
        "DynamicPartitioningConfiguration": {"Enabled": True, "RetryOptions": {"DurationInSeconds": 60}},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [
            {"Type": "MetadataExtraction", "Parameters": [
                {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{camera: .camera, kind: .detection.label}"},
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
            {"Type": "AppendDelimiterToRecord", "Parameters": []}]}})
d = fh.describe_delivery_stream(DeliveryStreamName="by-camera")["DeliveryStreamDescription"]
ext = d["Destinations"][0]["ExtendedS3DestinationDescription"]
check(ext["DynamicPartitioningConfiguration"] == {"Enabled": True, "RetryOptions": {"DurationInSeconds": 60}}, f"describe: {ext}")
check([p["Type"] for p in ext["ProcessingConfiguration"]["Processors"]] == ["MetadataExtraction", "AppendDelimiterToRecord"], "processors described")
good = [json.dumps({"camera": cam, "detection": {"label": kind}, "i": i}).encode()
        for i, (cam, kind) in enumerate((c, k) for c in ("door", "yard", "gate") for k in ("person", "car") for _ in range(50))]
bad = [b"not json", json.dumps({"camera": "door"}).encode(), json.dumps({"camera": None, "detection": {"label": "x"}}).encode()]
put("by-camera", good + bad)
want = collections.defaultdict(list)
for r in good:
    v = json.loads(r)
    want[(v["camera"], v["detection"]["label"])].append(r.decode())


def partitions():
    got = collections.defaultdict(list)
    for k in objects("parts", "camera="):
        check(k.endswith(".zst"), f"zstd objects end in .zst: {k}")
        cam, kind = k.split("/")[0].split("=")[1], k.split("/")[1].split("=")[1]
        got[(cam, kind)] += [l for l in bytes(cramjam.zstd.decompress(read("parts", k))).decode().split("\n") if l]
    return got if sum(map(len, got.values())) >= len(good) else None


got = wait_for("every partitioned record delivered", partitions)
check(set(got) == set(want), f"partitions: {sorted(got)}")
for p, lines in want.items():
    check(sorted(got[p]) == sorted(lines), f"partition {p}: each record once, in its partition")
failed = wait_for("partitioning-failed lines", lambda: error_lines("parts", "errors/partitioning-failed/") or None)
check(sorted(base64.b64decode(f["rawData"]) for f in failed) == sorted(bad), f"the three records without keys: {failed}")
check(all(f["errorCode"] == "DynamicPartitioning.MetadataExtractionFailed" for f in failed), "error code")
refused(lambda: fh.create_delivery_stream(
    DeliveryStreamName="no-keys",
    ExtendedS3DestinationConfiguration={
        "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::parts", "Prefix": "plain/",
        "ErrorOutputPrefix": "e/!{firehose:error-output-type}/",
        "DynamicPartitioningConfiguration": {"Enabled": True}}), "InvalidArgumentException")
refused(lambda: fh.create_delivery_stream(
    DeliveryStreamName="bad-jq",
    ExtendedS3DestinationConfiguration={
        "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::parts", "Prefix": "c=!{partitionKeyFromQuery:c}/",
        "ErrorOutputPrefix": "e/!{firehose:error-output-type}/",
        "DynamicPartitioningConfiguration": {"Enabled": True},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "MetadataExtraction", "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{c: .c"},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]}}), "InvalidArgumentException")


# --- The transform contract over HTTP, ZIP objects, the source backup. ---------------------------
calls = {"n": 0, "records": 0}


class Transform(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        calls["n"] += 1
        if calls["n"] == 1:
            self.send_response(500)
            self.end_headers()
            return
        out = []
        for r in body["records"]:
            data = base64.b64decode(r["data"])
            calls["records"] += 1
            if data.startswith(b"drop"):
                out.append({"recordId": r["recordId"], "result": "Dropped"})
            elif data.startswith(b"fail"):
                out.append({"recordId": r["recordId"], "result": "ProcessingFailed", "data": r["data"]})
            else:
                out.append({"recordId": r["recordId"], "result": "Ok",
                            "data": base64.b64encode(data.upper() + b"\n").decode()})
        check(body["deliveryStreamArn"].endswith(":deliverystream/transformed") and body["invocationId"], f"request: {body.keys()}")
        reply = json.dumps({"records": out}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


server = ThreadingHTTPServer(("127.0.0.1", 0), Transform)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/transform"
fh.create_delivery_stream(
    DeliveryStreamName="transformed",
    ExtendedS3DestinationConfiguration={
        "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::shaped", "Prefix": "out/",
        "ErrorOutputPrefix": "err/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}, "CompressionFormat": "ZIP",
        "S3BackupMode": "Enabled",
        "S3BackupConfiguration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::shaped", "Prefix": "source/",
                                  "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
            {"ParameterName": "LambdaArn", "ParameterValue": url},
            {"ParameterName": "NumberOfRetries", "ParameterValue": "2"}]}]}})
ext = fh.describe_delivery_stream(DeliveryStreamName="transformed")["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
check(ext["S3BackupMode"] == "Enabled" and ext["S3BackupDescription"]["Prefix"] == "source/", f"backup described: {ext}")
kept = [f"keep-{i:03d}".encode() for i in range(200)]
dropped = [f"drop-{i:03d}".encode() for i in range(20)]
failing = [f"fail-{i:03d}".encode() for i in range(10)]
sent = kept + dropped + failing
put("transformed", sent)


def zipped():
    lines = []
    for k in objects("shaped", "out/"):
        check(k.endswith(".zip"), f"ZIP objects end in .zip: {k}")
        with zipfile.ZipFile(io.BytesIO(read("shaped", k))) as z:
            names = z.namelist()
            check(len(names) == 1 and names[0] == os.path.basename(k)[:-4], f"one entry named after the object: {names}")
            lines += [l for l in z.read(names[0]).decode().split("\n") if l]
    return lines if len(lines) >= len(kept) else None


got = wait_for("transformed records delivered", zipped)
check(sorted(got) == sorted(k.decode().upper() for k in kept), f"transformed, dropped and failed: {len(got)} lines")
failed = wait_for("processing-failed lines", lambda: error_lines("shaped", "err/processing-failed/") or None)
check(sorted(base64.b64decode(f["rawData"]) for f in failed) == failing, "the failed records, raw")
check(all(f["errorCode"] == "Lambda.ProcessingFailed" and f["lambdaArn"] == url for f in failed), f"{failed[0]}")
# Every record is 8 bytes, and the backup has no delimiter.
source = wait_for("the source backup", lambda: (lambda b: b if len(b) >= 8 * len(sent) else None)(
    b"".join(read("shaped", k) for k in objects("shaped", "source/"))))
backed = sorted(x for x in [source[i:i + 8] for i in range(0, len(source), 8)])
check(backed == sorted(sent), "every source record in the backup, before the transform")
check(calls["n"] >= 2, "the failed first call was retried")
server.shutdown()

# --- JSON to Parquet with an inline schema (a Sluice extension: SchemaConfiguration.Columns). ---
# botocore does not know the extension member, so this request is sent as the JSON it is.
columns = [{"Name": "camera", "Type": "string"}, {"Name": "count", "Type": "int"},
           {"Name": "at", "Type": "timestamp"}, {"Name": "score", "Type": "double"},
           {"Name": "labels", "Type": "array<string>"}, {"Name": "box", "Type": "struct<x:int,y:int>"}]
request = {
    "DeliveryStreamName": "columns",
    "ExtendedS3DestinationConfiguration": {
        "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::columns", "Prefix": "events/",
        "ErrorOutputPrefix": "err/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1},
        "DataFormatConversionConfiguration": {
            "Enabled": True,
            "SchemaConfiguration": {"Columns": columns},
            "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {"Compression": "ZSTD"}}}}}}
req = urllib.request.Request(endpoint + "/", data=json.dumps(request).encode(), method="POST", headers={
    "X-Amz-Target": "Firehose_20150804.CreateDeliveryStream", "Content-Type": "application/x-amz-json-1.1"})
with urllib.request.urlopen(req, timeout=30) as r:
    check(r.status == 200, "created with the inline schema")
ext = fh.describe_delivery_stream(DeliveryStreamName="columns")["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
check(ext["DataFormatConversionConfiguration"]["OutputFormatConfiguration"]["Serializer"]["ParquetSerDe"]["Compression"] == "ZSTD", f"{ext}")
rows = [json.dumps({"camera": f"cam-{i % 4}", "count": i, "at": 1765155723000 + i, "score": i / 4,
                    "labels": ["person"] * (i % 3), "box": {"x": i, "y": -i}}).encode() for i in range(1000)]
misfits = [b'{"camera": "x", "count": "many"}', b"[1, 2]", b"{broken"]
put("columns", rows + misfits)
files = wait_for("Parquet objects", lambda: (lambda o: o if o and sum(pq.ParquetFile(os.path.join(buckets, "columns", k)).metadata.num_rows for k in o) >= len(rows) else None)(objects("columns", "events/")))
check(all(k.endswith(".parquet") for k in files), f"{files}")
table = pyarrow.concat_tables([pq.read_table(os.path.join(buckets, "columns", k)) for k in files])
check(table.num_rows == len(rows), f"{table.num_rows} rows")
check(table.schema.field("at").type == pyarrow.timestamp("us", tz="+00:00"), f"timestamps in microseconds: {table.schema}")
check(table.schema.field("count").type == pyarrow.int32() and table.schema.field("labels").type.value_type == pyarrow.string(), f"{table.schema}")
meta = pq.ParquetFile(os.path.join(buckets, "columns", files[0])).metadata
check(meta.row_group(0).column(0).compression == "ZSTD", f"zstd pages: {meta.row_group(0).column(0)}")
glob = os.path.join(buckets, "columns", "events", "**", "*.parquet")
n, total, first, boxes = duckdb.sql(
    f"""SELECT count(*), sum("count"), epoch_us(min("at")), sum("box".x) FROM read_parquet('{glob}')""").fetchall()[0]
check((n, total, boxes) == (1000, sum(range(1000)), sum(range(1000))), f"DuckDB reads the rows: {n} {total} {boxes}")
check(first == 1765155723000000, f"DuckDB reads the timestamps: {first}")
failed = wait_for("format-conversion-failed lines", lambda: error_lines("columns", "err/format-conversion-failed/") or None)
check(sorted(base64.b64decode(f["rawData"]) for f in failed) == sorted(misfits), f"the misfits: {failed}")
refused(lambda: fh.create_delivery_stream(
    DeliveryStreamName="glue", ExtendedS3DestinationConfiguration={
        "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::columns",
        "DataFormatConversionConfiguration": {"Enabled": True,
            "SchemaConfiguration": {"DatabaseName": "db", "TableName": "t"},
            "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}}}}), "InvalidArgumentException")

# --- HttpEndpointDestinationUpdate. ---------------------------------------------------------------
fh.create_delivery_stream(
    DeliveryStreamName="to-http",
    HttpEndpointDestinationConfiguration={
        "EndpointConfiguration": {"Url": "http://127.0.0.1:9/", "Name": "nowhere", "AccessKey": "secret-key"},
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        "S3Configuration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::backup"}})
v = fh.describe_delivery_stream(DeliveryStreamName="to-http")["DeliveryStreamDescription"]["VersionId"]
fh.update_destination(DeliveryStreamName="to-http", CurrentDeliveryStreamVersionId=v,
                      DestinationId="destinationId-000000000001",
                      HttpEndpointDestinationUpdate={"BufferingHints": {"IntervalInSeconds": 120},
                                                     "RetryOptions": {"DurationInSeconds": 30},
                                                     "S3Update": {"Prefix": "failed/"}})
h = fh.describe_delivery_stream(DeliveryStreamName="to-http")["DeliveryStreamDescription"]["Destinations"][0]["HttpEndpointDestinationDescription"]
check(h["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 120} and h["RetryOptions"]["DurationInSeconds"] == 30, f"{h}")
check(h["EndpointConfiguration"] == {"Url": "http://127.0.0.1:9/", "Name": "nowhere"}, "the access key is never shown")
check(h["S3DestinationDescription"]["Prefix"] == "failed/", f"{h['S3DestinationDescription']}")
refused(lambda: fh.update_destination(DeliveryStreamName="by-camera", CurrentDeliveryStreamVersionId="1",
                                   DestinationId="destinationId-000000000001",
                                   HttpEndpointDestinationUpdate={"BufferingHints": {"IntervalInSeconds": 120}}),
     "InvalidArgumentException")
print("ok")
