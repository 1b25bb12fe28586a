"""Tests of the trading environment: Gymnasium conformance, actions, accounting, reward, episode ends, causal
features, the documented feature table, the vectorized form and training by other libraries."""

from __future__ import annotations

import re
import warnings

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import ai.trading.features as tf
from ai.ppo.algorithm import PPO
from ai.trading.env import (
    Action,
    RewardWeights,
    TradingEnv,
    TradingEnvOptions,
    TradingVectorEnv,
    next_exposure,
    options_from_config,
)
from ai.trading.features import (
    FEATURE_NAMES,
    MarketFeatures,
    compute_market_features,
    concat_features,
    observation_from_dict,
)
from analytics.baselines import exposure_returns
from core.config import PPOConfig, config_from_dict
from core.errors import DataError
from market.synthetic import generate_market


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return generate_market(["BTC/USDT"], n_candles=700, seed=7).candles["BTC/USDT"]


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


@pytest.mark.parametrize(("start", "action", "expected"), [
    (0.0, Action.HOLD, 0.0), (0.3, Action.HOLD, 0.3),
    (0.0, Action.LONG, 0.1), (0.2, Action.LONG, 0.3), (0.95, Action.LONG, 1.0), (-0.3, Action.LONG, 0.1),
    (0.0, Action.SHORT, -0.1), (-0.95, Action.SHORT, -1.0), (0.4, Action.SHORT, -0.1),
    (0.3, Action.REDUCE, 0.15), (-0.5, Action.REDUCE, -0.25), (0.015, Action.REDUCE, 0.0),
    (0.7, Action.CLOSE, 0.0), (-0.7, Action.EMERGENCY_FLATTEN, 0.0),
])
def test_each_action_sets_the_documented_exposure(start: float, action: Action, expected: float) -> None:
    opts = TradingEnvOptions()
    assert next_exposure(np.array([start]), np.array([int(action)]), opts)[0] == pytest.approx(expected)


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


def test_options_come_from_the_configuration() -> None:
    cfg = config_from_dict({"costs": {"fee": 0.003}, "trading_agent": {"reward_regime": 0.5, "position_size": 0.2}})
    options = TradingEnvOptions(**options_from_config(cfg))
    assert options.fee == 0.003 and options.position_size == 0.2 and options.reward.regime == 0.5


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


# --------------------------------------------------------------------------------------------- features


def test_market_features_are_causal(candles: pd.DataFrame) -> None:
    full = compute_market_features(candles)
    for k in (150, 320, 699):
        prefix = compute_market_features(candles.iloc[:k + 1])
        assert np.allclose(prefix.values[k], full.values[k], atol=1e-5)
        assert prefix.direction[k] == full.direction[k] and prefix.high_volatility[k] == full.high_volatility[k]


def test_the_documented_table_lists_every_feature_in_order() -> None:
    rows = re.findall(r"^\| (\d+)\s+\| (\w+)\s+\|", tf.__doc__, flags=re.MULTILINE)
    assert [(int(i), name) for i, name in rows] == list(enumerate(FEATURE_NAMES, start=1))
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == 64
    seed_features = ["price_change_1", "price_change_5", "price_change_15", "volatility", "rsi", "macd",
                     "position_size", "position_side", "equity_ratio", "pnl_ratio", "regime_trend", "regime_range",
                     "regime_breakout", "regime_mean_reversion", "trend_strength", "volume_ratio", "spread",
                     "time_of_day_sin", "time_of_day_cos"]
    assert list(FEATURE_NAMES[:19]) == seed_features


def test_no_feature_is_constant_padding(candles: pd.DataFrame) -> None:
    env = TradingEnv(candles, episode_length=200)
    env.reset(seed=1)
    rows = [env.step(int(a))[0] for a in np.random.default_rng(0).integers(6, size=200)]
    assert np.all(np.ptp(np.array(rows), axis=0) > 0)


def test_observation_from_dict_scales_values_and_lists_defaults() -> None:
    built = observation_from_dict({"price_change_1m": 0.01, "rsi": 75, "regime": "TREND", "balance": 10_000,
                                   "equity": 11_000, "position_side": "short", "timestamp": 0, "foo": 1})
    vector = dict(zip(FEATURE_NAMES, built.vector, strict=True))
    assert vector["price_change_1"] == pytest.approx(1.0) and vector["rsi"] == pytest.approx(0.5)
    assert vector["regime_trend"] == 1.0 and vector["regime_range"] == 0.0
    assert vector["equity_ratio"] == pytest.approx(1.0) and vector["position_side"] == -1.0
    assert vector["time_of_day_cos"] == pytest.approx(1.0) and vector["day_of_week_sin"] == pytest.approx(
        np.sin(2 * np.pi * 3 / 7), abs=1e-6)  # 1970-01-01 was a Thursday
    assert vector["volume_ratio"] == 0.0  # its default 1 is its center
    assert "rsi" not in built.defaulted and "volume_ratio" in built.defaulted and built.ignored == ["foo"]
    with pytest.raises(DataError, match="`rsi` must be a number"):
        observation_from_dict({"rsi": "high"})


