"""The reference paper trader: runs the 8 strategies on candles, one book each, and writes their closed trades.

    python -m agents.paper_trader --replay --speed 5          # walk stored or synthetic candles, 5 a second
    python -m agents.paper_trader --replay --speed 0 --max-candles 500
    python -m agents.paper_trader --live                      # act on each newly closed exchange candle

Modes. ``--replay`` walks the candles of ``market.data_source`` at ``--speed`` candles per second (0: as fast as
it can); ``--live`` polls the exchange through the candle layer every ``trader.live_poll_s`` and acts on each
newly closed candle (after a restart it first catches up on the candles it missed, unpaced). The feeds are
:mod:`agents.trader_feed`.

Books and sizing. Every strategy trades its own book in the primary symbol (``market.symbols[0]``), sized by its
weight in the allocations the weights bridge publishes times the equity; a decision on candle k's close is
filled at that close plus or minus the slippage, and a strategy with weight 0 still trades on paper with qty 0,
so every trade has a ``pnl_pct``. The step is :mod:`agents.trader`, the accounting :mod:`agents.books`, the
trading PPO's book :mod:`agents.ppo_book`.

Files. Closed trades are appended to ``state/pnl_history.csv``; the trader status
(:mod:`core.contracts.trader_status`) shows equity, cash, open positions, the allocation in force and the last
candle; the state file (``trader.state_file``) holds what a restart resumes from, with the crash protocol of
:mod:`agents.trader_state`: no trade is lost or written twice, whatever the moment of a kill. Between trades the
state is saved every ``trader.state_interval_s`` seconds; SIGTERM (or Ctrl-C) finishes the current candle,
saves the state and exits 0.

This module holds the run loop and the command.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from agents.books import Costs, iso_ms
from agents.trader import HISTORY_WRITE, PaperTrader
from agents.trader_feed import LiveFeed, ReplayFeed, SignalSource, StrategySignals, make_feed
from agents.trader_state import (
    PRODUCER,
    fresh_state,
    load_state,
    reconcile_pending,
    reset_state,
    single_instance,
    state_path,
)
from core.config import Config, load_config
from core.contracts.pnl_history import history_path
from core.contracts.weights import ALLOCATIONS_NAME
from core.daemon import DaemonContext, daemon_context
from core.errors import ConfigError, ExitCode, FatalError, RetryableError
from core.logging_setup import setup_logging

log = logging.getLogger(__name__)

MODES = ("replay", "live")


def check_trader_config(cfg: Config) -> Costs:
    """Reject settings the trader cannot run with (ConfigError naming the key); returns the costs."""
    t = cfg.trader
    if t.mode not in MODES:
        raise ConfigError(f"`trader.mode` is {t.mode!r}; use one of: {', '.join(MODES)}")
    if not (math.isfinite(t.initial_equity) and t.initial_equity > 0):
        raise ConfigError(f"`trader.initial_equity` must be a positive number, got {t.initial_equity!r}")
    if not (math.isfinite(t.replay_speed) and t.replay_speed >= 0):
        raise ConfigError(f"`trader.replay_speed` must be >= 0 candles per second, got {t.replay_speed!r}")
    for key in ("status_interval_s", "state_interval_s", "live_poll_s"):
        value = getattr(t, key)
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"`trader.{key}` must be a positive number of seconds, got {value!r}")
    if t.live_history_candles < 2:
        raise ConfigError(f"`trader.live_history_candles` must be at least 2, got {t.live_history_candles}")
    name = t.state_file
    if not name or Path(name).name != name or name.startswith(".") or "\\" in name:
        raise ConfigError(f"`trader.state_file` must be a plain file name such as paper_trader_state.json, "
                          f"got {name!r}")
    if not cfg.market.symbols:
        raise ConfigError("`market.symbols` is empty; list at least one BASE/QUOTE symbol")
    try:
        return Costs(fee=cfg.costs.fee, slippage=cfg.costs.slippage)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


# ------------------------------------------------------------------------------------------------- loop


class Pacer:
    """Spaces candles ``1 / speed`` seconds apart on a steady schedule (0: no waiting)."""

    def __init__(self, speed: float, ctx: DaemonContext) -> None:
        self.interval = 1.0 / speed if speed > 0 else 0.0
        self.ctx = ctx
        self.due: float | None = None

    def wait_turn(self) -> bool:
        """Wait for the next candle's turn; True when asked to stop meanwhile."""
        if self.interval <= 0:
            return self.ctx.stop.is_set()
        now = time.monotonic()
        if self.due is None or self.due < now - self.interval:
            self.due = now  # first candle, or fallen behind: restart the schedule rather than burst
        stopped = self.ctx.wait(max(0.0, self.due - now))
        self.due += self.interval
        return stopped


def run_loop(trader: PaperTrader, feed: ReplayFeed | LiveFeed, ctx: DaemonContext, speed: float,
             max_candles: int | None) -> str:
    """Feed candles to ``trader`` until the end of the data, ``max_candles`` or a stop; returns why it ended."""
    pacer = Pacer(speed, ctx)
    done = 0
    backoff = 0.0
    while True:
        if ctx.stop.is_set():
            return "stop requested"
        if max_candles is not None and done >= max_candles:
            return f"{max_candles} candles processed"
        try:
            window = feed.candles_after(trader.state.last_ts)
            backoff = 0.0
        except RetryableError as exc:
            backoff = min(max(2.0 * backoff, trader.cfg.exchange.backoff_s), trader.cfg.trader.live_poll_s * 4)
            log.warning("candles unavailable (%s); retrying in %.0f s", exc, backoff)
            _idle(trader, ctx, backoff)
            continue
        if window is None:
            last = trader.state.last_ts
            log.info("replay reached the end of the available candles (last %s); stopping",
                     iso_ms(last) if last is not None else "none")
            return "end of data"
        if not len(window):
            _idle(trader, ctx, trader.cfg.trader.live_poll_s)
            continue
        for i in range(len(window)):
            if max_candles is not None and done >= max_candles:
                break
            if pacer.wait_turn():
                return "stop requested"
            trader.process(int(window.timestamps[i]), float(window.closes[i]), window.targets_at(i))
            done += 1
            trader.tick()


