"""The ``shadow_ppo`` daemon: a decision on every newly closed candle, realized experiences, scheduled retraining.

Which candles are "newly closed". When the paper trader publishes a fresh ``runtime/trader_status.json`` for
the same symbol and timeframe (``trading_agent.follow_trader``), the daemon follows its replay: candles up to
the trader's ``last_candle.timestamp`` count as closed, so a synthetic or CSV replay is shadowed at the
trader's pace (and when that status goes stale, a replay is waited for rather than raced through). In a replay
the daemon keeps ``trading_agent.replay_lead_candles`` ahead of the trader's last candle: the trader publishes
its status only every few seconds, so without a lead each decision would reach it candles too late for the
PPO book to follow (a decision still uses only the candles up to its own). Otherwise it polls the candle
source every ``trading_agent.poll_interval_s`` and acts on candles newer than its last decision. On a first
start it decides on the newest candle only (no deciding on the past), or from the trader's candle on when it
follows one; after a pause it catches up on at most ``trading_agent.max_catch_up_candles`` candles.

Each decision (``runtime/rl_v3_decisions.jsonl``, bounded) is the model's deterministic action on the
observation of that candle, with the shadow account's resulting exposure and the ``shadow_mode`` flag. The
shadow account applies the decisions with the environment's accounting, so once the next candle closes the
realized experience (observation, action, reward, next observation, and both candles) is appended to
``state/rl_v3/experiences.jsonl`` (bounded by ``trading_agent.max_experiences``). The cursor, the pending
decision and the shadow account are saved in ``state/rl_v3/shadow_state.json`` after every candle, so a
restart resumes where it stopped.

No model yet: ``run`` first trains a small bootstrap model (``trading_agent.bootstrap_episodes`` episodes on
the newest candles) and says so in its log; with ``bootstrap_episodes = 0``, or while another training holds
the lock, it waits for a model and says that instead. A model file replaced by ``train`` or a retrain is
reloaded on the next poll.

Retraining on a schedule is :mod:`ai.trading.retrain`; the daemon starts its scheduler.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.ppo_book import check_risk_guard, latest_decision, read_rollout, shadow_mode
from agents.ppo_book import decisions_path as decisions_file
from ai.ppo.algorithm import CheckpointError
from ai.trading.common import (
    DAEMON_NAME,
    PRODUCER,
    TradingModel,
    experiences_path,
    finite_or_none,
    load_candle_set,
    load_model,
    model_path,
    shadow_state_path,
    status_path,
    trading_symbol,
)
from ai.trading.env import Account, TradingEnvOptions, next_exposure, options_from_config
from ai.trading.features import MarketFeatures, assemble, compute_market_features
from ai.trading.retrain import RETRAIN_JOB_ID, start_scheduler
from ai.trading.training import TrainingBusyError, train_and_install
from core.atomic import publish_json, read_json, utc_now_iso
from core.config import Config
from core.daemon import DaemonContext, daemon_context, read_heartbeat
from core.errors import RetryableError
from core.jsonl import append_jsonl
from market.candles import COLUMNS, load_candles, ms_to_iso, timeframe_to_ms

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------- shadow state


@dataclass
class ShadowState:
    """What the daemon resumes from: its cursor, the decision waiting for its next candle, the shadow account."""

    symbol: str
    timeframe: str
    cursor_ts: int | None = None
    pending: dict[str, Any] | None = None
    account: dict[str, float] | None = None
    decisions: int = 0
    experiences: int = 0
    last_decision_at: str | None = None
    followed_trader: bool = False
    trader_ts: int | None = None


def load_shadow_state(cfg: Config, symbol: str, timeframe: str) -> ShadowState:
    """The saved state for ``symbol`` / ``timeframe``, or a fresh one (a state of another market is not reused)."""
    result = read_json(shadow_state_path(cfg))
    fresh = ShadowState(symbol, timeframe)
    if not result.ok or result.data is None:
        if result.status != "absent":
            log.warning("starting a fresh shadow state: %s", result.reason)
        return fresh
    doc = result.data
    if doc.get("symbol") != symbol or doc.get("timeframe") != timeframe:
        log.info("shadow state was for %s %s; starting fresh for %s %s", doc.get("symbol"), doc.get("timeframe"),
                 symbol, timeframe)
        return fresh
    try:
        state = ShadowState(**{k: doc.get(k) for k in asdict(fresh)})
        state.decisions, state.experiences = int(state.decisions or 0), int(state.experiences or 0)
        state.followed_trader = bool(state.followed_trader)
        if state.account is not None:
            Account.from_row(state.account)
        return state
    except (TypeError, ValueError, KeyError) as exc:
        log.warning("starting a fresh shadow state: %s is invalid (%s)", shadow_state_path(cfg).name, exc)
        return fresh


def save_shadow_state(cfg: Config, state: ShadowState) -> None:
    publish_json(shadow_state_path(cfg), PRODUCER, finite_or_none(asdict(state)))


def trader_horizon(cfg: Config, symbol: str, timeframe: str) -> int | None:
    """Timestamp of the trader's last processed candle when its status file is fresh and for this market."""
    if not cfg.trading_agent.follow_trader:
        return None
    result = read_json(cfg.runtime_dir / "trader_status.json", max_age_s=cfg.trading_agent.trader_status_max_age_s)
    if not result.ok or result.data is None:
        return None
    doc = result.data
    last = doc.get("last_candle")
    if doc.get("symbol") != symbol or doc.get("timeframe") != timeframe or not isinstance(last, dict):
        return None
    ts = last.get("timestamp")
    return int(ts) if isinstance(ts, int) and not isinstance(ts, bool) else None


