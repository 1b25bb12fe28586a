"""The strategy-weight environment: Gymnasium's checker, no look-ahead through the environment, the reward
against a hand computation, episode windows and ends, the period returns' aggregation."""

from __future__ import annotations

import dataclasses
import math
import statistics
import warnings
from datetime import date

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

from ai.allocation.env import StrategyWeightEnv, history_from_frames, reward_parts
from ai.allocation.features import (
    FEATURE_NAMES,
    N_FEATURES,
    TradeArrays,
    build_history,
)
from analytics.returns import daily_strategy_returns
from core.config import STRATEGIES, Config, StrategyAgentConfig, replace_section

DAY = pd.Timedelta(days=1)
START = pd.Timestamp("2024-01-02", tz="UTC")


def random_trades(n: int, days: int, seed: int = 0, start: pd.Timestamp = START) -> pd.DataFrame:
    """``n`` trades of random strategies closing at random times over ``days`` days."""
    rng = np.random.default_rng(seed)
    closed = start + pd.to_timedelta(np.sort(rng.uniform(0, days * 24, n)), unit="h")
    return pd.DataFrame({
        "closed_at": closed,
        "strategy": [STRATEGIES[i] for i in rng.integers(0, len(STRATEGIES), n)],
        "pnl_pct": rng.normal(0.001, 0.01, n),
    })


