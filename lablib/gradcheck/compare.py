"""A tensor of ours against its expected value: the references, their tolerances, the comparison."""

from __future__ import annotations

from typing import Any

import numpy as np

from lablib.gradcheck.diagnosis import Context, diagnose
from lablib.gradcheck.result import Comparison

AUTOGRAD = "autograd (float32)"
FINITE_DIFFERENCES = "finite differences (float64)"
FINITE_DIFFERENCES_32 = "finite differences (float32 layer)"
TOLERANCE = {AUTOGRAD: 1e-4, FINITE_DIFFERENCES: 1e-6, FINITE_DIFFERENCES_32: 1e-2}
STEP = {FINITE_DIFFERENCES: 1e-6, FINITE_DIFFERENCES_32: 1e-2}


def compare(tensor: str, against: str, input_shape: tuple[int, ...], ours: Any, expected: np.ndarray) -> Comparison:
    """``ours`` against ``expected``: the largest error, relative to the largest expected magnitude (at least 1),
    and a failing one's diagnosis."""
    context = Context(input_shape, TOLERANCE[against])
    if not isinstance(ours, np.ndarray) or ours.shape != expected.shape:
        got = f"shape {ours.shape}" if isinstance(ours, np.ndarray) else type(ours).__name__
        where = f"{got}, expected shape {expected.shape}"
        why = diagnose(ours, expected, context) if isinstance(ours, np.ndarray) else f"{got}, not an array"
        return Comparison(tensor, against, np.nan, np.nan, "FAIL", where, why, input_shape=input_shape)
    error = np.abs(ours.astype(np.float64) - expected)
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    index = np.unravel_index(np.argmax(error), error.shape) if error.size else ()
    max_abs = float(error.max(initial=0))
    where = f"at index {tuple(int(i) for i in index)}: yours {ours[index]:.6g}, expected {expected[index]:.6g}"
    if max_abs <= TOLERANCE[against] * scale:
        return Comparison(tensor, against, max_abs, max_abs / scale, "ok", where, input_shape=input_shape)
    why = diagnose(ours, expected, context)
    return Comparison(tensor, against, max_abs, max_abs / scale, "FAIL", where, why, input_shape=input_shape)
