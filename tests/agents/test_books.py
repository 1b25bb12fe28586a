"""The books' accounting: fills, fees, slippage and P&L against hand-computed values."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agents.books import Costs, Portfolio, direction_of, fill_price, unit_return

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trader_fixtures import HOUR, T0  # noqa: E402


def test_fills_move_against_the_trader_and_unit_return_is_net_of_fees() -> None:
    costs = Costs(fee=0.001, slippage=0.01)
    assert fill_price(100.0, buy=True, costs=costs) == pytest.approx(101.0, rel=1e-15)
    assert fill_price(100.0, buy=False, costs=costs) == pytest.approx(99.0, rel=1e-15)
    # short 99 -> 99.99: lose 1 % of the entry, fees 0.1 % of (99 + 99.99) / 99 = 0.201 %
    assert unit_return(-1, 99.0, 99.99, 0.001) == pytest.approx(-0.01201, rel=1e-12)
    assert [direction_of(x) for x in (0.3, -1.0, 0.0, float("nan"))] == [1, -1, 0, 0]
    with pytest.raises(ValueError, match="slippage"):
        Costs(fee=0.001, slippage=-0.1)

def test_hand_built_path_gives_exact_equity_and_pnl() -> None:
    """Two books on closes 100, 110, 99, 120 with fee 0.1 % and slippage 1 %, every number worked by hand.

    a (weight 0.5): long at 100, flips short at 99, flat at 120.  b (weight 0.25): short half size at 100,
    target grows to -1 at 110 (same sign: no resize), flat at 99.
    """
    portfolio = Portfolio("BTC/USDT", Costs(fee=0.001, slippage=0.01), cash=1000.0)
    weights = {"a": 0.5, "b": 0.25}
    fills = [T0 + (k + 1) * HOUR for k in range(4)]

    assert portfolio.step(fills[0], 100.0, {"a": 1.0, "b": -0.5}, weights) == []
    # a: buys 500 of notional at 101 (fee 0.5); b: sells 125 at 99 (fee 0.125)
    assert portfolio.positions["a"].qty == pytest.approx(500 / 101, rel=1e-15)
    assert portfolio.positions["b"].qty == pytest.approx(125 / 99, rel=1e-15)
    assert portfolio.cash == pytest.approx(1000 - 500 - 0.5 + 125 - 0.125, rel=1e-15)  # 624.375
    assert portfolio.equity(100.0) == pytest.approx(624.375 + 500 / 101 * 100 - 125 / 99 * 100, rel=1e-14)

    assert portfolio.step(fills[1], 110.0, {"a": 1.0, "b": -1.0}, weights) == []
    assert portfolio.positions["b"].qty == pytest.approx(125 / 99, rel=1e-15)
    assert portfolio.equity(110.0) == pytest.approx(1030.0405665566557, rel=1e-12)

    rows = portfolio.step(fills[2], 99.0, {"a": -1.0, "b": 0.0}, weights)
    a1, b1 = rows
    # a sells at 98.01: (98.01 - 101) / 101 - 0.001 * (101 + 98.01) / 101 = -3.18901 / 101
    assert (a1["strategy"], a1["side"]) == ("a", "long")
    assert a1["entry_price"] == pytest.approx(101.0, rel=1e-15)
    assert a1["exit_price"] == pytest.approx(98.01, rel=1e-15)
    assert a1["pnl_pct"] == pytest.approx(-3.18901 / 101, rel=1e-12)
    assert a1["pnl"] == pytest.approx(500 * -3.18901 / 101, rel=1e-12)  # -15.787178...
    assert a1["fees"] == pytest.approx(0.5 + 0.001 * 500 / 101 * 98.01, rel=1e-12)
    # equity after a's close: cash now, minus b's short marked at 99
    assert a1["equity_after"] == pytest.approx(984.0878217821783, rel=1e-12)
    # b buys back at 99.99: -0.99 / 99 - 0.001 * 198.99 / 99 = -0.01201, on a notional of 125
    assert (b1["strategy"], b1["side"], b1["qty"]) == ("b", "short", pytest.approx(125 / 99, rel=1e-15))
    assert b1["pnl_pct"] == pytest.approx(-0.01201, rel=1e-12)
    assert b1["pnl"] == pytest.approx(-1.50125, rel=1e-12)
    assert b1["equity_after"] == pytest.approx(1000 - 15.787178217821783 - 1.50125, rel=1e-12)
    # a reopens short at 98.01 with half of the equity left after the closes: 491.355785891...
    flat_equity = 1000 - 15.787178217821783 - 1.50125
    assert portfolio.positions["a"].notional == pytest.approx(0.5 * flat_equity, rel=1e-12)
    assert portfolio.positions["a"].entry_price == pytest.approx(98.01, rel=1e-15)

    (a2,) = portfolio.step(fills[3], 120.0, {"a": 0.0, "b": 0.0}, weights)
    # covers at 121.2: -(121.2 - 98.01) / 98.01 - 0.001 * (98.01 + 121.2) / 98.01
    pct = -(121.2 - 98.01) / 98.01 - 0.001 * (98.01 + 121.2) / 98.01
    assert a2["pnl_pct"] == pytest.approx(pct, rel=1e-12)
    assert a2["pnl"] == pytest.approx(0.5 * flat_equity * pct, rel=1e-12)  # -117.357930585...
    assert a2["closed_at"] == "2024-01-01T04:00:00Z" and a2["opened_at"] == "2024-01-01T03:00:00Z"
    # flat again: the equity is the start plus every trade's pnl, and equals the cash
    assert portfolio.positions == {}
    assert portfolio.cash == pytest.approx(865.3536411971405, rel=1e-12)
    assert a2["equity_after"] == pytest.approx(1000 + a1["pnl"] + b1["pnl"] + a2["pnl"], rel=1e-14)

def test_pnl_pct_does_not_depend_on_the_weight() -> None:
    closes = [100.0, 104.0, 97.0, 99.5, 103.0, 101.0]
    path = [1.0, 1.0, -0.5, -1.0, 0.0, 1.0]
    results = {}
    for weight in (0.0, 0.5):
        portfolio = Portfolio("BTC/USDT", Costs(0.001, 0.0005), cash=10_000.0)
        rows = []
        for k, (close, target) in enumerate(zip(closes, path, strict=True)):
            rows += portfolio.step(T0 + k * HOUR, close, {"s": target}, {"s": weight})
        rows += portfolio.step(T0 + 9 * HOUR, 100.0, {"s": 0.0}, {"s": weight})
        results[weight] = rows
    zero, half = results[0.0], results[0.5]
    assert len(zero) == len(half) == 3
    assert [r["pnl_pct"] for r in zero] == [r["pnl_pct"] for r in half]
    assert all(r["qty"] == 0 and r["pnl"] == 0 and r["fees"] == 0 for r in zero)
    assert all(r["qty"] > 0 and r["pnl"] != 0 for r in half)
    # the first trade: long 100 -> 97 (a flip on candle 2) at 0.05 % slippage, 0.1 % fee
    entry, exit_ = 100 * 1.0005, 97 * 0.9995
    assert zero[0]["pnl_pct"] == pytest.approx((exit_ - entry) / entry - 0.001 * (entry + exit_) / entry, rel=1e-12)
    assert half[0]["pnl"] == pytest.approx(0.5 * 10_000 * half[0]["pnl_pct"], rel=1e-12)

def test_portfolio_round_trips_through_plain_data() -> None:
    portfolio = Portfolio("BTC/USDT", Costs(0.001, 0.0005), cash=1000.0)
    portfolio.step(T0, 100.0, {"a": 0.7, "b": -1.0}, {"a": 0.3, "b": 0.2})
    copy = Portfolio.from_dict(json.loads(json.dumps(portfolio.to_dict())), portfolio.costs)
    assert copy == portfolio
    assert copy.step(T0 + HOUR, 90.0, {}, {}) == portfolio.step(T0 + HOUR, 90.0, {}, {})


def test_a_short_round_trip_by_hand() -> None:
    """Short at 200 (0.2 % fee, 0.5 % slippage) with weight 0.4 of 1000 of cash, covered at 180."""
    costs = Costs(fee=0.002, slippage=0.005)
    portfolio = Portfolio("ETH/USDT", costs, cash=1000.0)
    assert portfolio.step(T0 + HOUR, 200.0, {"s": -1.0}, {"s": 0.4}) == []
    pos = portfolio.positions["s"]
    # sells 400 of notional at 199 (200 less 0.5 %): qty 400 / 199, fee 0.002 * 400 = 0.8
    assert (pos.side, pos.entry_price, pos.notional) == ("short", pytest.approx(199.0), pytest.approx(400.0))
    assert pos.qty == pytest.approx(400 / 199, rel=1e-15)
    assert pos.entry_fee == pytest.approx(0.8, rel=1e-12)
    assert portfolio.cash == pytest.approx(1000 + 400 - 0.8, rel=1e-15)
    # marked at 180: cash less the short's value 400 / 199 * 180
    assert portfolio.equity(180.0) == pytest.approx(1399.2 - 400 / 199 * 180, rel=1e-12)
    assert pos.unrealized_pnl(180.0) == pytest.approx(400 / 199 * 19 - 0.8, rel=1e-12)

    (row,) = portfolio.step(T0 + 2 * HOUR, 180.0, {"s": 0.0}, {"s": 0.4})
    # buys back at 180.9: pnl = qty * (199 - 180.9) - fees, fees = 0.8 + 0.002 * qty * 180.9
    qty = 400 / 199
    exit_fee = 0.002 * qty * 180.9
    assert row["exit_price"] == pytest.approx(180.9, rel=1e-15)
    assert row["fees"] == pytest.approx(0.8 + exit_fee, rel=1e-12)
    assert row["pnl"] == pytest.approx(qty * (199 - 180.9) - 0.8 - exit_fee, rel=1e-12)
    assert row["pnl_pct"] == pytest.approx((199 - 180.9) / 199 - 0.002 * (199 + 180.9) / 199, rel=1e-12)
    assert row["trade_id"] == f"ETH/USDT|s|{T0 + HOUR}|{T0 + 2 * HOUR}"
    assert portfolio.positions == {} and portfolio.cash == pytest.approx(1000 + row["pnl"], rel=1e-12)
    assert row["equity_after"] == pytest.approx(portfolio.cash, rel=1e-15)


def test_a_book_without_a_target_is_closed_and_a_missing_weight_trades_at_zero() -> None:
    portfolio = Portfolio("BTC/USDT", Costs(0.0, 0.0), cash=100.0)
    portfolio.step(T0, 10.0, {"a": 1.0, "b": 1.0}, {"a": 1.0})
    assert portfolio.positions["b"].qty == 0.0 and portfolio.positions["a"].qty == pytest.approx(10.0)
    rows = portfolio.step(T0 + HOUR, 12.0, {}, {})
    assert [r["strategy"] for r in rows] == ["a", "b"]
    assert rows[0]["pnl"] == pytest.approx(20.0) and rows[1]["pnl"] == 0.0
    assert rows[1]["pnl_pct"] == pytest.approx(0.2)  # known even at qty 0
    assert portfolio.cash == pytest.approx(120.0)


def test_a_bad_close_is_refused() -> None:
    portfolio = Portfolio("BTC/USDT", Costs(0.0, 0.0), cash=100.0)
    for close in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="close price"):
            portfolio.step(T0, close, {}, {})
