#!/usr/bin/env bash
# Ingest benchmark: CPU time of the Sluice server per GB of fragmented MP4 pushed over HTTP, with
# durability on (sync = "always": every fragment fdatasync'ed, group commit), for small (≈100 KB)
# and large (≈2.5 MB) fragments. The input is built once from real H.264 by ffmpeg (-stream_loop
# without re-encoding keeps the timestamps continuous). Usage: scripts/bench-ingest.sh [GB]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh
gb="${1:-1}"
work=$(mktemp -d)
cleanup() { [ -n "${SLUICE_PID:-}" ] && kill "$SLUICE_PID" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
build_release

# Inputs: the 640x360 fixture (≈100 KB fragments) and a 1080p 20 Mbit/s clip (≈2.5 MB fragments).
ffmpeg -nostdin -y -v error -f lavfi -i testsrc2=size=1920x1080:rate=30 -t 10 -c:v libx264 \
  -preset ultrafast -b:v 20M -maxrate 20M -bufsize 20M -g 30 -keyint_min 30 -sc_threshold 0 -bf 0 \
  -movflags frag_keyframe+empty_moov+default_base_moof "$work/1080p.mp4"

run() {
  local label=$1 src=$2
  local size loops
  size=$(stat -c %s "$src")
  loops=$(( gb * 1000000000 / size ))
  ffmpeg -nostdin -y -v error -stream_loop "$loops" -i "$src" -c copy -f mp4 \
    -movflags frag_keyframe+empty_moov+default_base_moof "$work/in.mp4"
  local bytes
  bytes=$(stat -c %s "$work/in.mp4")
  rm -rf "$work/data"
  start_sluice "$work/data"
  curl -fs -X POST "$SLUICE_URL/v1/streams" -H 'content-type: application/json' \
    -d '{"name":"bench","retentionHours":0}' >/dev/null
  local c0 c1 t0 t1
  c0=$(cpu_ticks "$SLUICE_PID")
  t0=$(date +%s.%N)
  curl -fsS -T "$work/in.mp4" "$SLUICE_URL/v1/streams/bench/media?acks=end" -o "$work/acks"
  t1=$(date +%s.%N)
  c1=$(cpu_ticks "$SLUICE_PID")
  local persisted errors
  persisted=$(grep -c '"PERSISTED"' "$work/acks" || true)
  errors=$(grep -c '"ERROR"' "$work/acks" || true)
  kill "$SLUICE_PID"; wait "$SLUICE_PID" 2>/dev/null || true; SLUICE_PID=
  rm -f "$work/in.mp4"
  python3 - "$label" "$bytes" "$persisted" "$errors" "$c0" "$c1" "$(ticks_per_sec)" "$t0" "$t1" <<'PY'
import sys
label, nbytes, persisted, errors, c0, c1, hz, t0, t1 = sys.argv[1:]
nbytes = int(nbytes); cpu = (int(c1) - int(c0)) / int(hz); wall = float(t1) - float(t0)
gb = nbytes / 1e9
print(f"{label}: {gb:.2f} GB in {persisted} fragments ({nbytes/int(persisted)/1e3:.0f} KB each), {errors} errors")
print(f"  server CPU {cpu:.2f} s = {cpu/gb:.2f} CPU-s per GB -> {gb/cpu if cpu else float('inf'):.2f} GB/s per core")
print(f"  wall {wall:.2f} s = {gb/wall:.2f} GB/s end to end (curl and server on the same 2 cores, fsync on)")
PY
}

run "640x360 fixture" fixtures/h264.mp4
run "1080p 20 Mbit/s" "$work/1080p.mp4"
