"""Activations: SiLU (report 000, 3.2) and ReLU."""

from __future__ import annotations

import numpy as np

from lablib.nn.module import Module


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` in one new array.

    For ``x < -88`` ``exp(-x)`` overflows float32 to ``inf`` and the result is the correct 0; for large
    ``x`` it underflows to 0 and the result is the correct 1. Neither is an error. (``exp`` is the fastest
    of NumPy's transcendentals here: ``(1 + tanh(x / 2)) / 2`` takes 1.3x as long.)
    """
    s = np.negative(x)
    with np.errstate(over="ignore", under="ignore"):
        np.exp(s, out=s)
    s += 1
    return np.reciprocal(s, out=s)


class SiLU(Module):
    """``y = x * s`` with ``s = sigmoid(x)``; its derivative is ``s + y * (1 - s)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        s = sigmoid(x)
        y = x * s
        self._s, self._y = s, y
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        grad = 1 - self._s
        grad *= self._y
        grad += self._s
        grad *= grad_output
        return grad


class ReLU(Module):
    """``max(x, 0)``; the gradient passes where ``x > 0``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return np.maximum(x, 0)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return np.where(self._mask, grad_output, 0)
