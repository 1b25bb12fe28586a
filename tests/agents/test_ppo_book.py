"""The PPO book: its target from the rollout and the decisions, and its share of equity, by hand."""

from __future__ import annotations

import pytest

from agents.ppo_book import BOOK, book_target, book_weight
from core.config import Config
from core.contracts.rollout import Rollout, read_rollout, set_shadow_mode, write_rollout
from core.contracts.shadow_decisions import append_decision, decisions_path, latest_decision
from core.jsonl import append_jsonl

HOUR = 3_600_000
T0 = 1_704_067_200_000


def rollout(pct: float, max_position: float) -> Rollout:
    return Rollout(pct, max_position, True, "2024-01-01T00:00:00Z", "", 0)


def test_the_book_is_named_as_in_the_history() -> None:
    assert BOOK == "rl_v3_ppo"


def test_no_target_without_a_live_rollout_or_in_shadow_mode(cfg: Config) -> None:
    append_decision(cfg, {"timestamp": T0, "exposure": 0.6, "action_name": "LONG"})
    assert book_target(cfg, T0, HOUR) == 0.0  # no rollout
    write_rollout(cfg, 0.0, 100.0, True)
    assert book_target(cfg, T0, HOUR) == 0.0  # Stage 0
    write_rollout(cfg, 5.0, 100.0, True)
    assert book_target(cfg, T0, HOUR) == pytest.approx(0.6)
    set_shadow_mode(cfg, True, reason="paused")
    assert book_target(cfg, T0, HOUR) == 0.0


def test_the_target_follows_the_decision_for_the_candle_or_the_one_before(cfg: Config) -> None:
    write_rollout(cfg, 5.0, 100.0, True)
    append_decision(cfg, {"timestamp": T0, "exposure": -0.4, "action_name": "SHORT"})
    append_decision(cfg, {"timestamp": T0 + 3 * HOUR, "exposure": 0.9, "action_name": "LONG"})
    assert book_target(cfg, T0, HOUR) == pytest.approx(-0.4)
    assert book_target(cfg, T0 + HOUR, HOUR) == pytest.approx(-0.4)  # one candle behind: still followed
    assert book_target(cfg, T0 + 2 * HOUR, HOUR) == 0.0  # two candles behind: too old
    assert book_target(cfg, T0 + 3 * HOUR, HOUR) == pytest.approx(0.9)
    assert book_target(cfg) == pytest.approx(0.9)  # no candle: the newest decision
    assert book_target(cfg, T0 - HOUR, HOUR) == 0.0  # only later decisions: none for this candle


@pytest.mark.parametrize(("decision", "expected"), [
    ({"exposure": 3.0}, 1.0),
    ({"exposure": -2.5}, -1.0),
    ({"exposure": 0.5, "action_name": "EMERGENCY_FLATTEN"}, 0.0),
    ({"exposure": "half"}, 0.0),
    ({"exposure": True}, 0.0),
    ({}, 0.0),
])
def test_the_target_is_clipped_and_bad_exposures_are_flat(cfg: Config, decision: dict[str, object],
                                                          expected: float) -> None:
    write_rollout(cfg, 5.0, 100.0, True)
    append_decision(cfg, {"timestamp": T0, **decision})
    assert book_target(cfg, T0, HOUR) == expected


def test_book_weight_by_hand() -> None:
    # 5 % of 1000 at full exposure is 50 of notional, under the 100 cap: the weight is 0.05
    assert book_weight(rollout(5.0, 100.0), 1000.0) == pytest.approx(0.05)
    # capped at 30: 0.05 * 30 / 50 = 0.03
    assert book_weight(rollout(5.0, 30.0), 1000.0) == pytest.approx(0.03)
    # half exposure: 25 of notional, under the 30 cap
    assert book_weight(rollout(5.0, 30.0), 1000.0, 0.5) == pytest.approx(0.05)
    # 10 % of 4000 at exposure -0.8 is 320 of notional; capped at 80: 0.1 * 80 / 320 = 0.025
    assert book_weight(rollout(10.0, 80.0), 4000.0, -0.8) == pytest.approx(0.025)


def test_no_weight_without_a_live_rollout_or_equity() -> None:
    assert book_weight(None, 1000.0) == 0.0
    assert book_weight(rollout(0.0, 100.0), 1000.0) == 0.0
    assert book_weight(rollout(5.0, 100.0), 0.0) == 0.0
    assert book_weight(rollout(5.0, 100.0), -10.0) == 0.0


def test_book_target_follows_the_latest_decision_only_when_live(cfg: Config) -> None:
    hour = 3_600_000
    append_jsonl(decisions_path(cfg), {"timestamp": 10 * hour, "action_name": "LONG", "exposure": 0.3})
    assert book_target(cfg, 10 * hour, hour) == 0.0  # no rollout yet
    write_rollout(cfg, 5.0, 1000.0, True)
    assert book_target(cfg, 10 * hour, hour) == pytest.approx(0.3)
    assert book_target(cfg, 11 * hour, hour) == pytest.approx(0.3)  # the previous candle's decision
    assert book_target(cfg, 12 * hour, hour) == 0.0  # too old
    with open(decisions_path(cfg), "a") as fh:
        fh.write('{"timestamp": 1')  # a writer killed mid-line
    assert latest_decision(cfg)["exposure"] == 0.3
    append_jsonl(decisions_path(cfg), {"timestamp": 11 * hour, "action_name": "EMERGENCY_FLATTEN", "exposure": 0.0})
    assert book_target(cfg, 11 * hour, hour) == 0.0
    append_jsonl(decisions_path(cfg), {"timestamp": 13 * hour, "action_name": "SHORT", "exposure": -0.2})
    assert book_target(cfg, 12 * hour, hour) == 0.0  # a decision decided ahead is not this candle's
    assert book_target(cfg, 13 * hour, hour) == pytest.approx(-0.2)
    rollout = read_rollout(cfg)
    assert book_weight(rollout, equity=10_000.0) == pytest.approx(0.05)
    assert book_weight(rollout, equity=100_000.0) == pytest.approx(0.01)  # 5 % would be 5000 > 1000 notional
