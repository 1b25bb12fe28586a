"""The discretized state of the Q-learning agents: 11 features, each cut into a few named bins.

A state is the tuple of the 11 bin labels, in the order below; its key in the Q-tables is the labels joined by
``|`` (``TREND|high|up|strong|bull|inside|strong|small|mid|winning|0``), so a table reads with ``jq``.

Market features, from the candles of the trade's symbol at the last candle closed at the given time (every
indicator is causal, periods as in the ``[strategies]`` config so the agents see what the strategies see):

============  =========================================================================================
feature       bins
============  =========================================================================================
regime        ``TREND``, ``RANGE``, ``BREAKOUT``, ``MEAN_REVERSION`` (:func:`market.regime.classify_regime`)
volatility    ``low``, ``normal``, ``high``: :func:`market.regime.volatility_regime` (percentile of the 24-candle
              realized volatility among its last 240 values: <= 1/3, middle, > 2/3)
trend         ``strong_down`` < -0.6 <= ``down`` < -0.2 <= ``flat`` <= 0.2 < ``up`` <= 0.6 < ``strong_up``,
              on :func:`market.regime.trend_strength` (20-candle signed efficiency ratio, -1..1)
rsi           ``oversold`` < 30 <= ``weak`` < 45 <= ``neutral`` <= 55 < ``strong`` <= 70 < ``overbought``
macd          ``bear`` < -0.05 % <= ``flat`` <= 0.05 % < ``bull``, on the MACD histogram over the close
bollinger     ``below`` the lower band (%B < 0), ``inside``, ``above`` the upper band (%B > 1)
adx           ``weak`` < 20 <= ``moderate`` < 40 <= ``strong`` (Wilder's ADX, 14)
============  =========================================================================================

Account features, from the trades of the history closed at or before the given time (all symbols and books):

============  =========================================================================================
drawdown      ``none`` < 0.5 % <= ``small`` < 2 % <= ``medium`` < 5 % <= ``large``: the last
              ``equity_after`` below the running peak of ``equity_after``
win_rate      ``low`` < 40 % <= ``mid`` <= 60 % < ``high``: share of winning trades (``pnl_pct > 0``) among
              the last ``qlearning.recent_trades``
recent_pnl    ``losing`` < -0.25 % <= ``flat`` <= 0.25 % < ``winning``: mean ``pnl_pct`` of those trades
loss_streak   ``0``, ``1-2``, ``3+``: losing trades in a row ending with the newest one
============  =========================================================================================

Undefined values (indicator warm-up, no trades yet) fall in the neutral bin of their feature (``normal``,
``flat``, ``neutral``, ``inside``, ``weak``, ``none``, ``mid``, ``0``; ``RANGE`` for the regime), so every
time has a state. The product of the bin counts is 874,800 states; the tables hold only those met.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.config import Config
from core.errors import FatalError
from core.timeframes import timeframe_to_ms
from market import indicators as ind
from market.regime import REGIMES, classify_regime, trend_strength, volatility_regime
from market.sources import load_candles

log = logging.getLogger(__name__)

FEATURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("regime", REGIMES),
    ("volatility", ("low", "normal", "high")),
    ("trend", ("strong_down", "down", "flat", "up", "strong_up")),
    ("rsi", ("oversold", "weak", "neutral", "strong", "overbought")),
    ("macd", ("bear", "flat", "bull")),
    ("bollinger", ("below", "inside", "above")),
    ("adx", ("weak", "moderate", "strong")),
    ("drawdown", ("none", "small", "medium", "large")),
    ("win_rate", ("low", "mid", "high")),
    ("recent_pnl", ("losing", "flat", "winning")),
    ("loss_streak", ("0", "1-2", "3+")),
)
"""The 11 features and their bins, in state order."""
FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _ in FEATURES)
MARKET_FEATURES: tuple[str, ...] = FEATURE_NAMES[:7]
ACCOUNT_FEATURES: tuple[str, ...] = FEATURE_NAMES[7:]
STATE_SEPARATOR = "|"

TREND_EDGES = (-0.6, -0.2, 0.2, 0.6)
RSI_EDGES = (30.0, 45.0, 55.0, 70.0)
MACD_EDGE = 0.0005
ADX_EDGES = (20.0, 40.0)
DRAWDOWN_EDGES = (0.005, 0.02, 0.05)
WIN_RATE_EDGES = (0.4, 0.6)
RECENT_PNL_EDGE = 0.0025
ATR_PERIOD = 14
"""ATR period of the sizing agent's stop distances (Wilder)."""
WARMUP_CANDLES = 1500
"""Candles kept before the earliest time a pass looks at. The longest window is the volatility percentile's
(240 values of a 24-candle volatility); the recursive indicators (MACD's EMAs, RSI, ADX and ATR, Wilder's) have
forgotten their start long before 1,500 candles (a weight below 1e-40), so the bins equal those built from
the market's first candle."""

