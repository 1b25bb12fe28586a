"""Trains the strategy-weight agent from the closed-trade history and the candles; retrains as a daemon.

    python ai/rl_trainer.py --train --episodes 100   # train once (progress bar), promote if valid, exit
    python ai/rl_trainer.py --loop                   # daemon `rl_trainer`: weekly, or after 50 new trades

Training reads ``state/pnl_history.csv`` (the 8 strategies' trades) and the primary symbol's candles, builds
the environment of :mod:`ai.allocation.env` on all but the last ``holdout_fraction`` of the rebalancing
periods, and runs PPO (:mod:`ai.ppo.algorithm`, Dirichlet head) for ``episodes x episode_length`` steps. The result is
saved as ``state/rl_model/checkpoint_candidate.pt`` and promoted to ``checkpoint_latest.pt`` (the replaced model
kept as ``checkpoint_previous.pt``) only when it is valid: every parameter finite, and on the held-out periods
(the end of the history, never trained on) every weight vector finite, non-negative and summing to 1. A
rejected candidate stays beside the latest model for inspection; the latest model is left as it was.

Every training appends a record to ``state/rl_training_log.json`` (``{"records": [...]}`` in the envelope, the
newest ``training_log_max_records`` kept): when, data range, episodes, mean reward, losses, duration, model
version, held-out results, promoted true/false and why.

The daemon retrains on the cron schedule ``strategy_agent.retrain_cron`` (standard cron, UTC: ``0 3 * * 0`` is
Sundays at 03:00) and as soon as ``retrain_after_new_trades`` trades have closed since the last completed
training (the first training happens once ``min_trades`` trades exist). It watches the history's folder
(debounced; atomic replacements arrive as moves) and re-checks every ``check_interval_s``. SIGTERM stops a
training in progress without promoting it and exits 0.

Exit codes: 0 trained and promoted (or the daemon stopped cleanly), 2 bad configuration or input, 3 not enough
trades or history to train, 4 trained but the candidate was not promoted (the reason is printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from apscheduler.schedulers.background import BackgroundScheduler

from ai.allocation.agent import (
    candidate_path,
    checkpoint_extra,
    current_model_version,
    finite_or_none,
    latest_path,
    load_checkpoint,
    promote_candidate,
    save_candidate,
)
from ai.allocation.env import (
    StrategyWeightEnv,
    history_from_frames,
    load_primary_candles,
    load_trades,
    weights_dict,
)
from ai.allocation.features import EQUAL_WEIGHTS, StrategyHistory
from ai.ppo.algorithm import PPO, CheckpointError, UpdateStats, sync_vector_env
from analytics.metrics import max_drawdown, sharpe_ratio
from core.atomic import publish_json, read_json, utc_now_iso
from core.config import Config, StrategyAgentConfig, load_config, replace_section
from core.contracts.pnl_history import HISTORY_NAME, history_path, locked
from core.contracts.weights import SUM_TOLERANCE, validate_weights
from core.daemon import DaemonContext, run_daemon_main
from core.errors import ConfigError, DataError, FatalError
from core.logging_setup import setup_logging
from core.schedule import cron_trigger
from core.watch import SourceFileHandler, make_observer, schedule_once_soon

log = logging.getLogger(__name__)

DAEMON_NAME = "rl_trainer"
PRODUCER = "rl_trainer"
TRAINING_LOG_NAME = "rl_training_log.json"
EXIT_OK, EXIT_BAD_INPUT, EXIT_NOT_ENOUGH_DATA, EXIT_NOT_PROMOTED = 0, 2, 3, 4
HEARTBEAT_S = 30.0
"""Longest time between two heartbeats of the daemon, training included."""
MIN_TRAIN_PERIODS = 2
"""Rebalancing periods the training slice needs at least (an episode has one step or more)."""
CRON_KEY = "strategy_agent.retrain_cron"


class NotEnoughDataError(DataError):
    """Too few trades or rebalancing periods to train on; the message says what is missing."""


# ---------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class TrainingData:
    """The history on one grid, split into a training slice and the held-out end."""

    history: StrategyHistory
    n_train: int
    trades: int

    @property
    def holdout(self) -> tuple[int, int]:
        return self.n_train, self.history.n_periods

    def data_range(self) -> dict[str, Any]:
        return {**self.history.data_range(), "train_periods": self.n_train,
                "holdout_periods": self.history.n_periods - self.n_train}



def count_trades(cfg: Config) -> int:
    """Valid trades of the 8 strategies in ``state/pnl_history.csv``."""
    return len(load_trades(cfg))


def split_periods(n_periods: int, holdout_fraction: float) -> int:
    """Periods of the training slice: all but the last ``holdout_fraction`` (at least one held out)."""
    return n_periods - max(1, int(round(n_periods * holdout_fraction)))


def prepare_training_data(cfg: Config) -> TrainingData:
    """Trades and candles as a split history; :class:`NotEnoughDataError` when there is too little."""
    acfg = cfg.strategy_agent
    if not history_path(cfg).is_file():
        raise NotEnoughDataError(
            f"{history_path(cfg)} not found: no closed trades yet; run the paper trader until at least "
            f"{acfg.min_trades} trades of the 8 strategies have closed (`strategy_agent.min_trades`)")
    trades = load_trades(cfg)
    if len(trades) < acfg.min_trades:
        raise NotEnoughDataError(
            f"{history_path(cfg)} holds {len(trades)} closed trade(s) of the 8 strategies; at least "
            f"{acfg.min_trades} are needed before training (`strategy_agent.min_trades`)")
    history = history_from_frames(cfg, trades, load_primary_candles(cfg))
    n_train = split_periods(history.n_periods, acfg.holdout_fraction)
    if n_train < MIN_TRAIN_PERIODS:
        raise NotEnoughDataError(
            f"the trades span {history.n_periods} rebalancing period(s) of {acfg.rebalance_period}; at least "
            f"{MIN_TRAIN_PERIODS + 1} are needed (training plus a held-out part); wait for more history or "
            "shorten `strategy_agent.rebalance_period`")
    return TrainingData(history, n_train, len(trades))


# ---------------------------------------------------------------------------------------------- training


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


# ---------------------------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class CandidateCheck:
    """Whether a candidate may be promoted, why, and how it did on the held-out periods."""

    ok: bool
    reason: str
    holdout: dict[str, Any] = field(default_factory=dict)


def replay(history: StrategyHistory, acfg: StrategyAgentConfig, start: int, length: int,
           policy: Callable[[np.ndarray], np.ndarray]) -> tuple[list[np.ndarray], list[float], list[float]]:
    """Run ``policy`` over periods ``start .. start + length - 1``; returns (raw weights, rewards, returns).

    The raw weights are the policy's outputs before the environment's normalization, so they can be checked.
    """
    env = StrategyWeightEnv(history, acfg, (start, start + length))
    obs, _ = env.reset(options={"start": start, "length": length})
    weights, rewards, returns = [], [], []
    done = False
    while not done:
        w = np.asarray(policy(obs), dtype=np.float64)
        weights.append(w)
        obs, reward, terminated, truncated, info = env.step(w)
        rewards.append(float(reward))
        returns.append(float(info["portfolio_return"]))
        done = terminated or truncated
    return weights, rewards, returns


def weights_problem(w: np.ndarray) -> str | None:
    """Why a policy output is not a usable weight vector (finite, >= 0, summing to 1 within 1e-9), or None."""
    problem = validate_weights(weights_dict(w)) if np.all(np.isfinite(w)) else "a weight is NaN or infinite"
    if problem:
        return problem
    if abs(math.fsum(float(x) for x in w) - 1.0) > SUM_TOLERANCE:
        return f"weights sum to {math.fsum(float(x) for x in w)!r}, not 1"
    return None


def summarize_replay(rewards: list[float], returns: list[float], ppy: float) -> dict[str, Any]:
    """Mean reward, total return, Sharpe ratio and maximum drawdown of a replay (None where undefined)."""
    return {
        "mean_reward": finite_or_none(float(np.mean(rewards))) if rewards else None,
        "total_return": finite_or_none(float(np.prod(1.0 + np.asarray(returns)) - 1.0)) if returns else None,
        "sharpe": finite_or_none(sharpe_ratio(returns, ppy)),
        "max_drawdown": finite_or_none(max_drawdown(returns)),
    }


def check_candidate(path: Path, data: TrainingData, acfg: StrategyAgentConfig) -> CandidateCheck:
    """Load the candidate (weights only) and validate it on the held-out periods."""
    try:
        agent = load_checkpoint(path)
    except CheckpointError as exc:
        return CandidateCheck(False, f"candidate rejected: {exc}")
    start, end = data.holdout
    weights, rewards, returns = replay(data.history, acfg, start, end - start, agent.weights_array)
    for i, w in enumerate(weights):
        problem = weights_problem(w)
        if problem:
            return CandidateCheck(False, f"candidate rejected: on held-out period {start + i}: {problem}")
    _, eq_rewards, eq_returns = replay(data.history, acfg, start, end - start, lambda _obs: EQUAL_WEIGHTS)
    ppy = data.history.periods_per_year
    holdout = {"periods": end - start, "model": summarize_replay(rewards, returns, ppy),
               "equal_weights": summarize_replay(eq_rewards, eq_returns, ppy)}
    return CandidateCheck(True, f"valid: finite parameters and valid weights on all {end - start} held-out "
                                "period(s)", holdout)


# ---------------------------------------------------------------------------------------------- training log


def training_log_path(cfg: Config) -> Path:
    return cfg.state_dir / TRAINING_LOG_NAME


def read_training_records(cfg: Config) -> list[dict[str, Any]]:
    """The records of ``state/rl_training_log.json``, oldest first; a missing or unreadable log is empty."""
    result = read_json(training_log_path(cfg))
    if not result.ok or result.data is None:
        if result.status != "absent":
            log.warning("training log unusable, starting a new one: %s", result.reason)
        return []
    records = result.data.get("records")
    return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []


def append_training_record(cfg: Config, record: dict[str, Any]) -> Path:
    """Add ``record`` to the training log (atomically, under a lock), keeping the newest records.

    A log that exists but cannot be read is moved aside (``rl_training_log.json.unreadable-<time>``) rather than
    overwritten, so whatever it still holds can be recovered by hand.
    """
    path = training_log_path(cfg)
    with locked(path):
        _set_aside_if_unreadable(path)
        records = read_training_records(cfg) + [record]
        publish_json(path, PRODUCER, {"records": records[-cfg.strategy_agent.training_log_max_records:]})
    return path


def _set_aside_if_unreadable(path: Path) -> None:
    result = read_json(path)
    if result.status in ("ok", "absent") and (result.data is None or isinstance(result.data.get("records"), list)):
        return
    aside = path.with_name(f"{path.name}.unreadable-{utc_now_iso().replace(':', '')}")
    os.replace(path, aside)
    log.warning("training log %s unusable (%s); moved to %s, starting a new one", path,
                result.reason or "no `records` list", aside.name)


def last_completed_training(cfg: Config) -> dict[str, Any] | None:
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


# ---------------------------------------------------------------------------------------------- one training


def train_once(cfg: Config, episodes: int | None = None, progress: bool = False,
               stop: threading.Event | None = None, trigger: str = "manual",
               on_update: Callable[[UpdateStats], None] | None = None) -> dict[str, Any]:
    """Train, validate, promote when valid, log; returns the training record.

    Raises :class:`NotEnoughDataError` (nothing is logged then) when there is too little data.
    """
    acfg = cfg.strategy_agent
    episodes = episodes or acfg.episodes
    started_at, started = utc_now_iso(), time.monotonic()
    data = prepare_training_data(cfg)
    version = next_model_version(cfg)
    log.info("training model version %d on %s (%d episodes, trigger: %s)", version,
             json.dumps(data.data_range()), episodes, trigger)
    result = fit(data, acfg, episodes, progress=progress, stop=stop, on_update=on_update)
    record = _base_record(cfg, data, result, version, episodes, started_at, trigger)
    if result.interrupted:
        record.update(completed=False, promoted=False, reason="stopped before training finished; nothing saved")
    else:
        extra = checkpoint_extra(acfg, version, data.data_range(), episodes=episodes,
                                 total_steps=result.ppo.num_timesteps, seed=acfg.ppo.seed, trained_at=utc_now_iso())
        # A manual --train beside the daemon must not promote the other's candidate: one at a time.
        with locked(candidate_path(cfg)):
            check = check_candidate(save_candidate(result.ppo, cfg, extra), data, acfg)
            if check.ok:
                promote_candidate(cfg)
        record.update(completed=True, promoted=check.ok, reason=check.reason, holdout=check.holdout)
        if not check.ok:
            record["candidate"] = str(candidate_path(cfg).relative_to(cfg.home))  # left there for inspection
    record["duration_s"] = round(time.monotonic() - started, 3)
    append_training_record(cfg, record)
    (log.info if record["promoted"] else log.warning)("model version %d %s: %s", version,
                                                      "promoted" if record["promoted"] else "not promoted",
                                                      record["reason"])
    return record


def _base_record(cfg: Config, data: TrainingData, result: FitResult, version: int, episodes: int,
                 started_at: str, trigger: str) -> dict[str, Any]:
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


# ---------------------------------------------------------------------------------------------- daemon


def trades_since_last_training(cfg: Config) -> tuple[int, int | None]:
    """(trades now, trades at the last completed training or None when there was none)."""
    now = count_trades(cfg)
    last = last_completed_training(cfg)
    seen = last.get("trades") if last else None
    return now, seen if isinstance(seen, int) and not isinstance(seen, bool) else None


def retrain_due(cfg: Config) -> str | None:
    """Why training is due because of new trades, or None."""
    acfg = cfg.strategy_agent
    now, seen = trades_since_last_training(cfg)
    if seen is None:
        return f"first training: {now} trades" if now >= acfg.min_trades else None
    new = now - seen if now >= seen else now  # a shorter history was replaced: all of it is new
    if new >= acfg.retrain_after_new_trades and now >= acfg.min_trades:
        return f"{new} new trades since the last training"
    return None


class TrainerDaemon:
    """Schedules trainings and runs them one at a time in the calling thread.

    Scheduler jobs and file events only *request* a training or a check (one-line calls), so a training never
    overlaps another and SIGTERM can stop it between two PPO updates.
    """

    def __init__(self, cfg: Config, ctx: DaemonContext) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.acfg = cfg.strategy_agent
        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[str] = []
        self._check_requested = True  # look at the history once at start
        self.scheduler = BackgroundScheduler(timezone=timezone.utc)
        self.observer = make_observer(self.acfg.polling, self.acfg.poll_interval_s)
        self._last_beat = 0.0
        self.trainings = 0

    # -- triggers (called from scheduler and watchdog threads) ------------------------------------------

    def request_training(self, reason: str) -> None:
        with self._lock:
            self._requests.append(reason)
        self.wake.set()

    def request_check(self) -> None:
        with self._lock:
            self._check_requested = True
        self.wake.set()

    def on_history_event(self) -> None:
        schedule_once_soon(self.scheduler, self.request_check, "history_changed", self.acfg.debounce_s,
                           self.acfg.misfire_grace_s)

    # -- main loop --------------------------------------------------------------------------------------

    def start(self) -> None:
        grace = self.acfg.misfire_grace_s
        weekly = cron_trigger(self.acfg.retrain_cron, CRON_KEY)
        self.scheduler.add_job(self.request_training, weekly, args=["scheduled retraining"], id="scheduled_retrain",
                               coalesce=True, max_instances=1, misfire_grace_time=grace)
        self.scheduler.add_job(self.request_check, "interval", seconds=self.acfg.check_interval_s,
                               id="new_trades_check", coalesce=True, max_instances=1, misfire_grace_time=grace)
        self.scheduler.start()
        folder = history_path(self.cfg).parent
        folder.mkdir(parents=True, exist_ok=True)
        self.observer.schedule(SourceFileHandler(frozenset({HISTORY_NAME}), self.on_history_event), str(folder),
                               recursive=False)
        self.observer.start()
        # SIGTERM only sets ctx.stop; relaying it to `wake` ends the wait at once.
        threading.Thread(target=lambda: (self.ctx.stop.wait(), self.wake.set()), name="stop-relay",
                         daemon=True).start()
        log.info("watching %s (%s); retraining on cron %r (UTC) or after %d new trades", folder,
                 "polling" if self.acfg.polling else "OS events", self.acfg.retrain_cron,
                 self.acfg.retrain_after_new_trades)

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5)
        self.scheduler.shutdown(wait=False)

    def run(self) -> None:
        """Until SIGTERM: wait for a request, check or train, refresh the heartbeat."""
        self.start()
        self.wake.set()  # the check requested at construction runs now, not a heartbeat period later
        try:
            self.beat("idle")
            while not self.ctx.stop.is_set():
                self.wake.wait(HEARTBEAT_S)
                self.wake.clear()
                if self.ctx.stop.is_set():
                    break
                self.handle_requests()
                self.beat("idle")
        finally:
            self.stop()

    def handle_requests(self) -> None:
        with self._lock:
            requests, check = self._requests, self._check_requested
            self._requests, self._check_requested = [], False
        reason = "; ".join(dict.fromkeys(requests))
        if check and not reason:
            try:
                reason = retrain_due(self.cfg) or ""
            except FatalError as exc:
                log.error("cannot read the history: %s", exc)
                return
        if reason:
            self.train(reason)

    def train(self, reason: str) -> None:
        self.beat("training", trigger=reason)
        try:
            record = train_once(self.cfg, stop=self.ctx.stop, trigger=reason, on_update=lambda _s: self.beat_now())
        except NotEnoughDataError as exc:
            log.info("not training (%s): %s", reason, exc)
            return
        except (FatalError, OSError, ValueError, RuntimeError) as exc:
            # One failed training must not end the daemon; the next trigger tries again.
            log.error("training failed (%s): %s", reason, exc)
            self.beat("error", error=str(exc))
            return
        self.trainings += 1
        self.ctx.extra.update(last_training_at=record["finished_at"], last_model_version=record["model_version"],
                              last_promoted=record["promoted"], trainings=self.trainings)

    def beat(self, state: str, **fields: Any) -> None:
        self.ctx.beat(state=state, **fields)
        self._last_beat = time.monotonic()

    def beat_now(self) -> None:
        """Refresh the heartbeat during a training, at most every :data:`HEARTBEAT_S`."""
        if time.monotonic() - self._last_beat >= HEARTBEAT_S:
            self.beat("training")


# ---------------------------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rl_trainer",
        description="Train the strategy-weight agent from state/pnl_history.csv and the candles. A candidate is "
                    "promoted to state/rl_model/checkpoint_latest.pt only when valid; every training is logged "
                    "in state/rl_training_log.json. Exit codes: 0 promoted (or daemon stopped), 2 bad config or "
                    "input, 3 not enough trades or history, 4 trained but not promoted.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--train", action="store_true", help="train once, promote if valid, exit")
    mode.add_argument("--loop", action="store_true",
                      help="daemon: retrain on the cron schedule or after enough new trades; SIGTERM stops it")
    parser.add_argument("--episodes", type=int, metavar="N",
                        help="training episodes (default: strategy_agent.episodes)")
    parser.add_argument("--seed", type=int, help="seed of the training (default: strategy_agent.ppo.seed)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--config", metavar="PATH", help="TOML configuration file")
    return parser


def load_trainer_config(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config)
    if args.episodes is not None:
        if args.episodes < 1:
            raise ConfigError(f"--episodes {args.episodes}: must be >= 1")
        cfg = replace_section(cfg, "strategy_agent", episodes=args.episodes)
    if args.seed is not None:
        acfg = cfg.strategy_agent
        cfg = replace_section(cfg, "strategy_agent", ppo=dataclasses.replace(acfg.ppo, seed=args.seed))
    cron_trigger(cfg.strategy_agent.retrain_cron, CRON_KEY)  # a bad expression stops every mode, naming its key
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_trainer_config(args)
    except FatalError as exc:
        print(f"rl_trainer: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.train:
        return run_train_command(cfg, progress=not args.quiet)
    return run_daemon_main(DAEMON_NAME, cfg, lambda ctx: TrainerDaemon(cfg, ctx).run())


def run_train_command(cfg: Config, progress: bool) -> int:
    """``--train``: one training with a progress bar; prints the outcome."""
    setup_logging(cfg)
    try:
        record = train_once(cfg, progress=progress)
    except NotEnoughDataError as exc:
        print(f"rl_trainer: not training: {exc}", file=sys.stderr)
        return EXIT_NOT_ENOUGH_DATA
    except FatalError as exc:
        print(f"rl_trainer: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"rl_trainer: error: cannot write under {cfg.state_dir}: {exc}", file=sys.stderr)
        return 1
    if not record["promoted"]:
        print(f"rl_trainer: model version {record['model_version']} not promoted: {record['reason']}",
              file=sys.stderr)
        return EXIT_NOT_PROMOTED
    model = record.get("holdout", {}).get("model", {})
    print(f"model version {record['model_version']} promoted to {latest_path(cfg)} "
          f"({record['episodes']} episodes, {record['total_steps']} steps, {record['duration_s']:.1f}s; "
          f"held-out mean reward {model.get('mean_reward')})")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
