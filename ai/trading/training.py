"""Training of the trading PPO: the single-training lock, the progress file, the run itself and model install.

A training holds an exclusive ``fcntl`` lock (:func:`core.contracts.trading_model.lock_path`) for its whole run, so a second
``train`` (or the daemon's retrain, or a benchmark that trains) is refused at once with the holder's pid
instead of racing it. Progress is published (:mod:`core.contracts.trading_reports`) as episodes finish and,
throttled, during every PPO update (an update of many epochs takes a while): ``active``, ``progress`` (%),
``message`` ("Episode 45/100", "Episode 45/100, update 3/12: minibatch 40/320"), ``started_at`` and
``metrics`` (``current_reward``, ``avg_reward``, ``policy_loss``, ``value_loss``). A training under the lock
also writes its learning curve, one row per update, to ``state/rl_v3/training_metrics.csv``
(:mod:`ai.ppo.metrics_log`).
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ai.ppo import PPO, MetricsLog, Pulse, UpdateStats, tensorboard_run_dir
from ai.trading.account import ACTION_NAMES
from ai.trading.common import CandleSet, TrainingBusyError, finite_or_none, window_info
from ai.trading.features import FEATURE_NAMES
from ai.trading.market_features import MarketFeatures, compute_market_features, concat_features
from ai.trading.options import TradingEnvOptions, options_from_config
from ai.trading.vector_env import TradingVectorEnv
from core.atomic import utc_now_iso
from core.config import Config
from core.contracts.trading_model import (
    METRICS_NAME,
    MODEL_KIND,
    TradingModelMeta,
    install_checkpoint,
    lock_path,
    metrics_path,
)
from core.contracts.trading_reports import TrainingProgress, publish_progress, read_progress_doc

log = logging.getLogger(__name__)


@contextmanager
def training_lock(cfg: Config) -> Iterator[None]:
    """Hold the single-training lock; :class:`TrainingBusyError` (with the holder) when it is taken."""
    path = lock_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown holder"
            raise TrainingBusyError(
                f"a training is already running ({holder}); wait for it to finish or watch it with "
                "`python ai/shadow_ppo.py progress --watch`"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {utc_now_iso()}")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


# --------------------------------------------------------------------------------------------------- progress


@dataclass
class ProgressReporter:
    """Publishes the progress file (throttled) and drives a tqdm bar over episodes.

    ``progress`` (%) is the share of the training's step budget done once :func:`train_agent` has set
    ``total_steps`` (episodes of parallel environments end together, so counting them would reach 100 % early
    or late); before that, and without a budget, it is the share of episodes done.
    """

    cfg: Config
    episodes: int
    description: str = ""
    show_bar: bool = False
    min_interval_s: float = 0.5
    started_at: str = field(default_factory=utc_now_iso)
    metrics: dict[str, float | None] = field(default_factory=lambda: {
        "current_reward": None, "avg_reward": None, "policy_loss": None, "value_loss": None})
    done: int = 0
    total_steps: int = 0
    steps_done: int = 0
    _last_write: float = field(default=0.0, init=False)
    _bar: Any = field(default=None, init=False)

    def start(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=self.episodes, unit="episode", desc="training", file=sys.stderr,
                         disable=not self.show_bar, dynamic_ncols=True)
        self._publish(True, f"Episode 0/{self.episodes}", force=True)

    def episode(self, count: int, episode_return: float, recent: list[float], steps: int | None = None) -> None:
        """One more finished episode (``recent``: the returns of the last episodes; ``steps``: transitions so far)."""
        shown = min(count, self.episodes)
        if self._bar is not None and shown > self.done:
            self._bar.update(shown - self.done)
            self._bar.set_postfix(reward=f"{episode_return:.1f}", refresh=False)
        self.done = shown
        if steps is not None:
            self.steps_done = steps
        self.metrics["current_reward"] = episode_return
        self.metrics["avg_reward"] = float(np.mean(recent)) if recent else None
        self._publish(True, f"Episode {shown}/{self.episodes}")

    def update(self, stats: UpdateStats) -> None:
        self.metrics["policy_loss"] = stats.policy_loss
        self.metrics["value_loss"] = stats.value_loss
        self._publish(True, f"Episode {self.done}/{self.episodes}, update {stats.update} done")

    def pulse(self, pulse: Pulse) -> None:
        """Inside an update: publish where it stands (throttled like every other write)."""
        self._publish(True, f"Episode {self.done}/{self.episodes}, update {pulse.update}/{pulse.updates}: "
                            f"minibatch {pulse.step}/{pulse.steps}")

    def finish(self, message: str, ok: bool = True) -> None:
        if self._bar is not None:
            if ok and self.done < self.episodes:
                self._bar.update(self.episodes - self.done)
            self._bar.close()
        if ok:
            self.done = self.episodes
            self.steps_done = max(self.steps_done, self.total_steps)
        self._publish(False, message, force=True, finished=True)

    def percent(self) -> float:
        """Progress in %, by steps once the budget is known, else by episodes."""
        if self.total_steps > 0:
            return round(min(100.0, 100.0 * self.steps_done / self.total_steps), 2)
        return round(100.0 * self.done / self.episodes, 2) if self.episodes else 100.0

    def _publish(self, active: bool, message: str, force: bool = False, finished: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval_s:
            return
        self._last_write = now
        payload: TrainingProgress = {
            "active": active,
            "progress": self.percent(),
            "message": message,
            "started_at": self.started_at,
            "finished_at": utc_now_iso() if finished else None,
            "episodes_done": self.done,
            "episodes_total": self.episodes,
            "steps_done": self.steps_done,
            "steps_total": self.total_steps,
            "description": self.description,
            "pid": os.getpid(),
            "metrics": finite_or_none(dict(self.metrics)),
        }
        publish_progress(self.cfg, payload)


@contextmanager
def reported_training(cfg: Config, episodes: int, description: str, show_bar: bool = False,
                      kind: str = "Training") -> Iterator[ProgressReporter]:
    """Hold the training lock and publish progress for one training; a failure is recorded in the progress file.

    The caller finishes the reporter with its own message on success (or when it stops early).
    """
    with training_lock(cfg):
        reporter = ProgressReporter(cfg, episodes, description=description, show_bar=show_bar)
        reporter.start()
        try:
            yield reporter
        except BaseException as exc:
            reporter.finish(f"{kind} failed: {exc}", ok=False)
            raise


def read_progress(cfg: Config) -> dict[str, Any]:
    """The progress document, or ``{"active": false, "message": reason}`` when there is none.

    A document left ``active`` by a training process that no longer exists (killed) is reported inactive, so
    ``progress --watch`` does not wait forever.
    """
    result = read_progress_doc(cfg)
    if not result.ok or result.data is None:
        return {"active": False, "progress": 0.0, "message": f"no training has run yet ({result.reason})"}
    doc = result.data
    pid = doc.get("pid")
    if doc.get("active") and isinstance(pid, int) and not _process_alive(pid):
        return {**doc, "active": False,
                "message": f"{doc.get('message')}: the training process {pid} ended without finishing"}
    return doc


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    return True


# --------------------------------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    """A trained agent and what its training did."""

    agent: PPO
    options: TradingEnvOptions
    episodes: int
    episode_steps: int
    seconds: float
    metrics: dict[str, Any]
    stopped: bool = False


def trading_ppo_config(cfg: Config, total_steps: int) -> Any:
    """The trading agent's PPO settings with a rollout length that splits the budget into equal rollouts.

    PPO trains in whole rollouts, so a rollout of the configured ``n_steps`` could overshoot the budget by
    almost a whole rollout (20 episodes becoming 32); rollouts of at most ``n_steps`` that divide the budget
    keep the training within ``num_envs`` steps per update of what was asked.
    """
    ppo = cfg.trading_agent.ppo
    per_env = max(1, math.ceil(total_steps / cfg.trading_agent.num_envs))
    updates = math.ceil(per_env / ppo.n_steps)
    return dataclasses.replace(ppo, n_steps=math.ceil(per_env / updates))


def training_features(frames: pd.DataFrame | list[pd.DataFrame], high_volatility_percentile: float,
                      mirror: bool = False) -> MarketFeatures:
    """Features of one candle frame, or of several separate stretches joined as segments; with ``mirror``
    each stretch's mirror image (:func:`mirrored`) is added as a stretch of its own."""
    parts = [frames] if isinstance(frames, pd.DataFrame) else list(frames)
    if mirror:
        parts = [*parts, *(mirrored(f) for f in parts)]
    if len(parts) == 1:
        return compute_market_features(parts[0].reset_index(drop=True), high_volatility_percentile)
    return concat_features([compute_market_features(f.reset_index(drop=True), high_volatility_percentile)
                            for f in parts])


