"""The ``shadow_ppo`` daemon: a decision on every newly closed candle, realized experiences, scheduled retraining.

The loop polls every ``trading_agent.poll_interval_s``: it makes sure a model is loaded, lets the
:class:`ai.trading.shadow_runner.ShadowRunner` decide on the newly closed candles (which candles those are, the
decisions and the experiences are described there), checks a live rollout's PPO book against the risk guard,
publishes the status (:mod:`ai.trading.status`) and beats its heartbeat.

No model yet: ``run`` first trains a small bootstrap model (``trading_agent.bootstrap_episodes`` episodes) and
says so in its log; with ``bootstrap_episodes = 0``, or while another training holds the lock, it waits for a
model and says that instead. The bootstrap model never sees a candle it will decide on: it trains on the newest
``trading_agent.retrain_candles`` candles before the trader's clock (the candle the shadow decides on first);
in a replay it waits for the trader's status, and while fewer than ``warmup_candles + episode_length`` candles
precede that clock (a replay at its start) it waits for the trader to get that far, saying so. Without a trader
on exchange candles the clock is now, so every closed candle is before it. A model file replaced by ``train``
or a retrain is reloaded on the next poll; the runner itself skips candles a model has seen
(:mod:`ai.trading.shadow_runner`).

Retraining on a schedule is :mod:`ai.trading.retrain`; the daemon starts its scheduler
(:mod:`ai.trading.retrain_job`). At rest the daemon decides with the numpy forward pass of the model
(:mod:`ai.ppo.numpy_policy`) and never imports torch; a bootstrap training or a retrain loads it when it runs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ai.ppo import CheckpointError
from ai.trading.common import (
    DAEMON_NAME,
    CandleSet,
    TradingModel,
    candles_until,
    is_replay_source,
    load_candle_set,
    load_model,
    trader_clock,
    trading_symbol,
)
from ai.trading.retrain_job import RETRAIN_JOB_ID, start_scheduler
from ai.trading.shadow_runner import ShadowRunner
from ai.trading.status import publish_status
from core.config import Config
from core.contracts.rollout import check_risk_guard, read_rollout
from core.contracts.trader_status import read_trader_status
from core.contracts.trading_model import model_path
from core.daemon import DaemonContext, daemon_context, release_free_memory
from core.errors import RetryableError
from core.timeframes import ms_to_iso, timeframe_to_ms

log = logging.getLogger(__name__)

DECISIONS_WRITE = "decisions and experiences"
"""How a failed write of ``runtime/rl_v3_decisions.jsonl`` / ``state/rl_v3/experiences.jsonl`` is reported."""
STATUS_WRITE = "rl_v3_status.json"
"""How a failed write of the shadow status is reported."""


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
            if signature is None and not watch.bootstrap_tried:
                return None  # the bootstrap waits (for the trader, for candles): its reason has been said
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
    from ai.trading.training import TrainingBusyError, train_and_install  # torch: loaded only to train

    episodes = cfg.trading_agent.bootstrap_episodes
    try:
        candles = bootstrap_candles(cfg)
        if isinstance(candles, str):
            _say_once(watch, candles)
            watch.bootstrap_tried = False  # try again at the next poll
            return
        _say_once(watch, f"no trained model yet: training a small bootstrap model ({episodes} episodes on "
                         f"{len(candles.frame)} candles up to {ms_to_iso(int(candles.frame['timestamp'].iloc[-1]))}"
                         ", all before the first candle it decides on)")
        ctx.beat(state="bootstrap-training")
        train_and_install(cfg, candles, episodes, stop=ctx.stop)
    except TrainingBusyError as exc:
        _say_once(watch, f"waiting for the training in progress to produce a model: {exc}")
        watch.bootstrap_tried = False  # try again once that training is over and still no model exists
    except RetryableError as exc:
        _say_once(watch, f"bootstrap training postponed, candles unavailable: {exc}", logging.WARNING)
        watch.bootstrap_tried = False


def bootstrap_min_candles(cfg: Config) -> int:
    """Candles a bootstrap model needs before the trader's clock: the warm-up and one episode after it."""
    return cfg.trading_agent.warmup_candles + cfg.trading_agent.episode_length


def bootstrap_candles(cfg: Config) -> CandleSet | str:
    """The candles of the bootstrap model, all before the first candle the shadow will decide on, or why
    there are none yet (the reason to wait).

    Following the trader: the newest ``retrain_candles`` candles before its clock. In a replay without its
    clock: none (wait for it). Without a trader on exchange candles: the newest closed candles.
    """
    ta = cfg.trading_agent
    symbol, timeframe = trading_symbol(cfg), cfg.market.timeframe
    clock = trader_clock(cfg, symbol, timeframe)
    if clock is None:
        if ta.follow_trader and is_replay_source(cfg):
            return ("no trained model yet: waiting for the paper trader's status before training a bootstrap "
                    "model (it trains only on candles before the trader's clock)")
        return load_candle_set(cfg, lookback_hours=ta.retrain_candles * timeframe_to_ms(timeframe) / 3_600_000)
    before = candles_until(cfg, symbol, clock - 1, window=ta.retrain_candles)
    need = bootstrap_min_candles(cfg)
    if len(before) < need:
        return (f"no trained model yet: {len(before)} candle(s) before the trader's clock {ms_to_iso(clock)}, a "
                f"bootstrap model needs {need} (trading_agent.warmup_candles + episode_length); waiting for the "
                "trader to get that far (or train one with `python ai/shadow_ppo.py train` on older candles)")
    return CandleSet(before, symbol, timeframe, cfg.market.data_source.strip().lower())


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
                _publish_status_safely(cfg, ctx)
                release_free_memory()  # a poll's candle frames are not kept as resident memory until the next
                job = scheduler.get_job(RETRAIN_JOB_ID)
                ctx.beat(state="running" if model is not None else "waiting-for-model", decisions=made,
                         model_loaded=model is not None,
                         waiting=(runner.waiting if runner is not None and model is not None else watch.announced)
                         or None,
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
    """One poll; a retryable failure (exchange down) is logged and retried at the next poll, a failed write
    (read-only folder, full disk) is reported by the context and retried after its backoff."""
    if not ctx.retry_due(DECISIONS_WRITE):
        return 0
    try:
        made = runner.poll(budget, stop=ctx.stop)
    except RetryableError as exc:
        log.warning("candles unavailable, retrying at the next poll: %s", exc)
        return 0
    except OSError as exc:
        ctx.write_failed(DECISIONS_WRITE, exc)
        return 0
    ctx.write_ok(DECISIONS_WRITE)
    return made


def _publish_status_safely(cfg: Config, ctx: DaemonContext) -> None:
    """Publish the shadow status; a failed write keeps the previous file and shows in the heartbeat."""
    try:
        publish_status(cfg)
    except OSError as exc:
        ctx.write_failed(STATUS_WRITE, exc)
    else:
        ctx.write_ok(STATUS_WRITE)
