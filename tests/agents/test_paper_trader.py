"""The paper trader's run loop and command: settings, replay and live in process, and the daemon end to end."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from agents import paper_trader as pt
from agents import trader_feed
from agents.trader import PaperTrader
from agents.trader_feed import LiveFeed
from agents.trader_state import fresh_state, load_state, save_state, single_instance, state_path
from core import locks as lock_module
from core.config import REPO_ROOT, STRATEGIES, Config, config_from_dict, replace_section
from core.contracts.pnl_history import COLUMNS, history_path, read_history
from core.contracts.trader_status import status_path
from core.daemon import DaemonContext
from core.errors import ConfigError, FatalError, RetryableError
from market.sources import load_candles

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "market"))
from fake_binance import HOUR_MS, FakeBinance  # noqa: E402 - the exchange stand-in of the candle tests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trader_fixtures import HOUR, T0  # noqa: E402


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
    result = read_history(history_path(cfg))
    assert result.skipped == 0
    return result.trades

def test_a_start_that_failed_on_its_candles_does_not_block_the_fixed_config(cfg: Config, rl_home: Path) -> None:
    broken = replace_section(small_market(rl_home, 200), "market", data_source="csv",
                             csv_paths={"BTC/USDT": "missing.csv", "ETH/USDT": "missing.csv"})
    with pytest.raises(FatalError, match="missing.csv: candle file for BTC/USDT not found"):
        pt.run(broken, "replay", 0.0, 10)
    assert json.loads(state_path(cfg).read_text())["market"]["data_source"] == "csv"
    assert pt.run(small_market(rl_home, 200), "replay", 0.0, 10) == "10 candles processed"
    assert not state_path(cfg).with_name("paper_trader_state.json.bak").exists()

def test_reset_starts_a_fresh_account_on_a_new_market(cfg: Config, rl_home: Path) -> None:
    first = small_market(rl_home, 200)
    pt.run(first, "replay", 0.0, 50)
    other = replace_section(first, "synthetic", seed=7)
    with pytest.raises(FatalError, match="belongs to another market"):
        pt.run(other, "replay", 0.0, 10)
    assert pt.run(other, "replay", 0.0, 10, reset=True) == "10 candles processed"
    saved = json.loads(state_path(cfg).read_text())
    assert saved["candles_processed"] == 10 and saved["market"]["synthetic"]["seed"] == 7
    backup = json.loads(state_path(cfg).with_name("paper_trader_state.json.bak").read_text())
    assert backup["candles_processed"] == 50

def test_replay_resumes_where_it_stopped(cfg: Config, rl_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    market = small_market(rl_home, 500)
    assert pt.run(market, "replay", 0.0, 180) == "180 candles processed"
    assert pt.run(market, "replay", 0.0, 220) == "220 candles processed"
    resumed = history_frame(market)
    state = load_state(state_path(market), market, pt.check_trader_config(market))
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
    status = json.loads(status_path(cfg).read_text())
    assert status["candles_processed"] == 420 and status["state"] == "stopped"

def test_a_lock_that_cannot_be_created_in_state_is_taken_in_runtime(
        cfg: Config, rl_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    market = small_market(rl_home, 200)
    lock = state_path(market).with_name(state_path(market).name + ".lock")
    real_open = open

    def read_only_state(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        if Path(str(file)) == lock:  # the tests run as root: a read-only folder is simulated
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(lock_module, "open", read_only_state, raising=False)
    with caplog.at_level(logging.WARNING, logger="core.locks"):
        assert pt.run(market, "replay", 0.0, 60) == "60 candles processed"
    assert f"holding {market.runtime_dir / 'locks' / lock.name} instead" in caplog.text
    assert not lock.exists() and (market.runtime_dir / "locks" / lock.name).is_file()
    with single_instance(state_path(market), market.runtime_dir / "locks"):
        with pytest.raises(FatalError, match="another paper trader is running"):
            pt.run(market, "replay", 0.0, 10)

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
    status = json.loads(status_path(cfg).read_text())
    assert status["candles_processed"] == 300 and status["data_source"] == "csv"
    assert status["last_candle"]["time"] == "2024-01-13T11:00:00Z"
    assert pt.run(csv_cfg, "replay", 0.0, None) == "end of data"
    assert json.loads(status_path(cfg).read_text())["candles_processed"] == 300
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

    monkeypatch.setattr(trader_feed, "load_candles", fake_load)
    feed_ = LiveFeed(live, [Alternating()])
    first = feed_.candles_after(None)
    assert first.timestamps.tolist() == [T0 + 2 * HOUR]  # a first start does not trade the past

    # the loop's polls: the exchange is busy once, then no new candle, then one new candle a poll
    trader = PaperTrader(live, "live", fresh_state(live, pt.check_trader_config(live)))
    trader.process(int(first.timestamps[0]), float(first.closes[0]), first.targets_at(0))
    ctx = DaemonContext("paper_trader", live)
    assert pt.run_loop(trader, feed_, ctx, 0.0, 3) == "3 candles processed"
    assert trader.state.last_ts == T0 + 5 * HOUR and trader.state.candles_processed == 4
    assert calls["n"] == 6
    assert len(read_history(history_path(live)).trades) == 3  # every candle flips the position

def test_live_catch_up_after_a_restart_is_not_paced(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    live = config_from_dict({"market": {"data_source": "ccxt"}, "trader": {"replay_speed": 0.5}})
    close = [100.0 + k for k in range(6)]
    frame = pd.DataFrame({"timestamp": [T0 + k * HOUR for k in range(6)], "open": close, "high": close,
                          "low": close, "close": close, "volume": [1.0] * 6})
    monkeypatch.setattr(trader_feed, "load_candles", lambda *_a, **_k: {s: frame for s in live.market.symbols})
    intervals: list[float] = []

    class SpyPacer(pt.Pacer):
        def __init__(self, speed: float, ctx: DaemonContext) -> None:
            super().__init__(speed, ctx)
            intervals.append(self.interval)

    monkeypatch.setattr(pt, "Pacer", SpyPacer)
    costs = pt.check_trader_config(live)
    state = fresh_state(live, costs)
    state.last_ts = T0 + 2 * HOUR  # stopped three candles ago
    save_state(state_path(live), state)
    assert pt.run(live, "live", live.trader.replay_speed, 3) == "3 candles processed"
    assert intervals == [0.0]
    assert json.loads(state_path(live).read_text())["last_ts"] == T0 + 5 * HOUR

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
