"""The episode core of the trading environments: the features it runs on, where episodes may start and for how
long, seeded starts, and ``n`` episodes stepped together, checked against the accounting done by hand."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import ai.trading.features as tf
from ai.trading.account import Action
from ai.trading.episodes import Episodes, episode_starts, features_for, observation_space, scalar_info
from ai.trading.market_features import MarketFeatures, compute_market_features, concat_features
from ai.trading.options import TradingEnvOptions, env_options
from core.errors import DataError

HOUR_MS = 3_600_000
COLUMN = {name: i for i, name in enumerate(tf.FEATURE_NAMES)}


def hand_features(closes: list[float], values: np.ndarray | None = None) -> MarketFeatures:
    """Market features with chosen closes (and feature values; zeros by default), calm and without a regime."""
    n = len(closes)
    return MarketFeatures(
        timestamps=1_704_067_200_000 + np.arange(n, dtype=np.int64) * HOUR_MS,
        closes=np.array(closes, dtype=float),
        values=np.zeros((n, len(tf.MARKET_FEATURES)), dtype=np.float32) if values is None else values,
        high_volatility=np.zeros(n, dtype=bool),
        direction=np.zeros(n),
        regimes=np.array(["RANGE"] * n, dtype=object),
    )


def opts(**changes: object) -> TradingEnvOptions:
    return env_options(TradingEnvOptions(), **changes)


# ---------------------------------------------------------------------------------------------- features


def test_features_for_computes_from_candles_or_takes_the_given_features(candles: pd.DataFrame) -> None:
    given = hand_features([1.0] * 5)
    assert features_for(None, given, opts()) is given
    assert features_for(candles, given, opts()) is given  # precomputed features win

    window = candles.iloc[100:400]  # an index not starting at 0
    computed = features_for(window, None, opts())
    expected = compute_market_features(window.reset_index(drop=True), 0.8)
    assert np.array_equal(computed.timestamps, window["timestamp"].to_numpy(np.int64))
    np.testing.assert_array_equal(computed.closes, window["close"].to_numpy())
    np.testing.assert_array_equal(computed.values, expected.values)
    np.testing.assert_array_equal(computed.high_volatility, expected.high_volatility)

    calmer = features_for(window, None, opts(high_volatility_percentile=0.5))
    np.testing.assert_array_equal(calmer.high_volatility, compute_market_features(window, 0.5).high_volatility)
    assert calmer.high_volatility.sum() > computed.high_volatility.sum()  # the option reaches the features


def test_features_for_names_what_is_missing(candles: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"^a trading environment needs a candle frame \(or precomputed "
                                         r"features=\)$"):
        features_for(None, None, opts())
    with pytest.raises(DataError) as caught:
        features_for(candles.drop(columns=["volume", "high"]), None, opts())
    assert str(caught.value) == ("candles lack column(s) high, volume; expected timestamp, open, high, low, close, "
                                 "volume")


# ---------------------------------------------------------------------------------------------- starts


def test_episodes_start_after_the_warmup_and_end_before_the_last_candle() -> None:
    features = hand_features([100.0] * 100)
    starts, length = episode_starts(features, opts(warmup_candles=30, episode_length=48))
    assert length == 48 and np.array_equal(starts, np.arange(30, 52))
    assert starts.max() + length == 99  # the last step reads the last candle's close
    starts, length = episode_starts(features, opts(warmup_candles=30, episode_length=500))
    assert length == 69 and np.array_equal(starts, [30])  # capped by the candles there are
    starts, length = episode_starts(features, opts(warmup_candles=30, episode_length=None))
    assert length == 69 and np.array_equal(starts, [30])


def test_a_fixed_start_index_runs_from_it_whatever_the_warmup() -> None:
    features = hand_features([100.0] * 100)
    starts, length = episode_starts(features, opts(warmup_candles=30, episode_length=48, start_index=0))
    assert np.array_equal(starts, [0]) and length == 48
    starts, length = episode_starts(features, opts(episode_length=48, start_index=90))
    assert np.array_equal(starts, [90]) and length == 9
    starts, length = episode_starts(features, opts(episode_length=None, start_index=10))
    assert np.array_equal(starts, [10]) and length == 89
    starts, length = episode_starts(features, opts(start_index=98))
    assert np.array_equal(starts, [98]) and length == 1
    with pytest.raises(ValueError) as caught:
        episode_starts(features, opts(start_index=99))
    assert str(caught.value) == "start_index 99 leaves no step in 100 candles (at most 98)"


def test_too_few_candles_after_the_warmup_is_an_error_naming_the_minimum() -> None:
    with pytest.raises(DataError) as caught:
        episode_starts(hand_features([100.0] * 21), opts(warmup_candles=20))
    assert str(caught.value) == ("21 candles leave no step after the 20 warm-up candles; give at least 22 "
                                 "consecutive candles or lower warmup_candles")
    starts, length = episode_starts(hand_features([100.0] * 22), opts(warmup_candles=20))
    assert np.array_equal(starts, [20]) and length == 1


def test_episodes_stay_inside_their_segment() -> None:
    features = concat_features([hand_features([100.0] * 50), hand_features([100.0] * 120)])
    # Segment 0 is candles 0..49, segment 1 candles 50..169; the longest allows 169 - 60 = 109 steps.
    starts, length = episode_starts(features, opts(warmup_candles=10, episode_length=60))
    assert length == 60 and np.array_equal(starts, np.arange(60, 110))  # too long for the short segment
    starts, length = episode_starts(features, opts(warmup_candles=10, episode_length=30))
    assert length == 30 and np.array_equal(starts, np.concatenate([np.arange(10, 20), np.arange(60, 140)]))
    assert np.array_equal(features.segment[starts], features.segment[starts + length])
    starts, length = episode_starts(features, opts(warmup_candles=10, episode_length=None))
    assert length == 109 and np.array_equal(starts, [60])


# ---------------------------------------------------------------------------------------------- episodes


def test_random_starts_are_seeded_and_reset_only_their_episode() -> None:
    features = hand_features(list(np.linspace(100.0, 150.0, 80)))
    options = opts(warmup_candles=5, episode_length=10)

    def draws(seed: int) -> list[int]:
        core, rng = Episodes(features, options, 1), np.random.default_rng(seed)
        result = []
        for _ in range(30):
            core.start(0, rng)
            result.append(int(core.index[0]))
        return result

    first = draws(4)
    assert first == draws(4) and first != draws(5)
    assert set(first) <= set(range(5, 70)) and len(set(first)) > 5

    core = Episodes(features, options, 3)
    for i in range(3):
        core.start(i, None)  # no generator: the first start
    assert np.array_equal(core.index, [5, 5, 5])
    core.step(np.array([Action.LONG, Action.SHORT, Action.LONG]))
    core.step(np.array([Action.HOLD, Action.HOLD, Action.HOLD]))
    before = core.account.row(0), core.account.row(2)
    core.start(1, np.random.default_rng(0))
    assert core.account.row(1) == {"exposure": 0.0, "equity": 10_000.0, "peak": 10_000.0, "open_equity": 10_000.0,
                                   "holding": 0.0, "exposure_change": 0.0}
    assert core.steps[1] == 0 and core.index[1] in core.starts
    assert (core.account.row(0), core.account.row(2)) == before and np.array_equal(core.steps[[0, 2]], [2, 2])
    assert np.array_equal(core.index[[0, 2]], [7, 7])


def test_stepping_follows_the_accounting_by_hand() -> None:
    features = hand_features([100.0, 110.0, 99.0, 99.0, 121.0])
    core = Episodes(features, opts(warmup_candles=0, episode_length=3, position_size=0.5, fee=0.01), 2)
    core.start(0, None)
    core.start(1, None)
    infos = core.infos()
    assert np.array_equal(infos["index"], [0, 0]) and np.array_equal(infos["equity"], [10_000.0, 10_000.0])
    for key in ("step_return", "fee_paid", "drawdown"):
        assert np.array_equal(infos[key], [0.0, 0.0]), key

    # Episode 0: LONG, LONG (to the 1.0 cap), CLOSE. Episode 1: SHORT, HOLD, HOLD.
    # return = exposure * (close_next / close_now - 1) - fee * |exposure - previous exposure|
    plan = [(Action.LONG, Action.SHORT), (Action.LONG, Action.HOLD), (Action.CLOSE, Action.HOLD)]
    returns = [(0.5 * 0.1 - 0.005, -0.5 * 0.1 - 0.005),
               (1.0 * -0.1 - 0.005, -0.5 * -0.1),
               (-0.01, 0.0)]
    exposures = [(0.5, -0.5), (1.0, -0.5), (0.0, -0.5)]
    equity = np.array([10_000.0, 10_000.0])
    peak = equity.copy()
    for k, (actions, ret, exposure) in enumerate(zip(plan, returns, exposures, strict=True), start=1):
        outcome, terminated, truncated = core.step(np.array(actions))
        equity = equity * (1 + np.array(ret))
        peak = np.maximum(peak, equity)
        np.testing.assert_allclose(outcome.step_return, ret, rtol=0, atol=1e-12)
        np.testing.assert_allclose(core.account.equity, equity, rtol=1e-12)
        np.testing.assert_allclose(outcome.drawdown, 1 - equity / peak, rtol=0, atol=1e-12)
        assert np.array_equal(core.account.exposure, exposure)
        assert np.array_equal(core.index, [k, k]) and np.array_equal(core.steps, [k, k])
        assert not terminated.any()
        assert np.array_equal(truncated, [k == 3, k == 3])
        infos = core.infos(outcome)
        assert np.array_equal(infos["timestamp"], features.timestamps[[k, k]])
        assert np.array_equal(infos["exposure"], exposure) and np.array_equal(infos["step_return"], outcome.step_return)
        infos["equity"][0] = -1.0  # the infos hold copies
        assert core.account.equity[0] > 0
    np.testing.assert_allclose(core.account.equity, [10_000 * 1.045 * 0.895 * 0.99, 10_000 * 0.945 * 1.05])
    assert np.array_equal(outcome.fee_paid, [0.01, 0.0])


def test_bankruptcy_terminates_rather_than_truncates() -> None:
    features = hand_features([100.0, 100.0, 40.0, 40.0])
    core = Episodes(features, opts(warmup_candles=0, episode_length=2, position_size=1.0, fee=0.0,
                                   bankrupt_fraction=0.5), 2)
    core.start(0, None)
    core.start(1, None)
    core.step(np.array([Action.LONG, Action.LONG]))
    outcome, terminated, truncated = core.step(np.array([Action.HOLD, Action.CLOSE]))
    np.testing.assert_allclose(core.account.equity, [4_000.0, 10_000.0])  # a 60 % fall, fully invested
    assert np.array_equal(terminated, [True, False])
    assert np.array_equal(truncated, [False, True])  # both reached the last step; the ruined one terminated


def test_observations_hold_the_market_row_and_the_scaled_account() -> None:
    values = np.random.default_rng(2).normal(size=(12, len(tf.MARKET_FEATURES))).astype(np.float32)
    features = hand_features(list(np.linspace(100.0, 111.0, 12)), values)
    core = Episodes(features, opts(warmup_candles=3, episode_length=4, position_size=0.25, fee=0.0), 2)
    core.start(0, None)
    core.start(1, None)
    obs = core.observations()
    assert obs.shape == (2, tf.N_FEATURES) and obs.dtype == np.float32
    assert np.array_equal(obs[:, tf.MARKET_INDEX], values[[3, 3]])
    assert np.array_equal(obs[:, tf.ACCOUNT_INDEX], np.zeros((2, len(tf.ACCOUNT_FEATURES))))  # flat, no history
    core.step(np.array([Action.LONG, Action.SHORT]))
    core.step(np.array([Action.HOLD, Action.HOLD]))
    obs = core.observations()
    assert np.array_equal(obs[:, tf.MARKET_INDEX], values[[5, 5]])
    equity = core.account.equity
    np.testing.assert_allclose(obs[:, COLUMN["position_size"]], [0.25, 0.25])
    np.testing.assert_allclose(obs[:, COLUMN["position_side"]], [1.0, -1.0])
    np.testing.assert_allclose(obs[:, COLUMN["holding_candles"]], [2 / 50, 2 / 50])
    np.testing.assert_allclose(obs[:, COLUMN["equity_ratio"]], (equity / 10_000 - 1) / 0.1, rtol=1e-5)
    assert observation_space().contains(obs[0]) and observation_space().contains(obs[1])


# ---------------------------------------------------------------------------------------------- helpers


def test_scalar_info_takes_one_episode_as_python_numbers() -> None:
    infos = {"index": np.array([3, 4], dtype=np.int64), "timestamp": np.array([7, 8], dtype=np.uint64),
             "equity": np.array([1.5, 2.5]), "exposure": np.array([0.1, -0.2], dtype=np.float32)}
    row = scalar_info(infos, 1)
    assert row == {"index": 4, "timestamp": 8, "equity": 2.5, "exposure": pytest.approx(-0.2)}
    assert [type(row[k]) for k in ("index", "timestamp", "equity", "exposure")] == [int, int, float, float]


def test_the_observation_space_is_the_clipped_feature_vector() -> None:
    space = observation_space()
    assert space == gym.spaces.Box(-10.0, 10.0, (tf.N_FEATURES,), np.float32)
    assert tf.N_FEATURES == 64 and tf.OBS_CLIP == 10.0
    assert not space.contains(np.full(tf.N_FEATURES, 10.5, dtype=np.float32))
