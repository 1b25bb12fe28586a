"""The Q-learning agent: the update rule against closed-form values, greedy and epsilon-greedy choice,
refused values, and the progress that makes each trade learned exactly once."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from ai.tabular.agent import Progress, QAgent, StateRow


def agent(n_actions: int = 2, default: int = 0, **kw: float) -> QAgent:
    params = {"alpha": 0.1, "gamma": 0.9, "epsilon": 0.1, "epsilon_decay": 1.0, "epsilon_min": 0.0, **kw}
    return QAgent("meta", n_actions, default, **params)  # type: ignore[arg-type]


def test_one_update_matches_the_formula_by_hand() -> None:
    a = agent(alpha=0.5, gamma=0.9)
    a.update("s2", 1, 2.0, next_value=0.0)  # Q(s2,1) = 0.5 * 2 = 1
    assert a.q_value("s2", 1) == pytest.approx(1.0)
    a.learn("s1", {0: 1.0}, "s2")  # 0 + 0.5 * (1 + 0.9 * 1 - 0) = 0.95
    assert a.q_value("s1", 0) == pytest.approx(0.95)
    a.learn("s1", {0: 1.0}, "s2")  # 0.95 + 0.5 * (1.9 - 0.95) = 1.425
    assert a.q_value("s1", 0) == pytest.approx(1.425)
    assert a.table["s1"].visits == 2 and a.table["s1"].q[0][1] == 2 and a.updates == 2


def test_two_state_chain_converges_to_the_closed_form_values() -> None:
    # A -> B earns 1, B -> A earns 0, forever: V(A) = 1 / (1 - g^2), V(B) = g / (1 - g^2).
    gamma = 0.9
    a = agent(n_actions=1, alpha=0.1, gamma=gamma)
    for _ in range(3000):
        a.learn("A", {0: 1.0}, "B")
        a.learn("B", {0: 0.0}, "A")
    assert a.q_value("A", 0) == pytest.approx(1 / (1 - gamma**2), rel=1e-3)
    assert a.q_value("B", 0) == pytest.approx(gamma / (1 - gamma**2), rel=1e-3)


def test_two_state_chain_with_choices_converges_to_value_iteration() -> None:
    # A: action 0 -> B (+1), action 1 -> A (+0.5); B: action 0 -> A (0), action 1 -> B (+0.2).
    gamma = 0.8
    moves = {("A", 0): ("B", 1.0), ("A", 1): ("A", 0.5), ("B", 0): ("A", 0.0), ("B", 1): ("B", 0.2)}
    q_star = {k: 0.0 for k in moves}
    for _ in range(2000):  # value iteration, independent of the agent
        q_star = {k: r + gamma * max(q_star[(s2, 0)], q_star[(s2, 1)]) for k, (s2, r) in moves.items()}
    a = agent(alpha=0.05, gamma=gamma)
    for _ in range(6000):
        for (s, act), (s2, r) in moves.items():
            a.learn(s, {act: r}, s2)
    for (s, act), value in q_star.items():
        assert a.q_value(s, act) == pytest.approx(value, rel=2e-3)
    assert a.greedy_action("A") == 0 and a.greedy_action("B") == 0


def test_greedy_ties_prefer_the_default_and_unknown_states_get_it() -> None:
    a = agent(n_actions=4, default=2)
    assert a.greedy_action("unknown") == 2
    a.update("s", 3, 1.0, 0.0)
    a.update("s", 1, 1.0, 0.0)
    assert a.greedy_action("s") == 1  # tie between 1 and 3: the lowest index
    a.update("s", 2, 1.0, 0.0)
    assert a.greedy_action("s") == 2  # tie including the default: the default
    a.update("s", 0, 5.0, 0.0)
    assert a.greedy_action("s") == 0


def test_epsilon_decays_to_its_floor_and_epsilon_greedy_explores_at_that_rate() -> None:
    a = agent(n_actions=10, epsilon=0.5, epsilon_decay=0.5, epsilon_min=0.1)
    for _ in range(5):
        a.learn("s", {3: 1.0}, None)
    assert a.epsilon == pytest.approx(0.1)
    rng = np.random.default_rng(7)
    picks = [a.select_action("s", rng) for _ in range(4000)]
    explored = sum(flag for _, flag in picks) / len(picks)
    assert explored == pytest.approx(0.1, abs=0.02)
    assert all(act == 3 for act, flag in picks if not flag)
    assert len({a.select_action("s", np.random.default_rng(3)) for _ in range(5)}) == 1  # one seed, one draw


def test_invalid_values_are_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        agent(alpha=0.0)
    with pytest.raises(ValueError, match="gamma"):
        agent(gamma=1.0)
    a = agent()
    with pytest.raises(ValueError, match="not finite"):
        a.update("s", 0, math.nan, 0.0)
    with pytest.raises(ValueError, match="outside"):
        a.update("s", 5, 1.0, 0.0)


def test_progress_recognises_late_trades_within_the_window_only() -> None:
    p = Progress()
    p.mark("a", 10_000)
    p.mark("b", 20_000)
    p.prune(late_window_ms=5_000, max_keys=100)
    assert p.learned_before_ms == 15_000 and set(p.recent_keys) == {"b"}
    assert p.is_learned("a", 10_000)  # before the cut-off: learned by construction
    assert not p.is_learned("c", 16_000)  # a late arrival inside the window is still new
    for i in range(10):
        p.mark(f"k{i}", 20_000 + i)
    p.prune(late_window_ms=5_000, max_keys=4)
    assert len(p.recent_keys) == 4 and p.learned_before_ms == 20_006
    assert p.is_learned("k0", 20_000)


def _deep_size(obj: object) -> int:
    """Bytes of ``obj`` and everything it holds (containers, slots, arrays' buffers), each object counted once."""
    seen: set[int] = set()

    def size(o: object) -> int:
        if id(o) in seen:
            return 0
        seen.add(id(o))
        total = sys.getsizeof(o)
        if isinstance(o, dict):
            total += sum(size(k) + size(v) for k, v in o.items())
        elif isinstance(o, (list, tuple)):
            total += sum(size(v) for v in o)
        for slot in getattr(type(o), "__slots__", ()):
            total += size(getattr(o, slot))
        return total

    return size(obj)


def test_a_state_row_stays_compact_and_reads_as_before() -> None:
    a = agent(n_actions=40)
    for step in range(3):
        a.learn("s", {action: 0.1 * action - step for action in range(40)}, None)
    # Against the representation it replaced, a dict of [q, n] lists (about 150 bytes an action).
    lists = {action: [0.1 * action + 0.5, 3] for action in range(40)}
    assert _deep_size(a.table["s"]) < 0.25 * _deep_size(lists)
    row = a.table["s"]
    expected = 0.0
    for reward in (3.9, 2.9, 1.9):  # alpha 0.1, a terminal step: Q += alpha * (r - Q)
        expected += 0.1 * (reward - expected)
    assert row.visits == 3 and row.q[39] == [pytest.approx(expected), 3]
    assert StateRow(2, {5: [0.5, 2], 1: [-0.25, 1]}).q == {5: [0.5, 2], 1: [-0.25, 1]}  # the order learned
