"""Torture runs: SIGKILL loops of the paper trader, Q-learning and the strategy-weight trainer, each compared
with an uninterrupted run, plus the bad-input table and the exchange faults, in temporary homes (your state is
not touched).

    python scripts/torture.py [--kills 10] [--candles 3000] [--seed 0] [--json]
        [--scenarios trader qlearning trainer bad_inputs exchange_faults]

Prints one row per scenario (runs, kills, lost, duplicated, tracebacks, verdict) and exits 1 when any failed.
Kill times are drawn from a generator seeded with ``--seed``, so a failing run can be repeated.
"""

from __future__ import annotations

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.config import REPO_ROOT
from core.errors import ExitCode

HISTORY = Path("state") / "pnl_history.csv"
TRADER_STATE = Path("state") / "paper_trader_state.json"
TRAINING_LOG = Path("state") / "rl_training_log.json"
MODEL_DIR = Path("state") / "rl_model"
QTABLES = ("meta_agent.json", "sizing_agent.json")
MIN_CANDLES = 500
# A small market and a trainer that trains in seconds; the gate is off because a promotion is what is tested.
CONFIG = """[synthetic]
n_candles = {n_candles}
[trader]
status_interval_s = 0.2
state_interval_s = 0.3
[strategy_agent]
episodes = 2
episode_length = 10
window_periods = 5
market_window_candles = 24
num_envs = 2
gate_confidence = 0.0
[strategy_agent.ppo]
n_steps = 16
batch_size = 32
n_epochs = 2
hidden_sizes = [16, 16]
threads = 1
device = "cpu"
"""


@dataclass
class Outcome:
    """One scenario's figures; ``problems`` holds a line per failed check."""

    scenario: str
    runs: int = 0
    kills: int = 0
    lost: int = 0
    duplicated: int = 0
    tracebacks: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.problems or self.lost or self.duplicated or self.tracebacks)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": "ok" if self.ok else "FAILED"}


