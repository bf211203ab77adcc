#!/usr/bin/env bash
# Firehose end to end, against the physical alternative: PutRecordBatch of 1 KB records into a
# delivery stream with a directory bucket, GZIP, 5 MiB buffers (examples/firehose_put.rs, 4 calls
# in flight) on a release Sluice, from the first put to the last object; beside it, `gzip -1` (the
# level Sluice uses) of the same bytes on one core, the compression alone with no ingest, log or
# files. Vector and Fluent Bit, the peers the aim names, are in no registry this machine reaches
# (Debian 12 packages neither), so gzip is the anchor. Reports MB/s of record payload and the
# server's CPU seconds.
#
# Usage: scripts/bench-firehose.sh   (BENCH_MIB=1024 BENCH_SIZE=1000 BENCH_TASKS=4)
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
MIB="${BENCH_MIB:-1024}"
SIZE="${BENCH_SIZE:-1000}"
TASKS="${BENCH_TASKS:-4}"

cargo build --release --quiet --bin sluice --example firehose_put
SLUICE="$CARGO_TARGET_DIR/release/sluice"
CLIENT="$CARGO_TARGET_DIR/release/examples/firehose_put"

WORK="$(mktemp -d /tmp/sluice-bench-firehose.XXXXXX)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
printf '[rtsp]\nenabled = false\n' >"$WORK/sluice.toml"
RUST_LOG=warn "$SLUICE" serve --config "$WORK/sluice.toml" --listen "127.0.0.1:$PORT" \
  --data-dir "$WORK/data" >"$WORK/sluice.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

"$CLIENT" --endpoint "http://127.0.0.1:$PORT" --dir "$WORK/data/buckets/bench" --pid "$PID" \
  --mib "$MIB" --size "$SIZE" --tasks "$TASKS" >"$WORK/result.tsv"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""

"$CLIENT" --endpoint x --sample "$WORK/sample" --mib "$MIB" --size "$SIZE"
start=$(date +%s.%N)
gzip -1 -c "$WORK/sample" >"$WORK/sample.gz"
end=$(date +%s.%N)

echo "Firehose end to end, $(date -u +%Y-%m-%d), $(nproc) cores; ${MIB} MiB of ${SIZE}-byte records, GZIP, 5 MiB buffers"
awk -F'\t' -v gz="$(echo "$end - $start" | bc)" -v raw="$(stat -c %s "$WORK/sample")" -v gzb="$(stat -c %s "$WORK/sample.gz")" '
  $1 == "RESULT" {
    printf "| Sluice PutRecordBatch → gzip objects | %.0f MB/s end to end | %.2f server CPU-s (%.0f MB per CPU-s) | ratio %.2f |\n", $3 / $4 / 1e6, $5, ($5 > 0 ? $3 / $5 / 1e6 : 0), $3 / $6
    printf "| gzip -1 of the same bytes, one core | %.0f MB/s | | ratio %.2f |\n", raw / gz / 1e6, raw / gzb
  }' "$WORK/result.tsv"

# The destination down: buckets under a path that cannot be created, so every object write fails
# and is retried while PutRecordBatch goes on at full speed for BENCH_DOWN_SECS; the backlog must
# stay in the log on disk. Reports the server's peak resident memory (VmHWM).
DOWN_SECS="${BENCH_DOWN_SECS:-60}"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
printf '[rtsp]\nenabled = false\n[object_store]\nlocal_root = "/dev/null/buckets"\n' >"$WORK/down.toml"
RUST_LOG=error "$SLUICE" serve --config "$WORK/down.toml" --listen "127.0.0.1:$PORT" \
  --data-dir "$WORK/down" >"$WORK/down.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
"$CLIENT" --endpoint "http://127.0.0.1:$PORT" --dir "$WORK/down" --pid "$PID" --size "$SIZE" \
  --tasks "$TASKS" --seconds "$DOWN_SECS" >"$WORK/down.tsv"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
awk -F'\t' -v hwm="$hwm" -v rss="$rss" '$1 == "PUT" {
    printf "| destination down for %.0f s, puts at full speed | %.0f MB/s taken, %.1f GB backlog | peak RSS %.0f MB, %.0f MB at the end |\n", $4, $3 / $4 / 1e6, $3 / 1e9, hwm / 1024, rss / 1024
  }' "$WORK/down.tsv"
