#!/usr/bin/env bash
# Session 19's r4 (policies/default/README.md, session-19 section): one more
# DAgger round from session 17's r7n-2400 with the same flags, then the six
# evaluations of scripts/eval-round.sh.
#
#   scripts/decoy-round.sh r7n WORK_DIR 2400   # first: WORK_DIR/r7n-2400 and the demonstrations
#   scripts/fourth-round.sh WORK_DIR
#
# The policy goes to WORK_DIR/r4, the evaluations to WORK_DIR/ev.r4.*.json.
# ~27 min on the 2-core machine (training 20.6 min).
set -euo pipefail
cd "$(dirname "$0")/.."
w=${1:?usage: scripts/fourth-round.sh WORK_DIR}
from="$w/r7n-2400"
[ -f "$from/model.safetensors" ] || {
  echo "$from is missing: run scripts/decoy-round.sh r7n $w 2400 first" >&2
  exit 2
}
export CANDLE_NUM_THREADS=1 RAYON_NUM_THREADS=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/vla/target}
cargo build --locked --release --bin vla
vla="$CARGO_TARGET_DIR/release/vla"
echo "[$SECONDS s] collect"
jobs_=()
for h in 0 400; do
  [ -f "$w/round4-$h/dataset.json" ] && continue
  "$vla" collect --suite default --split train --episodes 400 --seed $((630000 + h)) --dagger "$from" \
    --expert-prob 0.3 --max-steps 40 --out "$w/round4-$h" &
  jobs_+=($!)
done
for j in "${jobs_[@]}"; do wait "$j"; done
echo "[$SECONDS s] train"
# The recipe's round-2 flags (scripts/train-default-policy.sh), as r7n-2400.
keep=red,green,blue,yellow,orange,purple,cube,cylinder,sphere,bowl,plate
keep+=,left,right,forward,back,away,towards,in,into,on,onto,next,beside,near,top
[ -f "$w/r4/model.safetensors" ] || "$vla" train --data "$w/demos2400" --data "$w/va2400" \
  --data "$w/round4-0" --data "$w/round4-400" --out "$w/r4" --init-from "$from" \
  --instruction-queries 4 --keypoint-hidden 64 --lr 3e-4 --batch 64 --seed 0 --workers 2 \
  --shift-px 1 --steps 2400 --val-every 0 --text-dropout 0.3 --text-dropout-keep "$keep"
echo "[$SECONDS s] evaluate"
scripts/eval-round.sh "$vla" "$w/r4" "$w" r4
echo "[$SECONDS s] done"
