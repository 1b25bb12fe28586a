"""Weights bridge: every fallback reason, the priority order, caps, rewrites, event filtering, debouncing,
and the real daemon reacting to files in a subprocess."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from watchdog.events import (
    DirModifiedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from agents import weights_bridge as wb
from core.config import REPO_ROOT, STRATEGIES, Config, load_config, replace_section
from core.contracts.weights import publish_weights
from core.errors import ConfigError
from core.watch import Debouncer, SourceFileHandler

T, MR, MOM, BO, PAIRS, MACD, BB, VIX = STRATEGIES
RL, PO, LAB = "rl_strategy_weights.json", "portfolio_optimizer_weights.json", "strategy_lab_weights.json"
RL_W = {s: float(i + 1) for i, s in enumerate(STRATEGIES)}  # 1..8, normalized by 36
PO_W = {s: float(8 - i) for i, s in enumerate(STRATEGIES)}  # 8..1
LAB_W = {s: (3.0 if i % 2 else 1.0) for i, s in enumerate(STRATEGIES)}  # 1,3,1,3,...: sums to 16


def normalized(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {s: v / total for s, v in weights.items()}


def publish(cfg: Config, name: str, weights: dict[str, float], age_s: float = 0.0) -> Path:
    path = cfg.runtime_dir / name
    doc = publish_weights(path, "tester", weights)
    if age_s:
        stamp = datetime.now(timezone.utc) - timedelta(seconds=age_s)
        path.write_text(json.dumps(doc | {"generated_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")}))
    return path


def write_raw(cfg: Config, name: str, text: str) -> None:
    cfg.runtime_dir.mkdir(parents=True, exist_ok=True)
    (cfg.runtime_dir / name).write_text(text)


def read_allocations(cfg: Config) -> dict:
    return json.loads((cfg.runtime_dir / "allocations_override.json").read_text())


def envelope_with(weights: object) -> str:
    return json.dumps({"schema_version": 1, "generated_at": datetime.now(timezone.utc).isoformat(),
                       "producer": "tester", "weights": weights})


BASE = {s: 0.125 for s in STRATEGIES}
BAD_RL: dict[str, tuple[Callable[[Config], None], str]] = {
    "absent": (lambda cfg: None, "rl_strategy_weights.json: file not found"),
    "corrupt": (lambda cfg: write_raw(cfg, RL, '{"weights": {"turtle_trading": 0.5,'), "not valid JSON"),
    "not an object": (lambda cfg: write_raw(cfg, RL, "[0.125, 0.125]"), "expected a JSON object"),
    "stale": (lambda cfg: publish(cfg, RL, RL_W, age_s=2 * 3600), "older than the 900s allowed"),
    "NaN": (lambda cfg: write_raw(cfg, RL, envelope_with(BASE).replace("0.125", "NaN", 1)), "NaN is not allowed"),
    "infinite": (lambda cfg: write_raw(cfg, RL, envelope_with(BASE).replace("0.125", "1e999", 1)), "1e999 overflows to inf"),
    "negative": (lambda cfg: write_raw(cfg, RL, envelope_with(BASE | {BO: -0.125})),
                 "`weights.breakout_trading` is negative"),
    "missing strategy": (lambda cfg: write_raw(cfg, RL, envelope_with({s: 0.125 for s in STRATEGIES[:-1]})),
                         "strategy 'vix_strategy' missing"),
    "unknown strategy": (lambda cfg: write_raw(cfg, RL, envelope_with(BASE | {"rl_v3_ppo": 0.1})),
                         "unknown strategy 'rl_v3_ppo'"),
    "no weights key": (lambda cfg: write_raw(cfg, RL, json.dumps({"schema_version": 1, "producer": "x"})),
                       "missing `weights` key"),
    "all zero": (lambda cfg: write_raw(cfg, RL, envelope_with(dict.fromkeys(STRATEGIES, 0))), "all weights are zero"),
}


@pytest.mark.parametrize("case", list(BAD_RL))
def test_each_fallback_reason_passes_over_the_source(cfg: Config, case: str) -> None:
    make_bad, reason = BAD_RL[case]
    make_bad(cfg)
    publish(cfg, PO, PO_W)
    alloc = wb.choose_allocation(cfg)
    assert alloc.source == "portfolio_optimizer"
    assert list(alloc.fallback_reasons) == ["rl"]
    assert reason in alloc.fallback_reasons["rl"]
    assert alloc.fallback_reasons["rl"].startswith("rl_strategy_weights.json: ")
    assert alloc.weights == pytest.approx(normalized(PO_W))


def test_priority_order_rl_then_optimizer_then_lab_then_equal(cfg: Config) -> None:
    paths = [publish(cfg, RL, RL_W), publish(cfg, PO, PO_W), publish(cfg, LAB, LAB_W)]
    expected = [("rl", RL_W), ("portfolio_optimizer", PO_W), ("strategy_lab", LAB_W)]
    for i, (source, weights) in enumerate(expected):
        alloc = wb.choose_allocation(cfg)
        assert alloc.source == source
        assert alloc.weights == pytest.approx(normalized(weights))
        assert list(alloc.fallback_reasons) == [name for name, _ in expected[:i]]
        paths[i].unlink()
    alloc = wb.choose_allocation(cfg)
    assert alloc.source == "equal" and alloc.weights == {s: 0.125 for s in STRATEGIES}
    assert alloc.fallback_reasons == {
        "rl": "rl_strategy_weights.json: file not found",
        "portfolio_optimizer": "portfolio_optimizer_weights.json: file not found",
        "strategy_lab": "strategy_lab_weights.json: file not found",
    }


def test_each_source_has_its_own_max_age(cfg: Config) -> None:
    publish(cfg, PO, PO_W, age_s=120)
    publish(cfg, LAB, LAB_W, age_s=120)
    cfg = replace_section(cfg, "bridge", portfolio_optimizer_max_age_s=60.0, strategy_lab_max_age_s=0.0)
    alloc = wb.choose_allocation(cfg)
    assert alloc.source == "strategy_lab"  # 0 means never stale
    assert "older than the 60s allowed" in alloc.fallback_reasons["portfolio_optimizer"]
    assert alloc.input_ages_s["rl"] is None
    assert 119 <= alloc.input_ages_s["portfolio_optimizer"] <= 125


def test_caps_from_the_config_file_redistribute_the_excess(tmp_path: Path, rl_home: Path) -> None:
    config = tmp_path / "caps.toml"
    config.write_text("[bridge]\nmin_weight = 0.02\nmax_weight = 0.25\n")
    cfg = load_config(config)
    publish(cfg, RL, {T: 0.40, MR: 0.25, MOM: 0.15, BO: 0.10, PAIRS: 0.05, MACD: 0.05, BB: 0.0, VIX: 0.0})
    assert wb.main(["--once", "--config", str(config)]) == 0
    doc = read_allocations(cfg)
    # Hand computation: bb and vix lifted to 0.02; turtle capped at 0.25; the remaining 0.71 scaled over the
    # other five would put mean_reversion at 0.296 > 0.25, so it is capped too; the last four (0.35) share 0.46.
    k = 0.46 / 0.35
    expected = {T: 0.25, MR: 0.25, MOM: 0.15 * k, BO: 0.10 * k, PAIRS: 0.05 * k, MACD: 0.05 * k, BB: 0.02, VIX: 0.02}
    assert doc["weights"] == pytest.approx(expected, abs=1e-12)
    assert math.fsum(doc["weights"].values()) == pytest.approx(1.0, abs=1e-9)
    assert doc["source"] == "rl" and doc["caps"]["max"][T] == 0.25 and doc["caps"]["min"][VIX] == 0.02


def test_per_strategy_caps_and_infeasible_caps(tmp_path: Path, cfg: Config, capsys: pytest.CaptureFixture) -> None:
    capped = replace_section(cfg, "bridge", max_weights={VIX: 0.05})
    publish(cfg, RL, RL_W)  # vix has 8/36 before capping
    weights = wb.choose_allocation(capped).weights
    assert weights[VIX] == pytest.approx(0.05)
    assert weights[T] == pytest.approx((1 / 28) * 0.95)
    with pytest.raises(ConfigError, match="minimum weights sum to 1.6"):
        wb.choose_allocation(replace_section(cfg, "bridge", min_weight=0.2))
    bad = tmp_path / "bad.toml"
    bad.write_text("[bridge]\nmax_weights = {turtle = 0.3}\n")
    assert wb.main(["--once", "--config", str(bad)]) == 2
    assert "bridge.max_weights.turtle" in capsys.readouterr().err
    assert not (cfg.runtime_dir / "allocations_override.json").exists()


def test_the_file_is_rewritten_only_when_its_content_changes(cfg: Config) -> None:
    publish(cfg, RL, RL_W)
    bridge = wb.WeightsBridge(cfg)
    assert bridge.evaluate()[1] is True
    out = cfg.runtime_dir / "allocations_override.json"
    before = (out.read_text(), out.stat().st_mtime_ns)
    time.sleep(0.01)
    publish(cfg, RL, RL_W)  # republished, same weights: a new generated_at only
    assert bridge.evaluate()[1] is False
    assert wb.WeightsBridge(cfg).evaluate()[1] is False  # a restarted bridge compares with the file on disk
    assert (out.read_text(), out.stat().st_mtime_ns) == before
    publish(cfg, RL, RL_W | {T: 2.0})
    assert bridge.evaluate()[1] is True
    assert read_allocations(cfg)["weights"][T] == pytest.approx(2 / 37)
    (cfg.runtime_dir / RL).unlink()
    assert bridge.evaluate()[1] is True  # same weights can never hide a change of source or reasons
    assert read_allocations(cfg)["source"] == "equal"


def test_the_output_document_follows_the_contract(cfg: Config) -> None:
    publish(cfg, PO, PO_W)
    assert wb.main(["--once"]) == 0
    doc = read_allocations(cfg)
    assert doc["schema_version"] == 1 and doc["producer"] == "weights_bridge" and "generated_at" in doc
    assert list(doc["weights"]) == list(STRATEGIES)
    assert math.fsum(doc["weights"].values()) == pytest.approx(1.0, abs=1e-9)
    assert doc["source"] == "portfolio_optimizer"
    assert doc["fallback_reasons"] == {"rl": "rl_strategy_weights.json: file not found"}
    assert set(doc["input_ages_s"]) == {"rl", "portfolio_optimizer", "strategy_lab"}
    publish(cfg, RL, RL_W)
    assert wb.run_once(cfg).source == "rl"
    assert read_allocations(cfg)["weights"] == pytest.approx(normalized(RL_W))


def test_a_reason_is_logged_when_it_appears_or_changes_not_at_every_pass(cfg: Config,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    bridge = wb.WeightsBridge(cfg)
    caplog.set_level(logging.INFO, logger="agents.weights_bridge")
    bridge.evaluate()
    bridge.evaluate()
    assert sum("source rl unusable: rl_strategy_weights.json: file not found" in m for m in caplog.messages) == 1
    write_raw(cfg, RL, "{")
    bridge.evaluate()
    assert any("source rl unusable: rl_strategy_weights.json: not valid JSON" in m for m in caplog.messages)
    publish(cfg, RL, RL_W)
    bridge.evaluate()
    assert "source rl usable again" in caplog.messages and "allocations now follow rl" in caplog.messages


# --- watching -----------------------------------------------------------------------------------------------

def test_event_filter_reacts_to_the_three_sources_only(tmp_path: Path) -> None:
    calls: list[int] = []
    handler = SourceFileHandler(wb.SOURCE_FILES, lambda: calls.append(1))
    rt = tmp_path / "runtime"
    relevant = [
        FileMovedEvent(str(rt / f".{RL}.abc123.tmp"), str(rt / RL)),  # an atomic write lands
        FileMovedEvent(str(rt / PO), str(tmp_path / "elsewhere.json")),  # a source moved away
        FileCreatedEvent(str(rt / LAB)), FileModifiedEvent(str(rt / RL)), FileDeletedEvent(str(rt / PO)),
    ]
    ignored = [
        FileCreatedEvent(str(rt / f".{RL}.abc123.tmp")), FileModifiedEvent(str(rt / f".{RL}.abc123.tmp")),
        FileMovedEvent(str(rt / ".allocations_override.json.x.tmp"), str(rt / "allocations_override.json")),
        FileModifiedEvent(str(rt / "allocations_override.json")), FileOpenedEvent(str(rt / RL)),
        FileClosedEvent(str(rt / RL)), DirModifiedEvent(str(rt)), FileCreatedEvent(str(rt / "other.json")),
    ]
    for event in relevant:
        handler.dispatch(event)
    assert len(calls) == len(relevant)
    for event in ignored:
        handler.dispatch(event)
    assert len(calls) == len(relevant)


def test_debouncer_waits_for_quiet_but_not_forever() -> None:
    now = [100.0]
    deb = Debouncer(quiet_s=0.2, max_delay_s=1.0, clock=lambda: now[0])
    assert deb.seconds_until_due() is None and not deb.take_if_due()
    deb.notify()
    now[0] += 0.1
    deb.notify()  # a second event of the same save restarts the quiet period
    assert deb.seconds_until_due() == pytest.approx(0.2)
    now[0] += 0.15
    assert not deb.take_if_due()
    now[0] += 0.05
    assert deb.take_if_due() and deb.seconds_until_due() is None
    deb.notify()
    for _ in range(9):  # a steady stream of events every 0.15 s is still handled after max_delay_s
        now[0] += 0.15
        deb.notify()
    assert deb.take_if_due()


def wait_for(predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``predicate`` held; fails after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if predicate():
                return time.monotonic() - start
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout}s")


def start_bridge(tmp_path: Path, *args: str) -> subprocess.Popen:
    with open(tmp_path / "bridge.out", "wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "agents.weights_bridge", "--watch", *args], cwd=REPO_ROOT,
                                env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)


def stop_bridge(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def events_only_config(tmp_path: Path, extra: str = "") -> Path:
    """A config whose timed re-evaluation is an hour away: within a test, only file events can cause a change."""
    config = tmp_path / "events_only.toml"
    config.write_text(f"[bridge]\nrecheck_interval_s = 3600.0\n{extra}")
    return config


@pytest.mark.parametrize("mode", [[], ["--polling"]], ids=["events", "polling"])
def test_watch_follows_writes_moves_and_deletions(cfg: Config, tmp_path: Path, mode: list[str]) -> None:
    proc = start_bridge(tmp_path, "--config", str(events_only_config(tmp_path)), *mode)
    try:
        wait_for(lambda: read_allocations(cfg)["source"] == "equal", timeout=15)
        publish(cfg, RL, RL_W)  # an atomic write: a temporary file moved into place
        wait_for(lambda: read_allocations(cfg)["weights"] == pytest.approx(normalized(RL_W)), timeout=10)
        assert read_allocations(cfg)["source"] == "rl"
        (cfg.runtime_dir / RL).write_text("{")  # modified in place
        wait_for(lambda: read_allocations(cfg)["source"] == "equal", timeout=10)
        assert "not valid JSON" in read_allocations(cfg)["fallback_reasons"]["rl"]
        publish(cfg, PO, PO_W)
        wait_for(lambda: read_allocations(cfg)["source"] == "portfolio_optimizer", timeout=10)
        (cfg.runtime_dir / PO).rename(cfg.runtime_dir / "kept_aside.json")  # moved away
        wait_for(lambda: read_allocations(cfg)["source"] == "equal", timeout=10)
        publish(cfg, LAB, LAB_W)
        wait_for(lambda: read_allocations(cfg)["source"] == "strategy_lab", timeout=10)
        (cfg.runtime_dir / LAB).unlink()  # deleted
        wait_for(lambda: read_allocations(cfg)["source"] == "equal", timeout=10)
        assert read_allocations(cfg)["fallback_reasons"]["strategy_lab"] == "strategy_lab_weights.json: file not found"
        beat = json.loads((cfg.runtime_dir / "heartbeats" / "weights_bridge.json").read_text())
        assert beat["state"] == "running" and beat["pid"] == proc.pid
    finally:
        code = stop_bridge(proc)
    assert code == 0, (tmp_path / "bridge.out").read_text()
    assert not (cfg.runtime_dir / "pids" / "weights_bridge.pid").exists()


def test_the_default_debounce_reflects_a_change_within_a_quarter_second() -> None:
    # The reaction time of the watch loop is bounded by the debouncer: its first event plus max_delay_s.
    quiet = Config().bridge.debounce_s
    now = [0.0]
    deb = Debouncer(quiet, quiet * wb.MAX_DELAY_FACTOR, clock=lambda: now[0])
    deb.notify()
    for _ in range(1000):  # a burst that never pauses: an event every 10 ms
        if deb.take_if_due():
            break
        now[0] += 0.01
        deb.notify()
    assert deb.seconds_until_due() is None and now[0] == pytest.approx(0.25)


def test_the_bridge_wakes_when_the_source_in_force_expires(cfg: Config) -> None:
    publish(cfg, RL, RL_W, age_s=600)
    publish(cfg, PO, PO_W, age_s=100)
    cfg = replace_section(cfg, "bridge", rl_max_age_s=900.0, portfolio_optimizer_max_age_s=0.0)
    alloc = wb.choose_allocation(cfg)
    assert alloc.source == "rl" and alloc.expires_in_s == pytest.approx(300, abs=5)
    assert wb.seconds_to_next_check(alloc, 30.0) == 30.0
    assert wb.seconds_to_next_check(alloc, 3600.0) == pytest.approx(300 + wb.STALE_MARGIN_S, abs=5)
    (cfg.runtime_dir / RL).unlink()
    alloc = wb.choose_allocation(cfg)
    assert alloc.source == "portfolio_optimizer" and alloc.expires_in_s is None  # 0: never stale
    assert wb.seconds_to_next_check(alloc, 3600.0) == 3600.0
    assert wb.seconds_to_next_check(None, 12.0) == 12.0


def test_watch_notices_a_source_going_stale_without_any_file_event(cfg: Config, tmp_path: Path) -> None:
    proc = start_bridge(tmp_path, "--config", str(events_only_config(tmp_path, "rl_max_age_s = 2.5\n")))
    try:
        wait_for(lambda: read_allocations(cfg)["source"] == "equal", timeout=15)
        publish(cfg, RL, RL_W)
        wait_for(lambda: read_allocations(cfg)["source"] == "rl", timeout=10)
        # No event and no recheck for an hour: only the wake at the expiry can notice it.
        wait_for(lambda: read_allocations(cfg)["source"] == "equal", timeout=15)
        assert "older than the 2.5s allowed" in read_allocations(cfg)["fallback_reasons"]["rl"]
    finally:
        code = stop_bridge(proc)
    assert code == 0


def test_a_write_error_keeps_the_previous_file_degrades_the_heartbeat_and_is_retried(
        cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from core import atomic
    from core.daemon import DaemonContext, WriteErrors, read_heartbeat

    publish(cfg, LAB, LAB_W)
    bridge = wb.WeightsBridge(cfg)
    now = [0.0]
    ctx = DaemonContext(name=wb.DAEMON_NAME, cfg=cfg, writes=WriteErrors(clock=lambda: now[0]))
    wb._evaluate_and_beat(bridge, ctx, "timer")
    before = (cfg.runtime_dir / wb.OUTPUT_NAME).read_bytes()
    real_write = atomic.atomic_write_text
    attempts = []

    def full_disk(path: str | os.PathLike[str], text: str) -> None:
        if Path(path).name == wb.OUTPUT_NAME:
            attempts.append(path)
            raise OSError(28, "No space left on device")
        real_write(path, text)

    monkeypatch.setattr(atomic, "atomic_write_text", full_disk)
    publish(cfg, RL, RL_W)  # a new source: the bridge must try to write
    wb._evaluate_and_beat(bridge, ctx, "change")
    beat = read_heartbeat(cfg, wb.DAEMON_NAME)
    assert beat is not None and beat["state"] == "degraded" and "No space left" in beat["degraded_reason"]
    assert (cfg.runtime_dir / wb.OUTPUT_NAME).read_bytes() == before
    wb._evaluate_and_beat(bridge, ctx, "timer")  # within the backoff: no new attempt
    assert len(attempts) == 1
    monkeypatch.setattr(atomic, "atomic_write_text", real_write)
    now[0] += 10.0
    wb._evaluate_and_beat(bridge, ctx, "timer")
    assert read_allocations(cfg)["source"] == "rl"
    assert read_heartbeat(cfg, wb.DAEMON_NAME)["state"] == "running"
