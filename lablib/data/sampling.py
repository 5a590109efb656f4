"""Batch order for one epoch: shuffled, in order, or balanced (report 000, 2.5).

Each function returns the epoch's batches as plain int64 index arrays, a pure function of its
inputs and the generator's state, so that a checkpointed generator replays an epoch exactly.
"""

from __future__ import annotations

import math

import numpy as np

from lablib.errors import LabError


class SamplingError(LabError, ValueError):
    """A batch size or label array the sampling cannot honour."""


def shuffled_batches(
    n: int, batch_size: int, rng: np.random.Generator | None, drop_last: bool = False
) -> list[np.ndarray]:
    """Batches over ``range(n)``: one fresh permutation, or in order when ``rng`` is None.

    The last batch is shorter when ``batch_size`` does not divide ``n``; ``drop_last`` leaves it out.
    """
    if batch_size < 1:
        raise SamplingError(f"batch_size must be at least 1; got {batch_size}")
    order = np.arange(n, dtype=np.int64) if rng is None else rng.permutation(n).astype(np.int64)
    stop = n - n % batch_size if drop_last else n
    return [order[start : start + batch_size] for start in range(0, stop, batch_size)]


def balanced_batches(labels: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches holding exactly ``batch_size // K`` images of each of the K classes in ``labels``.

    Each class is read through a fresh permutation of its images, without replacement; a class that
    runs out (a smaller one) goes on with a new permutation of itself. The epoch has
    ``ceil(len(labels) / (per_class * K))`` batches, about as many images as ``labels`` holds: a
    class smaller than the average repeats some images, a larger one leaves some for the next epoch.
    Within a batch the order is shuffled, so that any slice of a batch is a random one.
    Randomness drawn, in order: one or more permutations per class (classes ascending), then one
    shuffle of every batch.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise SamplingError(f"labels must be a non-empty 1-D array; got shape {labels.shape}")
    classes = np.unique(labels)
    per_class = batch_size // len(classes)
    if per_class < 1:
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
    # (class, batch, slot) -> (batch, class * slot): batch b takes slots b*per_class.. of every class.
    table = np.stack(streams).reshape(len(classes), n_batches, per_class).transpose(1, 0, 2)
    batches = rng.permuted(table.reshape(n_batches, -1), axis=1).astype(np.int64)
    return list(batches)
