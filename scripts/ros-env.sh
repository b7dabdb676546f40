# Environment for building and running the `ros2` feature against the ROS 2
# Jazzy wheels that scripts/setup-ros.sh installs into .local/ros.
# Usage (bash): source scripts/ros-env.sh
# Facts behind each variable: shared/ROS2-WHEELS.md of the project.
_vla_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_vla_ros="$_vla_root/.local/ros"
if [ ! -d "$_vla_ros/lib" ]; then
  echo "ros-env.sh: $_vla_ros is missing; run scripts/setup-ros.sh first" >&2
  return 1 2>/dev/null || exit 1
fi
export ROS_DISTRO=jazzy
export AMENT_PREFIX_PATH="$_vla_ros"
export CMAKE_PREFIX_PATH="$_vla_ros"
# The message packages r2r generates Rust types for (it adds rcl_interfaces,
# builtin_interfaces, unique_identifier_msgs and action_msgs itself).
export IDL_PACKAGE_FILTER="std_msgs;sensor_msgs;trajectory_msgs;geometry_msgs"
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
_vla_py="$(ls -d "$_vla_ros"/lib/python3*/site-packages | head -n 1)"
_vla_libs="$_vla_ros/lib"
for d in "$_vla_py"/*.libs; do
  [ -d "$d" ] && _vla_libs="$_vla_libs:$d"
done
export LD_LIBRARY_PATH="$_vla_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The wheels' librcl pulls in *_rosidl_generator_py.so, which need libpython's
# symbols; a Rust binary has none, so preload libpython (not needed with a
# distro ROS install).
_vla_libpython="$(python3 -c 'import sysconfig, os; print(os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")))')"
if [ -e "$_vla_libpython" ]; then
  export LD_PRELOAD="$_vla_libpython${LD_PRELOAD:+:$LD_PRELOAD}"
fi
export PYTHONPATH="$_vla_py${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$_vla_ros/bin:$PATH"
unset _vla_root _vla_ros _vla_py _vla_libs _vla_libpython d
