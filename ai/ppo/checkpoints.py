"""PPO checkpoints: the file format, writing it atomically and reading it back without unpickling code.

A checkpoint is ``{"state_dict", "optimizer", "meta"}``: tensors and plain JSON-able data only, written
atomically (a crash leaves the old file or the new one, never half of one) and read with
``torch.load(..., weights_only=True)``. ``meta`` says what the network is (``obs_dim``, ``action_spec``,
``ppo_config``), so :func:`load_policy` rebuilds it without an environment.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ai.ppo.errors import CHECKPOINT_FORMAT as CHECKPOINT_FORMAT  # re-exported: defined without torch
from ai.ppo.errors import CheckpointError as CheckpointError
from ai.ppo.errors import check_checkpoint_payload
from ai.ppo.networks import ActionSpec, ActorCritic
from ai.ppo.runtime import resolve_device
from core.atomic import atomic_open
from core.config import ppo_config_from_dict
from core.errors import ConfigError

CHECKPOINT_VERSION = 1

_PLAIN_SCALARS = (str, int, float, bool, type(None))


def require_plain_data(value: Any, where: str = "meta") -> None:
    """Exact JSON types only: subclasses (numpy scalars, version objects) would need unpickling to load."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise ValueError(f"checkpoint metadata keys must be strings, got {key!r} at {where}")
            require_plain_data(item, f"{where}.{key}")
    elif kind is list:
        for i, item in enumerate(value):
            require_plain_data(item, f"{where}[{i}]")
    elif kind not in _PLAIN_SCALARS:
        raise ValueError(f"checkpoint metadata must be plain JSON data (dict, list, str, int, float, bool, None); "
                         f"{where} is a {kind.__name__}")
    elif kind is float and not math.isfinite(value):
        raise ValueError(f"checkpoint metadata must be finite numbers; {where} is {value}")


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value


def write_checkpoint(path: str | Path, policy: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     meta: dict[str, Any]) -> Path:
    """Write weights, optimizer state and ``meta`` atomically; ``meta`` must be plain JSON data."""
    require_plain_data(meta)
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in policy.state_dict().items()},
        "optimizer": _to_cpu(optimizer.state_dict()),
        "meta": meta,
    }
    target = Path(path)
    with atomic_open(target, "wb") as fh:
        torch.save(payload, fh)
    return target


def read_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The checkpoint's payload, loaded with ``weights_only=True``; anything else is a :class:`CheckpointError`."""
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"{file}: checkpoint not found; train a model first or pass the right path")
    try:
        payload = torch.load(file, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError or EOFError for unusable files
        first_line = _reason(exc)
        raise CheckpointError(
            f"{file}: not a loadable weights-only checkpoint ({first_line}); files with pickled code are refused"
        ) from exc
    return check_checkpoint_payload(file, payload)


def _reason(exc: BaseException) -> str:
    # torch's weights-only refusal is a long multi-line text; its "WeightsUnpickler error" line says why.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("WeightsUnpickler error"):
            return line
    return lines[0] if lines else type(exc).__name__


def load_weights(policy: ActorCritic, state_dict: dict[str, Any], meta: dict[str, Any], path: str | Path) -> None:
    """Put a checkpoint's weights into ``policy``; a network of another shape is a :class:`CheckpointError`."""
    try:
        policy.load_state_dict(state_dict)
    except RuntimeError as exc:
        saved = meta.get("ppo_config", {})
        raise CheckpointError(
            f"{path}: weights do not fit this network (saved hidden_sizes={saved.get('hidden_sizes')}, "
            f"shared_trunk={saved.get('shared_trunk')}); build the agent with the checkpoint's ppo settings "
            "or use load_policy()"
        ) from exc


def load_optimizer_state(optimizer: torch.optim.Optimizer, payload: dict[str, Any], path: str | Path) -> None:
    """Restore the optimizer state a checkpoint holds (none is fine); one that does not fit is refused."""
    if "optimizer" not in payload:
        return
    try:
        optimizer.load_state_dict(payload["optimizer"])
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: optimizer state does not fit this network ({exc}); "
                              "load with load_optimizer=False to keep the weights only") from exc


def check_compatible(meta: dict[str, Any], obs_dim: int, action_spec: ActionSpec, path: str | Path) -> None:
    """Refuse a checkpoint made for another observation size or action kind, naming both."""
    saved_spec = ActionSpec.from_dict(meta["action_spec"])
    if int(meta["obs_dim"]) != obs_dim or saved_spec != action_spec:
        raise CheckpointError(
            f"{path}: checkpoint is for obs_dim={meta['obs_dim']} and {saved_spec.kind}({saved_spec.n}) actions, "
            f"this agent has obs_dim={obs_dim} and {action_spec.kind}({action_spec.n}); retrain or use a "
            "matching environment"
        )


def load_policy(path: str | Path, device: str = "cpu") -> tuple[ActorCritic, dict[str, Any]]:
    """Rebuild the network of a checkpoint without an environment (inference daemons); returns it in eval mode."""
    payload = read_checkpoint(path, resolve_device(device))
    meta = payload["meta"]
    try:
        cfg = ppo_config_from_dict(meta["ppo_config"], source=f"{path} meta.ppo_config")
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from exc
    policy = ActorCritic(int(meta["obs_dim"]), ActionSpec.from_dict(meta["action_spec"]), cfg)
    load_weights(policy, payload["state_dict"], meta, path)
    return policy.to(resolve_device(device)).eval(), meta
