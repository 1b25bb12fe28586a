"""PPO rows: CartPole-v1 against Stable-Baselines3 (at equal settings and at rl-baselines3-zoo's), PPO on the
trading environment against SB3 on the same environment, and one trading-agent prediction.

Times are training wall times (environment steps and updates, not the evaluation; on the trading environment
ours also counts building its vector environment and features, SB3's are built before its clock starts);
returns are the mean of deterministic evaluation episodes scored by the same function for both
(:func:`ai.ppo.evaluate`). Each figure is the median over seeds ``0..repeats-1``. The prediction row loads the
model with :func:`ai.trading.common.load_model` and calls ``predict`` on single observations, as the shadow
daemon does.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bench_ppo
import gymnasium as gym
import numpy as np

from ai.ppo import build_config, evaluate
from ai.trading.common import CandleSet, load_model
from ai.trading.env import TradingEnv
from ai.trading.options import options_from_config
from ai.trading.training import install_model, model_meta, trading_ppo_config, train_agent, training_features
from benchmarks.rows import INSTALL_PEERS, Row, at_most, seconds_text
from benchmarks.stats import call_latencies, median, percentile, ratio
from core.config import Config, PPOConfig, replace_section
from core.contracts.trading_model import model_path
from market.synthetic import generate_market

CARTPOLE = "CartPole-v1"
RETURN_TOLERANCE = 0.95
"""Ours reaches "equal learning" when its median return is at least this share of the peer's."""


@dataclass(frozen=True)
class PPOSizes:
    cartpole_steps: int
    eval_episodes: int
    trading_episodes: int
    """Training budget of the trading rows in episodes of ``trading_agent.episode_length`` steps."""
    trading_candles: int
    predictions: int


QUICK_PPO_SIZES = PPOSizes(cartpole_steps=1_024, eval_episodes=2, trading_episodes=2, trading_candles=1_500,
                           predictions=300)
FULL_PPO_SIZES = PPOSizes(cartpole_steps=100_000, eval_episodes=20, trading_episodes=40, trading_candles=6_000,
                          predictions=5_000)


@dataclass(frozen=True)
class Run:
    train_s: float
    eval_return: float


def _median_run(runs: list[Run]) -> Run:
    return Run(median([r.train_s for r in runs]), median([r.eval_return for r in runs]))


def _run_text(run: Run) -> str:
    return f"{seconds_text(run.train_s)}, return {run.eval_return:.1f}"


RL_ZOO_CARTPOLE_ENVS = 8
RL_ZOO_CARTPOLE = PPOConfig(learning_rate=1e-3, anneal_lr=True, n_steps=32, batch_size=256, n_epochs=20,
                            gamma=0.98, gae_lambda=0.8, ent_coef=0.0, clip_range=0.2, clip_range_vf=0.0,
                            vf_coef=0.5, max_grad_norm=0.5, hidden_sizes=[64, 64], activation="tanh")
"""rl-baselines3-zoo's published CartPole-v1 PPO hyperparameters (hyperparams/ppo.yml) on SB3's defaults
(value coefficient 0.5, gradient clip 0.5, 64x64 tanh networks, Adam eps 1e-5), whatever our preset is."""


def rl_zoo_cartpole(seed: int) -> dict[str, Any]:
    """SB3 arguments of rl-baselines3-zoo's tuned CartPole-v1 PPO (8 envs x 32 steps, batch 256, 20 epochs,
    gamma 0.98, lambda 0.8, no entropy bonus, step size 1e-3 and clip 0.2 both annealed linearly)."""
    kwargs = bench_ppo.sb3_kwargs(dataclasses.replace(RL_ZOO_CARTPOLE, seed=seed))
    kwargs["clip_range"] = lambda remaining: 0.2 * remaining
    return kwargs


