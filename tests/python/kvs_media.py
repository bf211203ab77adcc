"""KVS media as Matroska through boto3: GetMedia (`kinesis-video-media`) from every start
selector, read the way the AWS Python consumer library reads it (the body cut at each EBML
header, every document parsed alone with ebmlite, KVS's tags from Segment > Tags > Tag >
SimpleTag), ffprobe counting the exact frames of the whole body, a consumer that resumes with the
continuation token losing and repeating nothing; and GetMediaForFragmentList.

Usage: kvs_media.py <endpoint> <stream> <video frames>,<audio frames> <native fragment numbers,
comma-separated> <B-frame stream> <its video frames>

The whole body is counted by GStreamer's matroskademux, which reads chained documents as one
stream; ffprobe counts every document alone (ffmpeg reads a chained body too, but names every
further Segment as an element it has no syntax for)."""

import datetime
import subprocess
import sys
import tempfile

import boto3
import botocore.config
import ebmlite

from checks import check, code

endpoint, stream, numbers = sys.argv[1], sys.argv[2], sys.argv[4].split(",")
video_frames, audio_frames = (int(n) for n in sys.argv[3].split(","))
bframes_stream, bframes_frames = sys.argv[5], int(sys.argv[6])
kw = dict(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
          config=botocore.config.Config(retries={"max_attempts": 1}))
kv = boto3.client("kinesisvideo", endpoint_url=endpoint, **kw)
schema = ebmlite.loadSchema("matroska.xml")


EBML = b"\x1a\x45\xdf\xa3"


def documents(body):
    """The body cut at each EBML header, as the consumer library does."""
    at = [i for i in range(len(body)) if body.startswith(EBML, i)]
    return [body[a:b] for a, b in zip(at, at[1:] + [len(body)])]


def tags(document):
    """Every SimpleTag of the document's Segment > Tags, as {name: value}."""
    out = {}
    doc = schema.loads(document)
    for el in doc:
        if el.name != "Segment":
            continue
        for child in el:
            if child.name != "Tags":
                continue
            for tag in child:
                for simple in tag:
                    if simple.name == "SimpleTag":
                        values = {e.name: e.value for e in simple}
                        out[values["TagName"]] = values["TagString"]
    return out


def ffprobe_frames(document):
    """(video frames, audio frames) of one document, read alone by ffprobe, with no error."""
    with tempfile.NamedTemporaryFile(suffix=".mkv") as f:
        f.write(document)
        f.flush()
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
             "stream=codec_type,nb_read_frames", "-of", "csv=p=0", f.name],
            capture_output=True, text=True, timeout=60)
        check(out.returncode == 0 and not out.stderr.strip(), f"ffprobe: {out.stderr}")
        counts = dict(line.split(",") for line in out.stdout.split())
        return int(counts.get("video", 0)), int(counts.get("audio", 0))


def gstreamer_frames(body):
    """Video frames GStreamer's matroskademux reads from the whole body, with no warning."""
    with tempfile.NamedTemporaryFile(suffix=".mkv") as f:
        f.write(body)
        f.flush()
        out = subprocess.run(
            ["gst-launch-1.0", "-v", "filesrc", f"location={f.name}", "!", "matroskademux", "name=d",
             "d.video_0", "!", "queue", "!", "fakesink", "name=vsink", "silent=false"],
            capture_output=True, text=True, timeout=60)
        text = out.stdout + out.stderr
        bad = [l for l in text.splitlines() if l.startswith(("ERROR", "WARNING"))]
        check(out.returncode == 0 and not bad, f"gst-launch: {bad}")
        return sum(1 for l in text.splitlines() if "chain" in l and "(vsink:sink)" in l)


def check_frames(body, video, audio):
    docs = documents(body)
    per_doc = [ffprobe_frames(d) for d in docs]
    check(all(v > 0 for v, _ in per_doc), f"every document decodes alone: {per_doc}")
    total = (sum(v for v, _ in per_doc), sum(a for _, a in per_doc))
    check(total == (video, audio), f"frames of the documents {total}, want {(video, audio)}")
    check(gstreamer_frames(body) == video, f"GStreamer frames {gstreamer_frames(body)}, want {video}")


# The consumer library's flow: GetDataEndpoint, then a media client on that endpoint.
ep = kv.get_data_endpoint(StreamName=stream, APIName="GET_MEDIA")["DataEndpoint"]
check(ep == endpoint, f"endpoint {ep}")
media = boto3.client("kinesis-video-media", endpoint_url=ep, **kw)
arn = kv.describe_stream(StreamName=stream)["StreamInfo"]["StreamARN"]

