#!/usr/bin/env bash
# Installs what Sluice needs to build, run, test and benchmark, from Debian's packages. Idempotent
# and quiet when everything is present. Usage: scripts/setup.sh [run|test|bench]
set -euo pipefail

what="${1:-test}"

# Debian packages: build (pkg-config), media tools the tests check output with (ffmpeg/ffprobe,
# GStreamer), and for benchmarks nginx and wrk.
pkgs=(pkg-config ffmpeg)
if [ "$what" = "test" ] || [ "$what" = "bench" ]; then
  pkgs+=(gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav)
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

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is not installed; install the Rust toolchain (rustup) first" >&2
  exit 1
fi
if [ "$what" != "run" ] && ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install --locked --quiet cargo-nextest
fi
