"""Purged walk-forward cross-validation on session positions.

Rows are one per session of one symbol, in date order; a row's *position* is its index in
that order. The target of horizon h at position i is ln(close[i+n] / close[i]) with n the
horizon's sessions, so its label window is positions [i, i+n].

The test folds are contiguous blocks of labelled rows at the end of the window, in time
order. For a test fold starting at position a, a training row at position i is kept only if
i + gap < a, with gap = max(n, embargo) >= n: its label window ends at i + n < a, before
the first test row's features are even observed, so no training label window overlaps any
test window (the purge), and `gap` sessions separate the two (the embargo). Training is
expanding (every allowed earlier row) or rolling (the last `train_size` allowed rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Window = Literal["expanding", "rolling"]


class CVError(ValueError):
    pass


@dataclass(frozen=True)
class Fold:
    fold: int  # 1-based, in time order
    train: np.ndarray  # positions (indices into the session-ordered rows)
    test: np.ndarray
    gap: int  # sessions between the last training row and the first test row, exclusive (>= horizon)

    @property
    def n_train(self) -> int:
        return int(self.train.size)

    @property
    def n_test(self) -> int:
        return int(self.test.size)


def walk_forward(
    labelled: np.ndarray,
    horizon_sessions: int,
    n_folds: int = 3,
    test_size: int | None = None,
    embargo: int | None = None,
    window: Window = "expanding",
    train_size: int | None = None,
    min_train: int = 252,
    min_test: int = 21,
) -> list[Fold]:
    """Folds over `labelled` (sorted positions of rows whose target is known).

    test_size defaults to len(labelled) // (n_folds + 2), so the first fold trains on about
    two blocks; rolling windows default to that first fold's training size.
    """
    pos = np.asarray(labelled, dtype=np.int64)
    if pos.ndim != 1 or (pos.size > 1 and np.any(np.diff(pos) <= 0)):
        raise CVError("labelled positions must be strictly increasing")
    if n_folds < 1:
        raise CVError(f"--folds must be at least 1 (got {n_folds})")
    if window not in ("expanding", "rolling"):
        raise CVError(f"unknown window {window!r}; use expanding or rolling")
    n = int(horizon_sessions)
    gap = n if embargo is None else int(embargo)
    if gap < n:
        raise CVError(f"embargo {gap} sessions is shorter than the horizon ({n} sessions): label windows would overlap")
    m = int(pos.size)
    size = int(test_size) if test_size else m // (n_folds + 2)
    if size < min_test:
        raise CVError(
            f"{m:,} labelled rows give test folds of {size:,} rows; each of the {n_folds} folds needs at least {min_test}"
        )
    first_test = m - n_folds * size
    if first_test <= 0:
        raise CVError(f"{m:,} labelled rows cannot hold {n_folds} test folds of {size:,} rows")
    folds: list[Fold] = []
    for k in range(n_folds):
        test = pos[first_test + k * size: first_test + (k + 1) * size]
        allowed = pos[pos + gap < test[0]]
        train = allowed
        if window == "rolling":
            keep = train_size or (folds[0].n_train if folds else allowed.size)
            train = allowed[-keep:] if keep else allowed[:0]
        if train.size < min_train:
            raise CVError(
                f"fold {k + 1}: {train.size:,} training rows before the {gap}-session embargo (test from position "
                f"{int(test[0])}); at least {min_train:,} are needed. {m:,} labelled rows are too few for {n_folds} "
                f"folds of {size:,} test rows; use fewer --folds"
            )
        folds.append(Fold(k + 1, train, test, gap))
    return folds


def overlaps(fold: Fold, horizon_sessions: int) -> int:
    """Training rows whose label window [i, i+n] reaches the first test row (must be 0)."""
    if fold.test.size == 0:
        return 0
    return int(np.count_nonzero(fold.train + horizon_sessions >= fold.test[0]))
