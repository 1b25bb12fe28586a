"""Tabular Q-learning agents: a strategy (meta) agent and a position-sizing agent, learning from closed trades.

This module holds one learning pass (what ``python ai/qlearning.py --once`` does, and the daemon on every
change): read the history, learn every trade not learned yet, save the agents that changed, publish the policy.

What the agents see, choose and earn: the state is 11 discretized features (:mod:`ai.tabular.state`), the
meta agent has 60 actions (12 strategy choices x 5 aggressiveness levels), the sizing agent 40 (8 size
multipliers x 5 stop distances); a trade's rewards come from its ``pnl_pct`` (:mod:`ai.tabular.actions`);
the update rule and epsilon-greedy choice are in :mod:`ai.tabular.agent`.

Learning. Every closed trade of ``state/pnl_history.csv`` is one transition for each agent: the state at the
trade's ``opened_at`` (market bins of the trade's symbol from :func:`market.sources.load_candles`, the same
seeded market as the trader by default; account bins from the trades closed by then), the rewards of the
actions the trade is evidence for, and the next state at its ``closed_at`` (the trade itself now counted).
A trade is learned from exactly once, also across restarts (its key: :mod:`ai.tabular.snapshot`); each
agent's file keeps the newest trade learned and the keys of the recent ones
(:class:`ai.tabular.agent.Progress`), written atomically together with its table. A trade whose state cannot
be built (no candles for its symbol) is counted as skipped, with the reason, and not retried.

Files. The Q-tables (:mod:`core.contracts.qtables`, written by :mod:`ai.tabular.store`) and the policy
(:mod:`core.contracts.qlearning_policy`, built by :mod:`ai.tabular.policy`): the greedy choice of each agent
for the current state, the sizing multiplier among them, which the paper trader applies only when
``qlearning.apply_sizing`` is on (see :func:`core.contracts.qlearning_policy.sizing_multiplier`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ai.tabular.actions import meta_rewards, sizing_rewards, stop_returns
from ai.tabular.agent import QAgent
from ai.tabular.policy import publish_policy
from ai.tabular.snapshot import LearnReport, Snapshot, learned_cutoff_ms, read_snapshot
from ai.tabular.state import AccountStates, CandleLoader, MarketStates, State, state_key, to_ms
from ai.tabular.store import HeldAgents, agents_locked, load_agent, save_agent_file
from core.config import Config
from core.contracts.pnl_history import HistoryTail
from core.contracts.qlearning_policy import GreedyChoice, PolicyDocument
from core.contracts.qtables import AGENT_NAMES, agent_path
from market.sources import load_candles

log = logging.getLogger(__name__)


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


# ------------------------------------------------------------------------------------------------ one pass


@dataclass
class PassResult:
    report: LearnReport
    policy: PolicyDocument
    agents: dict[str, QAgent]


def run_pass(cfg: Config, loader: CandleLoader = load_candles, history: HistoryTail | None = None,
             held: HeldAgents | None = None) -> PassResult:
    """Learn from the new trades, save the agents that changed, publish the policy (what ``--once`` does).

    ``history``: the daemon's incremental reader of the trade history (default: read it in full). ``held``: the
    daemon's agents kept between passes (default: read from their files now)."""
    try:
        return _run_pass(cfg, loader, history, held)
    except BaseException:
        if held is not None:
            held.forget()  # an agent changed in memory may not have reached its file
        raise


def _run_pass(cfg: Config, loader: CandleLoader, history: HistoryTail | None,
              held: HeldAgents | None) -> PassResult:
    with agents_locked(cfg):
        agents = {name: held.load(cfg, name) if held is not None else load_agent(cfg, name) for name in AGENT_NAMES}
        # Only the trades an agent may still lack are held: a pass's memory does not grow with the history.
        since = learned_cutoff_ms(a.progress.learned_before_ms for a in agents.values())
        snapshot, report = read_snapshot(cfg, loader, since_ms=since, history=history)
        before = {name: (a.progress.trades_learned, a.progress.trades_skipped) for name, a in agents.items()}
        learn_new_trades(cfg, agents, snapshot, report)
        for name, agent in agents.items():
            changed = (agent.progress.trades_learned, agent.progress.trades_skipped) != before[name]
            if changed or not agent_path(cfg, name).exists():
                save_agent_file(agent, agent_path(cfg, name))
                if held is not None:
                    held.saved(cfg, agent)
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
    meta_choice = policy["agents"].get("meta")
    meta: GreedyChoice = meta_choice["greedy"] if meta_choice else {}
    choice = f"meta -> {meta.get('label')}; " if meta else ""
    return "; ".join(parts) + f" | policy: {choice}sizing x{policy['sizing_multiplier']:g}"
