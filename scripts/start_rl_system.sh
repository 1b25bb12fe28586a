#!/usr/bin/env bash
# Starts the whole suite in the background (sets up .venv/ on first run).
#   bash scripts/start_rl_system.sh                # every daemon, offline on synthetic candles by default
#   bash scripts/start_rl_system.sh --foreground   # stay attached; Ctrl-C stops everything
#   bash scripts/start_rl_system.sh --only weights_bridge
# Options after the script name go to `python scripts/rl_system.py start`; --config PATH goes first if given.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
CONFIG_ARGS=()
# No cd: relative paths (--config, RL_SYSTEM_HOME) mean the caller's folder; daemons get them made absolute.
if [ "${1:-}" = "--config" ]; then CONFIG_ARGS=(--config "$2"); shift 2; fi
exec "$ROOT/.venv/bin/python" "$ROOT/scripts/rl_system.py" "${CONFIG_ARGS[@]}" start "$@"
