"""The reports' algorithms in plain ``(N, C, H, W)`` NumPy: read these first, then the fast layers.

Each class here computes what its namesake in ``lablib.nn`` computes, with the same arguments, the
same ``Parameter`` and buffer names and the same initial draws, so either can stand in for the
other; ``tests/nn/test_reference.py`` shows that they agree with each other and with PyTorch.
Nothing here is fast. Convolution and pooling loop over output positions, as the course reports do.
The reports are two students' hand-ins to Lab 1 of NYCU's deep-learning course, not in this
repository; README.md ("The two reports") names them and says what each section cited here holds.

* report 001 (Kuan-Wei Chen, 2023), II.A, batch 1: convolution by iterating over the receptive-field
  regions and taking the dot product of each with every kernel (:func:`iter_regions`,
  :class:`Conv2d`); max pooling by iterating over 2x2 regions, each passing its gradient to its
  maximum (:class:`MaxPool2d`);
* report 000 (陳柏翔, 2025), Appendix A: :func:`im2col` and :func:`col2im`, loops over output
  positions, and the convolution as one matrix product with the column matrix (:class:`Conv2dIm2col`).

Notation: ``g`` is the gradient of the loss with respect to a layer's output; ``dx``, ``dW`` and
``db`` are those with respect to its input, weight and bias. Each ``backward`` takes the forward
steps in reverse order, the derivative of each step written beside it.

``lablib.nn`` does not import this module: the pipeline never runs it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from lablib import nn as fast
from lablib.nn.functional import conv_output_size, log_softmax
from lablib.nn.module import Module
from lablib.nn.parameter import Parameter


def pad(x: np.ndarray, padding: int, value: float = 0.0) -> np.ndarray:
    """``x`` with ``padding`` rows and columns of ``value`` on each side of its last two axes."""
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=value)


def unpad(x_padded: np.ndarray, padding: int) -> np.ndarray:
    """The inside of ``x_padded``: the inverse of :func:`pad`."""
    _, _, hp, wp = x_padded.shape
    return x_padded[:, :, padding : hp - padding, padding : wp - padding]


def iter_regions(x_padded: np.ndarray, kernel: int, stride: int) -> Iterator[tuple[np.ndarray, int, int]]:
    """Report 001's region generator: every ``kernel x kernel`` receptive field, row by row.

    Yields ``(region, i, j)`` with ``region = x_padded[:, :, i*s : i*s + K, j*s : j*s + K]``, the
    ``(N, C, K, K)`` view of the input that output pixel ``(i, j)`` is computed from.
    """
    _, _, hp, wp = x_padded.shape
    for i in range(conv_output_size(hp, kernel, stride, 0)):
        for j in range(conv_output_size(wp, kernel, stride, 0)):
            yield x_padded[:, :, i * stride : i * stride + kernel, j * stride : j * stride + kernel], i, j


def im2col(x: np.ndarray, k_size: int, stride: int, padding: int) -> tuple[np.ndarray, int, int]:
    """Report 000, Appendix A: the image as a column matrix, one column per output position.

    ``x`` is ``(N, C, H, W)``; the columns are ``(N, C*K*K, OH*OW)``. Column ``i * OW + j`` holds
    the receptive field of output pixel ``(i, j)`` flattened in ``(c, u, v)`` order, the order of a
    kernel in ``weight.reshape(F, C*K*K)``, so the convolution of image ``n`` is ``W @ cols[n]``.
    As the appendix writes it, except that the columns keep the input's dtype.
    """
    batch_size, in_c, in_h, in_w = x.shape
    out_h = conv_output_size(in_h, k_size, stride, padding)
    out_w = conv_output_size(in_w, k_size, stride, padding)
    x_padded = pad(x, padding) if padding > 0 else x
    col_idx = 0
    cols = np.zeros((batch_size, in_c * k_size * k_size, out_h * out_w), dtype=x.dtype)
    for r in range(0, in_h + 2 * padding - k_size + 1, stride):
        for c in range(0, in_w + 2 * padding - k_size + 1, stride):
            patch = x_padded[:, :, r : r + k_size, c : c + k_size]
            cols[:, :, col_idx] = patch.reshape(batch_size, -1)
            col_idx += 1
    return cols, out_h, out_w


def col2im(
    cols: np.ndarray, input_shape: tuple[int, int, int, int], k_size: int, stride: int, padding: int
) -> np.ndarray:
    """Report 000, Appendix A: each column entry added back onto the pixel :func:`im2col` read it from.

    ``cols`` is ``(N, OH*OW, C*K*K)``, the transpose of :func:`im2col`'s layout, as the appendix
    writes it: the input gradient of a convolution arrives as ``gᵀ W`` in that layout. A pixel read
    by several overlapping regions receives the sum of their gradients.
    """
    batch_size, in_c, in_h, in_w = input_shape
    out_h = conv_output_size(in_h, k_size, stride, padding)
    out_w = conv_output_size(in_w, k_size, stride, padding)
    cols_reshaped = cols.reshape(batch_size, out_h, out_w, in_c, k_size, k_size)
    h_padded, w_padded = in_h + 2 * padding, in_w + 2 * padding
    img_padded = np.zeros((batch_size, in_c, h_padded, w_padded), dtype=cols.dtype)
    for y in range(out_h):
        for x in range(out_w):
            h_start, w_start = y * stride, x * stride
            img_padded[:, :, h_start : h_start + k_size, w_start : w_start + k_size] += cols_reshaped[:, y, x]
    return unpad(img_padded, padding)


class Conv2d(fast.Conv2d):
    """Report 001's convolution: the dot product of every receptive field with every kernel.

    With ``R = x_pad[:, :, i*s : i*s + K, j*s : j*s + K]`` the region of output pixel ``(i, j)``::

        y[n, f, i, j] = sum_{c,u,v} R[n, c, u, v] * W[f, c, u, v] + b[f]

    Each region meets the kernels as the input of a ``Linear`` layer with weight
    ``W.reshape(F, C*K*K)``, so backward is that layer's, region by region::

        dW[f] += sum_n g[n, f, i, j] * R[n]      db[f] = sum_{n,i,j} g[n, f, i, j]
        dR[n] += sum_f g[n, f, i, j] * W[f]      (added onto the padded input under the region)

    ``dx`` is the inside of the padded gradient. The constructor, the parameters and their initial draws
    are ``lablib.nn.Conv2d``'s; only forward and backward are written out here.
    """

    def kernels(self) -> np.ndarray:
        """``W.reshape(F, C*K*K)``: one flattened kernel per row."""
        return self.weight.data.reshape(self.out_channels, -1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, _, h, w = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        self._x_padded = pad(x, p)
        y = np.zeros((n, self.out_channels, conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)), x.dtype)
        for region, i, j in iter_regions(self._x_padded, k, s):
            y[:, :, i, j] = region.reshape(n, -1) @ self.kernels().T
        if self.bias is not None:
            y += self.bias.data[:, None, None]
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        n = len(grad_output)
        k, s = self.kernel_size, self.stride
        dw = np.zeros_like(self.kernels())
        dx_padded = np.zeros_like(self._x_padded)
        regions = zip(iter_regions(self._x_padded, k, s), iter_regions(dx_padded, k, s), strict=True)
        for (region, i, j), (d_region, _, _) in regions:
            g = grad_output[:, :, i, j]  # (N, F)
            dw += g.T @ region.reshape(n, -1)
            d_region += (g @ self.kernels()).reshape(region.shape)  # a view: adds onto dx_padded
        self.weight.accumulate_grad(dw.reshape(self.weight.shape))
        if self.bias is not None:
            self.bias.accumulate_grad(grad_output.sum(axis=(0, 2, 3)))
        return unpad(dx_padded, self.padding)


class Conv2dIm2col(Conv2d):
    """Report 000's convolution: one matrix product per image with :func:`im2col`'s columns.

    ``cols`` is ``(N, C*K*K, OH*OW)`` and ``W`` is read as ``(F, C*K*K)``::

        y[n] = W @ cols[n] + b                    (F, OH*OW), reshaped to (F, OH, OW)
        dW = sum_n g[n] @ cols[n]ᵀ                db = sum_{n, pixels} g
        dx = col2im(g[n]ᵀ @ W)                    (OH*OW, C*K*K) per image, Appendix A's layout

    It computes exactly what :class:`Conv2d` computes; only the loops moved into ``im2col``.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x_shape = x.shape
        self._cols, out_h, out_w = im2col(x, self.kernel_size, self.stride, self.padding)
        y = self.kernels() @ self._cols
        if self.bias is not None:
            y += self.bias.data[:, None]
        return y.reshape(len(x), self.out_channels, out_h, out_w)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        g = grad_output.reshape(len(grad_output), self.out_channels, -1)  # (N, F, OH*OW)
        self.weight.accumulate_grad((g @ self._cols.transpose(0, 2, 1)).sum(axis=0).reshape(self.weight.shape))
        if self.bias is not None:
            self.bias.accumulate_grad(g.sum(axis=(0, 2)))
        d_cols = g.transpose(0, 2, 1) @ self.kernels()
        return col2im(d_cols, self._x_shape, self.kernel_size, self.stride, self.padding)


