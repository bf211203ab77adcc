"""The Kinesis Video Streams control plane through boto3's `kinesisvideo` client (botocore's
rest-json serializer and parser, its error parsing from `x-amzn-ErrorType`), against the same
streams the native API serves.

Usage: kvs_control.py <endpoint> <directory for images>. Exits non-zero with a message on the first mismatch."""

import datetime
import json
import re
import sys
import urllib.request

import boto3
import botocore.config

from checks import check
from checks import error_of as error

endpoint = sys.argv[1]
kv = boto3.client(
    "kinesisvideo",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
    config=botocore.config.Config(retries={"max_attempts": 1}),
)


def native(path):
    with urllib.request.urlopen(endpoint + path) as r:
        return json.load(r)


# --- create and describe -----------------------------------------------------------------------
arn = kv.create_stream(StreamName="cam1", DataRetentionInHours=48, MediaType="video/h264",
                       DeviceName="dev-1", Tags={"site": "north"})["StreamARN"]
check(re.fullmatch(r"arn:aws:kinesisvideo:us-east-1:000000000000:stream/cam1/\d{13}", arn), f"ARN {arn}")
info = kv.describe_stream(StreamName="cam1")["StreamInfo"]
check(info["StreamARN"] == arn and info["Status"] == "ACTIVE" and info["Version"] == "1", f"info {info}")
check(info["DataRetentionInHours"] == 48 and info["MediaType"] == "video/h264" and info["DeviceName"] == "dev-1", f"info {info}")
check(isinstance(info["CreationTime"], datetime.datetime), "CreationTime parses as a datetime")
check(kv.describe_stream(StreamARN=arn)["StreamInfo"]["StreamName"] == "cam1", "describe by ARN")

code, status, msg = error(kv.create_stream, StreamName="cam1")
check((code, status) == ("ResourceInUseException", 400), f"second create: {code} {status}")
code, status, msg = error(kv.describe_stream, StreamName="nope")
check((code, status) == ("ResourceNotFoundException", 404), f"unknown stream: {code} {status}")
code, status, msg = error(kv.create_stream, StreamName="bad name")
check((code, status) == ("InvalidArgumentException", 400), f"bad name: {code} {status}")
check("Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+" in msg, msg)
# An ARN of a stream that was re-created (another creation time) names no stream.
code, status, _ = error(kv.describe_stream, StreamARN=arn[:-13] + "1000000000000")
check(code == "ResourceNotFoundException", f"stale ARN: {code}")

# --- the native API sees the same stream, and the other way round ------------------------------
n = native("/v1/streams/cam1")
check(n["retentionHours"] == 48 and n["mediaType"] == "video/h264" and n["tags"] == {"site": "north"}, f"native {n}")
req = urllib.request.Request(endpoint + "/v1/streams", data=json.dumps({"name": "cam2"}).encode(),
                             headers={"Content-Type": "application/json"}, method="POST")
urllib.request.urlopen(req).read()
check(kv.describe_stream(StreamName="cam2")["StreamInfo"]["StreamName"] == "cam2", "native stream in KVS")

