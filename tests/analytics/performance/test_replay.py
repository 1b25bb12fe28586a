"""The replay's causal baselines: the sources' own compute_weights as of the day before each rebalance, and
no look-ahead."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from analytics import portfolio_optimizer as po
from analytics import strategy_lab as lab
from analytics.performance.replay import PORTFOLIOS, build_replay
from analytics.performance.tracking import load_weight_history
from analytics.weight_source import InsufficientHistoryError
from core.config import STRATEGIES, Config
from core.contracts.pnl_history import append_trades
from tests.analytics.performance.support import AS_OF, N_DAYS, at, baseline_cfg, synthetic_trades, trade


@pytest.mark.parametrize("method", ["inverse_vol", "erc"])
def test_replayed_baselines_equal_the_sources_own_weights_as_of_the_day_before(cfg: Config, method: str) -> None:
    append_trades(cfg.state_dir / "pnl_history.csv", synthetic_trades(seed=3, gap=range(0)))
    cfg = baseline_cfg(cfg, method)
    replay = build_replay(cfg, AS_OF, load_weight_history(cfg))
    checked = 0
    for i in range(0, N_DAYS, cfg.performance.rebalance_days):
        day = replay.days[i].date()
        for name, module in (("portfolio_optimizer", po), ("strategy_lab", lab)):
            try:
                expected = module.compute_weights(cfg, as_of=day - timedelta(days=1))["weights"]
            except InsufficientHistoryError:
                expected = {s: 1 / 8 for s in STRATEGIES}
            held = replay.weights[name][i:i + cfg.performance.rebalance_days]
            assert np.allclose(held, [expected[s] for s in STRATEGIES], rtol=1e-12, atol=1e-14), (name, day)
            checked += expected != {s: 1 / 8 for s in STRATEGIES}
    assert checked >= 8  # most rebalances had real weights, not the equal fallback
    assert replay.baselines["portfolio_optimizer"].without_weights == 1  # only the first day: no data before it


def test_baselines_do_not_look_ahead(cfg: Config) -> None:
    path = cfg.state_dir / "pnl_history.csv"
    append_trades(path, synthetic_trades(seed=5, gap=range(0)))
    cfg = baseline_cfg(cfg)
    cut = AS_OF - timedelta(days=12)
    before = build_replay(cfg, cut, load_weight_history(cfg))
    # A wild future that a look-ahead would notice.
    append_trades(path, [trade(at(cut + timedelta(days=d), 12), s, 0.5 if s == STRATEGIES[0] else -0.3)
                         for d in range(1, 12) for s in STRATEGIES])
    after = build_replay(cfg, AS_OF, load_weight_history(cfg))
    n = before.size
    for name in PORTFOLIOS:
        assert np.array_equal(before.weights[name], after.weights[name][:n]), name
        assert np.array_equal(before.portfolio_returns(name), after.portfolio_returns(name)[:n]), name
