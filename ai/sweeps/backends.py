"""Where the trials run: one after the other in this process, or as Ray tasks.

Both backends hand every finished trial's record to ``on_result`` as soon as it is known (the sweep writes it
at once, so an interrupted sweep loses only the trials in flight). The Ray backend starts an embedded local
Ray (``num_cpus`` worker slots, no dashboard) unless Ray is already running in this process, or joins a cluster
with ``address`` (``ray://HOST:10001`` or ``HOST:6379`` of ``ray start --head``); each trial is one task of one
CPU. A task that dies (its worker killed) becomes a failed record like any other failure.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

from ai.sweeps.spec import TrialSpec
from ai.sweeps.trial import failed_or_done, run_trial
from core.contracts.experiments import TrialRecord
from core.errors import ConfigError, RetryableError

RAY_INSTALL = "pip install -e .[distributed]"
"""How to install the optional Ray backend."""
BACKENDS = ("ray", "sequential")

OnResult = Callable[[TrialRecord], None]


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def run_sequential(trials: Sequence[TrialSpec], on_result: OnResult) -> None:
    """Every trial in this process, in order."""
    for spec in trials:
        on_result(run_trial(spec))


def run_ray(trials: Sequence[TrialSpec], on_result: OnResult, *, num_cpus: int | None = None,
            address: str | None = None) -> None:
    """Every trial as a Ray task; records arrive in the order the trials finish."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"--backend ray needs Ray ({exc}); install it with `{RAY_INSTALL}`, or use "
                          "--backend sequential") from None
    started_here = not ray.is_initialized()
    if started_here:
        start_ray(ray, num_cpus, address)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_trial)
        pending: dict[Any, TrialSpec] = {task.remote(spec): spec for spec in trials}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                spec = pending.pop(ref)
                on_result(_result(ray, ref, spec))
    finally:
        if started_here:
            ray.shutdown()


JOIN_CHECK_S = 5.0
"""How long to wait for a cluster's port to answer before saying it is not there (Ray's own wait is minutes)."""


def check_reachable(address: str, timeout_s: float = JOIN_CHECK_S) -> None:
    """RetryableError at once when nothing listens at ``address`` (``ray://HOST:PORT`` or ``HOST:PORT``); other
    forms (``auto``) are left to Ray."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise RetryableError(f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); start it "
                             "with `ray start --head` and pass the address it prints") from None


def start_ray(ray: Any, num_cpus: int | None, address: str | None) -> None:
    """Join ``address``, or start an embedded local Ray with ``num_cpus`` slots (default: every core)."""
    if address:
        check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError) as exc:
            raise RetryableError(f"--address {address}: cannot join the Ray cluster ({str(exc).splitlines()[0]}); "
                                 "start it with `ray start --head` and pass the address it prints") from None
        return
    try:  # "local": a new embedded Ray, even where another one's address file is left over
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RetryableError(f"cannot start a local Ray ({str(exc).splitlines()[0]}); --backend sequential runs "
                             "without it") from None


def _result(ray: Any, ref: Any, spec: TrialSpec) -> TrialRecord:
    try:
        record: TrialRecord = ray.get(ref)
    except Exception as exc:  # the task itself died (worker killed, node lost): a failed trial
        return failed_or_done(spec, {}, None, f"{type(exc).__name__}: {str(exc).splitlines()[0]}", 0.0)
    return record
