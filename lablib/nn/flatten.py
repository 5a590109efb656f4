"""Flatten: merge dimensions ``start_dim..end_dim`` into one."""

from __future__ import annotations

import numpy as np

from lablib.nn.module import Module


class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        start = self.start_dim % x.ndim
        end = self.end_dim % x.ndim
        return x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return grad_output.reshape(self._shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
