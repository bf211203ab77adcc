# Shared by the bench-*.sh scripts: build the release binary, start and stop a Sluice server on a
# free loopback port, read a process's CPU time. Sourced, not run.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
target="$CARGO_TARGET_DIR"
sluice_bin="$target/release/sluice"

build_release() {
  cargo build --release --locked --quiet
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_sluice DATA_DIR → sets SLUICE_PID and SLUICE_URL. Without SLUICE_CONFIG, the RTSP
# listener takes a free port too, so a bench never collides with another Sluice on the machine.
start_sluice() {
  local port config="${SLUICE_CONFIG:-}"
  port=$(free_port)
  if [ -z "$config" ]; then
    config="$1.toml"
    printf '[rtsp]\nlisten = "127.0.0.1:%s"\n' "$(free_port)" >"$config"
  fi
  RUST_LOG=warn "$sluice_bin" serve --config "$config" --listen "127.0.0.1:$port" --data-dir "$1" 2>"$1.log" &
  SLUICE_PID=$!
  SLUICE_URL="http://127.0.0.1:$port"
  for _ in $(seq 100); do
    curl -fs "$SLUICE_URL/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "sluice did not start; log: $(cat "$1.log")" >&2
  return 1
}

# cpu_ticks PID → user+system clock ticks used so far
cpu_ticks() {
  awk '{print $14 + $15}' "/proc/$1/stat"
}

ticks_per_sec() {
  getconf CLK_TCK
}
