"""The [performance] section's checks: a bad value is refused naming its key."""

from __future__ import annotations

import pytest

from analytics.performance.settings import check_performance_config
from core.config import config_from_dict
from core.errors import ConfigError


@pytest.mark.parametrize(("section", "key"), [
    ({"windows": ["7d", "month"]}, "performance.windows"),
    ({"windows": []}, "performance.windows"),
    ({"report_cron": "5 * * *"}, "performance.report_cron"),
    ({"strategy_lab_cron": "99 * * * *"}, "performance.strategy_lab_cron"),
    ({"track_interval_s": 0.0}, "performance.track_interval_s"),
    ({"min_days": 0}, "performance.min_days"),
])
def test_bad_performance_config_names_the_key(section: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_performance_config(config_from_dict({"performance": section}))
