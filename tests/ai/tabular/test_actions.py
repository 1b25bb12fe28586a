"""The agents' actions and what one trade says about them: action spaces, rewards by hand, stop replay."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ai.tabular.actions import (
    META_CHOICES,
    N_META_ACTIONS,
    N_SIZING_ACTIONS,
    STOP_ATR,
    describe_meta,
    describe_sizing,
    meta_action,
    meta_rewards,
    sizing_rewards,
    stop_returns,
)
from core.config import STRATEGIES


def test_action_spaces_and_their_meaning() -> None:
    assert N_META_ACTIONS == 60 and N_SIZING_ACTIONS == 40
    assert len(META_CHOICES) == 12 and META_CHOICES[:8] == STRATEGIES
    assert describe_meta(meta_action("stand_aside", 4)) == {"choice": "stand_aside", "aggressiveness": 2.0,
                                                             "level": "maximal"}
    assert describe_sizing(0) == {"multiplier": 0.25, "stop_atr": 1.0}
    assert describe_sizing(39) == {"multiplier": 2.0, "stop_atr": None}


def test_meta_rewards_of_one_trade_by_hand() -> None:
    rewards = meta_rewards("momentum_sma_crossover", 0.01, reward_scale=100.0, risk_aversion=5.0)
    assert len(rewards) == 20  # the strategy, its group and all_equal at 5 levels, plus stand_aside
    top = meta_action("momentum_sma_crossover", 4)  # x2: 100 * (0.02 - 2.5 * 0.0004) = 1.9
    assert rewards[top] == pytest.approx(1.9)
    assert rewards[meta_action("trend_group", 4)] == pytest.approx(1.9)
    assert rewards[meta_action("all_equal", 0)] == pytest.approx(100 * (0.0025 - 2.5 * 0.0025**2))
    assert rewards[meta_action("stand_aside", 2)] == 0.0
    assert meta_action("mean_reversion_group", 2) not in rewards
    assert meta_rewards("rl_v3_ppo", 0.01, 100.0, 5.0) == {}


def test_sizing_rewards_prefer_a_finite_size_with_risk_aversion() -> None:
    rewards = sizing_rewards([0.01] * len(STOP_ATR), reward_scale=100.0, risk_aversion=5.0)
    assert len(rewards) == 40
    # 100 * (m * 0.01 - 2.5 * (m * 0.01) ** 2) grows with m up to m = 20: the largest multiplier wins here,
    # while a risk-neutral reward is just linear.
    assert rewards[39] == pytest.approx(100 * (0.02 - 2.5 * 0.0004))
    losing = sizing_rewards([-0.01] * 5, 100.0, 5.0)
    assert max(losing, key=lambda k: losing[k]) in range(0, 5)  # the smallest multiplier loses least


def test_stop_replay_by_hand() -> None:
    opens = np.array([99.5, 99.0, 96.0, 97.0])
    highs = np.array([100.5, 99.5, 97.0, 98.0])
    lows = np.array([99.0, 97.5, 95.0, 96.5])
    got = stop_returns("long", 100.0, 0.03, 2.0, opens, highs, lows, fee=0.0, slippage=0.0)
    # 1 ATR = 98: the 2nd candle (low 97.5) reaches it -> exit 98; 1.5 ATR = 97 and 2 ATR = 96: the 3rd candle
    # opens at 96, through 97 -> exit 96, at 96 -> exit 96; 3 ATR = 94: never reached; no stop: the logged 3 %.
    assert got == pytest.approx((-0.02, -0.04, -0.04, 0.03, 0.03))
    fee = stop_returns("long", 100.0, 0.03, 2.0, opens, highs, lows, fee=0.001, slippage=0.001)
    assert fee[0] == pytest.approx((98 * 0.999 - 100) / 100 - 0.001 * (100 + 98 * 0.999) / 100)
    short = stop_returns("short", 100.0, -0.01, 1.0, np.array([100.5]), np.array([102.0]), np.array([100.0]),
                         fee=0.0, slippage=0.0)
    assert short == pytest.approx((-0.01, -0.015, -0.02, -0.01, -0.01))  # 101, 101.5, 102 reached; 103 not
    assert stop_returns("long", 100.0, 0.03, math.nan, opens, highs, lows, 0.0, 0.0) == (0.03,) * 5
