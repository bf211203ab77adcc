#!/usr/bin/env bash
# LL-HLS blocking reload latency: how fast a blocked `live.m3u8?_HLS_msn=…&_HLS_part=…` request
# (and a blocked preload-hint part request) is answered once the awaited part is persisted.
#
#   scripts/bench-llhls.sh [seconds] [viewers]      # default 30 s, 20 viewers
#
# A real-time producer (ffmpeg, testsrc2 640x360 30 fps, GOP 2 s, `-frag_duration 0.2`, i.e.
# five 200 ms parts per second) pushes a chunked PUT to `…/media?acks=stream`; the script reads
# the PERSISTED acks as they stream back. `viewers` clients each keep a blocking playlist reload
# for the next part outstanding (the way hls.js in low-latency mode does), and as many keep the
# preload hint's part request outstanding.
#
# Two views of the same latency:
# - server: the `sluice_hls_blocking_wake_seconds` histogram from /metrics: from the moment the
#   blocked request is woken by the committed-end watch (which the writer advances when the part
#   is durable) to its response being ready to write;
# - client: for every blocked request, the time its response arrived minus the time the
#   producer's PERSISTED ack for the awaited fragment arrived (both are sent on the same wake;
#   negative when the playlist beat the ack).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh

secs="${1:-30}"
viewers="${2:-20}"
command -v ffmpeg >/dev/null || { echo "needs ffmpeg" >&2; exit 1; }
command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }

build_release
work=$(mktemp -d)
trap 'kill "${SLUICE_PID:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
start_sluice "$work/data"
curl -fs -X POST "$SLUICE_URL/v1/streams" -H 'content-type: application/json' \
  -d '{"name":"llbench"}' >/dev/null

python3 - "$SLUICE_URL" "$secs" "$viewers" <<'PY'
import http.client, json, re, socket, subprocess, sys, threading, time, urllib.parse

base, secs, viewers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
host = urllib.parse.urlparse(base).netloc
stream = "/v1/streams/llbench"

# The producer: ffmpeg's fMP4 on stdout, sent as a chunked PUT over a raw socket so the acks can be
# read as they arrive (curl delays reading the response while it uploads).
ffmpeg = subprocess.Popen(
    ["ffmpeg", "-nostdin", "-v", "error", "-re", "-f", "lavfi",
     "-i", "testsrc2=size=640x360:rate=30", "-t", str(secs + 4), "-c:v", "libx264",
     "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60", "-keyint_min", "60",
     "-sc_threshold", "0", "-bf", "0", "-f", "mp4", "-frag_duration", "200000",
     "-movflags", "frag_keyframe+empty_moov+default_base_moof", "pipe:1"],
    stdout=subprocess.PIPE)
hostname, port = host.split(":")
sock = socket.create_connection((hostname, int(port)))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
sock.sendall((f"PUT {stream}/media?acks=stream HTTP/1.1\r\nHost: {host}\r\n"
              "Content-Type: video/mp4\r\nTransfer-Encoding: chunked\r\n\r\n").encode())

def upload():
    while True:
        chunk = ffmpeg.stdout.read1(65536)
        if not chunk:
            break
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    sock.sendall(b"0\r\n\r\n")

acks = {}           # fragment number -> monotonic time its PERSISTED ack arrived
acks_cv = threading.Condition()
stop = time.monotonic() + secs + 2

def read_acks():
    f = sock.makefile("rb", buffering=0)
    while f.readline() not in (b"\r\n", b""):   # status line and headers
        pass
    pending = b""
    while True:
        size = f.readline()
        if not size:
            return
        n = int(size.strip() or b"0", 16)
        if n == 0:
            return
        data = b""
        while len(data) < n + 2:
            more = f.read(n + 2 - len(data))
            if not more:
                return
            data += more
        now = time.monotonic()
        pending += data[:n]
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            try:
                a = json.loads(line)
            except ValueError:
                continue
            if a.get("EventType") == "PERSISTED":
                with acks_cv:
                    acks[int(a["FragmentNumber"])] = now
                    acks_cv.notify_all()
            elif a.get("EventType") == "ERROR":
                print("producer error:", a, file=sys.stderr)

