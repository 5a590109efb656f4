"""Why a check failed, in words, for the student to act on: a diagnosis of the two arrays, or where the
student's code raised.

Each diagnosis is a pure function of ``(ours, expected, context)`` that returns a sentence, or ``""``
when it does not apply; :func:`diagnose` tries them in turn, from the most specific. ``context`` says
what the arrays are: the input's shape, whose axis 0 is the batch, and the verdict's tolerance.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import lablib

AXIS_NAMES = {2: ("the batch", "the features"), 4: ("the batch", "the channels", "the height", "the width")}
FACTOR_FIT = 1e-3  # how close a fitted factor must lie to a named one (1/N, 2) to be called by its name
FEW = 3  # so many wrong entries are listed, not placed
FORWARD_DIFFERS = "the forward already differs from the twin, so the backward is not judged against it"


@dataclass(frozen=True)
class Context:
    """What the two arrays are: gradients for an input of ``input_shape``, judged with ``tolerance``."""

    input_shape: tuple[int, ...] = ()
    tolerance: float = 1e-6

    @property
    def batch(self) -> int | None:
        return self.input_shape[0] if self.input_shape else None

    def axis(self, axis: int) -> str:
        names = AXIS_NAMES.get(len(self.input_shape), ())
        return f"axis {axis}, {names[axis]}" if axis < len(names) else f"axis {axis}"


def wrong_shape(ours: np.ndarray, expected: np.ndarray, context: Context) -> str:
    """Shapes that differ: both, and the likely cause (an axis summed instead of the batch, a transpose).

    An expected shape with fewer axes (PyTorch's bias) is read with unit axes added, as the layer may keep it.
    """
    if ours.shape == expected.shape:
        return ""
    if ours.shape == expected.shape[::-1]:
        return f"shape {ours.shape}, expected {expected.shape}: transposed"
    for shape in _with_unit_axes(expected.shape, ours.ndim):
        summed = [a for a in range(ours.ndim) if ours.shape[a] == 1 < shape[a]]
        kept = [a for a in range(ours.ndim) if ours.shape[a] == context.batch and shape[a] == 1]
        if summed and kept:
            axes = ", ".join(map(context.axis, summed))
            return f"shape {ours.shape}, expected {shape}: summed over {axes}, instead of {context.axis(kept[0])}"
    said = f"shape {ours.shape}, expected {expected.shape}"
    if context.batch and ours.size == context.batch != expected.size:
        return f"{said}: one entry per sample, summed over the features instead of over the batch (axis 0)"
    if context.batch and ours.ndim == expected.ndim + 1 and ours.shape[1:] == expected.shape:
        return f"{said}: the batch axis kept; sum over axis 0"
    if ours.size == expected.size:
        return f"{said}: the right number of entries in another shape; reshape it"
    return said


def _with_unit_axes(shape: tuple[int, ...], ndim: int) -> list[tuple[int, ...]]:
    """``shape`` itself if it has ``ndim`` axes, else each way of reaching ``ndim`` by adding one unit axis."""
    if len(shape) == ndim:
        return [shape]
    if len(shape) + 1 != ndim:
        return []
    return [(*shape[:i], 1, *shape[i:]) for i in range(ndim)]


def all_zero(ours: np.ndarray, expected: np.ndarray, context: Context) -> str:
    """Ours all zero where the expected is not."""
    if np.any(ours) or not np.any(expected):
        return ""
    return "all zero: the gradient is never written, or is reset after it is computed"


def sign_flipped(ours: np.ndarray, expected: np.ndarray, context: Context) -> str:
    """Ours the expected negated."""
    if not _fits(ours, -expected, context):
        return ""
    return "the sign is flipped: a subtraction the wrong way round, or a gradient ascended"


def transposed(ours: np.ndarray, expected: np.ndarray, context: Context) -> str:
    """Ours the expected transposed, a square matrix (other shapes are told apart by :func:`wrong_shape`)."""
    if ours.ndim != 2 or ours.shape[0] != ours.shape[1] or not _fits(ours, expected.T, context):
        return ""
    return "transposed: the right entries with rows and columns swapped"


def constant_factor(ours: np.ndarray, expected: np.ndarray, context: Context) -> str:
    """Ours a constant multiple of the expected, the constant named: the batch (a mean for a sum or back), 2, 1/2."""
    norm = float(np.vdot(expected, expected))
    if norm == 0:
        return ""
    factor = float(np.vdot(ours, expected)) / norm
    if np.isclose(factor, 1, rtol=FACTOR_FIT) or not _fits(ours, factor * expected, context):
        return ""
    n = context.batch
    if n and n > 1 and np.isclose(factor, 1 / n, rtol=FACTOR_FIT):
        return f"off by a factor 1/N = 1/{n}: divided by the batch size, a mean where a sum is needed"
    if n and n > 1 and np.isclose(factor, n, rtol=FACTOR_FIT):
        return f"off by a factor N = {n}: not divided by the batch size, a sum where the mean is needed"
    for fraction, word in ((2, "2"), (0.5, "1/2")):
        if np.isclose(factor, fraction, rtol=FACTOR_FIT):
            return f"off by a factor {word}"
    return f"off by a constant factor {factor:.4g}"


def some_entries(ours: np.ndarray, expected: np.ndarray, context: Context) -> str:
    """Where some entries, not all, are wrong: the few named, or all at the border, or at every other position."""
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    wrong = np.abs(ours - expected) > context.tolerance * scale
    count, total = int(wrong.sum()), wrong.size
    if not 0 < count < total:
        return ""
    said = f"{count} of {total} entries wrong"
    if count <= FEW:
        return f"{said}, at {', '.join(str(tuple(int(i) for i in index)) for index in np.argwhere(wrong))}"
    if ours.ndim >= 3 and min(ours.shape[-2:]) > 2:
        inner = wrong[..., 1:-1, 1:-1]
        if not inner.any():
            return f"{said}, all at the border (first and last rows and columns): the padding"
    for axis in range(ours.ndim):
        if ours.shape[axis] < 3:
            continue
        for start in (0, 1):
            rest = np.delete(wrong, np.s_[start::2], axis=axis)
            if not rest.any():
                parity = "even" if start == 0 else "odd"
                return f"{said}, all at {parity} positions of {context.axis(axis)} (every other position): a stride"
    return said


def _fits(ours: np.ndarray, candidate: np.ndarray, context: Context) -> bool:
    scale = max(1.0, float(np.abs(candidate).max(initial=0)))
    return float(np.abs(ours - candidate).max(initial=0)) <= context.tolerance * scale


DIAGNOSES: tuple[Callable[[np.ndarray, np.ndarray, Context], str], ...] = (
    all_zero,
    sign_flipped,
    transposed,
    constant_factor,
    some_entries,
)


def diagnose(ours: np.ndarray, expected: np.ndarray, context: Context) -> str:
    """Why ``ours`` is not ``expected``: the first diagnosis that applies, or that no simple one does."""
    if ours.shape != expected.shape:
        return wrong_shape(ours, expected, context)
    ours, expected = ours.astype(np.float64), expected.astype(np.float64)
    for diagnosis in DIAGNOSES:
        found = diagnosis(ours, expected, context)
        if found:
            return found
    return "wrong throughout: no constant factor, transpose, sign or set of entries explains it"


def crash_site(error: BaseException) -> str:
    """Where the student's code raised the exception behind ``error``: ``FILE, line N`` of the last frame outside
    lablib and Python's own libraries, or ``""`` when no such frame exists (the command's misuse, not a crash)."""
    cause = error.__cause__
    while cause is not None and cause.__cause__ is not None:
        cause = cause.__cause__
    if cause is None:
        return ""
    ours = [Path(lablib.__file__).parent, *{Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}]
    frames = [
        frame
        for frame in traceback.extract_tb(cause.__traceback__)
        if not frame.filename.startswith("<")
        and not any(Path(frame.filename).resolve().is_relative_to(root.resolve()) for root in ours)
    ]
    if not frames:
        return ""
    frame = frames[-1]
    path = Path(frame.filename)
    shown = os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd()) else str(path)
    return f"{shown}, line {frame.lineno}"
