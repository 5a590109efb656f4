"""The course's leaderboard file, ``DL-test-predict.csv``: a header ``Id,Category``, then one row per test
image in the test file's order, ``Id`` 0-9,999 and ``Category`` the predicted class 0-9.

The file is written beside its destination, read back and checked as the leaderboard would read it,
scored from what was read when the labels are known, and only then moved into place: the accuracy
reported is that of the very file written.
"""

from __future__ import annotations

import csv
import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from lablib.atomic import staged_file
from lablib.data.fashion_mnist import COUNTS, NUM_CLASSES, TEST_IMAGES
from lablib.errors import LabError

FILE_NAME = "DL-test-predict.csv"
HEADER = ["Id", "Category"]
TEST_ROWS = COUNTS[TEST_IMAGES]
CLASSES = {str(c) for c in range(NUM_CLASSES)}


class LeaderboardError(LabError, ValueError):
    """A leaderboard file that breaks the course's format; the message names the file and the line."""


def read_leaderboard(path: Path, rows: int = TEST_ROWS) -> np.ndarray:
    """The ``Category`` column of a leaderboard file, after checking the header, ``rows`` rows, the ids
    0..rows-1 in order and every class in 0-9."""
    with open(path, newline="") as file:
        lines = list(csv.reader(file))
    if not lines or lines[0] != HEADER:
        raise LeaderboardError(f"{path}: line 1 must be the header {','.join(HEADER)}")
    if len(lines) - 1 != rows:
        raise LeaderboardError(f"{path}: holds {len(lines) - 1} rows after the header, expected {rows}")
    categories = np.empty(rows, dtype=np.int64)
    for i, row in enumerate(lines[1:]):
        if len(row) != 2 or row[0] != str(i) or row[1] not in CLASSES:
            raise LeaderboardError(
                f"{path}: line {i + 2} reads {','.join(row)!r}, expected Id {i} and a class 0-{NUM_CLASSES - 1}"
            )
        categories[i] = int(row[1])
    return categories


def write_leaderboard(
    path: Path, predictions: np.ndarray, labels: np.ndarray | None, metrics_path: Path, rows: int = TEST_ROWS
) -> dict[str, Any]:
    """Write ``predictions`` as the leaderboard file ``path`` and its metrics, both or neither.

    ``labels`` (None when unknown) score the file as read back; the metrics hold the rows and, with
    labels, ``test_acc``. Raises :class:`LeaderboardError` when the file would break the format.
    """
    with ExitStack() as stack:
        staged = stack.enter_context(staged_file(path))
        with open(staged, "w", newline="") as file:
            writer = csv.writer(file, lineterminator="\n")
            writer.writerow(HEADER)
            writer.writerows(enumerate(np.asarray(predictions).tolist()))
        written = read_leaderboard(staged, rows)
        metrics: dict[str, Any] = {"rows": len(written)}
        if labels is not None:
            metrics["test_acc"] = float(np.mean(written == labels))
        stack.enter_context(staged_file(metrics_path)).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
