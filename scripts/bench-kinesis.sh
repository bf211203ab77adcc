#!/usr/bin/env bash
# Kinesis data streams, side by side: Sluice (release build, default config = durability on,
# `sync = "always"`), kinesalite and kinesis-mock (npm `kinesis-local`), each on a free loopback
# port, driven by ONE client (examples/kinesis_client.rs, AWS SDK for Rust) with the same
# workload: PutRecords throughput for 100-byte and 10 KB records into 1 and 4 shards, then
# GetRecords of everything written. Prints a table and Sluice / faster-peer ratios.
#
# Sluice runs with the per-shard throughput limits switched off (`[data_streams]
# throughput_limits = false`): the peers enforce none, and 1,000 records/s per shard would
# otherwise be what we measure. Everything else is the default configuration.
#
# Usage: scripts/bench-kinesis.sh            (≈ 3 min; BENCH_SECS=10 per write phase)
#   BENCH_SECS=5 BENCH_MAX_RECORDS=200000 BENCH_WRITERS=8 scripts/bench-kinesis.sh
# The npm packages are installed once into ~/.cache/sluice-bench-node (not the repo).
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
SECS="${BENCH_SECS:-10}"
MAX_RECORDS="${BENCH_MAX_RECORDS:-1000000}"
MAX_BYTES="${BENCH_MAX_BYTES:-1073741824}"
WRITERS="${BENCH_WRITERS:-8}"
NODE_DIR="$HOME/.cache/sluice-bench-node"
KINESALITE_VERSION=3.3.3
KINESIS_LOCAL_VERSION=0.6.2

command -v node >/dev/null || { echo "node (and npm) are required: apt-get install nodejs npm" >&2; exit 1; }

# --- peers, installed idempotently outside the repo ------------------------------------------
installed() { node -p "require('$NODE_DIR/node_modules/$1/package.json').version" 2>/dev/null || true; }
if [[ "$(installed kinesalite)" != "$KINESALITE_VERSION" || "$(installed kinesis-local)" != "$KINESIS_LOCAL_VERSION" ]]; then
  mkdir -p "$NODE_DIR"
  [[ -f "$NODE_DIR/package.json" ]] || echo '{"private":true}' >"$NODE_DIR/package.json"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error \
    "kinesalite@$KINESALITE_VERSION" "kinesis-local@$KINESIS_LOCAL_VERSION")
fi

# --- builds ------------------------------------------------------------------------------------
cargo build --release --quiet --bin sluice --example kinesis_client
SLUICE="$CARGO_TARGET_DIR/release/sluice"
CLIENT="$CARGO_TARGET_DIR/release/examples/kinesis_client"

# --- servers -----------------------------------------------------------------------------------
WORK="$(mktemp -d /tmp/sluice-bench-kinesis.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { # name port pid
  for _ in $(seq 1 300); do
    if ! kill -0 "$3" 2>/dev/null; then echo "$1 exited during start-up; log:" >&2; cat "$WORK/$1.log" >&2; exit 1; fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not listen on 127.0.0.1:$2 within 30 s" >&2; exit 1
}

SLUICE_PORT=$(free_port)
mkdir -p "$WORK/sluice-data"
cat >"$WORK/sluice.toml" <<EOF
[data_streams]
throughput_limits = false
# RTSP publish off: the benchmark needs no port of its own beyond HTTP.
[rtsp]
enabled = false
EOF
RUST_LOG=warn "$SLUICE" serve --config "$WORK/sluice.toml" --listen "127.0.0.1:$SLUICE_PORT" \
  --data-dir "$WORK/sluice-data" >"$WORK/sluice.log" 2>&1 &
PIDS+=($!); wait_port sluice "$SLUICE_PORT" $!

KINESALITE_PORT=$(free_port)
node "$NODE_DIR/node_modules/kinesalite/cli.js" --port "$KINESALITE_PORT" --createStreamMs 0 \
  --deleteStreamMs 0 --updateStreamMs 0 --shardLimit 1000 >"$WORK/kinesalite.log" 2>&1 &
PIDS+=($!); wait_port kinesalite "$KINESALITE_PORT" $!

MOCK_PORT=$(free_port); MOCK_TLS_PORT=$(free_port)
(cd "$NODE_DIR/node_modules/kinesis-local" && KINESIS_MOCK_PLAIN_PORT=$MOCK_PORT \
  KINESIS_MOCK_TLS_PORT=$MOCK_TLS_PORT CREATE_STREAM_DURATION=0ms DELETE_STREAM_DURATION=0ms \
  SHARD_LIMIT=1000 LOG_LEVEL=ERROR exec node main.js) >"$WORK/kinesis-mock.log" 2>&1 &
