#!/usr/bin/env bash
# Records an episode with `vla sim --rrd`, opens it in the official rerun
# viewer (the same version as the rerun crate, from .local/venv, see
# scripts/setup-test-tools.sh) on a virtual X display with software
# rendering, and saves the README's screenshot docs/rerun-viewer.png.
#
# Needs (Debian/Ubuntu): xvfb, mesa-vulkan-drivers (lavapipe, the CPU Vulkan
# driver) and imagemagick:
#   apt-get install xvfb mesa-vulkan-drivers imagemagick
# Usage: scripts/screenshot-viewer.sh [OUTPUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/rerun-viewer.png}"

for tool in Xvfb convert; do
  if ! command -v "$tool" >/dev/null; then
    echo "error: $tool not found; install: apt-get install xvfb mesa-vulkan-drivers imagemagick" >&2
    exit 1
  fi
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vla/target}"
tools_bin="$(scripts/setup-test-tools.sh)"
cargo build --quiet --bin vla

work="$(mktemp -d)"
xvfb_pid=""
cleanup() {
  if [ -n "$xvfb_pid" ]; then kill "$xvfb_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== recording an episode" >&2
"$CARGO_TARGET_DIR/debug/vla" sim --task "put the red cube in the green bowl" \
  --episodes 2 --rrd "$work/episode.rrd" >&2

# A free display number.
display=90
while [ -e "/tmp/.X11-unix/X$display" ] || [ -e "/tmp/.X$display-lock" ]; do
  display=$((display + 1))
done
# The screen is larger than the viewer window (placed at 0,0) so that the
# pointer, which starts in the middle of the screen, hovers over nothing.
Xvfb ":$display" -screen 0 3400x2200x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
xvfb_pid=$!
for _ in $(seq 50); do
  [ -e "/tmp/.X11-unix/X$display" ] && break
  sleep 0.1
done

echo "== rendering in rerun $("$tools_bin/rerun" --version | head -n 1 | cut -d" " -f2)" >&2
mkdir -m 700 "$work/runtime" "$work/home"
# Vulkan on lavapipe (Mesa's CPU driver): the GL backend lacks R32Float
# render targets the viewer needs. Fresh XDG folders: no saved layout from
# an earlier session; the recording's blueprint (crates/vla-viz) applies.
# The viewer serves gRPC on localhost only. It writes the screenshot once
# the recording is loaded and drawn, then exits (with a non-zero status in
# 0.36.3, after the file is written, so the file is checked instead).
DISPLAY=":$display" WGPU_BACKEND=vulkan XDG_RUNTIME_DIR="$work/runtime" \
  XDG_DATA_HOME="$work/home" XDG_CONFIG_HOME="$work/home" XDG_CACHE_HOME="$work/home" \
  timeout 300 "$tools_bin/rerun" --bind 127.0.0.1 --window-size 1600x1000 \
  --screenshot-to "$work/raw.png" "$work/episode.rrd" >"$work/rerun.log" 2>&1 || true
if [ ! -s "$work/raw.png" ]; then
  echo "error: the viewer wrote no screenshot; its log:" >&2
  tail -n 30 "$work/rerun.log" >&2
  exit 1
fi
# A blank or loading screen is nearly uniform.
spread="$(convert "$work/raw.png" -colorspace Gray -format '%[fx:standard_deviation]' info:)"
if awk -v s="$spread" 'BEGIN { exit !(s < 0.05) }'; then
  echo "error: the screenshot looks blank (grey level spread $spread)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
# The viewer renders at twice the window size; halve it and use a palette
# to keep the PNG small.
convert "$work/raw.png" -resize 50% -colors 256 "PNG8:$out"
echo "wrote $out ($(du -k "$out" | cut -f1) KiB)" >&2
