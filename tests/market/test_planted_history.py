"""Planted trade histories: the contract's columns, determinism, the planted edges are really in the trades,
and the expected returns per period add up the generator's edges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config import STRATEGIES
from core.contracts.pnl_history import COLUMNS, append_trades, read_history
from core.errors import ConfigError
from market.planted_history import REGIME_EDGES, planted_history
from market.synthetic import REGIMES

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def planted():  # type: ignore[no-untyped-def]
    return planted_history(days=120, seed=3)


def test_trades_follow_the_history_contract_and_round_trip(planted, tmp_path) -> None:  # type: ignore[no-untyped-def]
    trades = planted.trades
    assert list(trades.columns) == list(COLUMNS)
    assert set(trades["strategy"]) == set(STRATEGIES) and trades["closed_at"].is_monotonic_increasing
    assert (trades["opened_at"] < trades["closed_at"]).all()
    path = tmp_path / "pnl_history.csv"
    append_trades(path, trades.to_dict("records"))
    back = read_history(path)
    assert back.skipped == 0 and len(back.trades) == len(trades)
    np.testing.assert_allclose(back.trades["pnl_pct"].to_numpy(), trades["pnl_pct"].to_numpy())


def test_same_seed_same_history(planted) -> None:  # type: ignore[no-untyped-def]
    again = planted_history(days=120, seed=3)
    pd.testing.assert_frame_equal(again.trades, planted.trades)
    assert not planted_history(days=120, seed=4).trades["pnl_pct"].equals(planted.trades["pnl_pct"])


def test_trades_carry_their_regimes_edge() -> None:
    planted = planted_history(days=400, seed=1, trade_noise=0.01)
    closed_ms = ((planted.trades["closed_at"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy()
    regime = planted.regime_codes[np.searchsorted(planted.close_ms, closed_ms, side="left")]  # the candle closed in
    strategy = planted.trades["strategy"].map({s: i for i, s in enumerate(STRATEGIES)}).to_numpy()
    for code, name in enumerate(REGIMES):
        for i in (0, 1):  # turtle (trend) and RSI (mean reversion)
            pnl = planted.trades["pnl_pct"].to_numpy()[(regime == code) & (strategy == i)]
            if len(pnl) < 200:
                continue
            # Mean within 4 standard errors of the planted edge (0.004 per unit of REGIME_EDGES).
            assert abs(pnl.mean() - 0.004 * REGIME_EDGES[name][i]) < 4 * 0.01 / np.sqrt(len(pnl))


def test_no_edge_history_is_pure_noise() -> None:
    flat = planted_history(days=200, seed=2, edge=0.0)
    assert np.all(flat.hourly_edges == 0.0)
    assert abs(flat.trades["pnl_pct"].mean()) < 4 * 0.01 / np.sqrt(len(flat.trades))


def test_expected_returns_add_up_the_hourly_edges(planted) -> None:  # type: ignore[no-untyped-def]
    start = int(planted.close_ms[0]) - 3_600_000
    bounds = start + DAY_MS * np.arange(121)
    daily = planted.expected_returns(bounds)
    assert daily.shape == (120, 8)
    np.testing.assert_allclose(daily[5], planted.hourly_edges[5 * 24:6 * 24].sum(axis=0))
    np.testing.assert_allclose(daily.sum(axis=0), planted.hourly_edges.sum(axis=0))


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least 2 days"):
        planted_history(days=1)
    with pytest.raises(ConfigError, match="edge"):
        planted_history(days=10, edge=-0.1)
