"""Scheduled retraining of the trading PPO, on the newest candles plus the candles of the stored experiences.

Retraining runs on the ``trading_agent.retrain_cron`` schedule (APScheduler 3.x, job id
``shadow_ppo_retrain``, coalesced, one instance at a time, misfire grace ``retrain_misfire_grace_s``). "Newest"
is up to the market's clock (:func:`retrain_clock`): the paper trader's last candle when the daemon follows a
replay, so a retrained model never sees a candle after the ones already traded (in a replay the later candles
exist already); the source's newest candles without a trader. The test
window is the last ``1 - train_frac`` of the newest ``retrain_candles`` candles. A candidate is
trained on the candles before it together with the candles stored in the experiences from before it (the
original design's replay-buffer data provider, :func:`replay_buffer_candles`); stretches separated by missing
candles stay separate, so no episode trades across a hole. The candidate and the current model are evaluated
on the test window; the candidate replaces the current model only when its Sharpe ratio is at least as good
(and, while a rollout is live, when it passes the benchmark gate), and its benchmark becomes the latest one.
The outcome is published as the retraining record of :mod:`core.contracts.trading_reports`.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ai.ppo import CheckpointError
from ai.trading.benchmark import (
    benchmark_document,
    evaluate_window,
    features_for,
    policy_run,
    resolve_periods_per_year,
    split_index,
    write_benchmark,
)
from ai.trading.common import (
    CandleSet,
    TradingModel,
    candles_until,
    file_sha256,
    finite_or_none,
    is_replay_source,
    load_model,
    trader_clock,
    trading_symbol,
)
from ai.trading.market_features import MarketFeatures
from ai.trading.options import options_from_config
from ai.trading.training import (
    TrainingBusyError,
    TrainResult,
    install_model,
    model_meta,
    reported_training,
    train_agent,
)
from analytics.baselines import strategy_metrics
from core.atomic import utc_now_iso
from core.config import Config
from core.contracts.rollout import read_rollout
from core.contracts.shadow_status import EXPERIENCES_NAME, iter_experiences, read_shadow_state
from core.contracts.trading_model import model_path
from core.contracts.trading_reports import BenchmarkDoc, RetrainRecord, publish_retrain
from core.errors import DataError, FatalError, RetryableError
from core.timeframes import ms_to_iso, timeframe_to_ms
from market.frames import COLUMNS, validate_candles
from market.sources import load_candles

log = logging.getLogger(__name__)



# --------------------------------------------------------------------------------------- replay data provider


def replay_buffer_candles(cfg: Config, symbol: str, timeframe: str) -> pd.DataFrame:
    """The candles stored in the experiences of ``symbol`` / ``timeframe`` (both candles of each), validated.

    This is the original design's replay-buffer data provider: the market the shadow daemon actually saw,
    which a retraining adds to the newest candles of the source.
    """
    rows: list[dict[str, Any]] = []
    for record in iter_experiences(cfg):
        if record.get("symbol") != symbol or record.get("timeframe") != timeframe:
            continue
        for key in ("candle", "next_candle"):
            candle = record.get(key)
            if isinstance(candle, dict) and all(c in candle for c in COLUMNS):
                rows.append({c: candle[c] for c in COLUMNS})
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "timestamp" else "float64") for c in COLUMNS})
    # Consecutive experiences share a candle (one's next candle is the next one's candle): not a repair.
    unique = pd.DataFrame(rows).drop_duplicates("timestamp", keep="last")
    frame, _ = validate_candles(unique, f"{EXPERIENCES_NAME} candles")
    return frame


def merge_candles(newest: pd.DataFrame, replay: pd.DataFrame) -> pd.DataFrame:
    """Both sets of candles in time order; where both have a timestamp the source's (``newest``) wins."""
    if replay.empty:
        return newest.reset_index(drop=True)
    replay = replay[~replay["timestamp"].isin(newest["timestamp"])]
    merged, _ = validate_candles(pd.concat([replay, newest], ignore_index=True), "merged candles")
    return merged


