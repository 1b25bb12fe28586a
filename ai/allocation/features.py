"""The 42 state features of the strategy-weight agent, computed from data up to the decision time only.

Time is cut into rebalancing periods of length ``P`` (``strategy_agent.rebalance_period``) on a grid that ends
at an anchor time: boundaries ``t_k = end - (n - k) * P`` for ``k = 0..n``, and period ``k`` is the half-open
interval ``(t_k, t_{k+1}]``. The decision at boundary ``t_k`` sees every trade with ``closed_at <= t_k`` and
every candle that has closed by then (open time + timeframe ``<= t_k``), and nothing later: appending future
trades or candles never changes it. A strategy's return in a period is the **sum** of ``pnl_pct`` of its
trades closed in that period (the aggregation of :mod:`analytics.portfolio_optimizer`, on the rebalancing
period instead of the day); periods without trades, including those before the first trade, count as 0.

``L`` is ``strategy_agent.window_periods`` (30: 30 days with daily rebalancing); ``K`` is
``strategy_agent.recent_periods`` (3); ``M`` is
``strategy_agent.market_window_candles`` of the primary symbol (the first of ``market.symbols``);
``S = sharpe_scale``, ``R = pnl_scale``, ``D = drawdown_scale`` are the config's units. Every feature is
clipped to [-5, 5] and is 0 where it is undefined (warm-up, no trades, no usable candles), so the vector is
always finite. Sharpe ratios are :func:`analytics.metrics.sharpe_ratio` (annualized with the periods per year
of their own step), drawdowns come from :func:`analytics.metrics.max_drawdown` / ``drawdown_series``.

=====  ======================  ====================================================================  =========================
index  name                    definition (at decision time t)                                       scaling
=====  ======================  ====================================================================  =========================
**market** (primary symbol's candles; trade statistics over all 8 strategies)
0      mkt_volatility          annualized realized volatility of the last M candle log returns       2 * ln(vol / 0.5)
1      mkt_trend               signed efficiency ratio over M candles (:func:`market.regime.trend_strength`)  as is, [-1, 1]
2      mkt_momentum            ln(close_t / close_{t-M}) over (candle volatility * sqrt(M))          as is (a z-score)
3      mkt_volume              ln(mean volume of the last M/7 candles / mean volume of the last M)   as is
4      mkt_drawdown            close_t / highest high of the last M candles - 1                      / D, in [-5, 0]
5      mkt_sharpe              Sharpe of the candle log returns of the last L periods                / S
6      mkt_win_rate            share of trades closed in the last L periods with pnl_pct > 0         2 * rate - 1
7      mkt_avg_pnl             mean pnl_pct of the trades closed in the last L periods               / R
**portfolio** (the sleeve the agent steers: weights of the last period applied to the strategies' returns)
8      pf_equity               log growth of the sleeve over the last L periods                      / 0.1
9      pf_cash_ratio           weight held in strategies that closed no trade in the last period     2 * ratio - 1
10     pf_position_count       strategies holding at least half the equal weight (1/16)              count / 4 - 1
11     pf_drawdown             sleeve's drawdown from its peak within the last L periods             / D, in [-5, 0]
12     pf_total_pnl            sleeve's return in the last period (after turnover costs)             / R
13     pf_diversity            effective number of strategies 1 / sum(w^2) of the current weights    (n_eff - 1) / 3.5 - 1
**strategy performance** (period returns of each strategy over the last L periods)
14-21  sharpe_<strategy>       rolling Sharpe ratio, in the order of ``core.config.STRATEGIES``      / S
22-29  drawdown_<strategy>     rolling maximum drawdown, same order                                  / D, in [-5, 0]
**regime** (primary symbol's candles)
30     reg_bull_bear           +1 when SMA(M/4) of the close is above SMA(M), else -1                as is
31     reg_volatility          volatility regime -1/0/+1 (:func:`market.regime.volatility_regime`,       as is
                               window M/7, look-back M)
32     reg_stability           share of the last M candles with the current regime label             2 * share - 1
                               (:func:`market.regime.classify_regime`)
33     reg_trend_strength      ADX (14, Wilder) of the current candle                                ADX / 25 - 1
**recent strategy performance** (the last K periods against the strategy's own variability)
34-41  recent_<strategy>       mean return of the last K periods over (std of the last L) / sqrt(K)  as is (a t-statistic)
=====  ======================  ====================================================================  =========================

The recent block is there because strategy edges come and go with the market's regime: the last few periods
say which strategies earn now far sooner than a Sharpe ratio over L periods does (on planted histories it
carried most of what the agent learned; see ``scripts/bench_learning.py --agent allocation``).

Candle features are 0 when no candle has closed by ``t`` or the last closed one is older than one rebalancing
period (or one candle, if longer): stale prices say nothing about the market now.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analytics.metrics import drawdown_series, max_drawdown, periods_per_year_for, sharpe_ratio
from core.config import STRATEGIES, StrategyAgentConfig
from core.timeframes import timeframe_to_ms
from market import indicators as ind
from market import regime

FEATURE_NAMES: tuple[str, ...] = (
    "mkt_volatility", "mkt_trend", "mkt_momentum", "mkt_volume",
    "mkt_drawdown", "mkt_sharpe", "mkt_win_rate", "mkt_avg_pnl",
    "pf_equity", "pf_cash_ratio", "pf_position_count", "pf_drawdown", "pf_total_pnl", "pf_diversity",
    *(f"sharpe_{s}" for s in STRATEGIES),
    *(f"drawdown_{s}" for s in STRATEGIES),
    "reg_bull_bear", "reg_volatility", "reg_stability", "reg_trend_strength",
    *(f"recent_{s}" for s in STRATEGIES),
)
"""The 42 feature names, in observation order."""
N_FEATURES = len(FEATURE_NAMES)
N_STRATEGIES = len(STRATEGIES)
FEATURE_CLIP = 5.0
"""Every feature lies in [-FEATURE_CLIP, FEATURE_CLIP]."""
MARKET = slice(0, 8)
PORTFOLIO = slice(8, 14)
STRATEGY = slice(14, 30)
REGIME = slice(30, 34)
RECENT = slice(34, 42)
CANDLE_FEATURES = (0, 1, 2, 3, 4, 5, 30, 31, 32, 33)
"""Indexes of the features computed from candles (0 when the candles are missing or stale)."""
GROWTH_UNIT = 0.1
"""Log growth of the sleeve that counts as 1 in ``pf_equity``."""
VOLATILITY_UNIT = 0.5
"""Annualized volatility that counts as 0 in ``mkt_volatility`` (2 * ln(vol / 0.5))."""
ADX_UNIT = 25.0
"""ADX that counts as 0 in ``reg_trend_strength`` (the usual threshold of a trending market)."""
EQUAL_WEIGHTS = np.full(N_STRATEGIES, 1.0 / N_STRATEGIES)

assert N_FEATURES == 42


def clip_features(values: np.ndarray) -> np.ndarray:
    """NaN and infinities to 0 (an undefined feature is neutral), then clipped to [-5, 5]."""
    finite = np.where(np.isfinite(values), values, 0.0)
    return np.clip(finite, -FEATURE_CLIP, FEATURE_CLIP)


def to_ms(stamps: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Aware timestamps as int64 milliseconds since 1970 (UTC)."""
    index = pd.DatetimeIndex(stamps)
    if index.tz is None:
        index = index.tz_localize("UTC")
    return ((index - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(dtype=np.int64)


# ---------------------------------------------------------------------------------------------- trades


@dataclass(frozen=True)
class TradeArrays:
    """Closed trades of the 8 strategies as arrays sorted by close time."""

    closed_ms: np.ndarray
    strategy: np.ndarray
    pnl_pct: np.ndarray

    @classmethod
    def from_frame(cls, trades: pd.DataFrame) -> TradeArrays:
        """From a history frame (:func:`core.contracts.pnl_history.read_history`); other books are dropped."""
        ours = trades[trades["strategy"].isin(STRATEGIES)]
        index = {name: i for i, name in enumerate(STRATEGIES)}
        closed = to_ms(ours["closed_at"]) if len(ours) else np.zeros(0, dtype=np.int64)
        strategy = ours["strategy"].map(index).to_numpy(dtype=np.int64)
        pnl = ours["pnl_pct"].to_numpy(dtype=np.float64)
        order = np.argsort(closed, kind="stable")
        return cls(closed[order], strategy[order], pnl[order])

    def __len__(self) -> int:
        return len(self.closed_ms)


@dataclass(frozen=True)
class PeriodGrid:
    """Boundaries ``t_k = end_ms - (n - k) * period_ms``, ``k = 0..n``; period ``k`` is ``(t_k, t_{k+1}]``."""

    end_ms: int
    period_ms: int
    n: int

    @property
    def boundaries(self) -> np.ndarray:
        return self.end_ms - (self.n - np.arange(self.n + 1, dtype=np.int64)) * self.period_ms

    @property
    def start_ms(self) -> int:
        return self.end_ms - self.n * self.period_ms

    def period_of(self, closed_ms: np.ndarray) -> np.ndarray:
        """Period index of each close time (-1 before the grid, ``n`` after it)."""
        k = (closed_ms - self.start_ms - 1) // self.period_ms
        return np.clip(k, -1, self.n)


def grid_covering(trades: TradeArrays, end_ms: int, period_ms: int, max_periods: int | None = None) -> PeriodGrid:
    """The grid ending at ``end_ms`` whose first period starts before the first trade closed at or before it.

    ``max_periods`` keeps only the last periods (inference needs a few windows, not the whole history).
    """
    usable = trades.closed_ms[trades.closed_ms <= end_ms]
    n = 1 if len(usable) == 0 else int((end_ms - int(usable[0])) // period_ms) + 1
    if max_periods is not None:
        n = min(n, max_periods)
    return PeriodGrid(int(end_ms), int(period_ms), max(n, 1))


@dataclass(frozen=True)
class PeriodStats:
    """Per-period sums on a grid: strategy returns, trade counts and winning trades, each ``(n, 8)``."""

    returns: np.ndarray
    counts: np.ndarray
    wins: np.ndarray


def bucket_trades(trades: TradeArrays, grid: PeriodGrid) -> PeriodStats:
    """Sum each strategy's ``pnl_pct``, trades and wins per period; trades outside the grid are left out."""
    shape = (grid.n, N_STRATEGIES)
    returns, counts, wins = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    k = grid.period_of(trades.closed_ms)
    inside = (k >= 0) & (k < grid.n)
    rows, cols, pnl = k[inside], trades.strategy[inside], trades.pnl_pct[inside]
    np.add.at(returns, (rows, cols), pnl)
    np.add.at(counts, (rows, cols), 1.0)
    np.add.at(wins, (rows, cols), (pnl > 0).astype(np.float64))
    return PeriodStats(returns, counts, wins)


def window(values: np.ndarray, k: int, length: int) -> np.ndarray:
    """Rows ``k - length .. k - 1`` of ``values`` (the ``length`` periods before boundary ``k``), zero-padded
    in front where the grid starts later."""
    lo = k - length
    if lo >= 0:
        return values[lo:k]
    pad = np.zeros((-lo, *values.shape[1:]), dtype=values.dtype)
    return np.concatenate([pad, values[:k]])


# ---------------------------------------------------------------------------------------------- candles


@dataclass(frozen=True)
class CandleFeatures:
    """The candle features of every candle (causal), and when each candle closed."""

    close_ms: np.ndarray
    values: np.ndarray
    """``(n_candles, 10)``: features 0-5 and 30-33 in :data:`CANDLE_FEATURES` order, already scaled."""
    max_age_ms: int

    def at(self, t_ms: int) -> np.ndarray:
        """The values of the last candle closed at or before ``t_ms``; zeros when none is recent enough."""
        i = int(np.searchsorted(self.close_ms, t_ms, side="right")) - 1
        if i < 0 or t_ms - int(self.close_ms[i]) > self.max_age_ms:
            return np.zeros(len(CANDLE_FEATURES))
        return self.values[i]


def candle_features(frame: pd.DataFrame | None, timeframe: str, calendar: str,
                    acfg: StrategyAgentConfig) -> CandleFeatures:
    """Per-candle market and regime features of one symbol's candle frame (see the module's table)."""
    candle_ms = timeframe_to_ms(timeframe)
    period_ms = timeframe_to_ms(acfg.rebalance_period)
    max_age = max(period_ms, candle_ms)
    if frame is None or len(frame) == 0:
        return CandleFeatures(np.zeros(0, dtype=np.int64), np.zeros((0, len(CANDLE_FEATURES))), max_age)
    m = acfg.market_window_candles
    short = max(2, m // 7)
    close = frame["close"].to_numpy(np.float64)
    high = frame["high"].to_numpy(np.float64)
    volume = frame["volume"].to_numpy(np.float64)
    ppy = periods_per_year_for(timeframe, calendar)
    rets = pd.Series(np.asarray(ind.log_returns(close)))
    vol_m = rets.rolling(m, min_periods=m).std(ddof=1).to_numpy()
    sharpe_window = max(2, int(acfg.window_periods * period_ms // candle_ms))
    roll = rets.rolling(sharpe_window, min_periods=sharpe_window)
    with np.errstate(divide="ignore", invalid="ignore"):
        columns = [
            2.0 * np.log(vol_m * math.sqrt(ppy) / VOLATILITY_UNIT),
            np.asarray(regime.trend_strength(close, m)),
            np.log(close / np.asarray(ind.shift(close, m))) / (vol_m * math.sqrt(m)),
            np.log(pd.Series(volume).rolling(short, min_periods=short).mean().to_numpy()
                   / pd.Series(volume).rolling(m, min_periods=m).mean().to_numpy()),
            np.minimum(close / pd.Series(high).rolling(m, min_periods=m).max().to_numpy() - 1.0, 0.0)
            / acfg.drawdown_scale,
            roll.mean().to_numpy() / roll.std(ddof=1).to_numpy() * math.sqrt(ppy) / acfg.sharpe_scale,
            *_regime_columns(frame, close, m, short),
        ]
    values = clip_features(np.stack(columns, axis=1))
    close_ms = frame["timestamp"].to_numpy(np.int64) + candle_ms
    return CandleFeatures(close_ms, values, max_age)


def _regime_columns(frame: pd.DataFrame, close: np.ndarray, m: int, short: int) -> list[np.ndarray]:
    fast, slow = np.asarray(ind.sma(close, max(2, m // 4))), np.asarray(ind.sma(close, m))
    bull_bear = np.where(np.isnan(slow), np.nan, np.where(fast > slow, 1.0, -1.0))
    vol_regime = np.asarray(regime.volatility_regime(close, window=short, lookback=m))
    table = regime.regime_table(frame.reset_index(drop=True))
    labels = table["regime"].to_numpy()
    one_hot = regime.regime_one_hot(labels)
    counts = pd.DataFrame(one_hot).rolling(m, min_periods=1).sum().to_numpy()
    seen = pd.Series(np.ones(len(labels))).rolling(m, min_periods=1).sum().to_numpy()
    current = counts[np.arange(len(labels)), one_hot.argmax(axis=1)]
    stability = 2.0 * current / seen - 1.0
    trend_strength = table["adx"].to_numpy(np.float64) / ADX_UNIT - 1.0
    return [bull_bear, vol_regime, stability, trend_strength]


# ---------------------------------------------------------------------------------------------- history


@dataclass(frozen=True)
class StrategyHistory:
    """Everything the environment needs, precomputed on one grid.

    ``base[k]`` holds the features at boundary ``k`` that do not depend on the agent's weights (market,
    strategy performance, regime); the portfolio block is filled in by :func:`portfolio_features`.
    """

    grid: PeriodGrid
    stats: PeriodStats
    base: np.ndarray
    periods_per_year: float
    n_trades: int
    first_trade_ms: int | None
    last_trade_ms: int | None

    @property
    def n_periods(self) -> int:
        return self.grid.n

    @property
    def returns(self) -> np.ndarray:
        return self.stats.returns

    def traded(self, k: int) -> np.ndarray:
        """Which strategies closed a trade in the period before boundary ``k`` (none before the grid)."""
        if k <= 0:
            return np.zeros(N_STRATEGIES, dtype=bool)
        return self.stats.counts[k - 1] > 0

    def data_range(self) -> dict[str, object]:
        """Plain-data description of the grid (for logs, checkpoints and published documents)."""
        return {
            "start": ms_to_iso(self.grid.start_ms), "end": ms_to_iso(self.grid.end_ms), "periods": self.n_periods,
            "trades": self.n_trades,
            "first_trade": None if self.first_trade_ms is None else ms_to_iso(self.first_trade_ms),
            "last_trade": None if self.last_trade_ms is None else ms_to_iso(self.last_trade_ms),
        }


def ms_to_iso(ms: int) -> str:
    """Milliseconds since 1970 as ISO-8601 UTC, to the millisecond when it has any."""
    stamp = pd.Timestamp(int(ms), unit="ms", tz="UTC")
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{int(ms) % 1000:03d}Z" if int(ms) % 1000 else f"{text}Z"


def build_history(trades: TradeArrays, candles: pd.DataFrame | None, acfg: StrategyAgentConfig, timeframe: str,
                  calendar: str, end_ms: int, max_periods: int | None = None,
                  last_boundaries: int | None = None) -> StrategyHistory:
    """The grid ending at ``end_ms`` with its period sums and the action-independent features of each boundary.

    Trades closed after ``end_ms`` and candles closed after it are never used. ``last_boundaries``: features
    only for that many boundaries at the end (inference replays the last periods; earlier rows stay 0).
    """
    period_ms = timeframe_to_ms(acfg.rebalance_period)
    grid = grid_covering(trades, end_ms, period_ms, max_periods)
    stats = bucket_trades(trades, grid)
    ppy = periods_per_year_for(acfg.rebalance_period, calendar)
    candle = _cached_candle_features(_closed_by(candles, timeframe, end_ms), timeframe, calendar, acfg)
    base = np.zeros((grid.n + 1, N_FEATURES))
    first = 0 if last_boundaries is None else max(0, grid.n + 1 - last_boundaries)
    for k, t_ms in enumerate(grid.boundaries):
        if k >= first:
            base[k] = base_features(stats, k, int(t_ms), candle, acfg, ppy)
    used = trades.closed_ms[(trades.closed_ms > grid.start_ms) & (trades.closed_ms <= end_ms)]
    return StrategyHistory(
        grid, stats, base, ppy, int(len(used)),
        int(used[0]) if len(used) else None, int(used[-1]) if len(used) else None,
    )


_CANDLE_CACHE: dict[tuple[Any, ...], CandleFeatures] = {}


def _cached_candle_features(frame: pd.DataFrame | None, timeframe: str, calendar: str,
                            acfg: StrategyAgentConfig) -> CandleFeatures:
    """:func:`candle_features`, remembered for the last candle frame seen: the inference daemon decides many
    times on the same candles between two candle closes, and these rolling features are most of a decision."""
    if frame is None or len(frame) == 0:
        return candle_features(frame, timeframe, calendar, acfg)
    ts = frame["timestamp"].to_numpy(np.int64)
    key = (timeframe, calendar, acfg.rebalance_period, acfg.market_window_candles, acfg.window_periods,
           acfg.drawdown_scale, acfg.sharpe_scale, len(frame), int(ts[0]), int(ts[-1]),
           *(float(frame[c].to_numpy(np.float64).sum()) for c in ("open", "high", "low", "close", "volume")))
    if key not in _CANDLE_CACHE:
        _CANDLE_CACHE.clear()
        _CANDLE_CACHE[key] = candle_features(frame, timeframe, calendar, acfg)
    return _CANDLE_CACHE[key]


def _closed_by(candles: pd.DataFrame | None, timeframe: str, end_ms: int) -> pd.DataFrame | None:
    # Candles closing after the grid's end cannot matter to any decision; dropping them keeps the work bounded.
    if candles is None or len(candles) == 0:
        return None
    closed = candles["timestamp"].to_numpy(np.int64) + timeframe_to_ms(timeframe) <= end_ms
    return candles.loc[closed].reset_index(drop=True)


def base_features(stats: PeriodStats, k: int, t_ms: int, candle: CandleFeatures, acfg: StrategyAgentConfig,
                  ppy: float) -> np.ndarray:
    """The market, strategy and regime features at boundary ``k`` (time ``t_ms``); the portfolio block is 0."""
    out = np.zeros(N_FEATURES)
    out[list(CANDLE_FEATURES)] = candle.at(t_ms)
    out[6], out[7] = trade_statistics(window(stats.counts, k, acfg.window_periods),
                                      window(stats.wins, k, acfg.window_periods),
                                      window(stats.returns, k, acfg.window_periods), acfg)
    returns = window(stats.returns, k, acfg.window_periods)
    out[STRATEGY] = strategy_performance(returns, ppy, acfg)
    out[RECENT] = recent_performance(returns, acfg.recent_periods)
    return clip_features(out)


def trade_statistics(counts: np.ndarray, wins: np.ndarray, returns: np.ndarray,
                     acfg: StrategyAgentConfig) -> tuple[float, float]:
    """(scaled win rate, scaled mean ``pnl_pct``) of every trade in the window; (0, 0) without trades."""
    n = float(counts.sum())
    if n == 0:
        return 0.0, 0.0
    return 2.0 * float(wins.sum()) / n - 1.0, float(returns.sum()) / n / acfg.pnl_scale


def strategy_performance(returns: np.ndarray, ppy: float, acfg: StrategyAgentConfig) -> np.ndarray:
    """Scaled rolling Sharpe ratios (8) then scaled maximum drawdowns (8) of a ``(L, 8)`` window of returns."""
    sharpe = [sharpe_ratio(returns[:, i], ppy) / acfg.sharpe_scale for i in range(N_STRATEGIES)]
    drawdown = [max_drawdown(returns[:, i]) / acfg.drawdown_scale for i in range(N_STRATEGIES)]
    return clip_features(np.array(sharpe + drawdown))


def recent_performance(returns: np.ndarray, recent: int) -> np.ndarray:
    """Per strategy: mean return of the last ``recent`` rows of a ``(L, 8)`` window over the window's standard
    deviation, times ``sqrt(recent)`` (a t-statistic of the recent mean; 0 where the window is constant)."""
    k = min(recent, len(returns))
    if k == 0 or len(returns) < 2:
        return np.zeros(N_STRATEGIES)
    std = returns.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = returns[-k:].mean(axis=0) / std * math.sqrt(k)
    return clip_features(np.where(std > 0, t, 0.0))


# ---------------------------------------------------------------------------------------------- portfolio


def portfolio_features(sleeve_returns: Sequence[float], weights: np.ndarray, traded_last: np.ndarray,
                       acfg: StrategyAgentConfig) -> np.ndarray:
    """The 6 portfolio features from the sleeve's last L period returns, its current weights and which
    strategies closed a trade in the last period (see the module's table)."""
    r = np.asarray(sleeve_returns, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    growth = float(np.sum(np.log1p(np.maximum(r, -1.0 + 1e-12)))) if r.size else 0.0
    drawdown = float(drawdown_series(r)[-1]) if r.size else 0.0
    effective = 1.0 / float(np.sum(w * w))
    out = np.array([
        growth / GROWTH_UNIT,
        2.0 * float(w[~traded_last].sum()) - 1.0,
        float(np.count_nonzero(w >= 0.5 / N_STRATEGIES)) / 4.0 - 1.0,
        min(drawdown, 0.0) / acfg.drawdown_scale,
        (float(r[-1]) if r.size else 0.0) / acfg.pnl_scale,
        (effective - 1.0) / 3.5 - 1.0,
    ])
    return clip_features(out)


def sanitize_weights(action: np.ndarray | Sequence[float]) -> np.ndarray:
    """Any action as weights on the simplex: NaN and negatives to 0, normalized; all zero gives equal weights."""
    a = np.asarray(action, dtype=np.float64).reshape(-1)
    if a.size != N_STRATEGIES:
        raise ValueError(f"expected {N_STRATEGIES} weights (one per strategy), got {a.size}")
    a = np.where(np.isfinite(a), a, 0.0)
    a = np.clip(a, 0.0, None)
    total = float(a.sum())
    if not math.isfinite(total) or total <= 0.0:
        return EQUAL_WEIGHTS.copy()
    return a / total
