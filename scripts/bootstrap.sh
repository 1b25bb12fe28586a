#!/usr/bin/env bash
# Creates .venv/ at the repository root and installs the project into it (editable, with the test extra)
# when the venv is missing or pyproject.toml changed since the last install. Safe to run every time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
TORCH_PIN="torch==2.13.0"   # the CPU build; an unpinned torch may pull a multi-GB CUDA build
stamp_of() { sha256sum "$ROOT/pyproject.toml" | cut -c1-16; }

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV" >&2
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.installed-$(stamp_of)"
if [ ! -f "$STAMP" ]; then
    echo "[setup] installing dependencies into .venv (first run or pyproject.toml changed)" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet "$TORCH_PIN" >&2
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev]" >&2
    rm -f "$VENV"/.installed-*
    touch "$STAMP"
fi
