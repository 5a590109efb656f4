"""What the training curves show: where training accuracy passes validation accuracy, the floor label
smoothing puts under the training loss, and where the two frameworks' curves part and meet again."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lablib.data.fashion_mnist import NUM_CLASSES


def smoothed_floor(smoothing: float, classes: int = NUM_CLASSES) -> float:
    """The least cross-entropy against label-smoothed targets: their own entropy, reached only by predicting
    them exactly (``1 - smoothing + smoothing / classes`` on the true class, ``smoothing / classes`` on each other)."""
    if not smoothing:
        return 0.0
    on, off = 1 - smoothing + smoothing / classes, smoothing / classes
    return -(on * math.log(on) + (classes - 1) * off * math.log(off))


@dataclass(frozen=True)
class Overfit:
    """Training against validation accuracy: the first epoch from which training accuracy stays above
    validation accuracy (``None`` if it never does), the gap at that epoch and at the last (fractions)."""

    epoch: int | None
    first_gap: float
    final_gap: float


def overfit(history: Mapping[str, np.ndarray]) -> Overfit:
    """Where training accuracy passes validation accuracy for good, in one framework's history."""
    gap = np.asarray(history["train_acc"]) - np.asarray(history["val_acc"])
    below = np.flatnonzero(gap <= 0)
    start = 0 if len(below) == 0 else int(below[-1]) + 1
    if start == len(gap):
        return Overfit(None, 0.0, float(gap[-1]))
    return Overfit(int(history["epoch"][start]), float(gap[start]), float(gap[-1]))


@dataclass(frozen=True)
class Parting:
    """Two frameworks' per-epoch values of one metric: the first epoch they differ (``None`` if never),
    the largest difference and its epoch, and whether the last epoch has them equal."""

    first: int | None
    largest: float
    at: int
    meet_at_end: bool


def parting(first: Mapping[str, np.ndarray], second: Mapping[str, np.ndarray], key: str) -> Parting:
    """Where two histories' ``key`` part and meet, epoch by epoch (exact equality: the same images right)."""
    difference = np.abs(np.asarray(first[key]) - np.asarray(second[key]))
    differs = np.flatnonzero(difference > 0)
    worst = int(np.argmax(difference))
    return Parting(
        first=int(first["epoch"][differs[0]]) if len(differs) else None,
        largest=float(difference[worst]),
        at=int(first["epoch"][worst]),
        meet_at_end=bool(difference[-1] == 0),
    )


def relative_gap(first: np.ndarray, second: np.ndarray) -> float:
    """The largest relative difference between two curves of positive values (a training loss)."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    return float(np.max(np.abs(first - second) / np.abs(first)))
