"""A tabular Q-learning agent: the Q-table, the update rule, epsilon-greedy choice and its JSON file.

The update, for a transition from state ``s`` by action ``a`` with reward ``r`` to state ``s'``::

    Q(s, a) += alpha * (r + gamma * max_a' Q(s', a') - Q(s, a))

where the max runs over the actions already learned in ``s'`` (0 for a state never met: the table starts at
zero). One learning step (one closed trade) may update several actions of the same state from the same
transition (see :mod:`ai.tabular.actions`); they all use the ``max Q(s')`` taken before the step, so the order
of the actions does not matter. Every entry counts its updates, every state its visits (learning steps that
started there); the agent counts learning steps (``updates``, the figure the monitor's stages use) and single
Q-value updates (``q_updates``). After every step epsilon decays: ``epsilon = max(epsilon_min, epsilon *
epsilon_decay)``.

Greedy choice: the action with the highest Q-value among those learned in the state; a tie prefers the
agent's neutral default action, then the lowest index; a state with nothing learned gives the default.
Epsilon-greedy: with probability epsilon a uniformly random action, else the greedy one.

:meth:`QAgent.to_document` and :meth:`QAgent.load_document` convert the agent to and from its file's content
(:mod:`core.contracts.qtables` owns the file: path, schema and reading); :mod:`ai.tabular.store` reads and
writes the files.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np

from core.atomic import utc_now_iso
from core.contracts.qtables import QTableDocument, RewardStats, StateEntry, qtable_document

PRODUCER = "ai.tabular.learner"
"""The ``producer`` of the Q-table and policy files (the learning daemon's historical module name)."""
TUNABLE: tuple[str, ...] = ("alpha", "gamma", "epsilon")
TUNING_HISTORY_MAX = 100
TD_EMA_WEIGHT = 0.01
"""Weight of the newest step in the running mean absolute TD error."""
EARLY_UPDATES, MATURE_UPDATES = 100, 1000
"""Learning-stage bounds in learning steps (trades learned), shared by the monitor and the tuning advice."""


def learning_stage(updates: int) -> str:
    """``early`` (< 100 updates), ``active`` (100-1000) or ``mature`` (> 1000), as in the tuning guidelines."""
    if updates < EARLY_UPDATES:
        return "early"
    return "active" if updates <= MATURE_UPDATES else "mature"


def validate_hyperparameter(name: str, value: float) -> str | None:
    """Why ``value`` is not a valid ``name`` (alpha, gamma or epsilon), or None."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return f"{name} must be a finite number, got {value!r}"
    rules = {"alpha": (0.0 < value <= 1.0, "in (0, 1]"), "gamma": (0.0 <= value < 1.0, "in [0, 1)"),
             "epsilon": (0.0 <= value <= 1.0, "in [0, 1]")}
    if name not in rules:
        return f"unknown hyperparameter {name!r}; tunable: {', '.join(TUNABLE)}"
    ok, rule = rules[name]
    return None if ok else f"{name} = {value:g} is out of range: it must be {rule}"


@dataclass
class Progress:
    """Which trades an agent has learned from, so each is learned exactly once, also across restarts.

    Trades closing before ``learned_before_ms`` count as learned; from there on, the keys of the trades learned
    are kept (``recent_keys``: key -> closed time in ms). The cut-off follows the newest trade learned
    (``high_water_ms``) at a distance of ``qlearning.late_window_s``, so a trade appended late (a trader
    catching up after a restart) is still recognised, and at most ``qlearning.max_recent_keys`` keys are kept.
    """

    high_water_ms: int | None = None
    learned_before_ms: int | None = None
    recent_keys: dict[str, int] = field(default_factory=dict)
    trades_learned: int = 0
    trades_skipped: int = 0
    last_skip_reason: str = ""
    last_trade: dict[str, Any] | None = None

    def is_learned(self, key: str, closed_ms: int) -> bool:
        if key in self.recent_keys:
            return True
        return self.learned_before_ms is not None and closed_ms < self.learned_before_ms

    def mark(self, key: str, closed_ms: int) -> None:
        self.recent_keys[key] = int(closed_ms)
        if self.high_water_ms is None or closed_ms > self.high_water_ms:
            self.high_water_ms = int(closed_ms)

    def prune(self, late_window_ms: int, max_keys: int) -> None:
        """Move the cut-off to ``high_water - late_window`` (or later, to keep ``max_keys``) and drop older keys."""
        if self.high_water_ms is None:
            return
        cut = self.high_water_ms - late_window_ms
        if len(self.recent_keys) > max_keys:
            times = sorted(self.recent_keys.values())
            cut = max(cut, times[len(times) - max_keys])
        if self.learned_before_ms is None or cut > self.learned_before_ms:
            self.learned_before_ms = cut
        self.recent_keys = {k: t for k, t in self.recent_keys.items() if t >= self.learned_before_ms}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Progress:
        return cls(
            high_water_ms=_opt_int(raw.get("high_water_ms")),
            learned_before_ms=_opt_int(raw.get("learned_before_ms")),
            recent_keys={str(k): int(v) for k, v in dict(raw.get("recent_keys", {})).items()},
            trades_learned=int(raw.get("trades_learned", 0)),
            trades_skipped=int(raw.get("trades_skipped", 0)),
            last_skip_reason=str(raw.get("last_skip_reason", "")),
            last_trade=dict(raw["last_trade"]) if raw.get("last_trade") else None,
        )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass
class RunningStats:
    """Count, mean and sum of squared deviations of the rewards learned from (Welford's algorithm)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, value: float) -> None:
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (value - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0


class StateRow:
    """One state of the table: its visits and, per action learned (in the order learned), its Q-value and updates.

    Kept as three flat arrays rather than ``{action: [q_value, updates]}``: a sizing state learns up to 40
    actions, each of which cost about 150 bytes as Python objects (a dict entry, a list, a float, an int), and the
    tables, loaded, updated and saved by every pass, set a pass's peak memory; as arrays an action takes 18 bytes.
    """

    __slots__ = ("visits", "actions", "values", "counts")

    def __init__(self, visits: int = 0, q: Mapping[int, Sequence[float]] | None = None) -> None:
        self.visits = visits
        self.actions = array("h")
        self.values = array("d")
        self.counts = array("q")
        for action, (value, count) in (q or {}).items():
            self.set(int(action), float(value), int(count))

    @property
    def q(self) -> dict[int, list[float | int]]:
        """``{action: [q_value, updates]}`` of the actions learned (a copy)."""
        return {a: [v, n] for a, v, n in zip(self.actions, self.values, self.counts, strict=True)}

    def learned(self) -> dict[int, float]:
        """``{action: q_value}`` of the actions learned."""
        return dict(zip(self.actions, self.values, strict=True))

    def get(self, action: int) -> tuple[float, int] | None:
        """``(q_value, updates)`` of ``action``, or None when it was never learned here."""
        try:
            i = self.actions.index(action)
        except ValueError:
            return None
        return self.values[i], self.counts[i]

    def set(self, action: int, value: float, count: int) -> None:
        """Set ``action``'s Q-value and updates (appended when it is new)."""
        try:
            i = self.actions.index(action)
        except ValueError:
            self.actions.append(action)
            self.values.append(value)
            self.counts.append(count)
            return
        self.values[i] = value
        self.counts[i] = count


class QAgent:
    """A Q-table over string state keys and ``n_actions`` integer actions; see the module docstring."""

    def __init__(self, name: str, n_actions: int, default_action: int, *, alpha: float, gamma: float,
                 epsilon: float, epsilon_decay: float, epsilon_min: float) -> None:
        if not 0 <= default_action < n_actions:
            raise ValueError(f"default action {default_action} outside 0..{n_actions - 1}")
        for hp, value in (("alpha", alpha), ("gamma", gamma), ("epsilon", epsilon)):
            problem = validate_hyperparameter(hp, value)
            if problem:
                raise ValueError(problem)
        self.name = name
        self.n_actions = n_actions
        self.default_action = default_action
        self.alpha = alpha
        self.gamma = gamma
        self.epsilon = epsilon
        self.epsilon_decay = epsilon_decay
        self.epsilon_min = epsilon_min
        self.table: dict[str, StateRow] = {}
        self.updates = 0
        self.q_updates = 0
        self.rewards = RunningStats()
        self.td_error_ema: float | None = None
        self.progress = Progress()
        self.overrides: dict[str, float] = {}
        self.tuning_history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------ values and choices

    def q_value(self, state: str, action: int) -> float:
        row = self.table.get(state)
        entry = row.get(action) if row else None
        return float(entry[0]) if entry else 0.0

    def learned_actions(self, state: str) -> dict[int, float]:
        """``{action: Q}`` of the actions learned in ``state`` (empty when the state is unknown)."""
        row = self.table.get(state)
        return row.learned() if row else {}

    def max_q(self, state: str | None) -> float:
        """``max_a Q(state, a)`` over the learned actions; 0 for an unknown state or None (terminal)."""
        values = self.learned_actions(state) if state is not None else {}
        return max(values.values()) if values else 0.0

    def greedy_action(self, state: str) -> int:
        """The best learned action (ties: the default, then the lowest index); the default when none."""
        values = self.learned_actions(state)
        if not values:
            return self.default_action
        best = max(values.values())
        tied = sorted(a for a, v in values.items() if v == best)
        return self.default_action if self.default_action in tied else tied[0]

    def select_action(self, state: str, rng: np.random.Generator) -> tuple[int, bool]:
        """Epsilon-greedy: ``(random action, True)`` with probability epsilon, else ``(greedy, False)``."""
        if rng.random() < self.epsilon:
            return int(rng.integers(self.n_actions)), True
        return self.greedy_action(state), False

    # ------------------------------------------------------------------------------ learning

    def update(self, state: str, action: int, reward: float, next_value: float) -> float:
        """One Q-value update towards ``reward + gamma * next_value``; returns the TD error."""
        if not 0 <= action < self.n_actions:
            raise ValueError(f"action {action} outside 0..{self.n_actions - 1} of the {self.name} agent")
        if not math.isfinite(reward):
            raise ValueError(f"reward {reward!r} is not finite")
        row = self.table.setdefault(state, StateRow())
        value, count = row.get(action) or (0.0, 0)
        td_error = reward + self.gamma * next_value - value
        row.set(action, value + self.alpha * td_error, count + 1)
        self.q_updates += 1
        return td_error

    def learn(self, state: str, rewards: Mapping[int, float], next_state: str | None) -> float:
        """One learning step: update every action of ``rewards`` from ``state`` to ``next_state`` (None:
        terminal), count the visit, decay epsilon. Returns the mean absolute TD error of the step."""
        if not rewards:
            raise ValueError("a learning step needs at least one (action, reward)")
        next_value = self.max_q(next_state)  # taken once: the step's updates share one target
        errors = [abs(self.update(state, a, r, next_value)) for a, r in rewards.items()]
        for r in rewards.values():
            self.rewards.add(float(r))
        self.table[state].visits += 1
        self.updates += 1
        mean_error = float(sum(errors) / len(errors))
        self.td_error_ema = mean_error if self.td_error_ema is None else \
            (1 - TD_EMA_WEIGHT) * self.td_error_ema + TD_EMA_WEIGHT * mean_error
        self.decay_epsilon()
        return mean_error

    def decay_epsilon(self) -> None:
        self.epsilon = max(self.epsilon_min, self.epsilon * self.epsilon_decay)

    # ------------------------------------------------------------------------------ statistics

    def stats(self) -> dict[str, Any]:
        """States, state-action pairs, Q-value range and mean, counters and epsilon (what the monitor shows)."""
        values = [v for row in self.table.values() for v in row.values]
        states = len(self.table)
        pairs = len(values)
        return {
            "states": states,
            "pairs": pairs,
            "avg_actions_per_state": pairs / states if states else 0.0,
            "updates": self.updates,
            "q_updates": self.q_updates,
            "epsilon": self.epsilon,
            "q_min": min(values) if values else None,
            "q_max": max(values) if values else None,
            "q_mean": float(np.mean(values)) if values else None,
            "q_std": float(np.std(values)) if values else None,
            "reward_mean": self.rewards.mean if self.rewards.n else None,
            "reward_std": self.rewards.std if self.rewards.n > 1 else None,
            "td_error_ema": self.td_error_ema,
            "trades_learned": self.progress.trades_learned,
            "alpha": self.alpha,
            "gamma": self.gamma,
        }

    # ------------------------------------------------------------------------------ tuning

    def apply_tuning(self, changes: Mapping[str, float], source: str) -> dict[str, Any]:
        """Set alpha/gamma (kept as overrides of the config) and/or epsilon; the old values go to the history."""
        for name, value in changes.items():
            problem = validate_hyperparameter(name, value)
            if problem:
                raise ValueError(problem)
        old = {name: getattr(self, name) for name in changes}
        for name, value in changes.items():
            setattr(self, name, float(value))
            if name != "epsilon":
                self.overrides[name] = float(value)
        record = {"applied_at": utc_now_iso(), "source": source, "old": old, "new": dict(changes)}
        self.tuning_history = [*self.tuning_history, record][-TUNING_HISTORY_MAX:]
        return record

    # ------------------------------------------------------------------------------ persistence

    def to_document(self) -> QTableDocument:
        """The agent's file content (inside the envelope)."""
        doc = self._document_without_table()
        doc["table"] = {s: self._row_document(row) for s, row in self.table.items()}
        return doc

    def to_json_text(self) -> str:
        """The compact JSON of :meth:`to_document`, byte for byte, built one state at a time.

        Saving a large table this way never holds it twice as nested Python objects (the whole document as
        dicts and lists costs several times the table's own memory), so a save's peak memory stays close to
        the table itself. NaN is refused with ValueError, as the JSON writers do.
        """
        head = json.dumps(self._document_without_table(), allow_nan=False, separators=(",", ":"))
        if not head.endswith(',"table":{}}'):  # the table is the document's last key
            raise ValueError("the Q-table document must end with its table")
        rows = (json.dumps(s) + ":" + json.dumps(self._row_document(row), allow_nan=False, separators=(",", ":"))
                for s, row in self.table.items())
        return head[:-2] + ",".join(rows) + "}}"

    @staticmethod
    def _row_document(row: StateRow) -> StateEntry:
        return {"visits": row.visits, "q": {str(a): [float(v), int(n)]
                                            for a, v, n in zip(row.actions, row.values, row.counts, strict=True)}}

    def _document_without_table(self) -> QTableDocument:
        return qtable_document(PRODUCER, {
            "agent": self.name,
            "n_actions": self.n_actions,
            "default_action": self.default_action,
            "hyperparameters": {"alpha": self.alpha, "gamma": self.gamma, "epsilon_decay": self.epsilon_decay,
                                "epsilon_min": self.epsilon_min},
            "overrides": dict(self.overrides),
            "epsilon": self.epsilon,
            "updates": self.updates,
            "q_updates": self.q_updates,
            "reward_stats": cast(RewardStats, asdict(self.rewards)),
            "td_error_ema": self.td_error_ema,
            "progress": self.progress.to_dict(),
            "tuning_history": list(self.tuning_history),
            "table": {},
        })

    def load_document(self, doc: Mapping[str, Any]) -> None:
        """Restore from :meth:`to_document`'s output (raises KeyError/TypeError/ValueError when malformed).

        A plain dict ``table`` is emptied while it is read (the document is read for this load only)."""
        if doc.get("agent") != self.name or int(doc["n_actions"]) != self.n_actions:
            raise ValueError(f"holds agent {doc.get('agent')!r} with {doc.get('n_actions')} actions, "
                             f"expected {self.name!r} with {self.n_actions}")
        self.overrides = {k: float(v) for k, v in dict(doc.get("overrides", {})).items() if k in ("alpha", "gamma")}
        self.alpha = self.overrides.get("alpha", self.alpha)
        self.gamma = self.overrides.get("gamma", self.gamma)
        self.epsilon = float(doc["epsilon"])
        self.updates = int(doc["updates"])
        self.q_updates = int(doc["q_updates"])
        stats = dict(doc.get("reward_stats", {}))
        self.rewards = RunningStats(int(stats.get("n", 0)), float(stats.get("mean", 0.0)), float(stats.get("m2", 0.0)))
        ema = doc.get("td_error_ema")
        self.td_error_ema = None if ema is None else float(ema)
        self.progress = Progress.from_dict(dict(doc.get("progress", {})))
        self.tuning_history = [dict(r) for r in doc.get("tuning_history", [])][-TUNING_HISTORY_MAX:]
        self.table = {}
        rows = doc["table"]
        for state in list(rows):
            # Taken out of the parsed document as it is converted, so the table is never held twice in full
            # (the document is read for this load only).
            raw = rows.pop(state) if isinstance(rows, dict) else rows[state]
            q = {int(a): [float(e[0]), int(e[1])] for a, e in dict(raw["q"]).items()}
            if any(not 0 <= a < self.n_actions for a in q):
                raise ValueError(f"state {state!r} has an action outside 0..{self.n_actions - 1}")
            if any(not math.isfinite(float(e[0])) for e in q.values()):
                raise ValueError(f"state {state!r} has a non-finite Q-value")
            self.table[str(state)] = StateRow(int(raw.get("visits", 0)), q)
