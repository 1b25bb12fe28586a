"""Tabular Q-learning agents: a strategy (meta) agent and a position-sizing agent, learning from closed trades.

    python ai/qlearning.py --once             # learn from the trades not learned yet, publish the policy, exit
    python ai/qlearning.py --loop             # daemon: the same on every change of state/pnl_history.csv
    python ai/qlearning.py --loop --polling   # the same on a network filesystem

What the agents see, choose and earn: the state is 11 discretized features (:mod:`ai.tabular.state`), the
meta agent has 60 actions (12 strategy choices x 5 aggressiveness levels), the sizing agent 40 (8 size
multipliers x 5 stop distances); a trade's rewards come from its ``pnl_pct`` (:mod:`ai.tabular.actions`);
the update rule and epsilon-greedy choice are in :mod:`ai.tabular.agent`.

Learning. Every closed trade of ``state/pnl_history.csv`` is one transition for each agent: the state at the
trade's ``opened_at`` (market bins of the trade's symbol from :func:`market.candles.load_candles`, the same
seeded market as the trader by default; account bins from the trades closed by then), the rewards of the
actions the trade is evidence for, and the next state at its ``closed_at`` (the trade itself now counted).
A trade is learned from exactly once, also across restarts: its key is the ``trade_id`` column when the file
has one, else a hash of (closed_at, opened_at, symbol, strategy, side, entry_price, exit_price); each agent's
file keeps the newest trade learned and the keys of the recent ones (:class:`ai.tabular.agent.Progress`),
written atomically together with its table. A trade whose state cannot be built (no candles for its symbol)
is counted as skipped, with the reason, and not retried.

Files. ``state/qlearning/meta_agent.json`` and ``state/qlearning/sizing_agent.json`` (tables, hyperparameters,
epsilon, counters, last trade learned); ``runtime/qlearning_policy.json`` (the greedy choice of each agent
for the current state, the sizing multiplier among them). The current state is taken at the trader's last
candle (``runtime/trader_status.json``), else at the newest trade's close, else at the last candle.

The paper trader calls :func:`sizing_multiplier` before sizing a new position: it returns the published
multiplier when ``qlearning.apply_sizing`` is on and the policy file is valid and fresh, else 1.0 (shadow mode).

Daemon. ``--loop`` watches the history's folder (created, modified, and moved-into-place events of the
history file; debounced by ``qlearning.debounce_s``), also learns and publishes every
``qlearning.recheck_interval_s``, refreshes its heartbeat after each pass, and exits 0 on SIGTERM after the
current pass. Agent files are locked (``<file>.lock``) while a pass or a tuning writes them.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from watchdog.events import FileSystemEvent, FileSystemEventHandler

from ai.tabular.actions import (
    META_DEFAULT,
    N_META_ACTIONS,
    N_SIZING_ACTIONS,
    SIZE_MULTIPLIERS,
    SIZING_DEFAULT,
    describe_meta,
    describe_sizing,
    meta_label,
    meta_rewards,
    sizing_label,
    sizing_rewards,
    stop_returns,
)
from ai.tabular.agent import (
    AGENT_NAMES,
    PRODUCER,
    QAgent,
    agent_path,
    load_agent_file,
    save_agent_file,
)
from ai.tabular.state import (
    AccountStates,
    CandleLoader,
    MarketStates,
    State,
    SymbolMarket,
    account_states,
    state_dict,
    state_key,
    to_ms,
)
from core.atomic import parse_iso, publish_json, read_json, utc_now_iso
from core.config import Config, load_config, replace_section
from core.contracts.pnl_history import HISTORY_NAME, history_path, locked, read_history
from core.daemon import DaemonContext, run_daemon_main
from core.errors import FatalError
from core.logging_setup import setup_logging
from core.watch import MAX_DELAY_FACTOR, Debouncer, make_observer
from market.candles import load_candles

log = logging.getLogger(__name__)

DAEMON_NAME = "qlearning"
POLICY_NAME = "qlearning_policy.json"
TRADER_STATUS_NAME = "trader_status.json"
KEY_COLUMN = "trade_id"
WATCHED_EVENTS = frozenset({"created", "modified", "moved"})



def policy_path(cfg: Config) -> Path:
    return cfg.runtime_dir / POLICY_NAME


# ------------------------------------------------------------------------------------------------ agents


def new_agent(cfg: Config, name: str) -> QAgent:
    """A fresh agent with the config's hyperparameters (``meta`` or ``sizing``)."""
    q = cfg.qlearning
    n_actions, default = {"meta": (N_META_ACTIONS, META_DEFAULT), "sizing": (N_SIZING_ACTIONS, SIZING_DEFAULT)}[name]
    return QAgent(name, n_actions, default, alpha=q.alpha, gamma=q.gamma, epsilon=q.epsilon,
                  epsilon_decay=q.epsilon_decay, epsilon_min=q.epsilon_min)


