"""The built-in simulator as a stand-in arm, with the VLA controller.

Starts `vla sim-node` (node vla_sim: camera, CameraInfo, /joint_states,
following the joint command topics) and `vla run` (node vla_controller)
with matching default names, optionally recording or showing the
simulation in rerun. Run after `cargo build --release --features ros2`:

    ros2 launch launch/vla_sim.launch.py                  # no viewer
    ros2 launch launch/vla_sim.launch.py spawn_rerun:=true
    ros2 launch launch/vla_sim.launch.py rrd:=/tmp/vla.rrd command_interface:=forward_position

Then: ros2 topic pub --once /vla/task std_msgs/msg/String "{data: 'pick up the red cube'}"
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def nodes(context):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    vla, params = get("vla"), get("params_file")
    interface = get("command_interface")
    controller = "forward_position_controller" if interface == "forward_position" else "joint_trajectory_controller"
    sim = [vla, "sim-node"]
    if get("rrd"):
        sim += ["--rrd", get("rrd")]
    elif get("spawn_rerun").lower() in ("true", "1", "yes"):
        sim += ["--spawn"]
    sim += ["--ros-args", "--params-file", params, "-p", f"scene_task:={get('scene_task')}", "-p", f"seed:={get('seed')}"]
    run = [vla, "run", "--ros-args", "--params-file", params, "-p", f"policy:={get('policy')}", "-p", f"urdf:={get('urdf')}",
           "-p", f"command_interface:={interface}", "-p", f"controller:={controller}"]
    return [
        ExecuteProcess(cmd=sim, cwd=ROOT, output="screen", name="vla_sim"),
        ExecuteProcess(cmd=run, cwd=ROOT, output="screen", name="vla_controller"),
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument("vla", default_value=os.path.join(ROOT, "target/release/vla"), description="the vla binary, built with --features ros2"),
            DeclareLaunchArgument("params_file", default_value=os.path.join(HERE, "vla_params.yaml"), description="parameter file of both nodes"),
            DeclareLaunchArgument("policy", default_value="policies/default", description="policy directory written by vla train"),
            DeclareLaunchArgument("urdf", default_value="urdf/panda.urdf", description="URDF of the simulated arm, for the controller"),
            DeclareLaunchArgument("command_interface", default_value="joint_trajectory", description="joint_trajectory or forward_position (the simulator follows both)"),
            DeclareLaunchArgument("scene_task", default_value="put the red cube in the green bowl", description="the task whose objects the simulator lays out"),
            DeclareLaunchArgument("seed", default_value="0", description="layout seed"),
            DeclareLaunchArgument("rrd", default_value="", description="write a rerun recording of the simulation to this file"),
            DeclareLaunchArgument("spawn_rerun", default_value="false", description="start a rerun viewer and stream the simulation to it"),
            OpaqueFunction(function=nodes),
        ]
    )
