"""Conv2d by im2col: one matrix product forward, two backward, and col2im for the input gradient."""

from __future__ import annotations

import numpy as np

from lablib.nn import parallel
from lablib.nn.functional import (
    batch_first,
    col2im,
    conv_output_size,
    im2col,
    pad_batch_last,
    reuse,
    square_size,
    unpad_batch_first,
)
from lablib.nn.grad_mode import is_grad_enabled
from lablib.nn.init import bias_uniform, calculate_fan_in_and_fan_out, kaiming_uniform
from lablib.nn.module import Module
from lablib.nn.parameter import Parameter


class Conv2d(Module):
    """2-D cross-correlation over ``(N, C, H, W)``, weight ``(out, in, K, K)`` as in PyTorch.

    With ``cols = im2col(pad(x))`` (``functional``) and ``W`` the weight as an ``(out, C*K*K)`` matrix::

        y  = W·cols + b
        dW = g·colsᵀ,   db = Σ g,   dx = unpad(col2im(Wᵀ·g))

    where ``g``, the output gradient, is an ``(out, OH*OW*N)`` matrix. Square kernels, strides and
    paddings (an int or an equal pair), zero padding; no dilation or groups. The output is the
    ``(N, out, OH, OW)`` view of a batch-last array. Backward may run more than once after a forward.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        *,
        dtype: type = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = square_size(kernel_size, "kernel_size")
        self.stride = square_size(stride, "stride")
        self.padding = square_size(padding, "padding")
        shape = (out_channels, in_channels, self.kernel_size, self.kernel_size)
        self.weight = Parameter(kaiming_uniform(shape, rng, dtype=dtype))
        fan_in, _ = calculate_fan_in_and_fan_out(shape)
        self.bias = Parameter(bias_uniform(out_channels, fan_in, rng, dtype)) if bias else None
        self._cols: np.ndarray | None = None
        self._grad_cols: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(f"Conv2d expects {self.in_channels} input channels, got input of shape {x.shape}")
        k, s, p = self.kernel_size, self.stride, self.padding
        x_padded = pad_batch_last(x, p)
        self._padded_shape = x_padded.shape
        if is_grad_enabled():
            # The columns are the largest array of a step: their buffer is kept from step to step.
            cols = self._cols = im2col(x_padded, k, s, out=self._cols)
        else:
            cols, self._cols = im2col(x_padded, k, s), None
        del x_padded  # freed before the product allocates its output: a lower peak
        # (out, OH*OW*N): batch-last, the next layer's input as it stands.
        out = self.weight.data.reshape(self.out_channels, -1) @ cols
        if self.bias is not None:
            bias = self.bias.data[:, None]
            parallel.for_blocks(lambda rows: np.add(out[rows], bias[rows], out=out[rows]), len(out), out.size)
        return batch_first(
            out.reshape(self.out_channels, conv_output_size(h, k, s, p), conv_output_size(w, k, s, p), n)
        )

    def backward(self, grad_output: np.ndarray) -> np.ndarray | None:
        cols = self.saved("_cols")
        # A batch-last gradient is already the (out, OH*OW*N) matrix: no copy.
        grad = grad_output.transpose(1, 2, 3, 0).reshape(self.out_channels, -1)
        self.weight.accumulate_grad((grad @ cols.T).reshape(self.weight.shape))
        if self.bias is not None:
            grad_bias = np.empty(self.out_channels, grad.dtype)
            parallel.for_blocks(lambda rows: grad[rows].sum(axis=1, out=grad_bias[rows]), len(grad), grad.size)
            self.bias.accumulate_grad(grad_bias)
        if not self.needs_input_grad:
            return None
        weight = self.weight.data.reshape(self.out_channels, -1)
        # A second buffer, kept as the columns are, so that the columns survive for another backward.
        self._grad_cols = reuse(self._grad_cols, cols.shape, cols.dtype)
        np.matmul(weight.T, grad, out=self._grad_cols)
        grad_padded = col2im(self._grad_cols, self._padded_shape, self.kernel_size, self.stride)
        return unpad_batch_first(grad_padded, self.padding)

    def extra_repr(self) -> str:
        k, s, p = self.kernel_size, self.stride, self.padding
        text = f"{self.in_channels}, {self.out_channels}, kernel_size=({k}, {k}), stride=({s}, {s})"
        if p:
            text += f", padding=({p}, {p})"
        if self.bias is None:
            text += ", bias=False"
        return text
