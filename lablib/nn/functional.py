"""im2col and col2im: convolution and pooling as one matrix product over strided views.

A padded input ``(N, C, H, W)`` seen through ``as_strided`` as ``(N, OH, OW, C, K, K)`` costs
nothing; one copy turns it into the column matrix ``(N*OH*OW, C*K*K)``, and the convolution is a
single BLAS matrix product. ``col2im`` folds columns back with K*K strided slice additions, never a
loop over the batch or the pixels.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def pad(x: np.ndarray, padding: int, value: float = 0.0) -> np.ndarray:
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=value)


def windows(x_padded: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """A read-only view ``(N, OH, OW, C, K, K)`` of every K x K window, no copy."""
    n, c, h, w = x_padded.shape
    oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    sn, sc, sh, sw = x_padded.strides
    return as_strided(
        x_padded,
        shape=(n, oh, ow, c, kernel, kernel),
        strides=(sn, sh * stride, sw * stride, sc, sh, sw),
        writeable=False,
    )


def im2col(x: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
    """Columns ``(N*OH*OW, C*K*K)``: row ``(n, oh, ow)`` holds the window under that output pixel."""
    view = windows(pad(x, padding), kernel, stride)
    n, oh, ow, c, k, _ = view.shape
    return view.reshape(n * oh * ow, c * k * k)


def col2im(
    cols: np.ndarray, input_shape: tuple[int, int, int, int], kernel: int, stride: int, padding: int
) -> np.ndarray:
    """The adjoint of :func:`im2col`: sum every column entry back onto the pixel it was read from."""
    n, c, h, w = input_shape
    oh, ow = output_size(h, kernel, stride, padding), output_size(w, kernel, stride, padding)
    grid = cols.reshape(n, oh, ow, c, kernel, kernel).transpose(0, 3, 4, 5, 1, 2)
    out = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kernel):
        for j in range(kernel):
            out[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += grid[:, :, i, j]
    return out[:, :, padding : padding + h, padding : padding + w] if padding else out
