"""Weight documents: validation reasons, normalization, caps with redistribution, publishing and reading."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.atomic import publish_json
from core.config import STRATEGIES
from core.contracts.weights import (
    apply_caps,
    caps_from_config,
    equal_weights,
    normalize,
    publish_weights,
    read_weights,
    same_weights,
    validate_weights,
)
from core.errors import ConfigError

T, MR, MOM, BO, PAIRS, MACD, BB, VIX = STRATEGIES


def full(**overrides: float) -> dict[str, float]:
    weights = {s: 0.125 for s in STRATEGIES}
    weights.update(overrides)
    return weights


# --- validate_weights ---------------------------------------------------------------------------------------

def test_valid_document_and_bare_mapping_pass() -> None:
    assert validate_weights({"schema_version": 1, "weights": full()}) is None
    assert validate_weights(full()) is None
    assert validate_weights(full(turtle_trading=3.0)) is None  # any positive total can be normalized


@pytest.mark.parametrize(("doc", "expected"), [
    ({"schema_version": 1, "producer": "x"}, "missing `weights` key"),
    ({"weights": [0.5, 0.5]}, "`weights` must be an object"),
    ({"weights": {s: 0.125 for s in STRATEGIES[:-1]}}, "'vix_strategy' missing"),
    ({"weights": full(rl_v3_ppo=0.1)}, "unknown strategy 'rl_v3_ppo'"),
    ({"weights": full(turtle_trading=math.nan)}, "`weights.turtle_trading` is NaN"),
    ({"weights": full(pairs_trading=math.inf)}, "`weights.pairs_trading` is infinite"),
    ({"weights": full(macd_momentum=-0.1)}, "`weights.macd_momentum` is negative"),
    ({"weights": {s: 0.0 for s in STRATEGIES}}, "all weights are zero"),
    ({"weights": full(bollinger_bands="0.1")}, "`weights.bollinger_bands` is not a number"),
    ({"weights": full(bollinger_bands=True)}, "`weights.bollinger_bands` is not a number"),
    ({"weights": full(vix_strategy=None)}, "`weights.vix_strategy` is not a number"),
])
def test_each_invalid_document_names_its_problem(doc: dict, expected: str) -> None:
    problem = validate_weights(doc)
    assert problem is not None and expected in problem


def test_bare_mapping_problems_are_reported_too() -> None:
    assert "'breakout_trading' missing" in validate_weights({s: 1.0 for s in STRATEGIES if s != BO})
    assert "negative" in validate_weights(full(turtle_trading=-1.0))


# --- normalize, equal_weights, same_weights -----------------------------------------------------------------

def test_normalize_divides_by_the_sum_and_keeps_order() -> None:
    out = normalize({"b": 3.0, "a": 1.0})
    assert list(out) == ["b", "a"]
    assert out == {"b": 0.75, "a": 0.25}


@pytest.mark.parametrize("bad", [{"a": -1.0, "b": 2.0}, {"a": math.nan}, {"a": math.inf}, {"a": 0.0, "b": 0.0}])
def test_normalize_refuses_what_cannot_be_normalized(bad: dict) -> None:
    with pytest.raises(ValueError):
        normalize(bad)


def test_equal_weights_are_one_eighth_and_sum_exactly_to_one() -> None:
    eq = equal_weights()
    assert list(eq) == list(STRATEGIES)
    assert set(eq.values()) == {0.125}
    assert sum(eq.values()) == 1.0


def test_same_weights_uses_a_tolerance_and_compares_keys() -> None:
    assert same_weights({"a": 0.5, "b": 0.5}, {"a": 0.5 + 1e-14, "b": 0.5})
    assert not same_weights({"a": 0.5, "b": 0.5}, {"a": 0.6, "b": 0.4})
    assert not same_weights({"a": 1.0}, {"b": 1.0})


# --- apply_caps ---------------------------------------------------------------------------------------------

RAW = {T: 0.40, MR: 0.25, MOM: 0.15, BO: 0.10, PAIRS: 0.05, MACD: 0.05, BB: 0.0, VIX: 0.0}


def test_caps_one_round_of_redistribution_by_hand() -> None:
    # max 0.30: turtle gives up 0.10; min 0.02 lifts the two zero weights, costing 0.04. The uncapped five
    # (0.60 in total) share 1 - 0.30 - 0.04 = 0.66, i.e. each is scaled by 0.66 / 0.60 = 1.1.
    out = apply_caps(RAW, 0.02, 0.30)
    expected = {T: 0.30, MR: 0.275, MOM: 0.165, BO: 0.11, PAIRS: 0.055, MACD: 0.055, BB: 0.02, VIX: 0.02}
    assert out == pytest.approx(expected, abs=1e-12)


def test_caps_two_rounds_of_redistribution_by_hand() -> None:
    # max 0.25: turtle capped; the rest scaled by (0.96 - 0.25) / 0.60 puts mean_reversion at 0.296 > 0.25, so
    # it is capped too; the last four (0.35 in total) share 0.96 - 0.50 = 0.46.
    out = apply_caps(RAW, 0.02, 0.25)
    k = 0.46 / 0.35
    expected = {T: 0.25, MR: 0.25, MOM: 0.15 * k, BO: 0.10 * k, PAIRS: 0.05 * k, MACD: 0.05 * k, BB: 0.02, VIX: 0.02}
    assert out == pytest.approx(expected, abs=1e-12)
    assert math.fsum(out.values()) == pytest.approx(1.0, abs=1e-12)


def test_a_minimum_takes_its_shortfall_proportionally_from_the_others() -> None:
    raw = {T: 0.5, MR: 0.3, MOM: 0.195, BO: 0.005, PAIRS: 0, MACD: 0, BB: 0, VIX: 0}
    out = apply_caps(raw, {BO: 0.05}, 1.0)
    k = 0.95 / 0.995
    assert out == pytest.approx({T: 0.5 * k, MR: 0.3 * k, MOM: 0.195 * k, BO: 0.05, PAIRS: 0, MACD: 0, BB: 0,
                                 VIX: 0}, abs=1e-12)


def test_mass_left_when_every_positive_weight_is_capped_goes_equally_to_the_zero_ones() -> None:
    raw = {s: 0.0 for s in STRATEGIES} | {T: 1.0}
    out = apply_caps(raw, 0.0, 0.3)
    assert out[T] == pytest.approx(0.3)
    assert [out[s] for s in STRATEGIES[1:]] == pytest.approx([0.1] * 7)


def test_per_strategy_caps_and_no_caps() -> None:
    out = apply_caps(full(), {}, {VIX: 0.05})
    assert out[VIX] == pytest.approx(0.05)
    assert [out[s] for s in STRATEGIES[:-1]] == pytest.approx([0.95 / 7] * 7)
    assert apply_caps(RAW) == pytest.approx(RAW)


@pytest.mark.parametrize(("lo", "hi", "message"), [
    (0.2, 1.0, "minimum weights sum to 1.6 > 1"),
    (0.0, 0.1, "maximum weights sum to 0.8 < 1"),
    ({T: 0.3}, {T: 0.2}, "above its maximum"),
    (-0.1, 1.0, "must lie in [0, 1]"),
])
def test_infeasible_caps_are_a_config_error(lo, hi, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        apply_caps(RAW, lo, hi)


def test_caps_from_config_merges_overrides_and_rejects_unknown_names() -> None:
    lo, hi = caps_from_config(0.01, 0.5, {VIX: 0.05}, {T: 0.2})
    assert lo[VIX] == 0.05 and lo[T] == 0.01 and hi[T] == 0.2 and hi[VIX] == 0.5
    with pytest.raises(ConfigError, match="bridge.max_weights.turtle"):
        caps_from_config(0.0, 1.0, {}, {"turtle": 0.2})


positive = st.floats(min_value=0.0, max_value=10.0, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(raw=st.lists(positive, min_size=8, max_size=8).filter(lambda v: sum(v) > 1e-6),
       lo=st.floats(min_value=0.0, max_value=0.12), hi=st.floats(min_value=0.13, max_value=1.0))
def test_caps_properties(raw: list[float], lo: float, hi: float) -> None:
    weights = dict(zip(STRATEGIES, raw, strict=True))
    out = apply_caps(weights, lo, hi)
    assert math.fsum(out.values()) == pytest.approx(1.0, abs=1e-9)
    assert all(lo - 1e-12 <= v <= hi + 1e-12 for v in out.values())
    # Strategies strictly inside the bounds keep their proportions (one common scale); shares below 1e-15
    # count as zero by design, so they are left out here.
    total = math.fsum(raw)
    inside = [s for s in STRATEGIES if weights[s] / total > 1e-12 and lo + 1e-9 < out[s] < hi - 1e-9]
    ratios = [out[s] / weights[s] for s in inside]
    assert max(ratios, default=1) == pytest.approx(min(ratios, default=1), rel=1e-9)


# --- publish_weights and read_weights -----------------------------------------------------------------------

def test_publish_normalizes_orders_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    raw = {s: float(i + 1) for i, s in reversed(list(enumerate(STRATEGIES)))}
    doc = publish_weights(path, "tester", raw, method="test", scores={T: 1.5})
    on_disk = json.loads(path.read_text())
    assert on_disk == doc
    assert list(on_disk["weights"]) == list(STRATEGIES)
    assert on_disk["weights"][T] == pytest.approx(1 / 36)
    assert math.fsum(on_disk["weights"].values()) == pytest.approx(1.0, abs=1e-9)
    assert on_disk["producer"] == "tester" and on_disk["method"] == "test" and "generated_at" in on_disk
    result = read_weights(path)
    assert result.ok and result.data == on_disk


@pytest.mark.parametrize("bad", [full(turtle_trading=math.nan), full(turtle_trading=-0.5),
                                 {s: 0.2 for s in STRATEGIES[:5]}])
def test_publish_refuses_invalid_weights_and_writes_nothing(tmp_path: Path, bad: dict) -> None:
    path = tmp_path / "w.json"
    with pytest.raises(ValueError, match="w.json: refusing to publish"):
        publish_weights(path, "tester", bad)
    assert not path.exists()


def test_publish_refuses_nan_in_extra_fields(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    with pytest.raises(ValueError, match="non-finite"):
        publish_weights(path, "tester", full(), scores={T: math.nan})
    assert not path.exists()


def test_read_weights_reports_absent_invalid_and_stale(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    assert read_weights(path).status == "absent"
    path.write_text('{"weights": {"turtle_trading": NaN}}')
    assert read_weights(path).status == "invalid"
    publish_json(path, "tester", {"weights": full(vix_strategy=-1)})
    bad = read_weights(path)
    assert bad.status == "invalid" and "negative" in bad.reason
    doc = publish_json(path, "tester", {"weights": full()}) | {"generated_at": "2020-01-01T00:00:00Z"}
    path.write_text(json.dumps(doc))
    first = read_weights(path, max_age_s=60)
    assert first.status == "stale" and "2020-01-01T00:00:00Z" in first.reason and first.age_s > 60
    os.utime(path, (time.time() - 5, time.time() - 5))
    assert read_weights(path, max_age_s=60).reason == first.reason  # stable while the file is unchanged
    assert read_weights(path, max_age_s=0).ok  # 0 disables the age check
