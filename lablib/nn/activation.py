"""Activations: SiLU (report 000, 3.2) and ReLU."""

from __future__ import annotations

import numpy as np

from lablib.nn.module import Module


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` written as ``(1 + tanh(x / 2)) / 2``: no overflow for any x."""
    return 0.5 * (1 + np.tanh(0.5 * x))


class SiLU(Module):
    """``x * sigmoid(x)``; its derivative is ``s * (1 + x * (1 - s))``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        s = sigmoid(x)
        self._x, self._s = x, s
        return x * s

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        s = self._s
        return grad_output * s * (1 + self._x * (1 - s))


class ReLU(Module):
    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return np.where(self._mask, x, 0).astype(x.dtype, copy=False)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return np.where(self._mask, grad_output, 0).astype(grad_output.dtype, copy=False)
