"""Helpers shared by the trader's tests: a round-number configuration, a fresh trader, and feeding it candles."""

from __future__ import annotations

from agents.paper_trader import check_trader_config
from agents.trader import PaperTrader
from agents.trader_state import fresh_state
from core.config import STRATEGIES, Config, config_from_dict

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def trader_cfg() -> Config:
    """Round numbers for hand computation: 1000 of equity, 0.1 % fee, 1 % slippage, hourly candles."""
    return config_from_dict({"costs": {"fee": 0.001, "slippage": 0.01}, "trader": {"initial_equity": 1000.0},
                             "market": {"timeframe": "1h"}})

def make_trader(cfg: Config) -> PaperTrader:
    costs = check_trader_config(cfg)
    return PaperTrader(cfg, "replay", fresh_state(cfg, costs))

def feed(trader: PaperTrader, closes: list[float], targets: list[dict[str, float]]) -> list[dict]:
    """Process candles T0, T0+1h, ... with the given closes and targets; returns every closed trade."""
    closed = []
    for k, (close, tgt) in enumerate(zip(closes, targets, strict=True)):
        closed += trader.process(T0 + k * HOUR, close, tgt)
    return closed

def weights_with(**chosen: float) -> dict[str, float]:
    """Weights summing to 1: the chosen ones, the rest spread equally over the other strategies."""
    others = [s for s in STRATEGIES if s not in chosen]
    rest = (1.0 - sum(chosen.values())) / len(others)
    return {s: chosen.get(s, rest) for s in STRATEGIES}
