#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, property and end-to-end tests.
# Installs what the tests need into ignored folders of this checkout (.local/).
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# One warm target directory outside the clone, so that CI runs on the same
# machine reuse earlier builds. Override by setting CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vla/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== test tools (.local/)"
tools_bin="$(scripts/setup-test-tools.sh)"
# Tests that need an external tool fail, rather than skip, when it is missing.
export VLA_REQUIRE_TOOLS=1
export VLA_RERUN_BIN="$tools_bin/rerun"

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

# ROS 2: the `ros2` feature builds r2r against ROS 2 Jazzy's core, installed
# from the Python registry's wheels into .local/ros (once), and its tests
# run the real nodes against rclpy processes inside a private network
# namespace (loopback only), so no DDS traffic leaves the machine. The text
# encoder the controller loads was fetched into the user cache by the
# vla-policy tests above (the namespace has no network).
echo "== ROS 2 Jazzy (.local/ros)"
scripts/setup-ros.sh >/dev/null
# shellcheck source=scripts/ros-env.sh
source scripts/ros-env.sh
ros_features=(--features vla-cli/ros2,vla-ros/ros2)

# --workspace with the extra features keeps every other crate's feature set
# identical to the steps above, so only the ROS crates and vla-cli rebuild.
echo "== cargo clippy --features ros2 (warnings are errors)"
cargo clippy --workspace --all-targets --locked "${ros_features[@]}" -- -D warnings

echo "== cargo test --lib --features ros2 (vla-ros message conversions, parameters)"
cargo test --workspace --locked "${ros_features[@]}" --lib

echo "== ROS 2 integration tests (rclpy world; private network namespace)"
cargo test --workspace --locked "${ros_features[@]}" --test ros --no-run
scripts/ros-netns.sh cargo test --workspace --offline --locked "${ros_features[@]}" --test ros -- --nocapture
