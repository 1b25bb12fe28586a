"""The 8 trading strategies: a target position in [-1, 1] per candle, from data up to that candle only.

+1 is fully long, -1 fully short, 0 flat. The trader sizes the position by the strategy's allocation.
Every parameter is a field of :class:`core.config.StrategiesConfig` (``[strategies]`` in the TOML file).

The rules, each decided on the close of a candle:

* ``turtle_trading``: Donchian breakout. Long when the close exceeds the highest high of the previous
  ``turtle_entry_period`` candles, short below the lowest low. A long exits on a close below the lowest low of
  the previous ``turtle_exit_period`` candles or on the stop: ``turtle_atr_stop`` ATRs (Wilder,
  ``turtle_atr_period``, taken at entry) below the entry close. Shorts mirror this.
* ``mean_reversion_rsi``: long when the RSI falls below ``rsi_oversold`` until it is back at ``rsi_exit``;
  short above ``rsi_overbought`` until it is back at ``rsi_exit``.
* ``momentum_sma_crossover``: long while SMA(``sma_fast``) > SMA(``sma_slow``), short while below.
* ``breakout_trading``: range breakout out of a volatility squeeze. Armed when the Bollinger width ranked
  against its last ``breakout_squeeze_lookback`` values was at or below ``breakout_squeeze_quantile`` on one of
  the previous ``breakout_lookback`` candles; then a close above the highest high (below the lowest low) of
  the previous ``breakout_lookback`` candles goes long (short). Exit when the close crosses back over the
  middle Bollinger band.
* ``pairs_trading``: the spread is the log price ratio ``log(primary) - log(partner)`` (a hedge ratio of 1 in
  log terms: robust for two majors and free of the look-ahead of a full-sample regression); ``z`` is its
  rolling z-score over ``pairs_window`` candles. Only the primary symbol's leg is traded: long when
  ``z < -pairs_entry_z`` (the primary is cheap relative to its partner), short when ``z > pairs_entry_z``,
  flat again once ``|z| < pairs_exit_z``. The partner is ``pairs_symbol``, else the first other symbol given;
  without a partner the strategy stays flat.
* ``macd_momentum``: long while the MACD line is above its signal line and above zero, short while below
  both, flat otherwise.
* ``bollinger_bands``: mean reversion at the bands: long on a close below the lower band until the close is
  back at the middle band, short above the upper band likewise.
* ``vix_strategy``: crypto has no VIX, so the index is built from the market itself: the mean EWMA
  volatility of log returns (span ``vix_vol_window``; it reacts at once to a shock and decays as soon as the
  market calms, as an implied volatility does) over all the traded symbols, divided by its rolling median
  over ``vix_lookback`` candles (its normal level). A ratio at or above ``vix_spike_ratio`` is a fear spike.
  Spikes are bought as they revert: long when a spike happened within the last ``vix_spike_memory``
  candles, the ratio has since come down by ``vix_revert`` (a fraction) from its peak of those candles but
  is still above ``vix_exit_ratio``, and the primary's close is below its close ``vix_vol_window`` candles
  ago (the spike came with a sell-off). The long exits when the ratio is back to ``vix_exit_ratio`` or after
  ``vix_max_hold`` candles; a new entry needs a new spike. Long only.

Stateful rules (stops, entry/exit hysteresis, holding limits) run as causal loops over the candles; the
indicators under them are the vectorized causal functions of :mod:`market.indicators`. When
``allow_short`` is false no strategy opens a short.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from core.config import STRATEGIES, StrategiesConfig
from core.errors import DataError
from market import indicators as ind

StrategyFunc = Callable[[Mapping[str, pd.DataFrame], StrategiesConfig], np.ndarray]
"""A strategy: aligned candle frames (see :func:`align_frames`) and its parameters -> positions in [-1, 1]."""


# ------------------------------------------------------------------------------------------------- helpers


def _primary(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    return next(iter(frames.values()))


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype=np.float64)


def _previous_extremes(high: np.ndarray, low: np.ndarray, period: int) -> tuple[np.ndarray, np.ndarray]:
    """Highest high and lowest low of the ``period`` candles *before* each candle (a breakout level)."""
    upper, lower = ind.donchian_channel(high, low, period)
    return ind.shift(upper, 1), ind.shift(lower, 1)


def _hysteresis(
    long_entry: np.ndarray, long_exit: np.ndarray, short_entry: np.ndarray, short_exit: np.ndarray
) -> np.ndarray:
    """Positions of an enter/exit state machine: exits are checked before entries, so one candle can
    close a long and open a short."""
    out = np.zeros(len(long_entry))
    pos = 0
    rows = zip(long_entry.tolist(), long_exit.tolist(), short_entry.tolist(), short_exit.tolist(), strict=True)
    for i, (le, lx, se, sx) in enumerate(rows):
        if (pos == 1 and lx) or (pos == -1 and sx):
            pos = 0
        if pos == 0:
            pos = 1 if le else (-1 if se else 0)
        out[i] = pos
    return out


def _shorts(cfg: StrategiesConfig, condition: np.ndarray) -> np.ndarray:
    """A short-entry condition, disabled when shorts are not allowed."""
    return condition if cfg.allow_short else np.zeros_like(condition)


def _finish(positions: np.ndarray, cfg: StrategiesConfig) -> np.ndarray:
    """Undefined positions are flat; positions are clipped to [-1, 1] (to [0, 1] without shorts)."""
    out = np.nan_to_num(np.asarray(positions, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(out, -1.0 if cfg.allow_short else 0.0, 1.0)


# ---------------------------------------------------------------------------------------------- strategies


def turtle_trading(frames: Mapping[str, pd.DataFrame], cfg: StrategiesConfig) -> np.ndarray:
    """Donchian breakout with a fixed ATR stop and a shorter Donchian exit (see the module docstring)."""
    f = _primary(frames)
    high, low, close = _column(f, "high"), _column(f, "low"), _column(f, "close")
    entry_high, entry_low = _previous_extremes(high, low, cfg.turtle_entry_period)
    exit_high, exit_low = _previous_extremes(high, low, cfg.turtle_exit_period)
    atr = ind.atr(high, low, close, cfg.turtle_atr_period)
    positions = _turtle_loop(close, entry_high, entry_low, exit_high, exit_low, atr, cfg)
    return _finish(positions, cfg)


def _turtle_loop(
    close: np.ndarray,
    entry_high: np.ndarray,
    entry_low: np.ndarray,
    exit_high: np.ndarray,
    exit_low: np.ndarray,
    atr: np.ndarray,
    cfg: StrategiesConfig,
) -> np.ndarray:
    # The stop is fixed at entry from that candle's ATR, so the position is path dependent: a loop.
    out = np.zeros(len(close))
    pos, stop = 0, 0.0
    rows = zip(close.tolist(), entry_high.tolist(), entry_low.tolist(), exit_high.tolist(), exit_low.tolist(),
               atr.tolist(), strict=True)
    for i, (c, eh, el, xh, xl, n) in enumerate(rows):
        if pos == 1 and (c <= stop or c < xl):
            pos = 0
        elif pos == -1 and (c >= stop or c > xh):
            pos = 0
        if pos == 0 and n == n:  # n == n: the ATR is defined (not NaN)
            if c > eh:
                pos, stop = 1, c - cfg.turtle_atr_stop * n
            elif c < el and cfg.allow_short:
                pos, stop = -1, c + cfg.turtle_atr_stop * n
        out[i] = pos
    return out


def mean_reversion_rsi(frames: Mapping[str, pd.DataFrame], cfg: StrategiesConfig) -> np.ndarray:
    """Buy oversold RSI, sell overbought RSI, exit at the middle level."""
    rsi = ind.rsi(_column(_primary(frames), "close"), cfg.rsi_period)
    positions = _hysteresis(
        rsi < cfg.rsi_oversold, rsi >= cfg.rsi_exit, _shorts(cfg, rsi > cfg.rsi_overbought), rsi <= cfg.rsi_exit
    )
    return _finish(positions, cfg)


def momentum_sma_crossover(frames: Mapping[str, pd.DataFrame], cfg: StrategiesConfig) -> np.ndarray:
    """Long while the fast SMA is above the slow one, short while below."""
    close = _column(_primary(frames), "close")
    return _finish(np.sign(ind.sma(close, cfg.sma_fast) - ind.sma(close, cfg.sma_slow)), cfg)


def breakout_trading(frames: Mapping[str, pd.DataFrame], cfg: StrategiesConfig) -> np.ndarray:
    """Break of the recent range right after a volatility squeeze; exit at the middle band."""
    f = _primary(frames)
    high, low, close = _column(f, "high"), _column(f, "low"), _column(f, "close")
    range_high, range_low = _previous_extremes(high, low, cfg.breakout_lookback)
    bands = ind.bollinger_bands(close, cfg.bollinger_period, cfg.bollinger_std)
    armed = _recent_squeeze(np.asarray(bands.width), cfg)
    middle = np.asarray(bands.middle)
    positions = _hysteresis(
        armed & (close > range_high), close < middle, _shorts(cfg, armed & (close < range_low)), close > middle
    )
    return _finish(positions, cfg)


def _recent_squeeze(width: np.ndarray, cfg: StrategiesConfig) -> np.ndarray:
    """True where the band width ranked low on one of the ``breakout_lookback`` candles before this one."""
    lookback = cfg.breakout_squeeze_lookback
    ranks = pd.Series(width).rolling(lookback, min_periods=lookback).rank(pct=True)
    squeezed = (ranks <= cfg.breakout_squeeze_quantile).astype(np.float64)
    recent = squeezed.shift(1).rolling(cfg.breakout_lookback, min_periods=1).max()
    return recent.fillna(0.0).to_numpy() > 0


def pairs_trading(frames: Mapping[str, pd.DataFrame], cfg: StrategiesConfig) -> np.ndarray:
    """Trade the primary leg of the log price spread against the partner (the second frame)."""
    if len(frames) < 2:
        return np.zeros(len(_primary(frames)))
    primary, partner = list(frames.values())[:2]
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.log(_column(primary, "close")) - np.log(_column(partner, "close"))
    z = ind.rolling_zscore(spread, cfg.pairs_window)
    positions = _hysteresis(
        z < -cfg.pairs_entry_z, z >= -cfg.pairs_exit_z, _shorts(cfg, z > cfg.pairs_entry_z), z <= cfg.pairs_exit_z
    )
    return _finish(positions, cfg)


def macd_momentum(frames: Mapping[str, pd.DataFrame], cfg: StrategiesConfig) -> np.ndarray:
    """Long when the MACD line is above both its signal and zero, short when below both."""
    m = ind.macd(_column(_primary(frames), "close"), cfg.macd_fast, cfg.macd_slow, cfg.macd_signal)
    line, hist = np.asarray(m.line), np.asarray(m.histogram)
    return _finish(np.where((hist > 0) & (line > 0), 1.0, np.where((hist < 0) & (line < 0), -1.0, 0.0)), cfg)


def bollinger_bands(frames: Mapping[str, pd.DataFrame], cfg: StrategiesConfig) -> np.ndarray:
    """Fade closes outside the bands, exit at the middle band."""
    close = _column(_primary(frames), "close")
    bands = ind.bollinger_bands(close, cfg.bollinger_period, cfg.bollinger_std)
    middle = np.asarray(bands.middle)
    positions = _hysteresis(
        close < bands.lower, close >= middle, _shorts(cfg, close > bands.upper), close <= middle
    )
    return _finish(positions, cfg)


def volatility_index(frames: Mapping[str, pd.DataFrame], span: int) -> np.ndarray:
    """Mean EWMA volatility (see :func:`market.indicators.ewma_volatility`) over the symbols defined at each candle."""
    vols = np.stack([ind.ewma_volatility(_column(f, "close"), span) for f in frames.values()])
    defined = np.isfinite(vols)
    count = defined.sum(axis=0)
    total = np.where(defined, vols, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def vix_strategy(frames: Mapping[str, pd.DataFrame], cfg: StrategiesConfig) -> np.ndarray:
    """Buy spikes of the market's own volatility index as they revert (long only)."""
    close = _column(_primary(frames), "close")
    index = volatility_index(frames, cfg.vix_vol_window)
    normal = pd.Series(index).rolling(cfg.vix_lookback, min_periods=cfg.vix_lookback).median().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = index / normal
    steps = np.arange(len(ratio))
    last_spike = np.maximum.accumulate(np.where(ratio >= cfg.vix_spike_ratio, steps, -1)) if len(ratio) else steps
    recent = (last_spike >= 0) & (steps - last_spike < cfg.vix_spike_memory)
    peak = pd.Series(ratio).rolling(cfg.vix_spike_memory, min_periods=1).max().to_numpy()
    reverting = (ratio <= peak * (1.0 - cfg.vix_revert)) & (ratio > cfg.vix_exit_ratio)
    sold_off = close < ind.shift(close, cfg.vix_vol_window)
    exits = ratio <= cfg.vix_exit_ratio
    return _finish(_vix_loop(recent & reverting & sold_off, exits, last_spike, cfg.vix_max_hold), cfg)


