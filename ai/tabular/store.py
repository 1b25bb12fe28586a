"""The two tabular agents as the config builds them, and their Q-table files (loaded and saved under lock).

The files themselves (paths, schema, reading) belong to :mod:`core.contracts.qtables`; this module turns them
into :class:`~ai.tabular.agent.QAgent` objects and back. The learning daemon and the tuning command hold the
files' locks while they read, change and save them, so neither loses the other's write.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ai.tabular.actions import META_DEFAULT, N_META_ACTIONS, N_SIZING_ACTIONS, SIZING_DEFAULT
from ai.tabular.agent import QAgent
from core.atomic import FileSignature, atomic_write_text, file_signature
from core.config import Config
from core.contracts.pnl_history import locked
from core.contracts.qtables import AGENT_NAMES, agent_path, read_qtable
from core.errors import DataError


def new_agent(cfg: Config, name: str) -> QAgent:
    """A fresh agent with the config's hyperparameters (``meta`` or ``sizing``)."""
    q = cfg.qlearning
    n_actions, default = {"meta": (N_META_ACTIONS, META_DEFAULT), "sizing": (N_SIZING_ACTIONS, SIZING_DEFAULT)}[name]
    return QAgent(name, n_actions, default, alpha=q.alpha, gamma=q.gamma, epsilon=q.epsilon,
                  epsilon_decay=q.epsilon_decay, epsilon_min=q.epsilon_min)


def load_agent(cfg: Config, name: str) -> QAgent:
    """The agent from its Q-table file (:func:`core.contracts.qtables.agent_path`), or a fresh one; DataError when
    the file is bad."""
    return load_agent_file(new_agent(cfg, name), agent_path(cfg, name))


class HeldAgents:
    """The learning daemon's agents between passes: a Q-table file is parsed again only when it changed on disk
    (the tuning command, a restore, an edit: every writer replaces the file, so its inode changes).

    Parsing a table of thousands of states took most of a pass and its peak memory grew with the table; a
    pass that fails after changing an agent in memory calls :meth:`forget`, so the next one reads the files.
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[FileSignature, QAgent]] = {}

    def load(self, cfg: Config, name: str) -> QAgent:
        """The agent as its file holds it (see :func:`load_agent`), from memory when the file is unchanged."""
        signature = file_signature(agent_path(cfg, name))
        held = self._held.get(name)
        if held is not None and signature is not None and held[0] == signature:
            return held[1]
        agent = load_agent(cfg, name)
        self._held.pop(name, None)
        if signature is not None:
            self._held[name] = (signature, agent)
        return agent

    def saved(self, cfg: Config, agent: QAgent) -> None:
        """Remember ``agent`` as the content of the file just written for it."""
        signature = file_signature(agent_path(cfg, agent.name))
        if signature is not None:
            self._held[agent.name] = (signature, agent)

    def forget(self) -> None:
        self._held.clear()


def load_agent_file(agent: QAgent, path: Path) -> QAgent:
    """Fill ``agent`` (built from the config) from its file when there is one."""
    doc = read_qtable(path)
    if doc is None:
        return agent
    try:
        agent.load_document(doc)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise DataError(f"{path}: not a valid {agent.name} Q-table ({exc}); move it aside to start afresh") from exc
    return agent


def save_agent_file(agent: QAgent, path: Path) -> int:
    """Write the agent atomically as compact JSON; returns the file size in bytes.

    The same bytes :func:`core.contracts.qtables.write_qtable` writes for :meth:`QAgent.to_document`, built state
    by state (:meth:`QAgent.to_json_text`) so that a save does not hold the table twice as Python objects.
    """
    atomic_write_text(path, agent.to_json_text() + "\n")
    return os.path.getsize(path)


@contextmanager
def agents_locked(cfg: Config, names: Sequence[str] = AGENT_NAMES) -> Iterator[None]:
    """Hold the agent files' locks (always in the same order, so two holders cannot deadlock)."""
    with ExitStack() as stack:
        for name in AGENT_NAMES:
            if name in names:
                path = agent_path(cfg, name)
                path.parent.mkdir(parents=True, exist_ok=True)
                stack.enter_context(locked(path))
        yield
