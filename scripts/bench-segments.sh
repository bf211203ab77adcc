#!/usr/bin/env bash
# HLS segment serving, side by side with nginx on the same bytes: a stream of ≈1 MB segments is
# pushed into Sluice, its segments are also written as static files for nginx, and wrk requests
# them (cycling over all segments) from both with the same concurrency. Reports requests/s, MB/s
# and the Sluice/nginx ratio. Usage: scripts/bench-segments.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh
secs="${1:-10}"
conns="${2:-64}"
work=$(mktemp -d)
nginx_pid=
cleanup() {
  [ -n "${SLUICE_PID:-}" ] && kill "$SLUICE_PID" 2>/dev/null
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
for tool in wrk nginx ffmpeg; do
  command -v "$tool" >/dev/null || { echo "$tool is required: run scripts/setup.sh bench" >&2; exit 1; }
done
build_release

# 30 one-second GOPs at 8 Mbit/s: ≈1 MB per fragment = per segment.
ffmpeg -nostdin -y -v error -f lavfi -i testsrc2=size=1920x1080:rate=30 -t 30 -c:v libx264 \
  -preset ultrafast -b:v 8M -maxrate 8M -bufsize 8M -g 30 -keyint_min 30 -sc_threshold 0 -bf 0 \
  -movflags frag_keyframe+empty_moov+default_base_moof "$work/in.mp4"
start_sluice "$work/data"
curl -fs -X POST "$SLUICE_URL/v1/streams" -H 'content-type: application/json' -d '{"name":"b"}' >/dev/null
curl -fsS -T "$work/in.mp4" "$SLUICE_URL/v1/streams/b/media?acks=end" -o /dev/null
curl -fsS "$SLUICE_URL/v1/streams/b/hls/index.m3u8" -o "$work/index.m3u8"
grep '^seg/' "$work/index.m3u8" > "$work/segs.txt"

# The same bytes as static files for nginx.
mkdir -p "$work/www"
while read -r seg; do
  mkdir -p "$work/www/$(dirname "$seg")"
  curl -fsS "$SLUICE_URL/v1/streams/b/hls/$seg" -o "$work/www/$seg"
done < "$work/segs.txt"
avg=$(du -cb "$work"/www/seg/*/* | tail -1 | awk -v n="$(wc -l < "$work/segs.txt")" '{printf "%.0f", $1/n/1000}')

nginx_port=$(free_port)
cat > "$work/nginx.conf" <<NGINX
worker_processes auto;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types { video/iso.segment m4s; }
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/www;
  }
}
NGINX
# mktemp -d makes a 0700 directory; nginx's workers do not run as its owner.
chmod -R a+rX "$work"
nginx -c "$work/nginx.conf" -p "$work" &
nginx_pid=$!
sleep 0.5
# Both servers must serve the same bytes, or the comparison means nothing.
first_seg=$(head -1 "$work/segs.txt")
curl -fsS "http://127.0.0.1:$nginx_port/$first_seg" -o "$work/check-nginx"
curl -fsS "$SLUICE_URL/v1/streams/b/hls/$first_seg" -o "$work/check-sluice"
cmp -s "$work/check-nginx" "$work/check-sluice" || { echo "nginx and sluice serve different bytes" >&2; exit 1; }

# wrk cycles over every segment path.
{
  echo 'local paths = {}'
  while read -r seg; do echo "table.insert(paths, \"PREFIX$seg\")"; done < "$work/segs.txt"
  echo 'local i = 0'
  echo 'request = function() i = i % #paths + 1; return wrk.format("GET", paths[i]) end'
} > "$work/paths.lua.in"
sed "s|PREFIX|/v1/streams/b/hls/|" "$work/paths.lua.in" > "$work/sluice.lua"
sed "s|PREFIX|/|" "$work/paths.lua.in" > "$work/nginx.lua"

bench() {
  wrk -t2 -c"$conns" -d"${secs}s" -s "$2" "$1" | tee "$work/$3.out" >&2
  if grep -q "Non-2xx" "$work/$3.out"; then
    echo "$3 answered errors: the figures are not valid" >&2
    exit 1
  fi
}
echo "== warm-up" >&2
wrk -t1 -c4 -d2s -s "$work/sluice.lua" "$SLUICE_URL" >/dev/null
wrk -t1 -c4 -d2s -s "$work/nginx.lua" "http://127.0.0.1:$nginx_port" >/dev/null
echo "== sluice" >&2
bench "$SLUICE_URL" "$work/sluice.lua" sluice
echo "== nginx" >&2
bench "http://127.0.0.1:$nginx_port" "$work/nginx.lua" nginx

python3 - "$work/sluice.out" "$work/nginx.out" "$avg" "$conns" "$secs" <<'PY'
import re, sys
def parse(path):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", text)
    mult = {"B": 1e-6, "KB": 1e-3, "MB": 1, "GB": 1e3}[m.group(2)]
    return rps, float(m.group(1)) * mult
s, n = parse(sys.argv[1]), parse(sys.argv[2])
print(f"segments of {sys.argv[3]} KB, {sys.argv[4]} connections, {sys.argv[5]} s each, wrk -t2 on the same 2 cores")
print(f"  sluice: {s[0]:8.0f} req/s {s[1]:8.0f} MB/s")
print(f"  nginx : {n[0]:8.0f} req/s {n[1]:8.0f} MB/s")
print(f"  ratio sluice/nginx: {s[0]/n[0]:.2f}x requests/s")
PY