def mirrored(frame: pd.DataFrame) -> pd.DataFrame:
    """The candles' mirror image: every price ``p`` becomes ``p0**2 / p`` (``p0`` the first open), so each log
    return is negated while volatility and the returns' autocorrelation stay as they were; high and low trade
    places, times and volumes are kept. Training on both halves leaves no trend of the training window to
    become the policy's bias (``trading_agent.mirror_training``)."""
    p0 = float(frame["open"].iloc[0])
    out = frame.copy()
    out["open"], out["close"] = p0 * p0 / frame["open"], p0 * p0 / frame["close"]
    out["high"], out["low"] = p0 * p0 / frame["low"], p0 * p0 / frame["high"]
    return out.reset_index(drop=True)


def train_agent(cfg: Config, frames: pd.DataFrame | list[pd.DataFrame], episodes: int,
                reporter: ProgressReporter | None = None, stop: threading.Event | None = None,
                log_dir: Path | None = None, **option_overrides: Any) -> TrainResult:
    """Train a fresh PPO on random episodes of the candles for about ``episodes`` episodes.

    ``frames`` is one candle frame or a list of separate stretches (an episode stays inside one). The budget is
    ``episodes`` x the episode length in steps (rounded up to whole rollouts); ``stop`` ends the training
    early at the next update (``stopped`` is then True). With a ``reporter`` (a training under the lock) the
    per-update metrics go to :func:`core.contracts.trading_model.metrics_path` as the training runs (and, with
    ``trading_agent.ppo.tensorboard``, to TensorBoard event files in a new run folder beside it); ``log_dir``
    sends both into that folder instead (a sweep's trial folder), with or without a reporter.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    options = options_from_config(cfg, **option_overrides)
    features = training_features(frames, options.high_volatility_percentile,
                                 cfg.trading_agent.mirror_training)
    venv = TradingVectorEnv(num_envs=cfg.trading_agent.num_envs, features=features, options=options)
    total_steps = episodes * venv.episode_steps
    agent = PPO(venv, trading_ppo_config(cfg, total_steps))
    last: dict[str, Any] = {}
    if reporter is not None:
        reporter.total_steps = total_steps
        venv.on_episode_end = lambda count, ret, _length: reporter.episode(count, ret, list(venv.episode_returns),
                                                                           venv.steps_taken)

    def on_update(stats: UpdateStats) -> bool:
        last.update(stats.as_dict())
        if reporter is not None:
            reporter.update(stats)
        return not (stop is not None and stop.is_set())

    started = time.perf_counter()
    curve_path = log_dir / METRICS_NAME if log_dir is not None else metrics_path(cfg) if reporter is not None else None
    if curve_path is None:
        agent.learn(total_steps, callback=on_update)
    else:
        board = (log_dir or tensorboard_run_dir(curve_path.parent)) if cfg.trading_agent.ppo.tensorboard else None
        with MetricsLog(curve_path, tensorboard=board) as curve:
            agent.learn(total_steps, callback=curve.then(on_update),
                        pulse=reporter.pulse if reporter is not None else None)
    seconds = time.perf_counter() - started
    metrics = {
        "episodes_completed": venv.episodes_completed,
        "avg_reward": float(np.mean(venv.episode_returns)) if venv.episode_returns else math.nan,
        "policy_loss": last.get("policy_loss", math.nan),
        "value_loss": last.get("value_loss", math.nan),
        "entropy": last.get("entropy", math.nan),
        "timesteps": agent.num_timesteps,
        "updates": agent.num_updates,
        "seconds": round(seconds, 2),
    }
    return TrainResult(agent, venv.options, episodes, venv.episode_steps, seconds, finite_or_none(metrics),
                       stopped=bool(stop is not None and stop.is_set()))


def model_meta(candle_set: CandleSet, stop: int, result: TrainResult) -> TradingModelMeta:
    """Checkpoint metadata of a model trained on ``candle_set.frame[:stop]``."""
    return {
        "kind": MODEL_KIND,
        "symbol": candle_set.symbol,
        "timeframe": candle_set.timeframe,
        "data_source": candle_set.data_source,
        "train_range": window_info(candle_set.frame, 0, stop),
        "features": list(FEATURE_NAMES),
        "actions": list(ACTION_NAMES),
        "env_options": result.options.as_dict(),
        "episodes": result.episodes,
        "episode_steps": result.episode_steps,
        "metrics": result.metrics,
        "trained_at": utc_now_iso(),
    }


def install_model(cfg: Config, agent: PPO, meta: TradingModelMeta) -> Path:
    """Save ``agent`` as the model in force, keeping the previous one as the backup."""
    target = install_checkpoint(cfg, lambda path: agent.save(path, extra_meta=dict(meta)))
    log.info("model saved to %s (trained on %s .. %s, %d candles)", target, meta["train_range"]["start_time"],
             meta["train_range"]["end_time"], meta["train_range"]["bars"])
    return target


def train_and_install(cfg: Config, candle_set: CandleSet, episodes: int, show_bar: bool = False,
                      stop: threading.Event | None = None) -> TradingModelMeta:
    """The ``train`` command: lock, train on every candle of ``candle_set`` with progress, save the model.

    Returns the saved model's metadata. :class:`TrainingBusyError` when another training runs.
    """
    description = f"{candle_set.symbol} {candle_set.timeframe} ({candle_set.data_source}, {len(candle_set.frame)} candles)"
    with reported_training(cfg, episodes, description, show_bar) as reporter:
        result = train_agent(cfg, candle_set.frame, episodes, reporter, stop)
        if result.stopped:
            reporter.finish("Training stopped before the end; the model was not saved", ok=False)
            return {}
        meta = model_meta(candle_set, len(candle_set.frame), result)
        path = install_model(cfg, result.agent, meta)
        reporter.finish(f"Training complete: {episodes} episodes, model saved to {path.name}")
    return meta
