"""Batch order for one epoch: shuffled, in order, or balanced (report 000, 2.5).

Each function returns the epoch's batches as plain index arrays, a pure function of its inputs and
the generator's state, so that a checkpointed generator replays an epoch exactly.
"""

from __future__ import annotations

import math

import numpy as np

from lablib.errors import LabError


class SamplingError(LabError, ValueError):
    """A batch size the sampling cannot honour."""


def shuffled_batches(
    n: int, batch_size: int, rng: np.random.Generator | None, drop_last: bool = False
) -> list[np.ndarray]:
    """Batches over ``range(n)``: a fresh permutation, or in order when ``rng`` is None."""
    order = np.arange(n, dtype=np.int64) if rng is None else rng.permutation(n).astype(np.int64)
    stop = n - n % batch_size if drop_last else n
    return [order[start : start + batch_size] for start in range(0, stop, batch_size)]


def balanced_batches(labels: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches holding exactly ``batch_size // K`` images of each of the K classes.

    Each class is read through a fresh permutation without replacement; a class that runs out
    (a smaller one) continues with a new permutation of itself. The epoch has
    ``ceil(len(labels) / (per_class * K))`` batches; within a batch the order is shuffled.
    """
    classes = np.unique(labels)
    per_class = batch_size // len(classes)
    if per_class == 0:
        raise SamplingError(
            f"batch_size {batch_size} is smaller than the {len(classes)} classes; "
            f"sampling: balanced needs batch_size >= {len(classes)}"
        )
    n_batches = math.ceil(len(labels) / (per_class * len(classes)))
    need = n_batches * per_class
    streams = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        rounds = math.ceil(need / len(members))
        streams.append(np.concatenate([rng.permutation(members) for _ in range(rounds)])[:need])
    table = np.stack(streams).reshape(len(classes), n_batches, per_class).transpose(1, 0, 2)
    batches = table.reshape(n_batches, -1)
    return [rng.permutation(batch).astype(np.int64) for batch in batches]
