#!/usr/bin/env bash
# Installs a ROS 2 Jazzy core (rcl, rmw_fastrtps, rclpy, the message packages
# the `ros2` feature uses) from the Python registry's wheels into .local/ros of
# this checkout (ignored by git), once; later runs reuse it. Also installs
# libclang (bindgen needs it to build r2r) with apt-get when it is missing.
# The venv root is a normal ROS prefix (include/, lib/, share/ament_index/).
# Facts behind each step: shared/ROS2-WHEELS.md of the project.
# Prints the prefix on success; `source scripts/ros-env.sh` uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=.local/ros
# Bump to reinstall after changing the package list.
stamp="$prefix/.installed-jazzy-2"
packages=(
  "ros-jazzy-rclpy[fastrtps]"
  ros-jazzy-rmw-implementation
  ros-jazzy-rcl-interfaces
  ros-jazzy-builtin-interfaces
  ros-jazzy-unique-identifier-msgs
  ros-jazzy-action-msgs
  ros-jazzy-std-msgs
  ros-jazzy-sensor-msgs
  ros-jazzy-trajectory-msgs
  ros-jazzy-geometry-msgs
)

if ! ldconfig -p 2>/dev/null | grep -q 'libclang\.so\|libclang-[0-9.]*\.so'; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing libclang-dev (bindgen needs libclang to build r2r)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >&2 \
      || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >&2; }
  else
    echo "error: libclang is missing; install the libclang-dev package (needs root)" >&2
    exit 1
  fi
fi

if [ ! -f "$stamp" ]; then
  python3 -m venv "$prefix" >&2
  "$prefix/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}" >&2
  # r2r links -lrmw_implementation; the wheels ship only a placeholder for
  # it. librmw_fastrtps_cpp implements the same rmw_* C API.
  ln -sf librmw_fastrtps_cpp.so "$prefix/lib/librmw_implementation.so"
  [ -e "$prefix/lib/librmw_fastrtps_cpp.so" ] \
    || { echo "error: $prefix/lib/librmw_fastrtps_cpp.so missing after install" >&2; exit 1; }
  touch "$stamp"
fi
echo "$PWD/$prefix"
