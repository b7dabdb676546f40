#!/usr/bin/env bash
# The six evaluations the model card reports for a candidate policy (train
# split seeds 100 000 and 200 000, eval split 0 and 300 000, and both with
# same-colour distractors; 200 episodes each, two at a time), written to
# WORK_DIR/ev.NAME.*.json, then their success counts.
#
#   scripts/eval-round.sh VLA_BINARY POLICY_DIR WORK_DIR NAME
#
# Used by scripts/decoy-round.sh and scripts/wrist-round.sh.
set -euo pipefail
vla=${1:?usage: scripts/eval-round.sh VLA_BINARY POLICY_DIR WORK_DIR NAME}
p=${2:?policy folder}
w=${3:?work folder}
name=${4:?run name}
both() { # both PID PID: wait for two jobs, failing if either failed
  wait "$1"
  wait "$2"
}
"$vla" eval --policy "$p" --split train --episodes 200 --seed 100000 --json >"$w/ev.$name.train.100000.json" & a=$!
"$vla" eval --policy "$p" --split eval --episodes 200 --seed 0 --json >"$w/ev.$name.eval.0.json" & b=$!
both "$a" "$b"
"$vla" eval --policy "$p" --split train --episodes 200 --seed 200000 --json >"$w/ev.$name.train.200000.json" & a=$!
"$vla" eval --policy "$p" --split eval --episodes 200 --seed 300000 --json >"$w/ev.$name.eval.300000.json" & b=$!
both "$a" "$b"
sc=(--episodes 200 --same-colour-distractors --json)
"$vla" eval --policy "$p" --split train --seed 100000 "${sc[@]}" >"$w/ev.$name.sc.train.json" & a=$!
"$vla" eval --policy "$p" --split eval --seed 0 "${sc[@]}" >"$w/ev.$name.sc.eval.json" & b=$!
both "$a" "$b"
python3 - "$w" "$name" <<'PY'
import json, sys
w, n = sys.argv[1:]
for s in ["train.100000", "train.200000", "eval.0", "eval.300000", "sc.train", "sc.eval"]:
    print(f"{s:14} {json.load(open(f'{w}/ev.{n}.{s}.json'))['successes']:4} / 200")
PY
