"""Dropout: inverted, so evaluation is the identity."""

from __future__ import annotations

import numpy as np

from lablib.nn.grad_mode import is_grad_enabled
from lablib.nn.module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` in training and scale the rest by ``1 / (1 - p)``."""

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = rng if rng is not None else np.random.default_rng()

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._identity = not self.training or self.p == 0
        if self._identity:
            self._mask = None
            return x
        mask = (self.rng.random(x.shape, dtype=x.dtype) >= self.p) / x.dtype.type(1 - self.p)
        self._mask = mask if is_grad_enabled() else None
        return x * mask

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return grad_output if getattr(self, "_identity", False) else grad_output * self.saved("_mask")

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace=False"
