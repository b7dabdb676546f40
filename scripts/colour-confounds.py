#!/usr/bin/env python3
"""Success with and without a colour confound, from `vla eval --json` output
(or a metrics.json) and the episodes' layouts.

A layout is "confounded" when another object shares a colour with an object
the task names ("the red cube" beside a red cylinder, or "put the red
sphere near the red cube"), so that the policy must tell them apart by
shape.

    cargo run --release -p vla-sim --example layouts -- train 100000 200 > layouts.jsonl
    vla eval --split train --seed 100000 --episodes 200 --json > eval.json
    scripts/colour-confounds.py eval.json layouts.jsonl [SPLIT]

SPLIT picks the split of a metrics.json (`splits` → SPLIT).
"""
import collections
import json
import sys


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    with open(argv[0]) as f:
        report = json.load(f)
    if "splits" in report:
        if len(argv) != 3:
            sys.exit("a metrics.json needs SPLIT")
        report = report["splits"][argv[2]]
    layouts = {}
    with open(argv[1]) as f:
        for line in f:
            d = json.loads(line)
            layouts[d["seed"]] = d
    first = report["seed"]
    seeds = range(first, first + report["episodes"])
    missing = [s for s in seeds if s not in layouts]
    if missing:
        sys.exit(f"no layout for seeds {missing[:5]}...: run the example with the eval's split, seed and count")
    failed = {f["seed"] for f in report["failures"]}
    for f in report["failures"]:
        if layouts[f["seed"]]["instruction"] != f["instruction"]:
            sys.exit(f"seed {f['seed']}: the layouts are of another split or suite")
    rows = collections.defaultdict(lambda: [0, 0])
    for seed in seeds:
        d = layouts[seed]
        goal = d["goal"]
        named = [goal["object"]] + ([goal["target"]] if goal.get("target") else [])
        key = lambda o: (o["color"], o["shape"])
        confound = any(
            o["color"] == n["color"] and key(o) != key(n) for n in named for o in d["objects"]
        )
        family = next(iter(goal)) if "family" not in goal else goal["family"]
        for row in ("all", "confounded" if confound else "unconfounded",
                    f"{family}, {'confounded' if confound else 'unconfounded'}",
                    f"{len(d['objects'])} objects"):
            rows[row][0] += 1
            rows[row][1] += seed not in failed
    width = max(len(r) for r in rows)
    for row in sorted(rows, key=lambda r: (r != "all", r)):
        n, ok = rows[row]
        print(f"{row:{width}s} {ok:4d} / {n:4d} = {ok / n:5.1%}")


if __name__ == "__main__":
    main(sys.argv[1:])
