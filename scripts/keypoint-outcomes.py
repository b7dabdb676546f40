#!/usr/bin/env python3
"""Episode success by where the goal keypoint went, from keypoint_probe's
per-frame output on a policy's own rollouts and `vla eval` of the same
episodes.

The rollouts are the first steps of the evaluated episodes: same policy,
split, seeds and layout flags, no noise, `--expert-prob 0`, so the policy
drives every step as in `vla eval` (the collection ignores the terminate
token and stops at --max-steps). Each episode falls in one class:

  first wrong    keypoint 0 beyond 12 px of the goal object on the first frame
  drifts         right on the first frame, beyond 12 px on > 25 % of the rest
  right          neither

    vla collect --split train --episodes 200 --seed 100000 --dagger POLICY \\
        --expert-prob 0 --max-steps 40 [--same-colour-distractors] --out ROLLOUTS
    KEYPOINT_PROBE_FRAMES=1 keypoint_probe POLICY ROLLOUTS 1 | grep goal_err > frames.jsonl
    vla eval --policy POLICY --split train --episodes 200 --seed 100000 \\
        [--same-colour-distractors] --json > eval.json
    scripts/keypoint-outcomes.py frames.jsonl ROLLOUTS eval.json [SPLIT]

SPLIT picks the split of a metrics.json (`splits` -> SPLIT). The script
checks that the evaluation's failed seeds have the rollouts' instructions;
the layout flags (--same-colour-distractors) are not recorded by
`vla collect`, so matching them is up to the caller.
"""
import collections
import json
import os
import sys

WRONG_PX = 12.0
DRIFT_SHARE = 0.25


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__)
    frames_path, rollouts, eval_path = argv[:3]
    with open(eval_path) as f:
        report = json.load(f)
    if "splits" in report:
        if len(argv) != 4:
            sys.exit("a metrics.json needs SPLIT")
        report = report["splits"][argv[3]]
    failed = {f["seed"]: f["instruction"] for f in report["failures"]}
    seed_of, instruction_of = {}, {}
    with open(os.path.join(rollouts, "episodes.jsonl")) as f:
        for line in f:
            e = json.loads(line)
            seed_of[e["index"]] = e["seed"]
            instruction_of[e["seed"]] = e["outcome"]["task"]["instruction"]
    mismatched = [s for s, text in failed.items() if s in instruction_of and instruction_of[s] != text]
    if mismatched:
        sys.exit(f"the rollouts are not the evaluated episodes (seeds {mismatched[:5]} differ)")
    errors = collections.defaultdict(list)
    with open(frames_path) as f:
        for line in f:
            r = json.loads(line)
            errors[r["episode"]].append((r["step"], r["goal_err_px"]))
    episodes = collections.Counter()
    successes = collections.Counter()
    for episode, steps in errors.items():
        steps.sort()
        later = [e for _, e in steps[1:]]
        if steps[0][1] > WRONG_PX:
            kind = "first wrong"
        elif later and sum(e > WRONG_PX for e in later) / len(later) > DRIFT_SHARE:
            kind = "drifts"
        else:
            kind = "right"
        episodes[kind] += 1
        successes[kind] += seed_of[episode] not in failed
    total = sum(episodes.values())
    print(f"{'all':<14} {sum(successes.values()):>4} / {total:>4} succeeded")
    for kind in ("first wrong", "drifts", "right"):
        n = episodes[kind]
        rate = f"{100 * successes[kind] / n:5.1f}%" if n else "    -"
        print(f"{kind:<14} {successes[kind]:>4} / {n:>4} = {rate}")


if __name__ == "__main__":
    main(sys.argv[1:])
