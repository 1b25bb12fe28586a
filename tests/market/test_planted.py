"""Planted-edge markets: the frame contract, determinism, the planted statistics and the rules' causality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.baselines import strategy_metrics
from core.errors import ConfigError
from market.frames import COLUMNS, validate_candles
from market.planted import (
    CALM_VOL,
    PLANTED_KINDS,
    STORMY_VOL,
    PlantedSpec,
    ar1_coefficient,
    generate_planted,
    planted_candles,
    planted_exposures,
    planted_rule,
    regime_volatility_cut,
    rolling_volatility,
)


def _log_returns(frame: pd.DataFrame) -> np.ndarray:
    return np.diff(np.log(frame["close"].to_numpy()))


@pytest.mark.parametrize("kind", PLANTED_KINDS)
def test_every_kind_is_a_valid_candle_frame_and_the_same_seed_gives_the_same_frame(kind: str) -> None:
    frame = planted_candles(kind, 500, seed=3)
    assert tuple(frame.columns) == COLUMNS
    checked, repairs = validate_candles(frame, "planted")
    assert repairs.total == 0 and len(checked) == 500
    assert np.all(np.diff(frame["timestamp"].to_numpy()) == 3_600_000)
    pd.testing.assert_frame_equal(frame, planted_candles(kind, 500, seed=3))
    assert not frame["close"].equals(planted_candles(kind, 500, seed=4)["close"])


@pytest.mark.parametrize(("kind", "phi"), [("mean_reverting", -0.35), ("momentum", 0.35), ("random_walk", 0.0)])
def test_the_ar_coefficient_of_a_long_sample_is_the_planted_one(kind: str, phi: float) -> None:
    returns = _log_returns(planted_candles(kind, 40_000, seed=1))
    # The AR(1) estimate's standard error is about sqrt((1 - phi^2) / n) = 0.005 here: 0.02 is 4 of them.
    assert ar1_coefficient(returns) == pytest.approx(phi, abs=0.02)
    assert np.std(returns) == pytest.approx(0.006, rel=0.05)


def test_ar1_coefficient_matches_a_hand_computed_value() -> None:
    # Demeaned [1, -1, 1, -1] -> same; sum r_t r_{t-1} = -3, sum r_{t-1}^2 = 3.
    assert ar1_coefficient(np.array([1.0, -1.0, 1.0, -1.0])) == pytest.approx(-1.0)


def test_regime_switching_has_momentum_when_calm_and_mean_reversion_when_stormy() -> None:
    market = generate_planted(PlantedSpec("regime_switching", 40_000, seed=2))
    returns = _log_returns(market.candles)
    stormy = market.stormy[1:]
    both = stormy[1:] == stormy[:-1]  # pairs of returns inside one state
    calm_pairs = both & ~stormy[1:]
    storm_pairs = both & stormy[1:]
    r0, r1 = returns[:-1], returns[1:]
    assert np.dot(r1[calm_pairs], r0[calm_pairs]) / np.dot(r0[calm_pairs], r0[calm_pairs]) == pytest.approx(0.35, abs=0.04)
    assert np.dot(r1[storm_pairs], r0[storm_pairs]) / np.dot(r0[storm_pairs], r0[storm_pairs]) == pytest.approx(-0.35, abs=0.04)
    assert np.std(returns[~stormy]) == pytest.approx(0.006 * CALM_VOL, rel=0.05)
    assert np.std(returns[stormy]) == pytest.approx(0.006 * STORMY_VOL, rel=0.05)
    assert 0.3 < stormy.mean() < 0.7
    # The hidden state is observable from the candles: the rule's volatility reading agrees most of the time.
    reading = rolling_volatility(market.candles["close"].to_numpy(), 24) > regime_volatility_cut(market.spec)
    assert np.mean(reading[100:] == market.stormy[100:]) > 0.85


@pytest.mark.parametrize("kind", ["mean_reverting", "momentum", "regime_switching"])
def test_the_planted_rule_earns_after_fees_where_there_is_an_edge(kind: str) -> None:
    spec = PlantedSpec(kind, 3000, seed=5)
    closes = generate_planted(spec).candles["close"].to_numpy()
    metrics = strategy_metrics(closes[1000:], planted_exposures(spec, closes, 1000, 2999), 0.001, 8760)
    assert metrics["sharpe_ratio"] > 5 and metrics["total_return"] > 0.3


def test_mean_reversion_rule_fades_and_momentum_rule_follows_a_move_above_the_threshold() -> None:
    closes = np.array([100.0, 101.0, 101.1, 100.0])  # +1 %, +0.1 % (below 0.4 %), -1.1 %
    assert planted_rule(PlantedSpec("mean_reverting"), closes).tolist() == [0.0, -1.0, 0.0, 1.0]
    assert planted_rule(PlantedSpec("momentum"), closes).tolist() == [0.0, 1.0, 0.0, -1.0]
    assert planted_rule(PlantedSpec("random_walk"), closes).tolist() == [0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("kind", PLANTED_KINDS)
def test_the_rule_uses_no_future_candle(kind: str) -> None:
    spec = PlantedSpec(kind, 400, seed=9)
    closes = generate_planted(spec).candles["close"].to_numpy()
    full = planted_rule(spec, closes)
    changed = closes.copy()
    changed[300:] *= np.exp(np.linspace(0.0, 0.5, 100))  # rewrite the future after candle 299
    assert np.array_equal(planted_rule(spec, changed)[:300], full[:300])
    assert np.array_equal(planted_exposures(spec, closes, 250, 300), full[250:300])


def test_a_bad_spec_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="kind 'sideways'"):
        PlantedSpec("sideways")
    with pytest.raises(ConfigError, match="phi must be in"):
        PlantedSpec("momentum", phi=1.0)
    with pytest.raises(ConfigError, match="timeframe"):
        PlantedSpec("momentum", timeframe="1x")
