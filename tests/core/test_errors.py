"""The exception hierarchy (fatal versus retryable) and the exit codes of the README's "Exit codes" paragraph."""

from __future__ import annotations

import enum
import subprocess
import sys

import pytest

from core.config import REPO_ROOT
from core.errors import (
    ConfigError,
    DataError,
    ExitCode,
    FatalError,
    RetryableError,
    RLSystemError,
)


@pytest.mark.parametrize("cls", [ConfigError, DataError])
def test_config_and_data_errors_are_fatal(cls: type[Exception]) -> None:
    assert issubclass(cls, FatalError) and issubclass(cls, RLSystemError)
    assert not issubclass(cls, RetryableError)
    with pytest.raises(FatalError, match="names the key"):
        raise cls("names the key")


def test_retryable_is_not_fatal() -> None:
    assert issubclass(RetryableError, RLSystemError)
    assert not issubclass(RetryableError, FatalError)
    assert not issubclass(FatalError, RetryableError)
    with pytest.raises(RetryableError):
        try:
            raise RetryableError("rate limited")
        except FatalError:
            pytest.fail("a retryable error was caught as fatal")


def test_every_error_is_an_exception_of_the_suite() -> None:
    for cls in (FatalError, RetryableError, ConfigError, DataError):
        assert issubclass(cls, Exception) and issubclass(cls, RLSystemError)
    assert not issubclass(RLSystemError, (FatalError, RetryableError))
    assert not issubclass(ConfigError, DataError) and not issubclass(DataError, ConfigError)


def test_the_message_is_kept() -> None:
    error = DataError("pnl_history.csv: column `pnl_pct` missing")
    assert str(error) == "pnl_history.csv: column `pnl_pct` missing"


# The README: 0 done, 1 a failure outside the input, 2 bad configuration or input, 3 not enough data yet /
# a rollout refused, 4 a trained candidate failed validation, 130 on Ctrl-C.
README_EXIT_CODES = {
    "OK": 0,
    "FAILURE": 1,
    "BAD_INPUT": 2,
    "NOT_READY": 3,
    "NOT_PROMOTED": 4,
    "INTERRUPTED": 130,
}


def test_exit_codes_are_exactly_the_readmes() -> None:
    assert {code.name: code.value for code in ExitCode} == README_EXIT_CODES
    assert len({code.value for code in ExitCode}) == len(ExitCode)  # no alias hides a member


def test_exit_codes_are_ints() -> None:
    assert issubclass(ExitCode, enum.IntEnum)
    for name, value in README_EXIT_CODES.items():
        code = ExitCode[name]
        assert isinstance(code, int) and code == value and int(code) == value
        assert ExitCode(value) is code


def test_interrupted_is_what_shells_report_for_sigint() -> None:
    import signal

    assert ExitCode.INTERRUPTED == 128 + signal.SIGINT


@pytest.mark.parametrize("name", sorted(README_EXIT_CODES))
def test_sys_exit_takes_an_exit_code_as_its_integer(name: str) -> None:
    code = f"import sys; from core.errors import ExitCode; sys.exit(ExitCode.{name})"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == README_EXIT_CODES[name]
    assert done.stderr == ""  # an int status prints nothing (a non-int would be printed and exit 1)


def test_system_exit_carries_the_code() -> None:
    with pytest.raises(SystemExit) as info:
        sys.exit(ExitCode.NOT_READY)
    assert info.value.code == 3 and isinstance(info.value.code, int)

