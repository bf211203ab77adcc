#!/usr/bin/env bash
# Installs what Sluice needs to build, run, test and benchmark, from Debian's packages. Idempotent
# and quiet when everything is present. Usage: scripts/setup.sh [run|test|bench]
set -euo pipefail

what="${1:-test}"

# Debian packages. To build and run: pkg-config and GStreamer (Sluice decodes frames with it:
# avdec_h264/avdec_h265 from gstreamer1.0-libav, jpegenc/pngenc from plugins-good).
pkgs=(pkg-config ffmpeg
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav)
if [ "$what" = "test" ] || [ "$what" = "bench" ]; then
  # The real clients the tests check Sluice with: GStreamer's tools and an RTSP "camera"
  # (python3-gi with the RTSP server library, x264enc from plugins-ugly), and headless Chromium.
  pkgs+=(gstreamer1.0-tools gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-rtsp
    python3-gi gir1.2-gst-rtsp-server-1.0 chromium
    # The interop matrix's other players (tests/interop.rs): VLC (run as nobody) and mpv.
    vlc-bin vlc-plugin-base mpv
    # HTTPS and HTTP/2 checks of the TLS listener (tests/tls.rs).
    curl
    # The venv for the Python clients of the tests (boto3, cbor2: tests/requirements.txt).
    python3-venv)
fi
if [ "$what" = "bench" ]; then
  # The side-by-side peers and load generator of scripts/bench-*.sh.
  pkgs+=(nginx-light wrk)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Front-end packages from npm, pinned by package-lock.json: hls.js for the web player (embedded in
# the binary at build time), playwright-core for the browser tests (it drives Debian's chromium;
# it never downloads a browser).
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing nodejs npm"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
stamp="$root/node_modules/.sluice-$what.lock"
# A full install (test, bench) also serves `run`.
if ! cmp -s "$root/package-lock.json" "$stamp" \
  && ! { [ "$what" = "run" ] && cmp -s "$root/package-lock.json" "$root/node_modules/.sluice-test.lock"; }; then
  echo "setup: installing npm packages (package-lock.json)"
  npm_args=(ci --no-audit --no-fund --loglevel=error --prefix "$root")
  [ "$what" = "run" ] && npm_args+=(--omit=dev)
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm "${npm_args[@]}" >/dev/null
  cp "$root/package-lock.json" "$stamp"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is not installed; install the Rust toolchain (rustup) first" >&2
  exit 1
fi
if [ "$what" != "run" ] && ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install --locked --quiet cargo-nextest
fi

# Python clients of the tests (boto3, cbor2), pinned by tests/requirements.txt, in a venv in the
# clone (.venv, ignored by git), made once and refreshed when the pins change.
if [ "$what" = "test" ] || [ "$what" = "bench" ]; then
  venv="$root/.venv"
  if ! cmp -s "$root/tests/requirements.txt" "$venv/.sluice.lock"; then
    echo "setup: installing Python test clients (tests/requirements.txt)"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/tests/requirements.txt"
    cp "$root/tests/requirements.txt" "$venv/.sluice.lock"
  fi
fi
