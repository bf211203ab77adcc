"""KVS archived media through boto3's `kinesis-video-archived-media` client: ListFragments
against the native fragment list, and GetHLSStreamingSessionURL, whose URL ffprobe plays to the
exact frame count.

Usage: kvs_archived.py <endpoint> <stream> <expected frames> <native fragment numbers, comma-separated>
The stream's media was pushed with producer timestamps from 2026-03-01T11:00:00Z."""

import datetime
import subprocess
import sys
import urllib.error
import urllib.request

import boto3
import botocore.config

from checks import check, code

endpoint, stream, frames, numbers = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(",")
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
          aws_secret_access_key="test", config=botocore.config.Config(retries={"max_attempts": 1}))
kv = boto3.client("kinesisvideo", **kw)
am = boto3.client("kinesis-video-archived-media", **kw)


utc = datetime.timezone.utc
start = datetime.datetime(2026, 3, 1, 11, 0, 0, tzinfo=utc)
end = datetime.datetime(2026, 3, 1, 11, 10, 0, tzinfo=utc)
producer = {"FragmentSelectorType": "PRODUCER_TIMESTAMP", "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end}}

# The data endpoint is this server.
check(kv.get_data_endpoint(StreamName=stream, APIName="LIST_FRAGMENTS")["DataEndpoint"] == endpoint, "endpoint")

# --- ListFragments: the native list, paged ----------------------------------------------------
got, token = [], None
for _ in range(100):
    args = dict(StreamName=stream, MaxResults=2, FragmentSelector=producer)
    if token:
        args = dict(StreamName=stream, MaxResults=2, NextToken=token)
    page = am.list_fragments(**args)
    got += page["Fragments"]
    token = page.get("NextToken")
    if not token:
        break
check([f["FragmentNumber"] for f in got] == numbers, f"fragments {[f['FragmentNumber'] for f in got]} = {numbers}")
for f in got:
    check(f["FragmentSizeInBytes"] > 0 and f["FragmentLengthInMilliseconds"] > 0, f"fragment {f}")
    check(start <= f["ProducerTimestamp"] <= end, f"producer timestamp {f}")
    check(isinstance(f["ServerTimestamp"], datetime.datetime), "server timestamp parses")
empty = am.list_fragments(StreamName=stream, FragmentSelector={
    "FragmentSelectorType": "PRODUCER_TIMESTAMP",
    "TimestampRange": {"StartTimestamp": end, "EndTimestamp": end + datetime.timedelta(hours=1)}})
check(empty["Fragments"] == [], f"a range with no media: {empty}")
check(code(am.list_fragments, StreamName="nope", FragmentSelector=producer) == "ResourceNotFoundException", "unknown stream")

# --- GetHLSStreamingSessionURL -----------------------------------------------------------------
url = am.get_hls_streaming_session_url(StreamName=stream, PlaybackMode="ON_DEMAND",
                                       HLSFragmentSelector=producer, Expires=600)["HLSStreamingSessionURL"]
check(url.startswith(endpoint + "/") and "token=" in url, f"url {url}")
out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                      "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", url],
                     capture_output=True, text=True, timeout=60)
check(out.returncode == 0 and out.stderr.strip() == "", f"ffprobe: {out.stderr}")
# The master playlist's program and its one video stream report the same count.
counts = {int(line) for line in out.stdout.split()}
check(counts == {frames}, f"frames {counts} = {frames}")

master = urllib.request.urlopen(url).read().decode()
media_uri = next(line for line in master.splitlines() if line and not line.startswith("#"))
media = urllib.request.urlopen(url.split("/v1/")[0] + "/v1/streams/" + stream + "/hls/" + media_uri).read().decode()
check("#EXT-X-PROGRAM-DATE-TIME" not in media and "#EXT-X-ENDLIST" in media, "no timestamps by default")
url = am.get_hls_streaming_session_url(StreamName=stream, PlaybackMode="ON_DEMAND", HLSFragmentSelector=producer,
                                       DisplayFragmentTimestamp="ALWAYS")["HLSStreamingSessionURL"]
master = urllib.request.urlopen(url).read().decode()
media_uri = next(line for line in master.splitlines() if line and not line.startswith("#"))
media = urllib.request.urlopen(url.split("/v1/")[0] + "/v1/streams/" + stream + "/hls/" + media_uri).read().decode()
check("#EXT-X-PROGRAM-DATE-TIME:2026-03-01T11:00:00" in media, "program date-times when asked")

capped = am.get_hls_streaming_session_url(StreamName=stream, PlaybackMode="ON_DEMAND", HLSFragmentSelector=producer,
                                          MaxMediaPlaylistFragmentResults=2)["HLSStreamingSessionURL"]
master = urllib.request.urlopen(capped).read().decode()
media_uri = next(line for line in master.splitlines() if line and not line.startswith("#"))
media = urllib.request.urlopen(capped.split("/v1/")[0] + "/v1/streams/" + stream + "/hls/" + media_uri).read().decode()
check(media.count("#EXTINF") == 2, f"MaxMediaPlaylistFragmentResults=2: {media.count('#EXTINF')} segments")

live = am.get_hls_streaming_session_url(StreamName=stream)["HLSStreamingSessionURL"]
check("#EXT-X-STREAM-INF" in urllib.request.urlopen(live).read().decode(), "a LIVE session opens")

check(code(am.get_hls_streaming_session_url, StreamName=stream, ContainerFormat="MPEG_TS") == "InvalidArgumentException", "MPEG_TS")
check(code(am.get_hls_streaming_session_url, StreamName=stream, PlaybackMode="LIVE_REPLAY") == "InvalidArgumentException", "replay without a start")
# botocore refuses Expires below 300 itself; the server does too.
req = urllib.request.Request(endpoint + "/getHLSStreamingSessionURL", method="POST",
                             data=('{"StreamName":"%s","Expires":100}' % stream).encode())
