"""`vla sim-node` and `vla run` started with no arguments find each other:
a task on /vla/task makes the simulated arm move (its /joint_states
change), /vla/stop makes it hold still. Also checks the camera image and
CameraInfo the simulator publishes.

With --wrist (a controller whose policy reads the wrist camera) it also
checks the wrist camera's image and CameraInfo, and that the controller's
first policy step came after them.

Usage: python3 pair_test.py [--wrist]   (exits 0 when every check passes)
"""

import json
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Empty, String


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


class Observer(Node):
    def __init__(self):
        super().__init__("vla_test_observer")
        self.joints = []
        self.images = []
        self.infos = []
        self.wrist_images = []
        self.wrist_infos = []
        self.statuses = []
        self.create_subscription(JointState, "/joint_states", lambda m: self.joints.append((time.monotonic(), list(m.name), list(m.position))), 100)
        self.create_subscription(Image, "/camera/image_raw", lambda m: self.images.append(m), qos_profile_sensor_data)
        self.create_subscription(CameraInfo, "/camera/camera_info", lambda m: self.infos.append(m), qos_profile_sensor_data)
        self.create_subscription(Image, "/wrist_camera/image_raw", lambda m: self.wrist_images.append(m), qos_profile_sensor_data)
        self.create_subscription(CameraInfo, "/wrist_camera/camera_info", lambda m: self.wrist_infos.append(m), qos_profile_sensor_data)
        self.create_subscription(String, "/vla/status", lambda m: self.statuses.append(json.loads(m.data)), 100)
        self.task_pub = self.create_publisher(String, "/vla/task", 10)
        self.stop_pub = self.create_publisher(Empty, "/vla/stop", 10)

    def spin_for(self, secs):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            rclpy.spin_once(self, timeout_sec=0.005)

    def spin_until(self, cond, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return
            rclpy.spin_once(self, timeout_sec=0.005)
        last = self.statuses[-1] if self.statuses else None
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; last status {last}")


def spread(samples):
    """Largest change of any arm joint over the samples."""
    arm = [s[2][:7] for s in samples]
    return max(max(col) - min(col) for col in zip(*arm))


def main():
    rclpy.init()
    o = Observer()
    try:
        o.spin_until(lambda: o.statuses and o.statuses[-1]["state"] == "idle", 20.0, "the controller idle with fresh joint states")
        o.spin_until(lambda: o.images and o.infos and o.joints, 5.0, "camera image, info and joint states")
        img, info = o.images[-1], o.infos[-1]
        check(img.encoding == "rgb8" and len(img.data) == img.step * img.height, f"image {img.width}x{img.height} rgb8")
        check(info.width == img.width and info.k[0] > 0 and info.k[8] == 1.0, "CameraInfo matches the image, K set")
        if "--wrist" in sys.argv[1:]:
            o.spin_until(lambda: o.wrist_images and o.wrist_infos, 5.0, "wrist camera image and info")
            w, wi = o.wrist_images[-1], o.wrist_infos[-1]
            check(w.encoding == "rgb8" and (w.width, w.height) == (64, 64) and len(w.data) == w.step * w.height, "wrist image 64x64 rgb8")
            check(wi.width == 64 and wi.k[0] > 0 and w.header.frame_id != img.header.frame_id, "wrist CameraInfo set, its own frame id")
        check(o.joints[-1][1][:7] == [f"panda_joint{i}" for i in range(1, 8)], "joint states name the Panda's joints")
        t = time.monotonic()
        o.spin_for(0.5)
        still = [s for s in o.joints if s[0] >= t]
        check(spread(still) < 1e-9, "the arm is still before a task")

        o.spin_until(lambda: o.task_pub.get_subscription_count() > 0, 5.0, "the task subscriber")
        o.task_pub.publish(String(data="pick up the red cube"))
        o.spin_until(lambda: o.statuses[-1]["state"] in ("running", "done") and o.statuses[-1]["step"] >= 1, 5.0, "policy steps")
        t = time.monotonic()
        o.spin_for(1.5)
        moving = [s for s in o.joints if s[0] >= t]
        state = o.statuses[-1]["state"]
        if state == "running":
            check(spread(moving) > 1e-3, f"the simulated arm moves under the policy ({spread(moving):.4f} rad)")
        else:
            check(state == "done", f"the policy ended the task itself: {state}")

        o.spin_until(lambda: o.stop_pub.get_subscription_count() > 0, 5.0, "the stop subscriber")
        o.stop_pub.publish(Empty())
        o.spin_until(lambda: o.statuses[-1]["state"] == "stopped", 2.0, "stopped")
        o.spin_for(0.3)  # the last motion settles within a physics step or two
        t = time.monotonic()
        # Count joint states, not seconds: on a loaded machine the
        # simulator publishes fewer per second, and stillness is the check.
        o.spin_until(lambda: sum(s[0] >= t for s in o.joints) > 30, 10.0, "31 joint states after the stop")
        halted = [s for s in o.joints if s[0] >= t]
        check(len(halted) > 30 and spread(halted) < 1e-9, f"the simulated arm holds still after /vla/stop ({len(halted)} joint states)")
    finally:
        o.destroy_node()
        rclpy.shutdown()
    print("ALL CHECKS PASSED", flush=True)


if __name__ == "__main__":
    main()
