"""The trader panel: equity curve with drawdown, open positions, per-strategy P&L, and the closed trades, a page
at a time (newest first)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.config import Config
from core.contracts.pnl_history import HISTORY_NAME, history_path, read_history
from core.contracts.trader_status import read_trader_status
from core.errors import DataError
from dashboard.common import Panel, empty, number

NO_TRADES = "no trades yet: the trader has not closed a trade (start it with `bash scripts/start_rl_system.sh`)"
NO_TRADER = ("no trader status: the paper trader is not running here; start it with "
             "`bash scripts/start_rl_system.sh` or `python agents/paper_trader.py --replay`")
CURVE_POINTS = 2000
"""At most this many points of the equity curve are sent (evenly thinned, the last one kept)."""
PAGE_SIZES = (10, 25, 50, 100)
TRADE_COLUMNS = ("closed_at", "opened_at", "symbol", "strategy", "side", "qty", "entry_price", "exit_price", "pnl",
                 "pnl_pct", "fees", "equity_after")


@dataclass(frozen=True)
class History:
    """The trade history as read, with the file's signature it was read at."""

    trades: pd.DataFrame
    skipped: int
    error: str | None


class HistoryCache:
    """Reads ``state/pnl_history.csv`` again only when its size or modification time changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, int, int] | None = None
        self._value = History(pd.DataFrame(columns=list(TRADE_COLUMNS)), 0, None)

    def get(self, cfg: Config) -> History:
        path = history_path(cfg)
        try:
            stat = path.stat()
            key = (str(path), stat.st_size, stat.st_mtime_ns)
        except OSError:
            key = (str(path), -1, -1)
        with self._lock:
            if key != self._key:
                self._value, self._key = _read(cfg), key
            return self._value


def _read(cfg: Config) -> History:
    try:
        read = read_history(history_path(cfg))
    except DataError as exc:
        return History(pd.DataFrame(columns=list(TRADE_COLUMNS)), 0, str(exc))
    return History(read.trades, read.skipped, None)


def _iso(value: Any) -> str | None:
    return None if pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def equity_curve(trades: pd.DataFrame) -> dict[str, list[Any]]:
    """Equity after each closed trade and its drawdown from the running peak (a fraction <= 0), thinned."""
    if trades.empty:
        return {"time": [], "equity": [], "drawdown": []}
    equity = trades["equity_after"].astype(float).to_numpy()
    times = trades["closed_at"]
    step = max(1, len(equity) // CURVE_POINTS)
    index = list(range(0, len(equity), step))
    if index[-1] != len(equity) - 1:
        index.append(len(equity) - 1)
    peak = pd.Series(equity).cummax().to_numpy()
    drawdown = equity / peak - 1.0
    return {"time": [_iso(times.iloc[i]) for i in index], "equity": [float(equity[i]) for i in index],
            "drawdown": [float(drawdown[i]) for i in index]}


def per_strategy(trades: pd.DataFrame) -> list[dict[str, Any]]:
    """Per strategy: trades, total P&L, mean return per trade, win rate; largest P&L first."""
    rows = []
    for name, group in trades.groupby("strategy", sort=True):
        pnl = group["pnl"].astype(float)
        rows.append({"strategy": str(name), "trades": int(len(group)), "pnl": float(pnl.sum()),
                     "mean_pnl_pct": float(group["pnl_pct"].astype(float).mean()),
                     "win_rate": float((pnl > 0).mean())})
    return sorted(rows, key=lambda r: -r["pnl"])


def trade_rows(trades: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in trades.to_dict("records"):
        row = {k: rec.get(k) for k in TRADE_COLUMNS}
        row["closed_at"], row["opened_at"] = _iso(row["closed_at"]), _iso(row["opened_at"])
        out.append({k: (number(v) if isinstance(v, float) else v) for k, v in row.items()})
    return out


def trades_page(history: History, page: int, size: int) -> Panel:
    """Closed trades ``size`` to a page, newest first; ``page`` counts from 1 and is clamped to the last."""
    total = int(len(history.trades))
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    newest_first = history.trades.iloc[::-1]
    chunk = newest_first.iloc[(page - 1) * size: page * size]
    if total == 0:
        return {**empty(history.error or NO_TRADES), "page": 1, "pages": 1, "size": size, "total": 0, "rows": []}
    return {"empty": False, "page": page, "pages": pages, "size": size, "total": total, "rows": trade_rows(chunk)}


def positions(doc: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for strategy, pos in (doc.get("positions") or {}).items():
        if isinstance(pos, dict):
            rows.append({"strategy": strategy, **{k: pos.get(k) for k in (
                "side", "qty", "notional", "entry_price", "opened_at", "weight", "unrealized_pnl")}})
    return rows


def trader_panel(cfg: Config, history: History) -> Panel:
    status = read_trader_status(cfg)
    doc = dict(status.doc) if status is not None else {}
    trades = history.trades
    summary = {k: doc.get(k) for k in ("state", "mode", "data_source", "symbol", "timeframe", "initial_equity",
                                       "equity", "cash", "candles_processed", "trades_written",
                                       "sizing_multiplier")}
    last = doc.get("last_candle") or {}
    if trades.empty and status is None:
        return empty(history.error or NO_TRADER)
    return {
        "empty": False,
        "status": summary if status is not None else None,
        "status_message": None if status is not None else NO_TRADER,
        "status_age_s": None if status is None or status.age_s is None else round(status.age_s, 1),
        "last_candle": last.get("time"),
        "positions": positions(doc),
        "curve": equity_curve(trades),
        "strategies": per_strategy(trades),
        "trades": int(len(trades)),
        "skipped_rows": history.skipped,
        "history_error": history.error,
        "no_trades_message": NO_TRADES if trades.empty else None,
        "history_file": f"state/{HISTORY_NAME}",
    }
