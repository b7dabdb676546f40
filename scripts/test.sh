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
