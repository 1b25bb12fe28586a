"""The paper trader: exact accounting, sizing by allocation, the crash protocol, and the daemon end to end."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents import paper_trader as pt
from agents.books import Costs, Portfolio, direction_of, fill_price, unit_return
from core.atomic import publish_json
from core.config import REPO_ROOT, STRATEGIES, Config, config_from_dict, replace_section
from core.contracts.pnl_history import COLUMNS, read_history, torn_path
from core.contracts.weights import publish_weights
from core.daemon import DaemonContext
from core.errors import ConfigError, FatalError, RetryableError
from market.candles import load_candles

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "market"))
from fake_binance import HOUR_MS, FakeBinance  # noqa: E402 - the exchange stand-in of the candle tests

HOUR = HOUR_MS
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def trader_cfg() -> Config:
    """Round numbers for hand computation: 1000 of equity, 0.1 % fee, 1 % slippage, hourly candles."""
    return config_from_dict({"costs": {"fee": 0.001, "slippage": 0.01}, "trader": {"initial_equity": 1000.0},
                             "market": {"timeframe": "1h"}})


def make_trader(cfg: Config) -> pt.PaperTrader:
    costs = pt.check_trader_config(cfg)
    return pt.PaperTrader(cfg, "replay", pt.fresh_state(cfg, costs))


def feed(trader: pt.PaperTrader, closes: list[float], targets: list[dict[str, float]]) -> list[dict]:
    """Process candles T0, T0+1h, ... with the given closes and targets; returns every closed trade."""
    closed = []
    for k, (close, tgt) in enumerate(zip(closes, targets, strict=True)):
        closed += trader.process(T0 + k * HOUR, close, tgt)
    return closed


def weights_with(**chosen: float) -> dict[str, float]:
    """Weights summing to 1: the chosen ones, the rest spread equally over the other strategies."""
    others = [s for s in STRATEGIES if s not in chosen]
    rest = (1.0 - sum(chosen.values())) / len(others)
    return {s: chosen.get(s, rest) for s in STRATEGIES}


# ------------------------------------------------------------------------------------------ accounting


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


# ------------------------------------------------------------------------------- trader and allocation


def test_trader_writes_hand_checked_rows_to_the_history(cfg: Config) -> None:
    cfg = trader_cfg()
    trader = make_trader(cfg)
    publish_weights(pt.allocations_path(cfg), "weights_bridge", weights_with(turtle_trading=0.5),
                    source="rl", fallback_reasons={})
    feed(trader, [100.0, 110.0], [{"turtle_trading": 1.0}, {"turtle_trading": 0.0}])
    history = read_history(pt.history_path(cfg))
    assert history.skipped == 0 and len(history.trades) == 1
    row = history.trades.iloc[0]
    entry, exit_ = 101.0, 108.9
    pct = (exit_ - entry) / entry - 0.001 * (entry + exit_) / entry
    assert row["strategy"] == "turtle_trading" and row["side"] == "long" and row["symbol"] == "BTC/USDT"
    assert row["qty"] == pytest.approx(500 / 101, rel=1e-15)
    assert row["pnl_pct"] == pytest.approx(pct, rel=1e-12)
    assert row["pnl"] == pytest.approx(500 * pct, rel=1e-12)
    assert row["equity_after"] == pytest.approx(1000 + 500 * pct, rel=1e-12)
    assert row["opened_at"] == pd.Timestamp("2024-01-01T01:00:00Z")  # filled at the first candle's close
    assert row["closed_at"] == pd.Timestamp("2024-01-01T02:00:00Z")


def test_allocation_file_sets_and_changes_the_sizing(cfg: Config) -> None:
    cfg = trader_cfg()
    trader = make_trader(cfg)
    path = pt.allocations_path(cfg)
    on, off = {"turtle_trading": 1.0}, {"turtle_trading": 0.0}
    publish_weights(path, "weights_bridge", weights_with(turtle_trading=0.5), source="rl", fallback_reasons={})
    feed(trader, [100.0], [on])
    assert trader.state.portfolio.positions["turtle_trading"].notional == pytest.approx(500.0, rel=1e-15)
    status = trader.status()
    assert status["allocation"]["source"] == "rl"
    assert status["allocation"]["weights"]["turtle_trading"] == pytest.approx(0.5)
    assert status["positions"]["turtle_trading"]["side"] == "long"
    assert status["positions"]["vix_strategy"] is None

    # a new allocation sizes the next trade; the open one keeps its size
    publish_weights(path, "weights_bridge", weights_with(turtle_trading=0.25), source="portfolio_optimizer",
                    fallback_reasons={"rl": "stale"})
    trader.process(T0 + HOUR, 100.0, on)
    assert trader.state.portfolio.positions["turtle_trading"].notional == pytest.approx(500.0, rel=1e-15)
    (row,) = trader.process(T0 + 2 * HOUR, 100.0, off)
    trader.process(T0 + 3 * HOUR, 100.0, on)
    assert trader.state.portfolio.positions["turtle_trading"].notional == pytest.approx(
        0.25 * row["equity_after"], rel=1e-12)
    assert trader.status()["allocation"]["source"] == "portfolio_optimizer"

    # an invalid file falls back to equal weights and says why
    path.write_text('{"weights": {"turtle_trading": -1}}')
    (row,) = trader.process(T0 + 4 * HOUR, 100.0, off)
    trader.process(T0 + 5 * HOUR, 100.0, on)
    allocation = trader.status()["allocation"]
    assert allocation["source"] == "equal" and allocation["file_status"] == "invalid"
    assert "missing from `weights`" in allocation["reason"]
    assert trader.state.portfolio.positions["turtle_trading"].notional == pytest.approx(
        row["equity_after"] / 8, rel=1e-12)
    path.unlink()
    assert trader.allocations.poll()[0].reason.endswith("file not found")


def test_status_between_candles_shows_the_allocation_now_in_force(cfg: Config) -> None:
    cfg = trader_cfg()
    now = [0.0]
    trader = pt.PaperTrader(cfg, "live", pt.fresh_state(cfg, pt.check_trader_config(cfg)), clock=lambda: now[0])
    feed(trader, [100.0], [{}])
    trader.tick(force=True)
    publish_weights(pt.allocations_path(cfg), "weights_bridge", weights_with(turtle_trading=0.5),
                    source="portfolio_optimizer", fallback_reasons={"rl": "stale"})
    now[0] += cfg.trader.status_interval_s  # no new candle, only time passing
    trader.tick()
    status = json.loads(pt.status_path(cfg).read_text())
    assert status["allocation"]["source"] == "portfolio_optimizer"
    assert status["allocation"]["weights"]["turtle_trading"] == pytest.approx(0.5)


@pytest.mark.parametrize(("apply", "published", "expected"), [
    (False, 2.0, 1.0),   # shadow mode (the default): the policy is ignored
    (True, 2.0, 2.0),    # applied
    (True, None, 1.0),   # applied but no policy file: neutral
    (True, 7.5, 1.0),    # applied but out of range: neutral
])
def test_qlearning_sizing_multiplier_scales_new_positions(apply: bool, published: float | None,
                                                         expected: float) -> None:
    cfg = config_from_dict({"costs": {"fee": 0.001, "slippage": 0.01}, "trader": {"initial_equity": 1000.0},
                            "market": {"timeframe": "1h"}, "qlearning": {"apply_sizing": apply}})
    if published is not None:
        publish_json(cfg.runtime_dir / "qlearning_policy.json", "qlearning", {"sizing_multiplier": published})
    trader = make_trader(cfg)
    publish_weights(pt.allocations_path(cfg), "weights_bridge", weights_with(turtle_trading=0.25), source="rl",
                    fallback_reasons={})
    feed(trader, [100.0], [{"turtle_trading": 1.0}])
    assert trader.state.portfolio.positions["turtle_trading"].notional == pytest.approx(250.0 * expected)
    assert trader.status()["sizing_multiplier"] == expected


def test_build_window_aligns_cleans_and_checks_targets() -> None:
    frames = {"BTC/USDT": pd.DataFrame({"timestamp": [T0, T0 + HOUR, T0 + 2 * HOUR], "close": [1.0, 2.0, 3.0]})}

    class Source:
        books = ("a", "b")

        def targets(self, frames, primary):  # type: ignore[no-untyped-def]
            return pd.DataFrame({"timestamp": [T0 + 2 * HOUR, T0], "a": [3.0, np.nan], "b": [-0.5, 1.0]})

    window = pt.build_window(frames, "BTC/USDT", [Source()])
    assert window.books == ("a", "b")
    assert window.targets.tolist() == [[0.0, 1.0], [0.0, 0.0], [1.0, -0.5]]  # NaN and missing flat, 3 clipped
    assert window.after(T0).timestamps.tolist() == [T0 + HOUR, T0 + 2 * HOUR]
    assert len(window.after(T0 + 2 * HOUR)) == 0

    class Broken(Source):
        books = ("a", "c")

    with pytest.raises(FatalError, match="lack column `c`"):
        pt.build_window(frames, "BTC/USDT", [Broken()])


# ----------------------------------------------------------------------------------- crash protocol


def test_kill_between_state_save_and_append_is_repaired_once(
        cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = trader_cfg()
    trader = make_trader(cfg)
    feed(trader, [100.0, 105.0], [{"macd_momentum": 1.0, "pairs_trading": -1.0}] * 2)

    def killed(*_args: object, **_kw: object) -> int:
        raise KeyboardInterrupt("killed after the state was saved")

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(pt, "append_trades", killed)
        trader.process(T0 + 2 * HOUR, 103.0, {"macd_momentum": 0.0, "pairs_trading": 0.0})
    assert not pt.history_path(cfg).exists()

    costs = pt.check_trader_config(cfg)
    state = pt.load_state(pt.state_path(cfg), cfg, costs)
    assert state is not None and state.candles_processed == 3 and len(state.pending) == 2
    assert state.portfolio.positions == {}
    assert pt.reconcile_pending(state, pt.history_path(cfg)) == 2
    trades = read_history(pt.history_path(cfg)).trades
    assert sorted(trades["strategy"]) == ["macd_momentum", "pairs_trading"]
    # a second restart from the same saved state finds both trades written and writes nothing
    again = pt.load_state(pt.state_path(cfg), cfg, costs)
    assert again is not None and pt.reconcile_pending(again, pt.history_path(cfg)) == 0
    assert len(read_history(pt.history_path(cfg)).trades) == 2


def test_a_row_cut_short_by_a_crash_is_written_again(cfg: Config) -> None:
    cfg = trader_cfg()
    trader = make_trader(cfg)
    closed = feed(trader, [100.0, 105.0, 103.0], [{"macd_momentum": 1.0}, {"macd_momentum": 1.0},
                                                    {"macd_momentum": 0.0}])
    history = pt.history_path(cfg)
    text = history.read_text()
    history.write_text(text[: len(text) - 20])  # the append was cut mid-row
    assert read_history(history).trades.empty
    state = pt.load_state(pt.state_path(cfg), cfg, pt.check_trader_config(cfg))
    assert state is not None
    state.pending = closed  # as saved before the append
    assert pt.reconcile_pending(state, history) == 1
    result = read_history(history)
    assert len(result.trades) == 1 and result.skipped == 0  # the torn half row was moved aside, not completed
    assert result.trades.iloc[0]["pnl"] == pytest.approx(closed[0]["pnl"], rel=1e-15)
    assert torn_path(history).read_text().strip() == text[text.rindex("\n", 0, len(text) - 1) + 1: len(text) - 20]


def test_state_for_another_market_is_refused_until_reset(cfg: Config) -> None:
    cfg = trader_cfg()
    trader = make_trader(cfg)
    feed(trader, [100.0], [{}])
    trader.save()
    other = replace_section(cfg, "synthetic", seed=7)
    costs = pt.check_trader_config(other)
    with pytest.raises(FatalError, match="belongs to another market"):
        pt.load_state(pt.state_path(other), other, costs)
    pt.state_path(cfg).write_text("{not json")
    with pytest.raises(FatalError, match="--reset"):
        pt.load_state(pt.state_path(cfg), cfg, costs)
    backup = pt.reset_state(pt.state_path(cfg))
    assert backup is not None and backup.name == "paper_trader_state.json.bak"
    assert pt.load_state(pt.state_path(other), other, costs) is None


def test_a_start_that_failed_on_its_candles_does_not_block_the_fixed_config(cfg: Config, rl_home: Path) -> None:
    broken = replace_section(small_market(rl_home, 200), "market", data_source="csv",
                             csv_paths={"BTC/USDT": "missing.csv", "ETH/USDT": "missing.csv"})
    with pytest.raises(FatalError, match="missing.csv: candle file for BTC/USDT not found"):
        pt.run(broken, "replay", 0.0, 10)
    assert json.loads(pt.state_path(cfg).read_text())["market"]["data_source"] == "csv"
    assert pt.run(small_market(rl_home, 200), "replay", 0.0, 10) == "10 candles processed"
    assert not pt.state_path(cfg).with_name("paper_trader_state.json.bak").exists()


def test_reset_starts_a_fresh_account_on_a_new_market(cfg: Config, rl_home: Path) -> None:
    first = small_market(rl_home, 200)
    pt.run(first, "replay", 0.0, 50)
    other = replace_section(first, "synthetic", seed=7)
    with pytest.raises(FatalError, match="belongs to another market"):
        pt.run(other, "replay", 0.0, 10)
    assert pt.run(other, "replay", 0.0, 10, reset=True) == "10 candles processed"
    saved = json.loads(pt.state_path(cfg).read_text())
    assert saved["candles_processed"] == 10 and saved["market"]["synthetic"]["seed"] == 7
    backup = json.loads(pt.state_path(cfg).with_name("paper_trader_state.json.bak").read_text())
    assert backup["candles_processed"] == 50


def test_a_second_trader_on_the_same_state_is_refused(cfg: Config) -> None:
    with pt.single_instance(pt.state_path(cfg)):
        with pytest.raises(FatalError, match="another paper trader is running"):
            with pt.single_instance(pt.state_path(cfg)):
                pass


@pytest.mark.parametrize("section,key,value,message", [
    ("trader", "state_file", "../elsewhere.json", "plain file name"),
    ("trader", "mode", "backtest", "trader.mode"),
    ("trader", "initial_equity", 0.0, "initial_equity"),
    ("costs", "fee", 1.5, "costs.fee"),
])
def test_bad_trader_settings_name_the_key(section: str, key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        pt.check_trader_config(config_from_dict({section: {key: value}}))


# ------------------------------------------------------------------------------------- replay in process


def small_market(home: Path, n_candles: int) -> Config:
    return config_from_dict({"synthetic": {"n_candles": n_candles}, "trader": {"status_interval_s": 0.2}},
                            source=str(home))


def history_frame(cfg: Config) -> pd.DataFrame:
    result = read_history(pt.history_path(cfg))
    assert result.skipped == 0
    return result.trades


def test_replay_resumes_where_it_stopped(cfg: Config, rl_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    market = small_market(rl_home, 500)
    assert pt.run(market, "replay", 0.0, 180) == "180 candles processed"
    assert pt.run(market, "replay", 0.0, 220) == "220 candles processed"
    resumed = history_frame(market)
    state = pt.load_state(pt.state_path(market), market, pt.check_trader_config(market))
    assert state is not None and state.candles_processed == 400

    monkeypatch.setenv("RL_SYSTEM_HOME", str(rl_home.parent / "other"))
    pt.run(market, "replay", 0.0, 400)
    straight = history_frame(market)
    assert len(straight) > 10
    pd.testing.assert_frame_equal(resumed, straight, check_exact=True)


def test_synthetic_replay_extends_the_market_with_the_same_candles(
        cfg: Config, rl_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pt.run(small_market(rl_home, 150), "replay", 0.0, 420)  # grows 150 -> 300 -> 450
    extended = history_frame(cfg)
    monkeypatch.setenv("RL_SYSTEM_HOME", str(rl_home.parent / "long"))
    pt.run(small_market(rl_home, 450), "replay", 0.0, 420)
    pd.testing.assert_frame_equal(extended, history_frame(cfg), check_exact=True)
    status = json.loads(pt.status_path(cfg).read_text())
    assert status["candles_processed"] == 420 and status["state"] == "stopped"


def test_csv_replay_stops_at_the_end(cfg: Config, rl_home: Path, caplog: pytest.LogCaptureFixture) -> None:
    synthetic = small_market(rl_home, 300)
    (rl_home / "data").mkdir()
    paths = {}
    for symbol, frame in load_candles(synthetic, source="synthetic").items():
        name = symbol.replace("/", "_") + ".csv"
        frame.to_csv(rl_home / "data" / name, index=False)
        paths[symbol] = f"data/{name}"
    csv_cfg = replace_section(synthetic, "market", data_source="csv", csv_paths=paths)
    with caplog.at_level(logging.INFO, logger="agents.paper_trader"):
        assert pt.run(csv_cfg, "replay", 0.0, None) == "end of data"
    assert "reached the end of the available candles" in caplog.text
    status = json.loads(pt.status_path(cfg).read_text())
    assert status["candles_processed"] == 300 and status["data_source"] == "csv"
    assert status["last_candle"]["time"] == "2024-01-13T11:00:00Z"
    assert pt.run(csv_cfg, "replay", 0.0, None) == "end of data"
    assert json.loads(pt.status_path(cfg).read_text())["candles_processed"] == 300
    assert len(history_frame(cfg)) > 5


# ----------------------------------------------------------------------------------------------- live


def test_live_feed_starts_at_the_newest_candle_and_acts_on_new_ones(
        cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    live = config_from_dict({"trader": {"live_poll_s": 0.01, "status_interval_s": 0.05},
                             "exchange": {"backoff_s": 0.01}, "market": {"data_source": "ccxt"}})
    closes = [100.0, 101.0, 99.0]
    calls = {"n": 0}

    def fake_load(cfg_: Config, symbols: list[str], *, source: str, limit: int,
                  exchange: object) -> dict[str, pd.DataFrame]:
        assert source == "ccxt" and limit == cfg_.trader.live_history_candles and exchange is not None
        calls["n"] += 1
        if calls["n"] == 2:
            raise RetryableError("exchange busy")
        if calls["n"] >= 4:
            closes.append(closes[-1] * 1.01)  # a new candle closes every later poll
        frame = pd.DataFrame({"timestamp": [T0 + k * HOUR for k in range(len(closes))], "close": closes})
        return {s: frame for s in symbols}

    class Alternating:
        books = ("turtle_trading",)

        def targets(self, frames, primary):  # type: ignore[no-untyped-def]
            ts = frames[primary]["timestamp"]
            return pd.DataFrame({"timestamp": ts, "turtle_trading": [(-1.0) ** k for k in range(len(ts))]})

    monkeypatch.setattr(pt, "load_candles", fake_load)
    feed_ = pt.LiveFeed(live, [Alternating()])
    first = feed_.candles_after(None)
    assert first.timestamps.tolist() == [T0 + 2 * HOUR]  # a first start does not trade the past

    # the loop's polls: the exchange is busy once, then no new candle, then one new candle a poll
    trader = pt.PaperTrader(live, "live", pt.fresh_state(live, pt.check_trader_config(live)))
    trader.process(int(first.timestamps[0]), float(first.closes[0]), first.targets_at(0))
    ctx = DaemonContext("paper_trader", live)
    assert pt.run_loop(trader, feed_, ctx, 0.0, 3) == "3 candles processed"
    assert trader.state.last_ts == T0 + 5 * HOUR and trader.state.candles_processed == 4
    assert calls["n"] == 6
    assert len(read_history(pt.history_path(live)).trades) == 3  # every candle flips the position


def test_live_catch_up_after_a_restart_is_not_paced(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    live = config_from_dict({"market": {"data_source": "ccxt"}, "trader": {"replay_speed": 0.5}})
    close = [100.0 + k for k in range(6)]
    frame = pd.DataFrame({"timestamp": [T0 + k * HOUR for k in range(6)], "open": close, "high": close,
                          "low": close, "close": close, "volume": [1.0] * 6})
    monkeypatch.setattr(pt, "load_candles", lambda *_a, **_k: {s: frame for s in live.market.symbols})
    intervals: list[float] = []

    class SpyPacer(pt.Pacer):
        def __init__(self, speed: float, ctx: DaemonContext) -> None:
            super().__init__(speed, ctx)
            intervals.append(self.interval)

    monkeypatch.setattr(pt, "Pacer", SpyPacer)
    costs = pt.check_trader_config(live)
    state = pt.fresh_state(live, costs)
    state.last_ts = T0 + 2 * HOUR  # stopped three candles ago
    pt.save_state(pt.state_path(live), state)
    assert pt.run(live, "live", live.trader.replay_speed, 3) == "3 candles processed"
    assert intervals == [0.0]
    assert json.loads(pt.state_path(live).read_text())["last_ts"] == T0 + 5 * HOUR


# ------------------------------------------------------------------------------------------ commands


def write_config(home: Path, n_candles: int = 600, **trader: object) -> Path:
    lines = ["[synthetic]", f"n_candles = {n_candles}", "[trader]", "status_interval_s = 0.2"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in trader.items()]
    path = home / "trader.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def trader_env(home: Path, config: Path) -> dict[str, str]:
    return {**os.environ, "RL_SYSTEM_HOME": str(home), "RL_SYSTEM_CONFIG": str(config)}


def start(home: Path, config: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "agents.paper_trader", "--replay", *args], cwd=REPO_ROOT,
                            env=trader_env(home, config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def run_to_end(home: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agents.paper_trader", "--replay", *args], cwd=REPO_ROOT,
                          env=trader_env(home, config), capture_output=True, text=True, timeout=120)


def saved_candles(home: Path) -> int:
    try:
        return int(json.loads((home / "state" / "paper_trader_state.json").read_text())["candles_processed"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def wait_for(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the trader"
        time.sleep(0.02)


def test_command_replays_synthetic_candles_and_publishes(rl_home: Path) -> None:
    config = write_config(rl_home)
    done = run_to_end(rl_home, config, "--speed", "0", "--max-candles", "400")
    assert done.returncode == 0, done.stdout + done.stderr
    trades = history_frame(config_from_dict({}, source=str(config)))
    assert len(trades) > 10 and set(trades["strategy"]) <= set(STRATEGIES)
    header = (rl_home / "state" / "pnl_history.csv").read_text().splitlines()[0]
    assert header.split(",") == list(COLUMNS)
    status = json.loads((rl_home / "runtime" / "trader_status.json").read_text())
    assert status["producer"] == "paper_trader" and status["data_source"] == "synthetic"
    assert status["candles_processed"] == 400 and status["trades_written"] == len(trades)
    assert set(status["positions"]) == set(STRATEGIES)
    assert status["allocation"]["source"] == "equal"
    assert status["equity"] == pytest.approx(
        status["cash"] + sum((1 if p["side"] == "long" else -1) * p["qty"] * status["last_candle"]["close"]
                             for p in status["positions"].values() if p), rel=1e-12)
    beat = json.loads((rl_home / "runtime" / "heartbeats" / "paper_trader.json").read_text())
    assert beat["state"] == "stopped"


def test_sigkill_mid_run_loses_and_duplicates_nothing(rl_home: Path) -> None:
    total = 600
    reference_home, killed_home = rl_home / "reference", rl_home / "killed"
    reference_home.mkdir()
    killed_home.mkdir()
    config = write_config(rl_home, state_interval_s=0.3)
    assert run_to_end(reference_home, config, "--speed", "0", "--max-candles", str(total)).returncode == 0

    for kill_after in (120, 300):  # two kills at different points, each restart resuming from the state
        proc = start(killed_home, config, "--speed", "400", "--max-candles", str(total - saved_candles(killed_home)))
        wait_for(lambda p=proc, n=kill_after: saved_candles(killed_home) >= n or p.poll() is not None)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
    rest = total - saved_candles(killed_home)
    assert 0 < rest < total - 120
    finish = run_to_end(killed_home, config, "--speed", "0", "--max-candles", str(rest))
    assert finish.returncode == 0, finish.stdout

    def trades(home: Path) -> pd.DataFrame:
        result = read_history(home / "state" / "pnl_history.csv")
        return result.trades

    expected, got = trades(reference_home), trades(killed_home)
    assert len(expected) > 20
    keys = got[["symbol", "strategy", "opened_at", "closed_at"]]
    assert not keys.duplicated().any()
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert saved_candles(killed_home) == total


def test_sigterm_saves_state_and_exits_zero(rl_home: Path) -> None:
    config = write_config(rl_home)
    proc = start(rl_home, config, "--speed", "40")
    status_file = rl_home / "runtime" / "trader_status.json"

    def processed() -> int:
        try:
            return int(json.loads(status_file.read_text())["candles_processed"])
        except (FileNotFoundError, json.JSONDecodeError):
            return 0

    wait_for(lambda: processed() >= 10 or proc.poll() is not None)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "received SIGTERM" in out
    state = json.loads((rl_home / "state" / "paper_trader_state.json").read_text())
    status = json.loads(status_file.read_text())
    assert state["candles_processed"] == status["candles_processed"] >= 10
    assert state["last_ts"] == status["last_candle"]["timestamp"] and status["state"] == "stopped"
    assert not (rl_home / "runtime" / "pids" / "paper_trader.pid").exists()
    again = run_to_end(rl_home, config, "--speed", "0", "--max-candles", "5")
    assert again.returncode == 0
    assert saved_candles(rl_home) == state["candles_processed"] + 5


def test_live_command_trades_the_newest_closed_exchange_candle(rl_home: Path) -> None:
    now = int(time.time() * 1000)
    listed = (now - 20 * 86_400_000) // HOUR_MS * HOUR_MS
    with FakeBinance(lambda: int(time.time() * 1000), listed_from_ms=listed) as exchange:
        config = rl_home / "live.toml"
        config.write_text(f'[market]\ndata_source = "ccxt"\n[exchange]\nurl = "{exchange.url}"\n'
                          'history_candles = 300\nmax_retries = 1\nbackoff_s = 0.01\n')
        done = subprocess.run([sys.executable, "-m", "agents.paper_trader", "--live", "--max-candles", "1"],
                              cwd=REPO_ROOT, env=trader_env(rl_home, config), capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        assert exchange.klines_requests()
        assert "1 candles processed" in done.stderr and " trade(s) closed, equity " in done.stderr
    status = json.loads((rl_home / "runtime" / "trader_status.json").read_text())
    newest_closed = int(time.time() * 1000) // HOUR_MS * HOUR_MS - HOUR_MS
    assert status["mode"] == "live" and status["data_source"] == "ccxt"
    assert status["candles_processed"] == 1
    assert newest_closed - HOUR_MS <= status["last_candle"]["timestamp"] <= newest_closed
    assert (rl_home / "state" / "candles" / "binance" / "BTC_USDT-1h.csv").exists()


def test_live_polls_reuse_one_exchange_client(rl_home: Path) -> None:
    # Binance's market list is a heavy request: a live trader loads it once, not at every poll.
    listed = (int(time.time() * 1000) - 20 * 86_400_000) // HOUR_MS * HOUR_MS
    with FakeBinance(lambda: int(time.time() * 1000), listed_from_ms=listed) as exchange:
        live = config_from_dict({"market": {"data_source": "ccxt"}, "trader": {"live_history_candles": 50},
                                 "exchange": {"url": exchange.url, "history_candles": 100, "backoff_s": 0.01}})
        feed_ = pt.LiveFeed(live, [pt.StrategySignals(live)])
        for _ in range(3):
            feed_.candles_after(None)
            for cached in (rl_home / "state" / "candles").rglob("*.csv"):
                cached.unlink()  # so every poll really asks the exchange
        assert len(exchange.klines_requests()) >= 3 * len(live.market.symbols)
        assert exchange.count("/api/v3/exchangeInfo") == 1


def test_bad_input_is_one_line_and_non_zero(rl_home: Path, restore_logging: None, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RL_SYSTEM_CONFIG", str(write_config(rl_home, state_file="../outside.json")))
    assert pt.main(["--replay", "--max-candles", "1"]) == 2
    assert pt.main(["--speed", "-1"]) == 2
    assert pt.main(["--live", "--speed", "5"]) == 2
    (rl_home / "bad.toml").write_text("[trader]\nspeed = 3\n")
    assert pt.main(["--config", str(rl_home / "bad.toml")]) == 2
    err = capsys.readouterr().err
    assert "plain file name" in err and "--speed must be >= 0" in err and "unknown key `trader.speed`" in err
    assert "--speed paces --replay only" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------ the trading PPO book


def test_ppo_rollout_moves_capital_and_the_risk_guard_trips_it_back() -> None:
    from agents.ppo_book import BOOK, decisions_path, read_rollout, shadow_mode, write_rollout
    from core.jsonl import append_jsonl

    cfg = trader_cfg()
    trader = make_trader(cfg)
    feed(trader, [100.0], [{}])
    assert BOOK not in trader.state.portfolio.positions  # no rollout: shadow only

    write_rollout(cfg, 5.0, 30.0, True)  # 5 % of 1000 is 50 of notional, capped at 30
    decide = decisions_path(cfg)
    append_jsonl(decide, {"timestamp": T0 + HOUR, "exposure": 1.0, "action_name": "LONG"})
    trader.process(T0 + HOUR, 100.0, {})
    position = trader.state.portfolio.positions[BOOK]
    assert position.direction == 1 and position.notional == pytest.approx(30.0, rel=1e-12)
    assert trader.status()["ppo_rollout"]["capital_percentage"] == 5.0

    # The next decision closes it at a 20 % loss: far beyond the 2 % daily-loss limit of the book's capital.
    append_jsonl(decide, {"timestamp": T0 + 2 * HOUR, "exposure": 0.0, "action_name": "CLOSE"})
    (row,) = trader.process(T0 + 2 * HOUR, 80.0, {})
    entry, exit_ = 101.0, 79.2
    assert row["strategy"] == BOOK
    assert row["pnl_pct"] == pytest.approx((exit_ - entry) / entry - 0.001 * (entry + exit_) / entry, rel=1e-12)
    assert read_history(pt.history_path(cfg)).trades["strategy"].tolist() == [BOOK]
    rollout = read_rollout(cfg)
    assert rollout is not None and rollout.capital_percentage == 0.0 and rollout.stage_index == 0
    assert "daily loss" in rollout.tripped["reason"]
    assert shadow_mode(cfg)

    # Back in Stage 0 a LONG decision moves no capital.
    append_jsonl(decide, {"timestamp": T0 + 3 * HOUR, "exposure": 1.0, "action_name": "LONG"})
    trader.process(T0 + 3 * HOUR, 80.0, {})
    assert BOOK not in trader.state.portfolio.positions