@dataclass
class Home:
    """A temporary home with its configuration; runs the project's commands in it and kills them."""

    root: Path
    config: Path
    outputs: list[Path] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {**os.environ, "RL_SYSTEM_HOME": str(self.root), "RL_SYSTEM_CONFIG": str(self.config)}

    def start(self, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start ``python argv`` with its output in a file of the home (a pipe nobody reads could block it)."""
        out = self.root / f"run-{len(self.outputs)}.out"
        self.outputs.append(out)
        with out.open("wb") as sink:
            return subprocess.Popen([sys.executable, *argv], cwd=REPO_ROOT, env=self.env(), stdout=sink,
                                    stderr=subprocess.STDOUT)

    def run(self, argv: list[str], timeout: float = 600) -> int:
        proc = self.start(argv)
        return proc.wait(timeout=timeout)

    def kill_after(self, argv: list[str], delay: float) -> bool:
        """Start ``argv``, SIGKILL it after ``delay`` s; True when it was still running (a real kill)."""
        proc = self.start(argv)
        try:
            proc.wait(timeout=delay)
            return False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return True

    def tracebacks(self) -> int:
        return sum(out.read_text(errors="replace").count("Traceback") for out in self.outputs)


def make_home(parent: Path, name: str, n_candles: int) -> Home:
    root = parent / name
    root.mkdir(parents=True)
    config = root / "torture.toml"
    config.write_text(CONFIG.format(n_candles=n_candles))
    return Home(root, config)


def timed_run(home: Home, argv: list[str], outcome: Outcome) -> float:
    """Run ``argv`` to its end in ``home``; its wall time (a problem is recorded when it does not exit 0)."""
    started = time.monotonic()
    code = home.run(argv)
    outcome.runs += 1
    if code != 0:
        outcome.problems.append(f"{' '.join(argv)} exited {code} in {home.root.name}")
    return time.monotonic() - started


def kill_delay(rng: random.Random, reference_s: float) -> float:
    # Past most of the interpreter's start-up (about half of a small run) and short of the end, so most kills
    # land while work is done.
    return rng.uniform(0.45, 0.98) * reference_s


def count_rows(expected: list[str], got: list[str]) -> tuple[int, int]:
    """(lost, duplicated): rows of ``expected`` missing from ``got``, and rows of ``got`` beyond ``expected``."""
    want, have = Counter(expected), Counter(got)
    return sum((want - have).values()), sum((have - want).values())


# ------------------------------------------------------------------------------------------ the paper trader

def saved_candles(home: Home) -> int:
    try:
        return int(json.loads((home.root / TRADER_STATE).read_text())["candles_processed"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def trader_argv(candles: int) -> list[str]:
    return ["-m", "agents.paper_trader", "--replay", "--speed", "0", "--max-candles", str(candles)]


def kill_past(home: Home, argv: list[str], target: int, extra_s: float, timeout: float) -> bool:
    """Start the trader, SIGKILL it ``extra_s`` after its saved state shows ``target`` candles (soon after a
    save: when the trades it lists as pending are being appended); True when it was still running."""
    proc = home.start(argv)
    deadline = time.monotonic() + timeout
    while saved_candles(home) < target and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        proc.wait(timeout=extra_s)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        return True


def torture_trader(work: Path, kills: int, candles: int, rng: random.Random) -> Outcome:
    """Kill the replaying trader ``kills`` times, restart it on the candles left each time, let it finish; its
    history must equal an uninterrupted run's byte for byte (every column is candle time or a number derived
    from the candles: no wall-clock column to exclude)."""
    outcome = Outcome("paper trader")
    reference, killed = make_home(work, "trader-reference", candles), make_home(work, "trader-killed", candles)
    reference_s = timed_run(reference, trader_argv(candles), outcome)
    for done in range(kills):  # each kill past a random candle of those left, so kills spread over the run
        saved = saved_candles(killed)
        if candles - saved < 2:
            break
        outcome.runs += 1
        # On average the rest shared by the kills still to come, so that every kill lands while it runs.
        target = saved + rng.randint(1, max(1, 2 * (candles - saved) // (kills - done + 1)))
        outcome.kills += kill_past(killed, trader_argv(candles - saved), target, rng.uniform(0, 0.1),
                                   timeout=10 * reference_s)
    rest = candles - saved_candles(killed)
    if rest > 0:
        timed_run(killed, trader_argv(rest), outcome)
    expected, got = (h.root / HISTORY for h in (reference, killed))
    if not expected.exists() or not got.exists():
        outcome.problems.append("no history written")
        return outcome
    outcome.lost, outcome.duplicated = count_rows(expected.read_text().splitlines(), got.read_text().splitlines())
    if expected.read_bytes() != got.read_bytes():
        outcome.problems.append("history differs from the uninterrupted run")
    outcome.tracebacks = reference.tracebacks() + killed.tracebacks()
    return outcome


# ------------------------------------------------------------------------------------------ Q-learning

def learned_content(home: Home) -> dict[str, Any]:
    """The Q-tables without ``generated_at``, the only wall-clock time in them."""
    tables = {}
    for name in QTABLES:
        path = home.root / "state" / "qlearning" / name
        document = json.loads(path.read_text()) if path.exists() else {}
        document.pop("generated_at", None)
        tables[name] = document
    return tables


def trades_learned(tables: dict[str, Any]) -> int:
    return sum(int(t.get("progress", {}).get("trades_learned", 0)) for t in tables.values())


def torture_qlearning(work: Path, kills: int, history: Path, candles: int, rng: random.Random) -> Outcome:
    """Kill ``ai/qlearning.py --once`` over a fixed history ``kills`` times, then let a pass finish; the
    Q-tables' learned content must equal one uninterrupted pass's (timestamps excluded)."""
    outcome = Outcome("Q-learning")
    reference, killed = make_home(work, "qlearning-reference", candles), make_home(work, "qlearning-killed", candles)
    for home in (reference, killed):
        (home.root / HISTORY).parent.mkdir(parents=True)
        (home.root / HISTORY).write_bytes(history.read_bytes())
    argv = ["-m", "ai.tabular.cli", "--once"]
    reference_s = timed_run(reference, argv, outcome)
    for _ in range(3 * kills):  # a pass that ended before its kill time is a run; try again, up to 3x
        if outcome.kills >= kills:
            break
        outcome.runs += 1
        outcome.kills += killed.kill_after(argv, kill_delay(rng, reference_s))
    timed_run(killed, argv, outcome)
    try:
        expected, got = learned_content(reference), learned_content(killed)
    except ValueError as exc:  # a torn or garbage Q-table is exactly what this looks for
        outcome.problems.append(f"unreadable Q-table: {exc}")
        return outcome
    difference = trades_learned(got) - trades_learned(expected)
    outcome.lost, outcome.duplicated = max(-difference, 0), max(difference, 0)
    if trades_learned(expected) == 0:
        outcome.problems.append("the uninterrupted pass learned nothing")
    if expected != got:
        outcome.problems.append("Q-tables differ from the uninterrupted pass")
    outcome.tracebacks = reference.tracebacks() + killed.tracebacks()
    return outcome


# ------------------------------------------------------------------------------------------ the trainer

def training_records(home: Home) -> list[dict[str, Any]]:
    path = home.root / TRAINING_LOG
    if not path.exists():
        return []
    records = json.loads(path.read_text()).get("records", [])
    return [r for r in records if isinstance(r, dict)]


def promotion_problems(home: Home, outcome: Outcome) -> None:
    """Check what a reader sees now: every checkpoint in place loads, and each promoted version has one
    training record (pending counts: it is completed at the trainer's next start)."""
    # torch is imported only when the trainer is tortured.
    from ai.allocation.agent import CheckpointError, load_checkpoint

    records = training_records(home)
    versions = Counter(r.get("model_version") for r in records)
    outcome.duplicated = max(outcome.duplicated, sum(n - 1 for n in versions.values() if n > 1))
    for name in ("checkpoint_latest.pt", "checkpoint_previous.pt"):
        path = home.root / MODEL_DIR / name
        if not path.exists():
            continue
        try:
            version = load_checkpoint(path).model_version
        except CheckpointError as exc:
            outcome.problems.append(f"{name} does not load: {exc}")
            continue
        if not any(r.get("model_version") == version and (r.get("promoted") or r.get("promotion_pending"))
                   for r in records):
            outcome.lost += 1
            outcome.problems.append(f"{name} (version {version}) has no training record")


def torture_trainer(work: Path, kills: int, history: Path, candles: int, rng: random.Random) -> Outcome:
    """Kill ``ai/rl_trainer.py --train`` ``kills`` times with a full training between kills; after each kill the
    models in place must load and have their records; at the end the latest model's record says promoted."""
    outcome = Outcome("trainer promotion")
    home = make_home(work, "trainer", candles)
    (home.root / HISTORY).parent.mkdir(parents=True)
    (home.root / HISTORY).write_bytes(history.read_bytes())
    argv = ["ai/rl_trainer.py", "--train"]
    reference_s = timed_run(home, argv, outcome)
    for i in range(3 * kills):  # a training that ended before its kill time is a run; try again, up to 3x
        if outcome.kills >= kills:
            break
        outcome.runs += 1
        outcome.kills += home.kill_after(argv, kill_delay(rng, reference_s))
        promotion_problems(home, outcome)
        if i % 2 == 1:  # now and then a training that finishes, so kills also meet a previous model
            timed_run(home, argv, outcome)
    timed_run(home, argv, outcome)
    promotion_problems(home, outcome)
    records = training_records(home)
    if any(r.get("promotion_pending") for r in records):
        outcome.problems.append("a pending promotion was not settled by the next training")
    if not records or not records[-1].get("promoted"):
        outcome.problems.append("the last training was not promoted")
    outcome.tracebacks = home.tracebacks()
    return outcome


# ------------------------------------------------------------------------------------------ bad inputs

def bad_inputs() -> Outcome:
    """Run the bad-input table of ``tests/test_bad_inputs.py`` as a whole (each case: exit code, no traceback,
    saved files unchanged)."""
    return _pytest_outcome("bad inputs", ["tests/test_bad_inputs.py"])


EXCHANGE_FAULTS = ("not_json or broken_answer or stalls_or_goes_away or exchange_goes_away or exhausted_retries "
                   "or failure_on_a_later_page or exchange_failure_exits_1")
"""The faults of ``tests/market/test_exchange.py`` against the local fake exchange: a 200 answer that is not JSON
(truncated, HTML), an answer after the client's timeout, a connection cut mid-answer, a server that goes away
mid-download, server errors that persist; each must end in one clear line (after retries) with nothing half-written in
the candle cache."""


def exchange_faults() -> Outcome:
    """Run the exchange faults of ``tests/market/test_exchange.py`` (see :data:`EXCHANGE_FAULTS`)."""
    return _pytest_outcome("exchange faults", ["tests/market/test_exchange.py", "-k", EXCHANGE_FAULTS])


def _pytest_outcome(scenario: str, args: list[str]) -> Outcome:
    outcome = Outcome(scenario)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|error)", done.stdout)}
    outcome.runs = sum(counts.values())
    if done.returncode != 0 or outcome.runs == 0:
        failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        outcome.problems.extend(failed or [f"pytest exited {done.returncode}"])
    return outcome


