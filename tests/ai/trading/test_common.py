"""Shared pieces of the trading PPO: the traded symbol, plain-data helpers, candle selection and timeframes, and the
loaded model's predictions checked against the network computed by hand."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from ai.ppo import PPO, CheckpointError
from ai.ppo.networks import ActionSpec
from ai.trading.account import ACTION_NAMES, N_ACTIONS
from ai.trading.common import (
    CandleSet,
    Prediction,
    TradingModel,
    candles_until,
    file_sha256,
    finite_or_none,
    infer_timeframe,
    load_candle_set,
    load_model,
    timeframe_from_ms,
    trading_symbol,
    window_info,
)
from ai.trading.features import FEATURE_NAMES, N_FEATURES
from core.config import Config, PPOConfig, replace_section
from core.contracts.trading_model import MODEL_KIND, model_path
from core.errors import DataError
from core.timeframes import timeframe_to_ms

HOUR_MS = 3_600_000
SMALL = PPOConfig(hidden_sizes=[8], threads=1, device="cpu", seed=3)


def save_model(path: Path, **extra: Any) -> PPO:
    """An untrained trading model saved at ``path`` (``extra`` overrides its metadata)."""
    agent = PPO(None, SMALL, obs_dim=N_FEATURES, action_spec=ActionSpec("discrete", N_ACTIONS))
    meta = {"kind": MODEL_KIND, "features": list(FEATURE_NAMES), "actions": list(ACTION_NAMES),
            "train_range": {"start": 0, "end": HOUR_MS, "start_time": "1970-01-01T00:00:00Z",
                            "end_time": "1970-01-01T01:00:00Z", "bars": 2},
            "trained_at": "2024-03-01T12:00:00Z", **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    agent.save(path, extra_meta=meta)
    return agent


def by_hand(state: dict[str, torch.Tensor], obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(action probabilities, values) of a one-hidden-layer tanh actor-critic, in float64 numpy."""
    w = {k: v.detach().double().numpy() for k, v in state.items()}
    x = obs.astype(np.float64)
    actor = np.tanh(x @ w["actor_body.0.weight"].T + w["actor_body.0.bias"])
    critic = np.tanh(x @ w["critic_body.0.weight"].T + w["critic_body.0.bias"])
    logits = actor @ w["policy_head.weight"].T + w["policy_head.bias"]
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    values = (critic @ w["value_head.weight"].T + w["value_head.bias"])[:, 0]
    return probs, values


def hourly(n: int, start_ms: int = 1_704_067_200_000) -> pd.DataFrame:
    closes = 100.0 + np.arange(n, dtype=float)
    return pd.DataFrame({"timestamp": start_ms + np.arange(n, dtype=np.int64) * HOUR_MS, "open": closes,
                         "high": closes + 1, "low": closes - 1, "close": closes, "volume": np.ones(n)})


# ---------------------------------------------------------------------------------------------- plain data


def test_trading_symbol_is_the_configured_one_else_the_primary_market_symbol(cfg: Config) -> None:
    assert cfg.trading_agent.symbol == ""
    assert trading_symbol(cfg) == cfg.market.symbols[0] == "BTC/USDT"
    assert trading_symbol(replace_section(cfg, "trading_agent", symbol="ETH/USDT")) == "ETH/USDT"
    assert trading_symbol(replace_section(cfg, "market", symbols=["SOL/USDT", "BTC/USDT"])) == "SOL/USDT"


def test_finite_or_none_makes_plain_json_data_recursively() -> None:
    value = {"nan": float("nan"), "inf": -math.inf, "f32": np.float32(0.5), "f64nan": np.float64("nan"),
             "i64": np.int64(7), "flag": np.bool_(True), "text": "x", "none": None, "int": 3, "bool": False,
             "nested": [(1.5, np.float32("inf")), {"deep": [np.int32(-2), float("nan")]}]}
    result = finite_or_none(value)
    assert result == {"nan": None, "inf": None, "f32": 0.5, "f64nan": None, "i64": 7, "flag": True, "text": "x",
                      "none": None, "int": 3, "bool": False, "nested": [[1.5, None], {"deep": [-2, None]}]}
    assert type(result["f32"]) is float and type(result["i64"]) is int and type(result["flag"]) is bool
    assert type(result["nested"][1]["deep"][0]) is int and type(result["bool"]) is bool
    assert value["f32"] == np.float32(0.5) and math.isnan(value["nan"])  # the input is left as it was


