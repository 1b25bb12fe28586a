"""Tests of the shadow daemon's files: status, resume state and experiences, written and read tolerantly."""

from __future__ import annotations

from typing import Any, cast

from core.config import Config, replace_section
from core.contracts.shadow_status import (
    PRODUCER,
    Experience,
    append_experience,
    count_experiences,
    experiences_path,
    iter_experiences,
    publish_status,
    read_experiences,
    read_shadow_state,
    read_status,
    save_shadow_state,
    saved_account,
    shadow_state_path,
    status_path,
)


def status(**changes: Any) -> Any:
    base = {"active": False, "shadow_mode": True, "model_loaded": False, "model_path": "m", "model_error": None,
            "trained_range": None, "trained_at": None, "symbol": "BTC/USDT", "timeframe": "1h",
            "experiences_collected": 0, "last_decision_at": None, "last_decision": None, "rollout": None,
            "daemon": None}
    return {**base, **changes}


def test_file_names(cfg: Config) -> None:
    assert status_path(cfg) == cfg.runtime_dir / "rl_v3_status.json"
    assert shadow_state_path(cfg) == cfg.state_dir / "rl_v3" / "shadow_state.json"
    assert experiences_path(cfg) == cfg.state_dir / "rl_v3" / "experiences.jsonl"


def test_status_is_published_in_the_envelope_and_read_back(cfg: Config) -> None:
    assert read_status(cfg).status == "absent"
    written = publish_status(cfg, status(experiences_collected=3))
    assert written["producer"] == PRODUCER and "generated_at" in written and "schema_version" in written
    result = read_status(cfg)
    assert result.ok and result.data is not None and result.data["experiences_collected"] == 3


def test_the_saved_account_is_given_only_for_its_symbol(cfg: Config) -> None:
    assert saved_account(cfg, "BTC/USDT") is None
    shadow_state_path(cfg).parent.mkdir(parents=True)
    shadow_state_path(cfg).write_text("{not json")
    assert read_shadow_state(cfg).status == "invalid" and saved_account(cfg, "BTC/USDT") is None
    save_shadow_state(cfg, {"symbol": "BTC/USDT", "timeframe": "1h", "cursor_ts": 5, "pending": None,
                            "account": {"exposure": 0.1}, "decisions": 1, "experiences": 0,
                            "last_decision_at": None, "followed_trader": False, "trader_ts": None})
    assert saved_account(cfg, "BTC/USDT") == {"exposure": 0.1}
    assert saved_account(cfg, "ETH/USDT") is None


def test_experiences_are_bounded_and_torn_lines_skipped(cfg: Config) -> None:
    small = replace_section(cfg, "trading_agent", max_experiences=4)
    assert count_experiences(small) == 0 and read_experiences(small) == []
    for i in range(6):
        append_experience(small, cast(Experience, {"timestamp": i}))
    kept = [r["timestamp"] for r in read_experiences(small)]
    assert len(kept) <= 4 and kept[-1] == 5 and kept == sorted(kept)
    with open(experiences_path(small), "a") as fh:
        fh.write('{"timestamp": 9')  # a writer killed mid-line
    assert [r["timestamp"] for r in iter_experiences(small)] == kept
    assert read_experiences(small, limit=1) == [{"timestamp": 5}]
    assert count_experiences(small) == len(kept) + 1
