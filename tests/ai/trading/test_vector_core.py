"""The fast cores of ``TradingVectorEnv`` (numba and numpy kernels) against the reference core, bit for bit."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from ai.trading import vector_env
from ai.trading.account import Account
from ai.trading.features import assemble
from ai.trading.market_features import MarketFeatures
from ai.trading.options import env_options
from ai.trading.vector_core import VectorEpisodes
from ai.trading.vector_env import TradingVectorEnv
from tests.ai.trading.support import OPTION_SETS, assert_same, real_features, synthetic_features

KERNELS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(not vector_env.numba_available(),
                                                                   reason="numba is not installed"))]


def run_both(features: MarketFeatures, kernel: str, n: int, steps: int, seed: int, **options: object) -> int:
    """Step the fast and the reference vector env with the same random actions; returns the episodes ended."""
    fast = TradingVectorEnv(features=features, num_envs=n, kernel=kernel, **options)
    reference = TradingVectorEnv(features=features, num_envs=n, reference=True, **options)
    ends: list[tuple[int, float, int]] = []
    fast.on_episode_end = lambda *end: ends.append(end)
    assert_same(fast.reset(seed=seed), reference.reset(seed=seed), "first reset")
    rng = np.random.default_rng(seed)
    for t in range(steps):
        actions = rng.integers(6, size=n)
        assert_same(fast.step(actions), reference.step(actions), f"step {t}")
        if t == steps // 2:  # a reset in the middle, with new seeds
            assert_same(fast.reset(seed=seed + 100), reference.reset(seed=seed + 100), "second reset")
    assert (fast.steps_taken, fast.episodes_completed) == (reference.steps_taken, reference.episodes_completed)
    assert_same(list(fast.episode_returns), list(reference.episode_returns), "episode returns")
    assert len(ends) == fast.episodes_completed
    return fast.episodes_completed


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("name", sorted(OPTION_SETS))
def test_fast_core_equals_the_reference_on_synthetic_candles(kernel: str, name: str) -> None:
    ended = run_both(synthetic_features(), kernel, 7, 300, seed=4, **OPTION_SETS[name])
    assert ended >= (0 if name == "defaults" else 40)


@pytest.mark.parametrize("kernel", KERNELS)
def test_fast_core_equals_the_reference_on_real_candles(kernel: str) -> None:
    features = real_features()
    assert run_both(features, kernel, 16, 400, seed=9, **OPTION_SETS["leveraged"]) >= 60
    assert run_both(features, kernel, 3, 200, seed=2, **OPTION_SETS["defaults"]) == 0


@pytest.mark.parametrize("kernel", KERNELS)
def test_observations_equal_the_reference_assembly_for_any_account_state(kernel: str) -> None:
    features = synthetic_features(300)
    opts = env_options(warmup_candles=0, max_exposure=2.0)
    n = 200
    core = VectorEpisodes(features, opts, n, kernel)
    rng = np.random.default_rng(1)
    choices = np.array([0.0, -0.0, 1e-300, 0.3, 1.0, 5e4, 1e308])
    account = Account(exposure=rng.choice([0.0, -0.0, 0.25, -1.5, 2.0], n), equity=rng.choice(choices, n),
                      peak=rng.choice(choices, n), open_equity=rng.choice(choices, n),
                      holding=rng.integers(0, 900, n).astype(float), exposure_change=rng.choice([0.0, -2.0, 4.0], n))
    core.state[:] = np.stack([account.exposure, account.equity, account.peak, account.open_equity, account.holding,
                              account.exposure_change])
    core.index[:] = rng.integers(len(features), size=n)
    with np.errstate(all="ignore"):
        expected = assemble(features.values[core.index], account.raw_features(features.direction[core.index], opts))
    assert_same(core.observations(np.arange(n)), expected)
    some = np.array([5, 0, 199, 5])
    assert_same(core.observations(some), expected[some])


@pytest.mark.parametrize("kernel", KERNELS)
def test_an_invalid_action_is_refused_and_changes_nothing(kernel: str) -> None:
    env = TradingVectorEnv(features=synthetic_features(300), num_envs=3, kernel=kernel)
    env.reset(seed=0)
    env.step(np.array([1, 2, 0]))
    before = env._fast.state.copy(), env._fast.index.copy()  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=r"actions must be integers in 0\.\.5, got \[1, 6, 0\]"):
        env.step(np.array([1, 6, 0]))
    assert_same((env._fast.state, env._fast.index), before)  # type: ignore[union-attr]


def test_auto_uses_numba_when_importable_and_numpy_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    features = synthetic_features(300)
    expected = "numba" if vector_env.numba_available() else "numpy"
    assert TradingVectorEnv(features=features, num_envs=2).kernel == expected
    monkeypatch.setitem(sys.modules, "numba", None)  # an import of numba now fails, as without the fast extra
    assert not vector_env.numba_available()
    assert TradingVectorEnv(features=features, num_envs=2).kernel == "numpy"
    monkeypatch.delitem(sys.modules, "ai.trading.numba_kernel", raising=False)
    with pytest.raises(ValueError, match=r"kernel 'numba' needs numba .*install the fast extra"):
        TradingVectorEnv(features=features, num_envs=2, kernel="numba")
    assert TradingVectorEnv(features=features, num_envs=2, reference=True).kernel == "reference"
    with pytest.raises(ValueError, match="kernel must be one of auto, numba, numpy, got 'cuda'"):
        TradingVectorEnv(features=features, num_envs=2, kernel="cuda")
