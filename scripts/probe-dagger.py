#!/usr/bin/env python3
"""Where a policy goes wrong, from its own rollouts labelled by the expert.

    vla collect --dagger POLICY --expert-prob 0 --episodes 30 --seed 500000 --out DIR
    scripts/probe-dagger.py DIR

Counts, over every step, how often the hand is closed with nothing in it
(`executed.gripper >= 0.5` and `holding` false), and over the steps without
the object in hand where the expert's label moves >= 1 cm along x or y, how
often the policy's executed move is ~0 (|d| < 2 mm) or has the expert's sign.
"""
import glob
import json
import os
import sys


def main(root):
    need = {0: [0, 0, 0], 1: [0, 0, 0]}  # axis -> [steps, policy ~0, right sign]
    closed_empty = total = 0
    for ep in sorted(glob.glob(os.path.join(root, "episodes", "*"))):
        with open(os.path.join(ep, "steps.jsonl")) as f:
            for line in f:
                s = json.loads(line)
                total += 1
                policy = s["executed"]["translation_m"]
                expert = s["action"]["translation_m"]
                if s["executed"]["gripper"] >= 0.5 and not s["holding"]:
                    closed_empty += 1
                if s["holding"]:
                    continue
                for axis in (0, 1):
                    if abs(expert[axis]) >= 0.01:
                        need[axis][0] += 1
                        if abs(policy[axis]) < 0.002:
                            need[axis][1] += 1
                        elif policy[axis] * expert[axis] > 0:
                            need[axis][2] += 1
    print(f"steps {total}; hand closed on nothing {closed_empty / max(total, 1):.0%}")
    for axis, name in ((0, "dx"), (1, "dy")):
        n, zero, right = need[axis]
        print(
            f"{name}: {n} steps need >= 1 cm; policy ~0 on {zero / max(n, 1):.0%}, "
            f"right sign on {right / max(n, 1):.0%}"
        )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
