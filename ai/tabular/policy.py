"""The published policy: what each agent would do in the current state, written to the policy contract.

The current state is taken for the primary symbol at "now": the latest of the close of the trader's last
candle (``trader_status``), the newest trade's close and, for exchange candles, the last candle loaded (the
market's real now); without any of them, the last candle loaded (a synthetic or CSV market has no now of its
own). The document's shape is :class:`core.contracts.qlearning_policy.PolicyPayload`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import numpy as np
import pandas as pd

from ai.tabular.actions import describe_meta, describe_sizing, meta_label, sizing_label
from ai.tabular.agent import PRODUCER, QAgent
from ai.tabular.snapshot import Snapshot
from ai.tabular.state import State, SymbolMarket, state_dict, state_key
from core.config import Config
from core.contracts.qlearning_policy import (
    NEUTRAL_MULTIPLIER,
    AgentChoice,
    GreedyChoice,
    PolicyDocument,
    PolicyPayload,
)
from core.contracts.qlearning_policy import publish_policy as write_policy
from core.contracts.trader_status import read_trader_status


def reference_time_ms(cfg: Config, snapshot: Snapshot, symbol: str) -> tuple[int, str] | str:
    """When "now" is for the current state, and where that came from (see the module docstring)."""
    candidates: list[tuple[int, str]] = []
    status = read_trader_status(cfg)
    stamp = status.last_candle_ts if status is not None else None
    if stamp is not None:
        candidates.append((stamp + snapshot.markets.tf_ms, "trader_status"))
    if len(snapshot.account.closed_ms):  # every trade, also those learned before the snapshot's cut-off
        candidates.append((int(snapshot.account.closed_ms.max()), "last_trade"))
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


def agent_choice(agent: QAgent, key: str, rng: np.random.Generator) -> AgentChoice:
    """The agent's greedy and epsilon-greedy choice in the state ``key``, with their meaning."""
    describe, label = (describe_meta, meta_label) if agent.name == "meta" else (describe_sizing, sizing_label)
    greedy = agent.greedy_action(key)
    explore, explored = agent.select_action(key, rng)
    row = agent.table.get(key)
    learned = agent.learned_actions(key)
    # describe() gives the action's meaning: choice/aggressiveness/level (meta) or multiplier/stop_atr (sizing).
    greedy_choice = cast(GreedyChoice, {"action": greedy, "label": label(greedy), **describe(greedy),
                                        "q": learned.get(greedy)})
    return {
        "known_state": row is not None,
        "visits": row.visits if row else 0,
        "greedy": greedy_choice,
        "epsilon": agent.epsilon,
        "epsilon_greedy": {"action": explore, "label": label(explore), "explored": explored},
        "updates": agent.updates,
    }


def policy_payload(cfg: Config, agents: Mapping[str, QAgent], snapshot: Snapshot) -> PolicyPayload:
    """The content of the policy document."""
    now = current_state(cfg, snapshot)
    symbol, apply_sizing = cfg.market.symbols[0], cfg.qlearning.apply_sizing
    if isinstance(now, str):
        return {"symbol": symbol, "apply_sizing": apply_sizing, "state": None, "reason": now, "agents": {},
                "sizing_multiplier": NEUTRAL_MULTIPLIER, "stop_atr": None}
    state, t_ms, source = now
    key = state_key(state)
    # Seeded by the agents' progress: the same tables in the same state publish the same draw.
    rng = np.random.default_rng([cfg.qlearning.seed, *(agents[n].updates for n in sorted(agents))])
    choices = {name: agent_choice(agent, key, rng) for name, agent in agents.items()}
    sizing: GreedyChoice = choices["sizing"]["greedy"] if "sizing" in choices else {}
    return {
        "symbol": symbol,
        "apply_sizing": apply_sizing,
        "state_time": pd.Timestamp(t_ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
        "state_time_source": source,
        "state": state_dict(state),
        "state_key": key,
        "agents": choices,
        "sizing_multiplier": float(sizing.get("multiplier", NEUTRAL_MULTIPLIER)),
        "stop_atr": sizing.get("stop_atr"),
    }


def publish_policy(cfg: Config, agents: Mapping[str, QAgent], snapshot: Snapshot) -> PolicyDocument:
    """Write the policy for the current state atomically; returns the document."""
    return write_policy(cfg, PRODUCER, policy_payload(cfg, agents, snapshot))