try:
    urllib.request.urlopen(req)
    sys.exit("FAIL: Expires 100 accepted")
except urllib.error.HTTPError as e:
    check(e.code == 400 and e.headers["x-amzn-ErrorType"] == "InvalidArgumentException", f"Expires 100: {e.code}")
    check("Member must have value greater than or equal to 300" in e.read().decode(), "Expires message")
# --- GetDASHStreamingSessionURL: an ON_DEMAND MPD with a signed session ---------------------------
dash = am.get_dash_streaming_session_url(StreamName=stream, PlaybackMode="ON_DEMAND",
                                         DASHFragmentSelector=producer)["DASHStreamingSessionURL"]
check(dash.startswith(endpoint + "/") and "/dash/manifest.mpd?" in dash and "token=" in dash, f"url {dash}")
mpd = urllib.request.urlopen(dash).read().decode()
check(mpd.count("token=") >= 2, "every segment URL of the MPD carries the session")
out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                      "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", dash],
                     capture_output=True, text=True, timeout=60)
check(out.returncode == 0 and out.stderr.strip() == "", f"ffprobe DASH: {out.stderr}")
check({int(line) for line in out.stdout.split()} == {frames}, f"DASH frames {out.stdout.split()} = {frames}")
# LIVE (the default): a dynamic MPD of the newest segments; LIVE_REPLAY needs a start, and with
# no producer connected its MPD is already complete (static).
live = am.get_dash_streaming_session_url(StreamName=stream)["DASHStreamingSessionURL"]
check("mode=live&" in live and "token=" in live, f"live url {live}")
mpd = urllib.request.urlopen(live).read().decode()
check('type="dynamic"' in mpd and "$Time$" in mpd and "token=" in mpd, f"live MPD {mpd[:400]}")
check(code(am.get_dash_streaming_session_url, StreamName=stream, PlaybackMode="LIVE_REPLAY")
      == "InvalidArgumentException", "LIVE_REPLAY without a start")
check(code(am.get_dash_streaming_session_url, StreamName=stream, PlaybackMode="LIVE", DASHFragmentSelector=producer)
      == "InvalidArgumentException", "LIVE with a range")
replay = am.get_dash_streaming_session_url(StreamName=stream, PlaybackMode="LIVE_REPLAY",
                                           DASHFragmentSelector={"FragmentSelectorType": "PRODUCER_TIMESTAMP",
                                                                 "TimestampRange": {"StartTimestamp": start}})
mpd = urllib.request.urlopen(replay["DASHStreamingSessionURL"]).read().decode()
check('type="static"' in mpd, f"a finished replay is static: {mpd[:300]}")
check(code(am.get_dash_streaming_session_url, StreamName=stream, PlaybackMode="ON_DEMAND")
      == "InvalidArgumentException", "ON_DEMAND without a range")
# --- GetClip: a progressive MP4 of the range ----------------------------------------------------
clip = am.get_clip(StreamName=stream, ClipFragmentSelector=producer)
check(clip["ContentType"] == "video/mp4", f"clip content type {clip['ContentType']}")
import tempfile
with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
    f.write(clip["Payload"].read())
    f.flush()
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", f.name],
                         capture_output=True, text=True, timeout=60)
    check(out.returncode == 0 and out.stderr.strip() == "", f"ffprobe clip: {out.stderr}")
    check(int(out.stdout.split()[0]) == frames, f"clip frames {out.stdout.strip()} = {frames}")
later = {"FragmentSelectorType": "SERVER_TIMESTAMP",
         "TimestampRange": {"StartTimestamp": datetime.datetime(2000, 1, 1, tzinfo=utc),
                            "EndTimestamp": datetime.datetime(2000, 1, 2, tzinfo=utc)}}
check(code(am.get_clip, StreamName=stream, ClipFragmentSelector=later) == "ResourceNotFoundException", "clip of no media")
# --- GetImages: the exact frame at each instant, NO_MEDIA where there is none -----------------
t0 = start + datetime.timedelta(seconds=1)
page = am.get_images(StreamName=stream, ImageSelectorType="PRODUCER_TIMESTAMP", StartTimestamp=t0,
                     EndTimestamp=t0 + datetime.timedelta(seconds=2), SamplingInterval=250, Format="PNG",
                     HeightPixels=180, MaxResults=5)
check(len(page["Images"]) == 5 and page.get("NextToken"), f"first page {len(page['Images'])}")
rest = am.get_images(StreamName=stream, ImageSelectorType="PRODUCER_TIMESTAMP", StartTimestamp=t0,
                     EndTimestamp=t0 + datetime.timedelta(seconds=2), SamplingInterval=250, Format="PNG",
                     HeightPixels=180, MaxResults=5, NextToken=page["NextToken"])
images = page["Images"] + rest["Images"]
check(len(images) == 8 and "NextToken" not in rest, f"8 instants, got {len(images)}")
check([i["TimeStamp"] for i in images] == [t0 + datetime.timedelta(milliseconds=250 * k) for k in range(8)], "instants")
check(all("ImageContent" in i and "Error" not in i for i in images), "every instant has a frame")
import base64
png = base64.b64decode(images[0]["ImageContent"])
check(png[:8] == b"\x89PNG\r\n\x1a\n", "a PNG")
gap = am.get_images(StreamName=stream, ImageSelectorType="PRODUCER_TIMESTAMP", StartTimestamp=end,
                    EndTimestamp=end + datetime.timedelta(seconds=1), SamplingInterval=500, Format="JPEG")
check([i.get("Error") for i in gap["Images"]] == ["NO_MEDIA", "NO_MEDIA"], f"no media: {gap['Images']}")
print("ok")
