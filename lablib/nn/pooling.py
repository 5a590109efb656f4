"""MaxPool2d over strided windows; the gradient goes to the first maximum of each window, as in PyTorch."""

from __future__ import annotations

import numpy as np

from lablib.nn.functional import pad, windows
from lablib.nn.module import Module


class MaxPool2d(Module):
    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding

    def forward(self, x: np.ndarray) -> np.ndarray:
        k = self.kernel_size
        view = windows(pad(x, self.padding, -np.inf), k, self.stride)
        n, c, _, _, oh, ow = view.shape
        flat = view.transpose(0, 1, 4, 5, 2, 3).reshape(n, c, oh, ow, k * k)
        argmax = flat.argmax(axis=-1)
        self._argmax, self._input_shape = argmax, x.shape
        return np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        n, c, h, w = self._input_shape
        k, s, p = self.kernel_size, self.stride, self.padding
        oh, ow = self._argmax.shape[2:]
        rows = np.arange(oh)[:, None] * s + self._argmax // k
        cols = np.arange(ow)[None, :] * s + self._argmax % k
        grad = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=grad_output.dtype)
        index = (np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols)
        if s >= k:  # windows do not overlap: each input pixel receives at most one gradient
            grad[index] = grad_output
        else:
            np.add.at(grad, index, grad_output)
        return grad[:, :, p : p + h, p : p + w] if p else grad

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
