"""The rows of the speed table, their figures as text, the Markdown table and the machine's description."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

from core.contracts.benchmarks import BenchmarkRow, Machine

INSTALL_PEERS = "missing: pip install -e .[bench]"
"""What a row says in place of the peer's figure when the peer is not installed."""
PEER_PACKAGES = ("gym-anytrading", "backtesting", "stable-baselines3")


Row = BenchmarkRow
"""One row of the table: the contract's row, so the file and the table share one definition of the fields."""


def rate_text(value: float | None, unit: str) -> str:
    """``156k steps/s``, ``1.23M bars/s``; ``-`` for None."""
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M {unit}"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k {unit}"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k {unit}"
    return f"{value:.1f} {unit}"


def seconds_text(value: float | None) -> str:
    """``0.42 ms``, ``12.3 ms``, ``1.85 s``; ``-`` for None."""
    if value is None:
        return "-"
    if value < 0.001:
        return f"{value * 1e3:.3f} ms"
    if value < 1.0:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def ratio_text(value: float | None) -> str:
    return "-" if value is None else (f"{value:.2f}x" if value < 10 else f"{value:.0f}x")


def verdict_text(row: Row) -> str:
    """``met``, ``gap: <why>`` or ``-`` (a goal that run could not judge, e.g. a missing peer)."""
    if row.met is None:
        return f"- ({row.note})" if row.note else "-"
    if row.met:
        return "met" + (f" ({row.note})" if row.note else "")
    return "gap" + (f": {row.note}" if row.note else "")


def at_least(value: float | None, goal: float) -> bool | None:
    """``value >= goal``, or None when there is no value to judge."""
    return None if value is None else value >= goal


def at_most(value: float | None, goal: float) -> bool | None:
    """``value <= goal``, or None when there is no value to judge."""
    return None if value is None else value <= goal


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[Row]) -> str:
    """The rows as a Markdown table: what, peer, peer figure, ours, ratio, goal, met/gap."""
    lines = ["| what | peer | peer figure | ours | ratio | goal | met/gap |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        cells = [r.what, r.peer, r.peer_text, r.ours_text, ratio_text(r.ratio), r.goal, verdict_text(r)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def machine_text(machine: Machine) -> str:
    """One paragraph describing where the table was measured."""
    peers = ", ".join(f"{name} {version}" for name, version in machine["peers"].items())
    return (f"{machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']:.1f} GB RAM, {machine['os']}; "
            f"Python {machine['python']}, numpy {machine['numpy']}, torch {machine['torch']} "
            f"({machine['torch_threads']} thread); peers: {peers}.")


def markdown_document(rows: list[Row], machine: Machine, command: str, date: str) -> str:
    """The table with its heading lines: date, machine and the command that reproduces it."""
    return (f"Measured {date} with `{command}` on: {machine_text(machine)}\n\n" + markdown_table(rows) + "\n")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; the platform's processor string elsewhere)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def ram_gb(meminfo: Path = Path("/proc/meminfo")) -> float:
    """Total memory in GB from ``/proc/meminfo`` (0 when unknown)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024.0 / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def package_version(name: str) -> str:
    """The installed version of ``name``, or ``missing``."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def machine_description(torch_threads: int) -> Machine:
    """CPU model, cores, RAM, OS, Python, numpy, torch and the peers' versions."""
    return {"cpu": cpu_model(), "cores": os.cpu_count() or 1, "ram_gb": round(ram_gb(), 1),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "numpy": package_version("numpy"), "torch": package_version("torch"), "torch_threads": torch_threads,
            "peers": {name: package_version(name) for name in PEER_PACKAGES}}
