"""The weights bridge: merges the weight sources by priority into the one allocations file the trader reads.

    python agents/weights_bridge.py --once            # evaluate once, write, exit
    python agents/weights_bridge.py --watch           # daemon: react to changes in runtime/
    python agents/weights_bridge.py --watch --polling # the same on a network filesystem

Priority (the files are those of :mod:`core.contracts.weights`): the strategy-weight agent's weights (``rl``),
then the portfolio optimizer's (``portfolio_optimizer``), then the strategy lab's (``strategy_lab``), then equal
weights (``equal``). A source is passed over when it is absent, unparsable, older than its ``bridge.*_max_age_s``, or
its weights are missing, unknown, NaN, infinite, negative or all zero; the reason lands in
``fallback_reasons``. The winner's weights are normalized, bounded by the ``bridge`` caps (the excess
redistributed proportionally, see :func:`core.contracts.weights.apply_caps`) and written atomically to the
allocations file (:func:`core.contracts.weights.allocations_path`) with ``source``, ``fallback_reasons`` and
``input_ages_s``.

Rewrites. The trader re-reads the allocations whenever the file changes, so the bridge leaves it alone when
``weights``, ``source`` and ``fallback_reasons`` equal what the file already holds: ``generated_at`` and
``input_ages_s`` are then those of the last real change. The comparison is against the file on disk, so a
restart does not rewrite either, and a hand edit of the allocations is replaced at the next evaluation (stop
the bridge to pin allocations by hand).

Watching. A watchdog observer on ``runtime/`` (not recursive) reacts to the three source files being created,
modified, moved into place (atomic writers rename a temporary file: its ``dest_path`` counts) or deleted, and
ignores everything else, its own output and temporary files included. Events are debounced
(``bridge.debounce_s`` of quiet, at most five times that after the first event: with the default 0.2 s a
change is in the allocations 0.2 s after a single save and never more than 1 s after the first event of a
burst). A source in force that reaches its maximum age is noticed at that moment (the bridge wakes when it
expires), and every source is re-evaluated every ``bridge.recheck_interval_s`` anyway. Each evaluation
refreshes the heartbeat; SIGTERM finishes the current write and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.atomic import read_json, utc_now_iso
from core.cli import add_config_argument, load_command_config, with_changes
from core.config import Config
from core.contracts.weights import (
    ALLOCATIONS_NAME,
    LAB_WEIGHTS_NAME,
    OPTIMIZER_WEIGHTS_NAME,
    RL_WEIGHTS_NAME,
    allocations_path,
    apply_caps,
    caps_from_config,
    equal_weights,
    publish_weights,
    read_weights,
    same_weights,
    validate_weights,
)
from core.daemon import DaemonContext, run_daemon_main
from core.errors import ExitCode
from core.logging_setup import setup_logging
from core.watch import MAX_DELAY_FACTOR, Debouncer, SourceFileHandler, make_observer

log = logging.getLogger(__name__)

DAEMON_NAME = "weights_bridge"
OUTPUT_NAME = ALLOCATIONS_NAME
EQUAL = "equal"
STALE_MARGIN_S = 0.05
"""Wake this long after the source in force expires, so its age is then past the limit, not at it."""


@dataclass(frozen=True)
class Source:
    """One weight source: its name in ``source``/``fallback_reasons``, its file in ``runtime/``, its max age."""

    name: str
    filename: str
    max_age_s: float


def weight_sources(cfg: Config) -> tuple[Source, ...]:
    """The sources, highest priority first."""
    b = cfg.bridge
    return (
        Source("rl", RL_WEIGHTS_NAME, b.rl_max_age_s),
        Source("portfolio_optimizer", OPTIMIZER_WEIGHTS_NAME, b.portfolio_optimizer_max_age_s),
        Source("strategy_lab", LAB_WEIGHTS_NAME, b.strategy_lab_max_age_s),
    )


SOURCE_FILES = frozenset(s.filename for s in weight_sources(Config()))


@dataclass(frozen=True)
class Allocation:
    """What one evaluation decided; ``problems`` holds every source's reason ("" when usable)."""

    weights: dict[str, float]
    source: str
    fallback_reasons: dict[str, str]
    input_ages_s: dict[str, float | None]
    problems: dict[str, str] = field(default_factory=dict)
    caps: dict[str, dict[str, float]] = field(default_factory=dict)
    expires_in_s: float | None = None
    """Seconds until the winning source passes its maximum age (None: equal weights or no age limit)."""

    def same_content(self, doc: Mapping[str, Any] | None) -> bool:
        """True when ``doc`` already says the same (weights, source, fallback reasons)."""
        if not doc or validate_weights(doc) is not None:
            return False
        return (doc.get("source") == self.source and doc.get("fallback_reasons") == self.fallback_reasons
                and same_weights(doc["weights"], self.weights))


