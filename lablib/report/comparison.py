"""Honest comparisons with a figure published elsewhere: every noise we can name, then one verdict.

A published figure is one run of its system, measured on a sample of images. Beside our mean over seeds,
the difference carries three noises: our mean's (sd / sqrt(n)), the other run's own seed noise (one run;
estimated by our sd over seeds), and the sampling error of the images it was measured on (binomial,
sqrt(p (1 - p) / k)). Under :data:`Z` standard deviations of their sum, the two are not distinguishable.
The same holds for the gain from one row of a table to the next: over seeds paired by seed ours, one pair
of runs the other's, whose rows share one set of test images (their common sampling error cancels).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lablib.report.series_inputs import Spread

# The course's leaderboard (report 001's figures): an upload is scored on a public part of the 10,000
# official test images and graded on the private rest. Report 001 does not say which part it quotes.
PUBLIC_IMAGES = 200
PRIVATE_IMAGES = 9_800
# Report 000 validated on the course's fixed hold-out of 10,000 of the 60,000 training images (its 2.2).
REPORT000_HOLDOUT = 10_000
Z = 2.0  # standard deviations of the noise beyond which a difference counts: about 95 %, two-sided


@dataclass(frozen=True)
class Comparison:
    """A published figure against our mean over seeds (fractions): the difference and each noise, as
    standard deviations of the difference."""

    difference: float
    ours: float
    seed: float
    sampling: float

    @property
    def noise(self) -> float:
        return math.sqrt(self.ours**2 + self.seed**2 + self.sampling**2)

    @property
    def distinguishable(self) -> bool:
        return abs(self.difference) >= Z * self.noise


def sampling_error(accuracy: float, images: int) -> float:
    """The binomial standard error of an accuracy measured on ``images`` images."""
    return math.sqrt(accuracy * (1 - accuracy) / images)


def compare(figure: float, ours: Spread, images: int) -> Comparison:
    """``figure`` (one run, measured on ``images`` images) against our spread over at least two seeds."""
    if ours.sd is None or ours.seeds < 2:
        raise ValueError("a comparison needs our spread over at least two seeds")
    return Comparison(
        difference=figure - ours.mean,
        ours=ours.sd / math.sqrt(ours.seeds),
        seed=ours.sd,
        sampling=sampling_error(figure, images),
    )


def verdict(comparison: Comparison) -> str:
    """The difference, its noise term by term, and whether it stands out: '0.30 points above our mean
    (noise 0.32 points: ...): not distinguishable'."""
    c = comparison
    where = "above" if c.difference > 0 else "below"
    judged = f"{where} beyond {Z:g} times the noise" if c.distinguishable else "not distinguishable"
    return (
        f"{100 * abs(c.difference):.2f} points {where} our mean (noise {100 * c.noise:.2f} points: our mean "
        f"{100 * c.ours:.2f}, one run's seed {100 * c.seed:.2f}, sampling {100 * c.sampling:.2f}): {judged}"
    )


def difference_noise(first: Spread, second: Spread) -> float:
    """The standard deviation of the difference between two rows' means over their own seeds."""
    return math.sqrt((first.sd or 0.0) ** 2 / first.seeds + (second.sd or 0.0) ** 2 / second.seeds)


@dataclass(frozen=True)
class Gain:
    """The step from row ``before`` to row ``row``: the published gain and ours over seeds paired by seed."""

    before: str
    row: str
    published: float
    ours: Spread

    @property
    def noise(self) -> float:
        """One pair of runs' seed noise (our sd of the paired gains) and our mean's."""
        sd = self.ours.sd or 0.0
        return sd * math.sqrt(1 + 1 / self.ours.seeds)

    @property
    def distinguishable(self) -> bool:
        return abs(self.published - self.ours.mean) >= Z * self.noise


def paired_gains(per_seed: pd.DataFrame, column: str, published: dict[str, float], rows: Sequence[str]) -> list[Gain]:
    """Each step between consecutive ``rows``: ``published[row] - published[before]`` and, from
    ``per_seed`` (a row, a seed and ``column`` a line, in %), our gains over the seeds both rows ran."""
    table = per_seed.pivot(index="seed", columns="row", values=column) / 100
    gains = []
    for before, row in itertools.pairwise(rows):
        paired = (table[row] - table[before]).dropna().to_numpy(dtype=np.float64)
        sd = float(paired.std(ddof=1)) if len(paired) > 1 else None
        spread = Spread(float(paired.mean()), sd, float(paired.min()), float(paired.max()), len(paired))
        gains.append(Gain(before, row, published[row] - published[before], spread))
    return gains
