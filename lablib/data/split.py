"""The split: a fixed hold-out (stratified, or the course's last 10,000 images), an optional stratified
subset, and K-fold assignments.

Every function is a pure function of the labels and a seed. Each draws from its own stream of
:mod:`lablib.rng` (hold-out, subset, folds), class by class in label order, so the same seed gives the
same indices on every run and every machine, whatever else was drawn before.
"""

from __future__ import annotations

import numpy as np

from lablib.errors import LabError
from lablib.rng import Stream, generator

COURSE_VAL = 10000  # the course's validation images: the last rows of its training file


class SplitError(LabError, ValueError):
    """A split that the labels cannot support; the message names the parameter."""


def _classes(labels: np.ndarray) -> list[np.ndarray]:
    """The positions of each class present in ``labels``, in label order."""
    return [np.flatnonzero(labels == c) for c in np.unique(labels)]


def holdout_split(labels: np.ndarray, val_per_class: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices into ``labels``, sorted int64: ``val_per_class`` of every class are held out."""
    labels = np.asarray(labels)
    if val_per_class < 0:
        raise SplitError(f"data.val_per_class must be at least 0; got {val_per_class}")
    rng = generator(seed, Stream.HOLDOUT)
    val = [np.empty(0, dtype=np.int64)]
    for members in _classes(labels):
        if val_per_class >= len(members):
            raise SplitError(
                f"data.val_per_class {val_per_class} leaves no training image of class {labels[members[0]]} "
                f"({len(members)} in all)"
            )
        val.append(rng.permutation(members)[:val_per_class])
    val_idx = np.sort(np.concatenate(val)).astype(np.int64)
    return np.setdiff1d(np.arange(len(labels), dtype=np.int64), val_idx), val_idx


def equal_shares(n: int, sizes: np.ndarray) -> np.ndarray:
    """How many of each class to take so that ``n`` items are spread over classes of ``sizes`` as evenly
    as possible: every class gets ``min(size, level)``, and the few left over go one each to the first
    classes (in label order) that have more than ``level``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    totals = np.minimum(sizes[:, None], np.arange(sizes.max() + 1)).sum(axis=0)
    level = int(np.searchsorted(totals, n, side="right")) - 1
    shares = np.minimum(sizes, level)
    shares[np.flatnonzero(sizes > level)[: n - shares.sum()]] += 1
    return shares


def stratified_subset(indices: np.ndarray, labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of ``indices`` (sorted int64), classes as equal as possible (see :func:`equal_shares`)."""
    indices = np.asarray(indices, dtype=np.int64)
    groups = _classes(np.asarray(labels)[indices])
    if not max(len(groups), 1) <= n <= len(indices):
        raise SplitError(
            f"data.subset must be between {max(len(groups), 1)} (one image per class) and {len(indices)} "
            f"(the training images available); got {n}"
        )
    rng = generator(seed, Stream.SUBSET)
    shares = equal_shares(n, np.array([len(members) for members in groups]))
    chosen = [indices[rng.permutation(members)[:share]] for members, share in zip(groups, shares, strict=True)]
    return np.sort(np.concatenate(chosen))


def kfold_assignments(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The fold (0..k-1, int64) of every item; within each class the fold sizes differ by at most one."""
    labels = np.asarray(labels)
    groups = _classes(labels)
    smallest = min((len(members) for members in groups), default=0)
    if not 2 <= k <= smallest:
        raise SplitError(f"data.kfold must be between 2 and {smallest}, the size of the smallest class; got {k}")
    rng = generator(seed, Stream.FOLDS)
    folds = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for members in groups:
        folds[rng.permutation(members)] = (np.arange(len(members)) + offset) % k
        offset += len(members)
    return folds


def course_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices of the course's rule: the last ``COURSE_VAL`` of ``n`` images validate."""
    if n <= COURSE_VAL:
        raise SplitError(f"data.split: course validates on the last {COURSE_VAL} images, and there are only {n}")
    everything = np.arange(n, dtype=np.int64)
    return everything[:-COURSE_VAL], everything[-COURSE_VAL:]


def make_split(
    labels: np.ndarray,
    *,
    val_per_class: int,
    subset: int | None,
    kfold: int,
    seed: int,
    method: str = "stratified",
) -> dict[str, np.ndarray]:
    """The split stage's output: ``train`` and ``val``, sorted indices into the training file
    (``subset`` thins the train part only, after the hold-out), and ``folds``, the fold of each item of
    ``np.concatenate([train, val])``, the pool that the K-fold methods train and validate on.

    ``method`` is ``stratified`` (``val_per_class`` images of each class validate) or ``course`` (the
    last 10,000 images validate, as the course's teaching assistants split its training file)."""
    labels = np.asarray(labels)
    if method == "course":
        train, val = course_split(len(labels))
    else:
        train, val = holdout_split(labels, val_per_class, seed)
    if subset is not None:
        train = stratified_subset(train, labels, subset, seed)
    folds = kfold_assignments(labels[np.concatenate([train, val])], kfold, seed)
    return {"train": train, "val": val, "folds": folds}
