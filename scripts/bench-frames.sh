#!/usr/bin/env bash
# Frames benchmark: Sluice's image-set endpoint vs `ffmpeg -vf fps=1` on the same file, and
# frame.jpg latency at random instants (exact frames). Figures go to docs/benchmarks.md.
#
#   scripts/bench-frames.sh                 # 10 minutes of 1080p30, 2 s GOP
#   DURATION=120 LATENCY_SAMPLES=50 scripts/bench-frames.sh
#   INPUT=/tmp/in.mp4 DURATION=600 scripts/bench-frames.sh   # reuse a generated file
#
# Needs only what `scripts/setup.sh bench` installs (ffmpeg, curl, awk, python3).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh

DURATION="${DURATION:-600}"
LATENCY_SAMPLES="${LATENCY_SAMPLES:-100}"
work=$(mktemp -d)
trap 'kill "${SLUICE_PID:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

now() { date +%s.%N; }
# calc EXPR [VARS…]: floating-point arithmetic without bc.
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
load() { awk '{print $1" "$2" "$3}' /proc/loadavg; }

build_release
input="${INPUT:-$work/in.mp4}"
if [[ ! -s "$input" ]]; then
  echo "generating ${DURATION}s of 1080p30, GOP 60 (ultrafast)…"
  ffmpeg -v error -f lavfi -i "testsrc2=size=1920x1080:rate=30" -t "$DURATION" \
    -c:v libx264 -preset ultrafast -g 60 -keyint_min 60 -sc_threshold 0 -bf 0 \
    -movflags frag_keyframe+empty_moov+default_base_moof "$input"
fi
echo "file: $input $(du -h "$input" | cut -f1), ${DURATION}s 1080p30 H.264 GOP 60, no B-frames"
echo "cores: $(nproc)"

start_sluice "$work/data"
curl -fs -XPOST "$SLUICE_URL/v1/streams" -H 'content-type: application/json' \
  -d '{"name":"bench"}' >/dev/null
T0=1795000000000
curl -fs -T "$input" -H "content-type: video/mp4" \
  "$SLUICE_URL/v1/streams/bench/media?producerStart=$T0" >/dev/null
END=$((T0 + DURATION * 1000))
# One warm-up frame so the first measured request does not pay for plugin loading.
curl -fs -o /dev/null "$SLUICE_URL/v1/streams/bench/frame.jpg?at=$T0"

# Throughput: one image per second over the whole file, streamed as tar.
echo "load before images endpoint: $(load)"
c0=$(cpu_ticks "$SLUICE_PID")
s=$(now)
curl -fs -H 'accept: application/x-tar' -o "$work/set.tar" \
  "$SLUICE_URL/v1/streams/bench/images?start=$T0&end=$END&intervalMs=1000"
e=$(now)
c1=$(cpu_ticks "$SLUICE_PID")
sluice_s=$(calc "$e - $s")
sluice_cpu=$(calc "($c1 - $c0) / $(ticks_per_sec)")
images=$(tar tf "$work/set.tar" | grep -c '\.jpg$' || true)

mkdir -p "$work/ff"
echo "load before ffmpeg: $(load)"
s=$(now)
ffmpeg -v error -i "$input" -vf fps=1 "$work/ff/out%04d.jpg"
e=$(now)
ff_s=$(calc "$e - $s")
ff_images=$(find "$work/ff" -name '*.jpg' | wc -l)

printf 'images endpoint: %d images in %.2f s (%.1f ms/image, server CPU %.2f s)\n' "$images" \
  "$sluice_s" "$(calc "$sluice_s * 1000 / ($images > 0 ? $images : 1)")" "$sluice_cpu"
printf 'ffmpeg -vf fps=1: %d images in %.2f s (%.1f ms/image)\n' "$ff_images" "$ff_s" \
  "$(calc "$ff_s * 1000 / ($ff_images > 0 ? $ff_images : 1)")"
printf 'ratio (ffmpeg time / sluice time): %.2fx\n' "$(calc "$ff_s / $sluice_s")"

# Latency: frame.jpg at random instants (exact frames, anywhere in a GOP), one at a time.
echo "load before latency: $(load)"
: > "$work/lat"
for _ in $(seq "$LATENCY_SAMPLES"); do
  at=$((T0 + ( (RANDOM * 32768 + RANDOM) % (DURATION * 1000 - 100) )))
  curl -fs -o /dev/null -w '%{time_total}\n' \
    "$SLUICE_URL/v1/streams/bench/frame.jpg?at=$at" >> "$work/lat"
done
sort -n "$work/lat" > "$work/lat.sorted"
n=$(wc -l < "$work/lat.sorted")
p50=$(sed -n "$(( (n + 1) / 2 ))p" "$work/lat.sorted")
p95=$(sed -n "$(( (n * 95 + 99) / 100 ))p" "$work/lat.sorted")
printf 'frame.jpg latency at %d random instants: p50 %.1f ms, p95 %.1f ms\n' "$n" \
  "$(calc "$p50 * 1000")" "$(calc "$p95 * 1000")"
echo "load after: $(load)"
