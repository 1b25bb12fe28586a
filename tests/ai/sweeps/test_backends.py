"""Tests of :mod:`ai.sweeps.backends`: a sweep of 4 trials (2 symbols x 2 seeds) on a local Ray of 2 CPUs
finishes with the same metrics as the sequential backend for the same seeds; a failing Ray task is recorded;
without Ray, ``--backend ray`` says how to install it and the default falls back to sequential.

One Ray session is shared by the module (starting Ray takes a few seconds); the backend joins it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from ai.sweeps import backends, cli
from core.contracts.experiments import sweep_dir
from core.errors import ExitCode
from tests.ai.sweeps.support import comparable, records, sweep, tiny_config, write_tiny


@pytest.fixture(scope="module", autouse=True)
def ray_session() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_four_trials_on_ray_match_the_sequential_backend_seed_for_seed(tmp_path: Path) -> None:
    config = write_tiny(tmp_path)
    cfg = tiny_config(config)
    args = ["--symbols", "BTC/USDT", "ETH/USDT", "--seeds", "0", "1"]
    assert sweep(config, *args, "--backend", "ray", "--id", "on-ray") == ExitCode.OK
    assert sweep(config, *args, "--backend", "sequential", "--id", "in-process") == ExitCode.OK
    on_ray, in_process = records(cfg, "on-ray"), records(cfg, "in-process")
    assert sorted(on_ray) == sorted(in_process) == ["BTC-USDT-seed0", "BTC-USDT-seed1", "ETH-USDT-seed0",
                                                   "ETH-USDT-seed1"]
    for name, record in on_ray.items():
        assert record["status"] == "ok"
        assert comparable(record) == comparable(in_process[name])
        assert Path(record["checkpoint"]).parent == sweep_dir(cfg, "on-ray") / name
    with open(sweep_dir(cfg, "on-ray") / "leaderboard.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and all(r["sharpe"] for r in rows)


def test_a_failing_ray_task_is_recorded_and_the_others_finish(tmp_path: Path) -> None:
    config = write_tiny(tmp_path)
    cfg = tiny_config(config)
    bad = tmp_path / "broken.csv"
    bad.write_text("timestamp,open,high,low,close,volume\nnot a candle\n")
    code = sweep(config, "--symbols", str(bad), "BTC/USDT", "--seeds", "0", "--backend", "ray", "--id", "bad")
    assert code == ExitCode.FAILURE
    found = records(cfg, "bad")
    assert found["broken-seed0"]["status"] == "failed" and "broken.csv" in found["broken-seed0"]["error"]
    assert found["BTC-USDT-seed0"]["status"] == "ok"


def test_without_ray_the_ray_backend_says_how_to_install_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_tiny(tmp_path)
    monkeypatch.setattr(cli, "ray_available", lambda: False)
    assert sweep(config, "--symbols", "BTC/USDT", "--backend", "ray") == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "pip install -e .[distributed]" in err and len(err.strip().splitlines()) == 1
    assert sweep(config, "--symbols", "BTC/USDT", "--id", "fallback") == ExitCode.OK
    captured = capsys.readouterr()
    assert "run on sequential" in captured.out and "pip install -e .[distributed]" in captured.err
    assert backends.RAY_INSTALL == "pip install -e .[distributed]"


class NeverInit:
    """A stand-in for the ray module that records whether joining was attempted."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def init(self, address: str, **_kw: object) -> None:
        self.calls.append(address)


def test_joining_an_address_nobody_listens_on_fails_at_once() -> None:
    import socket
    import time

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = NeverInit()
    started = time.monotonic()
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(backends.RetryableError, match=f"--address {address}: no Ray cluster answers there"):
            backends.start_ray(fake, None, address)
    assert fake.calls == [] and time.monotonic() - started < backends.JOIN_CHECK_S


def test_an_address_that_answers_is_handed_to_ray() -> None:
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        fake = NeverInit()
        backends.start_ray(fake, None, address)
    assert fake.calls == [address]
    backends.check_reachable("auto")  # a form Ray resolves itself is not checked here
