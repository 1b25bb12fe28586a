"""core.config.measurement: the fallback sources and the performance tracker check every value at load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import PerformanceConfig


@pytest.mark.parametrize(("body", "fragment"), [
    ('[portfolio_optimizer]\nmethod = "markowitz"\n', "portfolio_optimizer.method = 'markowitz': must be one of "
                                                      "inverse_vol, erc"),
    ("[portfolio_optimizer]\nmin_days = 1\n", "portfolio_optimizer.min_days = 1: must be >= 2"),
    ("[portfolio_optimizer]\nmin_strategies = 9\n", "portfolio_optimizer.min_strategies = 9: must be between 1 and 8"),
    ("[portfolio_optimizer]\nerc_tolerance = 0\n", "portfolio_optimizer.erc_tolerance = 0.0: must be > 0"),
    ("[strategy_lab]\nfloor = 0.2\n", "strategy_lab.floor = 0.2: must be in [0, 0.125)"),
    ("[strategy_lab]\ntemperature = 0\n", "strategy_lab.temperature = 0.0: must be > 0"),
    ("[strategy_lab]\nmin_trades = 1\n", "strategy_lab.min_trades = 1: must be >= 2"),
    ('[performance]\nwindows = ["7d", "month"]\n', "performance.windows = ['7d', 'month']: must be"),
    ('[performance]\nwindows = ["7d", "7d"]\n', "performance.windows"),
    ("[performance]\nwindows = []\n", "performance.windows = []: must be"),
    ("[performance]\nmin_days = 0\n", "performance.min_days = 0: must be >= 1"),
    ("[performance]\ntrack_interval_s = 0\n", "performance.track_interval_s = 0.0: must be a positive number"),
    ('[performance]\nreport_cron = "5 * * *"\n', "performance.report_cron = '5 * * *': must be a five-field "
                                                 "crontab line in UTC (expected five fields"),
    ('[performance]\nstrategy_lab_cron = "99 * * * *"\n', "performance.strategy_lab_cron"),
])
def test_measurement_sections_refuse_bad_values_naming_the_key_and_file(
    tmp_path: Path, body: str, fragment: str, write_toml: Callable[..., Any], assert_config_error: Callable[..., Any],
) -> None:
    assert_config_error(write_toml(tmp_path, body), fragment)


def test_window_forms_that_the_report_reads_are_accepted() -> None:
    assert PerformanceConfig(windows=["1d", "365d", "all"]).windows == ["1d", "365d", "all"]