EXTEND_MARGIN = 500
"""Candles generated past the time asked for when a synthetic market is extended, so the next trades of the pass
do not extend it again (a fixed number: a share of the whole span would make a pass's memory follow it)."""

State = tuple[str, ...]
CandleLoader = Callable[..., dict[str, pd.DataFrame]]
"""Signature of :func:`market.sources.load_candles` (``(cfg, symbols, limit=...)``), replaceable in tests."""


def state_key(state: Sequence[str]) -> str:
    """The Q-table key of a state: its labels joined by ``|``."""
    return STATE_SEPARATOR.join(state)


def state_dict(state: Sequence[str]) -> dict[str, str]:
    """``{feature: bin}`` of a state (what the policy file shows)."""
    return dict(zip(FEATURE_NAMES, state, strict=True))


# ------------------------------------------------------------------------------------------- binning


def _cut(values: np.ndarray, edges: Sequence[float], labels: Sequence[str], neutral: str) -> np.ndarray:
    """Label of each value by ascending ``edges`` (a value equal to an edge goes to the upper bin); NaN -> neutral."""
    arr = np.asarray(values, dtype=np.float64)
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), arr, side="right")
    out = np.asarray(labels, dtype=object)[np.clip(idx, 0, len(labels) - 1)]
    out[np.isnan(arr)] = neutral
    return out


def _cut_centered(values: np.ndarray, edges: Sequence[float], labels: Sequence[str], neutral: str) -> np.ndarray:
    """Label of each value by ascending ``edges`` around a middle bin that includes both of its edges.

    The lower half of the edges closes its upper bin on the left (a value at -0.2 is already ``flat``), the upper
    half closes its lower bin on the right (0.2 is still ``flat``), so the bins are symmetric. NaN -> neutral.
    """
    arr = np.asarray(values, dtype=np.float64)
    half = len(edges) // 2
    idx = np.zeros(arr.shape, dtype=np.int64)
    for edge in edges[:half]:
        idx += arr >= edge
    for edge in edges[half:]:
        idx += arr > edge
    out = np.asarray(labels, dtype=object)[idx]
    out[np.isnan(arr)] = neutral
    return out


def bin_trend(strength: np.ndarray) -> np.ndarray:
    """``strong_down`` < -0.6 <= ``down`` < -0.2 <= ``flat`` <= 0.2 < ``up`` <= 0.6 < ``strong_up``."""
    return _cut_centered(strength, TREND_EDGES, FEATURES[2][1], "flat")


def bin_rsi(rsi: np.ndarray) -> np.ndarray:
    """``oversold`` < 30 <= ``weak`` < 45 <= ``neutral`` <= 55 < ``strong`` <= 70 < ``overbought``."""
    return _cut_centered(rsi, RSI_EDGES, FEATURES[3][1], "neutral")


def bin_macd(histogram_over_close: np.ndarray) -> np.ndarray:
    """``bear`` < -0.05 % <= ``flat`` <= 0.05 % < ``bull`` of the MACD histogram relative to the close."""
    return _cut_centered(histogram_over_close, (-MACD_EDGE, MACD_EDGE), FEATURES[4][1], "flat")


def bin_bollinger(percent_b: np.ndarray) -> np.ndarray:
    """``below`` (%B < 0), ``inside`` (0..1), ``above`` (%B > 1)."""
    return _cut_centered(percent_b, (0.0, 1.0), FEATURES[5][1], "inside")


