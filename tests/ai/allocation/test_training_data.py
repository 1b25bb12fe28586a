"""What the strategy-weight agent trains on: the count of usable trades, the split of the periods into a training
slice and a held-out end, and the messages that say what is missing when there is too little data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ai.allocation.training_data import (
    MIN_TRAIN_PERIODS,
    NotEnoughDataError,
    TrainingData,
    count_trades,
    min_periods_to_train,
    prepare_training_data,
    split_periods,
)
from core.config import STRATEGIES, Config, replace_section
from core.contracts.pnl_history import append_trades, history_path
from core.errors import DataError

START = pd.Timestamp("2024-01-02", tz="UTC")
DAY_MS = 86_400_000

TradeRows = Callable[..., list[dict[str, Any]]]


def other_book(rows: list[dict[str, Any]], pnl_pct: float = 0.5) -> list[dict[str, Any]]:
    """The same trades booked by the trading agent (``rl_v3_ppo``), which shares the history file."""
    return [dict(row, strategy="rl_v3_ppo", pnl_pct=pnl_pct) for row in rows]


def closing_at(rows: list[dict[str, Any]], closes: pd.DatetimeIndex) -> list[dict[str, Any]]:
    """``rows`` with their close (and open) times replaced by ``closes``."""
    return [dict(row, closed_at=c.isoformat(), opened_at=(c - pd.Timedelta(hours=2)).isoformat())
            for row, c in zip(rows, closes, strict=True)]


def to_ms(iso: str) -> int:
    return int(pd.Timestamp(iso).value // 1_000_000)


@pytest.mark.parametrize("n_periods, fraction, expected", [
    (30, 0.2, 24),   # 6 held out
    (10, 0.2, 8),
    (7, 0.3, 5),     # round(2.1) = 2 held out
    (4, 0.1, 3),     # round(0.4) = 0, but at least one is held out
    (3, 0.2, 2),
    (2, 0.2, 1),
    (1, 0.2, 0),
    (100, 0.5, 50),
])
def test_split_periods_holds_out_the_rounded_fraction_and_at_least_one(n_periods: int, fraction: float,
                                                                       expected: int) -> None:
    assert split_periods(n_periods, fraction) == expected


def test_count_trades_counts_only_valid_trades_of_the_8_strategies(cfg: Config, trade_rows: TradeRows) -> None:
    assert count_trades(cfg) == 0  # no history file yet
    rows = trade_rows(20, seed=1)
    append_trades(history_path(cfg), rows + other_book(trade_rows(7, seed=2)))
    assert count_trades(cfg) == 20
    good = ",".join(str(rows[0][c]) for c in ("closed_at", "opened_at", "symbol", "strategy", "side", "qty",
                                              "entry_price", "exit_price", "pnl", "pnl_pct", "fees",
                                              "equity_after"))
    good = good.rsplit(",", 1)[0] + ",12345.5"  # another trade: an exact copy of row 0 would be dropped
    bad_number = good.replace(f",{rows[0]['pnl_pct']},", ",abc,")
    unknown_book = good.replace(f",{rows[0]['strategy']},", ",someone_else,")
    assert bad_number != good and unknown_book != good
    with open(history_path(cfg), "a") as fh:
        fh.write(f"{bad_number}\n{unknown_book}\n{good}\n")
    assert count_trades(cfg) == 21  # the two malformed rows are skipped, the valid one counts


def test_without_a_history_the_message_says_how_many_trades_are_needed(cfg: Config) -> None:
    with pytest.raises(NotEnoughDataError) as caught:
        prepare_training_data(cfg)
    message = str(caught.value)
    assert isinstance(caught.value, DataError)
    assert message.startswith(f"{history_path(cfg)} not found: no closed trades yet")
    assert f"at least {cfg.strategy_agent.min_trades} trades of the 8 strategies" in message
    assert "`strategy_agent.min_trades`" in message


def test_too_few_trades_of_the_8_strategies_names_the_count(cfg: Config, trade_rows: TradeRows) -> None:
    assert cfg.strategy_agent.min_trades == 50
    append_trades(history_path(cfg), trade_rows(49) + other_book(trade_rows(30, seed=3)))
    with pytest.raises(NotEnoughDataError, match=r"holds 49 closed trade\(s\) of the 8 strategies; at least 50 "
                                                 r"are needed before training \(`strategy_agent.min_trades`\)"):
        prepare_training_data(cfg)
    data = prepare_training_data(replace_section(cfg, "strategy_agent", min_trades=49))
    assert data.trades == 49


def test_the_history_is_split_into_a_training_slice_and_a_held_out_end(cfg: Config, trade_rows: TradeRows) -> None:
    rows = trade_rows(60, seed=4)
    append_trades(history_path(cfg), rows + other_book(trade_rows(25, seed=5)))
    data = prepare_training_data(cfg)

    closes = sorted(to_ms(r["closed_at"]) for r in rows)
    n_periods = (closes[-1] - closes[0]) // DAY_MS + 1  # a 1d grid ending at the last close, covering the first
    held_out = max(1, round(n_periods * 0.2))
    assert isinstance(data, TrainingData)
    assert data.trades == 60 and data.history.n_trades == 60
    assert data.history.n_periods == n_periods and data.n_train == n_periods - held_out
    assert data.holdout == (n_periods - held_out, n_periods)

    # Each strategy's period returns are the sums of its trades' pnl_pct; the other book's trades are not in them.
    expected = np.zeros(len(STRATEGIES))
    for row in rows:
        expected[STRATEGIES.index(row["strategy"])] += row["pnl_pct"]
    assert data.history.returns.shape == (n_periods, len(STRATEGIES))
    np.testing.assert_allclose(data.history.returns.sum(axis=0), expected, rtol=0, atol=1e-12)

    described = data.data_range()
    assert described["train_periods"] == n_periods - held_out and described["holdout_periods"] == held_out
    assert described["periods"] == n_periods and described["trades"] == 60
    assert to_ms(described["end"]) == closes[-1] and to_ms(described["last_trade"]) == closes[-1]
    assert to_ms(described["first_trade"]) == closes[0]
    assert to_ms(described["start"]) == closes[-1] - n_periods * DAY_MS < closes[0]


def test_three_periods_are_the_fewest_that_train(cfg: Config, trade_rows: TradeRows) -> None:
    assert MIN_TRAIN_PERIODS == 2
    two_periods = pd.date_range(START, START + pd.Timedelta(hours=25), periods=50)  # (25 h // 24 h) + 1 = 2
    append_trades(history_path(cfg), closing_at(trade_rows(50, seed=6), two_periods))
    with pytest.raises(NotEnoughDataError) as caught:
        prepare_training_data(cfg)
    assert str(caught.value) == (
        "the trades span 2 rebalancing period(s) of 1d; at least 3 are needed (training plus a held-out part); "
        "wait for more history or shorten `strategy_agent.rebalance_period`")

    # The advice works: 4-hour periods cut the same 25 hours into 25 // 4 + 1 = 7 periods, one held out.
    data = prepare_training_data(replace_section(cfg, "strategy_agent", rebalance_period="4h"))
    assert (data.history.n_periods, data.n_train, data.holdout) == (7, 6, (6, 7))

    # One more trade two days after the first makes three 1d periods: two to train on, one held out.
    later = pd.DatetimeIndex([START + pd.Timedelta(days=2)])
    append_trades(history_path(cfg), closing_at(trade_rows(1, seed=7), later))
    data = prepare_training_data(cfg)
    assert (data.history.n_periods, data.n_train, data.holdout, data.trades) == (3, 2, (2, 3), 51)


def test_preparing_twice_gives_the_same_data(cfg: Config, trade_rows: TradeRows) -> None:
    append_trades(history_path(cfg), trade_rows(80, seed=8))
    first, second = prepare_training_data(cfg), prepare_training_data(cfg)
    assert first.data_range() == second.data_range() and first.n_train == second.n_train
    assert np.array_equal(first.history.base, second.history.base)
    assert np.array_equal(first.history.returns, second.history.returns)
    assert np.isfinite(first.history.base).all()


@pytest.mark.parametrize(("fraction", "expected"), [(0.2, 3), (0.4, 3), (0.5, 4)])
def test_the_stated_minimum_of_periods_is_the_fewest_that_leave_enough_to_train(fraction: float,
                                                                                 expected: int) -> None:
    # 3 periods at 0.5 hold out round(1.5) = 2 and leave 1: the message must not promise that 3 are enough.
    assert min_periods_to_train(fraction) == expected
    assert split_periods(expected, fraction) >= MIN_TRAIN_PERIODS > split_periods(expected - 1, fraction)