threading.Thread(target=upload, daemon=True).start()
threading.Thread(target=read_acks, daemon=True).start()

results = {"playlist": [], "part": []}   # (response time - ack time) in seconds
errors = []
lock = threading.Lock()

def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()

def hint_of(text):
    m = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', text)
    return m.group(1) if m else None

def next_request(text):
    """(_HLS_msn, _HLS_part) of the part after the last one listed, and its fragment number."""
    hint = hint_of(text)
    if hint is None:
        return None
    n = int(hint.rsplit("/", 1)[1].split(".")[0])
    msn = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))
    # Count segments (EXTINF) and the parts after the last EXTINF.
    lines = text.splitlines()
    segs = sum(1 for l in lines if l.startswith("#EXTINF"))
    tail = 0
    for l in lines:
        if l.startswith("#EXTINF"):
            tail = 0
        elif l.startswith("#EXT-X-PART:"):
            tail += 1
    return msn + segs, tail, n

def record(kind, n, t):
    with acks_cv:
        acks_cv.wait_for(lambda: n in acks, timeout=5)
        a = acks.get(n)
    if a is not None:
        with lock:
            results[kind].append(t - a)

def playlist_viewer():
    conn = http.client.HTTPConnection(host, timeout=30)
    text = None
    while time.monotonic() < stop:
        if text is None:
            status, body = get(conn, f"{stream}/hls/live.m3u8")
            text = body.decode()
            if hint_of(text) is None:
                text = None
                time.sleep(0.05)
                continue
        msn, part, n = next_request(text)
        status, body = get(conn, f"{stream}/hls/live.m3u8?_HLS_msn={msn}&_HLS_part={part}")
        t = time.monotonic()
        if status != 200:
            with lock:
                errors.append((status, body[:200]))
            text = None
            continue
        text = body.decode()
        if f"/{n}.m4s\"" in text and time.monotonic() > stop - secs:
            record("playlist", n, t)
        if hint_of(text) is None:
            text = None

def part_viewer():
    conn = http.client.HTTPConnection(host, timeout=30)
    while time.monotonic() < stop:
        status, body = get(conn, f"{stream}/hls/live.m3u8")
        hint = hint_of(body.decode())
        if hint is None:
            time.sleep(0.05)
            continue
        n = int(hint.rsplit("/", 1)[1].split(".")[0])
        with acks_cv:
            already = n in acks
        status, body = get(conn, f"{stream}/hls/{hint}")
        t = time.monotonic()
        if status != 200:
            with lock:
                errors.append((status, body[:200]))
        elif not already:
            record("part", n, t)

threads = [threading.Thread(target=playlist_viewer) for _ in range(viewers)]
threads += [threading.Thread(target=part_viewer) for _ in range(viewers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ffmpeg.kill()
sock.close()

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")

print(f"{len(acks)} parts persisted, {viewers} playlist + {viewers} part viewers, {secs} s")
for kind, xs in results.items():
    ms = [x * 1000 for x in xs]
    print(f"client {kind:8}: n={len(ms):5}  response - PERSISTED ack  p50 {pct(ms, 50):7.3f} ms"
          f"  p99 {pct(ms, 99):7.3f} ms  max {max(ms, default=float('nan')):7.3f} ms")
if errors:
    print(f"{len(errors)} non-200 answers, first: {errors[0]}")

# Server histogram: p50/p99 as the upper bound of the bucket holding that rank.
status, body = get(http.client.HTTPConnection(host, timeout=10), "/metrics")
buckets = {}
for line in body.decode().splitlines():
    m = re.match(r'sluice_hls_blocking_wake_seconds_bucket\{(.*)\} (\d+)$', line)
    if m:
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        buckets.setdefault(labels["kind"], []).append((le, int(m.group(2))))
for kind, bs in sorted(buckets.items()):
    total = bs[-1][1]
    def q(p):
        for le, c in bs:
            if c >= p * total:
                return le * 1000
        return float("inf")
    print(f"server {kind:8}: n={total:5}  wake -> response  p50 <= {q(0.5):.3f} ms  "
          f"p99 <= {q(0.99):.3f} ms")
PY
