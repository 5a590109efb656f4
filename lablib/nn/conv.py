"""Conv2d by im2col: one matrix product forward, two backward, and col2im for the input gradient."""

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
from lablib.nn.init import bias_uniform, calculate_fan_in_and_fan_out, kaiming_uniform
from lablib.nn.module import Module
from lablib.nn.parameter import Parameter


class Conv2d(Module):
    """2-D cross-correlation over ``(N, C, H, W)``, weight ``(out, in, K, K)`` as in PyTorch.

    Square kernels, strides and paddings (an int or an equal pair), zero padding; no dilation or
    groups. The output is the ``(N, out, OH, OW)`` view of a batch-last array (see ``functional``).

    The columns live in one buffer from step to step, and backward writes their gradient over them:
    freed arrays above glibc's mmap threshold (32 MiB) go back to the OS, and a new one is faulted in
    page by page at every step. So, as with PyTorch's graph, each forward allows one backward.
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
        self._buffer: np.ndarray | None = None
        self._cols: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(f"Conv2d expects {self.in_channels} input channels, got input of shape {x.shape}")
        k, s, p = self.kernel_size, self.stride, self.padding
        x_padded = pad_batch_last(x, p)
        self._cols = self._buffer = im2col(x_padded, k, s, out=self._buffer)
        self._padded_shape = x_padded.shape
        out = self.weight.data.reshape(self.out_channels, -1) @ self._cols
        if self.bias is not None:
            out += self.bias.data[:, None]
        return batch_first(
            out.reshape(self.out_channels, conv_output_size(h, k, s, p), conv_output_size(w, k, s, p), n)
        )

    def backward(self, grad_output: np.ndarray) -> np.ndarray | None:
        if self._cols is None:
            raise RuntimeError("Conv2d.backward needs a forward before it, and one forward allows one backward")
        grad = grad_output.transpose(1, 2, 3, 0).reshape(self.out_channels, -1)
        self.weight.accumulate_grad((grad @ self._cols.T).reshape(self.weight.shape))
        if self.bias is not None:
            self.bias.accumulate_grad(grad.sum(axis=1))
        cols, self._cols = self._cols, None
        if not self.needs_input_grad:
            return None
        grad_cols = np.matmul(self.weight.data.reshape(self.out_channels, -1).T, grad, out=cols)
        grad_padded = col2im(grad_cols, self._padded_shape, self.kernel_size, self.stride)
        return unpad_batch_first(grad_padded, self.padding)

    def extra_repr(self) -> str:
        k, s, p = self.kernel_size, self.stride, self.padding
        text = f"{self.in_channels}, {self.out_channels}, kernel_size=({k}, {k}), stride=({s}, {s})"
        if p:
            text += f", padding=({p}, {p})"
        if self.bias is None:
            text += ", bias=False"
        return text
