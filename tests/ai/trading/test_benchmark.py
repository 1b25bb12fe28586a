"""Tests of the out-of-sample benchmark against independent computations of the baselines, and the policy run."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ai.trading.benchmark import benchmark_gate, best_baseline, confidence_vs, policy_run
from ai.trading.common import file_sha256, load_model
from ai.trading.market_features import compute_market_features
from ai.trading.options import options_from_config
from analytics.baselines import exposure_returns
from core.atomic import read_json
from core.config import load_config, replace_section
from core.contracts.trading_model import model_path
from core.contracts.trading_reports import benchmark_path
from market.csv_import import read_csv_candles


def reference_trades(closes: np.ndarray, exposures: list[float], fee: float) -> list[float]:
    """Trade returns by the documented rule, written independently of the module (runs of one sign)."""
    trades, k, n = [], 0, len(exposures)
    while k < n:
        if exposures[k] == 0:
            k += 1
            continue
        sign, growth, first = np.sign(exposures[k]), 1.0, k
        while k < n and np.sign(exposures[k]) == sign:
            added = abs(exposures[k]) if k == first else abs(exposures[k] - exposures[k - 1])
            growth *= 1 + exposures[k] * (closes[k + 1] / closes[k] - 1) - fee * added
            k += 1
        if k < n:
            growth *= 1 - fee * abs(exposures[k - 1])
        trades.append(growth - 1)
    return trades


def reference_metrics(closes: np.ndarray, exposures: list[float], fee: float, ppy: float) -> dict[str, float]:
    returns, previous = [], 0.0
    for k, p in enumerate(exposures):
        returns.append(p * (closes[k + 1] / closes[k] - 1) - fee * abs(p - previous))
        previous = p
    equity, peak, deepest = 1.0, 1.0, 0.0
    for r in returns:
        equity *= 1 + r
        peak = max(peak, equity)
        deepest = min(deepest, equity / peak - 1)
    mean = sum(returns) / len(returns)
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
    trades = reference_trades(closes, exposures, fee)
    return {"total_return": equity - 1, "sharpe_ratio": mean / std * math.sqrt(ppy), "max_drawdown": deepest,
            "win_rate": sum(t > 0 for t in trades) / len(trades), "avg_return": sum(trades) / len(trades),
            "n_trades": float(len(trades))}


def test_benchmark_on_a_binance_export_matches_independent_baselines(write_binance_csv: Callable[..., Any], run_cli: Callable[..., Any], tiny: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "BTCUSDT-1h.csv"
    times, closes = write_binance_csv(csv, n=360)
    fee, ppy, fast, slow = 0.001, 8760.0, 10, 20
    code, doc, _ = run_cli(capsys, "benchmark", "--candles", str(csv), "--train-frac", "0.7", "--fee", str(fee),
                           "--episodes", "3", "--train-episodes", "2", "--save-model", "--ma-fast", str(fast),
                           "--ma-slow", str(slow), "--json")
    assert code == 0
    split = round(360 * 0.7)
    assert doc["test_window"] == {"start": int(times[split]), "end": int(times[-1]),
                                  "start_time": doc["test_window"]["start_time"],
                                  "end_time": doc["test_window"]["end_time"], "bars": 360 - split}
    assert doc["train_window"]["end"] == int(times[split - 1]) and doc["train_window"]["bars"] == split
    assert doc["in_sample"] is False and doc["fee"] == fee and doc["periods_per_year"] == ppy
    assert doc["data_source"] == "csv:BTCUSDT-1h.csv"
    test_closes = closes[split:]
    expected_bh = reference_metrics(test_closes, [1.0] * (359 - split), fee, ppy)
    ma = []
    for k in range(split, 359):
        f = closes[k - fast + 1:k + 1].mean()
        s = closes[k - slow + 1:k + 1].mean()
        ma.append(1.0 if f > s else -1.0 if f < s else 0.0)
    expected_ma = reference_metrics(test_closes, ma, fee, ppy)
    for key, value in expected_bh.items():
        assert doc["buy_hold_metrics"][key] == pytest.approx(value, rel=1e-9), key
    for key, value in expected_ma.items():
        assert doc["moving_avg_metrics"][key] == pytest.approx(value, rel=1e-9), key
    for name in ("rl_v3", "random"):
        assert set(doc[f"{name}_metrics"]) == set(expected_bh)
    sharpes = {"RL v3": doc["rl_v3_metrics"]["sharpe_ratio"], "Buy & Hold": doc["buy_hold_metrics"]["sharpe_ratio"],
               "Moving Average": doc["moving_avg_metrics"]["sharpe_ratio"],
               "Random": doc["random_metrics"]["sharpe_ratio"]}
    assert doc["winner"] == max((k for k, v in sharpes.items() if v is not None), key=lambda k: sharpes[k])
    gate = doc["gate"]
    rl = doc["rl_v3_metrics"]
    assert gate["sharpe_ratio"]["passed"] == (rl["sharpe_ratio"] is not None and rl["sharpe_ratio"] > 1.5)
    assert gate["max_drawdown"]["passed"] == (rl["max_drawdown"] > -0.15)
    criteria = ("sharpe_ratio", "max_drawdown", "win_rate", "beats_buy_hold", "beats_best_baseline_with_confidence")
    assert gate["passed"] == all(gate[k]["passed"] for k in criteria)
    # The confidence criterion measures against the baseline with the best Sharpe ratio, by its interval's bound.
    baselines = {k: v for k, v in sharpes.items() if k != "RL v3" and v is not None}
    confident = gate["beats_best_baseline_with_confidence"]
    assert confident["baseline"] == max(baselines, key=lambda k: baselines[k])
    interval = confident["interval"]
    assert interval["confidence"] == 0.9 and interval["block_length"] == 24 and interval["periods"] == 359 - split
    assert confident["passed"] == (interval["lower"] is not None and interval["lower"] > 0)
    assert interval["lower"] <= interval["estimate"] <= interval["upper"]
    cfg = load_config(tiny)
    written = read_json(benchmark_path(cfg)).data
    assert written["buy_hold_metrics"] == doc["buy_hold_metrics"] and written["producer"] == "shadow_ppo"
    assert benchmark_path(cfg).with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert doc["model"]["sha256"] == file_sha256(model_path(cfg))


def test_the_policy_run_follows_the_accounting_and_a_saved_model_can_be_in_sample(write_binance_csv: Callable[..., Any], run_cli: Callable[..., Any],
        tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "eth.csv"
    _, closes = write_binance_csv(csv, n=240, seed=9)
    assert run_cli(capsys, "train", "--candles", str(csv), "--episodes", "2", "--quiet")[0] == 0
    code, doc, _ = run_cli(capsys, "benchmark", "--candles", str(csv), "--episodes", "1", "--json")
    assert code == 0 and doc["in_sample"] is True and doc["model"]["source"] == "saved"
    assert doc["train_window"]["bars"] == 240
    cfg = load_config(tiny)
    model = load_model(model_path(cfg))
    features = compute_market_features(read_csv_candles(csv))
    exposures, returns = policy_run(model, features, 168, options_from_config(cfg, fee=0.002))
    assert returns == pytest.approx(exposure_returns(closes[168:], exposures, 0.002), rel=1e-12)


def test_the_confidence_criterion_joins_the_seeds_gate(tiny: Path) -> None:
    cfg = load_config(tiny)
    good = {"sharpe_ratio": 3.0, "max_drawdown": -0.05, "win_rate": 0.6}
    bh = {"sharpe_ratio": 1.0}
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.01, 400)
    edge = {"rl_v3": noise + 0.003, "buy_hold": rng.normal(0.0, 0.01, 400)}
    sure = benchmark_gate(cfg, good, bh, ("buy_hold", confidence_vs(cfg, edge, "buy_hold", 8760.0)))
    assert sure["passed"] and sure["beats_best_baseline_with_confidence"]["passed"]
    same = {"rl_v3": noise, "buy_hold": noise}  # no edge over the baseline: the seed's criteria alone would pass
    unsure = benchmark_gate(cfg, good, bh, ("buy_hold", confidence_vs(cfg, same, "buy_hold", 8760.0)))
    assert not unsure["passed"] and not unsure["beats_best_baseline_with_confidence"]["passed"]
    assert all(unsure[k]["passed"] for k in ("sharpe_ratio", "max_drawdown", "win_rate", "beats_buy_hold"))
    off = replace_section(cfg, "trading_agent", gate_confidence=0.0)
    assert benchmark_gate(off, good, bh, ("buy_hold", confidence_vs(off, same, "buy_hold", 8760.0)))["passed"]
    assert best_baseline({"buy_hold": {"sharpe_ratio": 0.5}, "moving_avg": {"sharpe_ratio": math.nan},
                          "random": {"sharpe_ratio": 0.7}}) == "random"