# --- EARLIEST: every fragment, in order, each a document of its own ---------------------------
r = media.get_media(StreamARN=arn, StartSelector={"StartSelectorType": "EARLIEST"})
check(r["ContentType"] == "video/webm", f"content type {r['ContentType']}")
body = r["Payload"].read()
docs = documents(body)
check(len(docs) == len(numbers), f"{len(docs)} documents for {len(numbers)} fragments")
all_tags = [tags(d) for d in docs]
check([t["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] for t in all_tags] == numbers,
      f"fragment numbers {all_tags}")
previous = 0.0
for i, t in enumerate(all_tags):
    producer = float(t["AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"])
    server = float(t["AWS_KINESISVIDEO_SERVER_TIMESTAMP"])
    check(producer > previous and server > 1.7e9, f"timestamps {t}")
    previous = producer
    check(int(t["AWS_KINESISVIDEO_MILLIS_BEHIND_NOW"]) >= 0, f"millis behind {t}")
    following = numbers[i + 1] if i + 1 < len(numbers) else str(int(numbers[-1]) + 1)
    check(t["AWS_KINESISVIDEO_CONTINUATION_TOKEN"] == following, f"continuation token {t}")
check_frames(body, video_frames, audio_frames)

# B-frames: blocks in decode order with presentation timestamps, every frame kept.
r = media.get_media(StreamName=bframes_stream, StartSelector={"StartSelectorType": "EARLIEST"})
check_frames(r["Payload"].read(), bframes_frames, 0)

# --- FRAGMENT_NUMBER, then resume with the continuation token ---------------------------------
r = media.get_media(StreamName=stream, StartSelector={"StartSelectorType": "FRAGMENT_NUMBER",
                                                      "AfterFragmentNumber": numbers[2]})
first = documents(r["Payload"].read())
check(tags(first[0])["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] == numbers[2], "starts at the fragment")
token = tags(first[0])["AWS_KINESISVIDEO_CONTINUATION_TOKEN"]
r = media.get_media(StreamName=stream, StartSelector={"StartSelectorType": "CONTINUATION_TOKEN",
                                                      "ContinuationToken": token})
rest = [tags(d)["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] for d in documents(r["Payload"].read())]
check([numbers[2]] + rest == numbers[2:], f"resumed: {rest}")

# --- PRODUCER_TIMESTAMP / SERVER_TIMESTAMP: the fragment containing the time ------------------
inside = float(all_tags[3]["AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"]) + 0.010
at = datetime.datetime.fromtimestamp(inside, tz=datetime.timezone.utc)
r = media.get_media(StreamName=stream, StartSelector={"StartSelectorType": "PRODUCER_TIMESTAMP",
                                                      "StartTimestamp": at})
got = [tags(d)["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] for d in documents(r["Payload"].read())]
check(got == numbers[3:], f"from a producer time: {got}")
server = datetime.datetime.fromtimestamp(float(all_tags[0]["AWS_KINESISVIDEO_SERVER_TIMESTAMP"]) - 60,
                                         tz=datetime.timezone.utc)
r = media.get_media(StreamName=stream, StartSelector={"StartSelectorType": "SERVER_TIMESTAMP",
                                                      "StartTimestamp": server})
check(len(documents(r["Payload"].read())) == len(numbers), "from a server time before the first")

# --- NOW on a stream with no producer: nothing to wait for, an empty body ---------------------
r = media.get_media(StreamName=stream, StartSelector={"StartSelectorType": "NOW"})
check(r["Payload"].read() == b"", "NOW without a producer")

# --- A fragment that does not exist: the error tags, as KVS ends a GetMedia -------------------
r = media.get_media(StreamName=stream, StartSelector={"StartSelectorType": "FRAGMENT_NUMBER",
                                                      "AfterFragmentNumber": "999999"})
err = [tags(d) for d in documents(r["Payload"].read())]
check(len(err) == 1 and err[0].get("AWS_KINESISVIDEO_ERROR_ID") == "4000", f"error tags {err}")

# --- Errors before any media -------------------------------------------------------------------
check(code(media.get_media, StreamName="no-such-stream", StartSelector={"StartSelectorType": "EARLIEST"})
      == "ResourceNotFoundException", "unknown stream")
check(code(media.get_media, StreamName=stream, StartSelector={"StartSelectorType": "FRAGMENT_NUMBER"})
      == "InvalidArgumentException", "FRAGMENT_NUMBER without a number")
check(code(media.get_media, StreamName=stream, StartSelector={"StartSelectorType": "CONTINUATION_TOKEN",
                                                              "ContinuationToken": "not-a-token"})
      == "InvalidArgumentException", "a token this server never issued")

# --- GetMediaForFragmentList: the listed fragments, in the listed order -----------------------
am = boto3.client("kinesis-video-archived-media", endpoint_url=endpoint, **kw)
r = am.get_media_for_fragment_list(StreamName=stream, Fragments=[numbers[4], numbers[0]])
listed = [tags(d) for d in documents(r["Payload"].read())]
check([t["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] for t in listed] == [numbers[4], numbers[0]],
      f"listed order {listed}")
check(all("AWS_KINESISVIDEO_SERVER_SIDE_TIMESTAMP" in t and "AWS_KINESISVIDEO_PRODUCER_SIDE_TIMESTAMP" in t
          for t in listed), f"listed tags {listed}")
check(code(am.get_media_for_fragment_list, StreamName=stream, Fragments=["999999"])
      == "ResourceNotFoundException", "an unknown fragment in the list")
print("ok")
