"""im2col and col2im in the batch-last layout: convolution and pooling as matrix products over strided views.

Between layers an image batch is ``(N, C, H, W)``, as in PyTorch. Convolution and pooling work on a
``(C, H, W, N)`` copy, the batch innermost in memory (cuda-convnet's CHWN layout), and hand their
output over as the ``(N, C, H, W)`` transposed view of one. NumPy's elementwise operations allocate
their results in their input's memory order, so BatchNorm and SiLU keep that layout, and:

* the columns ``(C*K*K, OH*OW*N)`` are copied from the padded input in runs of N contiguous values,
  not in rows of a few pixels;
* ``weight (out, C*K*K) @ columns`` is one BLAS product whose result ``(out, OH, OW, N)`` is the
  next layer's input as it stands;
* a gradient in the same layout is already the ``(out, OH*OW*N)`` matrix of the backward products;
* ``col2im`` folds columns back with K*K strided slice additions over whole batch rows, or one
  assignment when the windows do not overlap.

Nothing loops over the batch or the pixels.
"""

from __future__ import annotations

import numpy as np


def square_size(value: int | tuple[int, int], name: str) -> int:
    """``value`` as one int: the layers take an int or an equal pair (square kernels, strides, paddings)."""
    if isinstance(value, tuple):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f"only square {name} is supported, got {value}")
        return value[0]
    return value


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """PyTorch's output size (floor mode) along one spatial axis."""
    return (size + 2 * padding - kernel) // stride + 1


def pad_batch_last(x: np.ndarray, padding: int, value: float = 0.0) -> np.ndarray:
    """``(N, C, H, W)`` to a contiguous ``(C, H + 2p, W + 2p, N)`` with a border of ``value``.

    One copy; none when ``padding`` is 0 and ``x`` is already the view of a batch-last array.
    """
    x = x.transpose(1, 2, 3, 0)
    if padding == 0:
        return np.ascontiguousarray(x)
    c, h, w, n = x.shape
    p = padding
    out = np.empty((c, h + 2 * p, w + 2 * p, n), dtype=x.dtype)
    out[:, :p] = out[:, -p:] = value
    out[:, :, :p] = out[:, :, -p:] = value
    out[:, p:-p, p:-p] = x
    return out


def unpad_batch_first(x_padded: np.ndarray, padding: int) -> np.ndarray:
    """The inverse of :func:`pad_batch_last`: the ``(N, C, H, W)`` view of the inside of ``x_padded``."""
    _, hp, wp, _ = x_padded.shape
    p = padding
    return x_padded[:, p : hp - p, p : wp - p].transpose(3, 0, 1, 2)


def batch_first(x: np.ndarray) -> np.ndarray:
    """``(C, H, W, N)`` as an ``(N, C, H, W)`` view."""
    return x.transpose(3, 0, 1, 2)


def windows(x_padded: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """The ``(C, K, K, OH, OW, N)`` strided view of a contiguous batch-last ``(C, Hp, Wp, N)`` array.

    Element ``(c, i, j, y, x, n)`` is pixel ``(y * stride + i, x * stride + j)`` of channel ``c`` of
    image ``n``: kernel tap ``(i, j)`` of output pixel ``(y, x)``. It is built as ``as_strided``
    would build it, without its 15 us a call (a thirtieth of a training step at batch 1).
    """
    c, hp, wp, n = x_padded.shape
    oh, ow = (hp - kernel) // stride + 1, (wp - kernel) // stride + 1
    sc, sh, sw, sn = x_padded.strides
    strides = (sc, sh, sw, sh * stride, sw * stride, sn)
    return np.ndarray((c, kernel, kernel, oh, ow, n), x_padded.dtype, x_padded, 0, strides)


def im2col(x_padded: np.ndarray, kernel: int, stride: int, out: np.ndarray | None = None) -> np.ndarray:
    """Columns ``(C*K*K, OH*OW*N)`` of a batch-last padded input ``(C, Hp, Wp, N)``.

    Row ``(c, i, j)`` holds, for every output pixel and image, the input value under kernel tap
    ``(i, j)`` of channel ``c``: the layout of ``weight.reshape(out, C*K*K)``'s columns. They are
    written into ``out`` when it has their shape and dtype.
    """
    taps = windows(np.ascontiguousarray(x_padded), kernel, stride)
    c, _, _, oh, ow, n = taps.shape
    shape = (c * kernel * kernel, oh * ow * n)
    if out is None or out.shape != shape or out.dtype != x_padded.dtype:
        out = np.empty(shape, dtype=x_padded.dtype)
    out.reshape(taps.shape)[...] = taps
    return out


def col2im(cols: np.ndarray, padded_shape: tuple[int, int, int, int], kernel: int, stride: int) -> np.ndarray:
    """The adjoint of :func:`im2col`: every column entry added back onto the padded pixel it was read from.

    Windows that do not overlap (``stride >= kernel``, as in 2x2 pooling) read each pixel at most
    once, so the columns go back in one assignment; overlapping ones take K*K slice additions.
    """
    c, hp, wp, n = padded_shape
    oh, ow = (hp - kernel) // stride + 1, (wp - kernel) // stride + 1
    taps = cols.reshape(c, kernel, kernel, oh, ow, n)
    out = np.zeros(padded_shape, dtype=cols.dtype)
    if stride >= kernel:
        windows(out, kernel, stride)[...] = taps
        return out
    for i in range(kernel):
        for j in range(kernel):
            out[:, i : i + stride * oh : stride, j : j + stride * ow : stride] += taps[:, i, j]
    return out
