#!/usr/bin/env bash
# Shows which daemons run, their pids and last heartbeats (--json for machines).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$ROOT/.venv/bin/python" "$ROOT/scripts/rl_system.py" status "$@"
