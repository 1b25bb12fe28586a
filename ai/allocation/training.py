"""One training of the strategy-weight agent: fit PPO, validate the candidate, promote it when valid, log it.

:func:`train_once` builds the environment of :mod:`ai.allocation.env` on all but the last
``holdout_fraction`` of the rebalancing periods and runs PPO (:mod:`ai.ppo`, Dirichlet head) for
``episodes x episode_length`` steps. The result is saved as the candidate checkpoint and promoted to the
latest one (the replaced model kept as the backup) only when :mod:`ai.allocation.validation` finds it valid; a
rejected candidate stays beside the latest model for inspection.

Every training appends a record (:class:`core.contracts.training_log.TrainingRecord`) to the training log:
when, data range, episodes, mean reward, losses, duration, model version, held-out results, promoted
true/false and why.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import gymnasium as gym

from ai.allocation.agent import (
    candidate_path,
    checkpoint_extra,
    current_model_version,
    finite_or_none,
    latest_path,
    promote_candidate,
    save_candidate,
)
from ai.allocation.env import StrategyWeightEnv
from ai.allocation.features import StrategyHistory
from ai.allocation.training_data import TrainingData, prepare_training_data
from ai.allocation.validation import check_candidate
from ai.ppo import PPO, MetricsLog, UpdateStats, sync_vector_env, tensorboard_run_dir
from core.atomic import utc_now_iso
from core.config import Config, StrategyAgentConfig
from core.contracts.allocation_model import metrics_path
from core.contracts.training_log import (
    TrainingRecord,
    append_training_record,
    read_training_records,
    replace_training_record,
)
from core.locks import locked

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What :func:`fit` produced."""

    ppo: PPO
    total_steps: int
    stats: list[UpdateStats] = field(default_factory=list)
    interrupted: bool = False
    duration_s: float = 0.0


def make_vector_env(history: StrategyHistory, acfg: StrategyAgentConfig,
                    periods: tuple[int, int]) -> gym.vector.VectorEnv:
    """``num_envs`` environments over ``periods``, resetting in the step that ends an episode (as PPO needs)."""
    def make() -> gym.Env:
        return StrategyWeightEnv(history, acfg, periods)

    return sync_vector_env([make] * acfg.num_envs)


def fit(data: TrainingData, acfg: StrategyAgentConfig, episodes: int, progress: bool = False,
        stop: threading.Event | None = None, on_update: Callable[[UpdateStats], None] | None = None) -> FitResult:
    """Train a fresh PPO agent for ``episodes`` episodes' worth of steps on the training slice.

    ``stop`` ends training early (the result is then marked interrupted); ``on_update`` sees every update.
    """
    env = make_vector_env(data.history, acfg, (0, data.n_train))
    length = StrategyWeightEnv(data.history, acfg, (0, data.n_train)).max_length
    total_steps = episodes * length
    ppo = PPO(env, acfg.ppo)
    result = FitResult(ppo, total_steps)

    def callback(stats: UpdateStats) -> bool:
        result.stats.append(stats)
        if on_update is not None:
            on_update(stats)
        if stop is not None and stop.is_set() and ppo.num_timesteps < total_steps:
            result.interrupted = True
            return False
        return True

    started = time.monotonic()
    try:
        ppo.learn(total_steps, callback=callback, progress_bar=progress)
    finally:
        env.close()
    result.duration_s = time.monotonic() - started
    return result


def last_completed_training(cfg: Config) -> TrainingRecord | None:
    """The newest record of a training that ran to the end (promoted or not)."""
    for record in reversed(read_training_records(cfg)):
        if record.get("completed"):
            return record
    return None


def next_model_version(cfg: Config) -> int:
    """One more than any version in use or logged, so a rejected candidate's number is never reused."""
    logged = [r.get("model_version") for r in read_training_records(cfg)]
    versions = [v for v in logged if isinstance(v, int) and not isinstance(v, bool)]
    return max([current_model_version(cfg), *versions]) + 1


