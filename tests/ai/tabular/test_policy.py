"""The published policy: it names the state and both agents' choices, follows the trader's last candle, and
its multiplier reaches the trader when sizing is applied."""

from __future__ import annotations

import json
from collections.abc import Callable

from ai.tabular.learner import run_pass
from ai.tabular.state import FEATURES
from core.config import Config
from core.contracts.pnl_history import append_trades, history_path
from core.contracts.qlearning_policy import policy_path, sizing_multiplier
from market.sources import load_candles

TF_MS = 3_600_000
SYMBOL = "BTC/USDT"

# Signatures of the helper fixtures of conftest.py.
Iso = Callable[[int], str]
SmallCfg = Callable[..., Config]
TradeRows = Callable[..., list[dict[str, object]]]


def test_policy_file_names_the_state_and_both_choices(cfg: Config, trade_rows: TradeRows) -> None:
    rows = trade_rows(cfg, list(range(300, 500, 5)), 3, lambda k, s: 0.01)
    append_trades(history_path(cfg), rows)
    run_pass(cfg)
    doc = json.loads(policy_path(cfg).read_text())
    assert doc["producer"] == "ai.tabular.learner" and doc["schema_version"] == 1
    assert doc["state_time"] == rows[-1]["closed_at"] and doc["state_time_source"] == "last_trade"
    assert list(doc["state"]) == [name for name, _ in FEATURES]
    assert doc["state_key"] == "|".join(doc["state"].values())
    for name in ("meta", "sizing"):
        assert {"known_state", "greedy", "epsilon", "epsilon_greedy", "updates"} <= set(doc["agents"][name])
    assert doc["sizing_multiplier"] == doc["agents"]["sizing"]["greedy"]["multiplier"]
    assert doc["apply_sizing"] is False


def test_policy_follows_the_traders_last_candle(cfg: Config, iso: Iso) -> None:
    candles = load_candles(cfg)[SYMBOL]
    stamp = int(candles["timestamp"].iloc[1234])
    write_status(cfg, stamp)
    doc = run_pass(cfg).policy
    assert doc["state_time"] == iso(stamp + TF_MS) and doc["state_time_source"] == "trader_status"


def write_status(cfg: Config, candle_ms: int) -> None:
    status = policy_path(cfg).with_name("trader_status.json")
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text(json.dumps({"last_candle": {"timestamp": candle_ms, "close": 1.0}}))


def test_published_multiplier_reaches_the_trader_when_sizing_is_applied(cfg: Config, trade_rows: TradeRows,
                                                                        small_cfg: SmallCfg) -> None:
    cfg = small_cfg(cfg, alpha=0.5, gamma=0.0, apply_sizing=True)
    # Trades closing on the candle they open (hold 0): "now", the newest close, is a state learned at an entry.
    append_trades(history_path(cfg), trade_rows(cfg, list(range(300, 900, 3)), 0, lambda k, s: 0.03,
                                                   strategies=("turtle_trading",)))
    policy = run_pass(cfg).policy
    assert policy["agents"]["sizing"]["known_state"]
    assert sizing_multiplier(cfg) == policy["sizing_multiplier"] == 2.0
