"""The PPO policy's deterministic forward pass in numpy, for daemons that predict one observation at a time.

    policy, meta = NumpyPolicy.from_checkpoint(path)     # reads the weights once, without torch
    action = policy.predict(observation)                 # what ActorCritic.predict(..., deterministic=True) gives

Torch pays tens of microseconds of dispatch per layer for a single observation and half a gigabyte of memory
for the import; the daemons that only predict (the shadow daemon at rest, the strategy-weight inference) use
this instead. It computes what :class:`ai.ppo.networks.ActorCritic` computes, in float32 like torch: the actor
MLP (or the shared trunk), the policy head, then the argmax of the logits (discrete) or the Dirichlet mean
floored at ``SIMPLEX_EPS`` and renormalized in double precision (simplex).

Checkpoints are read by :func:`read_checkpoint_arrays`: a torch checkpoint is a zip of raw storages plus a
pickle describing them; that pickle is read by an unpickler that knows only the few names a weights-only
checkpoint uses (tensor rebuild, typed storages, OrderedDict) and refuses every other one, as
``torch.load(..., weights_only=True)`` does, so no code from a file ever runs.
"""

from __future__ import annotations

import collections
import math
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ai.ppo.errors import CheckpointError, check_checkpoint_payload
from core.config import ppo_config_from_dict
from core.errors import ConfigError

SIMPLEX_EPS = 1e-6
"""As :data:`ai.ppo.networks.SIMPLEX_EPS`: smallest weight of a simplex action before renormalizing."""
SOFTPLUS_THRESHOLD = 20.0
"""Above this torch's softplus returns its input unchanged; the same cut keeps the two equal."""
_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"), "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"), "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"), "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype[Any]


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *_ignored: Any) -> np.ndarray:
    """A tensor's values as a new array (the ``_rebuild_tensor_v2`` of a torch pickle)."""
    if not size:
        return np.array(storage[offset])
    strides = tuple(s * storage.itemsize for s in stride)
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=strides)
    return np.array(view)


class _WeightsUnpickler(pickle.Unpickler):
    """Unpickles tensors (as numpy arrays), dicts, lists and scalars; any other global is refused."""

    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self.archive = archive
        self.prefix = prefix
        self.storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights-only checkpoint")

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported storage reference {pid!r}")
        key = str(pid[2])
        if key not in self.storages:
            raw = self.archive.read(f"{self.prefix}data/{key}")
            self.storages[key] = np.frombuffer(raw, dtype=pid[1].dtype)
        return self.storages[key]


def read_checkpoint_arrays(path: str | Path) -> dict[str, Any]:
    """A checkpoint's payload (``state_dict``, ``optimizer``, ``meta``) with numpy arrays for its tensors.

    Anything that is not a PPO checkpoint written by :func:`ai.ppo.checkpoints.write_checkpoint` is a
    :class:`CheckpointError` naming the file.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"{file}: checkpoint not found; train a model first or pass the right path")
    try:
        with zipfile.ZipFile(file) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise CheckpointError(f"{file}: not a torch checkpoint archive (no data.pkl)")
            prefix = pickles[0][: -len("data.pkl")]
            if prefix + "byteorder" in archive.namelist() and archive.read(prefix + "byteorder") != b"little":
                raise CheckpointError(f"{file}: written on a big-endian machine; load it with torch instead")
            with archive.open(pickles[0]) as fh:
                payload = _WeightsUnpickler(fh, archive, prefix).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as exc:
        raise CheckpointError(f"{file}: not a loadable weights-only checkpoint ({exc}); files with pickled code "
                              "are refused") from exc
    return check_checkpoint_payload(file, payload)


def _transposed(layer: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    # Transposed once and contiguous, so x @ w_t + b is one BLAS call per layer.
    return np.ascontiguousarray(np.asarray(layer[0]).T, dtype=np.float32), np.asarray(layer[1], dtype=np.float32)


def _side_by_side(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Two layers reading the same input as one: their output columns next to each other."""
    return np.ascontiguousarray(np.hstack([a[0], b[0]])), np.concatenate([a[1], b[1]])


