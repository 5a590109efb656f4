"""The functions the layers share: strided windows, im2col and col2im (convolution as matrix products
over them), and the softmax's terms.

For a padded input ``x`` and a ``K x K`` kernel at stride ``s``, ``im2col`` lays out one column per
output pixel and image, holding the ``C*K*K`` input values under the kernel there::

    cols[(c, i, j), (y, x, n)] = x[n, c, y*s + i, x*s + j]

so a convolution is one matrix product ``W·cols``, and ``col2im``, its adjoint, adds every column
entry back onto the pixel it was read from (the input gradient of a convolution is
``col2im(Wᵀ·g)``). Report 000's Appendix A writes both as loops over output positions.

Between layers an image batch is ``(N, C, H, W)``, as in PyTorch. Convolution and pooling work on a
``(C, H, W, N)`` copy, the batch innermost in memory (cuda-convnet's CHWN layout), and hand their
output over as the ``(N, C, H, W)`` transposed view of one. NumPy's elementwise operations allocate
their results in their input's memory order, so BatchNorm and SiLU keep that layout. Nothing loops
over the batch or the pixels.
"""

from __future__ import annotations

import numpy as np

from lablib.nn import parallel


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
    if padding == 0 and x.flags.c_contiguous:
        return x
    c, h, w, n = x.shape
    p = padding
    out = np.empty((c, h + 2 * p, w + 2 * p, n), dtype=x.dtype)
    if p:
        out[:, :p] = out[:, -p:] = value
        out[:, :, :p] = out[:, :, -p:] = value
    parallel.copyto(out[:, p : h + p, p : w + p], x)
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
    image ``n``: kernel tap ``(i, j)`` of output pixel ``(y, x)``.
    """
    c, hp, wp, n = x_padded.shape
    oh, ow = (hp - kernel) // stride + 1, (wp - kernel) // stride + 1
    sc, sh, sw, sn = x_padded.strides
    strides = (sc, sh, sw, sh * stride, sw * stride, sn)
    # np.ndarray directly: as_strided's Python overhead is a noticeable part of a step at batch 1.
    return np.ndarray((c, kernel, kernel, oh, ow, n), x_padded.dtype, x_padded, 0, strides)


def im2col(x_padded: np.ndarray, kernel: int, stride: int, out: np.ndarray | None = None) -> np.ndarray:
    """Columns ``cols[(c, i, j), (y, x, n)] = x_padded[c, y*s + i, x*s + j, n]``, shape ``(C*K*K, OH*OW*N)``.

    Row ``(c, i, j)`` is kernel tap ``(i, j)`` of channel ``c``: the layout of
    ``weight.reshape(out, C*K*K)``'s columns. They are written into ``out`` when it fits.
    """
    taps = windows(np.ascontiguousarray(x_padded), kernel, stride)
    c, _, _, oh, ow, n = taps.shape
    out = reuse(out, (c * kernel * kernel, oh * ow * n), x_padded.dtype)
    # The batch innermost: each copied run is N contiguous values, not a row of a few pixels.
    parallel.copyto(out.reshape(taps.shape), taps)
    return out


def col2im(cols: np.ndarray, padded_shape: tuple[int, int, int, int], kernel: int, stride: int) -> np.ndarray:
    """The adjoint of :func:`im2col`: ``x[c, y*s + i, x*s + j, n] += cols[(c, i, j), (y, x, n)]``.

    Returns a new ``padded_shape`` array, zero where no window reads.
    """
    c, hp, wp, n = padded_shape
    oh, ow = (hp - kernel) // stride + 1, (wp - kernel) // stride + 1
    taps = cols.reshape(c, kernel, kernel, oh, ow, n)
    out = np.empty(padded_shape, dtype=cols.dtype)

    def fold(channels: slice) -> None:
        # A block of channels stays in cache through its K*K additions.
        part, part_taps = out[channels], taps[channels]
        part.fill(0)
        if stride >= kernel:  # windows that do not overlap: one assignment
            windows(part, kernel, stride)[...] = part_taps
            return
        for i in range(kernel):
            for j in range(kernel):  # whole batch rows at a time
                part[:, i : i + stride * oh : stride, j : j + stride * ow : stride] += part_taps[:, i, j]

    parallel.for_blocks(fold, c, out.size)
    return out


def reuse(buffer: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``buffer`` if it has this shape and dtype, else a new empty array."""
    # Layers keep their large work arrays: a fresh one above glibc's mmap threshold is faulted in page by page.
    if buffer is not None and buffer.shape == shape and buffer.dtype == dtype:
        return buffer
    return np.empty(shape, dtype)


def softmax_terms(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``z = logits - max``, ``exp(z)`` and its row sums: ``softmax = exp(z) / sums`` and
    ``log_softmax = z - log(sums)``.

    Subtracting each row's maximum changes neither and keeps ``exp`` from overflowing, however large a
    logit. Rows are the first axis: logits are ``(N, C)``.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return shifted, exp, exp.sum(axis=1)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``log softmax(logits)`` row by row: ``z - log(sum_j exp(z_j))`` with ``z`` the shifted logits."""
    shifted, _, sums = softmax_terms(logits)
    return shifted - np.log(sums)[:, None]
