"""Batch order: shuffled and sequential batches cover every index once; balanced batches hold the
same number of every class, read each class without replacement, and replay from a generator state."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lablib.data.sampling import SamplingError, balanced_batches, shuffled_batches


def unequal_labels(sizes: list[int], seed: int = 0) -> np.ndarray:
    """``sizes[c]`` images of class c, in a random order."""
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(len(sizes)), sizes))


@given(n=st.integers(0, 60), batch_size=st.integers(1, 70), drop_last=st.booleans(), seed=st.integers(0, 3))
@settings(max_examples=60, deadline=None)
def test_shuffled_batches_cover_every_index_once(n, batch_size, drop_last, seed):
    batches = shuffled_batches(n, batch_size, np.random.default_rng(seed), drop_last=drop_last)
    kept = n - n % batch_size if drop_last else n
    assert len(batches) == (kept // batch_size if drop_last else math.ceil(n / batch_size))
    assert all(b.dtype == np.int64 for b in batches)
    assert all(len(b) == batch_size for b in batches[:-1])
    flat = np.concatenate(batches) if batches else np.array([], np.int64)
    assert len(flat) == kept and len(np.unique(flat)) == kept and np.all((flat >= 0) & (flat < n))
    if not drop_last:
        np.testing.assert_array_equal(np.sort(flat), np.arange(n))


def test_shuffled_batches_without_rng_are_in_order():
    batches = shuffled_batches(10, 4, None)
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [b.tolist() for b in shuffled_batches(10, 4, None, drop_last=True)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert shuffled_batches(3, 4, None, drop_last=True) == []


def test_shuffled_batches_shuffle_and_replay():
    a = np.concatenate(shuffled_batches(100, 32, np.random.default_rng(0)))
    b = np.concatenate(shuffled_batches(100, 32, np.random.default_rng(0)))
    c = np.concatenate(shuffled_batches(100, 32, np.random.default_rng(1)))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, np.arange(100))


@pytest.mark.parametrize("batch_size", [0, -5])
def test_shuffled_batches_reject_a_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match=rf"batch_size must be at least 1; got {batch_size}"):
        shuffled_batches(10, batch_size, None)


@pytest.mark.parametrize("batch_size", [10, 25, 50, 59])
def test_every_balanced_batch_holds_batch_size_over_10_of_each_class(batch_size):
    labels = unequal_labels([30 + 7 * c for c in range(10)])
    per_class = batch_size // 10
    batches = balanced_batches(labels, batch_size, np.random.default_rng(0))
    assert len(batches) == math.ceil(len(labels) / (per_class * 10))
    for batch in batches:
        assert batch.dtype == np.int64 and len(batch) == per_class * 10
        np.testing.assert_array_equal(np.bincount(labels[batch], minlength=10), np.full(10, per_class))


def test_a_class_is_read_without_replacement_until_it_runs_out():
    """Class sizes are multiples of per_class, so a class's rounds end on batch boundaries: each run of
    ``size // per_class`` batches holds every image of the class exactly once."""
    per_class = 5
    sizes = [10, 15, 20, 25, 30, 35, 40, 45, 50, 55]
    labels = unequal_labels(sizes)
    batches = balanced_batches(labels, per_class * 10, np.random.default_rng(1))
    for c, size in enumerate(sizes):
        members = np.flatnonzero(labels == c)
        per_batch = [b[labels[b] == c] for b in batches]
        rounds = size // per_class
        for start in range(0, len(batches), rounds):
            seen = np.concatenate(per_batch[start : start + rounds])
            assert len(np.unique(seen)) == len(seen)  # no repeat within a round
            if start + rounds <= len(batches):
                np.testing.assert_array_equal(np.sort(seen), members)


def test_balanced_counts_differ_by_at_most_one_within_a_class():
    labels = unequal_labels([23, 41, 57, 60, 31, 44, 52, 38, 29, 49], seed=2)
    batches = balanced_batches(labels, 70, np.random.default_rng(3))
    counts = np.bincount(np.concatenate(batches), minlength=len(labels))
    for c in range(10):
        of_class = counts[labels == c]
        assert of_class.max() - of_class.min() <= 1


def test_balanced_batches_shuffle_classes_within_a_batch():
    labels = unequal_labels([20] * 10)
    batches = balanced_batches(labels, 20, np.random.default_rng(0))
    sorted_by_class = [np.all(np.diff(labels[b]) >= 0) for b in batches]
    assert not all(sorted_by_class)


def test_balanced_batches_replay_from_a_generator_state():
    labels = unequal_labels([30 + c for c in range(10)])
    rng = np.random.default_rng(5)
    saved = rng.bit_generator.state
    first, second = balanced_batches(labels, 30, rng), balanced_batches(labels, 30, rng)
    assert any(not np.array_equal(a, b) for a, b in zip(first, second, strict=True))  # a fresh epoch
    restored = np.random.default_rng(0)
    restored.bit_generator.state = saved
    for expected in (first, second):
        got = balanced_batches(labels, 30, restored)
        assert len(got) == len(expected) and all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    other = balanced_batches(labels, 30, np.random.default_rng(6))
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_classes_come_from_the_labels():
    labels = unequal_labels([0, 0, 12, 0, 0, 9, 0, 15])  # classes 2, 5 and 7 only
    batches = balanced_batches(labels, 10, np.random.default_rng(0))
    assert len(batches) == math.ceil(len(labels) / 9)
    for batch in batches:
        assert sorted(labels[batch].tolist()) == [2, 2, 2, 5, 5, 5, 7, 7, 7]


def test_balanced_batch_size_below_the_class_count_is_refused():
    with pytest.raises(ValueError, match=r"batch_size 9 .*sampling: balanced needs batch_size >= 10") as error:
        balanced_batches(np.arange(100) % 10, 9, np.random.default_rng(0))
    assert isinstance(error.value, SamplingError)


@pytest.mark.parametrize("labels", [np.array([], np.int64), np.zeros((4, 5), np.int64)])
def test_balanced_batches_reject_labels_that_are_not_a_vector(labels):
    with pytest.raises(SamplingError, match="labels must be a non-empty 1-D array"):
        balanced_batches(labels, 10, np.random.default_rng(0))
