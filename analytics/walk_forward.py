"""Walk-forward folds: consecutive test windows, each trained on what came before it only.

A series of ``n`` items (candles, rebalancing periods) is cut as follows. The first ``first_train`` items train
the first fold; the rest is split into ``folds`` consecutive test windows of equal size (the remainder of the
division joins the first training window, so the last test window ends at the last item). Fold ``i`` tests on
its window and trains on the items before it:

- ``expanding``: on every item from the start up to its test window (each fold sees more history);
- ``rolling``: on the ``first_train`` items just before its test window (a fixed-length window that drops the
  oldest history, for markets whose old behaviour no longer matters).

No fold ever trains on an item at or after the start of its own test window. The pooled result of the folds
covers every test window once, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import DataError

SCHEMES = ("expanding", "rolling")
"""The fold schemes of :func:`walk_forward_folds`."""


class NotEnoughForFoldsError(DataError):
    """The series is too short for the folds asked for; the message says how much is needed."""


@dataclass(frozen=True)
class Fold:
    """One fold: train on ``train_start..train_end-1``, test on ``test_start..test_end-1`` (0-based items)."""

    index: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int

    @property
    def train_size(self) -> int:
        return self.train_end - self.train_start

    @property
    def test_size(self) -> int:
        return self.test_end - self.test_start


def walk_forward_folds(n: int, folds: int, first_train: int, *, min_train: int = 1, min_test: int = 1,
                       scheme: str = "expanding", unit: str = "items") -> list[Fold]:
    """The folds of a series of ``n`` items (see the module docstring).

    :class:`NotEnoughForFoldsError` names what is missing when the first training window would hold fewer
    than ``min_train`` items or a test window fewer than ``min_test``; ``unit`` names the items in the message.
    """
    if folds < 1:
        raise ValueError(f"folds must be >= 1, got {folds}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown fold scheme {scheme!r}; use one of: {', '.join(SCHEMES)}")
    first_train = max(first_train, min_train)
    test_size = (n - first_train) // folds
    if test_size < max(1, min_test):
        needed = first_train + folds * max(1, min_test)
        raise NotEnoughForFoldsError(
            f"{n} {unit} cannot make {folds} walk-forward fold(s): the first training window needs {first_train} "
            f"and each test window at least {max(1, min_test)}, {needed} in all; use fewer folds (--folds) or "
            f"more data")
    first_test = n - folds * test_size
    out = []
    for i in range(folds):
        start = first_test + i * test_size
        train_start = 0 if scheme == "expanding" else start - first_test
        out.append(Fold(i, train_start, start, start, start + test_size))
    return out
