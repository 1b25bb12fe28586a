"""Q-table backups: due on the configured cron (weekly by default) after the newest scheduled one, complete or
absent (atomic), pruned to the retention count, and restored only after the current tables are backed up."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ai.tabular import daemon as daemon_module
from ai.tabular.backups import backup_if_due, backup_now, next_backup_due, restore_backup
from ai.tabular.store import load_agent, new_agent, save_agent_file
from core.config import Config, replace_section
from core.contracts.qtables import (
    BACKUP_MANIFEST,
    agent_path,
    backup_root,
    find_backup,
    list_backups,
)
from core.daemon import DaemonContext
from core.errors import ConfigError, DataError

SATURDAY = datetime(2024, 1, 6, 12, 0, tzinfo=timezone.utc)
SUNDAY_4AM = datetime(2024, 1, 7, 4, 0, tzinfo=timezone.utc)


def write_tables(cfg: Config, marker: float) -> None:
    """Both agents' files, each with one state whose Q-value is ``marker`` (to tell versions apart)."""
    for name in ("meta", "sizing"):
        agent = new_agent(cfg, name)
        agent.update("s0", 0, marker, 0.0)
        path = agent_path(cfg, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_agent_file(agent, path)


def q_marker(cfg: Config, name: str = "meta") -> float:
    return load_agent(cfg, name).learned_actions("s0")[0]


def test_weekly_by_default_first_cron_time_after_start(cfg: Config) -> None:
    assert cfg.qlearning.backup_cron == "0 4 * * 0" and cfg.qlearning.backup_keep >= 1
    assert next_backup_due(cfg, SATURDAY) == SUNDAY_4AM
    assert next_backup_due(replace_section(cfg, "qlearning", backup_cron=""), SATURDAY) is None


def test_scheduled_backup_copies_the_tables_atomically_once_per_period(cfg: Config) -> None:
    write_tables(cfg, 1.0)
    assert backup_if_due(cfg, SATURDAY, now=SUNDAY_4AM - timedelta(minutes=1)) is None  # not due yet
    made = backup_if_due(cfg, SATURDAY, now=SUNDAY_4AM + timedelta(minutes=1))
    assert made is not None and made.name == "weekly_2024-01-07" and made.agents == ("meta", "sizing")
    for name in ("meta", "sizing"):
        assert (made.path / agent_path(cfg, name).name).read_bytes() == agent_path(cfg, name).read_bytes()
    manifest = json.loads((made.path / BACKUP_MANIFEST).read_text())
    assert manifest["kind"] == "weekly" and {"schema_version", "generated_at", "producer"} <= manifest.keys()
    assert [p.name for p in backup_root(cfg).iterdir()] == ["weekly_2024-01-07"]  # no temporary folder left
    # the next one is due a week later, not at every pass
    assert backup_if_due(cfg, SATURDAY, now=SUNDAY_4AM + timedelta(days=3)) is None
    assert next_backup_due(cfg, SATURDAY) == SUNDAY_4AM + timedelta(days=7)


def test_retention_keeps_the_newest_scheduled_backups(cfg: Config) -> None:
    cfg = replace_section(cfg, "qlearning", backup_keep=2)
    write_tables(cfg, 1.0)
    backup_now(cfg, now=SATURDAY)  # a manual one is never pruned
    for week in range(4):
        assert backup_if_due(cfg, SATURDAY, now=SUNDAY_4AM + timedelta(days=7 * week, minutes=5)) is not None
    names = [b.name for b in list_backups(cfg)]
    assert names == ["manual_2024-01-06T120000Z", "weekly_2024-01-21", "weekly_2024-01-28"]


def test_nothing_to_back_up_on_a_fresh_machine(cfg: Config) -> None:
    assert backup_if_due(cfg, SATURDAY, now=SUNDAY_4AM + timedelta(hours=1)) is None
    assert backup_now(cfg) is None and list_backups(cfg) == []


def test_a_failed_backup_leaves_no_folder(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tables(cfg, 1.0)

    def full_disk(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("core.contracts.qtables.atomic_write_text", full_disk)  # the manifest, written last
    with pytest.raises(OSError, match="No space"):
        backup_now(cfg, now=SATURDAY)
    assert list(backup_root(cfg).iterdir()) == [] and list_backups(cfg) == []


def test_restore_backs_up_the_current_tables_first(cfg: Config) -> None:
    write_tables(cfg, 1.0)
    old = backup_now(cfg, now=SATURDAY)
    assert old is not None
    write_tables(cfg, 5.0)
    before = q_marker(cfg)
    result = restore_backup(cfg, old.name, now=SUNDAY_4AM)
    assert q_marker(cfg) == pytest.approx(q_marker_of_value(cfg, 1.0)) != pytest.approx(before)
    assert result.previous is not None and result.previous.kind == "pre_restore"
    # the replaced tables can be restored in turn
    restore_backup(cfg, result.previous.name, now=SUNDAY_4AM + timedelta(seconds=1))
    assert q_marker(cfg) == pytest.approx(before)


def q_marker_of_value(cfg: Config, reward: float) -> float:
    agent = new_agent(cfg, "meta")
    agent.update("s0", 0, reward, 0.0)
    return agent.learned_actions("s0")[0]


def test_restore_refuses_an_unknown_or_broken_backup_without_touching_the_tables(cfg: Config) -> None:
    write_tables(cfg, 1.0)
    with pytest.raises(DataError, match="no Q-table backup `weekly_1999-01-01`"):
        restore_backup(cfg, "weekly_1999-01-01")
    made = backup_now(cfg, now=SATURDAY)
    assert made is not None
    (made.path / agent_path(cfg, "sizing").name).write_text("{not json")
    current = {n: agent_path(cfg, n).read_bytes() for n in ("meta", "sizing")}
    with pytest.raises(DataError, match="not valid JSON"):
        restore_backup(cfg, made.name)
    assert {n: agent_path(cfg, n).read_bytes() for n in ("meta", "sizing")} == current
    assert [b.kind for b in list_backups(cfg)] == ["manual"]  # no pre-restore backup of a refused restore
    assert find_backup(cfg, made.name).path == made.path


def test_bad_backup_settings_are_refused_by_name(cfg: Config) -> None:
    with pytest.raises(ConfigError, match="qlearning.backup_cron"):
        replace_section(cfg, "qlearning", backup_cron="weekly")
    with pytest.raises(ConfigError, match="qlearning.backup_keep"):
        replace_section(cfg, "qlearning", backup_keep=0)


def test_daemon_makes_the_scheduled_backup(cfg: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tables(cfg, 1.0)
    cfg = replace_section(cfg, "qlearning", backup_cron="* * * * *", recheck_interval_s=0.2)
    ctx = DaemonContext("qlearning", cfg)
    monkeypatch.setattr(daemon_module, "_pass_and_beat", lambda *_: None)  # learning is tested elsewhere
    started = datetime.now(timezone.utc) - timedelta(minutes=2)  # a cron minute has passed since the start
    monkeypatch.setattr(daemon_module, "backup_if_due",
                        lambda c, _s: backup_if_due(c, started))
    thread = threading.Thread(target=daemon_module.loop, args=(cfg, ctx))
    thread.start()
    try:
        deadline = datetime.now(timezone.utc) + timedelta(seconds=10)
        while datetime.now(timezone.utc) < deadline and not list_backups(cfg):
            threading.Event().wait(0.05)
    finally:
        ctx.stop.set()
        thread.join(timeout=10)
    assert [b.kind for b in list_backups(cfg)] == ["weekly"]
    assert json.loads(ctx.heartbeat_path.read_text())["last_backup"] == list_backups(cfg)[0].name
