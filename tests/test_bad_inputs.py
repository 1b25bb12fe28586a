"""Bad inputs x consumers: every command ends with its documented exit code, no traceback, and the files
already saved stay as they were.

Each case writes one broken file into a fresh home (valid Q-tables and candles stand beside it), runs one
command in-process and checks: the exit code, no ``Traceback`` on stderr, the words that name the problem
where the command reports it, and that the broken file and the saved Q-table are byte for byte unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from agents.paper_trader import main as trader_main
from agents.weights_bridge import main as bridge_main
from ai.allocation.inference import main as inference_main
from ai.allocation.trainer import main as trainer_main
from ai.tabular.cli import main as qlearning_main
from core.config import STRATEGIES
from scripts.monitor_qlearning import main as monitor_main
from scripts.tune_qlearning import main as tune_main

Main = Callable[[Sequence[str]], int]
NESTED = "[" * 100_000 + "]" * 100_000
CANDLES = "timestamp,open,high,low,close,volume\n" + "".join(
    f"{1_704_067_200_000 + i * 3_600_000},{100 + i % 7},{102 + i % 7},{99 + i % 7},{101 + i % 7},10\n"
    for i in range(60))
HEADER = "closed_at,opened_at,symbol,strategy,side,qty,entry_price,exit_price,pnl,pnl_pct,fees,equity_after\n"
QTABLE = {"schema_version": 1, "generated_at": "2024-01-01T00:00:00Z", "producer": "test", "agent": "meta",
          "n_actions": 5, "default_action": 0,
          "hyperparameters": {"alpha": 0.1, "gamma": 0.9, "epsilon_decay": 0.99, "epsilon_min": 0.01},
          "overrides": {}, "epsilon": 0.5, "updates": 0, "q_updates": 0, "reward_stats": {"n": 0, "mean": 0.0,
                                                                                           "m2": 0.0},
          "td_error_ema": None, "progress": {}, "tuning_history": [], "table": {}}


def _weights(value: str) -> str:
    body = ", ".join(f'"{s}": {value}' for s in STRATEGIES)
    return '{"schema_version": 1, "generated_at": "2024-01-01T00:00:00Z", "producer": "x", "weights": {' \
           + body + "}}"


def _history(row: str) -> str:
    return HEADER + row + "\n"


ZERO_PRICE = "2024-01-02T00:00:00Z,2024-01-01T00:00:00Z,BTC/USDT,mean_reversion_rsi,long,1,0,101,1,0.01,0,10001"

# (file inside the home, its content): the broken inputs.
INPUTS: dict[str, tuple[str, str | bytes]] = {
    "lab_weights_bigint": ("runtime/strategy_lab_weights.json", _weights("9" * 400)),
    "lab_weights_1e308": ("runtime/strategy_lab_weights.json", _weights("1e308")),
    "lab_weights_nested": ("runtime/strategy_lab_weights.json", NESTED),
    "lab_weights_future": ("runtime/strategy_lab_weights.json",
                           _weights("0.125").replace("2024-01-01", "2099-01-01")),
    "allocations_1e308": ("runtime/allocations_override.json", _weights("1e308")),
    "allocations_nested": ("runtime/allocations_override.json", NESTED),
    "rollout_1e400": ("runtime/rl_v3_rollout.json",
                      '{"schema_version": 1, "capital_percentage": 1e400, "max_position_size": 1, '
                      '"enable_risk_guard": true, "configured_at": "2024-01-01T00:00:00Z"}'),
    "policy_1e400": ("runtime/qlearning_policy.json", '{"sizing_multiplier": 1e400}'),
    "qtable_nested": ("state/qlearning/meta_agent.json", NESTED),
    "qtable_list": ("state/qlearning/meta_agent.json", json.dumps({**QTABLE, "table": []})),
    "qtable_updates": ("state/qlearning/meta_agent.json", json.dumps(QTABLE).replace('"updates": 0',
                                                                                      '"updates": 1e999')),
    "qtable_nan": ("state/qlearning/meta_agent.json", json.dumps(QTABLE).replace('"epsilon": 0.5',
                                                                                  '"epsilon": NaN')),
    "qtable_negative": ("state/qlearning/meta_agent.json", json.dumps({**QTABLE, "epsilon": -1})),
    "history_zero_price": ("state/pnl_history.csv", _history(ZERO_PRICE)),
    "candles_binary": ("data/btc.csv", bytes(range(256)) * 8),
    "candles_header_only": ("data/btc.csv", CANDLES.splitlines()[0] + "\n"),
}

BRIDGE = ("bridge", bridge_main, ["--once"])
TRADER = ("trader", trader_main, ["--replay", "--speed", "0", "--max-candles", "20"])
QLEARNING = ("qlearning", qlearning_main, ["--once"])
MONITOR = ("monitor", monitor_main, [])
TUNE = ("tune", tune_main, [])
INFERENCE = ("inference", inference_main, ["--update"])
TRAINER = ("trainer", trainer_main, ["--train"])

# (input, consumer, exit code, words the output must hold: the problem named, or "" when silent fallback is right)
CASES: list[tuple[str, tuple[str, Main, list[str]], int, str]] = [
    ("lab_weights_bigint", BRIDGE, 0, "too large"),
    ("lab_weights_1e308", BRIDGE, 0, "overflow"),
    ("lab_weights_nested", BRIDGE, 0, "nested deeper than"),
    ("lab_weights_future", BRIDGE, 0, "generated in the future"),
    ("allocations_1e308", TRADER, 0, "overflow"),
    ("allocations_nested", TRADER, 0, "nested deeper than"),
    ("rollout_1e400", TRADER, 0, ""),
    ("policy_1e400", TRADER, 0, ""),
    ("qtable_nested", QLEARNING, 2, "nested deeper than"),
    ("qtable_list", QLEARNING, 2, "`table` must be an object"),
    ("qtable_updates", QLEARNING, 2, "overflows"),
    ("qtable_nan", QLEARNING, 2, "NaN is not allowed"),
    ("qtable_negative", QLEARNING, 2, "`epsilon` must be a number in [0, 1]"),
    ("qtable_nested", MONITOR, 0, "nested deeper than"),  # a report: it shows the problem and goes on
    ("qtable_nan", TUNE, 2, "NaN is not allowed"),
    ("qtable_list", TUNE, 2, "`table` must be an object"),
    ("history_zero_price", QLEARNING, 0, ""),
    ("history_zero_price", TRAINER, 3, ""),
    ("candles_binary", TRADER, 2, "not a text CSV file"),
    ("candles_binary", QLEARNING, 0, "not a text CSV file"),  # warns: no market state, learns on
    ("candles_header_only", TRADER, 2, "no candles"),
    ("candles_header_only", QLEARNING, 0, "no candles"),
    ("candles_header_only", INFERENCE, 3, ""),
]


@pytest.fixture
def home(rl_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home whose candles come from ``data/btc.csv`` (valid unless a case breaks it) and a valid sizing table."""
    (rl_home / "data").mkdir(parents=True, exist_ok=True)
    (rl_home / "data" / "btc.csv").write_text(CANDLES)
    (rl_home / "data" / "eth.csv").write_text(CANDLES)
    config = rl_home / "bad_inputs.toml"
    config.write_text('[market]\ndata_source = "csv"\n'
                      'csv_paths = {"BTC/USDT" = "data/btc.csv", "ETH/USDT" = "data/eth.csv"}\n')
    monkeypatch.setenv("RL_SYSTEM_CONFIG", str(config))
    return rl_home


@pytest.mark.parametrize(("name", "consumer", "code", "words"), CASES,
                         ids=[f"{c[0]}-{c[1][0]}" for c in CASES])
def test_bad_input_gives_the_documented_exit_and_keeps_saved_files(
        home: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, name: str,
        consumer: tuple[str, Main, list[str]], code: int, words: str) -> None:
    relative, content = INPUTS[name]
    bad = home / relative
    bad.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content)
    saved = home / "state" / "qlearning" / "sizing_agent.json"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({**QTABLE, "agent": "sizing", "n_actions": 40}))
    before = {p: p.read_bytes() for p in (bad, saved)}

    _, main, argv = consumer
    assert main(argv) == code
    captured = capsys.readouterr()
    output = captured.out + captured.err + caplog.text
    assert "Traceback" not in output
    assert words in output
    if words and code == 2:
        assert relative.rsplit("/", 1)[-1] in captured.err  # the message names the file
    assert {p: p.read_bytes() for p in before} == before
