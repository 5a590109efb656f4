"""Activations: SiLU (report 000, 3.2) and ReLU."""

from __future__ import annotations

import numpy as np

from lablib.nn import parallel
from lablib.nn.grad_mode import is_grad_enabled
from lablib.nn.module import Module


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``1 / (1 + exp(-x))``, into ``out`` if given.

    For ``x < -88`` ``exp(-x)`` overflows float32 to ``inf`` and the result is the correct 0; for large
    ``x`` it underflows to 0 and the result is the correct 1. Neither is an error.
    """
    s = np.negative(x, out=out)
    with np.errstate(over="ignore", under="ignore"):
        np.exp(s, out=s)  # exp is the cheapest of NumPy's transcendentals; tanh(x / 2) is slower
    s += 1
    return np.reciprocal(s, out=s)


class SiLU(Module):
    """``y = x * s`` with ``s = sigmoid(x)``; its derivative is ``dy/dx = s + y * (1 - s)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = np.empty_like(x)
        # Training keeps s for backward. Evaluation keeps x instead, so that s is only a temporary
        # per block; a backward after it recomputes s. Under no_grad nothing is kept.
        keep = is_grad_enabled()
        s = np.empty_like(x) if self.training and keep else None
        axis = parallel.outer_axis(x)
        index = (slice(None),) * axis

        def silu(block: slice) -> None:
            # Each block of memory is read once and stays in cache through the four passes.
            part = (*index, block)
            np.multiply(x[part], sigmoid(x[part], out=None if s is None else s[part]), out=y[part])

        parallel.for_blocks(silu, x.shape[axis], x.size)
        self._x = x if keep and not self.training else None
        self._s, self._y = s, (y if keep else None)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        s, y = self._s, self.saved("_y")
        if s is None:
            s = sigmoid(self._x)
        grad = np.empty_like(s)
        axis = parallel.outer_axis(s)
        index = (slice(None),) * axis

        def silu_grad(block: slice) -> None:
            part = (*index, block)
            g = np.subtract(1, s[part], out=grad[part])
            g *= y[part]
            g += s[part]
            g *= grad_output[part]

        parallel.for_blocks(silu_grad, s.shape[axis], s.size)
        return grad


class ReLU(Module):
    """``max(x, 0)``; the gradient passes where ``x > 0``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0 if is_grad_enabled() else None
        return np.maximum(x, 0)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return np.where(self.saved("_mask"), grad_output, 0)
