"""BatchNorm1d and BatchNorm2d: batch statistics in training, running statistics in evaluation.

As PyTorch: the batch is normalised with its biased variance, the running variance is updated with
the unbiased one, ``running = (1 - momentum) * running + momentum * batch``.
"""

from __future__ import annotations

import numpy as np

from lablib.nn.module import Module
from lablib.nn.parameter import Parameter


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

    def _axes_and_shape(self, x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if x.ndim not in self._expected_ndim:
            raise ValueError(f"{type(self).__name__} expects {self._expected_ndim}-D input, got shape {x.shape}")
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        shape = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)
        return axes, shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        axes, shape = self._axes_and_shape(x)
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            count = x.size // x.shape[1]
            if count < 2 and self.training:
                raise ValueError(f"Expected more than 1 value per channel when training, got input of shape {x.shape}")
            mean = x.mean(axis=axes)
            centered = x - mean.reshape(shape)
            var = np.mean(np.square(centered), axis=axes)
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
        axes, shape = self._axes_and_shape(grad_output)
        x_hat = self._x_hat
        if self.affine:
            self.weight.accumulate_grad(np.sum(grad_output * x_hat, axis=axes))
            self.bias.accumulate_grad(grad_output.sum(axis=axes))
            grad_x_hat = grad_output * self.weight.data.reshape(shape)
        else:
            grad_x_hat = grad_output
        inv_std = self._inv_std.reshape(shape)
        if not self._batch_stats:
            return grad_x_hat * inv_std
        mean_grad = grad_x_hat.mean(axis=axes).reshape(shape)
        mean_grad_x_hat = np.mean(grad_x_hat * x_hat, axis=axes).reshape(shape)
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
