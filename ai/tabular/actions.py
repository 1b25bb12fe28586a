"""The actions of the two Q-learning agents, and what one closed trade says about each of them.

**Strategy (meta) agent: 60 actions = 12 choices x 5 aggressiveness levels**, index ``choice * 5 + level``.

- Choices 0-7 are the 8 strategies (order of :data:`core.config.STRATEGIES`): favour that strategy.
- 8 ``trend_group``: turtle_trading, momentum_sma_crossover, breakout_trading, macd_momentum in equal parts.
- 9 ``mean_reversion_group``: mean_reversion_rsi, pairs_trading, bollinger_bands, vix_strategy in equal parts.
- 10 ``all_equal``: the 8 strategies in equal parts.
- 11 ``stand_aside``: no new exposure (its reward is 0 whatever the level: the baseline any choice must beat).
- Aggressiveness scales the exposure: ``minimal`` 0.25, ``low`` 0.5, ``normal`` 1.0, ``high`` 1.5, ``maximal`` 2.0.

**Position-sizing agent: 40 actions = 8 size multipliers x 5 stop distances**, index ``multiplier * 5 + stop``.

- Multipliers 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0 of the position the allocation gives.
- Stops at 1, 1.5, 2 or 3 ATR(14) of the entry candle from the entry price, or ``none`` (the strategy's own exit).

**Learning from a logged trade (hindsight).** ``pnl_pct`` is the trade's return on its own notional, whatever
its size, so a trade tells the return of every action it is evidence for, not only of the one the trader
happened to take (in shadow mode the trader never varies its size or stop at all):

- meta: for each level ``g``, the trade's own strategy, the group holding it and ``all_equal`` earn
  ``g * pnl_pct`` (a member's trade is a sample of a blend that runs its members equally); ``stand_aside``
  earns 0. A trade of a book outside the 8 strategies teaches the meta agent nothing.
- sizing: for each stop ``d`` the trade is replayed on its candles: if a candle after the entry one, up to the
  exit one, reaches ``entry -/+ d * ATR`` the trade leaves there (at the candle's open when it gaps through,
  with slippage and the fee as on the real trade), else it keeps its logged ``pnl_pct``; multiplier ``m``
  scales that return.

Every return ``x`` becomes a reward ``reward_scale * (x - risk_aversion / 2 * x**2)`` (mean-variance), so the
best exposure in a state is finite: about ``mean / (risk_aversion * mean square)`` of its returns, instead of
always the largest level when the mean is positive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from core.config import STRATEGIES
from core.contracts.qlearning_policy import SIZE_MULTIPLIERS

GROUPS: dict[str, tuple[str, ...]] = {
    "trend_group": ("turtle_trading", "momentum_sma_crossover", "breakout_trading", "macd_momentum"),
    "mean_reversion_group": ("mean_reversion_rsi", "pairs_trading", "bollinger_bands", "vix_strategy"),
    "all_equal": STRATEGIES,
}
STAND_ASIDE = "stand_aside"
META_CHOICES: tuple[str, ...] = (*STRATEGIES, *GROUPS, STAND_ASIDE)
AGGRESSIVENESS: tuple[float, ...] = (0.25, 0.5, 1.0, 1.5, 2.0)
AGGRESSIVENESS_NAMES: tuple[str, ...] = ("minimal", "low", "normal", "high", "maximal")
# SIZE_MULTIPLIERS comes from the policy contract: a published multiplier is one of the sizing agent's choices.
STOP_ATR: tuple[float | None, ...] = (1.0, 1.5, 2.0, 3.0, None)
"""Stop distances in ATRs; None is no stop (the strategy's own exit)."""

N_META_ACTIONS = len(META_CHOICES) * len(AGGRESSIVENESS)
N_SIZING_ACTIONS = len(SIZE_MULTIPLIERS) * len(STOP_ATR)
META_DEFAULT = META_CHOICES.index("all_equal") * len(AGGRESSIVENESS) + AGGRESSIVENESS.index(1.0)
"""``all_equal`` at ``normal``: what the meta agent says in a state it knows nothing about."""
SIZING_DEFAULT = SIZE_MULTIPLIERS.index(1.0) * len(STOP_ATR) + STOP_ATR.index(None)
"""Multiplier 1.0 without a stop: what the sizing agent says in a state it knows nothing about."""


def meta_action(choice: str, level: int) -> int:
    """Index of ``choice`` (a strategy, a group or ``stand_aside``) at aggressiveness ``level`` (0..4)."""
    return META_CHOICES.index(choice) * len(AGGRESSIVENESS) + level


def sizing_action(multiplier_index: int, stop_index: int) -> int:
    """Index of the size multiplier ``multiplier_index`` (0..7) with the stop ``stop_index`` (0..4)."""
    return multiplier_index * len(STOP_ATR) + stop_index


def describe_meta(action: int) -> dict[str, object]:
    """What a meta action means: ``choice``, ``aggressiveness`` (its exposure factor) and its level name."""
    choice, level = divmod(int(action), len(AGGRESSIVENESS))
    return {"choice": META_CHOICES[choice], "aggressiveness": AGGRESSIVENESS[level],
            "level": AGGRESSIVENESS_NAMES[level]}


def describe_sizing(action: int) -> dict[str, object]:
    """What a sizing action means: ``multiplier`` and ``stop_atr`` (None: no stop)."""
    mult, stop = divmod(int(action), len(STOP_ATR))
    return {"multiplier": SIZE_MULTIPLIERS[mult], "stop_atr": STOP_ATR[stop]}


def meta_label(action: int) -> str:
    d = describe_meta(action)
    return f"{d['choice']}, {d['level']} (x{d['aggressiveness']:g})"


def sizing_label(action: int) -> str:
    d = describe_sizing(action)
    stop = "no stop" if d["stop_atr"] is None else f"stop {d['stop_atr']:g} ATR"
    return f"size x{d['multiplier']:g}, {stop}"


def risk_adjusted(x: float, reward_scale: float, risk_aversion: float) -> float:
    """``reward_scale * (x - risk_aversion / 2 * x**2)`` for an exposure-scaled return ``x``."""
    return reward_scale * (x - 0.5 * risk_aversion * x * x)


def meta_rewards(strategy: str, pnl_pct: float, reward_scale: float, risk_aversion: float) -> dict[int, float]:
    """Reward of every meta action a trade of ``strategy`` is evidence for (empty outside the 8 strategies)."""
    if strategy not in STRATEGIES:
        return {}
    choices = [strategy, *(g for g, members in GROUPS.items() if strategy in members)]
    rewards: dict[int, float] = {}
    for level, factor in enumerate(AGGRESSIVENESS):
        value = risk_adjusted(factor * pnl_pct, reward_scale, risk_aversion)
        for choice in choices:
            rewards[meta_action(choice, level)] = value
        rewards[meta_action(STAND_ASIDE, level)] = 0.0
    return rewards


def sizing_rewards(returns_by_stop: Sequence[float], reward_scale: float, risk_aversion: float) -> dict[int, float]:
    """Reward of all 40 sizing actions from the trade's return under each stop of :data:`STOP_ATR`."""
    if len(returns_by_stop) != len(STOP_ATR):
        raise ValueError(f"expected {len(STOP_ATR)} returns (one per stop), got {len(returns_by_stop)}")
    return {sizing_action(m, s): risk_adjusted(mult * ret, reward_scale, risk_aversion)
            for m, mult in enumerate(SIZE_MULTIPLIERS) for s, ret in enumerate(returns_by_stop)}


def stop_returns(
    side: str, entry: float, pnl_pct: float, atr: float,
    opens: np.ndarray, highs: np.ndarray, lows: np.ndarray, fee: float, slippage: float,
) -> tuple[float, ...]:
    """The trade's return under each stop of :data:`STOP_ATR`, replayed on the candles it was held through.

    ``opens``/``highs``/``lows`` are the candles after the entry candle up to and including the exit candle.
    A stop ``d`` sits at ``entry - d * atr`` for a long (``+`` for a short); the first candle reaching it
    closes the trade at the stop, or at the open when the candle opens beyond it, moved against the trade by
    ``slippage``; the fee is charged on entry and exit notional as on the logged trade. Without a usable ATR
    or candles, or for the ``None`` stop, the return is the logged ``pnl_pct``.
    """
    direction = 1 if side == "long" else -1
    out: list[float] = []
    for distance in STOP_ATR:
        if distance is None or not (math.isfinite(atr) and atr > 0) or len(lows) == 0:
            out.append(float(pnl_pct))
            continue
        level = entry - direction * distance * atr
        touched = lows <= level if direction == 1 else highs >= level
        hits = np.flatnonzero(touched)
        if hits.size == 0:
            out.append(float(pnl_pct))
            continue
        first = int(hits[0])
        price = min(opens[first], level) if direction == 1 else max(opens[first], level)
        fill = price * (1.0 - slippage) if direction == 1 else price * (1.0 + slippage)
        out.append(direction * (fill - entry) / entry - fee * (entry + fill) / entry)
    return tuple(out)
