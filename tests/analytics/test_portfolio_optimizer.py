"""Portfolio optimizer: inverse volatility and ERC against independent
computations, the minimum-history rules and the command's exit codes."""

from __future__ import annotations

import json
import random
import statistics
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from analytics import portfolio_optimizer as po
from analytics import returns
from analytics.weight_source import InsufficientHistoryError
from core.config import STRATEGIES, Config, replace_section
from core.contracts.pnl_history import append_trades
from tests.analytics.support import AS_OF, trade


def days_back(n: int) -> list[date]:
    """The ``n`` days ending AS_OF, oldest first."""
    return [AS_OF - timedelta(days=n - 1 - i) for i in range(n)]


def write_series(cfg: Config, series: dict[str, list[float]]) -> None:
    """One day per value ending AS_OF: no trade on a 0, two trades summing to it on even days, else one."""
    rows = []
    for name, values in series.items():
        for i, (day, value) in enumerate(zip(days_back(len(values)), values, strict=True)):
            if value == 0:
                continue
            if i % 2 == 0:
                rows += [trade(day, name, value * 0.25, hour=9), trade(day, name, value * 0.75, hour=15)]
            else:
                rows.append(trade(day, name, value))
    append_trades(cfg.state_dir / "pnl_history.csv", rows)


def random_series(n_days: int, seed: int) -> dict[str, list[float]]:
    rng = random.Random(seed)
    return {s: [0.0 if rng.random() < 0.3 else round(rng.gauss(0.001, 0.005 * (i + 1)), 6) for _ in range(n_days)]
            for i, s in enumerate(STRATEGIES)}


def optimizer_cfg(cfg: Config, **changes: object) -> Config:
    return replace_section(cfg, "portfolio_optimizer", **{"lookback_days": 20, **changes})


def read_output(cfg: Config) -> dict:
    return json.loads((cfg.runtime_dir / "portfolio_optimizer_weights.json").read_text())


def test_inverse_vol_weights_match_a_hand_computation(cfg: Config) -> None:
    series = random_series(20, seed=1)
    write_series(cfg, series)
    # Noise that must not count: another book, trades before the lookback and after the as-of day.
    append_trades(cfg.state_dir / "pnl_history.csv", [
        trade(AS_OF - timedelta(days=3), "rl_v3_ppo", 5.0),
        trade(AS_OF - timedelta(days=25), STRATEGIES[0], 9.0),
        trade(AS_OF + timedelta(days=1), STRATEGIES[1], -9.0),
    ])
    cfg = optimizer_cfg(cfg)
    assert po.run_once(cfg, as_of=AS_OF) == cfg.runtime_dir / "portfolio_optimizer_weights.json"

    vol = {s: statistics.stdev(series[s]) for s in STRATEGIES}
    inverse = {s: 1 / vol[s] for s in STRATEGIES}
    expected = {s: inverse[s] / sum(inverse.values()) for s in STRATEGIES}
    doc = read_output(cfg)
    assert doc["weights"] == pytest.approx(expected, rel=1e-9)
    assert doc["volatility_daily"] == pytest.approx(vol, rel=1e-9)
    assert doc["volatility_annualized"][STRATEGIES[2]] == pytest.approx(vol[STRATEGIES[2]] * 365 ** 0.5)
    assert doc["method"] == "inverse_vol" and doc["lookback_days"] == 20 and doc["producer"] == "portfolio_optimizer"
    assert doc["data_range"] == {"start": "2024-03-12", "end": "2024-03-31", "days": 20,
                                 "trades": sum(doc["trades"].values())}
    assert doc["trades"][STRATEGIES[0]] == sum((2 if i % 2 == 0 else 1) for i, v in enumerate(series[STRATEGIES[0]])
                                               if v != 0)


def test_the_window_ends_on_the_newest_trade_by_default(cfg: Config) -> None:
    # A replay of past candles: every trade is years old, yet it is the history's recent past.
    series = random_series(20, seed=1)
    write_series(cfg, series)
    cfg = optimizer_cfg(cfg)
    assert po.run_once(cfg) is not None
    doc = read_output(cfg)
    assert doc["data_range"]["end"] == AS_OF.isoformat() and doc["data_range"]["days"] == 20
    inverse = {s: 1 / statistics.stdev(series[s]) for s in STRATEGIES}
    assert doc["weights"] == pytest.approx({s: v / sum(inverse.values()) for s, v in inverse.items()}, rel=1e-9)
    assert returns.history_day(returns.load_strategy_trades(cfg)[0].iloc[:0]) == datetime.now(timezone.utc).date()


