"""What both fallback weight sources share: the minimum-history check, run_once (written or None with a logged
reason) and the command body's exit codes, on a source whose payload is known in advance."""

from __future__ import annotations

import argparse
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analytics.returns import daily_strategy_returns, load_strategy_trades
from analytics.weight_source import (
    InsufficientHistoryError,
    WeightSource,
    eligible_strategies,
    parse_date,
    run_weights_command,
)
from core.config import STRATEGIES, Config
from core.contracts.pnl_history import append_trades, history_path
from tests.analytics.support import AS_OF, trade

EQUAL = {s: 1 / len(STRATEGIES) for s in STRATEGIES}


def payload_of_history(cfg: Config, trades: pd.DataFrame, as_of: date | None, skipped: int) -> dict[str, Any]:
    """Equal weights when any trade is in the history, else not enough history; says what it was given."""
    if trades.empty:
        raise InsufficientHistoryError("no trade at all")
    return {"weights": EQUAL, "trades_seen": len(trades), "as_of": str(as_of), "history_rows_skipped": skipped}


def source() -> WeightSource:
    return WeightSource("demo_source", "demo source", lambda cfg: cfg.runtime_dir / "demo_weights.json",
                        payload_of_history)


def test_parse_date_reads_iso_days_and_names_the_format() -> None:
    assert parse_date("2024-03-31") == date(2024, 3, 31)
    with pytest.raises(argparse.ArgumentTypeError, match="YYYY-MM-DD"):
        parse_date("31/03/2024")


def test_eligible_strategies_name_the_missing_days_then_the_missing_trades(cfg: Config) -> None:
    rows = [trade(AS_OF - timedelta(days=d), STRATEGIES[0], 0.01) for d in range(3)]
    append_trades(history_path(cfg), [*rows, trade(AS_OF, STRATEGIES[1], 0.01)])
    daily = daily_strategy_returns(load_strategy_trades(cfg)[0], 10, AS_OF)
    with pytest.raises(InsufficientHistoryError, match=r"`demo\.min_days`"):
        eligible_strategies(daily, 5, 1, 1, "demo")
    assert eligible_strategies(daily, 3, 3, 1, "demo") == [STRATEGIES[0]]
    with pytest.raises(InsufficientHistoryError, match=rf"`demo\.min_strategies`.*{STRATEGIES[0]}=3"):
        eligible_strategies(daily, 3, 3, 2, "demo")


def test_run_once_writes_the_payload_or_logs_why_not(cfg: Config, caplog: pytest.LogCaptureFixture) -> None:
    src = source()
    assert src.run_once(cfg) is None
    assert "demo source: not enough history, nothing written: no trade at all" in caplog.text
    assert not src.output_path(cfg).exists()
    append_trades(history_path(cfg), [trade(AS_OF, STRATEGIES[2], 0.02), trade(AS_OF, STRATEGIES[3], -0.01)])
    assert src.run_once(cfg, as_of=AS_OF) == cfg.runtime_dir / "demo_weights.json"
    doc = json.loads(src.output_path(cfg).read_text())
    assert doc["producer"] == "demo_source" and doc["trades_seen"] == 2 and doc["as_of"] == "2024-03-31"
    assert doc["weights"] == pytest.approx(EQUAL)


def test_the_command_exits_3_without_history_0_when_written_and_2_on_a_bad_config(
        cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = source()
    assert run_weights_command(src, {}, None, None, lambda p: "(demo)") == 3
    assert capsys.readouterr().err.startswith("demo_source: not enough history, nothing written: no trade")
    append_trades(history_path(cfg), [trade(AS_OF, STRATEGIES[0], 0.01)])
    assert run_weights_command(src, {}, None, None, lambda p: f"({p['trades_seen']} trade)") == 0
    assert capsys.readouterr().out == f"wrote {src.output_path(cfg)} (1 trade)\n"
    bad = tmp_path / "bad.toml"
    bad.write_text("[demo_source]\n")
    assert run_weights_command(src, {}, str(bad), None, lambda p: "") == 2
    assert capsys.readouterr().err.startswith("demo_source: error: ")