def test_file_sha256_matches_hashlib_and_is_none_for_a_missing_file(tmp_path: Path) -> None:
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 123)  # several of the 1 MiB blocks it reads
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_sha256(empty) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert file_sha256(tmp_path / "missing") is None


def test_window_info_describes_the_open_times_of_a_slice() -> None:
    frame = hourly(10)
    info = window_info(frame, 2, 7)
    first = 1_704_067_200_000 + 2 * HOUR_MS
    assert info == {"start": first, "end": first + 4 * HOUR_MS, "start_time": "2024-01-01T02:00:00Z",
                    "end_time": "2024-01-01T06:00:00Z", "bars": 5}
    assert type(info["start"]) is int and type(info["bars"]) is int


# ---------------------------------------------------------------------------------------------- timeframes


@pytest.mark.parametrize("step_ms, expected", [
    (60_000, "1m"), (900_000, "15m"), (3_600_000, "1h"), (14_400_000, "4h"), (86_400_000, "1d"),
    (604_800_000, "1w"), (1_209_600_000, "2w"), (5_400_000, "90m"), (90_000, "90s"), (1_000, "1s"),
    (172_800_000, "2d"), (259_200_000, "3d"),
])
def test_timeframe_from_ms_names_the_largest_whole_unit(step_ms: int, expected: str) -> None:
    assert timeframe_from_ms(step_ms) == expected
    assert timeframe_to_ms(expected) == step_ms  # the name reads back as the same length


@pytest.mark.parametrize("step_ms", [1_500, 999, 1])
def test_timeframe_from_ms_refuses_fractions_of_a_second(step_ms: int) -> None:
    with pytest.raises(DataError, match=f"candle spacing of {step_ms} ms is not a whole number of seconds"):
        timeframe_from_ms(step_ms)


def test_infer_timeframe_takes_the_most_common_spacing() -> None:
    frame = hourly(20)
    assert infer_timeframe(frame, "x.csv") == "1h"
    gappy = frame.drop(index=[3, 4, 5, 10]).reset_index(drop=True)  # a few 4 h and 2 h gaps, mostly 1 h
    assert infer_timeframe(gappy, "x.csv") == "1h"
    four_hourly = frame.iloc[::4].reset_index(drop=True)
    assert infer_timeframe(four_hourly, "x.csv") == "4h"
    with pytest.raises(DataError, match=r"^one\.csv: needs at least 2 candles to tell their timeframe$"):
        infer_timeframe(frame.iloc[:1], "one.csv")


# ---------------------------------------------------------------------------------------------- candles


def test_a_candle_file_wins_and_tells_its_own_timeframe(cfg: Config, tmp_path: Path,
                                                        write_binance_csv: Callable[..., Any]) -> None:
    path = tmp_path / "btc_export.csv"
    times, closes = write_binance_csv(path, n=120)
    loaded = load_candle_set(cfg, candles_file=str(path), source="ccxt")  # the file wins over any source
    assert isinstance(loaded, CandleSet)
    assert (loaded.symbol, loaded.timeframe, loaded.data_source) == ("btc_export", "1h", "csv:btc_export.csv")
    assert np.array_equal(loaded.frame["timestamp"].to_numpy(np.int64), times)
    np.testing.assert_allclose(loaded.frame["close"].to_numpy(), closes)
    named = load_candle_set(cfg, candles_file=str(path), symbol="BTC/USDT", timeframe="4h")
    assert (named.symbol, named.timeframe) == ("BTC/USDT", "4h")  # given values are taken as they are
    with pytest.raises(DataError, match=r"^csv:btc_export\.csv: 120 candles, need at least 121; give a longer "
                                        r"--lookback-hours or a longer file$"):
        load_candle_set(cfg, candles_file=str(path), min_candles=121)
    assert len(load_candle_set(cfg, candles_file=str(path), min_candles=120).frame) == 120


