"""The learning benchmark runs for real on tiny planted markets: its JSON holds every run and the per-market
summary, the planted rule is measured on the same test window, and nothing is written to the home."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts import bench_learning

TINY = """
[trading_agent]
episode_length = 48
num_envs = 2

[trading_agent.ppo]
n_steps = 48
batch_size = 48
n_epochs = 1
hidden_sizes = [16, 16]
"""


def test_one_run_per_market_and_seed_with_a_summary_per_market(rl_home: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    code = bench_learning.main(["--config", str(config), "--markets", "mean_reverting", "random_walk",
                                "--seeds", "0", "1", "--candles", "600", "--episodes", "2",
                                "--random-episodes", "2", "--json", "--quiet"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["agent"] == "trading"
    assert [(r["market"], r["seed"]) for r in doc["runs"]] == [("mean_reverting", 0), ("mean_reverting", 1),
                                                               ("random_walk", 0), ("random_walk", 1)]
    run = doc["runs"][0]
    assert run["test_candles"] == 180 and set(run["metrics"]) == set(bench_learning.STRATEGIES)
    # The rule that knows the generator earns on a mean-reverting market; on a random walk it stays flat.
    assert run["metrics"]["planted_rule"]["sharpe_ratio"] > 2
    assert doc["runs"][2]["metrics"]["planted_rule"]["n_trades"] == 0
    summary = doc["markets"]["mean_reverting"]
    sharpes = [r["metrics"]["agent"]["sharpe_ratio"] for r in doc["runs"][:2]]
    assert summary["seeds"] == [0, 1]
    assert summary["table"]["agent"]["sharpe_ratio"]["mean"] == pytest.approx(sum(sharpes) / 2)
    assert doc["markets"]["random_walk"]["half_rule"] is None
    assert not any((rl_home / part).exists() and any((rl_home / part).iterdir()) for part in ("state", "runtime"))


def test_a_bad_option_is_refused_with_exit_code_2(rl_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_learning.main(["--candles", "100", "--quiet"]) == 2
    assert "--candles must be >= 500" in capsys.readouterr().err


SMALL = """
[trading_agent]
episode_length = 256
"""


@pytest.mark.parametrize("market", ["mean_reverting", "momentum", "regime_switching"])
def test_the_trading_agent_finds_each_planted_edge_out_of_sample(rl_home: Path, tmp_path: Path, market: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # 2,500 hourly candles, trained on the first 1,750 (40 episodes, ~10k steps), tested on the 750 after them,
    # fee 0.1 %: the agent beats Buy & Hold, MA crossover and Random and reaches half the planted rule's Sharpe.
    run = _small_run(market, tmp_path, capsys)
    sharpe = {name: m["sharpe_ratio"] for name, m in run["metrics"].items()}
    assert all(sharpe["agent"] > sharpe[b] for b in ("buy_hold", "moving_avg", "random")), sharpe
    assert sharpe["agent"] >= 0.5 * sharpe["planted_rule"] > 0, sharpe
    assert run["metrics"]["agent"]["total_return"] > 0


def test_on_a_random_walk_the_trading_agent_does_not_pass_its_gate(rl_home: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run = _small_run("random_walk", tmp_path, capsys)
    assert run["gate_passed"] is False and run["metrics"]["planted_rule"]["n_trades"] == 0


def _small_run(market: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    code = bench_learning.main(["--config", str(config), "--markets", market, "--seeds", "0", "--candles", "2500",
                                "--episodes", "40", "--json", "--quiet"])
    assert code == 0
    runs: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["runs"]
    return runs[0]
