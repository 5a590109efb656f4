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


def silu(x: np.ndarray, y: np.ndarray, s: np.ndarray | None = None) -> None:
    """``y = x * sigmoid(x)``, into ``y``; ``sigmoid(x)`` into ``s`` if given."""
    np.multiply(x, sigmoid(x, out=s), out=y)


def silu_grad(s: np.ndarray, y: np.ndarray, grad_output: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``grad_output * (s + y * (1 - s))``, into ``out``: the input gradient from ``s = sigmoid(x)``
    and the output ``y``."""
    g = np.subtract(1, s, out=out)
    g *= y
    g += s
    g *= grad_output
    return g


class SiLU(Module):
    """``y = x * s`` with ``s = sigmoid(x)``; its derivative is ``dy/dx = s + y * (1 - s)``.

    A SiLU right after a BatchNorm in a ``Sequential`` runs inside the BatchNorm's blocks
    (``batchnorm.py``): :meth:`prepare` allocates what the blocks write, :meth:`keep` what backward reads.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, s = self.prepare(x)
        axis = parallel.outer_axis(x)
        index = (slice(None),) * axis

        def silu_block(block: slice) -> None:
            # Each block of memory is read once and stays in cache through the four passes.
            part = (*index, block)
            silu(x[part], y[part], None if s is None else s[part])

        parallel.for_blocks(silu_block, x.shape[axis], x.size)
        return self.keep(x, y, s)

    def prepare(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The output's array for input ``x``, and ``s``'s where training keeps it."""
        # Training keeps s for backward. Evaluation keeps x instead, so that s is only a temporary
        # per block; a backward after it recomputes s. Under no_grad nothing is kept.
        return np.empty_like(x), (np.empty_like(x) if self.training and is_grad_enabled() else None)

    def keep(self, x: np.ndarray, y: np.ndarray, s: np.ndarray | None) -> np.ndarray:
        """Keep what backward reads of a forward of ``x`` to ``y``; returns ``y``."""
        keep = is_grad_enabled()
        self._x = x if keep and not self.training else None
        self._s, self._y = s, (y if keep else None)
        return y

    def saved_terms(self) -> tuple[np.ndarray, np.ndarray]:
        """``s`` and ``y`` of the last forward, ``s`` recomputed where evaluation did not keep it."""
        y = self.saved("_y")
        return (sigmoid(self._x) if self._s is None else self._s), y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        s, y = self.saved_terms()
        grad = np.empty_like(s)
        axis = parallel.outer_axis(s)
        index = (slice(None),) * axis

        def silu_grad_block(block: slice) -> None:
            part = (*index, block)
            silu_grad(s[part], y[part], grad_output[part], out=grad[part])

        parallel.for_blocks(silu_grad_block, s.shape[axis], s.size)
        return grad


class ReLU(Module):
    """``max(x, 0)``; the gradient passes where ``x > 0``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0 if is_grad_enabled() else None
        return np.maximum(x, 0)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return np.where(self.saved("_mask"), grad_output, 0)
