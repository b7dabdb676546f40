#!/usr/bin/env python3
"""Why a policy's episodes failed, from `vla eval --json` output or a
metrics file written by `vla eval --metrics`.

    vla eval --policy default --split train --episodes 200 --seed 100000 --json > EVAL.json
    scripts/failure-breakdown.py EVAL.json [EVAL2.json ...]
    scripts/failure-breakdown.py policies/default/metrics.json

Per summary (every split of a metrics file): the failures by task family,
split into "never grasped" (the goal object was never in the hand:
`held_steps` 0) and "grasped" (held, then misplaced, dropped or not lifted
far enough), and how many of them the policy ended itself (`terminated`)
rather than running out of steps. Then the stacking failures by where the
object ended up, read off the success check's reason (sim/README.md,
"stack": centre within the central half of the target's top face, bottom
within 1.2 cm of its top):

- on top, off-centre: resting on the target's top (bottom within 1.2 cm)
  but its centre too far from the target's axis (the distances are listed);
- slid off beside: grasped, centre within 6 cm of the target's axis but
  not on its top (released over the edge, fell or slid off);
- elsewhere: grasped, further away;
- roles swapped: never grasped, and the target ended on top of the goal
  object (its bottom 3 cm or more below the target's top, centred within
  3 cm): the policy stacked the target on the object (session 43: most of
  the failed stacks of two objects of one colour);
- never grasped (otherwise).

And the push failures (sim/README.md, "push": at least 10 cm along the
named direction, under 5 cm sideways; the expert pushes 13.5 cm):

- untouched: moved under 1 cm either way;
- short: 1–10 cm along the direction, under 5 cm sideways;
- sideways: 5 cm or more sideways;
- other (backwards, for instance).

With several files the last lines add them up.
"""
import collections
import json
import re
import sys

PUSH_REASON = re.compile(r"moved ([-\d.]+) m \w+ and ([-\d.]+) m sideways")
STACK_REASON = re.compile(r"offset \(([-\d.]+), ([-\d.]+)\) m .* bottom ([-\d.]+) m")
Z_TOL_M = 0.012


def summaries(path):
    with open(path) as f:
        d = json.load(f)
    if "splits" in d:
        for split, s in sorted(d["splits"].items()):
            yield f"{path} [{split}]", s
    else:
        yield path, d


def stack_class(x):
    m = STACK_REASON.search(x["reason"])
    if m is None:
        return "never grasped", None
    dx, dy, dz = map(float, m.groups())
    r = (dx * dx + dy * dy) ** 0.5
    if x["held_steps"] == 0:
        if dz < -0.03 and abs(dx) < 0.03 and abs(dy) < 0.03:
            return "roles swapped", r
        return "never grasped", None
    if abs(dz) < Z_TOL_M:
        return "on top, off-centre", r
    if r < 0.06:
        return "slid off beside", r
    return "elsewhere", r


def push_class(x):
    m = PUSH_REASON.search(x["reason"])
    if m is None:
        return "other"
    along, side = map(float, m.groups())
    if abs(along) < 0.01 and side < 0.01:
        return "untouched"
    if side >= 0.05:
        return "sideways"
    if 0.01 <= along < 0.1005:  # the reason rounds to mm: "0.100" can be 0.0996
        return "short"
    return "other"


def main(paths):
    total = collections.Counter()
    total_push = collections.Counter()
    total_offsets = []
    n = 0
    for path in paths:
        for name, d in summaries(path):
            n += 1
            by = collections.Counter()
            stack = collections.Counter()
            push = collections.Counter()
            offsets = []
            terminated = 0
            for x in d["failures"]:
                family = x["goal"]["family"]
                by[(family, "grasped" if x["held_steps"] > 0 else "never")] += 1
                terminated += bool(x["terminated"])
                if family == "push":
                    push[push_class(x)] += 1
                if family == "stack":
                    cls, r = stack_class(x)
                    stack[cls] += 1
                    if cls == "on top, off-centre":
                        offsets.append(r)
            total += stack
            total_push += push
            total_offsets += offsets
            print(
                f"{name}: {d['successes']}/{d['episodes']} succeeded, {len(d['failures'])} failed, "
                f"{terminated} of them terminated by the policy"
            )
            for family in sorted({f for f, _ in by}):
                print(f"  {family:<13} never grasped {by[(family, 'never')]:>3}   grasped {by[(family, 'grasped')]:>3}")
            if push:
                print("  push failures: " + ", ".join(f"{k} {v}" for k, v in sorted(push.items())))
            if stack:
                print("  stack failures: " + ", ".join(f"{k} {v}" for k, v in sorted(stack.items())))
            if offsets:
                print("  off-centre distances, cm: " + " ".join(f"{100 * r:.1f}" for r in sorted(offsets)))
    if n > 1 and total_push:
        print("all: push failures: " + ", ".join(f"{k} {v}" for k, v in sorted(total_push.items())))
    if n > 1 and total:
        print("all: stack failures: " + ", ".join(f"{k} {v}" for k, v in sorted(total.items())))
        if total_offsets:
            s = sorted(total_offsets)
            print(
                f"all: off-centre distance median {100 * s[len(s) // 2]:.1f} cm, "
                f"{sum(r <= 0.02 for r in s)} of {len(s)} within 2 cm"
            )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
