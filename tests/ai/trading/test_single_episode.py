"""The single-episode fast path of ``TradingEnv`` against the reference core: bit-identical transitions."""

from __future__ import annotations

import numpy as np
import pytest

from ai.trading.account import Account
from ai.trading.env import TradingEnv
from ai.trading.features import assemble
from ai.trading.market_features import MarketFeatures
from ai.trading.options import env_options
from ai.trading.single_episode import SingleEpisode
from tests.ai.trading.support import OPTION_SETS, assert_same, real_features, synthetic_features


def run_both(features: MarketFeatures, steps: int, seed: int, **options: object) -> tuple[int, int]:
    """Step the fast and the reference env with the same random actions; (episodes ended, of them wiped out)."""
    fast = TradingEnv(features=features, **options)
    reference = TradingEnv(features=features, reference=True, **options)
    assert_same(fast.reset(seed=seed), reference.reset(seed=seed), "first reset")
    rng = np.random.default_rng(seed)
    ended = wiped = 0
    for t in range(steps):
        action = int(rng.integers(6))
        mine = fast.step(action)
        assert_same(mine, reference.step(np.int64(action)), f"step {t}")
        if mine[2] or mine[3]:
            ended += 1
            wiped += int(mine[2])
            again = {"seed": seed + ended} if ended % 3 == 0 else {}  # seeded and unseeded resets
            assert_same(fast.reset(**again), reference.reset(**again), f"reset after step {t}")
    assert_same(fast.account.row(), reference.account.row(), "account")
    return ended, wiped


@pytest.mark.parametrize("name", sorted(OPTION_SETS))
def test_fast_path_equals_the_reference_on_synthetic_candles(name: str) -> None:
    ended, _ = run_both(synthetic_features(), 1500, seed=5, **OPTION_SETS[name])
    assert ended >= 1 if name == "defaults" else ended >= 20


def test_fast_path_equals_the_reference_on_real_candles() -> None:
    features = real_features()
    ended, wiped = run_both(features, 2500, seed=1, **OPTION_SETS["leveraged"])
    assert ended >= 40 and wiped >= 1  # both kinds of episode end were exercised
    run_both(features, 1000, seed=2, start_index=100, episode_length=None)


def test_observations_equal_the_reference_assembly_for_any_account_state() -> None:
    """Account states the environment rarely reaches (zero equity, zero peak, zero open equity, huge
    equity, flips) give the reference's values, undefined features included (their table defaults)."""
    features = synthetic_features(300)
    opts = env_options(warmup_candles=0, max_exposure=2.0)
    episode = SingleEpisode(features, opts)
    rng = np.random.default_rng(0)
    choices = [0.0, -0.0, 1e-300, 0.3, 1.0, 5e4, 1e308]
    for trial in range(400):
        state = {"exposure": float(rng.choice([0.0, -0.0, 0.25, -1.5, 2.0])),
                 "equity": float(rng.choice(choices)), "peak": float(rng.choice(choices)),
                 "open_equity": float(rng.choice(choices)), "holding": float(rng.integers(0, 900)),
                 "exposure_change": float(rng.choice([0.0, -2.0, 0.5, 4.0]))}
        episode.index = int(rng.integers(len(features)))
        for key, value in state.items():
            setattr(episode, key, value)
        k = np.array([episode.index])
        with np.errstate(all="ignore"):
            expected = assemble(features.values[k], Account.from_row(state).raw_features(features.direction[k], opts))
        assert_same(episode.observation(), expected[0], f"trial {trial}: {state}")


def test_invalid_actions_and_steps_before_reset_are_refused_on_both_paths() -> None:
    features = synthetic_features(300)
    for reference in (False, True):
        env = TradingEnv(features=features, reference=reference)
        with pytest.raises(RuntimeError, match="call reset"):
            env.step(0)
        env.reset(seed=0)
        for bad in (6, -1):
            with pytest.raises(ValueError, match=r"not one of 0\.\.5 \(HOLD, LONG"):
                env.step(bad)
