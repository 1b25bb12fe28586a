"""The Q-learning policy contract: its path, the writer's round trip and refusals, the tolerant reader of
missing and garbage files, and the sizing multiplier the trader reads (off by default, 1.0 on any bad file)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest

from core.config import Config, replace_section
from core.contracts import qlearning_policy as contract
from core.contracts.qlearning_policy import (
    POLICY_NAME,
    SIZE_MULTIPLIERS,
    PolicyPayload,
    policy_document,
    policy_path,
    publish_policy,
    read_policy,
    sizing_multiplier,
    validate_policy,
)


def payload(multiplier: float = 1.5) -> PolicyPayload:
    return {"symbol": "BTC/USDT", "apply_sizing": False, "state": None, "reason": "no BTC/USDT candles",
            "agents": {}, "sizing_multiplier": multiplier, "stop_atr": None}


def write_policy(cfg: Config, payload: dict[str, object], generated_at: str | None = None) -> None:
    path = policy_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = generated_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(json.dumps({"schema_version": 1, "generated_at": stamp, "producer": "x", **payload}))


def test_the_policy_lives_in_runtime(cfg: Config) -> None:
    assert policy_path(cfg) == cfg.runtime_dir / "qlearning_policy.json"
    assert POLICY_NAME == "qlearning_policy.json"


def test_published_policy_reads_back_with_its_envelope(cfg: Config) -> None:
    written = publish_policy(cfg, "ai.tabular.learner", payload(0.75))
    assert list(written)[:3] == ["schema_version", "generated_at", "producer"]
    result = read_policy(cfg, max_age_s=60.0)
    assert result.ok
    doc = policy_document(result)
    assert doc is not None and doc == written
    assert doc["schema_version"] == 1 and doc["producer"] == "ai.tabular.learner"
    assert doc["sizing_multiplier"] == 0.75 and doc["reason"] == "no BTC/USDT candles"


@pytest.mark.parametrize("bad", [float("nan"), 0.1, 2.5])
def test_the_writer_refuses_an_unusable_multiplier_and_writes_nothing(cfg: Config, bad: float) -> None:
    with pytest.raises(ValueError, match="qlearning_policy.json: refusing to publish"):
        publish_policy(cfg, "x", payload(bad))
    assert not policy_path(cfg).exists()


def test_the_reader_tolerates_missing_and_garbage_files(cfg: Config) -> None:
    missing = read_policy(cfg)
    assert missing.status == "absent" and policy_document(missing) is None
    policy_path(cfg).parent.mkdir(parents=True, exist_ok=True)
    for garbage, reason in (("{not json", "not valid JSON"), ("[1, 2]", "expected a JSON object"),
                            ('{"sizing_multiplier": "x"}', "must be a number"),
                            ('{"sizing_multiplier": 9}', "outside 0.25..2.0")):
        policy_path(cfg).write_text(garbage)
        result = read_policy(cfg)
        assert result.status == "invalid" and reason in result.reason and policy_document(result) is None
    write_policy(cfg, {"sizing_multiplier": 1.25}, generated_at="2020-01-01T00:00:00Z")
    assert read_policy(cfg).ok
    assert read_policy(cfg, max_age_s=60.0).status == "stale"


def test_validator_accepts_every_multiplier_of_the_sizing_agent() -> None:
    for value in SIZE_MULTIPLIERS:
        assert validate_policy({"sizing_multiplier": value}) is None
    assert validate_policy({}) == "`sizing_multiplier` must be a number, got None"
    assert validate_policy({"sizing_multiplier": True}) is not None


def test_sizing_multiplier_is_tolerant_and_off_by_default(cfg: Config) -> None:
    on = replace_section(cfg, "qlearning", apply_sizing=True)
    assert sizing_multiplier(on) == 1.0  # absent
    write_policy(cfg, {"sizing_multiplier": 1.5})
    assert sizing_multiplier(cfg) == 1.0  # shadow mode: published, not applied
    assert sizing_multiplier(on) == 1.5
    write_policy(cfg, {"sizing_multiplier": 1.5}, generated_at="2020-01-01T00:00:00Z")
    assert sizing_multiplier(on) == 1.0  # stale
    for bad in ("x", 7.0, None, True):
        write_policy(cfg, {"sizing_multiplier": bad})
        assert sizing_multiplier(on) == 1.0
    policy_path(cfg).write_text('{"sizing_multiplier": NaN')
    assert sizing_multiplier(on) == 1.0


def test_sizing_multiplier_logs_a_fallback_reason_once_until_it_changes(cfg: Config,
                                                                      caplog: pytest.LogCaptureFixture,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contract, "_last_sizing_reason", [""])
    on = replace_section(cfg, "qlearning", apply_sizing=True)
    with caplog.at_level(logging.INFO, logger=contract.__name__):
        assert sizing_multiplier(on) == sizing_multiplier(on) == 1.0
        write_policy(cfg, {"sizing_multiplier": 0.5})
        assert sizing_multiplier(on) == 0.5
    messages = [r.getMessage() for r in caplog.records]
    assert sum("file not found" in m for m in messages) == 1
    assert messages[-1] == "sizing multiplier follows qlearning_policy.json again"


def test_sizing_multiplier_with_policy_max_age_zero_never_goes_stale(cfg: Config) -> None:
    on = replace_section(cfg, "qlearning", apply_sizing=True, policy_max_age_s=0.0)
    write_policy(cfg, {"sizing_multiplier": 1.75}, generated_at="2020-01-01T00:00:00Z")
    assert sizing_multiplier(on) == 1.75