def load_agent(cfg: Config, name: str) -> QAgent:
    """The agent from ``state/qlearning/<name>_agent.json``, or a fresh one; DataError when the file is bad."""
    return load_agent_file(new_agent(cfg, name), agent_path(cfg, name))


@contextmanager
def agents_locked(cfg: Config, names: Sequence[str] = AGENT_NAMES) -> Iterator[None]:
    """Hold the agent files' locks (always in the same order, so two holders cannot deadlock)."""
    with ExitStack() as stack:
        for name in AGENT_NAMES:
            if name in names:
                path = agent_path(cfg, name)
                path.parent.mkdir(parents=True, exist_ok=True)
                stack.enter_context(locked(path))
        yield


# ------------------------------------------------------------------------------------------------ trade keys


def _material(closed: pd.Timestamp, opened: pd.Timestamp, symbol: str, strategy: str, side: str,
              entry: float, exit_: float) -> str:
    return "|".join((closed.isoformat(), opened.isoformat(), symbol, strategy, side, repr(float(entry)),
                     repr(float(exit_))))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def trade_keys(path: Path, trades: pd.DataFrame) -> list[str]:
    """A stable key per trade of ``trades`` (as read by :func:`core.contracts.pnl_history.read_history` from ``path``).

    The ``trade_id`` column when the file has one (read from the raw rows, since the parsed frame keeps only the
    contract's columns), else a hash of (closed_at, opened_at, symbol, strategy, side, entry_price, exit_price).
    """
    ids = _trade_ids_by_material(path)
    keys = []
    for row in trades.itertuples(index=False):
        material = _material(row.closed_at, row.opened_at, row.symbol, row.strategy, row.side,
                             row.entry_price, row.exit_price)
        queue = ids.get(material)
        keys.append(_digest("id:" + queue.pop(0)) if queue else _digest("row:" + material))
    return keys


def _trade_ids_by_material(path: Path) -> dict[str, list[str]]:
    """``trade_id`` values of the raw file keyed by their row's material (in file order); empty without one."""
    try:
        with locked(path, exclusive=False):
            text = path.read_text(encoding="utf-8-sig", errors="replace")
    except FileNotFoundError:
        return {}
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    if KEY_COLUMN not in header:
        return {}
    cols = ("closed_at", "opened_at", "symbol", "strategy", "side", "entry_price", "exit_price", KEY_COLUMN)
    if any(c not in header for c in cols):
        return {}
    index = [header.index(c) for c in cols]
    found: dict[str, list[str]] = {}
    for row in reader:
        if len(row) < len(header):
            continue
        closed, opened, symbol, strategy, side, entry, exit_, tid = (row[i].strip() for i in index)
        try:
            material = _material(pd.Timestamp(parse_iso(closed)), pd.Timestamp(parse_iso(opened)), symbol, strategy,
                                 side, float(entry), float(exit_))
        except ValueError:
            continue  # read_history skips (and reports) the same malformed row
        if tid:
            found.setdefault(material, []).append(tid)
    return found


# ------------------------------------------------------------------------------------------------ transitions


@dataclass(frozen=True)
class Transition:
    """What one trade teaches: the state at entry, the rewards per agent and the state at exit."""

    state: State
    next_state: State
    rewards: dict[str, dict[int, float]]


