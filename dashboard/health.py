"""The health panel: every daemon of this home with its state, uptime, heartbeat age, restarts and last error.

The daemons listed are those the supervisor was asked to run or has a record of, and any with a heartbeat
(started by hand): the suite's own files say which daemons exist, so a new daemon needs no change here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.atomic import read_json
from core.config import Config
from core.daemon import heartbeat_path, pid_path
from core.supervisor import alive, last_error_line, read_state, read_wanted, supervisor_pid
from dashboard.common import Panel, empty, number

STALE_HEARTBEAT_S = 180.0
"""A running daemon whose heartbeat is older than this is flagged stale (hung); the status command's limit."""
NO_DAEMONS = ("no daemon has run in this home yet: start the suite with `bash scripts/start_rl_system.sh` "
              "(or one daemon, e.g. `python agents/paper_trader.py --replay`)")


def daemon_names(cfg: Config) -> list[str]:
    """Names of the daemons the supervisor knows (in its order), then those with only a heartbeat file."""
    names = list(dict.fromkeys([*read_wanted(cfg), *read_state(cfg)]))
    beats = cfg.runtime_dir / "heartbeats"
    found = sorted(p.stem for p in beats.glob("*.json")) if beats.is_dir() else []
    return names + [n for n in found if n not in names]


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def daemon_row(cfg: Config, name: str, supervised: dict[str, Any]) -> dict[str, Any]:
    """One daemon's line: running, state, uptime, heartbeat age, stale flag, restarts, last exit and error."""
    beat = read_json(heartbeat_path(cfg, name))
    doc = beat.data or {}
    pid = _pid(pid_path(cfg, name))
    # A pid file a crash left behind may name a reused pid: the heartbeat names the daemon's own.
    running = pid is not None and alive(pid) and doc.get("pid") in (None, pid)
    record = supervised.get(name) or {}
    age = None if beat.age_s is None else round(beat.age_s, 1)
    uptime = number(doc.get("uptime_s"))
    state = str(doc.get("state") or ("unknown" if running else "stopped")) if beat.ok else (
        "no heartbeat" if beat.status == "absent" else f"heartbeat {beat.status}")
    if not running and state not in ("stopped", "no heartbeat"):
        state = "not running" if record.get("state") != "given up" else "given up"
    stale = running and (age is None or age > STALE_HEARTBEAT_S)
    last_error = record.get("last_error") or (last_error_line(cfg, name) if not running or stale else "") or None
    return {
        "name": name, "running": running, "pid": pid if running else None, "state": state,
        "degraded_reason": doc.get("degraded_reason"),
        "uptime_s": round(uptime + (age or 0.0), 1) if running and uptime is not None else None,
        "heartbeat_at": doc.get("generated_at"), "heartbeat_age_s": age, "stale": stale,
        "supervisor_state": record.get("state"), "restarts": int(record.get("restarts") or 0),
        "last_exit": record.get("last_exit_text"), "last_error": last_error,
        "flagged": stale or state in ("degraded", "error", "given up", "not running")
        or record.get("state") in ("given up", "failed at start", "restarting"),
    }


def health_panel(cfg: Config) -> Panel:
    names = daemon_names(cfg)
    if not names:
        return empty(NO_DAEMONS)
    supervised = read_state(cfg)
    rows = [daemon_row(cfg, name, supervised) for name in names]
    sup = supervisor_pid(cfg)
    return {"empty": False, "daemons": rows, "supervisor_pid": sup, "stale_after_s": STALE_HEARTBEAT_S,
            "running": sum(r["running"] for r in rows), "flagged": sum(r["flagged"] for r in rows)}
