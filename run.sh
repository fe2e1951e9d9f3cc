#!/usr/bin/env bash
# One entry point for a fresh machine: creates (or reuses) .venv, installs minigpt and what it
# needs, then runs the demo or the test suite.
#
#   bash run.sh demo [minigpt demo options]     # prepare a built-in corpus, train, sample
#   bash run.sh test [pytest options]           # the test suite
#
# PyTorch: with an NVIDIA GPU (nvidia-smi works) the default CUDA build is installed; without
# one, torch==2.13.0, which resolves to a local CPU build where the machine provides one.
# Set MINIGPT_TORCH to any pip requirement (and PIP_INDEX_URL etc.) to choose another build.
set -euo pipefail
cd "$(dirname "$0")"

venv="${MINIGPT_VENV:-.venv}"
python="${PYTHON:-python3}"
mode="${1:-}"
case "$mode" in
  demo|test) shift ;;
  *) echo "usage: bash run.sh demo|test [options]" >&2; exit 2 ;;
esac

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)

if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  if [ -n "${MINIGPT_TORCH:-}" ]; then
    torch_spec="$MINIGPT_TORCH"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    torch_spec="torch"
  else
    torch_spec="torch==2.13.0"
  fi
  echo "installing PyTorch ($torch_spec) into $venv ..." >&2
  "${pip[@]}" "$torch_spec"
fi

# Reinstall the package only when its requirements change.
stamp="$venv/.minigpt-installed"
want="$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "installing minigpt and its requirements into $venv ..." >&2
  "${pip[@]}" -e ".[dev]"
  echo "$want" > "$stamp"
fi

if [ "$mode" = demo ]; then
  exec "$venv/bin/minigpt" demo "$@"
else
  exec "$venv/bin/python" -m pytest "$@"
fi