def build_transition(cfg: Config, trade: Any, opened_ms: int, closed_ms: int, markets: MarketStates,
                     account: AccountStates) -> Transition | str:
    """The trade's transition, or why it cannot be built (no candles for its symbol or its time)."""
    entry = markets.market_bins(trade.symbol, opened_ms)
    if isinstance(entry, str):
        return entry
    exit_ = markets.market_bins(trade.symbol, closed_ms)
    if isinstance(exit_, str):
        return exit_
    (entry_bins, market, i), (exit_bins, _, j) = entry, exit_
    held = slice(i + 1, j + 1)  # the candles after the entry one, up to and including the exit one
    returns = stop_returns(trade.side, float(trade.entry_price), float(trade.pnl_pct), float(market.atr[i]),
                           market.open[held], market.high[held], market.low[held], cfg.costs.fee,
                           cfg.costs.slippage)
    q = cfg.qlearning
    rewards = {
        "meta": meta_rewards(trade.strategy, float(trade.pnl_pct), q.reward_scale, q.risk_aversion),
        "sizing": sizing_rewards(returns, q.reward_scale, q.risk_aversion),
    }
    return Transition(entry_bins + account.bins(account.known_at(opened_ms)),
                      exit_bins + account.bins(account.known_at(closed_ms)), rewards)


# ------------------------------------------------------------------------------------------------ learning


@dataclass
class LearnReport:
    """What one pass did: trades in the history, per agent the trades learned and skipped."""

    trades: int = 0
    history_skipped_rows: int = 0
    learned: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def new_trades(self) -> int:
        return max(self.learned.values(), default=0)


@dataclass
class Snapshot:
    """The inputs of one pass, shared by learning and publishing."""

    trades: pd.DataFrame
    keys: list[str]
    account: AccountStates
    markets: MarketStates


def read_snapshot(cfg: Config, loader: CandleLoader = load_candles) -> tuple[Snapshot, LearnReport]:
    """Read the history (DataError when a column is missing), key its trades, prepare the states."""
    path = history_path(cfg)
    history = read_history(path)
    for problem in history.problems:
        log.warning("skipped a malformed history row: %s", problem)
    trades = history.trades
    snapshot = Snapshot(trades, trade_keys(path, trades), account_states(trades, cfg.qlearning.recent_trades),
                        MarketStates(cfg, loader))
    return snapshot, LearnReport(trades=len(trades), history_skipped_rows=history.skipped)


def learn_new_trades(cfg: Config, agents: Mapping[str, QAgent], snapshot: Snapshot, report: LearnReport) -> None:
    """Learn every trade of the snapshot that an agent has not learned yet (in ``closed_at`` order)."""
    late_ms = int(cfg.qlearning.late_window_s * 1000)
    trades = snapshot.trades
    opened = to_ms(trades["opened_at"]).tolist() if len(trades) else []
    closed = to_ms(trades["closed_at"]).tolist() if len(trades) else []
    for name in agents:
        report.learned.setdefault(name, 0)
        report.skipped.setdefault(name, 0)
    for row, key, opened_ms, closed_ms in zip(trades.itertuples(index=False), snapshot.keys, opened, closed,
                                              strict=True):
        pending = [a for a in agents.values() if not a.progress.is_learned(key, closed_ms)]
        if not pending:
            continue
        transition = build_transition(cfg, row, opened_ms, closed_ms, snapshot.markets, snapshot.account)
        for agent in pending:
            _learn_one(agent, row, key, closed_ms, transition, report)
    for agent in agents.values():
        agent.progress.prune(late_ms, cfg.qlearning.max_recent_keys)


def _learn_one(agent: QAgent, row: Any, key: str, closed_ms: int, transition: Transition | str,
               report: LearnReport) -> None:
    rewards = transition.rewards[agent.name] if isinstance(transition, Transition) else {}
    if isinstance(transition, str) or not rewards:
        reason = transition if isinstance(transition, str) else \
            f"{row.strategy} is not one of the 8 strategies the {agent.name} agent chooses from"
        agent.progress.trades_skipped += 1
        agent.progress.last_skip_reason = reason
        report.skipped[agent.name] += 1
        if len(report.reasons) < 5 and reason not in report.reasons:
            report.reasons.append(reason)
    else:
        agent.learn(state_key(transition.state), rewards, state_key(transition.next_state))
        agent.progress.trades_learned += 1
        agent.progress.last_trade = {"key": key, "closed_at": row.closed_at.isoformat(), "symbol": row.symbol,
                                     "strategy": row.strategy, "pnl_pct": float(row.pnl_pct)}
        report.learned[agent.name] += 1
    agent.progress.mark(key, closed_ms)