def bin_volatility(regime: np.ndarray) -> np.ndarray:
    """-1 / 0 / +1 of :func:`market.regime.volatility_regime` to ``low`` / ``normal`` / ``high``."""
    arr = np.asarray(regime, dtype=np.float64)
    out = np.where(arr < 0, "low", np.where(arr > 0, "high", "normal")).astype(object)
    out[np.isnan(arr)] = "normal"
    return out


def bin_adx(adx: np.ndarray) -> np.ndarray:
    """``weak`` < 20 <= ``moderate`` < 40 <= ``strong``."""
    return _cut(adx, ADX_EDGES, FEATURES[6][1], "weak")


def bin_drawdown(drawdown: np.ndarray) -> np.ndarray:
    """``none`` < 0.5 % <= ``small`` < 2 % <= ``medium`` < 5 % <= ``large`` (drawdown as a positive fraction)."""
    return _cut(drawdown, DRAWDOWN_EDGES, FEATURES[7][1], "none")


def bin_win_rate(rate: np.ndarray) -> np.ndarray:
    """``low`` < 40 % <= ``mid`` <= 60 % < ``high``."""
    return _cut_centered(rate, WIN_RATE_EDGES, FEATURES[8][1], "mid")


def bin_recent_pnl(mean_pnl_pct: np.ndarray) -> np.ndarray:
    """``losing`` < -0.25 % <= ``flat`` <= 0.25 % < ``winning``."""
    return _cut_centered(mean_pnl_pct, (-RECENT_PNL_EDGE, RECENT_PNL_EDGE), FEATURES[9][1], "flat")


def bin_loss_streak(streak: np.ndarray) -> np.ndarray:
    """``0``, ``1-2``, ``3+`` losing trades in a row."""
    arr = np.asarray(streak, dtype=np.int64)
    return np.where(arr <= 0, "0", np.where(arr <= 2, "1-2", "3+")).astype(object)


# ------------------------------------------------------------------------------------------- market side


