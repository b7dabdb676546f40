#!/usr/bin/env bash
# How fast this machine trains, measured the way the recipe trains: a
# fixed 150-episode demonstration set (collected once into the work
# folder), then 120 steps of the recipe's base stage (batch 64, two
# data-parallel workers, one candle thread, the shipped lean shape) and
# the same for the 3-layer shape of the earlier policies. Prints each
# shape's samples/s (`vla train`'s own figure) and CPU seconds.
#
#   scripts/speed-probe.sh            (work files in $VLA_WORK_DIR, default work/)
#
# Why: end-to-end recipe times only compare between sessions with the
# machine's speed beside them (policies/default/README.md, sessions 28-30:
# the same commands ran 1.3-3x slower on some days). Run it before and
# after a long training run; with nothing else running it takes 1-4 min.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${VLA_WORK_DIR:-work}
export CANDLE_NUM_THREADS=1 RAYON_NUM_THREADS=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/vla/target}
cargo build --locked --release --bin vla >&2
vla="$CARGO_TARGET_DIR/release/vla"

demos="$work/probe-demos150"
if [ ! -f "$demos/dataset.json" ]; then
  "$vla" collect --suite default --split train --episodes 150 --noise --seed 0 --out "$demos" >&2
fi

# probe NAME SHAPE_FLAGS...: 120 base-stage steps into a fresh folder.
probe() {
  local name=$1 out="$work/probe-$1" line cpu
  shift
  rm -rf "$out"
  local start_cpu
  start_cpu=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
  line=$("$vla" train --data "$demos" --out "$out" --steps 120 --batch 64 --seed 0 --no-val \
    --shift-px 4 --no-relation-token --keypoint-targets 2 --keypoint-one-hot --workers 2 "$@" |
    grep '^trained steps')
  # CPU time of the finished child, from this shell's children counters.
  cpu=$(awk -v s="$start_cpu" -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15 + $16 + $17 - s) / hz}' /proc/$$/stat)
  rm -rf "$out"
  echo "$name: ${line##*, }, ${cpu} CPU s"
}
probe lean --encoder-layers 2 --mlp-ratio 2
probe 3-layer
