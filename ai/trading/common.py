"""Shared pieces of the trading PPO (``ai/shadow_ppo.py``): candle selection, the trader's clock, plain data
helpers, the model.

The market's "now" of the shadow daemon, its bootstrap and its retraining is the paper trader's clock (the last
candle of its status, :func:`trader_clock`): in a replay the candles after it exist already, and no model that
decides at a candle may have been trained on it or on any later one (:func:`candles_until` cuts there, and
:attr:`TradingModel.trained_until` is checked at decision time).

The agent's files are owned by their contracts: the model, its backup and the training lock by
:mod:`core.contracts.trading_model`; status, shadow state and experiences by :mod:`core.contracts.shadow_status`;
training progress, benchmark and retraining outcome by :mod:`core.contracts.trading_reports`; the rollout and
the shadow switch by :mod:`core.contracts.rollout`; the decisions by :mod:`core.contracts.shadow_decisions`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ai.ppo import CheckpointError
from ai.ppo.numpy_policy import NumpyPolicy
from ai.trading.account import ACTION_NAMES, N_ACTIONS
from ai.trading.features import FEATURE_NAMES
from core.config import Config, replace_section
from core.contracts.trader_status import read_trader_status
from core.contracts.trading_model import TrainRange, validate_model_meta
from core.errors import DataError, RetryableError
from core.timeframes import ms_to_iso, timeframe_to_ms
from market.csv_import import read_csv_candles
from market.sources import load_candles
from market.synthetic_window import market_window, params_from_config

DAEMON_NAME = "shadow_ppo"


class TrainingBusyError(RetryableError):
    """Another training holds the lock; try again when it has finished."""


def trading_symbol(cfg: Config) -> str:
    """The traded symbol: ``trading_agent.symbol``, else the primary market symbol."""
    return cfg.trading_agent.symbol or cfg.market.symbols[0]


def is_replay_source(cfg: Config) -> bool:
    """True when the candles all exist already (synthetic or CSV): a replay, whose clock is the trader's."""
    return cfg.market.data_source.strip().lower() != "ccxt"


def trader_clock(cfg: Config, symbol: str, timeframe: str) -> int | None:
    """Open time (ms) of the trader's last processed candle when ``trading_agent.follow_trader`` is on and its
    status is fresh and for this market; None otherwise (no trader, a stale status, before its first candle)."""
    if not cfg.trading_agent.follow_trader:
        return None
    status = read_trader_status(cfg, max_age_s=cfg.trading_agent.trader_status_max_age_s)
    if status is None or status.symbol != symbol or status.timeframe != timeframe:
        return None
    return status.last_candle_ts


# ---------------------------------------------------------------------------------------------- plain data


def finite_or_none(value: Any) -> Any:
    """NaN and infinities become None (JSON null), recursively; numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def file_sha256(path: Path) -> str | None:
    """Hex SHA-256 of a file, or None when it does not exist."""
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    except FileNotFoundError:
        return None


def window_info(frame: pd.DataFrame, start: int, stop: int) -> TrainRange:
    """``{start, end, start_time, end_time, bars}`` of the candles ``start..stop-1`` (open times, ms and ISO)."""
    ts = frame["timestamp"].to_numpy(np.int64)
    first, last = int(ts[start]), int(ts[stop - 1])
    return TrainRange(start=first, end=last, start_time=ms_to_iso(first), end_time=ms_to_iso(last),
                      bars=int(stop - start))


# ---------------------------------------------------------------------------------------------------- candles


@dataclass(frozen=True)
class CandleSet:
    """Candles of one symbol with where they came from."""

    frame: pd.DataFrame
    symbol: str
    timeframe: str
    data_source: str


_UNITS = (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000))


def timeframe_from_ms(step_ms: int) -> str:
    """The ccxt notation of a candle length (3600000 -> ``1h``)."""
    for unit, size in _UNITS:
        if step_ms >= size and step_ms % size == 0:
            return f"{step_ms // size}{unit}"
    raise DataError(f"candle spacing of {step_ms} ms is not a whole number of seconds")


def infer_timeframe(frame: pd.DataFrame, source: str) -> str:
    """The timeframe of a candle file from the most common spacing of its timestamps."""
    diffs = np.diff(frame["timestamp"].to_numpy(np.int64))
    if diffs.size == 0:
        raise DataError(f"{source}: needs at least 2 candles to tell their timeframe")
    values, counts = np.unique(diffs, return_counts=True)
    return timeframe_from_ms(int(values[np.argmax(counts)]))


def load_candle_set(cfg: Config, *, candles_file: str | None = None, symbol: str | None = None,
                    timeframe: str | None = None, lookback_hours: float | None = None,
                    source: str | None = None, min_candles: int = 0) -> CandleSet:
    """Candles for training, benchmarking or prediction.

    ``candles_file`` (any CSV :func:`market.csv_import.read_csv_candles` reads, Binance kline exports included) wins;
    otherwise ``lookback_hours`` of ``timeframe`` candles of ``symbol`` from ``source`` (defaults: the
    configured symbol, timeframe and data source, ``trading_agent.lookback_hours``).
    """
    if candles_file:
        path = Path(candles_file).expanduser()
        frame = read_csv_candles(path)
        tf = timeframe or infer_timeframe(frame, str(path))
        candle_set = CandleSet(frame, symbol or path.stem, tf, f"csv:{path.name}")
    else:
        tf = timeframe or cfg.market.timeframe
        step_ms = timeframe_to_ms(tf)
        hours = lookback_hours if lookback_hours is not None else cfg.trading_agent.lookback_hours
        if not hours > 0:
            raise DataError(f"--lookback-hours must be > 0, got {hours}")
        limit = max(2, math.ceil(hours * 3_600_000 / step_ms))
        kind = (source or cfg.market.data_source).strip().lower()
        name = symbol or trading_symbol(cfg)
        local = replace_section(cfg, "market", timeframe=tf)
        frame = load_candles(local, [name], source=kind, limit=limit)[name]
        described = f"ccxt:{cfg.exchange.id}" if kind == "ccxt" else kind
        candle_set = CandleSet(frame.reset_index(drop=True), name, tf, described)
    if len(candle_set.frame) < min_candles:
        raise DataError(f"{candle_set.data_source}: {len(candle_set.frame)} candles, need at least {min_candles}; "
                        "give a longer --lookback-hours or a longer file")
    return candle_set


def candles_until(cfg: Config, symbol: str, last_ts: int | None, window: int | None = None) -> pd.DataFrame:
    """The configured source's candles of ``symbol`` opened at or before ``last_ts`` (all when None); only the
    last ``window`` of them when given.

    A synthetic market is grown to reach ``last_ts`` (it is prefix-stable, so the candles before do not change);
    with a ``window`` only those candles are generated, so a replay's growing market costs a poll nothing more.
    """
    if window is not None and last_ts is not None and is_synthetic(cfg):
        params = params_from_config(cfg, [symbol])
        end = (last_ts - params.start_ms) // timeframe_to_ms(params.timeframe) + 1
        if end > 0:
            return market_window(params, end, max(1, window)).candles[symbol]
    frame = load_candles(cfg, [symbol])[symbol]
    if last_ts is not None and len(frame) and is_synthetic(cfg):
        last = int(frame["timestamp"].iloc[-1])
        if last_ts > last:
            needed = len(frame) + (last_ts - last) // timeframe_to_ms(cfg.market.timeframe)
            frame = load_candles(cfg, [symbol], limit=int(needed))[symbol]
    if last_ts is not None:
        frame = frame[frame["timestamp"] <= last_ts]
    if window is not None:
        frame = frame.tail(max(1, window))
    return frame.reset_index(drop=True)


def is_synthetic(cfg: Config) -> bool:
    """True when the candles come from the generated market."""
    return cfg.market.data_source.strip().lower() == "synthetic"


# ------------------------------------------------------------------------------------------------------ model


@dataclass(frozen=True)
class Prediction:
    """The policy's answer for one observation."""

    action: int
    action_name: str
    confidence: float
    value: float
    probs: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "action_name": self.action_name, "confidence": self.confidence,
                "value": self.value, "probs": self.probs}


