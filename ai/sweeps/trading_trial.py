"""One trial of the trading agent: train on a symbol's training window, benchmark on its test window.

The same steps as ``python ai/shadow_ppo.py benchmark --train-episodes N``, with the functions the daemon and
that command use (:func:`ai.trading.training.train_agent`, :func:`ai.trading.benchmark.evaluate_window`,
:func:`ai.trading.benchmark.benchmark_document`): the candles are split at ``trading_agent.train_frac``, a fresh
PPO trains for ``trading_agent.train_episodes`` episodes on the training window, and the policy is measured
out of sample against Buy & Hold, MA crossover and Random with the rollout gate of the benchmark. Unlike the
command it takes no training lock and publishes nothing in ``runtime/``: trials run side by side, and each
writes only to its own folder (checkpoint, learning curve, ``benchmark.json`` for ``promote``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ai.trading.benchmark import (
    benchmark_document,
    evaluate_window,
    features_for,
    resolve_periods_per_year,
    split_index,
)
from ai.trading.common import CandleSet, TradingModel, file_sha256, load_candle_set, window_info
from ai.trading.training import model_meta, train_agent
from core.atomic import atomic_write_json
from core.config import Config, replace_section
from core.contracts.experiments import BENCHMARK_NAME, CHECKPOINT_NAME

MA_WINDOWS = (10, 20)
"""The MA crossover baseline's windows (the benchmark command's defaults)."""


def trading_candles(cfg: Config, symbol: str, candles_file: str | None, sweep_symbols: Sequence[str] = ()
                    ) -> CandleSet:
    """The trial's candles: a CSV file, or ``trading_agent.lookback_hours`` of the symbol from the source.

    The sweep's symbols join ``market.symbols`` after the configured ones, so in the synthetic market (where a
    symbol's path depends on its place) two symbols of one sweep never share a path."""
    extra = [s for s in sweep_symbols if s not in cfg.market.symbols]
    local = replace_section(cfg, "market", symbols=[*cfg.market.symbols, *extra])
    return load_candle_set(local, candles_file=candles_file, symbol=None if candles_file else symbol,
                           min_candles=2 * (cfg.trading_agent.warmup_candles + 2))


def run_trading_trial(cfg: Config, symbol: str, candles_file: str | None, folder: Path,
                      sweep_symbols: Sequence[str] = ()) -> tuple[dict[str, Any], str]:
    """Train and benchmark; returns (metrics, checkpoint path)."""
    ta = cfg.trading_agent
    candle_set = trading_candles(cfg, symbol, candles_file, sweep_symbols)
    frame = candle_set.frame
    split = split_index(len(frame), ta.train_frac)
    periods = resolve_periods_per_year(cfg, candle_set.timeframe, None)
    train_set = CandleSet(frame.iloc[:split].reset_index(drop=True), candle_set.symbol, candle_set.timeframe,
                          candle_set.data_source)
    result = train_agent(cfg, train_set.frame, ta.train_episodes, log_dir=folder, fee=cfg.costs.fee)
    meta = model_meta(train_set, split, result)
    checkpoint = result.agent.save(folder / CHECKPOINT_NAME, extra_meta=dict(meta))
    model = TradingModel(result.agent.policy.eval(), result.agent.checkpoint_meta(dict(meta)), checkpoint,
                         file_sha256(checkpoint))
    window = evaluate_window(cfg, features_for(candle_set, cfg), split, model, cfg.costs.fee, ta.benchmark_episodes,
                             periods, *MA_WINDOWS)
    model_info = {"source": "experiment", "saved": True, "path": str(checkpoint), "sha256": model.sha256,
                  "trained_range": meta["train_range"], "episodes": ta.train_episodes}
    doc = benchmark_document(cfg, candle_set, split, window, fee=cfg.costs.fee, periods_per_year=periods,
                             episodes=ta.benchmark_episodes, ma=MA_WINDOWS, train_frac=ta.train_frac,
                             train_window=window_info(frame, 0, split), in_sample=False, model_info=model_info)
    atomic_write_json(folder / BENCHMARK_NAME, doc)
    return trading_metrics(doc, result.metrics), str(checkpoint)


def trading_metrics(doc: Mapping[str, Any], training: Mapping[str, Any]) -> dict[str, Any]:
    """The leaderboard's figures from a benchmark document (None where undefined)."""
    rl = doc["rl_v3_metrics"]
    baselines = {name: doc[f"{name}_metrics"]["sharpe_ratio"] for name in ("buy_hold", "moving_avg", "random")}
    return {
        "sharpe": rl["sharpe_ratio"], "total_return": rl["total_return"], "max_drawdown": rl["max_drawdown"],
        "win_rate": rl["win_rate"], "n_trades": rl["n_trades"],
        **{f"{name}_sharpe": value for name, value in baselines.items()},
        "gate_passed": bool(doc["gate"]["passed"]), "winner": doc["winner"], "data_source": doc["data_source"],
        "test_start": doc["test_window"]["start_time"], "test_end": doc["test_window"]["end_time"],
        "timesteps": training.get("timesteps"),
    }
