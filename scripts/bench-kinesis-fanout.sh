#!/usr/bin/env bash
# SubscribeToShard under load: a release Sluice (throughput limits off, so the subscriptions are
# not paced below what the writer sends), 20 consumers × 4 shards subscribed through the AWS SDK
# for Rust while one writer puts 10 KB records at 2 MB/s per shard for 20 s
# (examples/kinesis_fanout.rs). Reports delivered MB/s, the slowest consumer-shard's rate, put →
# delivered latency percentiles and the server's CPU time.
#
# Usage: scripts/bench-kinesis-fanout.sh   (BENCH_CONSUMERS=20 BENCH_SHARDS=4 BENCH_SECS=20 BENCH_RATE=2)
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"

cargo build --release --quiet --bin sluice --example kinesis_fanout
SLUICE="$CARGO_TARGET_DIR/release/sluice"
CLIENT="$CARGO_TARGET_DIR/release/examples/kinesis_fanout"

WORK="$(mktemp -d /tmp/sluice-bench-fanout.XXXXXX)"
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

CONSUMERS="${BENCH_CONSUMERS:-20}"; SHARDS="${BENCH_SHARDS:-4}"; SECS="${BENCH_SECS:-20}"; RATE="${BENCH_RATE:-2}"
"$CLIENT" --endpoint "http://127.0.0.1:$PORT" --pid "$PID" --consumers "$CONSUMERS" \
  --shards "$SHARDS" --secs "$SECS" --rate "$RATE" | tee "$WORK/results.tsv" >&2

echo
echo "SubscribeToShard, $(date -u +%Y-%m-%d), $(nproc) cores; $CONSUMERS consumers × $SHARDS shards, 10 KB records at $RATE MB/s per shard for $SECS s"
awk -F'\t' '$1 == "RESULT" {
  printf "| delivered MB/s | slowest consumer-shard MB/s | put → event p50 | p99 | max | server CPU |\n|---|---|---|---|---|---|\n"
  printf "| %.1f | %.2f | %.1f ms | %.1f ms | %.1f ms | %.0f %% of one core |\n", $2 / $3 / 1e6, $4, $5, $6, $7, 100 * $8 / $3
}' "$WORK/results.tsv"
