"""The test set's mistakes: the most frequent confusions, the images of each, and whether the two
frameworks' models made the very same ones (then the report shows them once)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lablib.data.fashion_mnist import CLASS_NAMES
from lablib.report.inputs import Run

MISTAKE_ROWS = 3  # the kinds of mistake the figure of misclassified images shows, most frequent first


def most_confused(
    matrix: np.ndarray, k: int = 5, class_names: Sequence[str] = CLASS_NAMES
) -> list[tuple[str, str, int]]:
    """The ``k`` largest off-diagonal cells of ``matrix[true, predicted]`` as ``(true class, predicted
    class, count)``, largest first."""
    return [(class_names[t], class_names[p], count) for t, p, count in _largest_off_diagonal(matrix, k)]


def _largest_off_diagonal(matrix: np.ndarray, k: int) -> list[tuple[int, int, int]]:
    off = matrix.astype(np.int64).copy()
    np.fill_diagonal(off, -1)
    order = np.argsort(-off, axis=None, kind="stable")[:k]
    cells = [np.unravel_index(index, off.shape) for index in order]
    return [(int(t), int(p), int(off[t, p])) for t, p in cells if off[t, p] > 0]


def misclassified(
    matrix: np.ndarray, predicted: np.ndarray, labels: np.ndarray, k: int = MISTAKE_ROWS
) -> list[tuple[int, int, int, np.ndarray]]:
    """The ``k`` most frequent mistakes as ``(true class, predicted class, count, test indices)``, the
    indices in test order."""
    return [
        (t, p, count, np.flatnonzero((labels == t) & (predicted == p)))
        for t, p, count in _largest_off_diagonal(matrix, k)
    ]


def twins_agree(run: Run) -> bool:
    """Whether both frameworks' trained models predict the same class for every test image: their
    predictions are equal and the cross-evaluation measured it (``trained_models_agreement`` of 1)."""
    if len(run.predicted) < 2 or run.cross is None or run.cross["trained_models_agreement"] < 1:
        return False
    first, *others = run.predicted.values()
    return all(np.array_equal(first, other) for other in others)


def confusion_frameworks(run: Run) -> tuple[str, ...]:
    """The frameworks whose confusion matrix the report shows: NumPy's alone when the twins agree."""
    return run.frameworks[:1] if twins_agree(run) else run.frameworks