def _candle_row(frame: pd.DataFrame, i: int) -> dict[str, Any]:
    row = frame.iloc[i]
    return {"timestamp": int(row["timestamp"]), **{c: float(row[c]) for c in COLUMNS[1:]}}


def _vector(values: np.ndarray) -> list[float]:
    return [round(float(x), 6) for x in values]


# ------------------------------------------------------------------------------------------------- the runner


class ShadowRunner:
    """Decides on new candles with a model and records experiences; the daemon calls :meth:`poll`."""

    def __init__(self, cfg: Config, model: TradingModel) -> None:
        self.cfg = cfg
        self.model = model
        self.symbol = trading_symbol(cfg)
        self.timeframe = cfg.market.timeframe
        self.step_ms = timeframe_to_ms(self.timeframe)
        self.options = TradingEnvOptions(**options_from_config(cfg))
        self.state = load_shadow_state(cfg, self.symbol, self.timeframe)
        self.account = (Account.from_row(self.state.account) if self.state.account
                        else Account.flat(1, self.options.initial_equity))
        self._waiting_announced = False

    # -- candles ---------------------------------------------------------------------------------------------

    def _may_have_new(self, horizon: int | None) -> bool:
        cursor = self.state.cursor_ts
        if cursor is None:
            return True
        if horizon is not None:
            return horizon > cursor
        if self.state.followed_trader and self.cfg.market.data_source.strip().lower() != "ccxt":
            # A replay's candles are all "closed" already: without the trader's pace the daemon would race to
            # the end of the data, so it waits for the trader instead.
            if not self._waiting_announced:
                log.info("the trader's status is stale or absent: waiting for its replay to continue")
                self._waiting_announced = True
            return False
        # The candle after the cursor closes one timeframe after it opens: no need to ask before then.
        return time.time() * 1000 >= cursor + 2 * self.step_ms

    def load_closed_candles(self, horizon: int | None) -> pd.DataFrame:
        """The source's candles, cut at ``horizon`` (a synthetic market is grown to reach it)."""
        frame = load_candles(self.cfg, [self.symbol])[self.symbol]
        if horizon is not None and len(frame) and self.cfg.market.data_source.strip().lower() == "synthetic":
            last = int(frame["timestamp"].iloc[-1])
            if horizon > last:
                needed = len(frame) + (horizon - last) // self.step_ms
                frame = load_candles(self.cfg, [self.symbol], limit=int(needed))[self.symbol]
        if horizon is not None:
            frame = frame[frame["timestamp"] <= horizon]
        return frame.reset_index(drop=True)

    def replay_reach(self, horizon: int | None) -> int | None:
        """The newest candle to decide on: the trader's, plus ``replay_lead_candles`` in a replay (its later
        candles exist already; deciding them ahead lets the trader find each candle's decision in time)."""
        if horizon is None or self.cfg.market.data_source.strip().lower() == "ccxt":
            return horizon
        return horizon + self.cfg.trading_agent.replay_lead_candles * self.step_ms

    def new_positions(self, frame: pd.DataFrame, first_ts: int | None = None) -> np.ndarray:
        """Positions in ``frame`` of the candles to decide on now.

        On a first start that is the newest candle only (no deciding on the past), or, following the trader,
        its candle ``first_ts`` and those after it.
        """
        if frame.empty:
            return np.array([], dtype=np.int64)
        ts = frame["timestamp"].to_numpy(np.int64)
        if self.state.cursor_ts is None:
            if first_ts is not None and np.any(ts >= first_ts):
                return np.flatnonzero(ts >= first_ts)[:self.cfg.trading_agent.max_catch_up_candles]
            return np.array([len(ts) - 1])
        positions = np.flatnonzero(ts > self.state.cursor_ts)
        limit = self.cfg.trading_agent.max_catch_up_candles
        if positions.size > limit:
            log.warning("%d candles since the last decision; deciding on the newest %d only", positions.size, limit)
            positions = positions[-limit:]
        return positions

    def _restart_if_rewound(self, horizon: int | None) -> None:
        previous = self.state.trader_ts
        if horizon is not None and previous is not None and horizon < previous:
            log.warning("the trader went back from %s to %s (a reset replay); restarting the shadow account there",
                        ms_to_iso(previous), ms_to_iso(horizon))
            self.state = ShadowState(self.symbol, self.timeframe, decisions=self.state.decisions,
                                     experiences=self.state.experiences, followed_trader=True)
            self.account = Account.flat(1, self.options.initial_equity)

    def poll(self, budget: int | None = None, stop: threading.Event | None = None) -> int:
        """Decide on every newly closed candle (at most ``budget``); returns the decisions made."""
        horizon = trader_horizon(self.cfg, self.symbol, self.timeframe)
        self._restart_if_rewound(horizon)
        if horizon is not None:
            self.state.followed_trader = True
            self.state.trader_ts = horizon
            self._waiting_announced = False
        reach = self.replay_reach(horizon)
        if not self._may_have_new(reach):
            return 0
        frame = self.load_closed_candles(reach)
        positions = self.new_positions(frame, horizon)
        if budget is not None:
            positions = positions[:max(0, budget)]
        if positions.size == 0:
            return 0
        first = max(0, int(positions[0]) - self.cfg.trading_agent.feature_history)
        window = frame.iloc[first:int(positions[-1]) + 1].reset_index(drop=True)
        features = compute_market_features(window, self.options.high_volatility_percentile)
        made = 0
        for position in positions:
            if stop is not None and stop.is_set():
                break
            self.process(window, features, int(position) - first)
            made += 1
        return made

    # -- one candle ------------------------------------------------------------------------------------------

    def observation(self, features: MarketFeatures, j: int) -> np.ndarray:
        return assemble(features.values[j:j + 1], self.account.raw_features(features.direction[j:j + 1],
                                                                             self.options))[0]

    def process(self, window: pd.DataFrame, features: MarketFeatures, j: int) -> dict[str, Any]:
        """Settle the pending decision with candle ``j`` (an experience), then decide on candle ``j``."""
        pending = self.state.pending
        if pending is not None:
            if j > 0 and int(pending["timestamp"]) == int(features.timestamps[j - 1]):
                self.record_experience(window, features, j, pending)
            else:
                log.info("candle %s does not follow the pending decision's candle %s: no experience for it",
                         ms_to_iso(int(features.timestamps[j])), ms_to_iso(int(pending["timestamp"])))
        return self.decide(window, features, j)

    def record_experience(self, window: pd.DataFrame, features: MarketFeatures, j: int,
                          pending: dict[str, Any]) -> dict[str, Any]:
        outcome = self.account.step(np.array([int(pending["action"])]), np.array([float(pending["close"])]),
                                    np.array([features.closes[j]]), np.array([bool(pending["high_volatility"])]),
                                    np.array([float(pending["direction"])]), self.options)
        record = {
            "timestamp": int(pending["timestamp"]),
            "next_timestamp": int(features.timestamps[j]),
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "observation": pending["observation"],
            "action": int(pending["action"]),
            "action_name": pending["action_name"],
            "reward": float(outcome.reward[0]),
            "next_observation": _vector(self.observation(features, j)),
            "step_return": float(outcome.step_return[0]),
            "exposure": float(self.account.exposure[0]),
            "equity": float(self.account.equity[0]),
            "terminated": bool(outcome.terminated[0]),
            "candle": pending["candle"],
            "next_candle": _candle_row(window, j),
            "recorded_at": utc_now_iso(),
        }
        append_jsonl(experiences_path(self.cfg), record, max_lines=self.cfg.trading_agent.max_experiences)
        self.state.experiences += 1
        if outcome.terminated[0]:
            log.warning("the shadow account fell to %.2f (wiped out); it starts again from %.2f",
                        float(self.account.equity[0]), self.options.initial_equity)
            self.account = Account.flat(1, self.options.initial_equity)
        return record

    def decide(self, window: pd.DataFrame, features: MarketFeatures, j: int) -> dict[str, Any]:
        observation = self.observation(features, j)
        prediction = self.model.predict(observation)
        previous = float(self.account.exposure[0])
        target = float(next_exposure(self.account.exposure, np.array([prediction.action]), self.options)[0])
        ts = int(features.timestamps[j])
        record = {
            "timestamp": ts,
            "candle_time": ms_to_iso(ts),
            "decided_at": utc_now_iso(),
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "close": float(features.closes[j]),
            **prediction.as_dict(),
            "previous_exposure": previous,
            "exposure": target,
            "shadow_equity": float(self.account.equity[0]),
            "shadow_mode": shadow_mode(self.cfg),
            "model_sha256": self.model.sha256,
        }
        append_jsonl(decisions_file(self.cfg), finite_or_none(record), max_lines=self.cfg.logging.jsonl_max_lines)
        self.state.pending = {
            "timestamp": ts, "close": float(features.closes[j]), "observation": _vector(observation),
            "action": prediction.action, "action_name": prediction.action_name,
            "high_volatility": bool(features.high_volatility[j]), "direction": float(features.direction[j]),
            "candle": _candle_row(window, j),
        }
        self.state.cursor_ts = ts
        self.state.decisions += 1
        self.state.last_decision_at = record["decided_at"]
        self.state.account = self.account.row()
        save_shadow_state(self.cfg, self.state)
        log.info("%s %s: %s (confidence %.2f), exposure %+.2f -> %+.2f%s", self.symbol, record["candle_time"],
                 prediction.action_name, prediction.confidence, previous, target,
                 " [shadow]" if record["shadow_mode"] else "")
        return record


