#!/usr/bin/env bash
# RTSP publish benchmark: N concurrent publishers at 2 Mbit/s (H.264 720p, TCP interleaved, real
# time) for N = 10, 50, 100, replayed by examples/rtsp_load.rs (one process, one thread, packetized
# once). Measures the Sluice server's CPU from /proc/<pid>/stat over a fixed window once every
# session is recording, and reports CPU per stream and the N at which the server would reach 80 %
# of the machine's cores. Durability on (sync = "always", group commit).
# Usage: scripts/bench-rtsp.sh [SECONDS_PER_RUN] [N...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh
secs="${1:-20}"
shift || true
counts=("$@")
[ ${#counts[@]} -eq 0 ] && counts=(10 50 100)
work=$(mktemp -d)
cleanup() { [ -n "${SLUICE_PID:-}" ] && kill "$SLUICE_PID" 2>/dev/null; [ -n "${LOAD_PID:-}" ] && kill "$LOAD_PID" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
build_release
cargo build --release --locked --quiet --example rtsp_load
load_bin="$target/release/examples/rtsp_load"

# 10 s of 720p30 at 2 Mbit/s CBR, GOP 1 s, no B-frames: what a camera sends.
ffmpeg -nostdin -y -v error -f lavfi -i testsrc2=size=1280x720:rate=30 -t 10 -c:v libx264 \
  -preset veryfast -b:v 2M -maxrate 2M -bufsize 2M -g 30 -keyint_min 30 -sc_threshold 0 -bf 0 \
  -movflags frag_keyframe+empty_moov+default_base_moof "$work/2mbit.mp4"

cores=$(nproc)
hz=$(ticks_per_sec)
echo "cores=$cores window=${secs}s"
for n in "${counts[@]}"; do
  rm -rf "$work/data"
  rtsp_port=$(free_port)
  http_port=$(free_port)
  printf '[rtsp]\nlisten = "127.0.0.1:%s"\n' "$rtsp_port" > "$work/sluice.toml"
  RUST_LOG=warn "$sluice_bin" serve --config "$work/sluice.toml" --listen "127.0.0.1:$http_port" \
    --data-dir "$work/data" 2>"$work/server.log" &
  SLUICE_PID=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$http_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  # Ramp-up (sessions start 7 ms apart) + 3 s settling, then the measured window, then 2 s slack.
  ramp=$(( n * 7 / 1000 + 3 ))
  "$load_bin" "127.0.0.1:$rtsp_port" "$work/2mbit.mp4" "$n" $(( ramp + secs + 2 )) > "$work/load.out" 2>"$work/load.err" &
  LOAD_PID=$!
  sleep "$ramp"
  c0=$(cpu_ticks "$SLUICE_PID"); l0=$(cpu_ticks "$LOAD_PID"); t0=$(date +%s.%N)
  sleep "$secs"
  c1=$(cpu_ticks "$SLUICE_PID"); l1=$(cpu_ticks "$LOAD_PID"); t1=$(date +%s.%N)
  wait "$LOAD_PID" || true; LOAD_PID=
  frags=$(curl -fs "http://127.0.0.1:$http_port/metrics" | awk '/^sluice_ingest_fragments_total/ {s+=$2} END {print s+0}')
  kill "$SLUICE_PID"; wait "$SLUICE_PID" 2>/dev/null || true; SLUICE_PID=
  python3 - "$n" "$c0" "$c1" "$l0" "$l1" "$hz" "$t0" "$t1" "$cores" "$frags" "$(cat "$work/load.out")" "$(grep -c 'session failed' "$work/load.err" || true)" <<'PY'
import sys
n, c0, c1, l0, l1, hz, t0, t1, cores, frags, load, failed = sys.argv[1:]
n = int(n); hz = int(hz); wall = float(t1) - float(t0); cores = int(cores)
server = (int(c1) - int(c0)) / hz / wall      # cores busy, server
gen = (int(l1) - int(l0)) / hz / wall         # cores busy, load generator
per = server / n
n80 = 0.8 * cores / per if per else float("inf")
print(f"N={n:4d}: server {server*100:6.1f} % of one core ({server/cores*100:5.1f} % of {cores} cores), "
      f"{per*100:.2f} % of a core per stream; generator {gen*100:.1f} %; "
      f"80 % of {cores} cores at N≈{n80:.0f}; fragments persisted {frags}; failed sessions {failed}; {load}")
PY
done
