#!/usr/bin/env python3
"""Why a policy's episodes failed, from `vla eval --json` output.

    vla eval --policy default --split train --episodes 200 --seed 100000 --json > EVAL.json
    scripts/failure-breakdown.py EVAL.json [EVAL2.json ...]

Per file: the failures by task family, split into "never grasped" (the
goal object was never in the hand: `held_steps` 0) and "grasped" (held,
then misplaced, dropped or not lifted far enough), and how many of them the
policy ended itself (`terminated`) rather than running out of steps.
"""
import collections
import json
import sys


def main(paths):
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        by = collections.Counter()
        terminated = 0
        for x in d["failures"]:
            family = x["goal"]["family"]
            by[(family, "grasped" if x["held_steps"] > 0 else "never")] += 1
            terminated += bool(x["terminated"])
        print(f"{path}: {d['successes']}/{d['episodes']} succeeded, {len(d['failures'])} failed, {terminated} of them terminated by the policy")
        for family in sorted({f for f, _ in by}):
            print(f"  {family:<13} never grasped {by[(family, 'never')]:>3}   grasped {by[(family, 'grasped')]:>3}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
