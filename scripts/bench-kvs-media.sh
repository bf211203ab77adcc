#!/usr/bin/env bash
# KVS media benchmark, side by side in one run on one server build:
#  1. the native fMP4 push and KVS PutMedia (Matroska, remuxed to fMP4 at ingest) of the same
#     media, ≈1 GB each, durability on: the server's CPU seconds per GB of each, and their ratio
#     (aim: PutMedia within 1.3× of the native push);
#  2. GetMedia from EARLIEST of what PutMedia stored, read twice (the second from the page
#     cache): the server's CPU per GB sent (aim: ≥ 1 GB/s per core).
# Both inputs are the same H.264 + AAC media, looped by ffmpeg without re-encoding: as fragmented
# MP4, and as Matroska with a cluster per keyframe. Usage: scripts/bench-kvs-media.sh [GB]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh
gb="${1:-1}"
work=$(mktemp -d)
cleanup() { [ -n "${SLUICE_PID:-}" ] && kill "$SLUICE_PID" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
build_release

# 1080p H.264 at 20 Mbit/s with AAC: ≈2.5 MB per one-second fragment.
ffmpeg -nostdin -y -v error -f lavfi -i testsrc2=size=1920x1080:rate=30 -f lavfi \
  -i sine=frequency=440:sample_rate=48000 -t 10 -c:v libx264 -preset ultrafast -b:v 20M \
  -maxrate 20M -bufsize 20M -g 30 -keyint_min 30 -sc_threshold 0 -bf 0 -c:a aac -b:a 128k \
  -movflags frag_keyframe+empty_moov+default_base_moof "$work/src.mp4"
loops=$(( gb * 1000000000 / $(stat -c %s "$work/src.mp4") ))
ffmpeg -nostdin -y -v error -stream_loop "$loops" -i "$work/src.mp4" -c copy -f mp4 \
  -movflags frag_keyframe+empty_moov+default_base_moof "$work/in.mp4"
ffmpeg -nostdin -y -v error -stream_loop "$loops" -i "$work/src.mp4" -c copy -f matroska \
  -cluster_time_limit 100000 -cluster_size_limit 100000000 "$work/in.mkv"

rm -rf "$work/data"
start_sluice "$work/data"
for s in native kvs; do
  curl -fs -X POST "$SLUICE_URL/v1/streams" -H 'content-type: application/json' \
    -d "{\"name\":\"$s\",\"retentionHours\":0}" >/dev/null
done

# measure LABEL BYTES-FILE COMMAND...: the server's CPU and the wall time around COMMAND; the
# bytes counted are the size of BYTES-FILE.
measure() {
  local label=$1 counted=$2; shift 2
  local c0 c1 t0 t1
  c0=$(cpu_ticks "$SLUICE_PID"); t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N); c1=$(cpu_ticks "$SLUICE_PID")
  python3 - "$label" "$(stat -c %s "$counted")" "$c0" "$c1" "$(ticks_per_sec)" "$t0" "$t1" \
    >>"$work/results" <<'PY'
import sys
label, n, c0, c1, hz, t0, t1 = sys.argv[1:]
gb = int(n) / 1e9; cpu = (int(c1) - int(c0)) / int(hz); wall = float(t1) - float(t0)
print(f"{label}\t{gb:.2f}\t{cpu:.2f}\t{cpu / gb:.3f}\t{gb / cpu if cpu else float('inf'):.2f}\t{gb / wall:.2f}")
PY
  tail -1 "$work/results"
}

check_acks() {
  local persisted errors
  persisted=$(grep -c '"PERSISTED"' "$1" || true)
  errors=$(grep -c '"ERROR"' "$1" || true)
  echo "  $persisted fragments PERSISTED, $errors errors"
  [ "$errors" = 0 ] && [ "$persisted" -gt 0 ]
}

echo -e "what\tGB\tserver CPU-s\tCPU-s per GB\tGB/s per core\tGB/s wall" >"$work/results"
measure "push fMP4 (native)" "$work/in.mp4" \
  curl -fsS -T "$work/in.mp4" "$SLUICE_URL/v1/streams/native/media?acks=end" -o "$work/acks.native"
check_acks "$work/acks.native"
measure "PutMedia Matroska" "$work/in.mkv" \
  curl -fsS -X POST -T "$work/in.mkv" -H 'x-amzn-stream-name: kvs' \
  -H 'x-amzn-fragment-timecode-type: RELATIVE' -H 'x-amzn-producer-start-timestamp: 1772362800' \
  "$SLUICE_URL/putMedia" -o "$work/acks.kvs"
check_acks "$work/acks.kvs"

get_media() {
  curl -fsS -X POST "$SLUICE_URL/getMedia" \
    -d '{"StreamName":"kvs","StartSelector":{"StartSelectorType":"EARLIEST"}}' -o "$work/out.mkv"
}
measure "GetMedia, cold" "$work/out.mkv" get_media
measure "GetMedia, page cache" "$work/out.mkv" get_media
echo "  GetMedia sent $(stat -c %s "$work/out.mkv") bytes"
echo
column -t -s $'\t' "$work/results"
python3 - "$work/results" <<'PY'
import sys
rows = {l.split("\t")[0]: l.split("\t") for l in open(sys.argv[1]).read().splitlines()[1:]}
ratio = float(rows["PutMedia Matroska"][3]) / float(rows["push fMP4 (native)"][3])
print(f"\nPutMedia CPU per GB / native push CPU per GB = {ratio:.2f} (aim <= 1.3)")
print(f"GetMedia from the page cache: {rows['GetMedia, page cache'][4]} GB/s per core (aim >= 1)")
PY
