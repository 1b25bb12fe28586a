"""Tests of the trading environment's options: they come from the configuration types."""

from __future__ import annotations

from ai.trading.options import options_from_config
from core.config import config_from_dict


def test_options_come_from_the_configuration() -> None:
    cfg = config_from_dict({"costs": {"fee": 0.003}, "trading_agent": {"reward_regime": 0.5, "position_size": 0.2}})
    options = options_from_config(cfg)
    assert options.fee == 0.003 and options.position_size == 0.2 and options.reward.regime == 0.5
