#!/usr/bin/env bash
# Session 16's experiment (policies/default/README.md, session-16 section):
# one more DAgger-style round from policies/default, with or without
# same-colour decoy-approach demonstrations, then the evaluations and the
# goal-keypoint probe that the model card's table reports.
#
#   scripts/decoy-round.sh r7d|r7n|r7l [WORK_DIR] [STEPS]
#
# r7d trains on both demonstration sets of scripts/train-default-policy.sh
# (stage 1; collected here if WORK_DIR lacks them), 800 rollouts of
# policies/default and 800 `--decoy-approach 30 --same-colour-distractors`
# episodes at twice the sampling weight; r7n, the control, without the
# decoys; r7l, like r7d with decoys that take over at step 12
# (`--decoy-start 12`) instead of the first step. The policy goes to WORK_DIR/NAME, the evaluations to
# WORK_DIR/ev.NAME.*.json, the probe to WORK_DIR/probe.NAME.out.
# STEPS other than 1 200 (session 17: r7n at 2 400, the control of
# scripts/wrist-round.sh's 2 400-step run) names the run NAME-STEPS;
# VLA_SKIP_PROBE=1 leaves out the probe.
# ~25 min on the 2-core machine (training 11.5-15 min).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: scripts/decoy-round.sh r7d|r7n|r7l [WORK_DIR]}
case $name in
  r7d) decoy_start=0 decoy_dir=decoy ;;
  r7l) decoy_start=12 decoy_dir=decoy12 ;;
  r7n) ;;
  *) echo "NAME is r7d, r7n or r7l" >&2; exit 2 ;;
esac
w=${2:-${VLA_WORK_DIR:-work}}
steps=${3:-1200}
run=$name
[ "$steps" = 1200 ] || run=$name-$steps
mkdir -p "$w"
export CANDLE_NUM_THREADS=1 RAYON_NUM_THREADS=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/vla/target}
cargo build --locked --release --bin vla
[ "${VLA_SKIP_PROBE:-0}" = 1 ] || cargo build --locked --release -p vla-policy --example keypoint_probe
vla="$CARGO_TARGET_DIR/release/vla"
probe="$CARGO_TARGET_DIR/release/examples/keypoint_probe"
t() { echo "[$SECONDS s] $*"; }

# Collect what is missing, two at a time (`wait PID` returns each job's status).
collect() {
  local dir=$1
  shift
  [ -f "$dir/dataset.json" ] || "$vla" collect --suite default --split train "$@" --out "$dir"
}
both() { # both PID PID: wait for two jobs, failing if either failed
  wait "$1"
  wait "$2"
}
t collect
collect "$w/demos2400" --episodes 2400 --noise --seed 0 & a=$!
collect "$w/va2400" --episodes 2400 --noise --varied-approach --seed 300000 & b=$!
both "$a" "$b"
rollouts=(--episodes 400 --dagger policies/default --expert-prob 0.3 --max-steps 40)
collect "$w/round3-0" "${rollouts[@]}" --seed 620000 & a=$!
collect "$w/round3-400" "${rollouts[@]}" --seed 620400 & b=$!
both "$a" "$b"
data=(--data "$w/demos2400" --data "$w/va2400" --data "$w/round3-0" --data "$w/round3-400")
if [ "$name" != r7n ]; then
  decoys=(--episodes 400 --decoy-approach 30 --decoy-start "$decoy_start" --same-colour-distractors)
  collect "$w/$decoy_dir-0" "${decoys[@]}" --seed 800000 & a=$!
  collect "$w/$decoy_dir-400" "${decoys[@]}" --seed 800400 & b=$!
  both "$a" "$b"
  data+=(--data "$w/$decoy_dir-0" --data "$w/$decoy_dir-400")
  for weight in 1 1 1 1 2 2; do data+=(--data-weight "$weight"); done
fi

t train "$run"
# The recipe's stage-6 flags (scripts/train-default-policy.sh), 1 200 steps.
keep=red,green,blue,yellow,orange,purple,cube,cylinder,sphere,bowl,plate
keep+=,left,right,forward,back,away,towards,in,into,on,onto,next,beside,near,top
name=$run
p="$w/$name"
[ -f "$p/model.safetensors" ] || "$vla" train "${data[@]}" --out "$p" --init-from policies/default \
  --instruction-queries 4 --keypoint-hidden 64 --lr 3e-4 --batch 64 --seed 0 --workers 2 \
  --shift-px 1 --steps "$steps" --val-every 600 --text-dropout 0.3 --text-dropout-keep "$keep"

t evaluate "$name"
scripts/eval-round.sh "$vla" "$p" "$w" "$name"
if [ "${VLA_SKIP_PROBE:-0}" = 1 ]; then
  t done
  exit 0
fi
t probe "$name"
collect "$w/op-sc-$name" --episodes 200 --seed 100000 --dagger "$p" --expert-prob 0 --max-steps 40 \
  --same-colour-distractors
KEYPOINT_PROBE_FRAMES=1 "$probe" "$p" "$w/op-sc-$name" 1 >"$w/probe.$name.out"
grep goal_err "$w/probe.$name.out" >"$w/$name.frames.jsonl"
grep -v goal_err "$w/probe.$name.out"
python3 scripts/keypoint-outcomes.py "$w/$name.frames.jsonl" "$w/op-sc-$name" "$w/ev.$name.sc.train.json"
t done