def cartpole_runs(sizes: PPOSizes, seed: int, sb3: bool) -> dict[str, Run]:
    """One seed: ours with the validation preset; with ``sb3``, SB3 at equal settings and at rl-zoo's."""
    cfg, num_envs = build_config(CARTPOLE, seed, {}, use_preset=True)
    cfg = dataclasses.replace(cfg, device="cpu", threads=1)
    envs = num_envs or 8
    ours = bench_ppo.run_ours(CARTPOLE, cfg, envs, sizes.cartpole_steps, sizes.eval_episodes)
    runs = {"ours": Run(ours["train_s"], ours["eval_return"])}
    if sb3:
        equal = bench_ppo.run_sb3(CARTPOLE, cfg, envs, sizes.cartpole_steps, sizes.eval_episodes, "cpu")
        runs["sb3_equal"] = Run(equal["train_s"], equal["eval_return"])
        runs["sb3_zoo"] = _sb3_run(lambda: make_sb3_vec(CARTPOLE, RL_ZOO_CARTPOLE_ENVS, seed),
                                   rl_zoo_cartpole(seed), seed, sizes.cartpole_steps, lambda: gym.make(CARTPOLE),
                                   sizes.eval_episodes)
    return runs


def make_sb3_vec(env_id: str, n_envs: int, seed: int) -> Any:
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    return sb3_make_vec_env(env_id, n_envs=n_envs, seed=seed)


def _sb3_run(make_env: Callable[[], Any], kwargs: dict[str, Any], seed: int, steps: int,
             make_eval_env: Callable[[], gym.Env], eval_episodes: int) -> Run:
    from stable_baselines3 import PPO as SB3PPO

    with warnings.catch_warnings():
        # The trading budget splits into rollouts that minibatches do not divide evenly; both sides train so.
        warnings.filterwarnings("ignore", message="You have specified a mini-batch size")
        model = SB3PPO("MlpPolicy", make_env(), seed=seed, device="cpu", verbose=0, **kwargs)
    started = time.perf_counter()
    model.learn(steps)
    train_s = time.perf_counter() - started
    returns = evaluate(lambda obs: model.predict(obs, deterministic=True)[0], make_eval_env, eval_episodes,
                       seed=seed + 10_000)
    return Run(train_s, float(np.mean(returns)))


def sb3_installed() -> bool:
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        return False
    return True


def cartpole_rows(sizes: PPOSizes, repeats: int) -> list[Row]:
    """Ours against SB3 at equal settings and at rl-zoo's settings (training time and return)."""
    sb3 = sb3_installed()
    per_seed = [cartpole_runs(sizes, seed, sb3) for seed in range(repeats)]
    ours = _median_run([runs["ours"] for runs in per_seed])
    rows = []
    for key, peer_name in (("sb3_equal", "SB3 PPO, equal settings"), ("sb3_zoo", "SB3 PPO, rl-zoo settings")):
        peer = _median_run([runs[key] for runs in per_seed]) if sb3 else None
        rows.append(_training_row(f"ppo_cartpole_{key.removeprefix('sb3_')}",
                                  f"PPO CartPole-v1, {sizes.cartpole_steps:,} steps (training time, return)",
                                  peer_name, ours, peer, ">= 3x at equal learning", 3.0))
    return rows


def _training_row(key: str, what: str, peer_name: str, ours: Run, peer: Run | None, goal: str,
                  goal_ratio: float | None) -> Row:
    value = ratio(ours.train_s, peer.train_s if peer else None, higher_is_better=False)
    learned = peer is None or ours.eval_return >= peer.eval_return - abs(peer.eval_return) * (1 - RETURN_TOLERANCE)
    met: bool | None = None
    note = "peer missing" if peer is None else ""
    if value is not None and peer is not None:
        fast_enough = goal_ratio is None or value >= goal_ratio
        met = fast_enough and learned
        if not learned:
            note = f"return {ours.eval_return:.1f} below the peer's {peer.eval_return:.1f}"
        elif not fast_enough:
            note = f"{value:.2f}x of the {goal_ratio:g}x asked"
    return Row(key, what, peer_name, peer.train_s if peer else None,
               _run_text(peer) if peer else INSTALL_PEERS, ours.train_s, _run_text(ours), "s", value, goal,
               met, note)


# ------------------------------------------------------------------------------------------ trading PPO


def trading_candles(count: int) -> CandleSet:
    frame = generate_market(["BTC/USDT"], count, seed=7).candles["BTC/USDT"].reset_index(drop=True)
    return CandleSet(frame, "BTC/USDT", "1h", "synthetic")