def train_once(cfg: Config, episodes: int | None = None, progress: bool = False,
               stop: threading.Event | None = None, trigger: str = "manual",
               on_update: Callable[[UpdateStats], None] | None = None,
               as_of_ms: int | None = None) -> TrainingRecord:
    """Train, validate, promote when valid, log; returns the training record.

    ``as_of_ms``: train on the trades closed at or before it only (the daemon passes the trader's clock).
    Raises :class:`~ai.allocation.training_data.NotEnoughDataError` (nothing is logged then) when there is
    too little data.
    """
    acfg = cfg.strategy_agent
    episodes = episodes or acfg.episodes
    started_at, started = utc_now_iso(), time.monotonic()
    settle_pending_promotions(cfg)  # before numbering: a kill may have left the last promotion half recorded
    data = prepare_training_data(cfg, as_of_ms)
    version = next_model_version(cfg)
    log.info("training model version %d on %s (%d episodes, trigger: %s)", version,
             json.dumps(data.data_range()), episodes, trigger)
    curve = metrics_path(cfg)
    board = tensorboard_run_dir(curve.parent) if acfg.ppo.tensorboard else None
    with MetricsLog(curve, tensorboard=board) as metrics:  # the learning curve beside the model, row by row
        result = fit(data, acfg, episodes, progress=progress, stop=stop, on_update=metrics.then(on_update))
    record = _base_record(data, result, version, episodes, started_at, trigger)
    if result.interrupted:
        record.update({"completed": False, "promoted": False,
                       "reason": "stopped before training finished; nothing saved"})
    else:
        extra = checkpoint_extra(acfg, version, data.data_range(), episodes=episodes,
                                 total_steps=result.ppo.num_timesteps, seed=acfg.ppo.seed, trained_at=utc_now_iso())
        # A manual --train beside the daemon must not promote the other's candidate: one at a time.
        with locked(candidate_path(cfg)):
            check = check_candidate(save_candidate(result.ppo, cfg, extra), data, acfg, latest_path(cfg))
            record.update({"completed": True, "promoted": check.ok, "reason": check.reason,
                           "holdout": check.holdout})
            if check.ok:
                record["duration_s"] = round(time.monotonic() - started, 3)
                promote_with_record(cfg, record)
        if not check.ok:
            record["candidate"] = str(candidate_path(cfg).relative_to(cfg.home))  # left there for inspection
    if not record["promoted"]:
        record["duration_s"] = round(time.monotonic() - started, 3)
        append_training_record(cfg, record)
    (log.info if record["promoted"] else log.warning)("model version %d %s: %s", version,
                                                      "promoted" if record["promoted"] else "not promoted",
                                                      record["reason"])
    return record


def promote_with_record(cfg: Config, record: TrainingRecord) -> None:
    """Promote the candidate so that its training record is there first: announced as pending, then completed.

    A kill between the steps leaves a pending record that :func:`settle_pending_promotions` resolves from the
    model in place; never a promoted model without its record.
    """
    append_training_record(cfg, cast(TrainingRecord, {**record, "promoted": False, "promotion_pending": True}))
    promote_candidate(cfg)
    replace_training_record(cfg, record)


def settle_pending_promotions(cfg: Config) -> int:
    """Complete the records of promotions a kill interrupted: promoted when their model is the one in place,
    not promoted otherwise. Returns how many were settled.

    Under the candidate's lock, which a promotion holds throughout, so one in progress is never settled."""
    if not any(r.get("promotion_pending") for r in read_training_records(cfg)):
        return 0
    with locked(candidate_path(cfg)):
        pending = [r for r in read_training_records(cfg) if r.get("promotion_pending")]
        current = current_model_version(cfg)
        for record in pending:
            _settle(cfg, record, current)
    return len(pending)


def _settle(cfg: Config, record: TrainingRecord, current: int) -> None:
    """Complete one pending record: promoted when its model is the one in place."""
    done = cast(TrainingRecord, {k: v for k, v in record.items() if k != "promotion_pending"})
    done["promoted"] = record.get("model_version") == current
    if not done["promoted"]:
        done["reason"] = "interrupted before its promotion; the previous model stayed in place"
    replace_training_record(cfg, done)
    log.warning("model version %s: settled an interrupted promotion (%s)", record.get("model_version"),
                "promoted" if done["promoted"] else "not promoted")


def _base_record(data: TrainingData, result: FitResult, version: int, episodes: int, started_at: str,
                 trigger: str) -> TrainingRecord:
    last = result.stats[-1] if result.stats else None
    returns = [s.mean_episode_return for s in result.stats if math.isfinite(s.mean_episode_return)]
    return {
        "started_at": started_at,
        "finished_at": utc_now_iso(),
        "trigger": trigger,
        "model_version": version,
        "data_range": data.data_range(),
        "trades": data.trades,
        "episodes": episodes,
        "total_steps": result.ppo.num_timesteps,
        "updates": len(result.stats),
        "mean_episode_reward": finite_or_none(returns[-1]) if returns else None,
        "mean_step_reward": finite_or_none(returns[-1] / last.mean_episode_length)
        if returns and last and last.mean_episode_length else None,
        "losses": None if last is None else {
            "policy": finite_or_none(last.policy_loss), "value": finite_or_none(last.value_loss),
            "entropy": finite_or_none(last.entropy), "approx_kl": finite_or_none(last.approx_kl),
        },
        "train_duration_s": round(result.duration_s, 3),
    }
