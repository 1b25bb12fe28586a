"""core.config.learning: the strategy-weight, Q-learning and trading agents' sections check every value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import QLearningConfig, StrategyAgentConfig, TradingAgentConfig


@pytest.mark.parametrize(("body", "fragment"), [
    ('[strategy_agent]\nrebalance_period = "1x"\n', "strategy_agent.rebalance_period = '1x': must be a timeframe"),
    ("[strategy_agent]\nwindow_periods = 1\n", "strategy_agent.window_periods = 1: must be >= 2"),
    ("[strategy_agent]\nreward_pnl_weight = -0.1\n", "strategy_agent.reward_pnl_weight = -0.1: must be >= 0"),
    ("[strategy_agent]\nholdout_fraction = 0.9\n", "strategy_agent.holdout_fraction = 0.9: must be in (0, 0.5]"),
    ('[strategy_agent]\nretrain_cron = "0 99 * * *"\n', "strategy_agent.retrain_cron = '0 99 * * *': must be a "
                                                      "five-field crontab line"),
    ('[strategy_agent]\nretrain_cron = "0 3 * *"\n', "expected five fields"),
    ("[qlearning]\nalpha = 2.0\n", "qlearning.alpha = 2.0: must be in (0, 1]"),
    ("[qlearning]\ngamma = 1.0\n", "qlearning.gamma = 1.0: must be in [0, 1)"),
    ("[trading_agent]\nnum_envs = 0\n", "trading_agent.num_envs = 0: must be an integer >= 1"),
    ("[trading_agent]\nreward_drawdown = -1.0\n", "trading_agent.reward_drawdown = -1.0: must be >= 0"),
    ("[trading_agent]\ntrain_frac = 1.0\n", "trading_agent.train_frac = 1.0: must be in (0, 1)"),
    ("[trading_agent]\ngate_win_rate = 55.0\n", "trading_agent.gate_win_rate = 55.0: must be a share in [0, 1]"),
    ("[trading_agent]\ngate_max_drawdown = 0.15\n", "trading_agent.gate_max_drawdown = 0.15: must be a drawdown"),
    ('[trading_agent]\nretrain_cron = "0 3 1 * 1"\n', "either-or"),
    ("[trading_agent]\nposition_size = 2.0\n", "trading_agent.position_size (2.0) must not exceed "
                                               "trading_agent.max_exposure (1.0)"),
    ("[trading_agent]\nposition_size = 0.1\nmin_exposure = 0.2\n", "trading_agent.min_exposure (0.2) must be below "
                                              "trading_agent.position_size (0.1)"),
])
def test_agent_sections_refuse_bad_values_naming_the_key_and_file(
    tmp_path: Path, body: str, fragment: str, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any],
) -> None:
    message = assert_config_error(write_toml(tmp_path, body), fragment)
    assert message.count(str(tmp_path)) == 1


def test_defaults_pass_their_own_checks_and_a_negative_survival_reward_is_allowed() -> None:
    assert StrategyAgentConfig().retrain_cron == "0 3 * * 0" and QLearningConfig().alpha == 0.02
    assert TradingAgentConfig(reward_survival=-0.1).reward_survival == -0.1



@pytest.mark.parametrize(("now", "seen", "expected"), [
    (29, None, None),                                          # the first training waits for min_trades
    (30, None, "first training: 30 trades"),
    (120, 100, None),                                          # 20 new < 25
    (125, 100, "25 new trades since the last training"),
    (40, 100, "40 new trades since the last training"),        # a shorter history: all of it is new
    (20, 100, None),                                           # ... but under min_trades
])
def test_retrain_reason_follows_min_trades_and_new_trades(now: int, seen: int | None, expected: str | None) -> None:
    acfg = StrategyAgentConfig(min_trades=30, retrain_after_new_trades=25)
    assert acfg.retrain_reason(now, seen) == expected
