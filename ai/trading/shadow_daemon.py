"""The ``shadow_ppo`` daemon: a decision on every newly closed candle, realized experiences, scheduled retraining.

The loop polls every ``trading_agent.poll_interval_s``: it makes sure a model is loaded, lets the
:class:`ai.trading.shadow_runner.ShadowRunner` decide on the newly closed candles (which candles those are, the
decisions and the experiences are described there), checks a live rollout's PPO book against the risk guard,
publishes the status (:mod:`ai.trading.status`) and beats its heartbeat.

No model yet: ``run`` first trains a small bootstrap model (``trading_agent.bootstrap_episodes`` episodes on
the newest candles) and says so in its log; with ``bootstrap_episodes = 0``, or while another training holds
the lock, it waits for a model and says that instead. A model file replaced by ``train`` or a retrain is
reloaded on the next poll.

Retraining on a schedule is :mod:`ai.trading.retrain`; the daemon starts its scheduler.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ai.ppo import CheckpointError
from ai.trading.common import DAEMON_NAME, TradingModel, load_candle_set, load_model
from ai.trading.retrain import RETRAIN_JOB_ID, start_scheduler
from ai.trading.shadow_runner import ShadowRunner
from ai.trading.status import publish_status
from ai.trading.training import TrainingBusyError, train_and_install
from core.config import Config
from core.contracts.rollout import check_risk_guard, read_rollout
from core.contracts.trader_status import read_trader_status
from core.contracts.trading_model import model_path
from core.daemon import DaemonContext, daemon_context
from core.errors import RetryableError
from core.timeframes import timeframe_to_ms

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------------- daemon


@dataclass
class ModelWatch:
    """The model in use and the file signature it was loaded from (a new file is reloaded)."""

    model: TradingModel | None = None
    signature: tuple[int, int] | None = None
    announced: str = ""
    bootstrap_tried: bool = False


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def _say_once(watch: ModelWatch, message: str, level: int = logging.INFO) -> None:
    if watch.announced != message:
        log.log(level, "%s", message)
        watch.announced = message


def ensure_model(cfg: Config, watch: ModelWatch, ctx: DaemonContext) -> TradingModel | None:
    """The current model: reloaded when the file changed, bootstrapped once when there is none."""
    path = model_path(cfg)
    signature = _signature(path)
    if signature is not None and signature == watch.signature:
        return watch.model
    if signature is None:
        if cfg.trading_agent.bootstrap_episodes > 0 and not watch.bootstrap_tried:
            watch.bootstrap_tried = True
            _bootstrap(cfg, watch, ctx)
            signature = _signature(path)
        if signature is None:
            _say_once(watch, f"no trained model at {path}: waiting for `python ai/shadow_ppo.py train` "
                             "(no decisions until then)")
            return None
    try:
        watch.model = load_model(path)
    except CheckpointError as exc:
        _say_once(watch, f"model unusable, waiting for a new one: {exc}", logging.ERROR)
        watch.signature, watch.model = signature, None
        return None
    watch.signature = signature
    meta_range = watch.model.train_range or {}
    log.info("model loaded from %s (trained on %s .. %s)", path, meta_range.get("start_time"),
             meta_range.get("end_time"))
    return watch.model


def _bootstrap(cfg: Config, watch: ModelWatch, ctx: DaemonContext) -> None:
    episodes = cfg.trading_agent.bootstrap_episodes
    _say_once(watch, f"no trained model yet: training a small bootstrap model ({episodes} episodes on the newest "
                     f"{cfg.trading_agent.retrain_candles} candles) before the first decision")
    ctx.beat(state="bootstrap-training")
    try:
        candles = load_candle_set(cfg, lookback_hours=cfg.trading_agent.retrain_candles
                                  * timeframe_to_ms(cfg.market.timeframe) / 3_600_000)
        train_and_install(cfg, candles, episodes, stop=ctx.stop)
    except TrainingBusyError as exc:
        _say_once(watch, f"waiting for the training in progress to produce a model: {exc}")
        watch.bootstrap_tried = False  # try again once that training is over and still no model exists
    except RetryableError as exc:
        _say_once(watch, f"bootstrap training postponed, candles unavailable: {exc}", logging.WARNING)
        watch.bootstrap_tried = False


def _guard_live_book(cfg: Config) -> None:
    """Check the live PPO book against the risk guard, with its capital from the trader's status."""
    rollout = read_rollout(cfg)
    if rollout is None or not rollout.live or not rollout.enable_risk_guard:
        return
    status = read_trader_status(cfg)
    equity = status.equity if status is not None else None
    if equity is not None and equity > 0:
        check_risk_guard(cfg, equity * rollout.capital_percentage / 100.0)


def run_daemon(cfg: Config, max_decisions: int | None = None) -> int:
    """The ``run`` command's loop; returns the exit code (0 on SIGTERM or after ``max_decisions``)."""
    with daemon_context(DAEMON_NAME, cfg) as ctx:
        log.info("shadow_ppo starting (pid %d)", os.getpid())
        scheduler = start_scheduler(cfg, ctx.stop)
        watch = ModelWatch()
        runner: ShadowRunner | None = None
        made = 0
        try:
            while not ctx.stop.is_set():
                model = ensure_model(cfg, watch, ctx)
                if model is not None:
                    if runner is None:
                        runner = ShadowRunner(cfg, model)
                    runner.model = model
                    budget = None if max_decisions is None else max_decisions - made
                    made += _poll_safely(runner, budget, ctx)
                    _guard_live_book(cfg)
                publish_status(cfg)
                job = scheduler.get_job(RETRAIN_JOB_ID)
                ctx.beat(state="running" if model is not None else "waiting-for-model", decisions=made,
                         model_loaded=model is not None,
                         next_retrain_at=job.next_run_time.isoformat() if job and job.next_run_time else None)
                if max_decisions is not None and made >= max_decisions:
                    log.info("made %d decisions (--max-decisions): stopping", made)
                    break
                ctx.wait(cfg.trading_agent.poll_interval_s)
        finally:
            scheduler.shutdown(wait=False)
        log.info("shadow_ppo stopped after %d decisions", made)
    return 0


def _poll_safely(runner: ShadowRunner, budget: int | None, ctx: DaemonContext) -> int:
    """One poll; a retryable failure (exchange down) is logged and retried at the next poll."""
    try:
        return runner.poll(budget, stop=ctx.stop)
    except RetryableError as exc:
        log.warning("candles unavailable, retrying at the next poll: %s", exc)
        return 0
