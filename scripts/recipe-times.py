#!/usr/bin/env python3
"""Per-stage wall time and training speed of a recipe run.

Reads the output of scripts/train-default-policy.sh (its `[N s] stage ...`
lines and `vla train`'s `trained steps ... samples/s` lines) and prints one
row per stage: minutes from the stage's start to the next stage's (or the
end's), the samples per second its training reported, and the running
total. A run that is still going (or was stopped) ends at its last stage
line; that stage shows as open.

    scripts/recipe-times.py LOG [LOG ...]

Several logs (a run resumed in a later session, say) are read in order,
each with its own clock; a stage started in one log and finished in the
next is not counted twice: the later log's stage replaces the earlier one.
"""
import re
import sys

STAGE = re.compile(r"^\[(\d+) s\] stage (\d+): (.*)$")
TRAINED = re.compile(r"^trained steps (\d+)\.\.(\d+) in .*, ([\d.]+) samples/s")
FINISHED = re.compile(r"^finished in (\d+) s$")


def read(path):
    """Stages of one log: (number, name, start_s, end_s or None, [samples/s])."""
    stages = []
    end_s = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            m = STAGE.match(line)
            if m:
                start = int(m.group(1))
                if stages:
                    stages[-1][3] = start
                stages.append([int(m.group(2)), m.group(3), start, None, []])
                continue
            m = TRAINED.match(line)
            if m and stages:
                stages[-1][4].append(float(m.group(3)))
                continue
            m = FINISHED.match(line)
            if m:
                end_s = int(m.group(1))
    if stages and end_s is not None:
        stages[-1][3] = end_s
    if stages:
        # Everything before the first stage line: the build and the
        # demonstration collections (skipped when their folders exist).
        stages.insert(0, [1, "build and collections", 0, stages[0][2], []])
    return stages


def main(paths):
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    by_number = {}
    for path in paths:
        for st in read(path):
            # A resumed run's "build and collections" finds the
            # collections done: keep the first log's.
            if st[0] == 1 and 1 in by_number:
                continue
            by_number[st[0]] = st
    total_min = 0.0
    print(f"{'stage':<34} {'min':>6} {'samples/s':>10} {'total min':>10}")
    for number in sorted(by_number):
        n, name, start, end, speeds = by_number[number]
        speed = ", ".join(f"{s:.1f}" for s in speeds) or "-"
        label = f"{n}: {name}"[:34]
        if end is None:
            print(f"{label:<34} {'open':>6} {speed:>10} {total_min:>10.1f}")
            continue
        minutes = (end - start) / 60.0
        total_min += minutes
        print(f"{label:<34} {minutes:>6.1f} {speed:>10} {total_min:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