def _idle(trader: PaperTrader, ctx: DaemonContext, seconds: float) -> None:
    """Wait up to ``seconds`` while keeping status and heartbeat fresh."""
    deadline = time.monotonic() + seconds
    while not ctx.stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        ctx.wait(min(left, trader.cfg.trader.status_interval_s))
        trader.tick()


def run(cfg: Config, mode: str, speed: float, max_candles: int | None,
        sources: Sequence[SignalSource] | None = None, reset: bool = False) -> str:
    """Run the trader under the daemon context until it ends; returns why it ended.

    ``speed`` paces a replay only: a live candle is acted on as soon as it closes, and the catch-up after a
    restart runs at full speed. ``reset`` first moves the saved state aside (to ``<state file>.bak``) for a
    fresh account.
    """
    costs = check_trader_config(cfg)
    speed = speed if mode == "replay" else 0.0
    sources = list(sources) if sources is not None else [StrategySignals(cfg)]
    path = state_path(cfg)
    with single_instance(path, cfg.runtime_dir / "locks"), daemon_context(PRODUCER, cfg) as ctx:
        if reset:
            backup = reset_state(path)
            if backup is not None:
                log.info("previous state kept as %s; starting a fresh account", backup)
        state = load_state(path, cfg, costs)
        if state is None:
            state = fresh_state(cfg, costs)
            log.info("fresh paper account: equity %.2f on %s", state.initial_equity, state.portfolio.symbol)
        else:
            log.info("resuming after %s (%d candles, %d trades so far)",
                     iso_ms(state.last_ts) if state.last_ts is not None else "no candle", state.candles_processed,
                     state.trades_written)
            # A history that cannot be written now keeps the trades pending: the trader retries them.
            reconcile_pending(state, history_path(cfg), lambda exc: ctx.write_failed(HISTORY_WRITE, exc))
        trader = PaperTrader(cfg, mode, state, ctx)
        trader.allocations.poll()
        trader.save()
        trader.publish_status()
        try:
            feed = make_feed(cfg, mode, sources)
            reason = run_loop(trader, feed, ctx, speed, max_candles)
        finally:
            trader.save()
            trader.publish_status(state="stopped")
        log.info("stopped: %s; equity %.2f after %d candles, %d trades written", reason,
                 trader.status()["equity"], state.candles_processed, state.trades_written)
        return reason


# -------------------------------------------------------------------------------------------------- cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paper_trader",
        description="Reference paper trader: runs the 8 strategies, one book each, sized by "
                    f"runtime/{ALLOCATIONS_NAME}, and appends closed trades to state/pnl_history.csv.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--replay", dest="mode", action="store_const", const="replay",
                      help="walk stored or synthetic candles (default unless trader.mode says live)")
    mode.add_argument("--live", dest="mode", action="store_const", const="live",
                      help="poll the exchange and act on each newly closed candle")
    parser.add_argument("--speed", type=float, metavar="N",
                        help="replay pace in candles per second, 0 for as fast as possible "
                             "(--replay only; default: trader.replay_speed)")
    parser.add_argument("--max-candles", type=int, metavar="N",
                        help="stop after processing N candles in this run")
    parser.add_argument("--reset", action="store_true",
                        help="start a fresh account: move the saved state aside (kept as <state file>.bak)")
    parser.add_argument("--config", metavar="PATH",
                        help="TOML configuration file (default: rl_system.toml or $RL_SYSTEM_CONFIG)")
    return parser


def option_problem(mode: str | None, speed: float | None, max_candles: int | None) -> str | None:
    """Why the command-line options cannot run (``mode`` and ``speed`` as in force), or None."""
    if speed is not None and not (math.isfinite(speed) and speed >= 0):
        return f"--speed must be >= 0 candles per second, got {speed!r}"
    if mode == "live" and speed is not None:
        return "--speed paces --replay only; --live acts on each candle as soon as it closes"
    if max_candles is not None and max_candles < 1:
        return f"--max-candles must be at least 1, got {max_candles}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Logging is set up from the configuration, so errors found before it go straight to stderr, one line each.
    problem = option_problem(args.mode, args.speed, args.max_candles)
    if problem:
        print(f"paper_trader: error: {problem}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"paper_trader: error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    setup_logging(cfg, PRODUCER)
    mode = args.mode or cfg.trader.mode
    speed = cfg.trader.replay_speed if args.speed is None else args.speed
    try:
        # Again with the mode and speed the configuration gives when the options leave them out.
        problem = option_problem(None, speed, None) or option_problem(mode, args.speed, None)
        if problem:
            raise ConfigError(problem)
        check_trader_config(cfg)
        log.info("paper trader: mode %s, speed %s, max candles %s", mode, speed if mode == "replay" else "-",
                 args.max_candles)
        run(cfg, mode, speed, args.max_candles, reset=args.reset)
    except FatalError as exc:
        log.error("%s", exc)
        return ExitCode.BAD_INPUT
    except RetryableError as exc:
        log.error("gave up: %s", exc)
        return ExitCode.FAILURE
    except OSError as exc:
        log.error("file error: %s", exc)
        return ExitCode.FAILURE
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
