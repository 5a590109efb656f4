"""MaxPool2d, one kernel tap at a time; the gradient goes to the first maximum of each window, as in PyTorch."""

from __future__ import annotations

import numpy as np

from lablib.nn.functional import (
    batch_first,
    conv_output_size,
    pad_batch_last,
    square_size,
    unpad_batch_first,
    windows,
)
from lablib.nn.grad_mode import is_grad_enabled
from lablib.nn.module import Module


class MaxPool2d(Module):
    """Max over ``K x K`` windows (floor mode, padding with -inf); ``stride`` defaults to ``kernel_size``.

    With ``x_t`` the ``(C, OH, OW, N)`` view of tap ``t = (i, j)`` of every window (``windows`` in
    ``functional``), taps in order::

        y  = max over t of x_t,   a = the first t with x_t = y
        dx = sum over t of place_t((a = t) * g)

    where ``place_t`` puts a window-shaped array back at tap ``t``'s pixels of the padded input: the whole
    gradient of a window goes to its first maximum, as in PyTorch. Square windows, strides and
    paddings (an int or an equal pair); no dilation or ceil mode.
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
        # The taps as strided views, with no column matrix: a window's K*K values are never copied.
        taps = windows(x_padded, k, s)
        out = taps[:, 0, 0].copy()
        for t in range(1, k * k):
            np.maximum(out, taps[:, t // k, t % k], out=out)
        self._argmax, self._padded_shape = None, x_padded.shape
        if is_grad_enabled():
            # The first maximum is the one with the most taps after it, K*K - t: a running maximum of
            # that count where the tap holds the maximum (masked assignment is ten times slower).
            # K*K where no tap equals the maximum (a NaN window), whose gradient then goes nowhere.
            dtype = np.min_scalar_type(k * k)
            taps_left = np.zeros(out.shape, dtype)
            for t in range(k * k):
                np.maximum(taps_left, np.multiply(taps[:, t // k, t % k] == out, dtype.type(k * k - t)), out=taps_left)
            self._argmax = np.subtract(dtype.type(k * k), taps_left, out=taps_left)
        return batch_first(out.reshape(c, conv_output_size(h, k, s, p), conv_output_size(w, k, s, p), n))

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        argmax = self.saved("_argmax")
        k, s = self.kernel_size, self.stride
        grad = grad_output.transpose(1, 2, 3, 0)
        grad_padded = np.zeros(self._padded_shape, grad.dtype)
        taps = windows(grad_padded, k, s)
        for t in range(k * k):
            tap = taps[:, t // k, t % k]
            if s >= k:  # windows that do not overlap: each pixel is one window's tap at most
                np.multiply(argmax == t, grad, out=tap)
            else:
                tap += (argmax == t) * grad
        return unpad_batch_first(grad_padded, self.padding)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, dilation=1, ceil_mode=False"
        )
