"""Publishes the strategy-weight agent's current weights for the weights bridge.

    python ai/rl_inference.py --update                   # write the RL weights file once
    python ai/rl_inference.py --loop --interval 300      # daemon `rl_inference`

The decision time is the paper trader's clock (the close of the last candle it processed, from its status,
:mod:`core.contracts.trader_status`), which is the market's "now" in replay mode too. Without a trader status it
is now, or the newest data's time when the data is older: the later of the last trade's close and the last
candle's close. It is never after now, and no trade or candle after it is used. The state is built
the way the training environment builds it, with the feature settings the model was trained with: the
agent's sleeve is replayed over the last ``window_periods`` rebalancing periods (starting from equal
weights) so the portfolio features describe its own recent allocation, then the deterministic weights (the
Dirichlet mean) for the decision time are published through :func:`core.contracts.weights.publish_weights` (to
:func:`core.contracts.weights.rl_weights_path`) with the
model version, the decision time and the 42 features it saw (``generated_at`` is in the envelope).

No look-ahead: the model's training data (``training_data.end`` in its metadata: the close of the last trade
it was trained on) must end at or before the decision time. A model trained on later data (a replay started
again over an older history, a clock set back) is refused: nothing is written, an earlier weights file decided
for a time after the decision time is withdrawn, and ``--update`` exits 3 (the trainer's next model, trained on
the trades up to the trader's clock, is usable). With no model yet nothing is written either (``--update`` exits
3; the daemon keeps waiting); the bridge falls back to its other sources meanwhile. The daemon updates every ``--interval`` seconds (``strategy_agent.inference_interval_s``)
and, debounced, right after a new checkpoint is promoted or the trade history changes (watchdog; atomic
replacements arrive as moves; one update per burst of events, see :class:`core.watch.DebouncedWorker`). Between
updates the daemon keeps the model, the recent trades (read incrementally) and the candles
(:mod:`ai.allocation.live_inputs`), so an update costs the same at 1k or 100k trades, and it predicts with the
numpy forward pass of the model: it never imports torch. SIGTERM finishes the current write and exits 0.

Exit codes: 0 written (or daemon stopped), 1 the output could not be written, 2 bad configuration or unusable
model files, 3 no model yet.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from apscheduler.schedulers.background import BackgroundScheduler

from ai.allocation.agent import StrategyAgent, load_agent, with_feature_params
from ai.allocation.env import StrategyWeightEnv, history_from_frames, load_primary_candles, load_trades
from ai.allocation.features import FEATURE_NAMES, ms_to_iso, to_ms
from ai.allocation.live_inputs import LiveInputs, decision_window
from ai.ppo import CheckpointError
from analytics.returns import cache_history_reads
from core.atomic import parse_iso, read_json
from core.cli import add_config_argument, load_command_config, with_changes
from core.config import Config
from core.contracts.allocation_model import LATEST_NAME, model_dir
from core.contracts.pnl_history import HISTORY_NAME
from core.contracts.trader_status import read_trader_status
from core.contracts.weights import RL_WEIGHTS_NAME, publish_weights, rl_weights_path
from core.daemon import DaemonContext, release_free_memory, run_daemon_main
from core.errors import ConfigError, ExitCode, FatalError
from core.logging_setup import setup_logging
from core.timeframes import timeframe_to_ms
from core.watch import MAX_DELAY_FACTOR, DebouncedWorker, SourceFileHandler, make_observer

log = logging.getLogger(__name__)

DAEMON_NAME = "rl_inference"
PRODUCER = "rl_inference"
OUTPUT_NAME = RL_WEIGHTS_NAME
HEARTBEAT_S = 30.0
"""Longest time between two heartbeats of the daemon."""


class NoModelError(FatalError):
    """No trained model exists yet; train one with ``python ai/rl_trainer.py --train``."""


class ModelAfterDecisionTimeError(NoModelError):
    """The model in force was trained on data after the decision time: no model is usable at that time."""


def output_path(cfg: Config) -> Path:
    """Where the weights are published (the weights contract's path)."""
    return rl_weights_path(cfg)


def trader_clock_ms(cfg: Config) -> int | None:
    """Close time of the last candle the paper trader processed (from its status), or None.

    In replay mode the trader's clock, not the wall clock, is "now" for its trades and candles.
    """
    status = read_trader_status(cfg)
    stamp = status.last_candle_ts if status is not None else None
    if stamp is None:
        return None
    timeframe = status.timeframe if status is not None else None
    try:
        return stamp + timeframe_to_ms(timeframe or cfg.market.timeframe)
    except ConfigError:
        return None


def decision_time_ms(trades: pd.DataFrame, candles: pd.DataFrame | None, timeframe: str,
                     now: datetime | None = None, trader_clock: int | None = None) -> int:
    """The time the weights are for, never after now.

    The trader's clock when it is known; otherwise now, or the newest data's time when that is older
    (the later of the last trade's close and the last candle's close).
    """
    now_ms = int((now or datetime.now(timezone.utc)).timestamp() * 1000)
    if trader_clock is not None:
        return min(now_ms, trader_clock)
    latest = []
    if len(trades):
        latest.append(int(to_ms(pd.DatetimeIndex(trades["closed_at"])).max()))
    if candles is not None and len(candles):
        latest.append(int(candles["timestamp"].max()) + timeframe_to_ms(timeframe))
    return min(now_ms, max(latest)) if latest else now_ms


def current_state(cfg: Config, agent: StrategyAgent, trades: pd.DataFrame, candles: pd.DataFrame | None,
                  t_ms: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The observation at ``t_ms`` after replaying the agent's sleeve, and the grid it was built on."""
    acfg = with_feature_params(cfg.strategy_agent, agent.feature_params)
    replay_periods = acfg.window_periods
    # The replay's first decision needs a full look-back window behind it: twice the window covers both.
    history = history_from_frames(cfg, trades, candles, end=t_ms, max_periods=2 * replay_periods, acfg=acfg,
                                  last_boundaries=replay_periods + 1)  # the replay's boundaries only
    length = min(replay_periods, history.n_periods)
    env = StrategyWeightEnv(history, acfg)
    obs, _ = env.reset(options={"start": history.n_periods - length, "length": length})
    for _ in range(length):
        obs, _, terminated, truncated, _ = env.step(agent.weights_array(obs))
        if terminated:
            break  # a ruined sleeve: its last state is still the state at the decision time's end
    return obs, history.data_range()


def trained_until_ms(agent: StrategyAgent) -> int | None:
    """End of the model's training data (ms; the close of its last trade), or None when its metadata lacks it."""
    end = agent.training_data.get("end")
    if not isinstance(end, str):
        return None
    try:
        return int(parse_iso(end).timestamp() * 1000)
    except ValueError:
        return None


def check_no_look_ahead(cfg: Config, agent: StrategyAgent, t_ms: int) -> None:
    """Refuse a model whose training data ends after the decision time ``t_ms``
    (:class:`ModelAfterDecisionTimeError`), withdrawing weights published for a time after ``t_ms``."""
    end = trained_until_ms(agent)
    if end is None or end <= t_ms:
        return
    withdrawn = withdraw_later_weights(cfg, t_ms)
    raise ModelAfterDecisionTimeError(
        f"model version {agent.model_version} was trained on trades up to {ms_to_iso(end)}, after the decision "
        f"time {ms_to_iso(t_ms)} (the trader's clock): its weights would use the future, so none are published"
        f"{' and the earlier ones were withdrawn' if withdrawn else ''}. A new replay over an older history? The "
        "trainer's next model (trained on trades up to the clock) is used once it exists; the bridge falls back "
        "to its other sources meanwhile")


def withdraw_later_weights(cfg: Config, t_ms: int) -> bool:
    """Delete the published weights when they were decided for a time after ``t_ms``; True when deleted."""
    path = output_path(cfg)
    published = read_json(path)
    decided = published.data.get("decision_time") if published.ok and published.data is not None else None
    try:
        later = isinstance(decided, str) and parse_iso(decided).timestamp() * 1000 > t_ms
    except ValueError:
        later = False
    if later:
        path.unlink(missing_ok=True)
        log.warning("withdrew %s: decided for %s, after the decision time %s", path, decided, ms_to_iso(t_ms))
    return later


def compute_weights(cfg: Config, agent: StrategyAgent, now: datetime | None = None,
                    inputs: LiveInputs | None = None) -> dict[str, Any]:
    """The weights for now and what they were computed from (the payload of the published document).

    ``inputs``: the daemon's trades and candles kept between updates (default: read both in full now).
    :class:`ModelAfterDecisionTimeError` when the model was trained on data after the decision time.
    """
    trades = inputs.trades(agent) if inputs is not None else load_trades(cfg)
    candles = inputs.candles() if inputs is not None else load_primary_candles(cfg)
    t_ms = decision_time_ms(trades, candles, cfg.market.timeframe, now, trader_clock_ms(cfg))
    if inputs is not None and not inputs.covers(agent, t_ms):
        trades = inputs.all_trades(agent, t_ms)
    elif inputs is None:
        trades = decision_window(cfg, agent, trades, t_ms)  # features from the recent trades only
    check_no_look_ahead(cfg, agent, t_ms)
    obs, data_range = current_state(cfg, agent, trades, candles, t_ms)
    return {
        "weights": agent.weights(obs),
        "model_version": agent.model_version,
        "decision_time": ms_to_iso(t_ms),
        "state": {name: float(value) for name, value in zip(FEATURE_NAMES, obs, strict=True)},
        "data_range": data_range,
        "model_trained_on": agent.training_data,
        "deterministic": True,
    }


def update_once(cfg: Config, now: datetime | None = None, inputs: LiveInputs | None = None) -> dict[str, Any]:
    """Load the latest model, compute and publish the weights; returns the document written.

    ``inputs`` keeps the model, trades and candles between calls (the daemon); without it all are read now.
    Raises :class:`NoModelError` when there is no model yet (nothing is written).
    """
    agent = inputs.agent() if inputs is not None else load_agent(cfg, numpy_policy=True)
    if agent is None:
        raise NoModelError(f"no model in {model_dir(cfg)} yet; train one with `python ai/rl_trainer.py --train` "
                           "(the weights bridge falls back to its other sources meanwhile)")
    payload = compute_weights(cfg, agent, now, inputs)
    weights = payload.pop("weights")
    return publish_weights(output_path(cfg), PRODUCER, weights, **payload)


# ---------------------------------------------------------------------------------------------- daemon


class InferenceDaemon:
    """Updates the weights on a timer and after file changes; one update at a time."""

    def __init__(self, cfg: Config, ctx: DaemonContext) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.acfg = cfg.strategy_agent
        self.scheduler = BackgroundScheduler(timezone=timezone.utc)
        self.observer = make_observer(self.acfg.polling, self.acfg.poll_interval_s)
        self.inputs = LiveInputs(cfg)
        # File events: one update per burst, on its own thread, as soon as the burst is quiet.
        self.on_change = DebouncedWorker(lambda: self.update("file change"), self.acfg.debounce_s,
                                         self.acfg.debounce_s * MAX_DELAY_FACTOR, name="rl_inference-on-change")
        self._update_lock = threading.Lock()
        self._last_outcome = ""
        self.updates = 0

    def update(self, trigger: str) -> None:
        """One update; problems are logged (once per distinct problem) and never end the daemon."""
        with self._update_lock:
            if self.ctx.stop.is_set():
                return
            if not self.ctx.retry_due(OUTPUT_NAME):
                self.ctx.beat()  # backing off after a failed write; the heartbeat keeps the reason
                return
            try:
                self._update(trigger)
            finally:
                release_free_memory()  # an update's frames are freed: their peak is not kept resident until the next

    def _update(self, trigger: str) -> None:
        """One update under the lock: publish, or report why not (never raises for its input)."""
        try:
            doc = update_once(self.cfg, inputs=self.inputs)
        except NoModelError as exc:
            self._report("no model", f"{exc}; waiting for one")
            self.ctx.beat(state="waiting for a model")
            return
        except OSError as exc:
            # A read-only runtime/ or a full disk: the previous weights stay; logged once, shown as degraded.
            self.ctx.write_failed(OUTPUT_NAME, exc)
            self.ctx.beat()
            return
        except (FatalError, ValueError) as exc:
            self._report(f"error {exc}", f"update failed ({trigger}): {exc}", error=True)
            self.ctx.beat(state="error", error=str(exc))
            return
        self.ctx.write_ok(OUTPUT_NAME)
        self.updates += 1
        self._report("ok", f"published weights of model version {doc['model_version']}")
        log.debug("updated on %s: %s", trigger, doc["weights"])
        self.ctx.beat(state="running", model_version=doc["model_version"], last_update_at=doc["generated_at"],
                      decision_time=doc["decision_time"], updates=self.updates)

    def _report(self, outcome: str, message: str, error: bool = False) -> None:
        # A daemon polling every few minutes would repeat the same line forever; say it when it changes.
        if outcome != self._last_outcome:
            (log.error if error else log.info)(message)
        self._last_outcome = outcome

    def on_file_event(self) -> None:
        self.on_change.notify()

    def start(self, interval_s: float) -> None:
        self.scheduler.add_job(self.update, "interval", seconds=interval_s, args=["timer"], id="rl_inference_update",
                               next_run_time=datetime.now(timezone.utc), coalesce=True, max_instances=1,
                               misfire_grace_time=self.acfg.misfire_grace_s)
        self.scheduler.start()
        self.on_change.start()
        models, state = model_dir(self.cfg), self.cfg.state_dir
        models.mkdir(parents=True, exist_ok=True)
        self.observer.schedule(SourceFileHandler(frozenset({LATEST_NAME}), self.on_file_event), str(models),
                               recursive=False)
        self.observer.schedule(SourceFileHandler(frozenset({HISTORY_NAME}), self.on_file_event), str(state),
                               recursive=False)
        self.observer.start()
        log.info("updating %s every %.0fs and on changes of %s and %s (%s)", output_path(self.cfg), interval_s,
                 models / LATEST_NAME, state / HISTORY_NAME, "polling" if self.acfg.polling else "OS events")

    def run(self, interval_s: float) -> None:
        """Until SIGTERM; the heartbeat is refreshed at least every :data:`HEARTBEAT_S`."""
        self.start(interval_s)
        try:
            while not self.ctx.wait(HEARTBEAT_S):
                self.ctx.beat()
        finally:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.on_change.stop()  # a running update finishes its write
            self.scheduler.shutdown(wait=True)


# ---------------------------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rl_inference",
        description=f"Write the strategy-weight agent's weights to runtime/{RL_WEIGHTS_NAME} for the weights "
                    "bridge. Exit codes: 0 written (or daemon stopped), 1 cannot write, 2 bad config or unusable "
                    "model, 3 no model yet.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--update", action="store_true", help="compute and write the weights once, exit")
    mode.add_argument("--loop", action="store_true",
                      help="daemon: update every --interval seconds and after a new model or new trades")
    parser.add_argument("--interval", type=float, metavar="SECONDS",
                        help="seconds between updates in --loop (default: strategy_agent.inference_interval_s)")
    parser.add_argument("--polling", action="store_true", help="with --loop, poll files instead of OS events")
    add_config_argument(parser)
    return parser


def _command_config(cfg: Config, args: argparse.Namespace) -> Config:
    if args.interval is not None and not args.interval > 0:
        raise ConfigError(f"--interval {args.interval}: must be > 0 seconds")
    return with_changes(cfg, "strategy_agent", inference_interval_s=args.interval,
                        polling=args.polling or None)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_command_config("rl_inference", args.config, lambda c: _command_config(c, args))
    if cfg is None:
        return ExitCode.BAD_INPUT
    if args.update:
        return run_update_command(cfg)
    return run_daemon_main(DAEMON_NAME, cfg,
                           lambda ctx: InferenceDaemon(cfg, ctx).run(cfg.strategy_agent.inference_interval_s))


def run_update_command(cfg: Config) -> int:
    """``--update``: one update; prints where the weights went."""
    setup_logging(cfg)
    started = time.monotonic()
    cache_history_reads(cfg)  # the next --update parses only the trades appended since this one
    try:
        doc = update_once(cfg)
    except NoModelError as exc:
        print(f"rl_inference: nothing written: {exc}", file=sys.stderr)
        return ExitCode.NOT_READY
    except (CheckpointError, FatalError) as exc:
        print(f"rl_inference: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except (OSError, ValueError) as exc:
        print(f"rl_inference: error: cannot write {output_path(cfg)}: {exc}", file=sys.stderr)
        return ExitCode.FAILURE
    weights = ", ".join(f"{s}={w:.3f}" for s, w in doc["weights"].items())
    print(f"wrote {output_path(cfg)} (model version {doc['model_version']}, decision time {doc['decision_time']}, "
          f"{time.monotonic() - started:.1f}s): {weights}")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