class MaxPool2d(fast.MaxPool2d):
    """Report 001's max pooling: the largest value of every ``K x K`` region (padding with -inf).

    ``y[n, c, i, j] = max_{u,v} R[n, c, u, v]``. The maximum is one of the inputs, with derivative 1;
    the others do not reach the output. So each region passes its gradient to its maximum::

        dR[n, c, u*, v*] += g[n, c, i, j]       (u*, v*) = the first maximum in row-major order

    Report 001 marks every value equal to the maximum; with ties that passes the gradient more than
    once. The first maximum is PyTorch's choice. The constructor is ``lablib.nn.MaxPool2d``'s.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        self._x_padded = pad(x, p, -np.inf)
        y = np.zeros((n, c, conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)), x.dtype)
        for region, i, j in iter_regions(self._x_padded, k, s):
            y[:, :, i, j] = region.max(axis=(2, 3))
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        n, c = grad_output.shape[:2]
        k, s = self.kernel_size, self.stride
        dx_padded = np.zeros_like(self._x_padded)
        regions = zip(iter_regions(self._x_padded, k, s), iter_regions(dx_padded, k, s), strict=True)
        for (region, i, j), (d_region, _, _) in regions:
            first_max = region.reshape(n, c, k * k).argmax(axis=2)  # argmax returns the first maximum
            at_max = np.arange(k * k) == first_max[:, :, None]
            d_region += at_max.reshape(region.shape) * grad_output[:, :, i, j, None, None]
        return unpad(dx_padded, self.padding)


class Linear(fast.Linear):
    """``y = x Wᵀ + b``; ``dx = g W``, ``dW = gᵀ x``, ``db = sum_n g``. The constructor is ``lablib.nn.Linear``'s."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        y = x @ self.weight.data.T
        if self.bias is not None:
            y = y + self.bias.data
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        self.weight.accumulate_grad(grad_output.T @ self._x)
        if self.bias is not None:
            self.bias.accumulate_grad(grad_output.sum(axis=0))
        return grad_output @ self.weight.data