# --- list with a prefix, paged -----------------------------------------------------------------
kv.create_stream(StreamName="other")
page = kv.list_streams(MaxResults=1, StreamNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": "cam"})
check([s["StreamName"] for s in page["StreamInfoList"]] == ["cam1"] and page.get("NextToken"), f"page 1 {page}")
page = kv.list_streams(MaxResults=1, NextToken=page["NextToken"],
                       StreamNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": "cam"})
check([s["StreamName"] for s in page["StreamInfoList"]] == ["cam2"] and "NextToken" not in page, f"page 2 {page}")
names = [s["StreamName"] for s in kv.list_streams()["StreamInfoList"]]
check({"cam1", "cam2", "other"} <= set(names), f"all streams {names}")

# --- versions ------------------------------------------------------------------------------------
kv.update_stream(StreamName="cam1", CurrentVersion="1", MediaType="video/h265")
info = kv.describe_stream(StreamName="cam1")["StreamInfo"]
check(info["Version"] == "2" and info["MediaType"] == "video/h265", f"updated {info}")
code, status, _ = error(kv.update_stream, StreamName="cam1", CurrentVersion="1", DeviceName="x")
check((code, status) == ("VersionMismatchException", 400), f"stale version: {code} {status}")
kv.update_data_retention(StreamName="cam1", CurrentVersion="2", Operation="INCREASE_DATA_RETENTION",
                         DataRetentionChangeInHours=24)
check(kv.describe_stream(StreamName="cam1")["StreamInfo"]["DataRetentionInHours"] == 72, "retention increased")
check(native("/v1/streams/cam1")["retentionHours"] == 72, "native retention")
code, _, _ = error(kv.update_data_retention, StreamName="cam1", CurrentVersion="3",
                   Operation="DECREASE_DATA_RETENTION", DataRetentionChangeInHours=500)
check(code == "InvalidArgumentException", f"retention below 1 hour: {code}")

# --- endpoints -----------------------------------------------------------------------------------
for api in ["PUT_MEDIA", "GET_MEDIA", "LIST_FRAGMENTS", "GET_HLS_STREAMING_SESSION_URL", "GET_CLIP", "GET_IMAGES"]:
    ep = kv.get_data_endpoint(StreamName="cam1", APIName=api)["DataEndpoint"]
    check(ep == endpoint, f"{api} endpoint {ep}")
code, _, msg = error(kv.get_data_endpoint, StreamName="cam1", APIName="NOPE")
check(code == "InvalidArgumentException" and "enum value set" in msg, f"bad APIName: {code} {msg}")

# --- tags by name and by ARN ---------------------------------------------------------------------
kv.tag_stream(StreamName="cam1", Tags={"owner": "ops"})
check(kv.list_tags_for_stream(StreamName="cam1")["Tags"] == {"site": "north", "owner": "ops"}, "tag_stream")
kv.untag_stream(StreamARN=arn, TagKeyList=["site"])
kv.tag_resource(ResourceARN=arn, Tags=[{"Key": "floor", "Value": "2"}])
check(kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"owner": "ops", "floor": "2"}, "tag_resource")
kv.untag_resource(ResourceARN=arn, TagKeyList=["floor"])
check(kv.list_tags_for_stream(StreamName="cam1")["Tags"] == {"owner": "ops"}, "untag_resource")
code, _, _ = error(kv.tag_stream, StreamName="cam1", Tags={f"k{i}": "v" for i in range(50)})
check(code == "TagsPerResourceExceededLimitException", f"51 tags: {code}")

# --- image generation onto Sluice's generator ---------------------------------------------------
frames_dir = sys.argv[2]
conf = {"Status": "ENABLED", "ImageSelectorType": "PRODUCER_TIMESTAMP", "SamplingInterval": 2000,
        "Format": "JPEG", "FormatConfig": {"JPEGQuality": "70"}, "WidthPixels": 320,
        "DestinationConfig": {"Uri": "file://" + frames_dir, "DestinationRegion": "us-east-1"}}
kv.update_image_generation_configuration(StreamName="cam1", ImageGenerationConfiguration=conf)
got = kv.describe_image_generation_configuration(StreamName="cam1")["ImageGenerationConfiguration"]
check(got == conf, f"image generation {got}")
g = native("/v1/streams/cam1")["imageGeneration"]
check(g["intervalMs"] == 2000 and g["quality"] == 70 and g["width"] == 320 and g["destination"]["path"] == frames_dir, f"native {g}")
s3 = dict(conf, DestinationConfig={"Uri": "s3://bucket/prefix", "DestinationRegion": "us-east-1"})
code, _, msg = error(kv.update_image_generation_configuration, StreamName="cam1", ImageGenerationConfiguration=s3)
check(code == "InvalidArgumentException" and "object store" in msg, f"s3 destination: {code} {msg}")
kv.update_image_generation_configuration(StreamName="cam1", ImageGenerationConfiguration=dict(conf, Status="DISABLED"))
check("ImageGenerationConfiguration" not in kv.describe_image_generation_configuration(StreamName="cam1"), "disabled")
check(native("/v1/streams/cam1")["imageGeneration"] is None, "native disabled")

# --- notification configuration ----------------------------------------------------------------
check("NotificationConfiguration" not in kv.describe_notification_configuration(StreamName="cam1"), "no notification configuration")
topic = "arn:aws:sns:us-east-1:123456789012:camera-alerts"
note = {"Status": "ENABLED", "DestinationConfig": {"Uri": topic}}
kv.update_notification_configuration(StreamARN=arn, NotificationConfiguration=note)
got = kv.describe_notification_configuration(StreamName="cam1")["NotificationConfiguration"]
check(got == note, f"notification configuration {got}")
hook = {"Status": "DISABLED", "DestinationConfig": {"Uri": "http://127.0.0.1:9/kvs"}}
kv.update_notification_configuration(StreamName="cam1", NotificationConfiguration=hook)
got = kv.describe_notification_configuration(StreamARN=arn)["NotificationConfiguration"]
check(got == hook, f"disabled notification configuration {got}")
unchecked = boto3.client("kinesisvideo", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                         aws_secret_access_key="test",
                         config=botocore.config.Config(retries={"max_attempts": 1}, parameter_validation=False))
for bad, words in [({"Status": "ON", "DestinationConfig": {"Uri": topic}}, "notificationConfiguration.status"),
                   ({"Status": "ENABLED", "DestinationConfig": {"Uri": "no-scheme"}}, "regular expression pattern"),
                   ({"Status": "ENABLED"}, "notificationConfiguration.destinationConfig")]:
    code, status, msg = error(unchecked.update_notification_configuration, StreamName="cam1", NotificationConfiguration=bad)
    check((code, status) == ("InvalidArgumentException", 400) and words in msg, f"{bad}: {code} {status} {msg}")
code, status, _ = error(kv.describe_notification_configuration, StreamName="nope")
check((code, status) == ("ResourceNotFoundException", 404), f"unknown stream: {code} {status}")
check(kv.describe_notification_configuration(StreamName="cam1")["NotificationConfiguration"] == hook, "a refused update changes nothing")
kv.update_notification_configuration(StreamName="cam1")
check("NotificationConfiguration" not in kv.describe_notification_configuration(StreamName="cam1"), "removed")

# --- delete with the current version ------------------------------------------------------------
version = kv.describe_stream(StreamName="cam1")["StreamInfo"]["Version"]
code, _, _ = error(kv.delete_stream, StreamARN=arn, CurrentVersion="1")
check(code == "VersionMismatchException", f"delete with a stale version: {code}")
kv.delete_stream(StreamARN=arn, CurrentVersion=version)
code, status, _ = error(kv.describe_stream, StreamName="cam1")
check((code, status) == ("ResourceNotFoundException", 404), f"deleted: {code} {status}")
print("ok")
