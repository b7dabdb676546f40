#!/usr/bin/env python3
"""Does the goal keypoint follow the word order of the instruction?

Session 43: in "stack the red cube on the red cylinder" only the order of
the two shape words tells the object from the target. This makes a copy of
a `vla collect` folder whose instructions name the two objects the other
way round, so that `keypoint_probe` can be run on the same frames under
both word orders:

    scripts/word-order-probe.py swap SRC DST
        DST gets SRC's dataset.json, a link to its episodes/ and an
        episodes.jsonl whose instructions have the goal object's and the
        target's distinguishing words exchanged: the shape words when the
        two share a colour, the colour words otherwise. Episodes without a
        target are left out.
    KEYPOINT_PROBE_FRAMES=1 keypoint_probe POLICY SRC 1 > A.jsonl
    KEYPOINT_PROBE_FRAMES=1 keypoint_probe POLICY DST 1 > B.jsonl
    scripts/word-order-probe.py compare A.jsonl B.jsonl

`compare` prints how many frames kept the goal keypoint within 1 px under
the swapped words (a network that ignores the order keeps nearly all) and,
on the first frames, how many are more than 12 px from the recorded goal
object under each order (the recorded pixels stay the original roles', so a
network that reads the order is wrong on nearly every swapped first frame).
(`keypoint_probe`: crates/vla-policy/examples/keypoint_probe.rs, the
release example binary.)
"""
import json
import os
import re
import shutil
import sys


def swap_words(text, a, b):
    pattern = re.compile(r"\b(%s|%s)\b" % (re.escape(a), re.escape(b)))
    return pattern.sub(lambda m: b if m.group(1) == a else a, text)


def swap(src, dst):
    os.makedirs(dst)
    shutil.copy(os.path.join(src, "dataset.json"), dst)
    os.symlink(os.path.abspath(os.path.join(src, "episodes")), os.path.join(dst, "episodes"))
    kept = 0
    with open(os.path.join(src, "episodes.jsonl")) as f, open(
        os.path.join(dst, "episodes.jsonl"), "w"
    ) as out:
        for line in f:
            e = json.loads(line)
            task = e["outcome"]["task"]
            goal = task["goal"]
            target = goal.get("target")
            if target is None:
                continue
            obj = goal["object"]
            key = "shape" if obj["color"] == target["color"] else "color"
            task["instruction"] = swap_words(task["instruction"], obj[key], target[key])
            out.write(json.dumps(e) + "\n")
            kept += 1
    print(f"{kept} episodes with the named words swapped in {dst}")


def frames(path):
    r = {}
    with open(path) as f:
        for line in f:
            if line.startswith('{"episode"'):
                d = json.loads(line)
                r[(d["episode"], d["step"])] = d["goal_err_px"]
    return r


def compare(a_path, b_path):
    a, b = frames(a_path), frames(b_path)
    keys = sorted(set(a) & set(b))
    if not keys:
        sys.exit("no frames in common: run keypoint_probe with KEYPOINT_PROBE_FRAMES=1")
    same = sum(abs(a[k] - b[k]) < 1.0 for k in keys)
    first = [k for k in keys if k[1] == 0]
    print(f"{len(keys)} frames: goal keypoint error within 1 px of each other in {same}")
    print(
        f"first frames: {sum(a[k] > 12 for k in first)} of {len(first)} beyond 12 px with the "
        f"original words, {sum(b[k] > 12 for k in first)} with them swapped"
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "swap":
        swap(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
