"""The VLA controller next to a real arm's ros2_control drivers.

Starts only `vla run` (node vla_controller), pointing at the arm's joint
states, camera and command topics. Run after building the binary with
`cargo build --release --features ros2` (see README.md, "ROS 2"):

    ros2 launch launch/vla_real.launch.py \
        robot_description_file:=/path/to/robot.urdf \
        camera_topic:=/wrist_camera/color/image_raw \
        command_interface:=joint_trajectory controller:=arm_controller

Then type a task:
    ros2 topic pub --once /vla/task std_msgs/msg/String "{data: 'put the red cube in the bowl'}"
and stop with:
    ros2 topic pub --once /vla/stop std_msgs/msg/Empty "{}"
"""

import json
import os
import tempfile

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def controller(context):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    cmd = [get("vla"), "run", "--ros-args", "--params-file", get("params_file")]
    # The URDF text goes in through a parameter file: XML does not survive
    # the `-p name:=value` syntax. JSON is valid YAML.
    urdf_file = get("robot_description_file")
    if urdf_file:
        with open(urdf_file, encoding="utf-8") as f:
            text = f.read()
        params = {"vla_controller": {"ros__parameters": {"robot_description": text}}}
        fd, path = tempfile.mkstemp(prefix="vla_robot_description_", suffix=".yaml")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(params, f)
        cmd += ["--params-file", path]
    for name in (
        "policy",
        "base_link",
        "tip_link",
        "command_interface",
        "controller",
        "camera_topic",
        "wrist_camera_topic",
        "joint_states_topic",
        "stale_timeout_secs",
        "velocity_scale",
    ):
        cmd += ["-p", f"{name}:={get(name)}"]
    return [ExecuteProcess(cmd=cmd, cwd=ROOT, output="screen", name="vla_controller")]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument("vla", default_value=os.path.join(ROOT, "target/release/vla"), description="the vla binary, built with --features ros2"),
            DeclareLaunchArgument("params_file", default_value=os.path.join(HERE, "vla_params.yaml"), description="parameter file (defaults of every parameter)"),
            DeclareLaunchArgument("policy", default_value="policies/default", description="policy directory written by vla train"),
            DeclareLaunchArgument("robot_description_file", default_value="", description="URDF of the arm (empty: the urdf parameter, urdf/panda.urdf)"),
            DeclareLaunchArgument("base_link", default_value="panda_link0", description="first link of the chain the policy moves"),
            DeclareLaunchArgument("tip_link", default_value="panda_hand_tcp", description="tool centre point link"),
            DeclareLaunchArgument("command_interface", default_value="joint_trajectory", description="joint_trajectory (JointTrajectoryController) or forward_position (forward position controller)"),
            DeclareLaunchArgument("controller", default_value="joint_trajectory_controller", description="the ros2_control controller's name"),
            DeclareLaunchArgument("camera_topic", default_value="/camera/image_raw", description="sensor_msgs/Image topic of the camera"),
            DeclareLaunchArgument("wrist_camera_topic", default_value="/wrist_camera/image_raw", description="sensor_msgs/Image topic of a hand-mounted camera (read only by policies trained with one)"),
            DeclareLaunchArgument("joint_states_topic", default_value="/joint_states", description="sensor_msgs/JointState topic of the arm"),
            DeclareLaunchArgument("stale_timeout_secs", default_value="0.3", description="hold when joint states or frames are older"),
            DeclareLaunchArgument("velocity_scale", default_value="0.5", description="fraction of the URDF velocity limits (start slow on a real arm)"),
            OpaqueFunction(function=controller),
        ]
    )
