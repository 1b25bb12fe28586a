"""The synthetic market: determinism, prefix stability, correlated and cointegrated symbols, regimes,
volatility clustering, timeframes, speed, and the files the download script writes from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.config import Config, replace_section
from core.errors import ConfigError
from market.cache import cache_path, meta_path, read_cached_candles
from market.frames import COLUMNS
from market.synthetic import REGIMES, generate_market, market_from_config

PAIR = ["BTC/USDT", "ETH/USDT"]


def log_returns(frame: pd.DataFrame) -> np.ndarray:
    return np.diff(np.log(frame["close"].to_numpy()))


def lag1_autocorr(x: np.ndarray) -> float:
    x = x - x.mean()
    return float((x[:-1] * x[1:]).sum() / (x * x).sum())


def ar1_coefficient(x: np.ndarray) -> float:
    """OLS slope of x[t] on x[t-1] (with intercept)."""
    prev, cur = x[:-1], x[1:]
    prev_c = prev - prev.mean()
    return float((prev_c * (cur - cur.mean())).sum() / (prev_c * prev_c).sum())


@pytest.fixture(scope="module")
def market():  # type: ignore[no-untyped-def]
    return generate_market(PAIR, 5000, seed=42)


def test_frames_follow_the_contract(market) -> None:  # type: ignore[no-untyped-def]
    for frame in market.candles.values():
        assert tuple(frame.columns) == COLUMNS and len(frame) == 5000
        assert frame["timestamp"].dtype == np.int64 and isinstance(frame.index, pd.RangeIndex)
        assert (np.diff(frame["timestamp"]) == 3_600_000).all()
        assert frame["timestamp"].iloc[0] == 1_704_067_200_000
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
        assert (frame["low"] > 0).all() and (frame["volume"] > 0).all()
        assert (frame["open"].iloc[1:].to_numpy() == frame["close"].iloc[:-1].to_numpy()).all()
    assert market.candles["BTC/USDT"]["open"].iloc[0] == 40_000.0
    assert market.candles["ETH/USDT"]["open"].iloc[0] == 2_500.0


def test_same_seed_same_market_other_seed_other_market(market) -> None:  # type: ignore[no-untyped-def]
    again = generate_market(PAIR, 5000, seed=42)
    for symbol in PAIR:
        pd.testing.assert_frame_equal(again.candles[symbol], market.candles[symbol], check_exact=True)
    np.testing.assert_array_equal(again.regime_codes, market.regime_codes)
    other = generate_market(PAIR, 5000, seed=43)
    assert not np.allclose(other.candles["BTC/USDT"]["close"], market.candles["BTC/USDT"]["close"])


@pytest.mark.parametrize("n", [1, 255, 256, 257, 1000])
def test_a_longer_market_starts_with_the_shorter_one(market, n: int) -> None:  # type: ignore[no-untyped-def]
    short = generate_market(PAIR, n, seed=42)
    for symbol in PAIR:
        pd.testing.assert_frame_equal(short.candles[symbol], market.candles[symbol].iloc[:n], check_exact=True)
    np.testing.assert_array_equal(short.regime_codes, market.regime_codes[:n])


def test_adding_a_symbol_leaves_the_others_unchanged(market) -> None:  # type: ignore[no-untyped-def]
    three = generate_market([*PAIR, "SOL/USDT"], 5000, seed=42)
    for symbol in PAIR:
        pd.testing.assert_frame_equal(three.candles[symbol], market.candles[symbol], check_exact=True)
    corr = np.corrcoef(log_returns(three.candles["BTC/USDT"]), log_returns(three.candles["SOL/USDT"]))[0, 1]
    assert 0.7 < corr < 0.9  # the configured 0.8


def test_pair_returns_are_highly_correlated(market) -> None:  # type: ignore[no-untyped-def]
    a, b = (log_returns(market.candles[s]) for s in PAIR)
    assert np.corrcoef(a, b)[0, 1] > 0.7
    loose = generate_market(PAIR, 5000, seed=42, correlation=0.3)
    a2, b2 = (log_returns(loose.candles[s]) for s in PAIR)
    assert np.corrcoef(a2, b2)[0, 1] < 0.5


def test_pair_spread_mean_reverts_while_prices_wander(market) -> None:  # type: ignore[no-untyped-def]
    log_a, log_b = (np.log(market.candles[s]["close"].to_numpy()) for s in PAIR)
    spread = log_b - log_a - (np.log(2_500.0) - np.log(40_000.0))
    assert ar1_coefficient(spread) < 0.99  # pulled back: a half-life of tens of candles
    assert ar1_coefficient(log_a) > 0.995  # the price itself is close to a random walk
    assert spread.std() < 0.2 * log_a.std()
    assert abs(spread.mean()) < 3 * spread.std() / np.sqrt(5000 / 50)  # centred on zero


def test_all_regimes_appear_in_stretches(market) -> None:  # type: ignore[no-untyped-def]
    labels = market.regimes
    assert len(labels) == 5000 and set(labels) == set(REGIMES)
    switches = int((np.diff(market.regime_codes) != 0).sum())
    assert 10 <= switches <= 100  # stretches averaging ~200 candles (breakouts shorter), not noise
    for seed in (1, 2, 3):
        assert set(generate_market(PAIR, 5000, seed=seed).regimes) == set(REGIMES)


def test_regimes_differ_in_volatility(market) -> None:  # type: ignore[no-untyped-def]
    r = log_returns(market.candles["BTC/USDT"])
    regime = market.regimes[1:]
    vol = {name: r[regime == name].std() for name in REGIMES}
    assert vol["breakout"] > 1.5 * vol["trending"] > 1.5 * vol["ranging"]


def test_volatility_clusters(market) -> None:  # type: ignore[no-untyped-def]
    r = log_returns(market.candles["BTC/USDT"])
    assert lag1_autocorr(np.abs(r)) > 0.1
    assert abs(lag1_autocorr(r)) < 0.1  # returns themselves are barely predictable
    # Within one regime too: the GARCH part, not only the regime switches.
    trending = market.regimes[1:] == "trending"
    assert lag1_autocorr(np.abs(r[trending])) > 0.05


@pytest.mark.parametrize(("tf", "step"), [("1m", 60_000), ("15m", 900_000), ("4h", 14_400_000),
                                          ("1d", 86_400_000), ("1w", 604_800_000)])
def test_any_timeframe(tf: str, step: int) -> None:
    frame = generate_market(PAIR, 300, timeframe=tf).candles["BTC/USDT"]
    assert (np.diff(frame["timestamp"]) == step).all()
    # Per-candle volatility follows sqrt(time): the annualized figure stays near the configured 60 %.
    annualized = log_returns(frame).std() * np.sqrt(365 * 86_400_000 / step)
    assert 0.3 < annualized < 1.2


def test_config_drives_the_market(cfg: Config) -> None:
    tuned = replace_section(cfg, "synthetic", seed=9, n_candles=300, start="2023-06-01T00:00:00Z",
                            start_prices=[10.0])
    m = market_from_config(tuned)
    btc = m.candles["BTC/USDT"]
    assert len(btc) == 300 and btc["timestamp"].iloc[0] == 1_685_577_600_000
    assert btc["open"].iloc[0] == 10.0 and m.candles["ETH/USDT"]["open"].iloc[0] == 10.0
    pd.testing.assert_frame_equal(btc, generate_market(PAIR, 300, seed=9, start_ms=1_685_577_600_000,
                                                       start_prices=[10.0]).candles["BTC/USDT"])


@pytest.mark.parametrize(("changes", "message"), [
    ({"n_candles": 0}, r"synthetic\.n_candles = 0: must be >= 1"),
    ({"correlation": 1.0}, r"synthetic\.correlation = 1\.0: must be strictly between 0 and 1"),
    ({"start_prices": [1.0, -2.0]}, r"synthetic\.start_prices = \[1\.0, -2\.0\]: must be a non-empty list of positive"),
    ({"annual_volatility": 0.0}, r"synthetic\.annual_volatility = 0\.0: must be > 0"),
    ({"start": "yesterday"}, r"synthetic\.start = 'yesterday': must be an ISO-8601 time"),
])
def test_bad_settings_are_rejected_when_the_config_is_built(cfg: Config, changes: dict[str, object],
                                                            message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        replace_section(cfg, "synthetic", **changes)


@pytest.mark.parametrize(("changes", "message"), [
    ({"n_candles": 0}, "n_candles must be positive"),
    ({"correlation": 1.0}, "correlation must be strictly between 0 and 1"),
    ({"start_prices": [1.0, -2.0]}, "start_prices must be positive"),
    ({"annual_volatility": 0.0}, "annual_volatility must be positive"),
])
def test_bad_arguments_are_rejected_without_a_config(changes: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"n_candles": 100, **changes}
    n_candles = args.pop("n_candles")
    with pytest.raises(ConfigError, match=message):
        generate_market(PAIR, n_candles, **args)  # type: ignore[arg-type]


def test_download_script_writes_synthetic_files_with_provenance(cfg: Config,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from scripts.download_candles import main

    assert main(["--exchange", "synthetic", "--since", "2024-01-01", "--until", "2024-01-11"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("BTC/USDT 1h: 240 rows (synthetic, seed 42)")
    for symbol in PAIR:
        path = cache_path(cfg, symbol, exchange="synthetic")
        frame = read_cached_candles(path)
        expected = generate_market(PAIR, 240, seed=42, start_ms=1_704_067_200_000).candles[symbol]
        pd.testing.assert_frame_equal(frame, expected, check_exact=True)
        meta = json.loads(meta_path(path).read_text())
        assert meta["data_source"] == "synthetic" and meta["exchange"] == "synthetic"
        assert meta["symbol"] == symbol and meta["timeframe"] == "1h" and meta["rows"] == 240


def test_download_script_keeps_each_symbols_own_path_when_asked_for_alone(
    cfg: Config, capsys: pytest.CaptureFixture[str],
) -> None:
    from scripts.download_candles import main

    assert main(["--exchange", "synthetic", "--symbol", "SOL/USDT", "--symbol", "ETH/USDT",
                 "--since", "2024-01-01", "--until", "2024-01-03"]) == 0
    capsys.readouterr()
    # The configured pair keeps its places (ETH is the second symbol, not a copy of BTC); SOL comes third.
    reference = generate_market([*PAIR, "SOL/USDT"], 48, seed=42, start_ms=1_704_067_200_000).candles
    for symbol in ("ETH/USDT", "SOL/USDT"):
        frame = read_cached_candles(cache_path(cfg, symbol, exchange="synthetic"))
        pd.testing.assert_frame_equal(frame, reference[symbol], check_exact=True)
    assert reference["ETH/USDT"]["open"].iloc[0] == 2_500.0


def test_download_script_disk_failure_is_one_line_and_exit_1(rl_home: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from scripts.download_candles import main

    (rl_home / "state").write_text("not a folder")  # the cache folder cannot be created
    assert main(["--exchange", "synthetic", "--days", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: cannot write the candle cache") and "Traceback" not in "\n".join(err)
