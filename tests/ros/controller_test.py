"""Scenarios against a running `vla run` (default topics, joint_trajectory
interface), played by an independent rclpy node (world.py).

Usage: python3 controller_test.py main | no-joint-state
Exits 0 when every check passes; prints the measured task → first command
round trip in `main`.
"""

import sys
import time

import rclpy

from world import ARM, FINGERS, World, all_equal, finite


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


def scenario_no_joint_state(w):
    # A task and frames, but no joint state: nothing may be commanded.
    w.send_joints = False
    w.spin_until(lambda: w.last_status() is not None, 15.0, "the first status")
    t = w.task("pick up the red cube")
    w.spin_for(1.0)
    check(not w.commands_since(t), "no joint command before a joint state arrived")
    check(w.last_status()["state"] == "waiting_for_joint_state", "status says it waits for a joint state")
    w.send_joints = True
    t = time.monotonic()
    w.spin_until(lambda: len(w.commands_since(t)) > 0, 3.0, "a command once joint states arrive")
    check(True, "commands start once joint states arrive")


def scenario_main(w):
    # Idle: inputs flowing, no task yet -> status idle, no commands.
    w.spin_until(lambda: w.last_status() is not None and w.last_status()["state"] == "idle", 15.0, "idle")
    w.spin_for(0.3)
    check(not w.commands, "nothing commanded before the first task")

    # Round trip: task published -> first joint command.
    t0 = w.task("pick up the red cube")
    w.spin_until(lambda: len(w.commands) > 0, 5.0, "the first joint command")
    t1 = w.commands[0][0]
    w.spin_until(lambda: any(s.get("policy_reset_secs") is not None for s in w.status_since(t0)), 2.0, "status with the reset time")
    reset = next(s["policy_reset_secs"] for s in w.status_since(t0) if s.get("policy_reset_secs") is not None)
    total_ms = (t1 - t0) * 1e3
    print(
        f"ROUNDTRIP task->first joint command: {total_ms:.1f} ms total, "
        f"{reset * 1e3:.1f} ms of it text encoding (policy reset), "
        f"{total_ms - reset * 1e3:.1f} ms without it",
        flush=True,
    )
    names = w.commands[0][1]
    check(names == ARM + [FINGERS[0]], f"commands name the arm and gripper joints: {names}")

    # Running: policy steps at ~10 Hz, commands at ~100 Hz, status running.
    t = time.monotonic()
    w.spin_for(1.0)
    n_tok = len(w.tokens_since(t))
    n_cmd = len(w.commands_since(t))
    check(6 <= n_tok <= 14, f"{n_tok} token steps in 1 s (policy rate 10 Hz)")
    check(60 <= n_cmd <= 130, f"{n_cmd} commands in 1 s (command rate 100 Hz)")
    check(all(len(k[1]) == 8 for k in w.tokens_since(t)), "8 tokens per step")
    s = w.last_status()
    check(s["state"] in ("running", "done"), f"status running: {s['state']}")
    check(s["task"] == "pick up the red cube", "status names the task")
    check(s["step"] >= 6 or s["state"] == "done", f"status counts steps: {s['step']}")

    # Keep the policy from terminating on its own for the rest: a fresh task
    # resets the episode (and shows that a new task replaces the current one).
    w.task("push the blue cube left")
    w.spin_until(
        lambda: w.last_status()["task"] == "push the blue cube left" and w.last_status()["state"] == "running",
        2.0,
        "the new task running",
    )
    check(True, "a new task replaces the current one")

    # Stale joint states: hold at the last measured positions, then resume.
    w.send_joints = False
    t = time.monotonic()
    w.wait_state("holding", timeout=2.0, reason="joint state is stale")
    w.spin_for(0.3)
    held = [c for c in w.commands_since(t + 0.35)]
    check(len(held) > 10 and all_equal(held), f"{len(held)} commands hold still while joint states are stale")
    check(len(w.tokens_since(t + 0.35)) == 0, "no policy steps while joint states are stale")
    w.send_joints = True
    w.wait_state("running", timeout=2.0)
    check(True, "resumes when joint states are fresh again")

    # Stale camera frames: hold, then resume.
    w.send_frames = False
    t = time.monotonic()
    w.wait_state("holding", timeout=2.0, reason="camera frame is stale")
    w.spin_for(0.3)
    held = [c for c in w.commands_since(t + 0.35)]
    check(len(held) > 10 and all_equal(held), f"{len(held)} commands hold still while frames are stale")
    w.send_frames = True
    w.wait_state("running", timeout=2.0)
    check(True, "resumes when frames are fresh again")

    # Malformed inputs: rejected with a reason, the node keeps running.
    def rejected(send, reason):
        before = w.last_status()["rejected_inputs"]
        send()
        w.spin_until(
            lambda: w.last_status()["rejected_inputs"] > before and reason in (w.last_status()["last_error"] or ""),
            3.0,
            f"rejection mentioning {reason!r}",
        )
        check(True, f"rejected: {w.last_status()['last_error']}")

    rejected(lambda: w.publish_image(64, 48, "yuv422", 2), "yuv422")
    rejected(lambda: w.publish_image(64, 48, "rgb8", 3, data_len=64 * 48 * 3 - 7), "bytes")
    rejected(lambda: w.publish_joint_state(ARM + ["elbow_cam_joint"], w.q + [0.0]), "unknown joint")
    rejected(lambda: w.publish_joint_state(ARM[1:], w.q[1:]), "is missing")
    rejected(lambda: w.publish_joint_state(ARM + FINGERS, w.q[:3] + [float("nan")] + w.q[4:] + w.fingers), "not finite")
    rejected(lambda: w.task_pub.publish(__import__("std_msgs.msg", fromlist=["String"]).String(data="x" * 5000)), "rejected task")
    check(w.last_status()["task"] == "push the blue cube left", "the current task survives a rejected one")
    t = time.monotonic()
    w.spin_for(0.5)
    check(len(w.commands_since(t)) > 30, "the node keeps commanding after malformed inputs")
    check(finite(w.commands), "every command is finite")

    # Stop: immediate halt, commands hold still, no policy steps.
    t = w.stop()
    w.wait_state("stopped", timeout=1.0)
    w.spin_for(0.5)
    after = w.commands_since(t + 0.05)
    check(len(after) > 20 and all_equal(after), f"{len(after)} commands hold still after /vla/stop")
    check(len(w.tokens_since(t + 0.05)) == 0, "no policy steps after /vla/stop")
    check(w.last_status()["task"] is None, "no task after stop")

    # A task after stop runs again; an empty task stops (hold, no task).
    w.task("pick up the red cube")
    w.spin_until(
        lambda: w.last_status()["task"] == "pick up the red cube" and w.last_status()["state"] == "running",
        2.0,
        "the task after stop running",
    )
    check(True, "a task after stop runs again")
    w.task("")
    w.wait_state("holding", timeout=1.0, reason="no task")
    check(True, "an empty task stops")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "main"
    rclpy.init()
    w = World()
    try:
        if mode == "main":
            scenario_main(w)
        elif mode == "no-joint-state":
            scenario_no_joint_state(w)
        else:
            raise SystemExit(f"unknown scenario {mode}")
    finally:
        w.destroy_node()
        rclpy.shutdown()
    print("ALL CHECKS PASSED", flush=True)


if __name__ == "__main__":
    main()