class _BatchNorm(Module):
    """Normalise each channel, then scale and shift it: PyTorch's BatchNorm with its default options.

    Training normalises with the batch's mean and biased variance over every axis but the channel
    axis 1 (``m`` values a channel) and moves the running statistics towards them, the variance
    unbiased: ``running = (1 - momentum) * running + momentum * batch``. Evaluation normalises with
    the running statistics, which are then constants: the gradient stops at ``x - mean``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, *, dtype: type = np.float32):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype))
        self.bias = Parameter(np.zeros(num_features, dtype))
        self.register_buffer("running_mean", np.zeros(num_features, dtype))
        self.register_buffer("running_var", np.ones(num_features, dtype))
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def forward(self, x: np.ndarray) -> np.ndarray:
        axes = (0, *range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)  # a per-channel vector, broadcast against x
        if self.training:
            m = x.size // self.num_features
            mean = x.mean(axis=axes, keepdims=True)
            centered = x - mean
            var = np.square(centered).mean(axis=axes, keepdims=True)
            self.num_batches_tracked += 1
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean.reshape(-1)
            self.running_var = (1 - self.momentum) * self.running_var + self.momentum * var.reshape(-1) * m / (m - 1)
        else:
            centered = x - self.running_mean.reshape(shape)
            var = self.running_var.reshape(shape)
        inv_std = 1 / np.sqrt(var + self.eps)
        x_hat = centered * inv_std
        self._centered, self._var, self._inv_std, self._x_hat = centered, var, inv_std, x_hat
        return self.weight.data.reshape(shape) * x_hat + self.bias.data.reshape(shape)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        g, centered, inv_std, x_hat = grad_output, self._centered, self._inv_std, self._x_hat
        axes = (0, *range(2, g.ndim))
        shape = (1, -1) + (1,) * (g.ndim - 2)
        m = g.size // self.num_features
        # y = weight * x_hat + bias
        self.weight.accumulate_grad((g * x_hat).sum(axis=axes))
        self.bias.accumulate_grad(g.sum(axis=axes))
        d_x_hat = g * self.weight.data.reshape(shape)
        if not self.training:
            return d_x_hat * inv_std  # x_hat = (x - running_mean) * inv_std, both constants
        # x_hat = centered * inv_std
        d_inv_std = (d_x_hat * centered).sum(axis=axes, keepdims=True)
        d_centered = d_x_hat * inv_std
        # inv_std = (var + eps) ** -1/2
        d_var = d_inv_std * -0.5 * inv_std**3
        # var = mean(centered²)
        d_centered = d_centered + d_var * 2 * centered / m
        # centered = x - mean, mean = sum(x) / m
        d_mean = -d_centered.sum(axis=axes, keepdims=True)
        return d_centered + d_mean / m


class BatchNorm1d(_BatchNorm):
    """Over ``(N, C)`` or ``(N, C, L)``: each feature normalised across the batch (and the length)."""


class BatchNorm2d(_BatchNorm):
    """Over ``(N, C, H, W)``: each channel normalised across the batch and the pixels."""


class SiLU(Module):
    """``y = x * s`` with ``s = sigmoid(x)`` (report 000, 3.2); ``dy/dx = s + x * s * (1 - s)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        self._s = 0.5 * (1 + np.tanh(0.5 * x))  # 1 / (1 + exp(-x)), without overflow for large -x
        return x * self._s

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        s = self._s
        return grad_output * (s + self._x * s * (1 - s))