def _vix_loop(entry: np.ndarray, exit_: np.ndarray, last_spike: np.ndarray, max_hold: int) -> np.ndarray:
    # Holding time and "a new spike since the last exit" are state: a loop.
    out = np.zeros(len(entry))
    pos, held, last_exit = 0, 0, -1
    for i, (enter, leave, spike) in enumerate(zip(entry.tolist(), exit_.tolist(), last_spike.tolist(), strict=True)):
        if pos == 1:
            held += 1
            if leave or held >= max_hold:
                pos, last_exit = 0, i
        elif enter and spike > last_exit:
            pos, held = 1, 0
        out[i] = pos
    return out


STRATEGY_FUNCS: dict[str, StrategyFunc] = {
    "turtle_trading": turtle_trading,
    "mean_reversion_rsi": mean_reversion_rsi,
    "momentum_sma_crossover": momentum_sma_crossover,
    "breakout_trading": breakout_trading,
    "pairs_trading": pairs_trading,
    "macd_momentum": macd_momentum,
    "bollinger_bands": bollinger_bands,
    "vix_strategy": vix_strategy,
}
"""The strategies by name, in the order of :data:`core.config.STRATEGIES`."""

if tuple(STRATEGY_FUNCS) != STRATEGIES:  # pragma: no cover - guards the contract at import time
    raise RuntimeError("STRATEGY_FUNCS must list core.config.STRATEGIES in the same order")


