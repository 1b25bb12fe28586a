"""Benchmark the suite's PPO against Stable-Baselines3's PPO at equal settings.

Both train on the same environment with the same hyperparameters (the validation preset of ``python -m ai.ppo``: vector
size, rollout length, epochs, minibatch, annealed step size, gamma, lambda, clip, coefficients, 64x64 tanh
networks with orthogonal init, Adam epsilon), then both are evaluated by the same function on the same
evaluation seeds. Prints a table (steps/s, wall time, evaluation return) and, with ``--out``, writes the
results as JSON.

    python scripts/bench_ppo.py --env CartPole-v1 --total-steps 100000 --seeds 0 1 2 --out bench.json

Needs stable-baselines3 (``.venv/bin/pip install stable-baselines3``); exits 2 with that hint without it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym
import numpy as np
import torch

from ai.ppo import PPO, build_config, evaluate, make_vec_env, parse_overrides, resolve_device
from core.atomic import publish_json
from core.config import PPOConfig
from core.errors import ConfigError, ExitCode

INSTALL_HINT = ("stable-baselines3 is not installed; install it with `.venv/bin/pip install stable-baselines3` "
                "and run the benchmark again")
OURS = "ai.ppo"
SB3 = "stable-baselines3"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/bench_ppo.py",
        description="Train ai.ppo and Stable-Baselines3 PPO at equal settings; compare steps/s, wall time and "
                    "deterministic evaluation return.",
    )
    parser.add_argument("--env", default="CartPole-v1", help="Gymnasium environment id (default: CartPole-v1)")
    parser.add_argument("--total-steps", type=int, default=100_000, help="environment steps per training run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds to run (default: 0)")
    parser.add_argument("--num-envs", type=int, default=None, help="vector size (default: the preset's, else 4)")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"], help="device of both")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for both (default 1)")
    parser.add_argument("--eval-episodes", type=int, default=20, help="deterministic evaluation episodes")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a PPOConfig field for both, e.g. --set n_epochs=4 (repeatable)")
    parser.add_argument("--no-preset", action="store_true",
                        help="use the library defaults instead of the environment's validation preset")
    parser.add_argument("--out", metavar="PATH", help="write the results as JSON here")
    return parser


def sb3_kwargs(cfg: PPOConfig) -> dict[str, Any]:
    """Stable-Baselines3 PPO arguments equal to ``cfg``."""
    from torch import nn

    start = cfg.learning_rate
    # SB3 passes the remaining progress (1 -> 0); a linear schedule anneals like ai.ppo's anneal_lr.
    learning_rate: Any = (lambda remaining: start * remaining) if cfg.anneal_lr else start
    return {
        "learning_rate": learning_rate,
        "n_steps": cfg.n_steps,
        "batch_size": cfg.batch_size,
        "n_epochs": cfg.n_epochs,
        "gamma": cfg.gamma,
        "gae_lambda": cfg.gae_lambda,
        "clip_range": cfg.clip_range,
        "clip_range_vf": cfg.clip_range_vf or None,
        "normalize_advantage": cfg.normalize_advantage,
        "ent_coef": cfg.ent_coef,
        "vf_coef": cfg.vf_coef,
        "max_grad_norm": cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf,
        "target_kl": cfg.target_kl or None,
        "policy_kwargs": {
            "net_arch": {"pi": list(cfg.hidden_sizes), "vf": list(cfg.hidden_sizes)},
            "activation_fn": {"tanh": nn.Tanh, "relu": nn.ReLU}[cfg.activation],
            "ortho_init": True,
            "share_features_extractor": True,
            "optimizer_kwargs": {"eps": cfg.adam_eps},
        },
    }


def run_ours(env_id: str, cfg: PPOConfig, num_envs: int, total_steps: int, eval_episodes: int) -> dict[str, Any]:
    started = time.perf_counter()
    env = make_vec_env(env_id, num_envs)
    agent = PPO(env, cfg)
    train_start = time.perf_counter()
    agent.learn(total_steps)
    train_s = time.perf_counter() - train_start
    returns = evaluate(agent.predict, lambda: gym.make(env_id), eval_episodes, seed=cfg.seed + 10_000)
    env.close()
    return _record(OURS, cfg.seed, agent.num_timesteps, train_s, time.perf_counter() - started, returns)


def run_sb3(env_id: str, cfg: PPOConfig, num_envs: int, total_steps: int, eval_episodes: int,
            device: str) -> dict[str, Any]:
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    started = time.perf_counter()
    env = sb3_make_vec_env(env_id, n_envs=num_envs, seed=cfg.seed)
    model = SB3PPO("MlpPolicy", env, seed=cfg.seed,
                   device=device, verbose=0, **sb3_kwargs(cfg))
    train_start = time.perf_counter()
    model.learn(total_steps)
    train_s = time.perf_counter() - train_start

    def predict(obs: np.ndarray) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    returns = evaluate(predict, lambda: gym.make(env_id), eval_episodes, seed=cfg.seed + 10_000)
    env.close()
    return _record(SB3, cfg.seed, int(model.num_timesteps), train_s, time.perf_counter() - started, returns)


def _record(impl: str, seed: int, steps: int, train_s: float, wall_s: float, returns: list[float]) -> dict[str, Any]:
    return {"impl": impl, "seed": seed, "steps": steps, "steps_per_s": steps / train_s, "train_s": train_s,
            "wall_s": wall_s, "eval_return": float(np.mean(returns)), "eval_return_std": float(np.std(returns))}


def format_table(results: list[dict[str, Any]]) -> str:
    """The results as an aligned text table, with a mean row per implementation."""
    header = f"{'impl':<24} {'seed':>4} {'steps':>7} {'steps/s':>8} {'train_s':>8} {'wall_s':>7} {'eval_return':>15}"
    lines = [header, "-" * len(header)]
    for row in results:
        lines.append(f"{row['impl']:<24} {row['seed']:>4} {row['steps']:>7} {row['steps_per_s']:>8.0f} "
                     f"{row['train_s']:>8.1f} {row['wall_s']:>7.1f} "
                     f"{row['eval_return']:>8.1f} +/- {row['eval_return_std']:<5.1f}")
    for impl, summary in summarize(results).items():
        lines.append(f"{impl + ' (mean)':<24} {'':>4} {'':>7} {summary['steps_per_s']:>8.0f} "
                     f"{summary['train_s']:>8.1f} {summary['wall_s']:>7.1f} {summary['eval_return']:>8.1f}")
    return "\n".join(lines)


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean steps/s, times and evaluation return per implementation."""
    summary = {}
    for impl in dict.fromkeys(row["impl"] for row in results):
        rows = [row for row in results if row["impl"] == impl]
        summary[impl] = {key: float(np.mean([row[key] for row in rows]))
                         for key in ("steps_per_s", "train_s", "wall_s", "eval_return")}
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit code (2 for bad input or a missing stable-baselines3)."""
    args = _parser().parse_args(argv)
    try:
        import stable_baselines3
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        return ExitCode.BAD_INPUT
    try:
        if args.total_steps < 1 or args.eval_episodes < 1:
            raise ConfigError("--total-steps and --eval-episodes must be >= 1")
        device = str(resolve_device(args.device))
        if args.threads > 0:
            torch.set_num_threads(args.threads)
        overrides = parse_overrides(args.overrides)
        results = []
        for seed in args.seeds:
            cfg, preset_envs = build_config(args.env, seed, overrides, use_preset=not args.no_preset)
            cfg = dataclasses.replace(cfg, device=device, threads=max(args.threads, 0))
            num_envs = args.num_envs or preset_envs or 4
            results.append(run_ours(args.env, cfg, num_envs, args.total_steps, args.eval_episodes))
            results.append(run_sb3(args.env, cfg, num_envs, args.total_steps, args.eval_episodes, device))
    except (ConfigError, ValueError, gym.error.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    print(format_table(results))
    summary = summarize(results)
    speedup = summary[OURS]["steps_per_s"] / summary[SB3]["steps_per_s"]
    print(f"\n{OURS} throughput is {speedup:.2f}x {SB3}'s ({args.env}, {args.total_steps} steps, "
          f"{num_envs} envs, {torch.get_num_threads()} thread(s), {device})")
    if args.out:
        publish_json(args.out, "scripts/bench_ppo.py", {
            "env": args.env, "total_steps": args.total_steps, "num_envs": num_envs, "device": device,
            "threads": torch.get_num_threads(), "torch_version": torch.__version__,
            "sb3_version": stable_baselines3.__version__, "ppo_config": dataclasses.asdict(cfg),
            "results": results, "summary": summary, "throughput_ratio": speedup,
        })
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
