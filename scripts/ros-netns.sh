#!/usr/bin/env bash
# Runs a command inside a private network namespace whose only interface is
# loopback (with multicast, for DDS discovery), so the ROS 2 / DDS traffic of
# tests never leaves this machine. Marks the namespace with VLA_ROS_NETNS=1,
# which the ROS 2 tests (tests/ros.rs) require.
# Usage: scripts/ros-netns.sh COMMAND [ARGS...]
set -euo pipefail
if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi
# -r maps the caller to root inside a new user namespace, so this also works
# unprivileged where user namespaces are allowed; -n: new network namespace.
exec unshare -rn bash -c '
  set -euo pipefail
  ip link set lo up
  ip link set lo multicast on
  ip route add 224.0.0.0/4 dev lo
  export VLA_ROS_NETNS=1
  exec "$@"
' vla-ros-netns "$@"
