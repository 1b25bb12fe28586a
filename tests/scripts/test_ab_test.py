"""A/B tests: the golden table of the operations guide's example, decisions from votes, metrics of two trade
histories recomputed by hand, the bootstrap against a normal approximation, the bounded history, and bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.ab_test import (
    SystemFigures,
    bootstrap_mean_difference,
    compare_figures,
    figures_from_trades,
)
from core.config import REPO_ROOT, Config
from core.contracts.pnl_history import COLUMNS
from scripts import ab_test

SEED_ARGS = ["--a-name", "RL v1", "--b-name", "RL v2",
             "--a-pnl", "1000", "--a-winrate", "0.55", "--a-sharpe", "1.2", "--a-drawdown", "150",
             "--b-pnl", "1200", "--b-winrate", "0.58", "--b-sharpe", "1.5", "--b-drawdown", "120"]

GOLDEN_FIGURES = """\
================================================================================
RL v1 vs RL v2 A/B TEST COMPARISON
================================================================================

📊 PERFORMANCE METRICS
--------------------------------------------------------------------------------
Metric                    RL v1           RL v2           Diff %        Better
--------------------------------------------------------------------------------
Total Pnl                 $1,000.00       $1,200.00       +20.0% ✅      RL v2
Win Rate                  55.00%          58.00%          +5.5% ✅       RL v2
Sharpe Ratio              1.20            1.50            +25.0% ✅      RL v2
Max Drawdown              150.00          120.00          -20.0% ✅      RL v2 (lower is better)

🏆 RESULT
--------------------------------------------------------------------------------
  Winner: RL v2 🎉
  Confidence: 100.0%
  Recommendation: Deploy RL v2 to production

  Confidence is the share of the 4 compared metric(s) favouring the winner (hand-given figures carry no sample for a statistical test).
"""

A_ROWS = [  # pnl, pnl_pct, equity_after; one trade a day from 2024-01-01
    (100.0, 0.01, 10_100.0), (-200.0, -0.02, 9_900.0), (50.0, 0.005, 9_950.0), (150.0, 0.015, 10_100.0)]
B_ROWS = [(300.0, 0.03, 10_300.0), (200.0, 0.02, 10_500.0), (-100.0, -0.01, 10_400.0), (400.0, 0.04, 10_800.0)]

GOLDEN_TRADES = """\
================================================================================
baseline vs Q-sizing A/B TEST COMPARISON
================================================================================

📊 PERFORMANCE METRICS
--------------------------------------------------------------------------------
Metric                    baseline        Q-sizing        Diff %        Better
--------------------------------------------------------------------------------
Total Pnl                 $100.00         $800.00         +700.0% ✅     Q-sizing
Win Rate                  75.00%          75.00%          +0.0% ➖       -
Sharpe Ratio              3.19            17.89           +461.5% ✅     Q-sizing
Max Drawdown              1.98%           0.95%           -51.9% ✅      Q-sizing (lower is better)
Trades                    4               4
Mean pnl_pct              0.2500          2.0000          (percent per trade)

🏆 RESULT
--------------------------------------------------------------------------------
  Winner: Q-sizing 🎉
  Confidence: 92.8%
  Recommendation: Q-sizing looks better: keep testing to confirm before switching

  Test: bootstrap of the mean per-trade pnl_pct difference (Q-sizing - baseline), 2,000 resamples, seed 0
  Difference: +1.7500% per trade, 95% interval [-0.5000%, +3.8750%], p = 0.1440
