#!/usr/bin/env bash
# Shows which daemons run, their pids and last heartbeats (--json for machines).
#   bash scripts/status_rl_system.sh [--config PATH] [--json]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG_ARGS=()
# Like start and stop: --config PATH first (rl_system.py also takes it after the subcommand).
if [ "${1:-}" = "--config" ]; then CONFIG_ARGS=(--config "$2"); shift 2; fi
exec "$ROOT/.venv/bin/python" "$ROOT/scripts/rl_system.py" "${CONFIG_ARGS[@]}" status "$@"