# ------------------------------------------------------------------------------------------------ alignment


def pair_partner(symbols: list[str], primary: str, pairs_symbol: str = "") -> str | None:
    """The other leg of pairs_trading: ``pairs_symbol`` when set, else the first symbol that is not the primary."""
    if pairs_symbol and pairs_symbol != primary:
        if pairs_symbol not in symbols:
            raise DataError(
                f"strategies.pairs_symbol {pairs_symbol!r} has no candles (have: {', '.join(symbols)}); "
                "load its candles or clear strategies.pairs_symbol"
            )
        return pairs_symbol
    return next((s for s in symbols if s != primary), None)


def align_frames(
    frames: Mapping[str, pd.DataFrame], primary: str, pairs_symbol: str = ""
) -> dict[str, pd.DataFrame]:
    """Every frame on the primary's timestamps, in the order primary, pair partner, the others.

    Other symbols take, at each primary timestamp, their last candle at or before it (forward fill only, never
    a later candle); before their first candle their values are NaN. This is the input every strategy
    function expects.
    """
    if primary not in frames:
        raise DataError(f"primary symbol {primary!r} has no candles (have: {', '.join(frames)}); load its candles")
    for symbol, frame in frames.items():
        ind.check_candle_frame(frame, f"candles of {symbol}")
    partner = pair_partner(list(frames), primary, pairs_symbol)
    order = [primary] + ([partner] if partner else []) + [s for s in frames if s not in (primary, partner)]
    base = frames[primary].reset_index(drop=True)
    timestamps = base["timestamp"].to_numpy(dtype=np.int64)
    aligned = {primary: _numeric(base, timestamps)}
    for symbol in order[1:]:
        other = frames[symbol].set_index(frames[symbol]["timestamp"].to_numpy(dtype=np.int64))
        values = other.reindex(timestamps, method="ffill").reset_index(drop=True)
        aligned[symbol] = _numeric(values, timestamps)
    return aligned


def _numeric(frame: pd.DataFrame, timestamps: np.ndarray) -> pd.DataFrame:
    data = {c: frame[c].to_numpy(dtype=np.float64) for c in ind.CANDLE_COLUMNS[1:]}
    return pd.DataFrame({"timestamp": timestamps, **data})


def compute_signals(frames: Mapping[str, pd.DataFrame], primary: str, cfg: StrategiesConfig) -> pd.DataFrame:
    """Target positions of the 8 strategies on every candle of ``primary``.

    Columns: ``timestamp`` (the primary's) and one float column per strategy, in the order of
    :data:`core.config.STRATEGIES`. Raises :class:`DataError` when the primary is missing or a frame lacks a
    candle column or is out of order.
    """
    aligned = align_frames(frames, primary, cfg.pairs_symbol)
    signals = {"timestamp": aligned[primary]["timestamp"].to_numpy()}
    for name, func in STRATEGY_FUNCS.items():
        signals[name] = func(aligned, cfg)
    return pd.DataFrame(signals)
