"""im2col and col2im: convolution as matrix products over strided views.

A padded input ``(N, C, H, W)`` seen through ``as_strided`` as ``(N, C, K, K, OH, OW)`` costs
nothing; one copy turns it into the columns ``(N, C*K*K, OH*OW)``. Then ``W @ cols`` is a batched
BLAS product whose result is already ``(N, out, OH, OW)`` in memory order, so the layers after a
convolution read contiguous arrays. ``col2im`` folds columns back with K*K strided slice additions,
never a loop over the batch or the pixels.
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
    """A read-only view ``(N, C, K, K, OH, OW)``: element ``[n, c, i, j, y, x]`` is the input pixel
    under kernel tap ``(i, j)`` of output pixel ``(y, x)``. No copy."""
    n, c, h, w = x_padded.shape
    oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    sn, sc, sh, sw = x_padded.strides
    return as_strided(
        x_padded,
        shape=(n, c, kernel, kernel, oh, ow),
        strides=(sn, sc, sh, sw, sh * stride, sw * stride),
        writeable=False,
    )


def im2col(x: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
    """Columns ``(N, C*K*K, OH*OW)``: column ``p`` of image ``n`` is the window under output pixel ``p``."""
    view = windows(pad(x, padding), kernel, stride)
    n, c, k, _, oh, ow = view.shape
    return view.reshape(n, c * k * k, oh * ow)


def col2im(
    cols: np.ndarray, input_shape: tuple[int, int, int, int], kernel: int, stride: int, padding: int
) -> np.ndarray:
    """The adjoint of :func:`im2col`: add every column entry back onto the pixel it was read from."""
    n, c, h, w = input_shape
    oh, ow = output_size(h, kernel, stride, padding), output_size(w, kernel, stride, padding)
    grid = cols.reshape(n, c, kernel, kernel, oh, ow)
    out = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kernel):
        for j in range(kernel):
            out[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += grid[:, :, i, j]
    return out[:, :, padding : padding + h, padding : padding + w] if padding else out
