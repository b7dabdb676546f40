#!/usr/bin/env bash
# Reproduces policies/default from scratch: scripted-expert demonstrations,
# behaviour cloning, then `vla eval` on both splits into metrics.json.
#
#   scripts/train-default-policy.sh [OUT_DIR]     (default: policies/default)
#
# About 52 minutes on a 2-core machine (collect 2 min, train ~44 min at
# ~59 samples/s, eval 2 × ~2.7 min). See policies/default/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-policies/default}
data=${VLA_DATA_DIR:-data/demos2400}

# One candle thread: on 2 cores its spinning thread pool made training 2-3x
# slower than one thread. Keep freed memory in the process: glibc otherwise
# returns every large tensor buffer to the kernel and page-faults it back in.
export CANDLE_NUM_THREADS=1 RAYON_NUM_THREADS=1
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/vla/target}

# The dev profile builds dependencies (candle, gemm) at opt-level 3, so it
# trains as fast as --release and shares the test build's cache.
cargo build --locked --bin vla
vla="$CARGO_TARGET_DIR/debug/vla"

if [ ! -f "$data/dataset.json" ]; then
  "$vla" collect --suite default --split train --episodes 2400 --noise --seed 0 --out "$data"
fi
# One run: 2400 steps of batch 64 with ±4 px shifts; the model also learns to
# predict where the named objects are relative to the gripper (auxiliary
# loss on positions `vla collect` records), see crates/vla-policy/README.md.
"$vla" train --data "$data" --out "$out" --steps 2400 --val-every 800 --batch 64 --seed 0 --shift-px 4
# Train split: seen phrasings and colour-shape combinations, layouts not in
# the demonstrations (seeds from 100000). Eval split: held-out phrasings,
# held-out combinations and layouts.
"$vla" eval --policy "$out" --split train --episodes 200 --seed 100000 --metrics "$out/metrics.json"
"$vla" eval --policy "$out" --split eval --episodes 200 --seed 0 --metrics "$out/metrics.json"
