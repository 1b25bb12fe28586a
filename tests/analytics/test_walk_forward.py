"""Walk-forward folds: the expanding and rolling windows worked out by hand, no training item at or after the
fold's test start, and the message when the data is too short."""

from __future__ import annotations

import pytest

from analytics.walk_forward import Fold, NotEnoughForFoldsError, walk_forward_folds


def test_expanding_folds_by_hand() -> None:
    # 23 items, first training 10: 13 left for 3 folds of 4; the remainder (1) joins the first training window.
    folds = walk_forward_folds(23, 3, 10)
    assert folds == [Fold(0, 0, 11, 11, 15), Fold(1, 0, 15, 15, 19), Fold(2, 0, 19, 19, 23)]
    assert [f.test_size for f in folds] == [4, 4, 4] and folds[-1].test_end == 23


def test_rolling_folds_keep_the_first_training_length() -> None:
    folds = walk_forward_folds(23, 3, 10, scheme="rolling")
    assert folds == [Fold(0, 0, 11, 11, 15), Fold(1, 4, 15, 15, 19), Fold(2, 8, 19, 19, 23)]
    assert {f.train_size for f in folds} == {11}


@pytest.mark.parametrize("n, k, first", [(100, 1, 70), (1000, 7, 300), (37, 5, 2)])
def test_no_fold_trains_on_its_test_window_and_the_tests_tile_the_end(n: int, k: int, first: int) -> None:
    for scheme in ("expanding", "rolling"):
        folds = walk_forward_folds(n, k, first, scheme=scheme)
        assert all(f.train_end <= f.test_start and f.train_start >= 0 for f in folds)
        assert all(a.test_end == b.test_start for a, b in zip(folds, folds[1:], strict=False))
        assert folds[-1].test_end == n


def test_too_little_data_names_what_is_needed() -> None:
    with pytest.raises(NotEnoughForFoldsError, match=r"20 candles cannot make 4 walk-forward fold\(s\).*needs 10 "
                       r"and each test window at least 3, 22 in all"):
        walk_forward_folds(20, 4, 10, min_test=3, unit="candles")
    with pytest.raises(NotEnoughForFoldsError):
        walk_forward_folds(10, 2, 1, min_train=9)  # the minimum training window wins over a smaller first one
    with pytest.raises(ValueError, match="scheme"):
        walk_forward_folds(10, 2, 2, scheme="anchored")
