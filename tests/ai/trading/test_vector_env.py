"""Tests of the vectorized trading environment: the transitions of single environments, segments, training."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd
import torch

from ai.ppo import PPO
from ai.trading.env import TradingEnv
from ai.trading.market_features import compute_market_features, concat_features
from ai.trading.vector_env import TradingVectorEnv
from core.config import PPOConfig


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