PIDS+=($!); wait_port kinesis-mock "$MOCK_PORT" $!

# --- the same workload against each ------------------------------------------------------------
RESULTS="$WORK/results.tsv"
run() { # target port server-pid [extra client args]
  local target=$1 port=$2 pid=$3; shift 3
  echo "== $target (127.0.0.1:$port)" >&2
  "$CLIENT" --endpoint "http://127.0.0.1:$port" --target "$target" --secs "$SECS" \
    --max-records "$MAX_RECORDS" --max-bytes "$MAX_BYTES" --writers "$WRITERS" \
    --server-pid "$pid" "$@" | tee -a "$RESULTS" >&2
}
run sluice "$SLUICE_PORT" "${PIDS[0]}" --page-cache-dir "$WORK/sluice-data"
run kinesalite "$KINESALITE_PORT" "${PIDS[1]}"
run kinesis-mock "$MOCK_PORT" "${PIDS[2]}"

# --- table -------------------------------------------------------------------------------------
echo
echo "Kinesis data streams, $(date -u +%Y-%m-%d), $(nproc) cores; ${SECS} s per write phase, $WRITERS concurrent PutRecords, one client (aws-sdk-kinesis)"
awk -F'\t' '
  $1 == "RESULT" {
    key = $3 "\t" $4 "\t" $5; if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    rps[$2, key] = ($8 > 0 ? $6 / $8 : 0); mbps[$2, key] = ($8 > 0 ? $7 / $8 / 1e6 : 0)
    fail[$2, key] = $9; targets[$2] = 1
    # Bytes per CPU-second of the server: what each costs per byte, whoever holds the cores.
    eff[$2, key] = ($10 > 0 ? $7 / $10 / 1e6 : 0); ccpu[$2, key] = $11; scpu[$2, key] = $10
  }
  $1 == "BASELINE" { base = ($4 > 0 ? $3 / $4 / 1e6 : 0) }
  END {
    printf "| op | record | shards | Sluice rec/s | Sluice MB/s | kinesalite rec/s | kinesalite MB/s | kinesis-mock rec/s | kinesis-mock MB/s | Sluice / faster peer |\n"
    printf "|---|---|---|---|---|---|---|---|---|---|\n"
    for (i = 1; i <= n; i++) {
      k = order[i]; split(k, f, "\t")
      peer = rps["kinesalite", k] > rps["kinesis-mock", k] ? rps["kinesalite", k] : rps["kinesis-mock", k]
      ratio = peer > 0 ? sprintf("%.1f×", rps["sluice", k] / peer) : "n/a"
      printf "| %s | %s B | %s | %.0f | %.1f | %.0f | %.1f | %.0f | %.1f | %s |\n", (f[1] == "put" ? "PutRecords" : "GetRecords"), f[2], f[3],
        rps["sluice", k], mbps["sluice", k], rps["kinesalite", k], mbps["kinesalite", k],
        rps["kinesis-mock", k], mbps["kinesis-mock", k], ratio
    }
    for (i = 1; i <= n; i++) { k = order[i]; split(k, f, "\t")
      for (t in targets) if (fail[t, k] > 0) printf "note: %s %s %s B %s shard(s): %d %s\n", t, f[1], f[2], f[3], fail[t, k], (f[1] == "put" ? "records failed" : "GetRecords retried") }
    printf "\nPer server CPU-second (client and server share the cores; CPU from /proc):\n\n"
    printf "| op | record | shards | Sluice MB/CPU-s | kinesalite MB/CPU-s | kinesis-mock MB/CPU-s | Sluice / better peer | Sluice server / client CPU-s |\n"
    printf "|---|---|---|---|---|---|---|---|\n"
    for (i = 1; i <= n; i++) {
      k = order[i]; split(k, f, "\t")
      peer = eff["kinesalite", k] > eff["kinesis-mock", k] ? eff["kinesalite", k] : eff["kinesis-mock", k]
      ratio = peer > 0 ? sprintf("%.1f×", eff["sluice", k] / peer) : "n/a"
      printf "| %s | %s B | %s | %.0f | %.1f | %.1f | %s | %s / %s |\n", (f[1] == "put" ? "PutRecords" : "GetRecords"), f[2], f[3],
        eff["sluice", k], eff["kinesalite", k], eff["kinesis-mock", k], ratio, scpu["sluice", k], ccpu["sluice", k]
    }
    if (base > 0) printf "\nPage-cache read of Sluice'\''s data directory (plain read(2)): %.0f MB/s\n", base
  }' "$RESULTS"