def hourly_candles(hours: int, seed: int = 0, start: pd.Timestamp = START - 10 * DAY) -> pd.DataFrame:
    """A random walk of hourly candles (the market features' input)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.004, hours)))
    open_ = np.r_[close[0], close[:-1]]
    ts = int(start.value // 1_000_000) + np.arange(hours, dtype=np.int64) * 3_600_000
    return pd.DataFrame({"timestamp": ts, "open": open_, "high": np.maximum(open_, close) * 1.001,
                         "low": np.minimum(open_, close) * 0.999, "close": close,
                         "volume": rng.uniform(1.0, 3.0, hours)})


def small_config(**changes: object) -> Config:
    agent = {"window_periods": 5, "market_window_candles": 24, "episode_length": 10, **changes}
    return replace_section(Config(), "strategy_agent", **agent)


@pytest.fixture
def history_env() -> StrategyWeightEnv:
    cfg = small_config()
    history = history_from_frames(cfg, random_trades(400, 40), hourly_candles(60 * 24))
    return StrategyWeightEnv(history, cfg.strategy_agent)


# ---------------------------------------------------------------------------------------------- gymnasium


def test_gymnasium_check_env_passes(history_env: StrategyWeightEnv) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes about render modes and non-[-1, 1] action boxes, not failures
        check_env(history_env, skip_render_check=True)


def test_spaces_are_the_simplex_action_and_42_bounded_features(history_env: StrategyWeightEnv) -> None:
    assert history_env.action_space.shape == (8,)
    assert float(history_env.action_space.low.min()) == 0.0 and float(history_env.action_space.high.max()) == 1.0
    assert history_env.observation_space.shape == (42,) and len(FEATURE_NAMES) == 42 == N_FEATURES
    assert float(history_env.observation_space.low.min()) == -5.0


def test_same_seed_same_episode_and_seeds_pick_different_windows(history_env: StrategyWeightEnv) -> None:
    obs_a, info_a = history_env.reset(seed=7)
    obs_b, info_b = history_env.reset(seed=7)
    assert info_a["period"] == info_b["period"] and np.array_equal(obs_a, obs_b)
    starts = {history_env.reset(seed=s)[1]["period"] for s in range(30)}
    assert len(starts) > 5  # random windows of the history
    assert min(starts) >= history_env.acfg.window_periods  # a full look-back behind every random start
    assert max(starts) <= history_env.history.n_periods - history_env.max_length


def test_episode_is_truncated_at_the_end_of_its_window(history_env: StrategyWeightEnv) -> None:
    history_env.reset(seed=1, options={"start": 10, "length": 3})
    flags = [history_env.step(np.full(8, 0.125))[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    with pytest.raises(RuntimeError, match="reset"):
        history_env.step(np.full(8, 0.125))


def test_a_total_loss_terminates_the_episode() -> None:
    cfg = small_config()
    trades = random_trades(200, 20)
    ruin = pd.DataFrame({"closed_at": [START + 12 * DAY + pd.Timedelta(hours=5)], "strategy": ["vix_strategy"],
                         "pnl_pct": [-1.5]})
    history = history_from_frames(cfg, pd.concat([trades, ruin], ignore_index=True), None)
    env = StrategyWeightEnv(history, cfg.strategy_agent)
    k = int(np.searchsorted(history.grid.boundaries, ruin["closed_at"].iloc[0].value // 1_000_000)) - 1
    env.reset(options={"start": k, "length": 3})
    all_in = np.eye(8)[STRATEGIES.index("vix_strategy")]
    obs, _, terminated, truncated, info = env.step(all_in)
    assert terminated and not truncated and info["equity"] == 0.0
    assert np.all(np.isfinite(obs))


# ---------------------------------------------------------------------------------------------- actions


def test_observations_stay_finite_and_bounded_on_extreme_data() -> None:
    cfg = small_config()
    trades = random_trades(300, 30)
    trades.loc[::7, "pnl_pct"] = 50.0  # absurd wins
    trades.loc[3::11, "pnl_pct"] = -0.99
    candles = hourly_candles(50 * 24)
    candles.loc[: 24 * 20, ["open", "high", "low", "close"]] = 100.0  # flat prices: zero volatility
    candles.loc[:, "volume"] = 0.0  # no volume at all
    env = StrategyWeightEnv(history_from_frames(cfg, trades, candles), cfg.strategy_agent)
    obs, _ = env.reset(options={"start": 0, "length": env.history.n_periods})
    rng = np.random.default_rng(0)
    done = False
    while not done:
        assert np.all(np.isfinite(obs)) and np.all(np.abs(obs) <= 5.0)
        obs, reward, terminated, truncated, _ = env.step(rng.dirichlet(np.full(8, 0.3)))
        assert math.isfinite(reward)
        done = terminated or truncated


# ---------------------------------------------------------------------------------------------- look-ahead


def observation_at(trades: pd.DataFrame, candles: pd.DataFrame, end: pd.Timestamp, at: pd.Timestamp,
                   cfg: Config) -> np.ndarray:
    history = history_from_frames(cfg, trades, candles, end=end)
    k = int(np.flatnonzero(history.grid.boundaries == at.value // 1_000_000)[0])
    env = StrategyWeightEnv(history, cfg.strategy_agent)
    start = k - 3
    obs, _ = env.reset(options={"start": start, "length": 3})
    for w in np.random.default_rng(5).dirichlet(np.ones(8), size=3):  # the same actions in both worlds
        obs, *_ = env.step(w)
    return obs


def test_features_at_t_do_not_change_when_future_trades_and_candles_are_appended() -> None:
    cfg = small_config()
    t = START + 25 * DAY + pd.Timedelta(hours=7)
    past = random_trades(300, 30, seed=1)
    past = past[past["closed_at"] <= t].reset_index(drop=True)
    later_candles = hourly_candles(50 * 24, seed=2)
    candles = later_candles[later_candles["timestamp"] + 3_600_000 <= t.value // 1_000_000]
    before = observation_at(past, candles, t, t, cfg)
    assert np.count_nonzero(before[[0, 1, 2, 5, 30]]) == 5  # the candle features are really in play

    future = random_trades(200, 10, seed=3, start=t + pd.Timedelta(milliseconds=1))
    end = t + 10 * DAY
    after = observation_at(pd.concat([past, future], ignore_index=True), later_candles, end, t, cfg)
    np.testing.assert_array_equal(before, after)

    # The check can fail: one more trade at or before t does change the state at t.
    extra = pd.DataFrame({"closed_at": [t], "strategy": ["turtle_trading"], "pnl_pct": [0.05]})
    changed = observation_at(pd.concat([past, extra, future], ignore_index=True), later_candles, end, t, cfg)
    assert not np.array_equal(before, changed)


def test_a_candle_counts_only_once_it_has_closed() -> None:
    cfg = small_config()
    candles = hourly_candles(20 * 24)
    history = history_from_frames(cfg, random_trades(100, 5, start=START), candles,
                                  end=START + pd.Timedelta(hours=5, minutes=30))
    t_ms = int(history.grid.boundaries[-1])
    still_open = candles[candles["timestamp"] + 3_600_000 > t_ms].index[0]
    shocked = candles.copy()
    shocked.loc[still_open:, ["open", "high", "low", "close"]] *= 3.0  # the open candle jumps
    history_shocked = history_from_frames(cfg, random_trades(100, 5, start=START), shocked,
                                          end=START + pd.Timedelta(hours=5, minutes=30))
    np.testing.assert_array_equal(history.base[-1], history_shocked.base[-1])
    shocked.loc[still_open - 1, ["high", "close"]] *= 3.0  # the last closed candle does count
    history_shocked = history_from_frames(cfg, random_trades(100, 5, start=START), shocked,
                                          end=START + pd.Timedelta(hours=5, minutes=30))
    assert not np.array_equal(history.base[-1], history_shocked.base[-1])


# ---------------------------------------------------------------------------------------------- returns and reward


def test_period_returns_match_the_portfolio_optimizers_daily_returns() -> None:
    trades = random_trades(500, 30, seed=4)
    acfg = StrategyAgentConfig(rebalance_period="1d")
    end = START + 31 * DAY  # a midnight: periods (d 00:00, d+1 00:00] are the UTC days
    history = build_history(TradeArrays.from_frame(trades), None, acfg, "1h", "crypto", end.value // 1_000_000)
    daily = daily_strategy_returns(trades, lookback_days=60, as_of=date(2024, 2, 1))
    grid_days = pd.to_datetime(history.grid.boundaries[:-1], unit="ms").normalize()
    ours = pd.DataFrame(history.returns, index=grid_days, columns=list(STRATEGIES))
    common = daily.returns.index.intersection(ours.index)
    assert len(common) == 31  # 2024-01-02 .. 2024-02-01
    np.testing.assert_allclose(ours.loc[common].to_numpy(), daily.returns.loc[common].to_numpy(), atol=1e-12)


def test_reward_components_match_a_hand_computation() -> None:
    # The seed's weights of the three components, set explicitly so each component is exercised (the default is
    # the P&L alone, checked below).
    acfg = StrategyAgentConfig(window_periods=3, turnover_cost=0.002, sharpe_scale=3.0, pnl_scale=0.01,
                               drawdown_scale=0.1, reward_sharpe_weight=0.6, reward_pnl_weight=0.3,
                               reward_drawdown_weight=0.1)
    noon = pd.Timedelta(hours=12)
    # Period returns by day (index 0 = turtle_trading, 1 = mean_reversion_rsi); other strategies do not trade.
    table = {0: (0.02, -0.01), 1: (-0.03, 0.01), 2: (0.01, 0.02), 3: (-0.02, 0.04), 4: (0.03, -0.05)}
    rows = [(START + d * DAY + noon, STRATEGIES[i], r) for d, pair in table.items() for i, r in enumerate(pair)]
    trades = pd.DataFrame(rows, columns=["closed_at", "strategy", "pnl_pct"])
    end = START + 5 * DAY
    history = build_history(TradeArrays.from_frame(trades), None, acfg, "1h", "crypto", end.value // 1_000_000)
    assert history.n_periods == 5
    env = StrategyWeightEnv(history, acfg)
    env.reset(options={"start": 3, "length": 2})

    w1 = np.array([0.6, 0.4, 0, 0, 0, 0, 0, 0])
    w2 = np.array([0.1, 0.9, 0, 0, 0, 0, 0, 0])
    _, reward1, _, _, info1 = env.step(w1)
    _, reward2, _, _, info2 = env.step(w2)

    # By hand: before the episode the sleeve held 1/8 each, so its returns were (R_turtle + R_mr) / 8.
    prefill = [(0.02 - 0.01) / 8, (-0.03 + 0.01) / 8, (0.01 + 0.02) / 8]
    r1 = 0.6 * -0.02 + 0.4 * 0.04 - 0.002 * (abs(0.6 - 0.125) + abs(0.4 - 0.125) + 6 * 0.125)
    r2 = 0.1 * 0.03 + 0.9 * -0.05 - 0.002 * (0.5 + 0.5)
    assert info1["portfolio_return"] == pytest.approx(r1, abs=1e-15)
    assert info2["portfolio_return"] == pytest.approx(r2, abs=1e-15)

    def expected(window: list[float]) -> float:
        sharpe = statistics.mean(window) / statistics.stdev(window) * math.sqrt(365) / 3.0
        equity, peak = 1.0, 1.0
        for r in window:
            equity *= 1 + r
            peak = max(peak, equity)
        penalty = min(max(-(equity / peak - 1) / 0.1, 0.0), 5.0)
        pnl = min(max(window[-1] / 0.01, -5.0), 5.0)
        return 0.6 * min(max(sharpe, -5.0), 5.0) + 0.3 * pnl - 0.1 * penalty

    assert reward1 == pytest.approx(expected(prefill[1:] + [r1]), rel=1e-12)
    assert reward2 == pytest.approx(expected([prefill[2], r1, r2]), rel=1e-12)
    assert info2["drawdown_penalty"] > 0  # the second step lost money: the penalty is really exercised


def test_the_default_reward_is_the_period_return_in_pnl_units() -> None:
    acfg = StrategyAgentConfig(window_periods=3)
    parts = reward_parts([0.01, -0.02, 0.003], acfg, 365.0)
    assert parts.reward == pytest.approx(0.003 / acfg.pnl_scale, rel=1e-12)
    assert parts.reward == pytest.approx(parts.pnl)


def test_reward_weights_come_from_the_config() -> None:
    returns = [0.01, -0.02, 0.015]
    base = StrategyAgentConfig(reward_sharpe_weight=0.6, reward_pnl_weight=0.3, reward_drawdown_weight=0.1)
    parts = reward_parts(returns, base, 365.0)
    only_pnl = dataclasses.replace(base, reward_sharpe_weight=0.0, reward_pnl_weight=1.0, reward_drawdown_weight=0.0)
    assert reward_parts(returns, only_pnl, 365.0).reward == pytest.approx(0.015 / 0.01)
    assert parts.reward == pytest.approx(0.6 * parts.sharpe + 0.3 * parts.pnl - 0.1 * parts.drawdown_penalty)


def test_portfolio_features_describe_the_weights_held() -> None:
    cfg = small_config()
    env = StrategyWeightEnv(history_from_frames(cfg, random_trades(400, 40), None), cfg.strategy_agent)
    obs, _ = env.reset(options={"start": 10, "length": 5})
    names = list(FEATURE_NAMES)
    assert obs[names.index("pf_diversity")] == pytest.approx(1.0)  # equal weights: 8 effective strategies
    assert obs[names.index("pf_position_count")] == pytest.approx(1.0)
    obs, *_ = env.step(np.eye(8)[0])
    assert obs[names.index("pf_diversity")] == pytest.approx(-1.0)  # everything in one strategy
    assert obs[names.index("pf_position_count")] == pytest.approx(1 / 4 - 1)
    assert np.all(obs[[names.index(f) for f in FEATURE_NAMES if f.startswith("mkt_vol")]] == 0.0)  # no candles