"""


def write_history(path: Path, rows: list[tuple[float, float, float]], strategy: str = "turtle_trading") -> Path:
    lines = [",".join(COLUMNS)]
    for day, (pnl, pct, equity) in enumerate(rows, start=1):
        lines.append(f"2024-01-{day:02d}T10:00:00Z,2024-01-{day:02d}T08:00:00Z,BTC/USDT,{strategy},long,1,100,101,"
                     f"{pnl},{pct},0,{equity}")
    path.write_text("\n".join(lines) + "\n")
    return path


def frame(rows: list[tuple[float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame({
        "closed_at": pd.date_range("2024-01-01T10:00Z", periods=len(rows), freq="D"),
        "pnl": [r[0] for r in rows], "pnl_pct": [r[1] for r in rows], "equity_after": [r[2] for r in rows]})


def test_golden_table_of_the_guides_example(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    assert ab_test.main(SEED_ARGS) == 0
    assert capsys.readouterr().out == GOLDEN_FIGURES


def test_votes_decide_figures() -> None:
    a = SystemFigures("A", total_pnl=1000, win_rate=0.55, sharpe=1.2, max_drawdown=150)
    lean = compare_figures(a, SystemFigures("B", total_pnl=1200, win_rate=0.58, sharpe=1.5, max_drawdown=160))
    assert (lean.winner, lean.confidence) == ("B", 75.0)  # the higher drawdown votes for A
    assert lean.rows[3].better == "A" and lean.rows[3].diff_pct == pytest.approx(100 * 10 / 150)
    assert lean.recommendation == "B looks better: keep testing to confirm before switching"
    tie = compare_figures(SystemFigures("A", total_pnl=1000, win_rate=0.6),
                          SystemFigures("B", total_pnl=1200, win_rate=0.58))
    assert tie.winner is None and tie.confidence == 50.0
    assert tie.recommendation == "No clear winner: keep A and keep testing"
    keep = compare_figures(SystemFigures("A", total_pnl=-50.0), SystemFigures("B", total_pnl=-100.0))
    assert keep.winner == "A" and keep.recommendation == "Keep A in production"
    assert keep.rows[0].diff_pct == pytest.approx(-100.0)  # relative to |A|: B lost twice as much


def test_metrics_of_trade_histories_by_hand() -> None:
    a = figures_from_trades("A", frame(A_ROWS))
    assert a.total_pnl == pytest.approx(100.0) and a.win_rate == pytest.approx(0.75) and a.trades == 4
    assert a.max_drawdown == pytest.approx(1 - 9_900 / 10_100)  # start 10,000 -> peak 10,100 -> 9,900
    equity = np.array([10_000.0, 10_100.0, 9_900.0, 9_950.0, 10_100.0])
    daily = equity[1:] / equity[:-1] - 1
    assert a.sharpe == pytest.approx(daily.mean() / daily.std(ddof=1) * math.sqrt(365))
    assert a.mean_pnl_pct == pytest.approx(0.0025)
    gap = frame([(100.0, 0.01, 10_100.0), (100.0, 0.01, 10_200.0)])
    gap.loc[1, "closed_at"] = pd.Timestamp("2024-01-03T10:00Z")  # a day without trades counts as 0 %
    flat_day = np.array([0.01, 0.0, 10_200 / 10_100 - 1])
    assert figures_from_trades("G", gap).sharpe == pytest.approx(flat_day.mean() / flat_day.std(ddof=1)
                                                                 * math.sqrt(365))


def test_golden_table_of_two_trade_histories(cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = write_history(tmp_path / "a.csv", A_ROWS), write_history(tmp_path / "b.csv", B_ROWS, "macd_momentum")
    assert ab_test.main(["--a-trades", str(a), "--b-trades", str(b), "--a-name", "baseline", "--b-name", "Q-sizing",
                         "--resamples", "2000"]) == 0
    assert capsys.readouterr().out == GOLDEN_TRADES


def test_bootstrap_agrees_with_the_normal_approximation() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(0.0, 0.02, 400), rng.normal(0.003, 0.02, 500)
    boot = bootstrap_mean_difference(a, b, resamples=4000, seed=5)
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    diff = b.mean() - a.mean()
    assert boot.observed_diff == pytest.approx(diff)
    assert boot.share_b_better == pytest.approx(0.5 * (1 + math.erf(diff / se / math.sqrt(2))), abs=0.02)
    assert boot.ci_low == pytest.approx(diff - 1.96 * se, abs=0.25 * se)
    assert boot.ci_high == pytest.approx(diff + 1.96 * se, abs=0.25 * se)
    assert bootstrap_mean_difference(a, b, resamples=4000, seed=5) == boot  # one seed, one result
    same = bootstrap_mean_difference(a, a, resamples=2000, seed=1)
    assert same.observed_diff == 0.0 and 0.3 < same.share_b_better < 0.7 and same.p_value > 0.5
    with pytest.raises(ValueError, match="at least 2 trades"):
        bootstrap_mean_difference([0.01], b)


def test_results_are_recorded_bounded_and_listed(cfg: Config, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "small.toml"
    toml.write_text("[logging]\njsonl_max_lines = 4\n")
    for i in range(6):
        assert ab_test.main([*SEED_ARGS[4:], "--a-name", f"run{i}", "--config", str(toml)]) == 0
    assert ab_test.main([*SEED_ARGS, "--no-record", "--config", str(toml)]) == 0
    lines = ab_test.history_path(cfg).read_text().splitlines()
    assert 1 <= len(lines) <= 4
    records = [json.loads(line) for line in lines]
    assert records[-1]["a"]["name"] == "run5" and records[-1]["winner"] == "System B"
    assert records[-1]["mode"] == "figures" and records[-1]["confidence"] == 100.0
    capsys.readouterr()
    assert ab_test.main(["--history", "--config", str(toml)]) == 0
    out = capsys.readouterr().out
    assert f"A/B TEST HISTORY ({len(lines)} test" in out and "run5" in out and "run0" not in out


def test_history_when_empty(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    assert ab_test.main(["--history"]) == 0
    assert "No A/B tests recorded yet." in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["--a-pnl", "1"], "no metric was given for both systems"),
    ([], "nothing to compare"),
    (["--a-winrate", "55", "--b-winrate", "0.5"], "--a-winrate 55: give the win rate as a fraction"),
    (["--a-drawdown", "-150", "--b-drawdown", "120"], "--a-drawdown -150: give the drawdown as a positive size"),
    (["--a-trades", "a.csv"], "give both --a-trades and --b-trades"),
    (["--a-trades", "missing.csv", "--b-trades", "missing.csv"], "missing.csv: file not found"),
    (["--a-trades", "bad.csv", "--b-trades", "bad.csv"], "column `pnl_pct` missing"),
    (["--a-trades", "a.csv", "--b-trades", "a.csv", "--a-pnl", "3"], "not both"),
    (["--a-trades", "one.csv", "--b-trades", "a.csv"], "at least 2 trades per system"),
])
def test_bad_input_is_one_clear_line_and_exit_2(cfg: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str], args: list[str],
                                                message: str) -> None:
    monkeypatch.chdir(tmp_path)
    write_history(tmp_path / "a.csv", A_ROWS)
    write_history(tmp_path / "one.csv", A_ROWS[:1])
    (tmp_path / "bad.csv").write_text(",".join(c for c in COLUMNS if c != "pnl_pct") + "\n")
    assert ab_test.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("ab_test: error: ") and message in err and err.count("\n") == 1
    assert not ab_test.history_path(cfg).exists()


def test_help_runs_as_a_script() -> None:
    done = subprocess.run([sys.executable, "scripts/ab_test.py", "--help"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "--a-trades" in done.stdout and "--history" in done.stdout
