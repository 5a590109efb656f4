"""BatchNorm1d and BatchNorm2d: batch statistics in training, running statistics in evaluation.

As PyTorch: the batch is normalised with its biased variance, the running variance is updated with
the unbiased one, ``running = (1 - momentum) * running + momentum * batch``.
"""

from __future__ import annotations

import numpy as np

from lablib.nn.module import Module
from lablib.nn.parameter import Parameter


def channel_mean(x: np.ndarray) -> np.ndarray:
    """Mean over every axis but the channel axis 1, to nearly float64 accuracy at float32 speed.

    Each image's channel is summed along its contiguous pixels (NumPy sums those pairwise), and the
    per-image sums add up in float64. A plain float32 mean over the batch loses digits that the
    normalisation then amplifies; PyTorch's CPU kernels accumulate in double for the same reason.
    """
    n, c = x.shape[:2]
    per_image = x.reshape(n, c, -1).sum(axis=2)
    return (per_image.sum(axis=0, dtype=np.float64) / (x.size // c)).astype(x.dtype)


class _BatchNorm(Module):
    _expected_ndim: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def _channel_shape(self, x: np.ndarray) -> tuple[int, ...]:
        """The shape that broadcasts a per-channel vector against ``x``."""
        if x.ndim not in self._expected_ndim:
            raise ValueError(f"{type(self).__name__} expects {self._expected_ndim}-D input, got shape {x.shape}")
        return (1, -1) if x.ndim == 2 else (1, -1, 1, 1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        shape = self._channel_shape(x)
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            count = x.size // x.shape[1]
            if count < 2 and self.training:
                raise ValueError(f"Expected more than 1 value per channel when training, got input of shape {x.shape}")
            mean = channel_mean(x)
            centered = x - mean.reshape(shape)
            var = channel_mean(np.square(centered))
            if self.training and self.track_running_stats:
                m = self.momentum
                self.running_mean *= 1 - m
                self.running_mean += m * mean
                self.running_var *= 1 - m
                self.running_var += (m * count / (count - 1)) * var
                self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
            centered = x - mean.reshape(shape)
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
        x_hat = centered * inv_std.reshape(shape)
        self._x_hat, self._inv_std, self._batch_stats = x_hat, inv_std, use_batch
        if not self.affine:
            return x_hat
        return x_hat * self.weight.data.reshape(shape) + self.bias.data.reshape(shape)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        shape = self._channel_shape(grad_output)
        x_hat = self._x_hat
        count = grad_output.size // grad_output.shape[1]
        if self.affine:
            self.weight.accumulate_grad(channel_mean(grad_output * x_hat) * count)
            self.bias.accumulate_grad(channel_mean(grad_output) * count)
            grad_x_hat = grad_output * self.weight.data.reshape(shape)
        else:
            grad_x_hat = grad_output
        inv_std = self._inv_std.reshape(shape)
        if not self._batch_stats:
            return grad_x_hat * inv_std
        mean_grad = channel_mean(grad_x_hat).reshape(shape)
        mean_grad_x_hat = channel_mean(grad_x_hat * x_hat).reshape(shape)
        return (grad_x_hat - mean_grad - x_hat * mean_grad_x_hat) * inv_std

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Over ``(N, C)``: each feature normalised across the batch."""

    _expected_ndim = (2,)


class BatchNorm2d(_BatchNorm):
    """Over ``(N, C, H, W)``: each channel normalised across the batch and the pixels."""

    _expected_ndim = (4,)
