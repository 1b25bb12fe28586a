"""Saved recomputations of the replay's baselines: reused only where their inputs did not change, so a replay
always equals one computed from scratch (after appends, a trade inserted in the past, other settings, a corrupt
file)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from analytics import portfolio_optimizer as po
from analytics import strategy_lab as lab
from analytics.performance.rebalance_memo import memo_path, save_between_runs
from analytics.performance.replay import PORTFOLIOS, Replay, build_replay
from analytics.performance.tracking import load_weight_history
from core.config import STRATEGIES, Config
from core.contracts.pnl_history import append_trades, history_path
from tests.analytics.performance.support import AS_OF, FIRST_DAY, at, baseline_cfg, synthetic_trades, trade


@pytest.fixture
def recomputed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sources recomputed (one entry per recomputation) since the fixture started."""
    calls: list[str] = []
    for name, module in (("portfolio_optimizer", po), ("strategy_lab", lab)):
        original = module.payload_from_trades

        def counting(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, "payload_from_trades", counting)
    return calls


@pytest.fixture
def saving(cfg: Config) -> None:
    save_between_runs(cfg)


def replay(cfg: Config, fresh: bool = False) -> Replay:
    if fresh:
        memo_path(cfg).unlink(missing_ok=True)
    return build_replay(cfg, AS_OF, load_weight_history(cfg))


def assert_same(a: Replay, b: Replay) -> None:
    for name in PORTFOLIOS:
        assert np.array_equal(a.weights[name], b.weights[name]), name
    assert {k: (v.rebalances, v.without_weights, v.first_with_weights) for k, v in a.baselines.items()} == \
           {k: (v.rebalances, v.without_weights, v.first_with_weights) for k, v in b.baselines.items()}


def test_appended_days_recompute_only_the_new_rebalances(cfg: Config, recomputed: list[str], saving: None) -> None:
    cfg = baseline_cfg(cfg)
    append_trades(history_path(cfg), synthetic_trades(seed=4, gap=range(0)))
    first = replay(cfg)
    total = len(recomputed)
    assert total == 2 * first.baselines["portfolio_optimizer"].rebalances
    assert np.array_equal(replay(cfg).weights["strategy_lab"], first.weights["strategy_lab"])
    assert len(recomputed) == total  # the same trades: nothing recomputed
    # Two more days of trades, after the report day of the first replay: only their rebalances are new.
    append_trades(history_path(cfg), [trade(at(AS_OF + timedelta(days=d), 9), s, 0.002 * (k - 3))
                                       for d in (1, 2) for k, s in enumerate(STRATEGIES)])
    del recomputed[:]
    later = build_replay(cfg, AS_OF + timedelta(days=2), load_weight_history(cfg))
    assert len(recomputed) <= 2
    memo_path(cfg).unlink()
    assert_same(later, build_replay(cfg, AS_OF + timedelta(days=2), load_weight_history(cfg)))


def test_a_trade_inserted_in_the_past_recomputes_the_windows_holding_it(cfg: Config, recomputed: list[str], saving: None) -> None:
    cfg = baseline_cfg(cfg)
    append_trades(history_path(cfg), synthetic_trades(seed=6, gap=range(0)))
    replay(cfg)
    total = len(recomputed)
    append_trades(history_path(cfg), [trade(at(FIRST_DAY + timedelta(days=20), 5), STRATEGIES[2], 0.05)])
    del recomputed[:]
    kept = replay(cfg)
    assert 0 < len(recomputed) < total
    assert_same(kept, replay(cfg, fresh=True))


def test_other_settings_do_not_reuse_saved_weights(cfg: Config, saving: None) -> None:
    append_trades(history_path(cfg), synthetic_trades(seed=8, gap=range(0)))
    replay(baseline_cfg(cfg, "inverse_vol"))
    erc = baseline_cfg(cfg, "erc")
    assert_same(replay(erc), replay(erc, fresh=True))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 broken", b"\x93NUMPY not an archive"])
def test_a_corrupt_memo_is_ignored_and_rebuilt(cfg: Config, content: bytes, caplog: pytest.LogCaptureFixture,
                                               saving: None) -> None:
    cfg = baseline_cfg(cfg)
    append_trades(history_path(cfg), synthetic_trades(seed=9, gap=range(0)))
    expected = replay(cfg, fresh=True)
    memo_path(cfg).write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="analytics.performance.rebalance_memo"):
        assert_same(replay(cfg), expected)
    assert str(memo_path(cfg)) in caplog.text
    with np.load(memo_path(cfg), allow_pickle=False) as saved:
        assert len(saved["keys"]) == 2 * expected.baselines["strategy_lab"].rebalances


def test_a_reader_that_must_not_write_only_uses_the_saved_memo(cfg: Config, recomputed: list[str]) -> None:
    cfg = baseline_cfg(cfg)
    append_trades(history_path(cfg), synthetic_trades(seed=2, gap=range(0)))
    unsaved = replay(cfg)
    assert not memo_path(cfg).exists()  # the dashboard's replay writes nothing
    save_between_runs(cfg)
    assert_same(replay(cfg), unsaved)
    assert memo_path(cfg).exists()
