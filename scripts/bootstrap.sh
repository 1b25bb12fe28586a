#!/usr/bin/env bash
# Creates .venv/ at the repository root and installs the project into it (editable, with the test extra)
# when the venv is missing or pyproject.toml changed since the last install. Safe to run every time, and from
# several shells at once: the install runs under a lock, and whoever waited finds it done.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
TORCH_PIN="torch==2.13.0"   # the CPU build; an unpinned torch may pull a multi-GB CUDA build
stamp_of() { sha256sum "$ROOT/pyproject.toml" 2>/dev/null | cut -c1-16 || shasum -a 256 "$ROOT/pyproject.toml" | cut -c1-16; }
STAMP="$VENV/.installed-$(stamp_of)"

[ -f "$STAMP" ] && [ -x "$VENV/bin/python" ] && exit 0   # the common case: nothing to do

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "[setup] error: $PY is missing or older than Python 3.10; install Python 3.10+ or set PYTHON=/path/to/python3" >&2
    exit 1
fi

# The lock lives outside the repository so it never shows up as a file to commit.
LOCK="${TMPDIR:-/tmp}/rl-paper-trader-setup-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1).lock"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCK"
    flock 9
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV" >&2
    "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ]; then
    echo "[setup] installing dependencies into .venv (first run or pyproject.toml changed)" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet "$TORCH_PIN" >&2
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev]" >&2
    rm -f "$VENV"/.installed-*
    touch "$STAMP"
fi
