"""The restart-safe state and the pending-trades protocol: a kill at any moment loses and duplicates nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agents import trader as trader_module
from agents import trader_state as trader_state_module
from agents.paper_trader import check_trader_config
from agents.trader import HISTORY_WRITE, PaperTrader
from agents.trader_state import load_state, reconcile_pending, reset_state, single_instance, state_path
from core.config import Config, replace_section
from core.contracts.pnl_history import history_path, read_history, torn_path
from core.daemon import DaemonContext, WriteErrors, read_heartbeat
from core.errors import FatalError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trader_fixtures import HOUR, T0, feed, make_trader, trader_cfg  # noqa: E402


def test_kill_between_state_save_and_append_is_repaired_once(
        cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = trader_cfg()
    trader = make_trader(cfg)
    feed(trader, [100.0, 105.0], [{"macd_momentum": 1.0, "pairs_trading": -1.0}] * 2)

    def killed(*_args: object, **_kw: object) -> int:
        raise KeyboardInterrupt("killed after the state was saved")

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(trader_module, "append_trades", killed)
        trader.process(T0 + 2 * HOUR, 103.0, {"macd_momentum": 0.0, "pairs_trading": 0.0})
    assert not history_path(cfg).exists()

    costs = check_trader_config(cfg)
    state = load_state(state_path(cfg), cfg, costs)
    assert state is not None and state.candles_processed == 3 and len(state.pending) == 2
    assert state.portfolio.positions == {}
    assert reconcile_pending(state, history_path(cfg)) == 2
    trades = read_history(history_path(cfg)).trades
    assert sorted(trades["strategy"]) == ["macd_momentum", "pairs_trading"]
    # a second restart from the same saved state finds both trades written and writes nothing
    again = load_state(state_path(cfg), cfg, costs)
    assert again is not None and reconcile_pending(again, history_path(cfg)) == 0
    assert len(read_history(history_path(cfg)).trades) == 2

def test_restart_with_an_unwritable_history_keeps_trades_pending_and_retries(
        cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = trader_cfg()
    trader = make_trader(cfg)
    feed(trader, [100.0, 105.0], [{"macd_momentum": 1.0, "pairs_trading": -1.0}] * 2)
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(trader_module, "append_trades", _killed)
        trader.process(T0 + 2 * HOUR, 103.0, {"macd_momentum": 0.0, "pairs_trading": 0.0})
    state = load_state(state_path(cfg), cfg, check_trader_config(cfg))
    assert state is not None and len(state.pending) == 2

    real_append = trader_state_module.append_trades

    def disk_fills_mid_append(path: Path, rows: list[dict]) -> int:
        real_append(path, rows[:1])  # the first row made it, then the disk was full
        raise OSError(28, "No space left on device")

    now = [0.0]
    ctx = DaemonContext(name="paper_trader", cfg=cfg, writes=WriteErrors(clock=lambda: now[0]))
    monkeypatch.setattr(trader_state_module, "append_trades", disk_fills_mid_append)
    # what the daemon's start does: no exception, the trades stay pending, the heartbeat turns degraded
    assert reconcile_pending(state, history_path(cfg), lambda exc: ctx.write_failed(HISTORY_WRITE, exc)) == 0
    assert len(state.pending) == 2 and "No space left" in ctx.writes.reason()
    restarted = PaperTrader(cfg, "replay", state, ctx)
    restarted.publish_status()
    beat = read_heartbeat(cfg, "paper_trader")
    assert beat is not None and beat["state"] == "degraded" and "trade history" in beat["degraded_reason"]

    monkeypatch.setattr(trader_state_module, "append_trades", real_append)  # the disk has room again
    now[0] += 10.0
    restarted.tick()
    trades = read_history(history_path(cfg)).trades
    assert sorted(trades["strategy"]) == ["macd_momentum", "pairs_trading"]  # each once: none lost or doubled
    assert restarted.state.pending == [] and ctx.writes.failing == {}


def _killed(*_args: object, **_kw: object) -> int:
    raise KeyboardInterrupt("killed after the state was saved")


def test_a_row_cut_short_by_a_crash_is_written_again(cfg: Config) -> None:
    cfg = trader_cfg()
    trader = make_trader(cfg)
    closed = feed(trader, [100.0, 105.0, 103.0], [{"macd_momentum": 1.0}, {"macd_momentum": 1.0},
                                                    {"macd_momentum": 0.0}])
    history = history_path(cfg)
    text = history.read_text()
    history.write_text(text[: len(text) - 20])  # the append was cut mid-row
    assert read_history(history).trades.empty
    state = load_state(state_path(cfg), cfg, check_trader_config(cfg))
    assert state is not None
    state.pending = closed  # as saved before the append
    assert reconcile_pending(state, history) == 1
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
    costs = check_trader_config(other)
    with pytest.raises(FatalError, match="belongs to another market"):
        load_state(state_path(other), other, costs)
    state_path(cfg).write_text("{not json")
    with pytest.raises(FatalError, match="--reset"):
        load_state(state_path(cfg), cfg, costs)
    backup = reset_state(state_path(cfg))
    assert backup is not None and backup.name == "paper_trader_state.json.bak"
    assert load_state(state_path(other), other, costs) is None

def test_a_second_trader_on_the_same_state_is_refused(cfg: Config) -> None:
    with single_instance(state_path(cfg)):
        with pytest.raises(FatalError, match="another paper trader is running"):
            with single_instance(state_path(cfg)):
                pass
