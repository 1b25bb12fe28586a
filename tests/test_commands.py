"""Every command the README names runs as a user runs it: ``--help`` from the repository root and from another
working directory (the file given by its absolute path), and the two one-shot commands of the strategy-weight
agent on an empty home stop with exit 3 and a one-line reason."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.config import REPO_ROOT
from core.errors import ExitCode

TIMEOUT = 120  # seconds per command; the runs share the machine's cores

COMMAND_FILES = [
    "ai/rl_trainer.py",
    "ai/rl_inference.py",
    "ai/shadow_ppo.py",
    "ai/experiments.py",
    "ai/qlearning.py",
    "analytics/rl_performance.py",
    "analytics/portfolio_optimizer.py",
    "analytics/strategy_lab.py",
    "agents/paper_trader.py",
    "agents/weights_bridge.py",
]
SCRIPTS = sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "scripts").glob("*.py")
                 if not p.name.startswith("_"))
MODULES = ["ai.ppo", "ai.rl_trainer", "agents.weights_bridge"]

COMMANDS = [*COMMAND_FILES, *SCRIPTS, *(f"-m {module}" for module in MODULES)]
PLACES = ["repo_root", "elsewhere"]


def argv(command: str, place: str) -> list[str]:
    """The command line: a file relative to the root, or by absolute path from elsewhere; or ``-m module``."""
    if command.startswith("-m "):
        return [sys.executable, "-m", command.removeprefix("-m ")]
    return [sys.executable, command if place == "repo_root" else str(REPO_ROOT / command)]


def command_name(command: str) -> str:
    """What the usage line must name: the file's stem or the module's last part."""
    return command.removeprefix("-m ").rsplit(".", 1)[-1] if command.startswith("-m ") else Path(command).stem


def user_env(home: Path, config: Path) -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH help, and a home and configuration of the test's own."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["RL_SYSTEM_HOME"] = str(home)
    env["RL_SYSTEM_CONFIG"] = str(config)
    return env


@dataclass
class HelpRuns:
    futures: dict[tuple[str, str], Future[subprocess.CompletedProcess[str]]]
    """(command, place) -> the finished or running ``--help`` run."""
    elsewhere: Path
    """The working directory of the runs from outside the repository."""


@pytest.fixture(scope="module")
def help_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> HelpRuns:
    """Start every selected ``--help`` run at once (they are independent) and hand out their results."""
    wanted = sorted({(item.callspec.params["command"], item.callspec.params["place"])
                     for item in request.session.items
                     if item.module is request.module and getattr(item, "originalname", "") == "test_help"})
    home = tmp_path_factory.mktemp("home")
    config = tmp_path_factory.mktemp("config") / "rl_system.toml"
    config.write_text("")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    env = user_env(home, config)

    def run(command: str, place: str) -> subprocess.CompletedProcess[str]:
        cwd = REPO_ROOT if place == "repo_root" else elsewhere
        return subprocess.run([*argv(command, place), "--help"], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT, stdin=subprocess.DEVNULL)

    pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))
    request.addfinalizer(lambda: pool.shutdown(wait=True))
    return HelpRuns({key: pool.submit(run, *key) for key in wanted}, elsewhere)


def test_the_readme_commands_are_all_covered() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    files = set(re.findall(r"python ((?:ai|agents|analytics|scripts)/\w+\.py)", readme))
    modules = set(re.findall(r"python -m ((?:ai|agents|analytics|core|market)\.[\w.]+)", readme))
    assert files and modules
    assert files <= set(COMMAND_FILES) | set(SCRIPTS), files - set(COMMAND_FILES) - set(SCRIPTS)
    assert modules <= set(MODULES), modules - set(MODULES)
    assert set(COMMAND_FILES) <= files  # every command file listed here is one the README names
    for path in [*COMMAND_FILES, *SCRIPTS]:
        assert (REPO_ROOT / path).is_file(), path


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("command", COMMANDS)
def test_help(command: str, place: str, help_runs: HelpRuns) -> None:
    done = help_runs.futures[(command, place)].result(timeout=TIMEOUT * 2)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    first = done.stdout.lstrip().splitlines()[0] if done.stdout.strip() else ""
    name = re.escape(command_name(command))
    assert re.match(rf"usage: .*(?<![\w]){name}(?![\w])", first), f"usage line does not name {command}: {first!r}"
    assert "-h, --help" in done.stdout


def test_help_leaves_the_other_working_directory_empty(help_runs: HelpRuns) -> None:
    runs = [future for (_, place), future in help_runs.futures.items() if place == "elsewhere"]
    if not runs:
        pytest.skip("no --help run from another directory was selected")
    for future in runs:
        future.result(timeout=TIMEOUT * 2)
    assert list(help_runs.elsewhere.iterdir()) == []


@pytest.mark.parametrize(("command", "reason"), [
    (["ai/rl_trainer.py", "--train"], "pnl_history.csv"),
    (["ai/rl_inference.py", "--update"], "no model"),
])
def test_one_shot_commands_on_an_empty_home_exit_not_ready(command: list[str], reason: str, tmp_path: Path) -> None:
    home = tmp_path / "empty_home"
    home.mkdir()
    config = tmp_path / "rl_system.toml"
    config.write_text("")
    done = subprocess.run([sys.executable, *command], cwd=REPO_ROOT, env=user_env(home, config),
                          capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == ExitCode.NOT_READY == 3, output[-2000:]
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert reason in output and Path(command[0]).stem in output
    assert not (home / "state" / "rl_model" / "checkpoint_latest.pt").exists()
    assert not (home / "runtime" / "rl_strategy_weights.json").exists()
