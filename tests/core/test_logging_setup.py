"""Logging setup: one rotating log file per daemon under runtime/logs/, secrets redacted everywhere."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterator

import pytest

from core.config import Config, LoggingConfig, replace_section
from core.errors import ConfigError
from core.logging_setup import redact, setup_logging

SECRET = "s3cr3t-VALUE-42"


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """setup_logging replaces the root handlers; put pytest's back and close ours afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def flush() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


SECTIONS = [f.name for f in dataclasses.fields(Config)]


def test_daemon_log_file_lives_under_runtime_logs(cfg: Config) -> None:
    path = setup_logging(cfg, "rl_trainer", console=False)
    assert path == cfg.runtime_dir / "logs" / "rl_trainer.log"
    logging.getLogger("ai.allocation.trainer").info("trained %d epochs", 3)
    flush()
    lines = path.read_text(encoding="utf-8").strip().splitlines()
    first, config_lines, line = lines[0], lines[1:-1], lines[-1]
    assert " INFO rl_trainer: effective config (home " in first  # every daemon's log starts with its settings
    assert first.endswith(f"{len(SECTIONS)} section(s)") and len(config_lines) > len(SECTIONS)
    costs = next(x for x in config_lines if "[costs] " in x)
    assert json.loads(costs.split("[costs] ", 1)[1]) == dataclasses.asdict(cfg.costs)
    assert max(len(x) for x in config_lines) < 2000  # readable lines, not one 5 KB blob
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO ai\.allocation\.trainer: trained 3 epochs", line)


def test_effective_config_goes_to_the_file_not_the_terminal(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    path = setup_logging(cfg, "paper_trader", console=True)  # a daemon run in the foreground
    logging.getLogger("agents.paper_trader").info("candle processed")
    flush()
    err = capsys.readouterr().err
    assert "candle processed" in err and "effective config" not in err and "[costs]" not in err
    assert path.read_text(encoding="utf-8").count("effective config") == 1


def test_effective_config_is_logged_even_when_the_level_is_warning(cfg: Config) -> None:
    path = setup_logging(replace_section(cfg, "logging", level="WARNING"), "quiet_one", console=False)
    flush()
    assert "effective config" in path.read_text(encoding="utf-8")


def test_library_loggers_are_held_at_warning_by_default(cfg: Config) -> None:
    path = setup_logging(cfg, "rl_inference", console=False)
    logging.getLogger("apscheduler.scheduler").info('Added job "publish" to job store "default"')
    logging.getLogger("ccxt.base.exchange").debug("GET https://api.binance.com/api/v3/klines")
    logging.getLogger("watchdog.observers").info("observer started")
    logging.getLogger("apscheduler.executors.default").warning("Run time of job was missed")
    logging.getLogger("ai.allocation.inference").info("published weights")
    flush()
    text = path.read_text(encoding="utf-8")
    assert "Added job" not in text and "klines" not in text and "observer started" not in text
    assert "Run time of job was missed" in text and "published weights" in text


def test_library_level_is_configurable(cfg: Config) -> None:
    chatty = replace_section(cfg, "logging", library_level="INFO", library_loggers=["apscheduler"])
    path = setup_logging(chatty, "rl_trainer", console=False)
    logging.getLogger("apscheduler.scheduler").info('Added job "retrain"')
    flush()
    assert 'Added job "retrain"' in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("key", "value"), [("library_level", "LOUD"), ("command_console_level", "verbose"),
                                            ("library_loggers", ["ccxt", " "])])
def test_bad_logging_settings_are_refused_by_name(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"logging.{key} = "):
        LoggingConfig(**{key: value})  # type: ignore[arg-type]


