#!/usr/bin/env bash
# Reproduces policies/default from scratch: scripted-expert demonstrations,
# behaviour cloning (the session-3 base network), one round of DAgger data
# from it, a warm-started run with the TCP keypoint and the relation token,
# then `vla eval` on both splits into metrics.json.
#
#   scripts/train-default-policy.sh [OUT_DIR]     (default: policies/default)
#
# About 75 minutes on a 2-core machine with nothing else running: collect
# 1.5 min, base 3 400 steps ~40 min, DAgger 2 × ~1.5 min in parallel,
# final 1 800 steps ~21 min, eval 2 × ~2.7 min. Work files go to
# $VLA_WORK_DIR (default: work/, ignored by git). See policies/default/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-policies/default}
work=${VLA_WORK_DIR:-work}
mkdir -p "$work"

# One candle thread: on 2 cores its spinning thread pool made training 2-3x
# slower than one thread. Keep freed memory in the process: glibc otherwise
# returns every large tensor buffer to the kernel and page-faults it back in.
export CANDLE_NUM_THREADS=1 RAYON_NUM_THREADS=1
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/vla/target}

cargo build --locked --release --bin vla
vla="$CARGO_TARGET_DIR/release/vla"

# 1. 2 400 noisy expert demonstrations (frames, joint states, object and TCP pixels).
demos="$work/demos2400"
if [ ! -f "$demos/dataset.json" ]; then
  "$vla" collect --suite default --split train --episodes 2400 --noise --seed 0 --out "$demos"
fi

# 2. The base network (session 3): no relation token, one-hot keypoint
#    targets for the two objects; 2 400 steps, then continued to 3 400.
base="$work/base"
for steps in 2400 3400; do
  "$vla" train --data "$demos" --out "$base" --steps "$steps" --val-every 800 --batch 64 --seed 0 \
    --shift-px 4 --no-relation-token --keypoint-targets 2 --keypoint-one-hot
done

# 3. DAgger: the base network acts (median decoding), the expert executes
#    30 % of the steps and labels every step; 600 episodes kept.
for seed in 200000 300000; do
  [ -f "$work/dagger-$seed/dataset.json" ] ||
    "$vla" collect --dagger "$base" --decoding median --expert-prob 0.3 --episodes 300 \
      --seed "$seed" --out "$work/dagger-$seed" &
done
wait

# 4. Warm start from the base: relation token (new), bilinear keypoint
#    targets for object, target and TCP; demonstrations + DAgger data.
"$vla" train --data "$demos" --data "$work/dagger-200000" --data "$work/dagger-300000" \
  --out "$out" --init-from "$base" --lr 5e-4 --steps 1800 --val-every 600 --batch 64 --seed 0 \
  --shift-px 4

# 5. Success on both splits, 200 episodes each (one after the other: both
#    update metrics.json).
"$vla" eval --policy "$out" --split train --episodes 200 --seed 100000 --metrics "$out/metrics.json"
"$vla" eval --policy "$out" --split eval --episodes 200 --seed 0 --metrics "$out/metrics.json"
