#!/usr/bin/env bash
# Reproduces policies/default from scratch: scripted-expert demonstrations,
# behaviour cloning (the session-3 base network), a warm-started run with
# the TCP keypoint, the relation token and the TCP-position input, then
# `vla eval` on both splits into metrics.json.
#
#   scripts/train-default-policy.sh [OUT_DIR]     (default: policies/default)
#
# About 70 minutes on a 2-core machine: collect 1.5 min, base 3 400 steps
# ~40 min at ~90 samples/s, final 1 800 steps ~21-24 min, eval 2 × ~2.7 min
# (plus the first release build). Work files go to
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

# 3. Warm start from the base: relation token and TCP-position input (new;
#    forward kinematics of the recorded joints through urdf/panda.urdf, which
#    is copied into the policy folder), bilinear keypoint targets for
#    object, target and TCP; same demonstrations, 1 800 steps.
#    (A fresh run: drop the log of the policy being replaced.)
[ -f "$out/train_state.json" ] || rm -f "$out/train_log.jsonl"
"$vla" train --data "$demos" --out "$out" --init-from "$base" --lr 5e-4 --steps 1800 \
  --val-every 600 --batch 64 --seed 0 --shift-px 4 --tcp-urdf urdf/panda.urdf
cp "$base/train_log.jsonl" "$out/base_train_log.jsonl"

# 4. Success on both splits, 200 episodes each (one after the other: both
#    update metrics.json).
"$vla" eval --policy "$out" --split train --episodes 200 --seed 100000 --metrics "$out/metrics.json"
"$vla" eval --policy "$out" --split eval --episodes 200 --seed 0 --metrics "$out/metrics.json"
