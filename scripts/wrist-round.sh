#!/usr/bin/env bash
# Session 17's experiment (policies/default/README.md, session-17 section):
# one more DAgger-style round from policies/default with the wrist camera
# as a second image input (`vla train --wrist-px 64`), on the data of
# session 16's control round r7n (scripts/decoy-round.sh) collected again
# with `--wrist-camera`, then the evaluations the model card reports.
#
#   scripts/wrist-round.sh [WORK_DIR] [STEPS]
#
# The data are the same episodes as r7n's (same seeds: the wrist camera is
# rendered on the side and changes no trajectory), so r7n is the control.
# The policy goes to WORK_DIR/wr64 (WORK_DIR/wr64-STEPS with STEPS other
# than 1200), the evaluations to WORK_DIR/ev.NAME.*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
w=${1:-${VLA_WORK_DIR:-work}}
steps=${2:-1200}
name=wr64
[ "$steps" = 1200 ] || name=wr64-$steps
mkdir -p "$w"
export CANDLE_NUM_THREADS=1 RAYON_NUM_THREADS=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/vla/target}
cargo build --locked --release --bin vla
vla="$CARGO_TARGET_DIR/release/vla"
t() { echo "[$SECONDS s] $*"; }

collect() {
  local dir=$1
  shift
  [ -f "$dir/dataset.json" ] || "$vla" collect --suite default --split train --wrist-camera "$@" --out "$dir"
}
both() { # both PID PID: wait for two jobs, failing if either failed
  wait "$1"
  wait "$2"
}
t collect
collect "$w/demos2400w" --episodes 2400 --noise --seed 0 & a=$!
collect "$w/va2400w" --episodes 2400 --noise --varied-approach --seed 300000 & b=$!
both "$a" "$b"
rollouts=(--episodes 400 --dagger policies/default --expert-prob 0.3 --max-steps 40)
collect "$w/round3w-0" "${rollouts[@]}" --seed 620000 & a=$!
collect "$w/round3w-400" "${rollouts[@]}" --seed 620400 & b=$!
both "$a" "$b"
data=(--data "$w/demos2400w" --data "$w/va2400w" --data "$w/round3w-0" --data "$w/round3w-400")

t train "$name"
# The recipe's stage-6 flags (scripts/train-default-policy.sh), as r7n.
keep=red,green,blue,yellow,orange,purple,cube,cylinder,sphere,bowl,plate
keep+=,left,right,forward,back,away,towards,in,into,on,onto,next,beside,near,top
p="$w/$name"
[ -f "$p/model.safetensors" ] || "$vla" train "${data[@]}" --out "$p" --init-from policies/default \
  --instruction-queries 4 --keypoint-hidden 64 --lr 3e-4 --batch 64 --seed 0 --workers 2 \
  --shift-px 1 --steps "$steps" --val-every 600 --text-dropout 0.3 --text-dropout-keep "$keep" \
  --wrist-px 64

t evaluate "$name"
scripts/eval-round.sh "$vla" "$p" "$w" "$name"
t done