def test_the_configured_source_gives_the_lookback_in_candles_of_the_timeframe(cfg: Config) -> None:
    assert cfg.market.data_source == "synthetic" and cfg.market.timeframe == "1h"
    hourly_set = load_candle_set(cfg, lookback_hours=48)
    assert (hourly_set.symbol, hourly_set.timeframe, hourly_set.data_source) == ("BTC/USDT", "1h", "synthetic")
    assert len(hourly_set.frame) == 48 and list(hourly_set.frame.index) == list(range(48))
    assert set(np.diff(hourly_set.frame["timestamp"].to_numpy(np.int64))) == {HOUR_MS}

    four = load_candle_set(cfg, lookback_hours=48, timeframe="4h", symbol="ETH/USDT")
    assert (four.symbol, four.timeframe, len(four.frame)) == ("ETH/USDT", "4h", 12)
    assert set(np.diff(four.frame["timestamp"].to_numpy(np.int64))) == {4 * HOUR_MS}
    assert len(load_candle_set(cfg, lookback_hours=49.5).frame) == 50  # rounded up to whole candles
    assert len(load_candle_set(cfg, lookback_hours=0.25).frame) == 2  # never fewer than two
    configured = replace_section(cfg, "trading_agent", lookback_hours=24.0)
    assert len(load_candle_set(configured).frame) == 24  # trading_agent.lookback_hours by default

    again = load_candle_set(cfg, lookback_hours=48)  # the seeded synthetic market gives the same candles
    pd.testing.assert_frame_equal(again.frame, hourly_set.frame)


@pytest.mark.parametrize("hours", [0.0, -5.0, float("nan")])
def test_a_lookback_that_is_not_positive_is_refused(cfg: Config, hours: float) -> None:
    with pytest.raises(DataError, match=r"^--lookback-hours must be > 0, got "):
        load_candle_set(cfg, lookback_hours=hours)


def test_too_few_candles_from_the_source_name_the_source(cfg: Config) -> None:
    with pytest.raises(DataError, match=r"^synthetic: 24 candles, need at least 25; "):
        load_candle_set(cfg, lookback_hours=24, min_candles=25)


# ------------------------------------------------------------------------------------------------------ model


def test_load_model_without_a_file_says_to_train_first(cfg: Config) -> None:
    path = model_path(cfg)
    with pytest.raises(CheckpointError) as caught:
        load_model(path)
    assert str(caught.value) == f"{path}: no trained model yet; run `python ai/shadow_ppo.py train` first"


@pytest.mark.parametrize("extra, reason", [
    ({"kind": "rl_strategy_weights"}, "not a trading PPO model (kind 'rl_strategy_weights')"),
    ({"features": list(FEATURE_NAMES[:-1]) + ["something_else"]}, "model built for other features or actions"),
])
def test_load_model_refuses_a_checkpoint_of_another_model(tmp_path: Path, extra: dict[str, Any],
                                                          reason: str) -> None:
    path = tmp_path / "model.pt"
    save_model(path, **extra)
    with pytest.raises(CheckpointError) as caught:
        load_model(path)
    assert str(caught.value).startswith(f"{path}: {reason}")


