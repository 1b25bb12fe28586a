"""The 56 market features of the trading agent, computed once per candle frame, vectorized and causal.

The value at candle ``k`` uses candles ``0..k`` only, so appending candles never changes a past value; the
layout, scaling and defaults are the table of :mod:`ai.trading.features`. Besides the scaled values a
:class:`MarketFeatures` keeps what the environment's reward needs: closes, the high-volatility flag and the
regime direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ai.trading.features import MARKET_FEATURES, safe_ratio, scale_raw
from core.errors import DataError
from market import indicators as ind
from market.regime import (
    BREAKOUT,
    MEAN_REVERSION,
    REGIMES,
    TREND,
    regime_table,
    trend_strength,
    volatility_percentile,
)

MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class MarketFeatures:
    """Market features of a candle frame, computed once: scaled values and what the reward needs."""

    timestamps: np.ndarray
    """Open times (int64 ms), one per candle."""
    closes: np.ndarray
    """Closes (float64)."""
    values: np.ndarray
    """Scaled market features, ``(n, len(MARKET_FEATURES))`` float32."""
    high_volatility: np.ndarray
    """True where volatility_percentile is above the threshold (the reward's position penalty applies)."""
    direction: np.ndarray
    """Regime direction in {-1, 0, +1} (see the module docstring)."""
    regimes: np.ndarray
    """Regime label per candle (object array of :data:`market.regime.REGIMES`)."""
    segment: np.ndarray | None = None
    """Segment number per candle when the features join separate stretches of candles (None: one stretch);
    an episode never crosses from one segment to the next."""

    def __len__(self) -> int:
        return len(self.timestamps)


def concat_features(parts: list[MarketFeatures]) -> MarketFeatures:
    """Features of separate stretches of candles (each computed on its own), joined with segment numbers."""
    if not parts:
        raise DataError("no candle stretches to join")
    return MarketFeatures(
        timestamps=np.concatenate([p.timestamps for p in parts]),
        closes=np.concatenate([p.closes for p in parts]),
        values=np.concatenate([p.values for p in parts]),
        high_volatility=np.concatenate([p.high_volatility for p in parts]),
        direction=np.concatenate([p.direction for p in parts]),
        regimes=np.concatenate([p.regimes for p in parts]),
        segment=np.concatenate([np.full(len(p), i, dtype=np.int64) for i, p in enumerate(parts)]),
    )



def _change(close: np.ndarray, periods: int) -> np.ndarray:
    return safe_ratio(close, np.asarray(ind.shift(close, periods))) - 1.0


def _channel_position(close: np.ndarray, high: np.ndarray, low: np.ndarray, period: int) -> np.ndarray:
    upper, lower = (np.asarray(x) for x in ind.donchian_channel(high, low, period))
    width = upper - lower
    position = safe_ratio(close - lower, width)
    return np.where(width == 0, 0.5, position)  # a flat channel: the close sits in its middle


def time_features(timestamps_ms: np.ndarray) -> dict[str, np.ndarray]:
    """Hour of day and weekday (Monday = 0, UTC) as sine/cosine pairs."""
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    hour_angle = 2 * np.pi * (ts % MS_PER_DAY) / MS_PER_DAY
    weekday = ((ts // MS_PER_DAY) + 3) % 7  # 1970-01-01 was a Thursday
    day_angle = 2 * np.pi * weekday / 7
    return {"time_of_day_sin": np.sin(hour_angle), "time_of_day_cos": np.cos(hour_angle),
            "day_of_week_sin": np.sin(day_angle), "day_of_week_cos": np.cos(day_angle)}


def regime_direction(regimes: np.ndarray, trend: np.ndarray, close: np.ndarray, middle: np.ndarray,
                     zscore: np.ndarray) -> np.ndarray:
    """+1/-1 for the side each candle's regime favours, 0 for RANGE or when undefined."""
    sign_trend = np.sign(np.nan_to_num(trend))
    sign_break = np.sign(np.nan_to_num(close - middle))
    sign_fade = -np.sign(np.nan_to_num(zscore))
    return np.select([regimes == TREND, regimes == BREAKOUT, regimes == MEAN_REVERSION],
                     [sign_trend, sign_break, sign_fade], default=0.0).astype(np.float64)


def raw_market_features(candles: pd.DataFrame, high_volatility_percentile: float = 0.8) -> pd.DataFrame:
    """Unscaled market features, one column per entry of :data:`MARKET_FEATURES` (NaN in warm-ups), plus
    the helper columns ``_direction`` and ``_regime``."""
    ind.check_candle_frame(candles, "trading features input")
    o, h, lo, c, v = (candles[col].to_numpy(np.float64) for col in ("open", "high", "low", "close", "volume"))
    ts = candles["timestamp"].to_numpy(np.int64)
    table = regime_table(candles.reset_index(drop=True))
    regimes = table["regime"].to_numpy(dtype=object)
    log_ret = np.asarray(ind.log_returns(c))
    ret1 = _change(c, 1)
    vol24 = np.asarray(ind.realized_volatility(c, 24))
    line, signal, hist = (np.asarray(x) for x in ind.macd(c))
    bands = ind.bollinger_bands(c, 20, 2.0)
    dm = ind.directional_movement(h, lo, c, 14)
    vol_pct = np.asarray(volatility_percentile(c, 24, 240))
    sma20, sma50, sma100 = (np.asarray(ind.sma(c, p)) for p in (20, 50, 100))
    volume_sma20 = np.asarray(ind.sma(v, 20))
    zscore20 = np.asarray(ind.rolling_zscore(c, 20))
    up = np.where(np.isnan(ret1), np.nan, (ret1 > 0).astype(np.float64))
    flow = np.nan_to_num(np.sign(ret1)) * v
    raw: dict[str, np.ndarray] = {
        "price_change_1": ret1,
        "price_change_5": _change(c, 5),
        "price_change_15": _change(c, 15),
        "volatility": vol24,
        "rsi": np.asarray(ind.rsi(c, 14)),
        "macd": safe_ratio(line, c),
        **{f"regime_{name.lower()}": (regimes == name).astype(np.float64) for name in REGIMES},
        "trend_strength": table["trend_strength"].to_numpy(np.float64),
        "volume_ratio": safe_ratio(v, volume_sma20),
        "spread": safe_ratio(h - lo, c),
        **time_features(ts),
        "price_change_30": _change(c, 30),
        "price_change_60": _change(c, 60),
        "price_change_prev_1": np.asarray(ind.shift(ret1, 1)),
        "price_change_prev_2": np.asarray(ind.shift(ret1, 2)),
        "ewma_volatility": np.asarray(ind.ewma_volatility(c, 24)),
        "volatility_ratio": safe_ratio(np.asarray(ind.realized_volatility(c, 12)), np.asarray(ind.realized_volatility(c, 48))),
        "volatility_percentile": vol_pct,
        "atr_ratio": safe_ratio(np.asarray(ind.atr(h, lo, c, 14)), c),
        "adx": np.asarray(dm.adx),
        "di_spread": np.asarray(dm.plus_di) - np.asarray(dm.minus_di),
        "rsi_7": np.asarray(ind.rsi(c, 7)),
        "rsi_28": np.asarray(ind.rsi(c, 28)),
        "macd_signal": safe_ratio(signal, c),
        "macd_histogram": safe_ratio(hist, c),
        "bollinger_percent_b": np.asarray(bands.percent_b),
        "bollinger_width": np.asarray(bands.width),
        "close_sma20": safe_ratio(c, sma20) - 1.0,
        "close_sma50": safe_ratio(c, sma50) - 1.0,
        "close_sma100": safe_ratio(c, sma100) - 1.0,
        "sma20_sma50": safe_ratio(sma20, sma50) - 1.0,
        "zscore_20": zscore20,
        "donchian_20": _channel_position(c, h, lo, 20),
        "donchian_55": _channel_position(c, h, lo, 55),
        "distance_high_50": safe_ratio(c, np.asarray(ind.donchian_channel(h, lo, 50)[0])) - 1.0,
        "distance_low_50": safe_ratio(c, np.asarray(ind.donchian_channel(h, lo, 50)[1])) - 1.0,
        "candle_body": safe_ratio(c - o, o),
        "upper_wick": safe_ratio(h - np.maximum(o, c), c),
        "lower_wick": safe_ratio(np.minimum(o, c) - lo, c),
        "volume_zscore_50": np.asarray(ind.rolling_zscore(v, 50)),
        "volume_trend": safe_ratio(np.asarray(ind.sma(v, 5)), volume_sma20),
        "return_autocorr_30": table["autocorr"].to_numpy(np.float64),
        "rsi_swing_30": table["rsi_swing"].to_numpy(np.float64),
        "bollinger_squeeze": table["squeeze"].to_numpy(np.float64),
        "bollinger_expansion": table["expansion"].to_numpy(np.float64),
        "return_skew_30": pd.Series(log_ret).rolling(30, min_periods=30).skew().to_numpy(),
        "up_share_14": pd.Series(up).rolling(14, min_periods=14).mean().to_numpy(),
        "high_volatility": np.where(np.isnan(vol_pct), np.nan, (vol_pct > high_volatility_percentile) * 1.0),
        "money_flow_20": safe_ratio(pd.Series(flow).rolling(20, min_periods=20).sum().to_numpy(),
                                pd.Series(v).rolling(20, min_periods=20).sum().to_numpy()),
        "efficiency_60": np.asarray(trend_strength(c, 60)),
    }
    frame = pd.DataFrame({spec.name: raw[spec.name] for spec in MARKET_FEATURES}, index=candles.index)
    frame["_direction"] = regime_direction(regimes, raw["trend_strength"], c, np.asarray(bands.middle), zscore20)
    frame["_regime"] = regimes
    return frame


def compute_market_features(candles: pd.DataFrame, high_volatility_percentile: float = 0.8) -> MarketFeatures:
    """All market features of a candle frame, scaled, in one vectorized pass (see the module docstring)."""
    if len(candles) < 2:
        raise DataError(f"trading features need at least 2 candles, got {len(candles)}")
    raw = raw_market_features(candles, high_volatility_percentile)
    names = [spec.name for spec in MARKET_FEATURES]
    return MarketFeatures(
        timestamps=candles["timestamp"].to_numpy(np.int64),
        closes=candles["close"].to_numpy(np.float64),
        values=scale_raw(raw[names].to_numpy(np.float64), MARKET_FEATURES),
        high_volatility=raw["high_volatility"].fillna(0.0).to_numpy() > 0,
        direction=raw["_direction"].to_numpy(np.float64),
        regimes=raw["_regime"].to_numpy(dtype=object),
    )

