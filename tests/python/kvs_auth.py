"""The KVS control plane with [auth] on, through boto3's SigV4 signing (service
`kinesisvideo`): an admin key on `cam*` creates and lists, a read key is refused changes, a
wrong secret is refused.

Usage: kvs_auth.py <endpoint> <admin id> <admin secret> <read id> <read secret>."""

import sys

import boto3
import botocore.config

from checks import check, error_of


def code(fn, **kw):
    return error_of(fn, **kw)[:2]


endpoint, admin_id, admin_secret, read_id, read_secret = sys.argv[1:6]


def client(key, secret):
    return boto3.client("kinesisvideo", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=botocore.config.Config(retries={"max_attempts": 1}))


admin, reader = client(admin_id, admin_secret), client(read_id, read_secret)
admin.create_stream(StreamName="cam-a", DataRetentionInHours=24)
check(code(admin.create_stream, StreamName="other") == ("NotAuthorizedException", 401), "admin key outside its pattern")
check(code(reader.create_stream, StreamName="cam-b") == ("NotAuthorizedException", 401), "read key creating")
check(reader.describe_stream(StreamName="cam-a")["StreamInfo"]["StreamName"] == "cam-a", "read key describes")
check(reader.list_tags_for_stream(StreamName="cam-a")["Tags"] == {}, "read key lists tags")
check(code(reader.tag_stream, StreamName="cam-a", Tags={"a": "b"}) == ("NotAuthorizedException", 401), "read key tagging")
check([s["StreamName"] for s in reader.list_streams()["StreamInfoList"]] == ["cam-a"], "list shows granted streams")
check(code(client(read_id, "wrong-secret").describe_stream, StreamName="cam-a")[0] == "InvalidSignatureException", "wrong secret")
check(code(client("AKIDUNKNOWN", "x").describe_stream, StreamName="cam-a")[0] == "UnrecognizedClientException", "unknown key")
print("ok")