def trading_runs(cfg: Config, candles: CandleSet, sizes: PPOSizes, seed: int, sb3: bool,
                 install: bool) -> dict[str, Run]:
    """Ours (``TradingVectorEnv``) and SB3 (``TradingEnv`` copies) on the same candles and budget."""
    agent_cfg = _with_seed(cfg, seed)
    options = options_from_config(agent_cfg)
    features = training_features(candles.frame, options.high_volatility_percentile,
                                 agent_cfg.trading_agent.mirror_training)
    plain = training_features(candles.frame, options.high_volatility_percentile)

    def make_eval_env() -> gym.Env:
        return TradingEnv(features=plain, options=options)

    started = time.perf_counter()
    result = train_agent(agent_cfg, candles.frame, sizes.trading_episodes)
    ours_s = time.perf_counter() - started
    returns = evaluate(result.agent.predict, make_eval_env, sizes.eval_episodes, seed=seed + 10_000)
    runs = {"ours": Run(ours_s, float(np.mean(returns)))}
    if install:
        install_model(agent_cfg, result.agent, model_meta(candles, len(candles.frame), result))
    if sb3:
        from stable_baselines3.common.vec_env import DummyVecEnv

        budget = sizes.trading_episodes * result.episode_steps
        ppo_cfg = trading_ppo_config(agent_cfg, budget)
        envs = agent_cfg.trading_agent.num_envs
        runs["sb3"] = _sb3_run(lambda: DummyVecEnv([lambda: TradingEnv(features=features, options=options)] * envs),
                               bench_ppo.sb3_kwargs(ppo_cfg), seed, budget, make_eval_env, sizes.eval_episodes)
    return runs


def _with_seed(cfg: Config, seed: int) -> Config:
    ppo = dataclasses.replace(cfg.trading_agent.ppo, seed=seed, threads=1, device="cpu")
    return replace_section(cfg, "trading_agent", ppo=ppo)


def trading_rows(cfg: Config, sizes: PPOSizes, repeats: int) -> list[Row]:
    """SB3 on ``TradingEnv`` against ours on ``TradingVectorEnv`` (same budget), then one prediction of the
    model ours trained (through the function the shadow daemon calls)."""
    sb3 = sb3_installed()
    candles = trading_candles(sizes.trading_candles)
    per_seed = [trading_runs(cfg, candles, sizes, seed, sb3, install=seed == 0) for seed in range(repeats)]
    ours = _median_run([runs["ours"] for runs in per_seed])
    peer = _median_run([runs["sb3"] for runs in per_seed]) if sb3 else None
    budget = sizes.trading_episodes * cfg.trading_agent.episode_length
    row = _training_row("ppo_trading", f"PPO on the trading environment, {budget:,} steps (training time, "
                        "return)", "SB3 PPO on `TradingEnv`, equal settings", ours, peer,
                        "faster at an equal return", 1.0)
    return [row, prediction_row(cfg, candles, sizes.predictions)]


def prediction_row(cfg: Config, candles: CandleSet, calls: int) -> Row:
    """p50/p99 of one prediction of the installed model (``TradingModel.predict``, as the shadow daemon)."""
    model = load_model(model_path(cfg))
    env = TradingEnv(candles.frame, options=options_from_config(cfg))
    obs, _ = env.reset(seed=0)
    observations = [obs]
    for action in np.random.default_rng(0).integers(0, 6, size=199).tolist():
        obs, _, terminated, truncated, _ = env.step(action)
        observations.append(obs if not (terminated or truncated) else env.reset()[0])
    cursor = iter(range(10**9))
    latencies = call_latencies(lambda: model.predict(observations[next(cursor) % len(observations)]), calls)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return Row("prediction", "one trading-agent prediction (p50, p99)", "seed", 0.001, "< 1 ms", p99,
               f"p50 {seconds_text(p50)}, p99 {seconds_text(p99)}", "s", ratio(p99, 0.001, False),
               "p99 < 0.05 ms", at_most(p99, 0.00005), "" if p99 <= 0.00005 else
               f"p99 {p99 * 1e3:.3f} ms")