def output_path(cfg: Config) -> Path:
    """The allocations file the bridge writes."""
    return allocations_path(cfg)


def cap_bounds(cfg: Config) -> tuple[dict[str, float], dict[str, float]]:
    """Per-strategy (minimum, maximum) weights of the config; ConfigError when they cannot be met."""
    b = cfg.bridge
    return caps_from_config(b.min_weight, b.max_weight, b.min_weights, b.max_weights, section="bridge")


def choose_allocation(cfg: Config) -> Allocation:
    """Read every source, take the first usable one (else equal weights) and apply the caps."""
    lo, hi = cap_bounds(cfg)
    problems: dict[str, str] = {}
    ages: dict[str, float | None] = {}
    chosen: tuple[str, Mapping[str, float]] | None = None
    expires_in: float | None = None
    for src in weight_sources(cfg):
        result = read_weights(cfg.runtime_dir / src.filename, max_age_s=src.max_age_s)
        ages[src.name] = None if result.age_s is None else round(result.age_s, 1)
        problems[src.name] = "" if result.ok else result.reason
        if chosen is None and result.ok and result.data is not None:
            chosen = (src.name, result.data["weights"])
            if src.max_age_s > 0 and result.age_s is not None:
                expires_in = src.max_age_s - result.age_s
    name, raw = chosen if chosen is not None else (EQUAL, equal_weights())
    passed_over = {}
    for src in weight_sources(cfg):
        if src.name == name:
            break
        passed_over[src.name] = problems[src.name]
    caps = {"min": {s: v for s, v in lo.items() if v > 0}, "max": {s: v for s, v in hi.items() if v < 1}}
    return Allocation(apply_caps(raw, lo, hi), name, passed_over, ages, problems, caps, expires_in)


def write_allocation(cfg: Config, alloc: Allocation) -> bool:
    """Publish ``alloc`` unless the file already holds the same content; True when written."""
    path = output_path(cfg)
    current = read_json(path)
    if current.ok and alloc.same_content(current.data):
        return False
    publish_weights(path, DAEMON_NAME, alloc.weights, source=alloc.source,
                    fallback_reasons=alloc.fallback_reasons, input_ages_s=alloc.input_ages_s, caps=alloc.caps)
    return True


def log_changes(previous: Allocation | None, current: Allocation) -> None:
    """Log a source's problem when it appears or changes, its recovery, and a change of the winning source."""
    for name, problem in current.problems.items():
        before = previous.problems.get(name, "") if previous else ""
        if problem and problem != before:
            log.warning("source %s unusable: %s", name, problem)
        elif not problem and before:
            log.info("source %s usable again", name)
    if previous is None or previous.source != current.source:
        if current.source == EQUAL:
            log.warning("no usable weight source: allocating equal weights")
        else:
            log.info("allocations now follow %s", current.source)