def test_one_shot_command_terminal_shows_warnings_not_steps(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(cfg)  # a command such as `rl_performance.py --report`: its printed result is the output
    logging.getLogger("analytics.performance.report").info("wrote report.json")
    logging.getLogger("analytics.performance.report").warning("history has 2 malformed rows")
    err = capsys.readouterr().err
    assert "wrote report.json" not in err and "2 malformed rows" in err
    setup_logging(replace_section(cfg, "logging", command_console_level="INFO"))
    logging.getLogger("analytics.performance.report").info("wrote report.json")
    assert "wrote report.json" in capsys.readouterr().err


def test_started_daemons_log_to_the_file_only(cfg: Config, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RL_SYSTEM_LOG_CONSOLE", "0")
    path = setup_logging(cfg, "qlearning")
    logging.getLogger("ai.tabular.learner").warning("learned")
    flush()
    assert "learned" in path.read_text(encoding="utf-8")
    assert "learned" not in capsys.readouterr().err


def test_no_daemon_means_no_file(cfg: Config) -> None:
    assert setup_logging(cfg, None, console=True) is None
    assert not (cfg.runtime_dir / "logs").exists()


def test_each_daemon_gets_its_own_file(cfg: Config) -> None:
    first = setup_logging(cfg, "weights_bridge", console=False)
    logging.getLogger("bridge").warning("one")
    second = setup_logging(cfg, "rl_inference", console=False)
    logging.getLogger("inference").warning("two")
    flush()
    assert first != second
    assert "one" in first.read_text(encoding="utf-8") and "two" not in first.read_text(encoding="utf-8")
    assert "two" in second.read_text(encoding="utf-8") and "one" not in second.read_text(encoding="utf-8")


def test_calling_twice_does_not_duplicate_lines(cfg: Config) -> None:
    setup_logging(cfg, "dup", console=True)
    path = setup_logging(cfg, "dup", console=False)
    assert len(logging.getLogger().handlers) == 1
    logging.getLogger("x").warning("only once")
    flush()
    assert path.read_text(encoding="utf-8").count("only once") == 1


def test_level_comes_from_config(cfg: Config) -> None:
    path = setup_logging(replace_section(cfg, "logging", level="warning"), "quiet", console=False)
    log = logging.getLogger("quiet")
    log.info("below-the-level line")
    log.warning("shown")
    flush()
    text = path.read_text(encoding="utf-8")
    assert "shown" in text and "below-the-level line" not in text


def test_file_rotates_and_keeps_the_configured_backups(cfg: Config) -> None:
    small = replace_section(cfg, "logging", max_bytes=400, backups=2)
    path = setup_logging(small, "chatty", console=False)
    log = logging.getLogger("chatty")
    for i in range(60):
        log.info("message number %03d with some padding to fill the file", i)
    flush()
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == ["chatty.log", "chatty.log.1", "chatty.log.2"]
    for p in path.parent.iterdir():
        assert p.stat().st_size <= 400
    assert "message number 059" in path.read_text(encoding="utf-8")  # the newest is in the live file
    kept = "".join(p.read_text(encoding="utf-8") for p in path.parent.iterdir())
    assert "message number 000" not in kept  # the oldest rotated away


@pytest.mark.parametrize("message", [
    f"connecting with apiKey={SECRET}",
    f"env API_KEY={SECRET} loaded",
    f"EXCHANGE_SECRET_KEY={SECRET}",
    f"password: {SECRET}",
    f"settings {{'secret': '{SECRET}', 'timeout': 10}}",
    f'{{"api_key": "{SECRET}", "n": 1}}',
    f"GET https://example.invalid/v1?symbol=BTC&apikey={SECRET}&limit=5",
    f"Authorization: Bearer {SECRET}",
    f"access_token={SECRET}",
    f"passphrase = '{SECRET} with spaces'",
])
def test_redact_masks_secret_values(message: str) -> None:
    cleaned = redact(message)
    assert SECRET not in cleaned
    assert "***" in cleaned


@pytest.mark.parametrize("message", [
    "symbol=BTC/USDT qty=0.5 price=42000.0",
    "published weights {'turtle_trading': 0.125}",
    "heartbeat ok, uptime 12.5s",
])
def test_redact_leaves_ordinary_text_alone(message: str) -> None:
    assert redact(message) == message


def test_redact_keeps_what_follows_the_secret() -> None:
    assert redact(f"apikey={SECRET}&limit=5") == "apikey=***&limit=5"
    assert redact(f"{{'secret': '{SECRET}', 'timeout': 10}}") == "{'secret': ***, 'timeout': 10}"


def test_secrets_never_reach_file_or_console(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    path = setup_logging(cfg, "leaky", console=True)
    log = logging.getLogger("agents.paper_trader")
    log.info("using apiKey=%s", SECRET)                     # in the arguments
    log.warning("config %s", {"password": SECRET})          # in a formatted dict
    try:
        raise RuntimeError(f"request failed: token={SECRET}")
    except RuntimeError:
        log.exception("fetch failed")                       # in the traceback text
    flush()
    text = path.read_text(encoding="utf-8")
    console = capsys.readouterr().err
    for output in (text, console):
        assert SECRET not in output
        assert "apiKey=***" in output
        assert "'password': ***" in output
        assert "token=***" in output
        assert "RuntimeError" in output  # the traceback is still there, only the value is masked