@dataclass
class TradingModel:
    """A loaded trading policy with its checkpoint metadata.

    ``policy`` is a :class:`~ai.ppo.numpy_policy.NumpyPolicy` when loaded from a file (no torch needed to decide)
    or the torch network of an agent just trained (``ActorCritic`` or anything called like it).
    """

    policy: Any
    meta: dict[str, Any]
    path: Path
    sha256: str | None

    @property
    def extra(self) -> dict[str, Any]:
        return self.meta.get("extra", {})

    @property
    def train_range(self) -> dict[str, Any] | None:
        return self.extra.get("train_range")

    @property
    def trained_until(self) -> int | None:
        """Open time (ms) of the newest candle the model was trained on, or None when its metadata lacks it.

        The model may decide on a candle only when that candle opened after this one (it has not seen it)."""
        end = (self.train_range or {}).get("end")
        return int(end) if isinstance(end, int) and not isinstance(end, bool) else None

    def predict_batch(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(action probabilities ``(n, 6)``, values ``(n,)``) of a batch of observations."""
        array = np.asarray(observations, dtype=np.float32)
        if isinstance(self.policy, NumpyPolicy):
            logits, values = self.policy.forward(array)
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            probs = shifted / shifted.sum(axis=-1, keepdims=True)
            return probs.astype(np.float64), values.astype(np.float64)
        import torch  # only a network just trained gets here: the process trains, so torch is loaded already

        with torch.inference_mode():
            torch_logits, torch_values = self.policy(torch.as_tensor(array))
            torch_probs = torch.softmax(torch_logits, dim=-1)
        return torch_probs.cpu().numpy().astype(np.float64), torch_values.cpu().numpy().astype(np.float64)

    def act(self, observations: np.ndarray) -> np.ndarray:
        """Deterministic actions (most probable) of a batch of observations."""
        probs, _ = self.predict_batch(observations)
        return probs.argmax(axis=1)

    def predict(self, observation: np.ndarray) -> Prediction:
        """The deterministic action of one observation with its confidence (its probability) and value."""
        row = np.asarray(observation, dtype=np.float32)[None, :]
        if isinstance(self.policy, NumpyPolicy):
            # Six numbers: plain floats beat numpy calls, which cost a microsecond each at this size.
            raw, value = self.policy.forward(row)
            logits = raw[0].tolist()
            top = max(logits)
            exps = [math.exp(x - top) for x in logits]
            total = sum(exps)
            listed, value_f = [x / total for x in exps], float(value[0])
        else:
            probs, values = self.predict_batch(row)
            listed, value_f = probs[0].tolist(), float(values[0])
        action = max(range(len(listed)), key=listed.__getitem__)  # the first of equals, as argmax
        return Prediction(action, ACTION_NAMES[action], listed[action], value_f,
                          dict(zip(ACTION_NAMES, listed, strict=True)))


def load_model(path: Path) -> TradingModel:
    """Load a trading model; a :class:`CheckpointError` says when it is missing or made for other features."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no trained model yet; run `python ai/shadow_ppo.py train` first")
    policy, meta = NumpyPolicy.from_checkpoint(path)
    problem = validate_model_meta(meta, FEATURE_NAMES, N_ACTIONS)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    return TradingModel(policy, meta, path, file_sha256(path))