def test_load_model_refuses_a_network_for_another_observation(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    agent = PPO(None, SMALL, obs_dim=N_FEATURES - 1, action_spec=ActionSpec("discrete", N_ACTIONS))
    agent.save(path, extra_meta={"kind": MODEL_KIND, "features": list(FEATURE_NAMES)})
    with pytest.raises(CheckpointError, match="model built for other features or actions"):
        load_model(path)


def test_a_loaded_model_predicts_what_the_network_computes(cfg: Config) -> None:
    path = model_path(cfg)
    agent = save_model(path)
    model = load_model(path)
    assert model.path == path and model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model.extra["kind"] == MODEL_KIND and model.extra["trained_at"] == "2024-03-01T12:00:00Z"
    assert model.train_range == {"start": 0, "end": HOUR_MS, "start_time": "1970-01-01T00:00:00Z",
                                 "end_time": "1970-01-01T01:00:00Z", "bars": 2}

    obs = np.random.default_rng(1).normal(0.0, 2.0, (16, N_FEATURES)).astype(np.float32)
    probs, values = model.predict_batch(obs)
    want_probs, want_values = by_hand(agent.policy.state_dict(), obs)
    assert probs.shape == (16, N_ACTIONS) and values.shape == (16,) and probs.dtype == np.float64
    np.testing.assert_allclose(probs, want_probs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(values, want_values, rtol=0, atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert np.array_equal(model.act(obs), probs.argmax(axis=1))

    one = model.predict(obs[5])
    best = int(want_probs[5].argmax())
    assert isinstance(one, Prediction)
    assert (one.action, one.action_name) == (best, ACTION_NAMES[best])
    assert one.confidence == pytest.approx(want_probs[5, best], abs=1e-6)
    assert one.value == pytest.approx(want_values[5], abs=1e-5)
    assert list(one.probs) == list(ACTION_NAMES)
    np.testing.assert_allclose(list(one.probs.values()), want_probs[5], atol=1e-6)
    assert one.as_dict() == {"action": one.action, "action_name": one.action_name, "confidence": one.confidence,
                             "value": one.value, "probs": one.probs}


def test_a_model_without_train_range_has_none(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    agent = PPO(None, SMALL, obs_dim=N_FEATURES, action_spec=ActionSpec("discrete", N_ACTIONS))
    agent.save(path, extra_meta={"kind": MODEL_KIND, "features": list(FEATURE_NAMES)})
    model = load_model(path)
    assert model.train_range is None and model.extra == {"kind": MODEL_KIND, "features": list(FEATURE_NAMES)}


def test_a_loaded_model_predicts_what_its_torch_network_predicts(cfg: Config) -> None:
    agent = save_model(model_path(cfg))
    loaded = load_model(model_path(cfg))  # the numpy forward pass: the shadow daemon never imports torch
    network = TradingModel(agent.policy.eval(), loaded.meta, loaded.path, loaded.sha256)
    obs = np.random.default_rng(4).normal(0.0, 2.0, (500, N_FEATURES)).astype(np.float32)
    for got, want in zip(loaded.predict_batch(obs), network.predict_batch(obs), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(loaded.act(obs), network.act(obs))
    for row in obs[:100]:
        one, other = loaded.predict(row), network.predict(row)
        assert one.action == other.action and one.action_name == other.action_name
        assert one.confidence == pytest.approx(other.confidence, abs=1e-6)
        assert one.value == pytest.approx(other.value, abs=1e-5)
        assert list(one.probs) == list(ACTION_NAMES) and sum(one.probs.values()) == pytest.approx(1.0, abs=1e-12)


def test_a_window_of_the_candles_until_a_time_is_the_tail_of_all_of_them(tcfg: Config) -> None:
    symbol, step = "BTC/USDT", timeframe_to_ms(tcfg.market.timeframe)
    start = int(candles_until(tcfg, symbol, None)["timestamp"].iloc[0])
    for index in (0, 5, tcfg.synthetic.n_candles - 1, tcfg.synthetic.n_candles + 700, 3 * tcfg.synthetic.n_candles):
        last_ts = start + index * step + step // 2  # inside the candle: it opened before last_ts
        everything = candles_until(tcfg, symbol, last_ts)
        assert int(everything["timestamp"].iloc[-1]) == start + index * step  # grown to reach it
        for window in (1, 64, 400):
            expected = everything.tail(window).reset_index(drop=True)
            pd.testing.assert_frame_equal(candles_until(tcfg, symbol, last_ts, window=window), expected,
                                          check_exact=True)
    assert candles_until(tcfg, symbol, start - step, window=10).empty  # before the market's first candle
