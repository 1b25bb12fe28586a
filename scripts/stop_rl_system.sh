#!/usr/bin/env bash
# Stops every daemon the start script started (SIGTERM, clean exit; SIGKILL after 15 s).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG_ARGS=()
if [ "${1:-}" = "--config" ]; then CONFIG_ARGS=(--config "$2"); shift 2; fi
exec "$ROOT/.venv/bin/python" "$ROOT/scripts/rl_system.py" "${CONFIG_ARGS[@]}" stop "$@"
