#!/usr/bin/env python3
"""Failures in which the policy still holds the object when the episode
runs out, and what it does meanwhile (session 35).

    scripts/held-to-the-end.py METRICS.json [METRICS2.json ...]
    scripts/held-to-the-end.py --episode DIR [DIR ...]

With metrics files (`vla eval --metrics`): per split and task family, how
many failures ran to the step limit holding the object for at least 100
steps and not terminated by the policy, and their seeds.

With `--episode`: folders written by one-episode `vla collect --dagger
POLICY --expert-prob 0 --max-steps 150 --seed SEED` runs (the same
episode `vla eval` ran with that seed): over steps 100-149, how many
executed vertical moves went up or down by more than 1 cm, how many
moved sideways by more than 2 mm, and the mean of the expert's labels
there. Session 35 found the policy of session 34 alternating up and
down by a full step (2.8 cm) every step with no sideways move, while
the expert's labels ask for a rise and a sideways move.
"""
import json
import statistics
import sys
from collections import Counter, defaultdict


def metrics(paths):
    held, total, seeds = Counter(), Counter(), defaultdict(list)
    for path in paths:
        with open(path) as f:
            splits = json.load(f)["splits"]
        for split, s in splits.items():
            for x in s["failures"]:
                key = (split, x["goal"]["family"])
                total[key] += 1
                if x["held_steps"] >= 100 and not x["terminated"] and x["steps"] >= 150:
                    held[key] += 1
                    seeds[key].append(x["seed"])
    for key in sorted(total):
        print(f"{key[0]:5} {key[1]:13} held to the end {held[key]:3} of {total[key]:3} failures"
              + (f"  seeds {' '.join(map(str, seeds[key]))}" if seeds[key] else ""))
    h, t = sum(held.values()), sum(total.values())
    print(f"all: {h} of {t} failures held the object to the end")


def episode(path):
    with open(f"{path}/episodes.jsonl") as f:
        outcome = json.loads(f.readline())["outcome"]
    with open(f"{path}/episodes/000000/steps.jsonl") as f:
        rows = [json.loads(line) for line in f][100:150]
    if not rows:
        print(f"{path}: fewer than 101 steps")
        return
    ex = [r["executed"]["translation_m"] for r in rows]
    lab = [r["action"]["translation_m"] for r in rows]
    up = sum(e[2] > 0.01 for e in ex)
    down = sum(e[2] < -0.01 for e in ex)
    side = sum(max(abs(e[0]), abs(e[1])) > 0.002 for e in ex)
    mean = [statistics.mean(v[i] for v in lab) for i in range(3)]
    print(f"{path}: {outcome['reason']}; held {outcome['held_steps']} steps; steps 100-{99 + len(rows)}: "
          f"up {up}, down {down}, sideways {side}; expert's mean label (m) "
          f"x {mean[0]:+.3f} y {mean[1]:+.3f} z {mean[2]:+.3f}")


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 0 if argv else 2
    if argv[0] == "--episode":
        for p in argv[1:]:
            episode(p)
    else:
        metrics(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