class ReLU(Module):
    """``y = max(x, 0)``; ``dy/dx`` is 1 where ``x > 0`` and 0 elsewhere."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return np.maximum(x, 0)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return grad_output * (self._x > 0)


# A reshape has nothing to make fast: the core's Flatten is already the plain one.
Flatten = fast.Flatten


class CrossEntropyLoss(Module):
    """Softmax and cross-entropy, averaged over the batch (report 000, 3.3).

    With ``p = softmax(z)`` and the target distribution ``q`` (one-hot, or ``(1 - ε) onehot + ε / C``
    with label smoothing ``ε``), the loss of a row is ``-sum_j q_j log p_j``. Report 000 derives
    its gradient through the softmax: ``dL/dz_j = p_j - q_j``, divided by ``N`` for the mean.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: np.ndarray, target: np.ndarray) -> float:
        n, c = logits.shape
        log_p = log_softmax(logits)
        q = np.full((n, c), self.label_smoothing / c, dtype=logits.dtype)
        q[np.arange(n), target] += 1 - self.label_smoothing
        self._p, self._q = np.exp(log_p), q
        return float(-(q * log_p).sum() / n)

    def __call__(self, logits: np.ndarray, target: np.ndarray) -> float:  # type: ignore[override]
        return self.forward(logits, target)

    def backward(self, grad_output: float = 1.0) -> np.ndarray:
        return (self._p - self._q) * (grad_output / len(self._p))


class CenterLoss(fast.CenterLoss):
    """``0.5 * mean_i ||x_i - c_{y_i}||²`` (report 000, 3.3); ``dL/dx_i = (x_i - c_{y_i}) / N``.

    The constructor and the centres (a buffer) are ``lablib.nn.CenterLoss``'s; :meth:`update_centers`
    moves each towards its class's features (Wen et al., eq. 4).
    """

    def forward(self, features: np.ndarray, target: np.ndarray) -> float:
        self._diff, self._target = features - self.centers[target], target
        return float(0.5 * np.square(self._diff).sum() / len(features))

    def __call__(self, features: np.ndarray, target: np.ndarray) -> float:  # type: ignore[override]
        return self.forward(features, target)

    def backward(self, grad_output: float = 1.0) -> np.ndarray:
        return self._diff * (grad_output / len(self._diff))

    def update_centers(self) -> None:
        """``c_j ← c_j - α sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)`` for each class ``j``, ``x`` the last batch."""
        for j in range(self.num_classes):
            diffs = self._diff[self._target == j]  # x_i - c_j
            self.centers[j] += self.alpha * diffs.sum(axis=0) / (1 + len(diffs))
