#!/usr/bin/env bash
# Glass-to-glass latency of live playback in Chromium. ffmpeg pushes a 720p30 test pattern in real
# time as 200 ms fMP4 fragments (GOP 1 s), stamped with wall-clock time (absolute producer
# timestamps); headless Chromium plays live.m3u8 with hls.js (lowLatencyMode, then the default
# mode for comparison) and samples the distance between the frame on screen's
# PROGRAM-DATE-TIME and the wall clock every 100 ms. Prints p50/p95 per mode.
#
# Usage: scripts/bench-latency.sh [seconds-to-sample]   (default 60; needs `scripts/setup.sh bench`)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh

seconds="${1:-60}"
warmup=8
build_release

work=$(mktemp -d)
cleanup() {
  [ -n "${FFMPEG_PID:-}" ] && kill "$FFMPEG_PID" 2>/dev/null || true
  [ -n "${SLUICE_PID:-}" ] && kill "$SLUICE_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Only HTTP is needed: no RTSP listener (its fixed port may be taken by another server).
printf '[rtsp]\nenabled = false\n' >"$work/sluice.toml"
export SLUICE_CONFIG="$work/sluice.toml"
start_sluice "$work/data"
export SLUICE_URL
curl -fsS -X POST "$SLUICE_URL/v1/streams" -H 'content-type: application/json' \
  -d '{"name":"bench"}' >/dev/null

# Wall-clock stamping: decode time 0 is "now" (producerStart, epoch ms, taken just before ffmpeg
# starts) and -re makes frames at real-time pace from there, so each frame's producer timestamp
# is the wall-clock moment it was made (or slightly before: ffmpeg's start-up counts as latency).
push_secs=$((seconds * 2 + warmup * 2 + 30))
ffmpeg -nostdin -loglevel error -re -f lavfi -i testsrc2=size=1280x720:rate=30 -t "$push_secs" \
  -c:v libx264 -preset veryfast -tune zerolatency -g 30 -keyint_min 30 -sc_threshold 0 -bf 0 \
  -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof -frag_duration 200000 \
  -method PUT "$SLUICE_URL/v1/streams/bench/media?producerStart=$(date +%s%3N)" &
FFMPEG_PID=$!
sleep 3

echo "== sluice: glass-to-glass latency, $seconds s of samples per mode (after ${warmup}s warm-up)"
for ll in 1 0; do
  STREAM=bench LL=$ll SECONDS_TO_SAMPLE="$seconds" WARMUP="$warmup" node tests/browser/latency.mjs | grep '^{'
done
