"""A network's gradients on sampled entries against central differences: which entries, the difference,
the comparison, at a step and tolerance fit for the loss's dtype."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lablib.adapter.arrays import Path_, label
from lablib.gradcheck.result import Comparison

STEP = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-2}
TOLERANCE = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 5e-2}
SCALE_FLOOR = 1e-3  # errors count against the gradient's magnitude, but never one below this
ENTRIES = 6  # sampled entries of each tensor, besides its largest gradient


def sample(size: int, grad: np.ndarray, rng: np.random.Generator) -> list[int]:
    """A few flat indices: random ones and the entry of the largest gradient."""
    chosen = set(rng.choice(size, min(size, ENTRIES), replace=False).tolist())
    chosen.add(int(np.argmax(np.abs(grad))))
    return sorted(chosen)


def central(f: Callable[[], float], array: np.ndarray, index: int, h: float) -> float:
    """The central difference of ``f`` in the entry ``index`` of ``array``, which is put back."""
    original = array.flat[index]
    array.flat[index] = original + h
    plus = f()
    array.flat[index] = original - h
    minus = f()
    array.flat[index] = original
    return (plus - minus) / (2 * h)


def compare_sampled(
    layer: str,
    tensor: str,
    through: str,
    analytic: np.ndarray,
    numeric: np.ndarray,
    dtype: np.dtype,
    where_in: tuple[list[int], tuple[int, ...]],
) -> Comparison:
    """The sampled entries of one gradient against their differences; ``where_in``: their flat indices, the shape."""
    error = np.abs(analytic - numeric)
    scale = max(float(np.abs(numeric).max()), float(np.abs(analytic).max()), SCALE_FLOOR)
    worst = int(np.argmax(error))
    index = tuple(int(i) for i in np.unravel_index(where_in[0][worst], where_in[1]))
    where = f"at index {index}: yours {analytic[worst]:.6g}, finite differences {numeric[worst]:.6g}"
    max_abs = float(error.max())
    verdict = "ok" if max_abs <= TOLERANCE[dtype] * scale else "FAIL"
    if verdict == "ok" and not np.any(analytic) and through == "network":
        verdict = "zero"
    return Comparison(
        tensor, "", max_abs, max_abs / scale, verdict, where, layer=layer, through=through, entries=len(analytic)
    )


def unmeasured(layer: str, tensor: str, through: str, where: str) -> Comparison:
    """A gradient that cannot be compared: missing, or of the wrong shape."""
    return Comparison(tensor, "", np.nan, np.nan, "FAIL", where, layer=layer, through=through)


def layer_name(path: str, layer: Any) -> str:
    """``fc1 (FullyConnected)``: where the layer is in the network, and its class."""
    return f"{path} ({type(layer).__name__})"


def excluded(path: str, value: Path_, exclude: Sequence[str]) -> bool:
    """True for a parameter left out by its attribute, ``layer.attribute`` or its layer's path."""
    return any(name in (value[-1], label(value), f"{path}.{label(value)}", path) for name in exclude)
