"""The ``status`` of ``scripts/rl_system.py`` (and ``status_rl_system.sh``): which daemons run, their heartbeats and memory, what the
supervisor recorded of them, where the loop stands and the jobs' next runs, as a table or JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from core.atomic import read_json
from core.config import Config
from core.contracts.allocation_model import model_config_version
from core.contracts.qlearning_policy import policy_path
from core.contracts.rollout import rollout_path
from core.contracts.trader_status import read_trader_status
from core.contracts.weights import allocations_path
from core.daemon import heartbeat_path
from core.errors import ExitCode
from core.jobs import next_runs
from core.supervisor import read_state, rss_bytes, supervisor_pid


class NamedDaemon(Protocol):
    """What the table shows of a daemon's description (``rl_system.DaemonSpec``)."""

    @property
    def name(self) -> str: ...

    @property
    def what(self) -> str: ...


STALE_HEARTBEAT_S = 180.0
"""A running daemon whose heartbeat is older than this is shown as stale (hung, or stopped without cleanup)."""


def status_rows(cfg: Config, daemons: Sequence[NamedDaemon],
                running_pid: Callable[[Config, str], int | None]) -> list[dict[str, object]]:
    """One row a daemon: running or not, its heartbeat (stale or not), memory and what the supervisor saw."""
    rows = []
    supervised = read_state(cfg)
    for spec in daemons:
        pid = running_pid(cfg, spec.name)
        beat = read_json(heartbeat_path(cfg, spec.name))
        doc = beat.data or {}
        rows.append({
            "name": spec.name,
            "running": pid is not None,
            "pid": pid,
            "heartbeat_at": doc.get("generated_at"),
            "heartbeat_stale": pid is not None and (beat.age_s is None or beat.age_s > STALE_HEARTBEAT_S),
            "state": doc.get("state"),
            "what": spec.what,
            "rss_bytes": rss_bytes(pid) if pid is not None else None,
            **_supervision(supervised.get(spec.name)),
        })
    return rows


def _supervision(record: dict[str, Any] | None) -> dict[str, object]:
    """What the supervisor recorded of a daemon: its state (``given up`` after a crash loop), restarts, last
    exit and the last error line of its output or log."""
    record = record or {}
    return {"supervisor_state": record.get("state"), "restarts": record.get("restarts", 0),
            "last_exit": record.get("last_exit_text"), "last_error": record.get("last_error") or None}


def loop_summary(cfg: Config) -> dict[str, object]:
    """Where the loop stands, from what the daemons publish (None where a file is absent or unreadable)."""
    def doc(path: Path) -> dict[str, Any]:
        result = read_json(path)
        return result.data if result.ok and result.data is not None else {}

    status = read_trader_status(cfg)
    trader = dict(status.doc) if status is not None else {}
    allocation = doc(allocations_path(cfg))
    last = trader.get("last_candle") or {}
    return {
        "trader": {"mode": trader.get("mode"), "equity": trader.get("equity"),
                   "trades_written": trader.get("trades_written"), "last_candle": last.get("time")} if trader else None,
        "allocation_source": allocation.get("source"),
        "sources_passed_over": sorted(allocation.get("fallback_reasons") or {}),
        "strategy_model_version": model_config_version(cfg),
        "qlearning_sizing_multiplier": doc(policy_path(cfg)).get("sizing_multiplier"),
        "ppo_rollout_stage": doc(rollout_path(cfg)).get("stage"),
    }


def show_status(cfg: Config, daemons: Sequence[NamedDaemon], running_pid: Callable[[Config, str], int | None],
                as_json: bool) -> int:
    """``status``: the daemons' table, the loop's line and the supervisor's, or all of it as JSON."""
    rows, loop = status_rows(cfg, daemons, running_pid), loop_summary(cfg)
    name_width = max(len(d.name) for d in daemons)
    if as_json:
        print(json.dumps({"daemons": rows, "loop": loop, "supervisor_pid": supervisor_pid(cfg),
                          "jobs": next_runs(cfg)}, indent=2))
        return ExitCode.OK
    for row in rows:
        state = f"running (pid {row['pid']})" if row["running"] else "stopped"
        if isinstance(row["rss_bytes"], int):
            state += f" {row['rss_bytes'] / 2**20:.0f} MB"
        stale = "  STALE heartbeat: hung? see runtime/logs/" if row["heartbeat_stale"] else ""
        print(f"{row['name']:<{name_width}} {state:<22} heartbeat {row['heartbeat_at'] or '-'}  "
              f"{row['state'] or ''}{stale}")
        if row["restarts"] or row["last_exit"] or row["supervisor_state"] == "given up":
            print(f"{'':<{name_width}} supervisor: {row['supervisor_state']}, restarts {row['restarts']}, last exit "
                  f"{row['last_exit'] or '-'}: {row['last_error'] or '(no error line)'}")
    trader = loop["trader"]
    if isinstance(trader, dict):
        print(f"trader: {trader['mode']}, equity {_number(trader['equity'])}, {trader['trades_written']} trades "
              f"written, last candle {trader['last_candle'] or '-'}")
    passed = ", ".join(loop["sources_passed_over"]) or "none"  # type: ignore[arg-type]
    print(f"allocation: {loop['allocation_source'] or '-'} (passed over: {passed}); "
          f"strategy model {loop['strategy_model_version'] or 'not trained yet'}; "
          f"sizing x{loop['qlearning_sizing_multiplier'] or '-'}; "
          f"trading PPO {loop['ppo_rollout_stage'] or 'Stage 0: Shadow Mode (no rollout configured)'}")
    pid = supervisor_pid(cfg)
    print(f"supervisor: {f'running (pid {pid})' if pid else 'not running'}; scheduled jobs (UTC, next run): "
          + ", ".join(f"{job['name']} {job['next_run']}" for job in next_runs(cfg)))
    return ExitCode.OK


def _number(value: object) -> str:
    return f"{value:,.2f}" if isinstance(value, (int, float)) else "-"
