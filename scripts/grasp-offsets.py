#!/usr/bin/env python3
"""How far from the object a policy closes its gripper, and whether it holds.

    vla collect --dagger POLICY --expert-prob 0 --max-steps 80 --episodes 120 --seed 100000 --out DIR
    scripts/grasp-offsets.py DIR

For every rollout of a grasping task (not push), the first step at which
the policy's executed gripper command closes (>= 0.5 after < 0.5): the
hand's horizontal distance from the goal object (TCP minus object centre,
world frame) and its height above the object's centre, then whether the
object is held at any of that step and the next 9. Prints the counts per
1-cm bucket of distance.
"""
import json
import math
import os
import sys

BUCKETS = ["< 1 cm", "1-2 cm", "2-3 cm", "3-4 cm", ">= 4 cm"]


def first_close(steps):
    prev = 0.0
    for i, s in enumerate(steps):
        g = s["executed"]["gripper"]
        if g >= 0.5 and prev < 0.5:
            return i
        prev = g
    return None


def main(root):
    closes = [0] * len(BUCKETS)
    held = [0] * len(BUCKETS)
    heights_cm = []
    with open(os.path.join(root, "episodes.jsonl")) as f:
        episodes = [json.loads(line) for line in f if line.strip()]
    for ep in episodes:
        if ep["outcome"]["task"]["goal"]["family"] == "push":
            continue
        with open(os.path.join(root, ep["dir"], "steps.jsonl")) as f:
            steps = [json.loads(line) for line in f if line.strip()]
        i = first_close(steps)
        if i is None or steps[i].get("object_xyz_m") is None:
            continue
        t, o = steps[i]["tcp_xyz_m"], steps[i]["object_xyz_m"]
        dist_cm = 100 * math.hypot(t[0] - o[0], t[1] - o[1])
        heights_cm.append(100 * (t[2] - o[2]))
        k = min(int(dist_cm), len(BUCKETS) - 1)
        closes[k] += 1
        held[k] += any(s["holding"] for s in steps[i : i + 10])
    print("| distance at the first close | " + " | ".join(BUCKETS) + " |")
    print("| --- |" + " --- |" * len(BUCKETS))
    print("| closes | " + " | ".join(map(str, closes)) + " |")
    print("| held | " + " | ".join(map(str, held)) + " |")
    if heights_cm:
        heights_cm.sort()
        print(
            f"height of the TCP above the object's centre at those closes: median "
            f"{heights_cm[len(heights_cm) // 2]:.1f} cm, range {heights_cm[0]:.1f} to {heights_cm[-1]:.1f} cm"
        )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
