"""core.config.trader: the paper trader, the strategies and the weights bridge check every value at load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import BridgeConfig, StrategiesConfig, TraderConfig


@pytest.mark.parametrize(("body", "fragment"), [
    ('[trader]\nmode = "backtest"\n', "trader.mode = 'backtest': must be one of replay, live"),
    ("[trader]\ninitial_equity = 0\n", "trader.initial_equity = 0.0: must be a positive amount"),
    ("[trader]\nreplay_speed = -1\n", "trader.replay_speed = -1.0: must be >= 0"),
    ('[trader]\nstate_file = "../elsewhere.json"\n', "trader.state_file = '../elsewhere.json': must be a plain "
                                                     "file name"),
    ("[trader]\nlive_poll_s = 0\n", "trader.live_poll_s = 0.0: must be a positive number of seconds"),
    ("[trader]\nlive_history_candles = 1\n", "trader.live_history_candles = 1: must be >= 2"),
    ("[strategies]\npairs_window = 1\n", "strategies.pairs_window = 1: must be an integer >= 2"),
    ("[strategies]\nmacd_fast = 30\n", "strategies.macd_fast (30) must be below strategies.macd_slow (26)"),
    ("[strategies]\nvix_revert = 1.0\n", "strategies.vix_revert = 1.0: must be in [0, 1)"),
    ("[bridge]\nmax_weight = 1.5\n", "bridge.max_weight = 1.5: must be a weight in [0, 1]"),
    ("[bridge]\nrl_max_age_s = -1\n", "bridge.rl_max_age_s = -1.0: must be >= 0"),
    ("[bridge]\nmax_weights = {turtle = 0.3}\n", "bridge.max_weights.turtle = 0.3: not a strategy"),
    ("[bridge]\nmin_weights = {vix_strategy = 2.0}\n", "bridge.min_weights.vix_strategy = 2.0: must be a weight"),
    ("[bridge]\nrecheck_interval_s = 0\n", "bridge.recheck_interval_s = 0.0: must be > 0"),
])
def test_trader_side_sections_refuse_bad_values_naming_the_key_and_file(
    tmp_path: Path, body: str, fragment: str, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any],
) -> None:
    assert_config_error(write_toml(tmp_path, body), fragment)


def test_defaults_and_edge_values_are_accepted() -> None:
    assert TraderConfig(replay_speed=0.0).replay_speed == 0.0
    assert StrategiesConfig(allow_short=False).allow_short is False
    # Caps that cannot all hold together are the bridge's to refuse (it sums them); each one alone is valid.
    assert BridgeConfig(min_weight=0.2).min_weight == 0.2
