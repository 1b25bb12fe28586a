"""Tests of the trading environment: Gymnasium conformance, actions, accounting, reward, episode ends and training
by another library."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import ai.trading.features as tf
from ai.trading.account import Action
from ai.trading.env import TradingEnv
from ai.trading.market_features import MarketFeatures
from ai.trading.options import RewardWeights
from analytics.baselines import exposure_returns
from core.errors import DataError


def hand_features(closes: list[float], high_vol: list[bool] | None = None,
                  direction: list[float] | None = None) -> MarketFeatures:
    """Market features with chosen closes, volatility flags and regime directions (zero feature values)."""
    n = len(closes)
    return MarketFeatures(
        timestamps=np.arange(n, dtype=np.int64) * 3_600_000,
        closes=np.array(closes, dtype=float),
        values=np.zeros((n, len(tf.MARKET_FEATURES)), dtype=np.float32),
        high_volatility=np.array(high_vol or [False] * n),
        direction=np.array(direction or [0.0] * n, dtype=float),
        regimes=np.array(["RANGE"] * n, dtype=object),
    )


# ---------------------------------------------------------------------------------------- conformance


def test_check_env_passes_without_warnings(candles: pd.DataFrame) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(TradingEnv(candles, episode_length=64), skip_render_check=True)
    assert [str(w.message) for w in caught] == []


def test_spaces_and_docstring_sections() -> None:
    env = TradingEnv(features=hand_features([100.0] * 10), warmup_candles=0)
    assert env.action_space == gym.spaces.Discrete(6)
    assert env.observation_space.shape == (64,) and env.observation_space.dtype == np.float32
    for section in ("Action Space", "Observation Space", "Rewards", "Episode End"):
        assert f"## {section}" in TradingEnv.__doc__


def test_reset_with_a_seed_is_reproducible_and_uses_only_np_random(candles: pd.DataFrame) -> None:
    env = TradingEnv(candles, episode_length=32)
    np.random.seed(123)
    global_state = np.random.get_state()[1].copy()
    starts = {int(env.reset(seed=s)[1]["index"]) for s in range(8)}
    assert np.array_equal(np.random.get_state()[1], global_state)  # the global generator was not used
    assert len(starts) > 1
    first, info_a = env.reset(seed=5)
    again, info_b = env.reset(seed=5)
    assert np.array_equal(first, again) and info_a == info_b
    expected_start = 60 + np.random.default_rng(np.random.SeedSequence(5)).integers(700 - 1 - 32 - 60 + 1)
    assert info_a["index"] == expected_start


# -------------------------------------------------------------------------------------------- actions


def test_invalid_actions_are_refused() -> None:
    env = TradingEnv(features=hand_features([100.0] * 10), warmup_candles=0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not one of 0..5"):
        env.step(6)


# ----------------------------------------------------------------------------------- accounting, reward


def test_step_returns_follow_the_stated_accounting(candles: pd.DataFrame) -> None:
    fee = 0.002
    env = TradingEnv(candles, start_index=100, episode_length=12, fee=fee, position_size=0.25)
    env.reset(seed=0)
    actions = [1, 1, 0, 3, 2, 2, 4, 1, 5, 2, 3, 0]
    exposures, returns, equities = [], [], []
    for a in actions:
        _, _, _, _, info = env.step(a)
        exposures.append(info["exposure"])
        returns.append(info["step_return"])
        equities.append(info["equity"])
    closes = candles["close"].to_numpy()[100:113]
    expected, previous = [], 0.0
    for k, p in enumerate(exposures):
        expected.append(p * (closes[k + 1] / closes[k] - 1) - fee * abs(p - previous))
        previous = p
    assert exposures[:4] == pytest.approx([0.25, 0.5, 0.5, 0.25])
    assert returns == pytest.approx(expected, rel=1e-12)
    assert equities[-1] == pytest.approx(10_000 * np.prod(1 + np.array(expected)))
    assert exposure_returns(closes, exposures, fee) == pytest.approx(returns, rel=1e-12)


def test_reward_combines_every_weighted_term() -> None:
    weights = RewardWeights(pnl=100, drawdown=50, volatility_penalty=3, regime=2, survival=0.1)
    features = hand_features([100.0, 110.0, 99.0, 99.0], high_vol=[False, True, False, False],
                             direction=[1.0, -1.0, 0.0, 0.0])
    env = TradingEnv(features=features, warmup_candles=0, episode_length=3, fee=0.01, position_size=0.5,
                     reward=weights)
    env.reset(seed=0)
    _, r1, *_ = env.step(Action.LONG)     # +0.5 at 100 -> 110: return 0.05 - 0.005
    _, r2, *_ = env.step(Action.SHORT)    # -0.5 (flip) at 110 -> 99: return 0.05 - 0.01
    _, r3, *_ = env.step(Action.CLOSE)    # flat at 99: return -0.005
    ret1, ret2, ret3 = 0.045, 0.5 * 0.1 - 0.01, -0.005
    equity = np.cumprod([1 + ret1, 1 + ret2, 1 + ret3])
    dd3 = 1 - equity[2] / equity[1]
    assert r1 == pytest.approx(100 * ret1 + 2 * 1.0 * 0.5 + 0.1)
    assert r2 == pytest.approx(100 * ret2 - 3 * 0.5 + 2 * (-1.0) * (-0.5) + 0.1)
    assert r3 == pytest.approx(100 * ret3 - 50 * dd3**2 + 0.1)


# -------------------------------------------------------------------------------------------- episode end


def test_a_wiped_out_account_terminates_and_a_window_end_truncates() -> None:
    features = hand_features([100.0, 100.0, 200.0, 400.0, 400.0, 400.0])
    env = TradingEnv(features=features, warmup_candles=0, start_index=0, position_size=1.0, fee=0.0)
    env.reset(seed=0)
    env.step(Action.HOLD)
    _, _, terminated, truncated, info = env.step(Action.SHORT)  # short 1x while the price doubles
    assert terminated and not truncated and info["equity"] == 0.0
    env.reset(seed=0)
    ends = [env.step(Action.HOLD)[2:4] for _ in range(5)]
    assert ends[:-1] == [(False, False)] * 4 and ends[-1] == (False, True)


def test_too_few_candles_are_a_clear_error() -> None:
    with pytest.raises(DataError, match="warm-up"):
        TradingEnv(features=hand_features([1.0] * 10), warmup_candles=20)


def test_stable_baselines3_ppo_trains_on_the_env(candles: pd.DataFrame) -> None:
    sb3 = pytest.importorskip("stable_baselines3")
    torch.set_num_threads(1)
    env = TradingEnv(candles, episode_length=128)
    model = sb3.PPO("MlpPolicy", env, n_steps=512, batch_size=128, n_epochs=1, seed=0, device="cpu",
                    policy_kwargs={"net_arch": [32, 32]})
    model.learn(total_timesteps=2048)
    assert model.num_timesteps >= 2048
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert env.action_space.contains(int(action))
