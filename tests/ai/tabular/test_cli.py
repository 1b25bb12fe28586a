"""The command: ``--once`` with good and bad inputs (exit codes 0, 1, 2), and ``--help`` as a script."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ai.tabular.cli import main
from core.config import REPO_ROOT, Config
from core.contracts.pnl_history import append_trades, history_path

# Signatures of the helper fixtures of conftest.py.
TradeRows = Callable[..., list[dict[str, object]]]


def test_once_and_bad_inputs(cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             trade_rows: TradeRows) -> None:
    append_trades(history_path(cfg), trade_rows(cfg, [400, 410], 3, lambda k, s: 0.01))
    assert main(["--once"]) == 0
    assert "meta: +16 trade(s)" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[qlearning]\nalpha = 2.0\n")
    assert main(["--once", "--config", str(bad)]) == 2
    assert "qlearning.alpha = 2.0: must be in (0, 1]" in capsys.readouterr().err
    history_path(cfg).write_text("closed_at,opened_at\n")
    assert main(["--once"]) == 2  # bad input (the history), not a failure of the machine
    assert "column `symbol` missing" in capsys.readouterr().err


def test_help_runs_as_a_script() -> None:
    out = subprocess.run([sys.executable, "ai/qlearning.py", "--help"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "--loop" in out.stdout and "--once" in out.stdout
