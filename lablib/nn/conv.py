"""Conv2d by im2col: one matrix product forward, two backward, and col2im for the input gradient."""

from __future__ import annotations

import numpy as np

from lablib.nn.functional import col2im, im2col, output_size
from lablib.nn.init import bias_uniform, calculate_fan_in_and_fan_out, kaiming_uniform
from lablib.nn.module import Module
from lablib.nn.parameter import Parameter

# Up to this many weights, the weight gradient is summed from per-image products (N small GEMMs
# and an (N, out, C*K*K) intermediate); beyond it one large GEMM over the whole batch is faster.
WEIGHT_GRAD_BATCHED_MAX = 32768


def _square(value: int | tuple[int, int], name: str) -> int:
    if isinstance(value, tuple):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f"Conv2d supports square {name} only, got {value}")
        return value[0]
    return value


class Conv2d(Module):
    """2-D cross-correlation over ``(N, C, H, W)``, weight ``(out, in, K, K)`` as in PyTorch.

    Square kernels, strides and paddings (an int or an equal pair); no dilation or groups.
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
        self.kernel_size = _square(kernel_size, "kernel_size")
        self.stride = _square(stride, "stride")
        self.padding = _square(padding, "padding")
        shape = (out_channels, in_channels, self.kernel_size, self.kernel_size)
        self.weight = Parameter(kaiming_uniform(shape, rng, dtype=dtype))
        fan_in, _ = calculate_fan_in_and_fan_out(shape)
        self.bias = Parameter(bias_uniform(out_channels, fan_in, rng, dtype)) if bias else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, _, h, w = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        oh, ow = output_size(h, k, s, p), output_size(w, k, s, p)
        cols = im2col(x, k, s, p)
        out = self.weight.data.reshape(self.out_channels, -1) @ cols
        if self.bias is not None:
            out += self.bias.data[:, None]
        self._cols, self._input_shape = cols, x.shape
        return out.reshape(n, self.out_channels, oh, ow)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        n = grad_output.shape[0]
        grad = grad_output.reshape(n, self.out_channels, -1)
        weight = self.weight.data.reshape(self.out_channels, -1)
        if weight.size <= WEIGHT_GRAD_BATCHED_MAX:
            grad_weight = np.matmul(grad, self._cols.transpose(0, 2, 1)).sum(axis=0)
        else:
            grad_weight = np.tensordot(grad, self._cols, axes=([0, 2], [0, 2]))
        self.weight.accumulate_grad(grad_weight.reshape(self.weight.shape))
        if self.bias is not None:
            self.bias.accumulate_grad(grad.sum(axis=(0, 2)))
        grad_cols = weight.T @ grad
        return col2im(grad_cols, self._input_shape, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size=({self.kernel_size}, {self.kernel_size}), "
            f"stride=({self.stride}, {self.stride}), padding=({self.padding}, {self.padding}), "
            f"bias={self.bias is not None}"
        )
