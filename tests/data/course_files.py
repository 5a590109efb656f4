"""The course's CSV files made from arrays: a training file (label, then 784 pixels) and a test file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

NUMBERS = [str(value) for value in range(256)]


def write_course_csv(path: Path, images: np.ndarray, labels: np.ndarray | None = None, header: bool = True) -> Path:
    """``images`` (uint8 ``(N, 28, 28)``) as the course writes them, each row preceded by its label when
    ``labels`` is given, under a ``label,pixel1,...`` header when ``header``."""
    rows = images.reshape(len(images), -1)
    if labels is not None:
        rows = np.concatenate([np.asarray(labels, dtype=np.uint8)[:, None], rows], axis=1)
    names = [f"pixel{i}" for i in range(1, images[0].size + 1)]
    lines = [",".join((["label"] if labels is not None else []) + names)] if header else []
    lines += [",".join([NUMBERS[value] for value in row]) for row in rows.tolist()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
