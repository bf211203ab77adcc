#!/usr/bin/env bash
# Image generation benchmark: ingest wall time of a 1080p30 push with and without image
# generation configured on the stream (one JPEG per second to a directory), and how long after the
# last PERSISTED ack the generator has caught up (every image written). Image generation reads the
# log behind ingest; on a small machine it competes for CPU, never for the ingest path.
# Usage: scripts/bench-imagegen.sh [SECONDS_OF_VIDEO]   (default 120)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh
secs="${1:-120}"
work=$(mktemp -d)
cleanup() {
  if [ -n "${SLUICE_PID:-}" ]; then kill "$SLUICE_PID" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
build_release
# Other Sluice instances may hold the default RTSP port: this benchmark needs only HTTP.
printf '[rtsp]\nenabled = false\n' >"$work/bench.toml"
export SLUICE_CONFIG="$work/bench.toml"

ffmpeg -nostdin -y -v error -f lavfi -i testsrc2=size=1920x1080:rate=30 -t "$secs" -c:v libx264 \
  -preset ultrafast -g 60 -keyint_min 60 -sc_threshold 0 -bf 0 \
  -movflags frag_keyframe+empty_moov+default_base_moof "$work/in.mp4"
expected=$secs   # one image per second, instants T0 .. T0 + secs - 1

run() {
  local label=$1 generate=$2
  rm -rf "$work/data" "$work/frames"
  start_sluice "$work/data"
  curl -fs -X POST "$SLUICE_URL/v1/streams" -H 'content-type: application/json' \
    -d '{"name":"bench","retentionHours":0}' >/dev/null
  if [ "$generate" = yes ]; then
    curl -fs -X PATCH "$SLUICE_URL/v1/streams/bench" -H 'content-type: application/json' \
      -d "{\"imageGeneration\":{\"intervalMs\":1000,\"destination\":{\"kind\":\"directory\",\"path\":\"$work/frames\"}}}" \
      >/dev/null
  fi
  local t0 t1 t2
  t0=$(date +%s.%N)
  curl -fsS -T "$work/in.mp4" \
    "$SLUICE_URL/v1/streams/bench/media?acks=end&producerStart=2026-11-21T10:00:00Z" -o "$work/acks"
  t1=$(date +%s.%N)
  t2=$t1
  if [ "$generate" = yes ]; then
    for _ in $(seq 6000); do
      n=$( (cat "$work/frames/bench/manifest.jsonl" 2>/dev/null || true) | wc -l)
      [ "$n" -ge "$expected" ] && break
      sleep 0.05
    done
    t2=$(date +%s.%N)
    n=$( (cat "$work/frames/bench/manifest.jsonl" 2>/dev/null || true) | wc -l)
  else
    n=0
  fi
  local persisted
  persisted=$(grep -c '"PERSISTED"' "$work/acks" || true)
  kill "$SLUICE_PID"; wait "$SLUICE_PID" 2>/dev/null || true; SLUICE_PID=
  python3 - "$label" "$persisted" "$n" "$t0" "$t1" "$t2" <<'PY'
import sys
label, persisted, images, t0, t1, t2 = sys.argv[1:]
ingest = float(t1) - float(t0); tail = float(t2) - float(t1)
print(f"{label}: {persisted} fragments PERSISTED in {ingest:.2f} s", end="")
if int(images):
    print(f"; {images} images, the last {tail:.2f} s after the last ack"
          f" ({int(images) / (ingest + tail):.1f} images/s overall)")
else:
    print()
PY
}

run "without image generation" no
run "with image generation (1 JPEG/s, directory)" yes
run "without image generation" no
run "with image generation (1 JPEG/s, directory)" yes