def contiguous_segments(frame: pd.DataFrame, step_ms: int, min_candles: int) -> list[pd.DataFrame]:
    """The stretches of ``frame`` without missing candles, keeping those of at least ``min_candles``."""
    if frame.empty:
        return []
    breaks = np.flatnonzero(np.diff(frame["timestamp"].to_numpy(np.int64)) > step_ms) + 1
    parts = np.split(np.arange(len(frame)), breaks)
    kept = [frame.iloc[p].reset_index(drop=True) for p in parts if len(p) >= min_candles]
    if len(kept) < len(parts):
        log.info("%d stretch(es) of candles shorter than %d skipped", len(parts) - len(kept), min_candles)
    return kept


# ------------------------------------------------------------------------------------------------- retraining


def _score(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else -math.inf


def retrain(cfg: Config, stop: threading.Event | None = None) -> RetrainRecord:
    """One retraining (see the module docstring); returns the record it publishes.

    :class:`TrainingBusyError` when another training holds the lock.
    """
    ta = cfg.trading_agent
    data = retrain_data(cfg)
    periods = resolve_periods_per_year(cfg, data.evaluation.timeframe, None)
    features = features_for(data.evaluation, cfg)
    description = f"scheduled retrain on {data.training_candles} candles in {len(data.segments)} stretch(es)"
    with reported_training(cfg, ta.retrain_episodes, description, kind="Retraining") as reporter:
        result = train_agent(cfg, data.segments, ta.retrain_episodes, reporter, stop)
        if result.stopped:
            reporter.finish("Retraining stopped before the end; the current model is kept", ok=False)
            return {"accepted": False, "reason": "stopped before the end"}
        accepted, reason, doc = _judge_candidate(cfg, data, result, features, periods)
        reporter.finish(f"Retraining complete: {'new model installed' if accepted else 'current model kept'}")
    record: RetrainRecord = finite_or_none({
        "at": utc_now_iso(), "accepted": accepted, "reason": reason,
        "candidate_sharpe": doc["rl_v3_metrics"]["sharpe_ratio"], "current_sharpe": doc["current_sharpe"],
        "gate_passed": doc["gate"]["passed"], "train_window": doc["train_window"], "test_window": doc["test_window"],
        "segments": len(data.segments), "experience_candles": data.experience_candles,
    })
    publish_retrain(cfg, record)
    log.info("retrain: %s (%s)", "new model installed" if accepted else "current model kept", reason)
    return record


@dataclass(frozen=True)
class RetrainData:
    """The candles of one retraining: the evaluation set with its split, and the training stretches."""

    evaluation: CandleSet
    split: int
    segments: list[pd.DataFrame]
    experience_candles: int

    @property
    def training_candles(self) -> int:
        return sum(len(s) for s in self.segments)


def retrain_clock(cfg: Config) -> int | None:
    """The last candle a retraining may use: the trader's clock, else (in a replay the daemon followed) the
    trader's clock it saw last; None (the source's newest candle) without a trader."""
    symbol, timeframe = trading_symbol(cfg), cfg.market.timeframe
    clock = trader_clock(cfg, symbol, timeframe)
    if clock is not None or not (cfg.trading_agent.follow_trader and is_replay_source(cfg)):
        return clock
    saved = read_shadow_state(cfg)
    doc = saved.data if saved.ok and saved.data is not None else {}
    seen = doc.get("trader_ts") if doc.get("symbol") == symbol and doc.get("timeframe") == timeframe else None
    return int(seen) if isinstance(seen, int) and not isinstance(seen, bool) else None


def retrain_data(cfg: Config) -> RetrainData:
    """The newest ``retrain_candles`` candles up to :func:`retrain_clock`, split at ``train_frac``; the training
    stretches are the candles before the test window together with the experiences' candles from before it
    (separate stretches stay separate, so no episode trades across a hole between them)."""
    ta = cfg.trading_agent
    symbol, timeframe = trading_symbol(cfg), cfg.market.timeframe
    clock = retrain_clock(cfg)
    if clock is None:
        newest = load_candles(cfg, [symbol], limit=ta.retrain_candles)[symbol].reset_index(drop=True)
    else:
        newest = candles_until(cfg, symbol, clock, window=ta.retrain_candles)
        if len(newest) < 2 * (ta.warmup_candles + 2):
            raise DataError(f"retrain: {len(newest)} candle(s) up to the trader's clock {ms_to_iso(clock)}; too few "
                            "for a training and a test window yet (it retrains at the next scheduled time)")
    split = split_index(len(newest), ta.train_frac)
    replay = replay_buffer_candles(cfg, symbol, timeframe)
    replay = replay[replay["timestamp"] < int(newest["timestamp"].iloc[split])]
    training = merge_candles(newest.iloc[:split], replay)
    segments = contiguous_segments(training, timeframe_to_ms(timeframe), ta.warmup_candles + 2)
    if not segments:
        raise DataError(f"retrain: no stretch of at least {ta.warmup_candles + 2} consecutive candles before the "
                        "test window; raise trading_agent.retrain_candles")
    source = cfg.market.data_source + ("+experiences" if not replay.empty else "")
    return RetrainData(CandleSet(newest, symbol, timeframe, source), split, segments, len(replay))


def _judge_candidate(cfg: Config, data: RetrainData, result: TrainResult, features: MarketFeatures,
                     periods: float) -> tuple[bool, str, dict[str, Any]]:
    """Benchmark the candidate and the current model on the test window; install the candidate if it is not
    worse (its benchmark then becomes the latest). Returns (accepted, reason, the candidate's benchmark)."""
    ta = cfg.trading_agent
    evaluation, split = data.evaluation, data.split
    trained_on = pd.concat(data.segments, ignore_index=True)
    meta = model_meta(CandleSet(trained_on, evaluation.symbol, evaluation.timeframe, evaluation.data_source),
                      len(trained_on), result)
    meta["segments"] = len(data.segments)
    candidate = TradingModel(result.agent.policy.eval(), result.agent.checkpoint_meta(dict(meta)), model_path(cfg),
                             None)
    window = evaluate_window(cfg, features, split, candidate, cfg.costs.fee, ta.benchmark_episodes, periods, 10, 20)
    current_sharpe = _current_sharpe(cfg, features, split, periods)
    doc = benchmark_document(cfg, evaluation, split, window, fee=cfg.costs.fee, periods_per_year=periods,
                             episodes=ta.benchmark_episodes, ma=(10, 20), train_frac=ta.train_frac,
                             train_window=meta["train_range"], in_sample=False,
                             model_info={"source": "retrain", "saved": False, "sha256": None,
                                         "trained_range": meta["train_range"]})
    accepted, reason = _accept(cfg, doc, current_sharpe)
    if accepted:
        path = install_model(cfg, result.agent, meta)
        doc["model"].update({"saved": True, "path": str(path), "sha256": file_sha256(path)})
        write_benchmark(cfg, doc, window)
    return accepted, reason, {**doc, "current_sharpe": current_sharpe}


def _current_sharpe(cfg: Config, features: MarketFeatures, split: int, periods: float) -> float | None:
    try:
        current = load_model(model_path(cfg))
    except CheckpointError as exc:
        log.info("retrain: no usable current model to compare with (%s)", exc)
        return None
    exposures, returns = policy_run(current, features, split, options_from_config(cfg))
    metrics = strategy_metrics(features.closes[split:], exposures, cfg.costs.fee, periods, returns)
    return metrics["sharpe_ratio"] if math.isfinite(metrics["sharpe_ratio"]) else None


def _accept(cfg: Config, doc: BenchmarkDoc, current_sharpe: float | None) -> tuple[bool, str]:
    candidate = doc["rl_v3_metrics"]["sharpe_ratio"]
    if _score(candidate) < _score(current_sharpe):
        return False, f"candidate Sharpe {candidate} below the current model's {current_sharpe}"
    rollout = read_rollout(cfg)
    if rollout is not None and rollout.live and not doc["gate"]["passed"]:
        return False, "a rollout is live and the candidate did not pass the benchmark gate"
    return True, f"candidate Sharpe {candidate} >= current {current_sharpe}"


def scheduled_retrain(cfg: Config, stop: threading.Event) -> None:
    """The scheduler's job: one retrain, every failure logged (a job must never die silently)."""
    try:
        retrain(cfg, stop)
    except TrainingBusyError as exc:
        log.warning("scheduled retrain skipped: %s", exc)
    except (FatalError, RetryableError) as exc:
        log.error("scheduled retrain failed: %s", exc)
    except Exception:  # the scheduler thread would only print it; keep it in the daemon's log
        log.exception("scheduled retrain failed unexpectedly")
