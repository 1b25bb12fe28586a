#!/usr/bin/env bash
# Stops every daemon the start script started (SIGTERM, clean exit; SIGKILL after 15 s).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG_ARGS=()
# No cd: relative paths (--config, RL_SYSTEM_HOME) mean the caller's folder; daemons get them made absolute.
if [ "${1:-}" = "--config" ]; then CONFIG_ARGS=(--config "$2"); shift 2; fi
exec "$ROOT/.venv/bin/python" "$ROOT/scripts/rl_system.py" "${CONFIG_ARGS[@]}" stop "$@"
