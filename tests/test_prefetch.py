"""The prefetcher: same items in the same order, errors raised in the consumer, and a clean stop."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from lablib.train.prefetch import Prefetcher


def draws(rng: np.random.Generator, n: int):
    for _ in range(n):
        yield rng.permutation(5), rng.uniform(size=3)


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_items_and_generator_state_are_those_of_a_plain_loop(depth):
    plain_rng, rng = np.random.default_rng(7), np.random.default_rng(7)
    expected = list(draws(plain_rng, 20))
    with Prefetcher(draws(rng, 20), depth) as stream:
        got = list(stream)
    assert len(got) == len(expected)
    for (a, b), (c, d) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert rng.bit_generator.state == plain_rng.bit_generator.state


@pytest.mark.parametrize("depth", [0, 2])
def test_an_error_while_preparing_is_raised_in_the_consumer(depth):
    def failing():
        yield 1
        raise ValueError("bad batch")

    with Prefetcher(failing(), depth) as stream, pytest.raises(ValueError, match="bad batch"):
        list(stream)


def test_a_consumer_that_stops_early_stops_the_thread():
    made = []

    def endless():
        while True:
            made.append(len(made))
            yield made[-1]

    with pytest.raises(RuntimeError), Prefetcher(endless(), 1) as stream:
        for item in stream:
            if item == 3:
                raise RuntimeError("the step failed")
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())
    assert len(made) <= 4 + 1 + 1 + 1  # consumed, queued, being put when stopped, drawn before seeing the stop
