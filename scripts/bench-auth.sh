#!/usr/bin/env bash
# What authorization costs on the hot paths, side by side in one run: two release Sluice servers
# on the same data, one with `[auth] enabled = false`, one with it on. wrk fetches a cached HLS
# segment from both (the second with `Authorization: Bearer <key>:<secret>`), alternating, two
# rounds each; then the AWS SDK client (examples/kinesis_client.rs, which always signs) runs
# PutRecords and GetRecords against both, so the difference is SigV4 verification and the grant
# check. Aims: segments ≥ 0.95×, PutRecords ≥ 0.9× of the server without auth.
#
# Usage: scripts/bench-auth.sh [seconds] [connections]     (≈ 2 min)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh
secs="${1:-8}"
conns="${2:-32}"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
for tool in wrk curl; do
  command -v "$tool" >/dev/null || { echo "$tool is required: run scripts/setup.sh bench" >&2; exit 1; }
done
cargo build --release --locked --quiet --bin sluice --example kinesis_client
client="$CARGO_TARGET_DIR/release/examples/kinesis_client"

key_id=BENCHKEY00000001
secret=bench-secret-0123456789abcdef0123456789a
common='[data_streams]
throughput_limits = false
'
printf '%s[rtsp]\nlisten = "127.0.0.1:%s"\n' "$common" "$(free_port)" >"$work/off.toml"
cat >"$work/on.toml" <<TOML
$common
[rtsp]
listen = "127.0.0.1:$(free_port)"
[auth]
enabled = true
[[auth.keys]]
access_key_id = "$key_id"
secret = "$secret"
grants = [{ action = "admin", streams = "*" }]
TOML

SLUICE_CONFIG="$work/off.toml" start_sluice "$work/off"
off_url=$SLUICE_URL; pids+=("$SLUICE_PID")
SLUICE_CONFIG="$work/on.toml" start_sluice "$work/on"
on_url=$SLUICE_URL; pids+=("$SLUICE_PID")
bearer="Authorization: Bearer $key_id:$secret"

for side in off on; do
  url=off_url; [ "$side" = on ] && url=on_url
  h=(); [ "$side" = on ] && h=(-H "$bearer")
  curl -fs "${h[@]}" -X POST "${!url}/v1/streams" -H 'content-type: application/json' -d '{"name":"b"}' >/dev/null
  curl -fsS "${h[@]}" -T fixtures/h264.mp4 "${!url}/v1/streams/b/media?acks=end" -o /dev/null
done
seg=$(curl -fsS "$off_url/v1/streams/b/hls/index.m3u8" | grep '^seg/' | head -1)
path="/v1/streams/b/hls/$seg"
curl -fsS -H "$bearer" "$on_url$path" -o "$work/on.seg"
curl -fsS "$off_url$path" -o "$work/off.seg"
cmp -s "$work/on.seg" "$work/off.seg" || { echo "the two servers serve different bytes" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "$on_url$path")
[ "$code" = 401 ] || { echo "the server with auth answered $code without credentials" >&2; exit 1; }

rps() { # url [header]
  local out
  if [ $# -gt 1 ]; then out=$(wrk -t2 -c"$conns" -d"${secs}s" -H "$2" "$1"); else out=$(wrk -t2 -c"$conns" -d"${secs}s" "$1"); fi
  if grep -q "Non-2xx" <<<"$out"; then echo "errors answered: $out" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
wrk -t1 -c4 -d2s "$off_url$path" >/dev/null
wrk -t1 -c4 -d2s -H "$bearer" "$on_url$path" >/dev/null
token=$(curl -fsS -H "$bearer" -X POST "$on_url/v1/streams/b/playback-sessions" \
  -H 'content-type: application/json' -d '{"expiresInSeconds":3600}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
curl -fsS "$on_url$path?token=$token" -o "$work/tok.seg"
cmp -s "$work/tok.seg" "$work/off.seg" || { echo "the session URL serves different bytes" >&2; exit 1; }
seg_off=(); seg_on=(); seg_tok=()
for round in 1 2; do
  seg_off+=("$(rps "$off_url$path")")
  seg_on+=("$(rps "$on_url$path" "$bearer")")
  seg_tok+=("$(rps "$on_url$path?token=$token")")
done

kin() { # url, then env
  "$client" --endpoint "$1" --target "$2" --secs "$secs" --sizes 100 --shards 1 --writers 8 \
    --max-records 2000000 | grep '^RESULT'
}
kin_off=$(AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test kin "$off_url" off)
kin_on=$(AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$secret kin "$on_url" on)

python3 - "${seg_off[*]}" "${seg_on[*]}" "$kin_off" "$kin_on" "$(du -b "$work/on.seg" | cut -f1)" "${seg_tok[*]}" <<'PY'
import sys
off = [float(x) for x in sys.argv[1].split()]
on = [float(x) for x in sys.argv[2].split()]
def kin(text):
    r = {}
    for line in text.splitlines():
        f = line.split("\t")
        r[f[2]] = int(f[5]) / float(f[7])
    return r
ko, kn = kin(sys.argv[3]), kin(sys.argv[4])
mo, mn = sum(off) / len(off), sum(on) / len(on)
print(f"| | auth off | auth on | on / off |")
print(f"|---|---|---|---|")
tok = [float(x) for x in sys.argv[6].split()]
mt = sum(tok) / len(tok)
kb = int(sys.argv[5]) // 1000
print(f"| cached {kb} KB segment, Bearer key, requests/s (wrk, 2 rounds) | {' · '.join(f'{x:,.0f}' for x in off)} | {' · '.join(f'{x:,.0f}' for x in on)} | {mn / mo:.2f}× |")
print(f"| cached {kb} KB segment, playback-session token, requests/s | (as above) | {' · '.join(f'{x:,.0f}' for x in tok)} | {mt / mo:.2f}× |")
for op in ("put", "get"):
    name = {"put": "PutRecords", "get": "GetRecords"}[op]
    print(f"| {name} of 100 B records, records/s (AWS SDK, 8 writers) | {ko[op]:,.0f} | {kn[op]:,.0f} | {kn[op] / ko[op]:.2f}× |")
PY
