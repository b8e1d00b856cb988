#!/usr/bin/env bash
# Create the virtualenv the report tests use (target/pyenv) with the pinned Python tools.
# Idempotent: does nothing when the venv already has them.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${COMPOSE_SHARD_PYENV:-$root/target/pyenv}"
req="$root/tests/python/requirements.txt"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import pytest, coverage, junitparser, pycobertura" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
