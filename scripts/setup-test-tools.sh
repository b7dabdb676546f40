#!/usr/bin/env bash
# Installs the external tools the tests use into .local/ of this checkout
# (ignored by git), once; later runs reuse them.
#   .local/venv   Python venv with rerun-sdk (the official `rerun` CLI, same
#                 version as the rerun crate) to verify recordings.
# Prints the venv's bin directory on success.
set -euo pipefail
cd "$(dirname "$0")/.."
RERUN_VERSION=0.36.3
venv=.local/venv
stamp="$venv/.installed-rerun-$RERUN_VERSION"
if [ ! -f "$stamp" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "rerun-sdk==$RERUN_VERSION" >&2
  # The CLI asks to send usage data on first run; never from tests.
  "$venv/bin/rerun" analytics disable >/dev/null 2>&1 || true
  touch "$stamp"
fi
echo "$PWD/$venv/bin"