# ------------------------------------------------------------------------------------------------ policy


def reference_time_ms(cfg: Config, snapshot: Snapshot, symbol: str) -> tuple[int, str] | str:
    """When "now" is for the current state, and where that came from (see the module docstring).

    The latest of: the close of the trader's last candle (``runtime/trader_status.json``), the newest trade's
    close, and, for exchange candles, the last candle loaded (the market's real now). Without any of them, the
    last candle loaded (a synthetic or CSV market has no now of its own).
    """
    candidates: list[tuple[int, str]] = []
    status = read_json(cfg.runtime_dir / TRADER_STATUS_NAME)
    candle = (status.data or {}).get("last_candle") if status.ok else None
    stamp = candle.get("timestamp") if isinstance(candle, dict) else None
    if isinstance(stamp, int) and not isinstance(stamp, bool):
        candidates.append((stamp + snapshot.markets.tf_ms, "trader_status"))
    if len(snapshot.trades):
        candidates.append((int(to_ms(snapshot.trades["closed_at"]).max()), "last_trade"))
    if not candidates or cfg.market.data_source.strip().lower() == "ccxt":
        market = snapshot.markets.market(symbol, 0)
        if isinstance(market, SymbolMarket) and len(market.close_ms):
            candidates.append((int(market.close_ms[-1]), "last_candle"))
        elif not candidates:
            return market if isinstance(market, str) else f"no {symbol} candles"
    return max(candidates, key=lambda c: c[0])


def current_state(cfg: Config, snapshot: Snapshot) -> tuple[State, int, str] | str:
    """The state now for the primary symbol: (state, time in ms, time source), or why it is unknown."""
    symbol = cfg.market.symbols[0]
    ref = reference_time_ms(cfg, snapshot, symbol)
    if isinstance(ref, str):
        return ref
    t_ms, source = ref
    bins = snapshot.markets.market_bins(symbol, t_ms)
    if isinstance(bins, str):
        return bins
    return bins[0] + snapshot.account.bins(snapshot.account.known_at(t_ms)), t_ms, source


def agent_choice(agent: QAgent, key: str, rng: np.random.Generator) -> dict[str, Any]:
    """The agent's greedy and epsilon-greedy choice in the state ``key``, with their meaning."""
    describe, label = (describe_meta, meta_label) if agent.name == "meta" else (describe_sizing, sizing_label)
    greedy = agent.greedy_action(key)
    explore, explored = agent.select_action(key, rng)
    row = agent.table.get(key)
    learned = agent.learned_actions(key)
    return {
        "known_state": row is not None,
        "visits": row.visits if row else 0,
        "greedy": {"action": greedy, "label": label(greedy), **describe(greedy), "q": learned.get(greedy)},
        "epsilon": agent.epsilon,
        "epsilon_greedy": {"action": explore, "label": label(explore), "explored": explored},
        "updates": agent.updates,
    }


