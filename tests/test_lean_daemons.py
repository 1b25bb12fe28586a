"""Daemons that never train do not import torch: each one's module is imported and its start-up path run in a
fresh interpreter, which then reports whether ``torch`` reached ``sys.modules``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ai.ppo
from ai.allocation.agent import checkpoint_extra, promote_candidate, save_candidate
from ai.ppo import PPO, ActionSpec
from ai.trading.account import N_ACTIONS
from ai.trading.features import FEATURE_NAMES
from core.atomic import publish_json
from core.config import Config, PPOConfig, load_config
from core.contracts.shadow_decisions import decisions_path
from core.contracts.trader_status import status_path
from core.contracts.trading_model import MODEL_KIND, model_path
from core.jsonl import read_jsonl
from market.sources import load_candles
from tests.ai.allocation.support import write_trades

REPO = Path(__file__).resolve().parents[1]
TOML = """
[strategy_agent]
window_periods = 5
market_window_candles = 24
"""
REPORT = "import sys; print('TORCH=' + str(any(m == 'torch' or m.startswith('torch.') for m in sys.modules)))"
STARTUP = {
    "weights_bridge": "from agents.weights_bridge import run_once; run_once(load_config())",
    "paper_trader": "from agents.paper_trader import main; assert main(['--replay', '--speed', '0', "
                    "'--max-candles', '10']) == 0",
    "rl_inference": "from ai.allocation.inference import update_once; update_once(load_config())",
    "performance_tracker": "from analytics.performance.daemon import main; assert main(['--track']) == 0; "
                           "main(['--report'])",
    "portfolio_optimizer": "from analytics import portfolio_optimizer as po; po.run_once(load_config())",
    "strategy_lab": "from analytics import strategy_lab as lab; lab.run_once(load_config())",
    "qlearning": "from ai.tabular.cli import main; assert main(['--once']) == 0",
    "shadow_ppo": "from ai.trading.shadow_daemon import run_daemon; assert run_daemon(load_config(), "
                  "max_decisions=1) == 0",
}


@pytest.fixture
def home(rl_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """A home with trades, a strategy-weight model, a trading model and the trader's clock."""
    toml = tmp_path / "lean.toml"
    toml.write_text(TOML)
    monkeypatch.setenv("RL_SYSTEM_CONFIG", str(toml))
    cfg = load_config(toml)
    write_trades(cfg, 300, days=60)
    small = PPOConfig(hidden_sizes=[16, 16], device="cpu", threads=1)
    weights = PPO(None, small, action_spec=ActionSpec("simplex", 8), obs_dim=42)
    save_candidate(weights, cfg, checkpoint_extra(cfg.strategy_agent, 1, {"end": "2024-01-01T00:00:00+00:00"}))
    promote_candidate(cfg)
    ts = load_candles(cfg, ["BTC/USDT"])["BTC/USDT"]["timestamp"].to_numpy()
    trading = PPO(None, small, action_spec=ActionSpec("discrete", N_ACTIONS), obs_dim=len(FEATURE_NAMES))
    trained = {"start": int(ts[0]), "end": int(ts[100]), "start_time": "-", "end_time": "-", "bars": 101}
    trading.save(model_path(cfg), extra_meta={"kind": MODEL_KIND, "features": list(FEATURE_NAMES),
                                              "train_range": trained})
    publish_json(status_path(cfg), "paper_trader", {"symbol": "BTC/USDT", "timeframe": "1h",
                                                    "last_candle": {"timestamp": int(ts[2000])}, "equity": 1e4})
    return cfg


def start(name: str, env: dict[str, str]) -> subprocess.Popen[str]:
    code = f"from core.config import load_config; {STARTUP[name]}; {REPORT}"
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env={**env, "RL_SYSTEM_LOG_CONSOLE": "0"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_daemons_that_do_not_train_never_import_torch(home: Config, tmp_path: Path) -> None:
    # All at once; the trader replays in a home of its own, so its clock does not move the shadow daemon's.
    own_home = {**os.environ, "RL_SYSTEM_HOME": str(tmp_path / "trader_home")}
    procs = {name: start(name, own_home if name == "paper_trader" else dict(os.environ)) for name in STARTUP}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, f"{name}: {err[-2000:]}"
        assert "TORCH=False" in out, f"{name} imported torch"
    assert json.loads((home.runtime_dir / "rl_strategy_weights.json").read_text())["model_version"] == 1
    assert len(read_jsonl(decisions_path(home))) == 1  # the shadow daemon decided with the numpy policy


def test_the_ppo_package_still_exports_every_name_on_first_use() -> None:
    for name in ai.ppo.__all__:
        assert getattr(ai.ppo, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        ai.ppo.nothing  # noqa: B018