def correlated_returns(n_days: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vols = np.linspace(0.005, 0.03, len(STRATEGIES))
    corr = np.full((8, 8), 0.1)
    corr[:4, :4] = 0.8  # the first four move together, so ERC must differ from inverse volatility
    np.fill_diagonal(corr, 1.0)
    cov = corr * np.outer(vols, vols)
    return np.round(rng.multivariate_normal(np.zeros(8), cov, size=n_days), 8)


def test_erc_risk_contributions_are_equal_on_a_correlated_example(cfg: Config) -> None:
    data = correlated_returns(60, seed=7)
    write_series(cfg, {s: data[:, i].tolist() for i, s in enumerate(STRATEGIES)})
    cfg = optimizer_cfg(cfg, method="erc", lookback_days=60)
    assert po.run_once(cfg, as_of=AS_OF) is not None
    doc = read_output(cfg)
    w = np.array([doc["weights"][s] for s in STRATEGIES])
    cov = np.cov(data, rowvar=False, ddof=1)
    contributions = w * (cov @ w) / (w @ cov @ w)
    assert contributions == pytest.approx(np.full(8, 1 / 8), abs=1e-7)
    assert doc["solver"]["converged"] is True and doc["method"] == "erc"
    inverse_vol = (1 / np.sqrt(np.diag(cov))) / np.sum(1 / np.sqrt(np.diag(cov)))
    assert np.max(np.abs(w - inverse_vol)) > 0.01  # the correlated block is down-weighted
    assert w[:4].sum() < inverse_vol[:4].sum()


def test_erc_solver_matches_closed_forms() -> None:
    # Two assets: equal risk contributions means w1 * s1 = w2 * s2 whatever the correlation.
    s1, s2, rho = 0.1, 0.3, 0.7
    cov = np.array([[s1 * s1, rho * s1 * s2], [rho * s1 * s2, s2 * s2]])
    sol = po.erc_weights(cov)
    assert sol.converged and sol.weights == pytest.approx([0.75, 0.25], abs=1e-9)
    # Uncorrelated assets: ERC is inverse volatility.
    vols = np.array([0.01, 0.02, 0.04])
    sol = po.erc_weights(np.diag(vols ** 2))
    assert sol.weights == pytest.approx((1 / vols) / np.sum(1 / vols), abs=1e-9)
    with pytest.raises(ValueError, match="positive diagonal"):
        po.erc_weights(np.zeros((2, 2)))


def test_too_few_days_writes_nothing(cfg: Config) -> None:
    write_series(cfg, {s: [0.01, -0.01] * 4 for s in STRATEGIES})  # 8 days < min_days 14
    cfg = optimizer_cfg(cfg)
    assert po.run_once(cfg, as_of=AS_OF) is None
    assert not (cfg.runtime_dir / "portfolio_optimizer_weights.json").exists()


def test_a_strategy_without_enough_trades_gets_the_mean_weight(cfg: Config) -> None:
    series = random_series(20, seed=3)
    lonely = STRATEGIES[-1]
    series[lonely] = [0.02 if i in (3, 9, 15) else 0.0 for i in range(20)]  # 3 trades < min_trades 10
    write_series(cfg, series)
    cfg = optimizer_cfg(cfg)
    assert po.run_once(cfg, as_of=AS_OF) is not None
    doc = read_output(cfg)
    rest = [s for s in STRATEGIES if s != lonely]
    inverse = {s: 1 / statistics.stdev(series[s]) for s in rest}
    # The seven share 1 by inverse volatility, the lonely one gets their mean 1/7, then all are renormalized.
    expected = {s: inverse[s] / sum(inverse.values()) / (1 + 1 / 7) for s in rest} | {lonely: (1 / 7) / (1 + 1 / 7)}
    assert doc["weights"] == pytest.approx(expected, rel=1e-9)
    assert doc["insufficient_history"] == [lonely] and lonely not in doc["eligible"]


def test_too_few_eligible_strategies_writes_nothing(cfg: Config) -> None:
    series = {s: ([0.01, -0.02] * 10 if s == STRATEGIES[0] else [0.01] + [0.0] * 19) for s in STRATEGIES}
    write_series(cfg, series)
    cfg = optimizer_cfg(cfg)
    with pytest.raises(InsufficientHistoryError, match="min_strategies"):
        po.compute_weights(cfg, as_of=AS_OF)


def test_cli_writes_with_overrides_and_exits_3_on_short_history(cfg: Config, capsys: pytest.CaptureFixture) -> None:
    write_series(cfg, random_series(30, seed=5))
    assert po.main(["--method", "erc", "--lookback-days", "30", "--as-of", AS_OF.isoformat()]) == 0
    assert read_output(cfg)["method"] == "erc"
    assert "wrote" in capsys.readouterr().out
    assert po.main(["--as-of", "2023-01-01"]) == 3
    err = capsys.readouterr().err
    assert "not enough history" in err and "portfolio_optimizer.min_days" in err


def test_cli_bad_config_and_bad_history_exit_2(cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[portfolio_optimizer]\nmethod = "markowitz"\n')
    assert po.main(["--config", str(bad)]) == 2
    assert "portfolio_optimizer.method" in capsys.readouterr().err
    history = cfg.state_dir / "pnl_history.csv"
    history.parent.mkdir(parents=True, exist_ok=True)
    history.write_text("closed_at,strategy,pnl\n2024-01-01T00:00:00Z,turtle_trading,1\n")
    assert po.main([]) == 2
    assert "column `opened_at` missing" in capsys.readouterr().err
