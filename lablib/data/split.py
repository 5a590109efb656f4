"""The split: a fixed stratified hold-out, an optional stratified subset, and K-fold assignments.

Every function is a pure function of the labels and a seed, drawn with NumPy's PCG64 generator in
a fixed order, so the same seed gives the same indices on every run and every machine.
"""

from __future__ import annotations

import numpy as np

from lablib.errors import LabError


class SplitError(LabError, ValueError):
    """A split that the labels cannot support; the message names the parameter."""


def _per_class(labels: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(labels == c) for c in range(int(labels.max()) + 1)]


def holdout_split(labels: np.ndarray, val_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices, sorted; ``val_per_class`` images of every class are held out."""
    rng = np.random.default_rng([seed, 0])
    val = []
    for c, members in enumerate(_per_class(labels)):
        if val_per_class >= len(members):
            raise SplitError(
                f"data.val_per_class {val_per_class} leaves no training image of class {c} ({len(members)} in all)"
            )
        val.append(rng.permutation(members)[:val_per_class])
    val_idx = np.sort(np.concatenate(val)).astype(np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels), dtype=np.int64), val_idx)
    return train_idx, val_idx


def stratified_subset(indices: np.ndarray, labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of ``indices`` (sorted), classes as equal as possible; the first ``n % K`` classes get one more."""
    groups = _per_class(labels[indices])
    k = len(groups)
    if not k <= n <= len(indices):
        raise SplitError(f"data.subset must be between {k} and {len(indices)} (the training split); got {n}")
    rng = np.random.default_rng([seed, 1])
    chosen = []
    for c, members in enumerate(groups):
        want = n // k + (c < n % k)
        if want > len(members):
            raise SplitError(f"data.subset {n} asks for {want} images of class {c}, which has {len(members)}")
        chosen.append(indices[rng.permutation(members)[:want]])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def kfold_assignments(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The fold (0..k-1) of every item, each class spread evenly over the folds."""
    groups = _per_class(labels)
    smallest = min(len(members) for members in groups)
    if not 2 <= k <= smallest:
        raise SplitError(f"data.kfold must be between 2 and {smallest} (the smallest class); got {k}")
    rng = np.random.default_rng([seed, 2])
    folds = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for members in groups:
        folds[rng.permutation(members)] = (np.arange(len(members)) + offset) % k
        offset += len(members)
    return folds


def make_split(labels: np.ndarray, *, val_per_class: int, subset: int | None, kfold: int, seed: int) -> dict[str, np.ndarray]:
    """``train`` and ``val`` (indices into the official training set) and ``folds``, the fold of each
    item of ``concatenate([train, val])``, the pool that the K-fold methods train and validate on."""
    labels = np.asarray(labels)
    train, val = holdout_split(labels, val_per_class, seed)
    if subset is not None:
        train = stratified_subset(train, labels, subset, seed)
    folds = kfold_assignments(labels[np.concatenate([train, val])], kfold, seed)
    return {"train": train, "val": val, "folds": folds}