def _block_diagonal(a: tuple[np.ndarray, np.ndarray],
                    b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Two layers reading the two halves of their input as one (zeros across: exact, the products are 0)."""
    weights = np.zeros((a[0].shape[0] + b[0].shape[0], a[0].shape[1] + b[0].shape[1]), dtype=np.float32)
    weights[: a[0].shape[0], : a[0].shape[1]] = a[0]
    weights[a[0].shape[0]:, a[0].shape[1]:] = b[0]
    return weights, np.concatenate([a[1], b[1]])


def _pair(state_dict: dict[str, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(state_dict[f"{name}.weight"]), np.asarray(state_dict[f"{name}.bias"])


def _tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x, out=x)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0, out=x)


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"tanh": _tanh, "relu": _relu}


class NumpyPolicy:
    """The actor of a PPO checkpoint as float32 matrices; :meth:`predict` is the deterministic action."""

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], head: tuple[np.ndarray, np.ndarray],
                 activation: str, kind: str, n: int, min_concentration: float,
                 critic: list[tuple[np.ndarray, np.ndarray]] | None = None,
                 value_head: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """``layers`` and ``head`` as torch stores them (``weight`` is ``(out, in)``); ``critic`` is None for a
        shared trunk (the value head then reads the actor's last hidden layer)."""
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not supported; use one of {', '.join(_ACTIVATIONS)}")
        self.layers = [_transposed(layer) for layer in layers]
        self.head = _transposed(head)
        self.critic = None if critic is None else [_transposed(layer) for layer in critic]
        self.value_head = None if value_head is None else _transposed(value_head)
        self._fused = self._fuse()
        self.activation = _ACTIVATIONS[activation]
        self.kind = kind
        self.n = n
        self.min_concentration = np.float32(min_concentration)
        self.obs_dim = int(self.layers[0][0].shape[0] if self.layers else self.head[0].shape[0])

    @classmethod
    def from_state_dict(cls, state_dict: dict[str, np.ndarray], meta: dict[str, Any]) -> NumpyPolicy:
        """From a checkpoint's state dict (arrays) and ``meta`` (``ppo_config``, ``action_spec``)."""
        try:
            cfg = ppo_config_from_dict(meta["ppo_config"], source="checkpoint meta.ppo_config")
            spec = meta["action_spec"]
            body = "trunk" if cfg.shared_trunk else "actor_body"
            # Linear layers sit at even positions of the Sequential (activations between them).
            layers = [(np.asarray(state_dict[f"{body}.{2 * i}.weight"]), np.asarray(state_dict[f"{body}.{2 * i}.bias"]))
                      for i in range(len(cfg.hidden_sizes))]
            critic = None if cfg.shared_trunk else [
                (np.asarray(state_dict[f"critic_body.{2 * i}.weight"]), np.asarray(state_dict[f"critic_body.{2 * i}.bias"]))
                for i in range(len(cfg.hidden_sizes))]
            policy = cls(layers, _pair(state_dict, "policy_head"), cfg.activation, str(spec["kind"]), int(spec["n"]),
                         cfg.simplex_min_concentration, critic, _pair(state_dict, "value_head"))
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise CheckpointError(f"checkpoint weights do not describe a PPO actor ({exc}); retrain the model") from exc
        if policy.obs_dim != int(meta.get("obs_dim", policy.obs_dim)) or policy.head[0].shape[1] != policy.n:
            raise CheckpointError(f"checkpoint weights do not fit obs_dim={meta.get('obs_dim')} and n={policy.n}")
        return policy

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> tuple[NumpyPolicy, dict[str, Any]]:
        """The policy of a checkpoint file and its ``meta``, read without torch."""
        payload = read_checkpoint_arrays(path)
        try:
            return cls.from_state_dict(payload["state_dict"], payload["meta"]), payload["meta"]
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from exc

    def parameters(self) -> list[np.ndarray]:
        """Every weight and bias (to check they are finite)."""
        extra = [*(self.critic or []), *([self.value_head] if self.value_head is not None else [])]
        return [a for layer in (*self.layers, self.head, *extra) for a in layer]

    def _body(self, obs: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        x = obs
        for w_t, b in layers:
            x = self.activation(x @ w_t + b)
        return x

    def raw(self, obs: np.ndarray) -> np.ndarray:
        """Logits or pre-softplus concentrations of a ``(batch, obs_dim)`` float32 array."""
        features = self._body(obs, self.layers)
        return features @ self.head[0] + self.head[1]

    def forward(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw policy outputs and state values ``(batch,)`` of a ``(batch, obs_dim)`` float32 array, as
        ``ActorCritic.forward`` returns them."""
        if self._fused is None:
            raise ValueError("this policy was built without its value head")
        layers, head = self._fused
        out = self._body(obs, layers) @ head[0] + head[1]
        return out[:, : self.n], out[:, self.n]

    def _fuse(self) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]] | None:
        """Actor and critic as one network of twice the width (block-diagonal after the first layer, whose
        matrices sit side by side), so a prediction with its value costs one matrix product per layer."""
        if self.value_head is None:
            return None
        if self.critic is None:  # shared trunk: only the two heads sit side by side
            return self.layers, _side_by_side(self.head, self.value_head)
        layers = [_side_by_side(self.layers[0], self.critic[0])]
        layers += [_block_diagonal(a, c) for a, c in zip(self.layers[1:], self.critic[1:], strict=True)]
        return layers, _block_diagonal(self.head, self.value_head)

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Deterministic actions for one observation ``(obs_dim,)`` or a batch ``(batch, obs_dim)``: int64
        indices (discrete) or float64 weight rows summing to 1 (simplex), as ``ActorCritic.predict`` returns.

        Sampled actions belong to training, which runs the torch network; asking for them here is an error.
        """
        if not deterministic:
            raise ValueError("the numpy policy gives deterministic actions only; sample with the torch network")
        array = np.asarray(obs, dtype=np.float32)
        single = array.ndim == 1
        if array.shape[-1] != self.obs_dim or array.ndim not in (1, 2):
            raise ValueError(f"observation shape {array.shape} does not fit obs_dim={self.obs_dim}")
        raw = self.raw(array[None, :] if single else array)
        if self.kind == "discrete":
            result = raw.argmax(axis=-1).astype(np.int64)
        elif single:
            return self._single_simplex_mean(raw[0].tolist())
        else:
            result = self._simplex_mean(raw)
        return result[0] if single else result

    def _single_simplex_mean(self, raw: list[float]) -> np.ndarray:
        """:meth:`_simplex_mean` of one row in plain floats (a handful of numbers: numpy's per-call cost would
        dominate); double instead of single precision, within 1e-7 of the float32 result."""
        alpha = [float(self.min_concentration) + (x if x > SOFTPLUS_THRESHOLD else math.log1p(math.exp(x)))
                 for x in raw]
        total = sum(alpha)
        floored = [max(a / total, SIMPLEX_EPS) for a in alpha]
        total = sum(floored)
        return np.array([w / total for w in floored])

    def _simplex_mean(self, raw: np.ndarray) -> np.ndarray:
        softplus = np.where(raw > SOFTPLUS_THRESHOLD, raw, np.log1p(np.exp(np.minimum(raw, SOFTPLUS_THRESHOLD))))
        alpha = self.min_concentration + softplus.astype(np.float32)
        weights = alpha / alpha.sum(-1, keepdims=True)
        floored = np.maximum(weights, np.float32(SIMPLEX_EPS))
        floored = (floored / floored.sum(-1, keepdims=True)).astype(np.float64)
        return np.asarray(floored / floored.sum(-1, keepdims=True))
