"""The trading PPO's book in the trader: its target exposure and its share of equity on every candle.

Plain functions over the published files, without torch, for the paper trader to call on every candle. The
files themselves are owned by their contracts: the rollout, the shadow switch and the risk guard by
:mod:`core.contracts.rollout`, the decisions by :mod:`core.contracts.shadow_decisions`.

- :func:`book_target` turns the rollout and the decision for the candle into the book's target exposure in
  [-1, 1] (0 unless the rollout is above 0 %, shadow mode is off and the decision is for this candle or the
  one before);
- :func:`book_weight` is the book's share of equity: ``capital_percentage / 100``, lowered so that the
  position's notional stays within ``max_position_size``.

Rules for the trader: with a rollout above 0 %, give ``book_weight`` of equity to a book named :data:`BOOK`
(``rl_v3_ppo``) that follows ``book_target`` each candle and writes its closed trades to the trade history
with that strategy name; call :func:`core.contracts.rollout.check_risk_guard` with the book's capital after
each closed trade.
"""

from __future__ import annotations

import math

from core.config import Config
from core.contracts.rollout import BOOK, Rollout, read_rollout, shadow_mode
from core.contracts.shadow_decisions import decision_for, latest_decision

__all__ = ["BOOK", "book_target", "book_weight"]


def book_target(cfg: Config, candle_ts: int | None = None, timeframe_ms: int | None = None,
                max_lag_candles: int = 1) -> float:
    """The PPO book's target exposure in [-1, 1] for the candle opened at ``candle_ts``.

    The decision followed is the one for that candle, else the newest before it (the daemon decides right
    after a candle closes, so the trader may see only the previous candle's decision); without ``candle_ts``,
    the newest decision. 0 when no rollout above 0 % is in force, shadow mode is on, there is no such
    decision, it is older than ``max_lag_candles`` candles before ``candle_ts``, or it was EMERGENCY_FLATTEN.
    """
    rollout = read_rollout(cfg)
    if rollout is None or not rollout.live or shadow_mode(cfg):
        return 0.0
    decision = latest_decision(cfg) if candle_ts is None else decision_for(cfg, candle_ts)
    if decision is None or decision.get("action_name") == "EMERGENCY_FLATTEN":
        return 0.0
    if candle_ts is not None and timeframe_ms is not None:
        if candle_ts - int(decision["timestamp"]) > max_lag_candles * timeframe_ms:
            return 0.0
    exposure = decision.get("exposure", 0.0)
    if isinstance(exposure, bool) or not isinstance(exposure, (int, float)) or not math.isfinite(exposure):
        return 0.0
    return float(min(1.0, max(-1.0, exposure)))


def book_weight(rollout: Rollout | None, equity: float, target: float = 1.0) -> float:
    """Share of equity for the PPO book: the rollout's percentage, capped so ``weight * equity * |target|``
    stays within ``max_position_size``."""
    if rollout is None or not rollout.live or equity <= 0:
        return 0.0
    weight = rollout.capital_percentage / 100.0
    notional = weight * equity * abs(target)
    if notional > rollout.max_position_size > 0:
        weight *= rollout.max_position_size / notional
    return weight
