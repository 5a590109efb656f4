"""Speed work keeps every bit: short seeded trainings give the digest recorded for this BLAS kernel.

Digests depend on the BLAS kernel, its threads and NumPy's vector instruction set, so they are kept
per key (``tests/bits/digests.json``); on a machine with no digest for its key the test says so and
skips. ``python -m tests.bits.seeded --record`` adds this machine's, once its bits are known good.
"""

from __future__ import annotations

import pytest

from lablib import machine
from tests.bits.seeded import DIGESTS, digest, recorded


def test_seeded_trainings_keep_their_bits():
    key = machine.bits_key(machine.describe())
    expected = recorded().get(key)
    if expected is None:
        pytest.skip(f"{DIGESTS.name} has no digest for this machine ({key}); keys: {sorted(recorded())}")
    assert digest() == expected, f"a seeded training's bits moved on {key}"
