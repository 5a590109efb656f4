"""The report's honest comparisons and curve readings, against cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lablib.report.comparison import PRIVATE_IMAGES, PUBLIC_IMAGES, compare, paired_gains, verdict
from lablib.report.curves import overfit, parting, smoothed_floor
from lablib.report.series_inputs import Spread

OURS = Spread(mean=0.89, sd=0.004, low=0.885, high=0.895, seeds=4)


def test_a_published_figure_counts_our_mean_its_seed_and_its_sampling():
    # Hand: our mean 0.004 / sqrt(4) = 0.002; its seed 0.004; sampling sqrt(0.9 * 0.1 / 400) = 0.015;
    # noise sqrt(0.002^2 + 0.004^2 + 0.015^2) = sqrt(0.000245) = 0.0156525; 0.01 < 2 x 0.0156525.
    on_400 = compare(0.90, OURS, 400)
    assert (on_400.difference, on_400.ours, on_400.seed, on_400.sampling) == pytest.approx((0.01, 0.002, 0.004, 0.015))
    assert on_400.noise == pytest.approx(math.sqrt(0.000245)) and not on_400.distinguishable
    assert verdict(on_400) == (
        "1.00 points above our mean (noise 1.57 points: our mean 0.20, one run's seed 0.40, sampling 1.50): "
        "not distinguishable"
    )
    # sampling sqrt(0.09 / 10,000) = 0.003: noise sqrt(0.000029) = 0.0053852, twice 0.0107703 > 0.01.
    assert compare(0.90, OURS, 10_000).noise == pytest.approx(math.sqrt(0.000029))
    assert not compare(0.90, OURS, 10_000).distinguishable
    # sampling 0.001: noise sqrt(0.000021) = 0.0045826, twice 0.0091652 < 0.01.
    beyond = compare(0.90, OURS, 90_000)
    assert beyond.distinguishable and verdict(beyond).endswith("above beyond 2 times the noise")
    assert compare(0.87, OURS, 90_000).difference == pytest.approx(-0.02)


def test_the_course_leaderboard_parts_and_their_sampling_error():
    assert PUBLIC_IMAGES + PRIVATE_IMAGES == 10_000
    # At 89 %: sqrt(0.89 * 0.11 / 200) = 2.21 points on the public part, 0.32 on the private part.
    assert compare(0.89, OURS, PUBLIC_IMAGES).sampling == pytest.approx(0.022125, abs=1e-6)
    assert compare(0.89, OURS, PRIVATE_IMAGES).sampling == pytest.approx(0.0031607, abs=1e-6)


def test_one_seed_has_no_spread_to_compare_with():
    with pytest.raises(ValueError, match="at least two seeds"):
        compare(0.9, Spread(0.89, None, 0.89, 0.89, 1), 200)


def test_gains_are_paired_by_seed():
    per_seed = pd.DataFrame(
        {
            "row": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
            "seed": [0, 1, 2] * 3,
            "numpy test acc %": [90, 91, 92, 91, 91.5, 93.5, 92, 92, 92],
        }
    ).sample(frac=1, random_state=0)  # the order of the lines does not matter
    first, second = paired_gains(per_seed, "numpy test acc %", {"a": 0.90, "b": 0.92, "c": 0.925}, ["a", "b", "c"])
    # a to b: gains 1, 0.5, 1.5 points: mean 1.0, sd 0.5; noise 0.5 x sqrt(1 + 1/3) = 0.57735 points.
    assert (first.before, first.row) == ("a", "b") and first.published == pytest.approx(0.02)
    ours = first.ours
    assert (ours.mean, ours.sd, ours.low, ours.high) == pytest.approx((0.01, 0.005, 0.005, 0.015))
    assert first.noise == pytest.approx(0.005 * math.sqrt(4 / 3)) and not first.distinguishable
    # b to c: gains 1, 0.5, -1.5: mean 0, sd sqrt(3.5 / 2).
    assert second.ours.mean == pytest.approx(0.0, abs=1e-12) and second.ours.sd == pytest.approx(math.sqrt(1.75) / 100)


def test_label_smoothing_puts_a_floor_under_the_training_loss():
    # 0.1 over 10 classes: targets 0.91 and 0.01; entropy -(0.91 ln 0.91 + 9 x 0.01 ln 0.01) = 0.500288.
    assert smoothed_floor(0.1) == pytest.approx(0.0858227 + 0.4144653, abs=1e-6)
    assert smoothed_floor(0.0) == 0.0


def history(train: list[float], val: list[float]) -> dict[str, np.ndarray]:
    return {"epoch": np.arange(1, len(train) + 1), "train_acc": np.array(train), "val_acc": np.array(val)}


def test_training_accuracy_passes_validation_for_good():
    passing = overfit(history([0.8, 0.85, 0.9, 0.92, 0.95], [0.85, 0.86, 0.87, 0.88, 0.89]))
    assert passing.epoch == 3 and passing.first_gap == pytest.approx(0.03) and passing.final_gap == pytest.approx(0.06)
    back_below = overfit(history([0.8, 0.85, 0.9, 0.88, 0.95], [0.85, 0.86, 0.87, 0.89, 0.9]))
    assert back_below.epoch == 5, "a pass that falls back below does not count"
    assert overfit(history([0.8, 0.85], [0.85, 0.86])).epoch is None


def test_two_frameworks_part_and_meet():
    first, second = history([0, 0, 0], [0.8, 0.85, 0.9]), history([0, 0, 0], [0.8, 0.86, 0.9])
    found = parting(first, second, "val_acc")
    assert (found.first, found.at, found.meet_at_end) == (2, 2, True) and found.largest == pytest.approx(0.01)
    assert parting(first, first, "val_acc").first is None