def market_feature_table(frame: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """The 7 market bins of every candle of ``frame``, plus ``atr`` (for stop distances)."""
    s = cfg.strategies
    close = frame["close"].to_numpy(np.float64)
    high = frame["high"].to_numpy(np.float64)
    low = frame["low"].to_numpy(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        macd_rel = np.asarray(ind.macd(close, s.macd_fast, s.macd_slow, s.macd_signal).histogram) / close
    table = pd.DataFrame({
        "regime": np.asarray(classify_regime(frame), dtype=object),
        "volatility": bin_volatility(volatility_regime(close)),
        "trend": bin_trend(trend_strength(close)),
        "rsi": bin_rsi(ind.rsi(close, s.rsi_period)),
        "macd": bin_macd(macd_rel),
        "bollinger": bin_bollinger(ind.bollinger_bands(close, s.bollinger_period, s.bollinger_std).percent_b),
        "adx": bin_adx(ind.adx(high, low, close, 14)),
        "atr": np.asarray(ind.atr(high, low, close, ATR_PERIOD), dtype=np.float64),
    })
    return table


@dataclass
class SymbolMarket:
    """One symbol's candles and market bins as plain arrays (read once per trade, so kept out of pandas)."""

    close_ms: np.ndarray
    """Each candle's close time (its timestamp plus one timeframe)."""
    bins: list[tuple[str, ...]]
    """The 7 market bins of each candle."""
    atr: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    origin_ms: int | None = None
    """Close time of the source's first candle when the candles before the warm-up were left out, else None."""
    trimmed_before_ms: int | None = None
    """When candles were left out: the bins are exact from this time on only (earlier ones need them all)."""

    @classmethod
    def from_candles(cls, frame: pd.DataFrame, cfg: Config, tf_ms: int, earliest_ms: int | None = None,
                     origin_ms: int | None = None) -> SymbolMarket:
        """The market of ``frame``; with ``earliest_ms``, only from :data:`WARMUP_CANDLES` candles before it.
        ``origin_ms``: close time of the source's first candle when ``frame`` is already the end of the source
        (it must then start at least :data:`WARMUP_CANDLES` candles before ``earliest_ms``)."""
        close_ms = frame["timestamp"].to_numpy(np.int64) + tf_ms
        first = int(np.searchsorted(close_ms, earliest_ms, side="left")) - WARMUP_CANDLES if earliest_ms else 0
        if origin_ms is None or not len(close_ms) or origin_ms >= close_ms[0]:
            if first <= 0:
                return cls._build(frame, cfg, tf_ms)
            origin_ms = int(close_ms[0])
        return cls._build(frame.iloc[max(first, 0):].reset_index(drop=True), cfg, tf_ms, origin_ms, earliest_ms)

    @classmethod
    def _build(cls, frame: pd.DataFrame, cfg: Config, tf_ms: int, origin_ms: int | None = None,
               trimmed_before_ms: int | None = None) -> SymbolMarket:
        table = market_feature_table(frame, cfg)
        columns = [table[name].to_numpy(dtype=object) for name in MARKET_FEATURES]
        return cls(
            close_ms=frame["timestamp"].to_numpy(np.int64) + tf_ms,
            bins=[tuple(str(v) for v in row) for row in zip(*columns, strict=True)],
            atr=table["atr"].to_numpy(np.float64),
            open=frame["open"].to_numpy(np.float64),
            high=frame["high"].to_numpy(np.float64),
            low=frame["low"].to_numpy(np.float64),
            origin_ms=origin_ms,
            trimmed_before_ms=trimmed_before_ms,
        )

    def index_at(self, t_ms: int) -> int | None:
        """Index of the last candle closed at or before ``t_ms``; None before the first one closed."""
        idx = int(np.searchsorted(self.close_ms, t_ms, side="right")) - 1
        return idx if idx >= 0 else None

    def covers(self, t_ms: int, tf_ms: int) -> bool:
        """True when ``t_ms`` is before the close of the candle after the last one (the state is known)."""
        return len(self.close_ms) > 0 and t_ms < self.close_ms[-1] + tf_ms


class MarketStates:
    """Candles and market bins per symbol, loaded through :func:`market.sources.load_candles` and extended when a
    time beyond the last candle is asked for (the synthetic market is prefix-stable, so extending it leaves
    the candles already seen unchanged; a ccxt source updates its cache)."""

    def __init__(self, cfg: Config, loader: CandleLoader = load_candles, earliest_ms: int | None = None) -> None:
        self.cfg = cfg
        self.earliest_ms = earliest_ms
        """The earliest time a state will be asked for (None: any): the bins are built from
        :data:`WARMUP_CANDLES` candles before it on, so a pass's memory does not follow the whole market."""
        self.tf_ms = timeframe_to_ms(cfg.market.timeframe)
        self._loader = loader
        self._markets: dict[str, SymbolMarket] = {}
        self._unavailable: dict[str, str] = {}
        self._attempts: set[tuple[str, int]] = set()

    def candles_held(self) -> dict[str, int]:
        """Candles held per symbol loaded so far (what a pass's memory follows)."""
        return {symbol: len(market.close_ms) for symbol, market in self._markets.items()}

    def market(self, symbol: str, t_ms: int) -> SymbolMarket | str:
        """The symbol's market covering ``t_ms``, or why there is none."""
        if symbol in self._unavailable:
            return self._unavailable[symbol]
        current = self._markets.get(symbol)
        for _ in range(2):  # the first load, then one extension to reach ``t_ms``
            if current is not None and current.covers(t_ms, self.tf_ms):
                break
            loaded = self._load(symbol, t_ms, current)
            if isinstance(loaded, str):
                return loaded
            current = loaded
        if current is None or not current.covers(t_ms, self.tf_ms):
            return f"no {symbol} candle covers {pd.Timestamp(t_ms, unit='ms', tz='UTC').isoformat()}"
        return current

    def _load(self, symbol: str, t_ms: int, current: SymbolMarket | None) -> SymbolMarket | str:
        synthetic = self.cfg.market.data_source.strip().lower() == "synthetic"
        needed = self._candles_needed(t_ms, current) if synthetic else 0
        if current is not None:
            # One reload per reach: a CSV or exchange source that still ends early is not re-read per trade.
            if (symbol, needed) in self._attempts:
                return current
            self._attempts.add((symbol, needed))
        origin, skip = self._skippable(current, needed)
        try:
            if skip:  # the end of a long synthetic market: only the candles from the warm-up on are generated
                frame = self._loader(self.cfg, [symbol], limit=needed, keep_last=needed - skip)[symbol]
            else:
                frame = self._loader(self.cfg, [symbol], limit=needed or None)[symbol]
        except FatalError as exc:
            self._unavailable[symbol] = f"no candles for {symbol}: {exc}"
            log.warning("%s", self._unavailable[symbol])
            return self._unavailable[symbol]
        market = SymbolMarket.from_candles(frame, self.cfg, self.tf_ms, self.earliest_ms, origin if skip else None)
        del frame  # the source's whole frame is not kept beside the market built from its end
        self._markets[symbol] = market
        return market

    def _skippable(self, current: SymbolMarket | None, needed: int) -> tuple[int | None, int]:
        """The synthetic market's first close time and how many of its first candles a pass cannot need: those
        before the warm-up of :attr:`earliest_ms` (0 when unknown). Synthetic candles are one timeframe apart
        from the first, so candle ``k`` closes at ``origin + k * tf``."""
        if not needed or self.earliest_ms is None or current is None or not len(current.close_ms):
            return None, 0
        origin = current.origin_ms if current.origin_ms is not None else int(current.close_ms[0])
        before = -(-(self.earliest_ms - origin) // self.tf_ms)  # candles closing before earliest_ms
        return origin, int(min(max(0, before - WARMUP_CANDLES), needed - 1))

    def _candles_needed(self, t_ms: int, current: SymbolMarket | None) -> int:
        """Synthetic candles to generate so that ``t_ms`` is covered (with a margin, to extend rarely)."""
        n = self.cfg.synthetic.n_candles
        if current is None or len(current.close_ms) == 0:
            return n
        origin = current.origin_ms if current.origin_ms is not None else int(current.close_ms[0])
        span = (t_ms - origin) // self.tf_ms + 2
        return max(n, span + EXTEND_MARGIN)

    def market_bins(self, symbol: str, t_ms: int) -> tuple[tuple[str, ...], SymbolMarket, int] | str:
        """The 7 market bins at ``t_ms`` with the market and the candle index, or why they are unknown."""
        market = self.market(symbol, t_ms)
        if not isinstance(market, str) and market.trimmed_before_ms is not None and t_ms < market.trimmed_before_ms:
            # Earlier than announced: build this symbol's market again from its first candle.
            self.earliest_ms = None
            self._markets.pop(symbol)
            self._attempts = {a for a in self._attempts if a[0] != symbol}
            market = self.market(symbol, t_ms)
        if isinstance(market, str):
            return market
        idx = market.index_at(t_ms)
        if idx is None:
            return f"{pd.Timestamp(t_ms, unit='ms', tz='UTC').isoformat()} is before the first {symbol} candle"
        return market.bins[idx], market, idx


# ------------------------------------------------------------------------------------------- account side


@dataclass(frozen=True)
class AccountStates:
    """The 4 account bins after the first ``k`` trades (by ``closed_at``) for every ``k`` from 0 to n."""

    closed_ms: np.ndarray
    drawdown: np.ndarray
    win_rate: np.ndarray
    recent_pnl: np.ndarray
    loss_streak: np.ndarray

    def known_at(self, t_ms: int) -> int:
        """How many trades had closed at or before ``t_ms``."""
        return int(np.searchsorted(self.closed_ms, t_ms, side="right"))

    def bins(self, k: int) -> tuple[str, str, str, str]:
        return (str(self.drawdown[k]), str(self.win_rate[k]), str(self.recent_pnl[k]), str(self.loss_streak[k]))


class AccountCarry:
    """What the account states need of the trades no longer held in memory, folded in as they are dropped
    (:class:`core.contracts.pnl_history.HistoryTail`'s ``fold``, oldest first): the running peak and last value
    of ``equity_after``, the last ``recent`` returns and the loss streak. With it the states after the kept
    trades equal those of the whole history exactly. A row that arrives after the rows closing later than it
    were dropped is folded in as the newest dropped one (a full read would place it earlier)."""

    def __init__(self, recent: int) -> None:
        self.recent = recent
        self.clear()

    def clear(self) -> None:
        self.count = 0
        self.peak = -np.inf
        self.last_equity = np.nan
        self.pnl = np.zeros(0)
        self.streak = 0

    def add(self, dropped: pd.DataFrame) -> None:
        if dropped.empty:
            return
        pnl = dropped["pnl_pct"].to_numpy(np.float64)
        equity = dropped["equity_after"].to_numpy(np.float64)
        self.count += len(dropped)
        self.peak = max(self.peak, float(np.max(equity)))
        self.last_equity = float(equity[-1])
        self.pnl = np.concatenate([self.pnl, pnl])[-self.recent:]
        losing_tail = np.flatnonzero(pnl > 0)  # the streak restarts after the last winning trade
        self.streak = len(pnl) - 1 - int(losing_tail[-1]) if len(losing_tail) else self.streak + len(pnl)


def account_states(trades: pd.DataFrame, recent: int, carry: AccountCarry | None = None) -> AccountStates:
    """Account bins after each prefix of ``trades`` (sorted by ``closed_at``); see the module docstring.
    ``carry``: the trades closed before these (dropped from memory), as if they led ``trades``."""
    n = len(trades)
    before = carry if carry is not None and carry.count else None
    pnl_pct = trades["pnl_pct"].to_numpy(np.float64)
    equity = trades["equity_after"].to_numpy(np.float64)
    drawdown = np.zeros(n + 1)
    first_peak = before.peak if before is not None else -np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        if before is not None:
            drawdown[0] = 1.0 - before.last_equity / before.peak if before.peak > 0 else 0.0
        if n:
            peak = np.maximum(np.maximum.accumulate(equity), first_peak)
            drawdown[1:] = np.where(peak > 0, 1.0 - equity / peak, 0.0)
    rate, mean = _recent_windows(before.pnl if before is not None else np.zeros(0), pnl_pct, recent)
    streak = np.zeros(n + 1, dtype=np.int64)
    streak[0] = before.streak if before is not None else 0
    for i, value in enumerate(pnl_pct, start=1):
        streak[i] = streak[i - 1] + 1 if value <= 0 else 0
    closed = to_ms(trades["closed_at"]) if n else np.zeros(0, dtype=np.int64)
    return AccountStates(closed, bin_drawdown(drawdown), bin_win_rate(rate), bin_recent_pnl(mean),
                         bin_loss_streak(streak))


def _recent_windows(earlier: np.ndarray, pnl_pct: np.ndarray, recent: int) -> tuple[np.ndarray, np.ndarray]:
    """Win rate and mean return of the last ``recent`` trades after each prefix (``earlier`` lead ``pnl_pct``).

    Each window is summed on its own (left-padded with zeros, which add nothing exactly), so a value depends only
    on the trades in its window, never on how many came before: the same with or without the earlier trades
    held in memory."""
    values = np.concatenate([np.zeros(recent), earlier, pnl_pct])
    windows = np.lib.stride_tricks.sliding_window_view(values, recent)[-(len(pnl_pct) + 1):]
    count = np.minimum(np.arange(len(earlier), len(earlier) + len(pnl_pct) + 1), recent)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(count > 0, (windows > 0).sum(axis=1) / np.maximum(count, 1), np.nan)
        mean = np.where(count > 0, windows.sum(axis=1) / np.maximum(count, 1), np.nan)
    return rate, mean


def to_ms(values: pd.Series) -> np.ndarray:
    """UTC timestamps to int64 milliseconds since the epoch."""
    epoch = pd.Timestamp(0, tz="UTC")
    return ((pd.to_datetime(values, utc=True) - epoch) // pd.Timedelta(milliseconds=1)).to_numpy(np.int64)
