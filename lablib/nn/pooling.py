"""MaxPool2d over the im2col columns; the gradient goes to the first maximum of each window, as in PyTorch."""

from __future__ import annotations

import numpy as np

from lablib.nn.functional import (
    batch_first,
    col2im,
    conv_output_size,
    im2col,
    pad_batch_last,
    square_size,
    unpad_batch_first,
)
from lablib.nn.grad_mode import is_grad_enabled
from lablib.nn.module import Module


class MaxPool2d(Module):
    """Max over ``K x K`` windows (floor mode, padding with -inf); ``stride`` defaults to ``kernel_size``.

    With ``cols = im2col(pad(x))`` (``functional``), one column of ``K*K`` taps per window::

        y  = max over the taps of cols,   t = the first tap holding that maximum
        dx = unpad(col2im(onehot(t) * g))

    the whole gradient of a window goes to its first maximum, as in PyTorch. Square windows,
    strides and paddings (an int or an equal pair); no dilation or ceil mode.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.kernel_size = square_size(kernel_size, "kernel_size")
        self.stride = square_size(stride, "stride") if stride is not None else self.kernel_size
        self.padding = square_size(padding, "padding")
        if 2 * self.padding > self.kernel_size:
            raise ValueError(f"padding should be at most half the kernel size, got {padding} for {kernel_size}")

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        x_padded = pad_batch_last(x, p, -np.inf)
        windows = im2col(x_padded, k, s).reshape(c, k * k, -1)
        out = windows.max(axis=1)
        self._argmax, self._padded_shape = None, x_padded.shape
        if is_grad_enabled():
            # The first maximum is the one with the most taps after it, k*k - tap: a max over the taps,
            # where np.argmax along the middle axis would copy the windows.
            taps_left = np.arange(k * k, 0, -1, dtype=np.min_scalar_type(k * k))[:, None]
            self._argmax = k * k - ((windows == out[:, None]) * taps_left).max(axis=1)
        return batch_first(out.reshape(c, conv_output_size(h, k, s, p), conv_output_size(w, k, s, p), n))

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        argmax = self.saved("_argmax")
        c, kk = argmax.shape[0], self.kernel_size**2
        grad = grad_output.transpose(1, 2, 3, 0).reshape(c, 1, -1)
        grad_cols = (argmax[:, None] == np.arange(kk)[:, None]) * grad
        grad_padded = col2im(grad_cols.reshape(c * kk, -1), self._padded_shape, self.kernel_size, self.stride)
        return unpad_batch_first(grad_padded, self.padding)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, dilation=1, ceil_mode=False"
        )