# ----------------------------------------------------------------------------------------------------- status


def count_lines(path: Path) -> int:
    """Non-empty lines of a text file (0 when absent)."""
    try:
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    except FileNotFoundError:
        return 0


def status_payload(cfg: Config) -> dict[str, Any]:
    """The status of the trading PPO (what ``status`` prints and ``runtime/rl_v3_status.json`` holds)."""
    max_age = max(60.0, 3 * cfg.trading_agent.poll_interval_s)
    heartbeat = read_heartbeat(cfg, DAEMON_NAME, max_age_s=max_age)
    active = heartbeat is not None and heartbeat.get("state") not in ("stopped",)
    model_error = None
    trained_range = trained_at = None
    try:
        model = load_model(model_path(cfg))
        trained_range, trained_at = model.train_range, model.extra.get("trained_at")
    except CheckpointError as exc:
        model, model_error = None, str(exc)
    decision = latest_decision(cfg)
    rollout = read_rollout(cfg)
    return finite_or_none({
        "active": active,
        "shadow_mode": shadow_mode(cfg),
        "model_loaded": model is not None,
        "model_path": str(model_path(cfg)),
        "model_error": model_error,
        "trained_range": trained_range,
        "trained_at": trained_at,
        "symbol": trading_symbol(cfg),
        "timeframe": cfg.market.timeframe,
        "experiences_collected": count_lines(experiences_path(cfg)),
        "last_decision_at": decision.get("decided_at") if decision else None,
        "last_decision": {k: decision.get(k) for k in ("candle_time", "action_name", "confidence", "exposure",
                                                       "shadow_mode")} if decision else None,
        "rollout": {"capital_percentage": rollout.capital_percentage, "stage": rollout.stage} if rollout else None,
        "daemon": {k: heartbeat.get(k) for k in ("pid", "uptime_s", "state", "next_retrain_at")} if heartbeat else None,
    })


def publish_status(cfg: Config) -> dict[str, Any]:
    return publish_json(status_path(cfg), PRODUCER, status_payload(cfg))


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
    status = read_json(cfg.runtime_dir / "trader_status.json")
    equity = (status.data or {}).get("equity") if status.ok else None
    if isinstance(equity, (int, float)) and not isinstance(equity, bool) and equity > 0:
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