# ------------------------------------------------------------------------------------------- vectorized


def run_singles(envs: list[TradingEnv], actions: np.ndarray) -> tuple[np.ndarray, ...]:
    obs, rewards, terms, truncs, finals = [], [], [], [], []
    for env, action in zip(envs, actions, strict=True):
        o, r, te, tr, _ = env.step(int(action))
        finals.append(o if (te or tr) else None)
        if te or tr:
            o, _ = env.reset()
        obs.append(o)
        rewards.append(r)
        terms.append(te)
        truncs.append(tr)
    return np.stack(obs), np.array(rewards), np.array(terms), np.array(truncs), finals


def test_vector_env_gives_the_transitions_of_single_envs(candles: pd.DataFrame) -> None:
    n, options = 3, {"episode_length": 15, "position_size": 0.5, "fee": 0.05, "bankrupt_fraction": 0.9}
    vector = TradingVectorEnv(candles, n, **options)
    singles = [TradingEnv(candles, **options) for _ in range(n)]
    sync = gym.vector.SyncVectorEnv([lambda: TradingEnv(candles, **options) for _ in range(n)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    first, _ = vector.reset(seed=11)
    assert np.array_equal(first, np.stack([env.reset(seed=11 + i)[0] for i, env in enumerate(singles)]))
    assert np.array_equal(first, sync.reset(seed=11)[0])
    rng = np.random.default_rng(0)
    ended = terminated_seen = 0
    for _ in range(80):
        actions = rng.integers(6, size=n)
        obs, rewards, terms, truncs, infos = vector.step(actions)
        s_obs, s_rewards, s_terms, s_truncs, finals = run_singles(singles, actions)
        y_obs, y_rewards, y_terms, y_truncs, y_infos = sync.step(actions)
        for mine, theirs in ((obs, s_obs), (rewards, s_rewards), (terms, s_terms), (truncs, s_truncs),
                             (obs, y_obs), (rewards, y_rewards), (terms, y_terms), (truncs, y_truncs)):
            assert np.array_equal(mine, theirs)
        for key in ("equity", "exposure", "step_return", "index", "timestamp"):
            assert np.array_equal(infos[key], y_infos[key]), key
        for i, final in enumerate(finals):
            if final is not None:
                ended += 1
                terminated_seen += int(terms[i])
                assert np.array_equal(infos["final_obs"][i], final)
                assert np.array_equal(infos["final_obs"][i], y_infos["final_obs"][i])
                assert infos["final_info"]["equity"][i] == y_infos["final_info"]["equity"][i]
    assert ended >= n and vector.episodes_completed == ended
    assert terminated_seen > 0  # both kinds of episode end were exercised


def test_segments_keep_episodes_inside_their_stretch(candles: pd.DataFrame) -> None:
    parts = [compute_market_features(candles.iloc[:200]), compute_market_features(candles.iloc[400:650])]
    features = concat_features(parts)
    vector = TradingVectorEnv(num_envs=4, features=features, episode_length=100)
    vector.reset(seed=3)
    for _ in range(400):
        _, _, _, _, infos = vector.step(np.zeros(4, dtype=np.int64))
        segment = features.segment[infos["index"]]
        assert np.all(np.isin(segment, [0, 1]))
    starts = vector._core.starts
    assert np.all(features.segment[starts] == features.segment[starts + 100])
    assert np.all((starts >= 60) & ((starts < 200 - 100) | (starts >= 200 + 60)))


def test_the_suite_ppo_trains_on_the_vector_env_deterministically(candles: pd.DataFrame) -> None:
    torch.set_num_threads(1)
    cfg = PPOConfig(n_steps=64, batch_size=64, n_epochs=2, hidden_sizes=[16, 16], seed=4, device="cpu")
    weights = []
    for _ in range(2):
        agent = PPO(TradingVectorEnv(candles, 2, episode_length=40), cfg)
        agent.learn(256)
        weights.append(torch.cat([p.detach().flatten() for p in agent.policy.parameters()]))
    assert torch.equal(weights[0], weights[1])
    assert agent.num_timesteps == 256


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
