"""The outside world of `vla run`, played by an independent rclpy node.

It publishes camera frames, joint states (a perfect position-controlled
arm that moves to each joint command it receives), tasks and stops, and
records the controller's joint commands, status and action tokens. The
scenarios in controller_test.py use it; run them through tests/ros.rs.
"""

import json
import math
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Empty, Int32MultiArray, String
from trajectory_msgs.msg import JointTrajectory

ARM = [f"panda_joint{i}" for i in range(1, 8)]
FINGERS = ["panda_finger_joint1", "panda_finger_joint2"]
HOME = [0.0, -0.25, 0.0, -2.2, 0.0, 1.95, 0.785]
COMMAND_TOPIC = "/joint_trajectory_controller/joint_trajectory"


class World(Node):
    def __init__(self):
        super().__init__("vla_test_world")
        self.image_pub = self.create_publisher(Image, "/camera/image_raw", qos_profile_sensor_data)
        self.joints_pub = self.create_publisher(JointState, "/joint_states", 10)
        self.task_pub = self.create_publisher(String, "/vla/task", 10)
        self.stop_pub = self.create_publisher(Empty, "/vla/stop", 10)
        self.create_subscription(JointTrajectory, COMMAND_TOPIC, self.on_command, 100)
        self.create_subscription(String, "/vla/status", self.on_status, 100)
        self.create_subscription(Int32MultiArray, "/vla/action_tokens", self.on_tokens, 100)
        self.q = list(HOME)
        self.fingers = [0.04, 0.04]
        self.commands = []  # (monotonic time, names, positions)
        self.statuses = []  # (monotonic time, dict)
        self.tokens = []  # (monotonic time, ids)
        self.send_joints = True
        self.send_frames = True
        self.follow = True
        self.frame_count = 0
        self.create_timer(0.01, self.publish_joints)
        self.create_timer(1.0 / 15.0, self.publish_frame)

    # -- callbacks ---------------------------------------------------------
    def on_command(self, msg):
        if not msg.points:
            return
        pos = list(msg.points[-1].positions)
        self.commands.append((time.monotonic(), list(msg.joint_names), pos))
        if self.follow:
            for name, q in zip(msg.joint_names, pos):
                if name in ARM:
                    self.q[ARM.index(name)] = q
                elif name == FINGERS[0]:
                    self.fingers = [q, q]

    def on_status(self, msg):
        self.statuses.append((time.monotonic(), json.loads(msg.data)))

    def on_tokens(self, msg):
        self.tokens.append((time.monotonic(), list(msg.data)))

    def publish_joints(self):
        if self.send_joints:
            self.publish_joint_state(ARM + FINGERS, self.q + self.fingers)

    def publish_joint_state(self, names, positions):
        m = JointState()
        m.header.stamp = self.get_clock().now().to_msg()
        m.name = list(names)
        m.position = [float(p) for p in positions]
        self.joints_pub.publish(m)

    def publish_frame(self):
        if self.send_frames:
            self.publish_image(64, 48, "rgb8", 3)

    def publish_image(self, width, height, encoding, channels, data_len=None, step=None):
        self.frame_count += 1
        m = Image()
        m.header.stamp = self.get_clock().now().to_msg()
        m.header.frame_id = "camera"
        m.width = width
        m.height = height
        m.encoding = encoding
        m.step = step if step is not None else width * channels
        n = data_len if data_len is not None else m.step * height
        shift = self.frame_count % 7
        m.data = bytes(((i * 31 + shift) % 251) for i in range(n))
        self.image_pub.publish(m)

    # -- helpers -----------------------------------------------------------
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
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; last status: {self.last_status()}")

    def last_status(self):
        return self.statuses[-1][1] if self.statuses else None

    def status_since(self, t):
        return [s for (ts, s) in self.statuses if ts >= t]

    def commands_since(self, t):
        return [c for c in self.commands if c[0] >= t]

    def tokens_since(self, t):
        return [k for k in self.tokens if k[0] >= t]

    def wait_for_subscribers(self, pub, timeout=10.0):
        self.spin_until(lambda: pub.get_subscription_count() > 0, timeout, f"a subscriber on {pub.topic_name}")

    def task(self, text):
        self.wait_for_subscribers(self.task_pub)
        t = time.monotonic()
        self.task_pub.publish(String(data=text))
        return t

    def stop(self):
        self.wait_for_subscribers(self.stop_pub)
        t = time.monotonic()
        self.stop_pub.publish(Empty())
        return t

    def wait_state(self, state, timeout=3.0, reason=None):
        def ok():
            s = self.last_status()
            return s is not None and s["state"] == state and (reason is None or reason in (s.get("hold_reason") or ""))
        self.spin_until(ok, timeout, f"state {state}" + (f" ({reason})" if reason else ""))


def all_equal(commands):
    first = commands[0][2]
    return all(max(abs(a - b) for a, b in zip(c[2], first)) == 0.0 for c in commands)


def finite(commands):
    return all(all(math.isfinite(v) for v in c[2]) for c in commands)