# ------------------------------------------------------------------------------------------ the command

SCENARIOS = ("trader", "qlearning", "trainer", "bad_inputs", "exchange_faults")


def torture_all(work: Path, kills: int, candles: int, seed: int,
                scenarios: tuple[str, ...] = SCENARIOS) -> list[Outcome]:
    """The chosen scenarios in ``work``; the trader's uninterrupted history feeds Q-learning and the trainer
    (so the trader runs whenever either of them is chosen)."""
    rng = random.Random(seed)
    outcomes = []
    if {"trader", "qlearning", "trainer"} & set(scenarios):
        outcomes.append(torture_trader(work, kills, candles, rng))
    history = work / "trader-reference" / HISTORY
    if "qlearning" in scenarios and history.exists():
        outcomes.append(torture_qlearning(work, kills, history, candles, rng))
    if "trainer" in scenarios and history.exists():
        outcomes.append(torture_trainer(work, kills, history, candles, rng))
    if "bad_inputs" in scenarios:
        outcomes.append(bad_inputs())
    if "exchange_faults" in scenarios:
        outcomes.append(exchange_faults())
    return outcomes


def table(outcomes: list[Outcome]) -> str:
    head = ("scenario", "runs", "kills", "lost", "duplicated", "tracebacks", "verdict")
    rows = [head] + [tuple(str(o.as_dict()[k]) for k in head) for o in outcomes]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    problems = [f"{o.scenario}: {p}" for o in outcomes for p in o.problems]
    return "\n".join(lines + problems)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs per scenario (default 10)")
    parser.add_argument("--candles", type=int, default=3000, help="candles the trader replays (default 3000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times (default 0)")
    parser.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS),
                        help="which to run (default all)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.kills < 0 or args.candles < MIN_CANDLES:
        print(f"torture: error: --kills must be >= 0 and --candles >= {MIN_CANDLES} (fewer give the trainer "
              "fewer than the 50 trades it needs)", file=sys.stderr)
        return ExitCode.BAD_INPUT
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rl-torture-") as work:
        outcomes = torture_all(Path(work), args.kills, args.candles, args.seed, tuple(args.scenarios))
    if args.json:
        print(json.dumps({"seconds": round(time.monotonic() - started, 1), "kills": args.kills,
                          "candles": args.candles, "seed": args.seed,
                          "scenarios": [o.as_dict() for o in outcomes]}, indent=2))
    else:
        print(table(outcomes))
        print(f"{time.monotonic() - started:.0f} s, seed {args.seed}")
    return ExitCode.OK if all(o.ok for o in outcomes) else ExitCode.FAILURE


if __name__ == "__main__":
    sys.exit(main())
