"""Walk-forward evaluation of the trading PPO from the command line: folds that never train on their test
window, per-fold and pooled results that agree with each other, the table, and exit 3 when the candles are too
few for the folds."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import load_config
from core.contracts.trading_model import model_path


def test_walk_forward_trains_each_fold_on_its_past_and_pools_the_test_windows(
        write_binance_csv: Callable[..., Any], run_cli: Callable[..., Any], tiny: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "BTCUSDT-1h.csv"
    times, _ = write_binance_csv(csv, n=360)
    code, doc, _ = run_cli(capsys, "walk-forward", "--candles", str(csv), "--folds", "3", "--train-frac", "0.55",
                           "--train-episodes", "1", "--episodes", "2", "--json")
    assert code == 0
    folds = doc["folds"]
    # 360 candles, first training 198: 162 left for 3 test windows of 54 candles.
    assert [f["test_window"]["bars"] for f in folds] == [54, 54, 54]
    assert [f["test_window"]["start"] for f in folds] == [int(times[198]), int(times[252]), int(times[306])]
    assert folds[-1]["test_window"]["end"] == int(times[-1])
    for fold in folds:  # no fold's model saw a candle of its test window; expanding: all candles before it
        assert fold["model"]["trained_range"]["end"] < fold["test_window"]["start"]
        assert fold["train_window"]["start"] == int(times[0])
        assert fold["best_baseline"] in ("buy_hold", "moving_avg", "random")
        ci = fold["sharpe_difference"]
        assert ci["periods"] == 53 and ci["confidence"] == 0.9 and fold["beats_best_baseline"] == ci["positive"]
    pooled = doc["pooled"]
    for name in ("rl_v3", "buy_hold", "moving_avg"):  # the pooled return compounds the folds' returns
        compounded = math.prod(1 + f["metrics"][name]["total_return"] for f in folds) - 1
        assert pooled["metrics"][name]["total_return"] == pytest.approx(compounded, rel=1e-9, abs=1e-12)
        assert pooled["metrics"][name]["steps"] == 3 * 53
    assert pooled["sharpe_difference"]["periods"] == 3 * 53
    assert not model_path(load_config(tiny)).exists()  # a report: nothing is installed

    code, table, _ = run_cli(capsys, "walk-forward", "--candles", str(csv), "--folds", "2", "--train-episodes", "1",
                             "--episodes", "1", "--scheme", "rolling", "--quiet")
    assert code == 0 and "2 rolling folds" in table and "pooled" in table and "Buy & Hold" in table


def test_too_few_candles_for_the_folds_exit_3_with_the_reason(
        write_binance_csv: Callable[..., Any], run_cli: Callable[..., Any], tiny: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "short.csv"
    write_binance_csv(csv, n=60)
    code, _, err = run_cli(capsys, "walk-forward", "--candles", str(csv), "--folds", "20", "--train-episodes", "1",
                           "--quiet")
    assert code == 3
    assert "not enough data" in err and "60 candles cannot make 20 walk-forward fold(s)" in err and "--folds" in err