def policy_payload(cfg: Config, agents: Mapping[str, QAgent], snapshot: Snapshot) -> dict[str, Any]:
    """The content of ``runtime/qlearning_policy.json``."""
    now = current_state(cfg, snapshot)
    payload: dict[str, Any] = {"symbol": cfg.market.symbols[0], "apply_sizing": cfg.qlearning.apply_sizing}
    if isinstance(now, str):
        return {**payload, "state": None, "reason": now, "agents": {}, "sizing_multiplier": 1.0, "stop_atr": None}
    state, t_ms, source = now
    key = state_key(state)
    # Seeded by the agents' progress: the same tables in the same state publish the same draw.
    rng = np.random.default_rng([cfg.qlearning.seed, *(agents[n].updates for n in sorted(agents))])
    choices = {name: agent_choice(agent, key, rng) for name, agent in agents.items()}
    sizing = choices.get("sizing", {}).get("greedy", {})
    return {
        **payload,
        "state_time": pd.Timestamp(t_ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
        "state_time_source": source,
        "state": state_dict(state),
        "state_key": key,
        "agents": choices,
        "sizing_multiplier": float(sizing.get("multiplier", 1.0)),
        "stop_atr": sizing.get("stop_atr"),
    }


def publish_policy(cfg: Config, agents: Mapping[str, QAgent], snapshot: Snapshot) -> dict[str, Any]:
    """Write ``runtime/qlearning_policy.json`` atomically; returns the document."""
    return publish_json(policy_path(cfg), PRODUCER, policy_payload(cfg, agents, snapshot))


_last_sizing_reason: list[str] = [""]
"""The reason :func:`sizing_multiplier` last fell back to 1.0 ("" when it did not): the trader calls it on every
candle, so a reason is logged when it changes, not every time."""


def _validate_policy(doc: dict[str, Any]) -> str | None:
    value = doc.get("sizing_multiplier")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"`sizing_multiplier` must be a number, got {value!r}"
    if not min(SIZE_MULTIPLIERS) <= value <= max(SIZE_MULTIPLIERS):
        return f"`sizing_multiplier` {value} is outside {min(SIZE_MULTIPLIERS)}..{max(SIZE_MULTIPLIERS)}"
    return None


def sizing_multiplier(cfg: Config) -> float:
    """The multiplier the paper trader applies to a new position's size.

    1.0 when ``qlearning.apply_sizing`` is off (shadow mode), and when ``runtime/qlearning_policy.json`` is
    absent, invalid, out of range or older than ``qlearning.policy_max_age_s``; else the sizing agent's greedy
    multiplier for the current state. Never raises; a reason to fall back is logged when it changes.
    """
    if not cfg.qlearning.apply_sizing:
        return 1.0
    max_age = cfg.qlearning.policy_max_age_s or None
    result = read_json(policy_path(cfg), max_age_s=max_age, validate=_validate_policy)
    reason = "" if result.ok else result.reason
    if reason != _last_sizing_reason[0]:
        if reason:
            log.warning("sizing multiplier 1.0: %s", reason)
        else:
            log.info("sizing multiplier follows %s again", POLICY_NAME)
        _last_sizing_reason[0] = reason
    return float(result.data["sizing_multiplier"]) if result.ok and result.data else 1.0


# ------------------------------------------------------------------------------------------------ one pass


@dataclass
class PassResult:
    report: LearnReport
    policy: dict[str, Any]
    agents: dict[str, QAgent]


def run_pass(cfg: Config, loader: CandleLoader = load_candles) -> PassResult:
    """Learn from the new trades, save the agents that changed, publish the policy (what ``--once`` does)."""
    snapshot, report = read_snapshot(cfg, loader)
    with agents_locked(cfg):
        agents = {name: load_agent(cfg, name) for name in AGENT_NAMES}
        before = {name: (a.progress.trades_learned, a.progress.trades_skipped) for name, a in agents.items()}
        learn_new_trades(cfg, agents, snapshot, report)
        for name, agent in agents.items():
            changed = (agent.progress.trades_learned, agent.progress.trades_skipped) != before[name]
            if changed or not agent_path(cfg, name).exists():
                save_agent_file(agent, agent_path(cfg, name))
    if any(report.skipped.values()):
        log.warning("trades skipped: %s (%s)", report.skipped, "; ".join(report.reasons))
    policy = publish_policy(cfg, agents, snapshot)
    return PassResult(report, policy, agents)


def summary_line(result: PassResult) -> str:
    """One line for people: what was learned and what the policy says now."""
    parts = []
    for name, agent in result.agents.items():
        parts.append(f"{name}: +{result.report.learned.get(name, 0)} trade(s), {agent.updates} updates, "
                     f"{len(agent.table)} states, epsilon {agent.epsilon:.4f}")
    policy = result.policy
    meta = policy.get("agents", {}).get("meta", {}).get("greedy", {})
    choice = f"meta -> {meta.get('label')}; " if meta else ""
    return "; ".join(parts) + f" | policy: {choice}sizing x{policy['sizing_multiplier']:g}"


# ------------------------------------------------------------------------------------------------ daemon


class HistoryFileHandler(FileSystemEventHandler):
    """Calls ``notify`` for created, modified and moved-into-place events of the history file."""

    def __init__(self, name: str, notify: Callable[[], None]) -> None:
        super().__init__()
        self.name = name
        self.notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in WATCHED_EVENTS:
            return
        paths = (event.src_path, getattr(event, "dest_path", "") or "")
        if any(os.path.basename(os.fsdecode(p)) == self.name for p in paths if p):
            self.notify()


def loop(cfg: Config, ctx: DaemonContext, loader: CandleLoader = load_candles) -> None:
    """Learn and publish now, then on every debounced history change and every recheck interval, until stopped."""

    q = cfg.qlearning
    debouncer = Debouncer(q.debounce_s, q.debounce_s * MAX_DELAY_FACTOR)
    folder = history_path(cfg).parent
    folder.mkdir(parents=True, exist_ok=True)
    observer = make_observer(q.polling, q.poll_interval_s)
    observer.schedule(HistoryFileHandler(HISTORY_NAME, debouncer.notify), str(folder), recursive=False)
    observer.start()
    # SIGTERM only sets ctx.stop; this relays it to the debouncer's wait so shutdown is immediate.
    threading.Thread(target=lambda: (ctx.stop.wait(), debouncer.wake()), name="stop-relay", daemon=True).start()
    log.info("watching %s (%s)", folder, "polling" if q.polling else "OS events")
    try:
        _pass_and_beat(cfg, ctx, loader, "start")
        next_check = time.monotonic() + q.recheck_interval_s
        while not ctx.stop.is_set():
            pending = debouncer.seconds_until_due()
            debouncer.wait(min(math.inf if pending is None else pending, max(0.0, next_check - time.monotonic())))
            if ctx.stop.is_set():
                break
            if debouncer.take_if_due():
                _pass_and_beat(cfg, ctx, loader, "change")
            elif time.monotonic() >= next_check:
                _pass_and_beat(cfg, ctx, loader, "timer")
            else:
                continue
            next_check = time.monotonic() + q.recheck_interval_s
    finally:
        observer.stop()
        observer.join(timeout=5)


def _pass_and_beat(cfg: Config, ctx: DaemonContext, loader: CandleLoader, trigger: str) -> None:
    try:
        result = run_pass(cfg, loader)
    except (FatalError, OSError, ValueError) as exc:
        # A bad history or agent file, a full disk: keep the files as they are and try again next time.
        log.error("pass on %s failed: %s", trigger, exc)
        ctx.beat(state="error", error=str(exc), last_pass_at=utc_now_iso())
        return
    if result.report.new_trades:
        log.info("%s", summary_line(result))
    ctx.beat(state="running", last_pass_at=utc_now_iso(), trigger=trigger,
             updates={n: a.updates for n, a in result.agents.items()},
             trades_learned={n: a.progress.trades_learned for n, a in result.agents.items()},
             sizing_multiplier=result.policy["sizing_multiplier"])


# ------------------------------------------------------------------------------------------------ command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qlearning",
        description="Tabular Q-learning strategy (meta) and position-sizing agents: learn from the closed trades "
                    "of state/pnl_history.csv (each exactly once), keep the Q-tables in state/qlearning/ and "
                    "publish the greedy choices for the current state to runtime/qlearning_policy.json.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="learn from the new trades, publish the policy, exit")
    mode.add_argument("--loop", action="store_true",
                      help="run as a daemon: learn on every change of the history and every recheck interval")
    parser.add_argument("--polling", action="store_true",
                        help="with --loop, poll the state/ folder instead of OS file events (network filesystems)")
    parser.add_argument("--config", metavar="PATH", help="TOML configuration file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.polling:
            cfg = replace_section(cfg, "qlearning", polling=True)
    except FatalError as exc:
        print(f"qlearning: error: {exc}", file=sys.stderr)
        return 2
    if args.once:
        setup_logging(cfg)
        try:
            result = run_pass(cfg)
        except (FatalError, OSError) as exc:
            print(f"qlearning: error: {exc}", file=sys.stderr)
            return 1
        print(summary_line(result))
        return 0
    return run_daemon_main(DAEMON_NAME, cfg, lambda ctx: loop(cfg, ctx))


if __name__ == "__main__":
    sys.exit(main())
