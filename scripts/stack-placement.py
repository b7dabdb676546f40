#!/usr/bin/env python3
"""Where a policy's stacking error comes from: the grasp, the aim, or the release.

Reads `vla collect --dagger POLICY --expert-prob 0 --max-steps 150` folders
(the policy's own episodes, every step recorded with the simulator's object,
target and TCP positions) and, for the `stack` episodes that carried the
object, splits the held object's horizontal offset from the target's centre
into three parts, world axes (x: towards the camera, y: sideways in the
image), metres reported in cm:

  grasp    object - TCP on the last carried step (where the fingers hold it)
  aim      TCP - target on that step (where the policy brought the hand)
  release  object - target at the episode's end minus the two above
           (what the object did after the fingers opened)

and how much of the grasp offset the aim undoes (the slope of aim on grasp:
-1 is full compensation, 0 none), then the mean of each part (x / y) by the
held object's shape: a bias that RMS figures hide. "Carried" means the executed gripper
command closed (>= 0.5) with the object 2 cm above where it started.

    scripts/stack-placement.py work/ro-a work/ro-b

policies/default/README.md, session 31, has the figures and the commands.
"""

import json
import math
import statistics
import sys
from pathlib import Path

LIFT_M = 0.02
STACK_GAP_M = 0.04  # centre-to-centre height of two stacked 4 cm objects
ON_TOP_TOL_M = 0.015


def rms_cm(values):
    return math.sqrt(sum(v * v for v in values) / len(values)) * 100


def slope(x, y):
    mx, my = statistics.mean(x), statistics.mean(y)
    var = sum((a - mx) ** 2 for a in x)
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / var if var > 0 else float("nan")


def episodes(folder):
    for line in open(folder / "episodes.jsonl"):
        episode = json.loads(line)
        if episode["outcome"]["task"]["goal"]["family"] != "stack":
            continue
        steps = [json.loads(s) for s in open(folder / episode["dir"] / "steps.jsonl")]
        yield episode, steps


def main(folders):
    rows = []
    for folder in map(Path, folders):
        for episode, steps in episodes(folder):
            z0 = steps[0]["object_xyz_m"][2]
            carried = [
                i
                for i, s in enumerate(steps)
                if s.get("executed", {}).get("gripper", 0.0) >= 0.5
                and s["object_xyz_m"][2] > z0 + LIFT_M
            ]
            if not carried:
                continue
            last = steps[carried[-1]]
            obj, target, tcp = last["object_xyz_m"], last["target_xyz_m"], last["tcp_xyz_m"]
            end_obj, end_target = steps[-1]["object_xyz_m"], steps[-1]["target_xyz_m"]
            grasp = [obj[k] - tcp[k] for k in (0, 1)]
            aim = [tcp[k] - target[k] for k in (0, 1)]
            final = [end_obj[k] - end_target[k] for k in (0, 1)]
            on_top = abs(end_obj[2] - end_target[2] - STACK_GAP_M) < ON_TOP_TOL_M
            rows.append(
                {
                    "success": episode["outcome"]["success"],
                    "grasp": grasp,
                    "aim": aim,
                    "release": [final[k] - grasp[k] - aim[k] for k in (0, 1)],
                    "at_release": [grasp[k] + aim[k] for k in (0, 1)],
                    "on_top": on_top,
                    "shape": episode["outcome"]["task"]["goal"]["object"]["shape"],
                }
            )
    if not rows:
        sys.exit("no stack episode with a carried object in these folders")
    on_top = [r for r in rows if r["on_top"]]
    print(
        f"stack episodes that carried the object: {len(rows)} "
        f"({sum(r['success'] for r in rows)} succeeded); ended on the target: {len(on_top)} "
        f"({sum(r['success'] for r in on_top)} succeeded)"
    )
    if not on_top:
        return
    print("on the target, RMS per world axis (x towards the camera, y sideways), cm:")
    for axis, name in ((0, "x"), (1, "y")):
        part = {k: [r[k][axis] for r in on_top] for k in ("grasp", "aim", "release", "at_release")}
        print(
            f"  {name}: grasp {rms_cm(part['grasp']):.2f}, aim {rms_cm(part['aim']):.2f}, "
            f"object - target at release {rms_cm(part['at_release']):.2f}, "
            f"release {rms_cm(part['release']):.2f}; slope of aim on grasp "
            f"{slope(part['grasp'], part['aim']):+.2f}"
        )
    print("on the target, by the held object's shape: mean (bias) per axis, cm:")
    for shape in sorted({r["shape"] for r in on_top}):
        group = [r for r in on_top if r["shape"] == shape]
        means = {
            k: [statistics.mean(r[k][axis] for r in group) * 100 for axis in (0, 1)]
            for k in ("grasp", "aim", "release", "at_release")
        }
        print(
            f"  {shape}: {len(group)} ({sum(r['success'] for r in group)} succeeded); "
            + ", ".join(
                f"{k.replace('_', ' ')} {means[k][0]:+.2f} / {means[k][1]:+.2f}"
                for k in ("grasp", "aim", "release", "at_release")
            )
        )
    within = [r for r in on_top if all(abs(v) < 0.01 for v in r["at_release"])]
    print(
        f"within 1 cm of the centre on both axes at release: {len(within)} of {len(on_top)} "
        f"({sum(r['success'] for r in within)} succeeded)"
    )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
