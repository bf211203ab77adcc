#!/usr/bin/env bash
# GetRecords over JSON and over CBOR, from the page cache, in one run: a release Sluice (limits
# off) on a free loopback port, one shard filled with 10 KB records, read back whole three times
# per encoding by examples/kinesis_read_codecs.rs (which decodes every answer fully). Reports
# record payload per wall second and per second of the server's CPU time (/proc/<pid>/stat).
#
# Usage: scripts/bench-kinesis-codecs.sh   (BENCH_MIB=256 BENCH_SIZE=10000 BENCH_PASSES=3)
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
MIB="${BENCH_MIB:-256}"
SIZE="${BENCH_SIZE:-10000}"
PASSES="${BENCH_PASSES:-3}"

cargo build --release --quiet --bin sluice --example kinesis_read_codecs
SLUICE="$CARGO_TARGET_DIR/release/sluice"
CLIENT="$CARGO_TARGET_DIR/release/examples/kinesis_read_codecs"

WORK="$(mktemp -d /tmp/sluice-bench-codecs.XXXXXX)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
# RTSP publish off: the benchmark needs no port of its own beyond HTTP.
printf '[data_streams]\nthroughput_limits = false\n[rtsp]\nenabled = false\n' >"$WORK/sluice.toml"
RUST_LOG=warn "$SLUICE" serve --config "$WORK/sluice.toml" --listen "127.0.0.1:$PORT" \
  --data-dir "$WORK/data" >"$WORK/sluice.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

"$CLIENT" --endpoint "http://127.0.0.1:$PORT" --pid "$PID" --mib "$MIB" --size "$SIZE" \
  --passes "$PASSES" | tee "$WORK/results.tsv" >&2

echo
echo "GetRecords from the page cache, $(date -u +%Y-%m-%d), $(nproc) cores; one shard, ${MIB} MiB of ${SIZE}-byte records, ${PASSES} passes per encoding (best shown)"
awk -F'\t' '$1 == "RESULT" {
    wall = $4 / $5 / 1e6; cpu = ($6 > 0 ? $4 / $6 / 1e6 : 0)
    if (wall > bw[$2]) bw[$2] = wall; if (cpu > bc[$2]) bc[$2] = cpu
  }
  END {
    printf "| encoding | payload MB/s (wall) | payload MB per server CPU-second |\n|---|---|---|\n"
    printf "| JSON (base64) | %.0f | %.0f |\n| CBOR (byte strings) | %.0f | %.0f |\n", bw["json"], bc["json"], bw["cbor"], bc["cbor"]
  }' "$WORK/results.tsv"
