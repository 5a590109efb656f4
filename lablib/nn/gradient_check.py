"""Finite-difference gradient checks, in the manner of CS231n's ``gradient_check.py``.

Use float64 arrays: central differences in float32 lose most of their digits to rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def eval_numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, grad_output: np.ndarray, h: float = 1e-6
) -> np.ndarray:
    """Numerical gradient of ``sum(f(x) * grad_output)`` with respect to ``x``, by central differences.

    ``x`` is perturbed in place and restored, so ``f`` may close over it (a layer's weight, say).
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        index = it.multi_index
        original = x[index]
        x[index] = original + h
        plus = np.array(f(x), copy=True)
        x[index] = original - h
        minus = np.array(f(x), copy=True)
        x[index] = original
        grad[index] = np.sum((plus - minus) * grad_output) / (2 * h)
        it.iternext()
    return grad


def eval_numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Numerical gradient of the scalar ``f(x)`` with respect to ``x``, by central differences."""
    return eval_numerical_gradient_array(lambda v: np.asarray(f(v)), x, np.ones(()), h)


def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    """Largest elementwise relative error, ``|x - y| / max(1e-8, |x| + |y|)``."""
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))
