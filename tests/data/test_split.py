"""The split: stratified, disjoint, covering, and the same for a seed on every machine."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lablib.data.fashion_mnist import TRAIN_LABELS
from lablib.data.idx import load_labels
from lablib.data.split import (
    SplitError,
    equal_shares,
    holdout_split,
    kfold_assignments,
    make_split,
    stratified_subset,
)

# 60 of each class, in a shuffled order like the real training set.
LABELS = np.random.default_rng(0).permutation(np.arange(600) % 10).astype(np.uint8)


def per_class(labels: np.ndarray) -> list[int]:
    return np.bincount(labels, minlength=10).tolist()


def test_holdout_is_stratified_disjoint_sorted_and_covering():
    train, val = holdout_split(LABELS, val_per_class=7, seed=3)
    assert train.dtype == val.dtype == np.int64
    assert per_class(LABELS[val]) == [7] * 10
    assert per_class(LABELS[train]) == [53] * 10
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(600))


def test_holdout_depends_on_the_seed_only():
    first, again, other = (holdout_split(LABELS, 7, seed) for seed in (3, 3, 4))
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("val_per_class", [60, 61, -1])
def test_holdout_refuses_impossible_sizes(val_per_class):
    with pytest.raises(SplitError, match=f"data.val_per_class.*{val_per_class}"):
        holdout_split(LABELS, val_per_class, seed=0)


def test_holdout_of_zero_keeps_everything_for_training():
    train, val = holdout_split(LABELS, 0, seed=0)
    np.testing.assert_array_equal(train, np.arange(600))
    assert val.size == 0 and val.dtype == np.int64


@pytest.mark.parametrize(
    ("n", "expected"), [(30, [3] * 10), (25, [3] * 5 + [2] * 5), (10, [1] * 10), (539, [54] * 9 + [53])]
)
def test_subset_spreads_classes_evenly_remainder_to_the_first(n, expected):
    train, _ = holdout_split(LABELS, 6, seed=0)  # 54 of each class left
    subset = stratified_subset(train, LABELS, n, seed=1)
    assert per_class(LABELS[subset]) == expected
    assert np.isin(subset, train).all()
    assert np.all(np.diff(subset) > 0) and subset.dtype == np.int64
    np.testing.assert_array_equal(subset, stratified_subset(train, LABELS, n, seed=1))


def test_subset_fills_up_from_larger_classes():
    labels = np.array([0] * 2 + [1] * 10 + [2] * 10)
    subset = stratified_subset(np.arange(22), labels, 13, seed=0)
    assert np.bincount(labels[subset]).tolist() == [2, 6, 5]


@pytest.mark.parametrize("n", [0, 9, 541])
def test_subset_refuses_sizes_out_of_range(n):
    train, _ = holdout_split(LABELS, 6, seed=0)
    with pytest.raises(SplitError, match=rf"data.subset must be between 10 .* and 540 .*got {n}"):
        stratified_subset(train, LABELS, n, seed=0)


@given(sizes=st.lists(st.integers(0, 30), min_size=1, max_size=12), fraction=st.floats(0, 1))
def test_equal_shares_is_as_even_as_the_sizes_allow(sizes, fraction):
    sizes = np.array(sizes)
    n = round(fraction * int(sizes.sum()))
    shares = equal_shares(n, sizes)
    assert shares.sum() == n
    assert np.all((shares >= 0) & (shares <= sizes))
    # A class short of its size has at least the largest share less one: nothing could be moved to it.
    if n:
        assert np.all(shares[shares < sizes] >= shares.max() - 1)


@pytest.mark.parametrize("k", [2, 5, 7])
def test_kfold_is_stratified(k):
    folds = kfold_assignments(LABELS, k, seed=0)
    assert folds.dtype == np.int64 and folds.shape == LABELS.shape
    assert set(folds.tolist()) == set(range(k))
    counts = np.bincount(LABELS.astype(np.int64) * k + folds, minlength=10 * k).reshape(10, k)  # class x fold
    assert np.all(counts.max(axis=1) - counts.min(axis=1) <= 1)
    overall = np.bincount(folds, minlength=k)
    assert overall.max() - overall.min() <= 1
    np.testing.assert_array_equal(folds, kfold_assignments(LABELS, k, seed=0))
    assert not np.array_equal(folds, kfold_assignments(LABELS, k, seed=1))


@pytest.mark.parametrize("k", [0, 1, 61])
def test_kfold_refuses_impossible_k(k):
    with pytest.raises(SplitError, match=f"data.kfold must be between 2 and 60.*got {k}"):
        kfold_assignments(LABELS, k, seed=0)


def test_make_split_subsets_train_only_and_folds_the_pool():
    full = make_split(LABELS, val_per_class=6, subset=None, kfold=4, seed=0)
    small = make_split(LABELS, val_per_class=6, subset=100, kfold=4, seed=0)
    assert sorted(small) == ["folds", "train", "val"]
    np.testing.assert_array_equal(small["val"], full["val"])
    assert per_class(LABELS[small["train"]]) == [10] * 10
    assert np.isin(small["train"], full["train"]).all()
    pool = np.concatenate([small["train"], small["val"]])
    assert small["folds"].shape == pool.shape
    for c in range(10):
        assert np.bincount(small["folds"][LABELS[pool] == c], minlength=4).tolist() == [4, 4, 4, 4]


def test_make_split_is_pinned():
    """The exact indices for seed 0: a change here means a seed no longer reproduces earlier runs."""
    split = make_split(np.arange(40) % 10, val_per_class=1, subset=15, kfold=2, seed=0)
    assert split["train"].tolist() == [2, 5, 6, 8, 10, 11, 13, 17, 21, 23, 24, 29, 30, 32, 34]
    assert split["val"].tolist() == [3, 4, 7, 9, 12, 20, 25, 26, 31, 38]
    assert "".join(map(str, split["folds"])) == "0100111100100101001000111"


@pytest.mark.realdata
def test_real_default_split(real_data_dir):
    labels = load_labels(real_data_dir / TRAIN_LABELS)
    split = make_split(labels, val_per_class=1000, subset=None, kfold=5, seed=0)
    assert per_class(labels[split["train"]]) == [5000] * 10
    assert per_class(labels[split["val"]]) == [1000] * 10
    assert len(split["folds"]) == 60000
    assert np.bincount(split["folds"]).tolist() == [12000] * 5
