"""The trader status: what the trader publishes reads back, and a missing, garbage, wrong-schema or stale file is
no status (None) with the reason logged."""

from __future__ import annotations

import json
import logging
import math

import pytest

from core.atomic import publish_json
from core.config import Config
from core.contracts.trader_status import (
    STATUS_NAME,
    TraderStatus,
    publish_trader_status,
    read_trader_status,
    status_path,
    validate_status,
)


def status(**overrides: object) -> TraderStatus:
    doc: TraderStatus = {
        "state": "running", "mode": "replay", "data_source": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h",
        "initial_equity": 1000.0, "equity": 1012.5, "cash": 512.5,
        "positions": {"turtle_trading": {"side": "long", "qty": 5.0, "notional": 500.0, "entry_price": 100.0,
                                         "opened_at": "2024-01-01T01:00:00Z", "target": 1.0, "weight": 0.5,
                                         "unrealized_pnl": 12.5}, "vix_strategy": None},
        "allocation": {"weights": {"turtle_trading": 1.0}, "source": "rl", "file_status": "ok", "reason": ""},
        "sizing_multiplier": 1.0, "ppo_rollout": None,
        "last_candle": {"timestamp": 1_704_067_200_000, "time": "2024-01-01T00:00:00Z", "close": 102.5},
        "candles_processed": 3, "trades_written": 1,
    }
    doc.update(overrides)  # type: ignore[typeddict-item]
    return doc


def test_the_path_is_runtime_trader_status_json(cfg: Config) -> None:
    assert status_path(cfg) == cfg.runtime_dir / "trader_status.json" and STATUS_NAME == "trader_status.json"


def test_what_the_trader_publishes_reads_back(cfg: Config) -> None:
    written = publish_trader_status(cfg, status())
    assert written["producer"] == "paper_trader" and written["schema_version"] == 1
    read = read_trader_status(cfg)
    assert read is not None
    assert read.doc == written
    assert read.last_candle_ts == 1_704_067_200_000
    assert (read.symbol, read.timeframe, read.equity) == ("BTC/USDT", "1h", 1012.5)


def test_before_the_first_candle_there_is_no_last_candle(cfg: Config) -> None:
    publish_trader_status(cfg, status(last_candle=None))
    read = read_trader_status(cfg)
    assert read is not None and read.last_candle_ts is None


def test_a_partial_status_still_gives_what_it_holds(cfg: Config) -> None:
    path = status_path(cfg)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"last_candle": {"timestamp": 7, "close": 1.0}}))
    read = read_trader_status(cfg)
    assert read is not None and read.last_candle_ts == 7
    assert read.symbol is None and read.timeframe is None and read.equity is None


def test_a_missing_file_is_no_status(cfg: Config) -> None:
    assert read_trader_status(cfg) is None


@pytest.mark.parametrize(("text", "reason"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"schema_version": 2, "equity": 1.0}', "`schema_version` is 2"),
    ('{"last_candle": {"timestamp": "soon"}}', "`last_candle.timestamp` must be an integer"),
    ('{"last_candle": 5}', "`last_candle` must be an object or null"),
    ('{"equity": "lots"}', "`equity` must be a finite number"),
    ('{"symbol": 3}', "`symbol` must be text"),
    ('{"candles_processed": 1.5}', "`candles_processed` must be an integer"),
])
def test_garbage_and_wrong_schema_are_no_status_with_the_reason_logged(
        cfg: Config, caplog: pytest.LogCaptureFixture, text: str, reason: str) -> None:
    path = status_path(cfg)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with caplog.at_level(logging.WARNING, logger="core.contracts.trader_status"):
        assert read_trader_status(cfg) is None
    assert reason in caplog.text and STATUS_NAME in caplog.text


def test_a_stale_status_is_none_only_when_an_age_is_asked(cfg: Config) -> None:
    publish_json(status_path(cfg), "paper_trader", {**status(), "generated_at": "2020-01-01T00:00:00Z"})
    assert read_trader_status(cfg, max_age_s=60.0) is None
    old = read_trader_status(cfg)
    assert old is not None and old.age_s is not None and old.age_s > 86_400


def test_nan_is_refused_at_write_time(cfg: Config) -> None:
    with pytest.raises(ValueError):
        publish_trader_status(cfg, status(equity=math.nan))
    assert not status_path(cfg).exists()


def test_validate_accepts_the_full_payload() -> None:
    assert validate_status(dict(status())) is None
