#!/usr/bin/env python3
"""Goal-keypoint error against episode outcome.

Joins keypoint_probe's per-frame lines (KEYPOINT_PROBE_FRAMES=1: episode,
step, goal_err_px, goal_expected_err_px) with the episodes' outcomes in a
`vla collect` folder's episodes.jsonl (e.g. the policy's own rollouts,
`vla collect --dagger POLICY --expert-prob 0 --max-steps 150`) and prints
the success rate of episodes whose goal keypoint (the expected position
the network reads) never / sometimes strays beyond a threshold, and per
task family the median per-episode error of successes and failures.

    KEYPOINT_PROBE_FRAMES=1 keypoint_probe POLICY DIR 2 | grep '"episode"' > frames.jsonl
    scripts/keypoint-outcomes.py frames.jsonl DIR/episodes.jsonl
"""
import collections
import json
import statistics
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    frames = [json.loads(line) for line in open(sys.argv[1])]
    episodes = [json.loads(line) for line in open(sys.argv[2])]
    by_episode = collections.defaultdict(list)
    for f in frames:
        by_episode[f["episode"]].append(f["goal_expected_err_px"])
    rows = []  # (success, max error, share beyond 6 px, median error, family)
    for i, e in enumerate(episodes):
        errs = by_episode.get(i)
        if not errs:
            continue
        outcome = e["outcome"]
        rows.append((
            outcome["success"],
            max(errs),
            sum(x > 6 for x in errs) / len(errs),
            statistics.median(errs),
            outcome["task"]["goal"]["family"],
        ))

    def rate(sel):
        sel = list(sel)
        return f"{sum(r[0] for r in sel)}/{len(sel)}"

    print("episodes", len(rows), "succeeded", rate(rows))
    for t in (3, 6, 12):
        print(f"goal keypoint never beyond {t} px: {rate(r for r in rows if r[1] <= t)} succeeded;"
              f" beyond at least once: {rate(r for r in rows if r[1] > t)}")
    for lo, hi in ((1e-9, 0.1), (0.1, 0.3), (0.3, 1.01)):
        print(f"share of frames beyond 6 px in ({lo:g}, {hi:g}): {rate(r for r in rows if lo <= r[2] < hi)}")
    families = collections.defaultdict(list)
    for r in rows:
        families[r[4]].append(r)

    def med(values):
        values = list(values)
        return round(statistics.median(values), 2) if values else None

    for name, fam in sorted(families.items()):
        print(f"{name}: {rate(fam)} succeeded; median per-episode error (px)"
              f" successes {med(r[3] for r in fam if r[0])}, failures {med(r[3] for r in fam if not r[0])}")


if __name__ == "__main__":
    main()