class WeightsBridge:
    """Evaluates the sources and writes the allocations, remembering the last decision for the logs."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.last: Allocation | None = None
        self.evaluations = 0

    def evaluate(self) -> tuple[Allocation, bool]:
        """One pass: choose, log what changed, write if the content changed. Returns (allocation, written)."""
        alloc = choose_allocation(self.cfg)
        log_changes(self.last, alloc)
        self.last = alloc
        self.evaluations += 1
        written = write_allocation(self.cfg, alloc)
        if written:
            log.info("wrote %s from %s", OUTPUT_NAME, alloc.source)
        return alloc, written


def run_once(cfg: Config) -> Allocation:
    """Evaluate the sources once and write the allocations if they changed (what ``--once`` does)."""
    return WeightsBridge(cfg).evaluate()[0]


def seconds_to_next_check(alloc: Allocation | None, recheck_interval_s: float) -> float:
    """Time until the next timed evaluation: the recheck interval, or sooner when the source in force expires."""
    if alloc is None or alloc.expires_in_s is None:
        return recheck_interval_s
    return min(recheck_interval_s, max(0.0, alloc.expires_in_s) + STALE_MARGIN_S)


def watch(cfg: Config, ctx: DaemonContext) -> None:
    """Evaluate now, then on every debounced source change, when the source in force expires and every
    ``recheck_interval_s``, until stopped."""
    b = cfg.bridge
    bridge = WeightsBridge(cfg)
    debouncer = Debouncer(b.debounce_s, b.debounce_s * MAX_DELAY_FACTOR)
    cfg.runtime_dir.mkdir(parents=True, exist_ok=True)
    observer = make_observer(b.polling, b.poll_interval_s)
    observer.schedule(SourceFileHandler(SOURCE_FILES, debouncer.notify), str(cfg.runtime_dir), recursive=False)
    observer.start()
    # SIGTERM only sets ctx.stop; this relays it to the debouncer's wait so shutdown is immediate.
    threading.Thread(target=_relay_stop, args=(ctx, debouncer), name="stop-relay", daemon=True).start()
    log.info("watching %s (%s)", cfg.runtime_dir, "polling" if b.polling else "OS events")
    try:
        _evaluate_and_beat(bridge, ctx, "start")
        next_check = time.monotonic() + seconds_to_next_check(bridge.last, b.recheck_interval_s)
        while not ctx.stop.is_set():
            pending = debouncer.seconds_until_due()
            debouncer.wait(min(math.inf if pending is None else pending, max(0.0, next_check - time.monotonic())))
            if ctx.stop.is_set():
                break
            if debouncer.take_if_due():
                _evaluate_and_beat(bridge, ctx, "change")
            elif time.monotonic() >= next_check:
                _evaluate_and_beat(bridge, ctx, "timer")
            else:
                continue
            next_check = time.monotonic() + seconds_to_next_check(bridge.last, b.recheck_interval_s)
    finally:
        observer.stop()
        observer.join(timeout=5)


def _relay_stop(ctx: DaemonContext, debouncer: Debouncer) -> None:
    """Wake the debouncer's wait once the daemon is asked to stop."""
    ctx.stop.wait()
    debouncer.wake()


def _evaluate_and_beat(bridge: WeightsBridge, ctx: DaemonContext, trigger: str) -> None:
    if not ctx.retry_due(OUTPUT_NAME):
        ctx.beat()  # still backing off after a failed write: the heartbeat keeps saying why
        return
    try:
        alloc, written = bridge.evaluate()
    except OSError as exc:
        # A full disk or a permission problem: the previous file stays; the context logs it once and backs off.
        ctx.write_failed(OUTPUT_NAME, exc)
        ctx.beat(last_evaluated_at=utc_now_iso())
        return
    ctx.write_ok(OUTPUT_NAME)
    log.debug("evaluated on %s: source=%s written=%s", trigger, alloc.source, written)
    ctx.beat(state="running", source=alloc.source, fallback_reasons=alloc.fallback_reasons,
             last_evaluated_at=utc_now_iso(), evaluations=bridge.evaluations)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weights_bridge",
        description=f"Merge runtime/{RL_WEIGHTS_NAME} > runtime/{OPTIMIZER_WEIGHTS_NAME} > "
                    f"runtime/{LAB_WEIGHTS_NAME} > equal weights into runtime/{ALLOCATIONS_NAME} "
                    "(normalized, capped by the [bridge] config).")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="evaluate the sources once, write, exit")
    mode.add_argument("--watch", action="store_true",
                      help="run as a daemon: re-evaluate on every source change and every recheck interval")
    parser.add_argument("--polling", action="store_true",
                        help="with --watch, poll runtime/ instead of OS file events (network filesystems)")
    add_config_argument(parser)
    return parser


def _command_config(cfg: Config, polling: bool) -> Config:
    cfg = with_changes(cfg, "bridge", polling=polling or None)
    cap_bounds(cfg)  # infeasible caps stop the command here, not at the first evaluation
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_command_config("weights_bridge", args.config, lambda c: _command_config(c, args.polling))
    if cfg is None:
        return ExitCode.BAD_INPUT
    if args.once:
        setup_logging(cfg)
        try:
            alloc, written = WeightsBridge(cfg).evaluate()
        except OSError as exc:
            print(f"weights_bridge: error: cannot write {output_path(cfg)}: {exc}", file=sys.stderr)
            return ExitCode.FAILURE
        print(f"{output_path(cfg)}: source={alloc.source} ({'written' if written else 'unchanged'})")
        return ExitCode.OK
    return run_daemon_main(DAEMON_NAME, cfg, lambda ctx: watch(cfg, ctx))


if __name__ == "__main__":
    sys.exit(main())
