"""Soak test: run the whole suite at full replay speed for a while and watch every daemon's memory.

    python scripts/soak.py --minutes 3 --speed 50 [--home DIR] [--json]

Starts the suite through ``scripts/rl_system.py start`` (offline, synthetic market) in a temporary home unless
``--home`` is given, with the paper trader replaying ``--speed`` candles per second. Every ``--interval-s``
seconds it reads each daemon's resident memory (``VmRSS`` of ``/proc/<pid>/status``, pids from
``runtime/pids/``), then stops the suite and prints, per daemon, the RSS at the end of the warm-up, at the end,
and the slope after the warm-up (a least-squares line, MB per minute). Exits 1 when a daemon's fitted growth
after the warm-up exceeds ``--max-growth-mb`` (or it died), 2 for bad arguments, 0 otherwise. Linux only.
"""

from __future__ import annotations

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.config import REPO_ROOT

RL_SYSTEM = REPO_ROOT / "scripts" / "rl_system.py"
Samples = list[tuple[float, dict[str, float]]]
"""``(seconds since start, {daemon: RSS in MB})`` per sampling round."""


@dataclass(frozen=True)
class DaemonMemory:
    """One daemon's memory over the run (MB; None when it never ran after the warm-up)."""

    name: str
    warmup_mb: float | None
    end_mb: float | None
    peak_mb: float | None
    slope_mb_per_min: float | None
    growth_mb: float | None
    """The fitted growth over the time after the warm-up (slope x duration): robust to one noisy sample."""
    ok: bool


def rss_mb(pid: int, proc: Path = Path("/proc")) -> float | None:
    """Resident memory of ``pid`` in MB from ``/proc/<pid>/status``; None when the process is gone."""
    try:
        text = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0  # the kernel reports kB
    return None


def daemon_pids(runtime_dir: Path) -> dict[str, int]:
    """``{daemon: pid}`` from ``runtime/pids/*.pid`` (the supervisor is not a daemon; unreadable files skipped)."""
    pids: dict[str, int] = {}
    for file in sorted((runtime_dir / "pids").glob("*.pid")):
        if file.stem == "supervisor":
            continue
        try:
            pids[file.stem] = int(file.read_text().strip())
        except (OSError, ValueError):
            continue  # a pid file being rewritten by a restart: next round reads it
    return pids


def sample(runtime_dir: Path, proc: Path = Path("/proc")) -> dict[str, float]:
    """One round: the RSS of every daemon alive now."""
    out = {}
    for name, pid in daemon_pids(runtime_dir).items():
        mb = rss_mb(pid, proc)
        if mb is not None:
            out[name] = mb
    return out


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(t, y)`` points, per second (0 for fewer than two distinct times)."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (y - mean_y) for t, y in points) / var


def summarize(samples: Samples, warmup_s: float, max_growth_mb: float) -> list[DaemonMemory]:
    """Per daemon: RSS at the warm-up's end and at the end, peak, slope and fitted growth after the warm-up."""
    names = sorted({name for _, round_ in samples for name in round_})
    rows = []
    for name in names:
        points = [(t, r[name]) for t, r in samples if name in r and t >= warmup_s]
        if not points:
            rows.append(DaemonMemory(name, None, None, None, None, None, False))
            continue
        slope = _slope(points) * 60.0
        growth = slope * (points[-1][0] - points[0][0]) / 60.0
        rows.append(DaemonMemory(name, points[0][1], points[-1][1], max(y for _, y in points), slope, growth,
                                 growth <= max_growth_mb))
    return rows


def format_table(rows: list[DaemonMemory]) -> str:
    """The report for people: one line per daemon."""
    def mb(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [f"{'daemon':<22}{'warm-up MB':>11}{'end MB':>9}{'peak MB':>9}{'MB/min':>9}{'growth MB':>11}  verdict"]
    for r in rows:
        verdict = "flat" if r.ok else ("not running" if r.warmup_mb is None else "GROWS")
        lines.append(f"{r.name:<22}{mb(r.warmup_mb):>11}{mb(r.end_mb):>9}{mb(r.peak_mb):>9}"
                     f"{mb(r.slope_mb_per_min):>9}{mb(r.growth_mb):>11}  {verdict}")
    return "\n".join(lines)


def _suite(command: str, env: dict[str, str]) -> int:
    result = subprocess.run([sys.executable, str(RL_SYSTEM), command], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if result.returncode != 0:
        print(f"rl_system.py {command} exited {result.returncode}: {result.stdout.strip()}", file=sys.stderr)
    return result.returncode


def run(home: Path, args: argparse.Namespace) -> Samples:
    """Start the suite in ``home``, sample until the time is up, stop it (also on Ctrl-C or an error)."""
    config = home / "soak.toml"
    # port 0: a soak beside a running suite must not need its dashboard's port
    config.write_text(f"[trader]\nreplay_speed = {float(args.speed)}\n[dashboard]\nport = 0\n")
    env = {**os.environ, "RL_SYSTEM_HOME": str(home), "RL_SYSTEM_CONFIG": str(config)}
    samples: Samples = []
    start = time.monotonic()
    try:
        _suite("start", env)
        end = start + args.minutes * 60.0
        while time.monotonic() < end:
            samples.append((time.monotonic() - start, sample(home / "runtime")))
            if not args.json:
                print(f"{samples[-1][0]:6.0f} s  " + "  ".join(f"{n} {v:.0f}" for n, v in samples[-1][1].items()),
                      flush=True)
            time.sleep(min(args.interval_s, max(0.0, end - time.monotonic())))
    finally:
        _suite("stop", env)
    return samples


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long the suite runs (default 5)")
    parser.add_argument("--speed", type=float, default=50.0, help="replay speed in candles per second (default 50)")
    parser.add_argument("--home", help="home folder for state/ and runtime/ (default: a temporary one)")
    parser.add_argument("--interval-s", type=float, default=5.0, help="seconds between samples (default 5)")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="seconds ignored at the start (default 60)")
    parser.add_argument("--max-growth-mb", type=float, default=10.0,
                        help="largest fitted growth after the warm-up that still counts as flat (default 10)")
    parser.add_argument("--json", action="store_true", help="machine-readable output (the samples and rows)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.speed < 0 or args.interval_s <= 0 or args.warmup_s < 0:
        print("--minutes and --interval-s must be > 0, --speed and --warmup-s >= 0", file=sys.stderr)
        return 2
    if args.warmup_s >= args.minutes * 60:
        print(f"--warmup-s {args.warmup_s:g} leaves nothing to measure in {args.minutes:g} minute(s); "
              "lower it or run longer", file=sys.stderr)
        return 2
    if args.home:
        home = Path(args.home).expanduser().resolve()
        home.mkdir(parents=True, exist_ok=True)
        samples = run(home, args)
    else:
        with tempfile.TemporaryDirectory(prefix="rl-soak-") as tmp:
            samples = run(Path(tmp), args)
    rows = summarize(samples, args.warmup_s, args.max_growth_mb)
    if args.json:
        print(json.dumps({"minutes": args.minutes, "speed": args.speed, "warmup_s": args.warmup_s,
                          "rows": [asdict(r) for r in rows], "samples": samples}, indent=2))
    else:
        print(format_table(rows))
    return 0 if rows and all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
