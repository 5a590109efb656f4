"""A layer in the NumPy core's contract (lablib.nn.Module): forward keeps what backward needs, backward
returns the gradient with respect to its input (and accumulates each Parameter's, had it any)."""

import numpy as np

from lablib.nn import Module


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.positive = x > 0
        return np.where(self.positive, x, x * np.asarray(self.negative_slope, x.dtype))

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return np.where(self.positive, grad_output, grad_output * np.asarray(self.negative_slope, grad_output.dtype))
