"""BatchNorm1d and BatchNorm2d: batch statistics in training, running statistics in evaluation.

As PyTorch: the batch is normalised with its biased variance, the running variance is updated with
the unbiased one, ``running = (1 - momentum) * running + momentum * batch`` (``momentum=None``: the
cumulative average over the batches seen). With ``x_hat = (x - mean) * inv_std`` and
``y = weight * x_hat + bias``, the gradients are

    d weight = sum(g * x_hat),   d bias = sum(g),
    dx = weight * inv_std * (g - mean(g) - x_hat * mean(g * x_hat))   (batch statistics),
    dx = weight * inv_std * g                                         (running statistics),

sums and means over every axis but the channel axis 1.

A SiLU right after a BatchNorm in a ``Sequential`` runs inside the BatchNorm's blocks of channels,
forward and backward: the normalised block goes from one to the other while it is in cache, and
neither the BatchNorm's output nor the SiLU's input gradient is ever written whole. The arithmetic is
the two layers' own, so the results are bit-identical to running them one after the other.
"""

from __future__ import annotations

import numpy as np

from lablib.nn import parallel
from lablib.nn.activation import SiLU, silu, silu_grad
from lablib.nn.grad_mode import is_grad_enabled
from lablib.nn.module import Module
from lablib.nn.parameter import Parameter


def channel_sum(x: np.ndarray) -> np.ndarray:
    """Sum over every axis but the channel axis 1, in float64 across the batch.

    Each sample's channel is summed in ``x``'s dtype and the per-sample sums add up in float64, as
    PyTorch's CPU kernels accumulate in double: a float32 running sum over the batch loses digits
    that the normalisation then amplifies.
    """
    sample = "nc" + "hw"[: x.ndim - 2]
    return np.einsum(f"{sample}->nc", x).sum(axis=0, dtype=np.float64)


def channel_dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`channel_sum` of ``x * y``, without forming ``x * y``."""
    sample = "nc" + "hw"[: x.ndim - 2]
    return np.einsum(f"{sample},{sample}->nc", x, y).sum(axis=0, dtype=np.float64)


class _BatchNorm(Module):
    _expected_ndim: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool = True,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def _channel_shape(self, x: np.ndarray) -> tuple[int, ...]:
        """The shape that broadcasts a per-channel vector against ``x``."""
        if x.ndim not in self._expected_ndim or x.shape[1] != self.num_features:
            dims = " or ".join(f"{d}-D" for d in self._expected_ndim)
            raise ValueError(
                f"{type(self).__name__} expects {dims} input with {self.num_features} channels, got shape {x.shape}"
            )
        return (1, -1) + (1,) * (x.ndim - 2)

    def fuses(self, following: Module) -> bool:
        """Whether ``following``, the next layer of a ``Sequential``, runs inside this one's blocks: a SiLU
        that keeps no input (training, or under no_grad)."""
        return type(following) is SiLU and (following.training or not is_grad_enabled())

    def forward(self, x: np.ndarray, then: SiLU | None = None) -> np.ndarray:
        """``then(bn(x))`` where a SiLU ``then`` is given (see :meth:`fuses`), else ``bn(x)``."""
        shape = self._channel_shape(x)
        count = x.size // x.shape[1]
        batch_stats = self.training or not self.track_running_stats
        if self.training and count < 2:
            raise ValueError(f"Expected more than 1 value per channel when training, got input of shape {x.shape}")
        mean, var = np.empty((2, x.shape[1]))
        # What is subtracted: the batch mean in x's dtype, or the running mean.
        shift = np.empty(x.shape[1], x.dtype)
        inv_std = np.empty(x.shape[1], x.dtype)
        y, s = (np.empty_like(x), None) if then is None else then.prepare(x)

        def normalise(channels: slice) -> None:
            # Statistics are per channel: a block of channels is normalised on its own, while in cache.
            x_part = x[:, channels]
            if batch_stats:
                mean[channels] = channel_sum(x_part) / count
                shift[channels] = mean[channels]
                centered = np.subtract(x_part, shift[channels].reshape(shape))
                var[channels] = channel_dot(centered, centered) / count
                var_part = var[channels]
            else:
                shift[channels] = self.running_mean[channels]
                centered = np.subtract(x_part, shift[channels].reshape(shape))
                var_part = self.running_var[channels]
            inv_std[channels] = 1 / np.sqrt(var_part + self.eps)
            scale = inv_std[channels] if self.weight is None else inv_std[channels] * self.weight.data[channels]
            # Followed by a SiLU, the normalised block stays in cache, in place of the centred one.
            out = y[:, channels] if then is None else centered
            np.multiply(centered, scale.reshape(shape), out=out)
            if self.bias is not None:
                out += self.bias.data[channels].reshape(shape)
            if then is not None:
                silu(out, y[:, channels], None if s is None else s[:, channels])

        parallel.for_blocks(normalise, x.shape[1], x.size)
        if self.training and self.track_running_stats:
            self._update_running_stats(mean, var * count / (count - 1))
        # The layer keeps its input, not x - mean: backward recomputes the centred block in cache,
        # which spares a write and a read of a whole activation.
        self._x = x if is_grad_enabled() else None
        self._shift, self._inv_std, self._batch_stats = shift, inv_std, batch_stats
        return y if then is None else then.keep(None, y, s)

    def _update_running_stats(self, mean: np.ndarray, unbiased_var: np.ndarray) -> None:
        self.num_batches_tracked += 1
        m = 1 / self.num_batches_tracked if self.momentum is None else self.momentum
        self.running_mean *= 1 - m
        self.running_mean += (m * mean).astype(self.running_mean.dtype)
        self.running_var *= 1 - m
        self.running_var += (m * unbiased_var).astype(self.running_var.dtype)

    def backward(self, grad_output: np.ndarray, then: SiLU | None = None) -> np.ndarray:
        """The input gradient; with ``then``, the SiLU the forward ran, ``grad_output`` is its output's."""
        shape = self._channel_shape(grad_output)
        x, shift, inv_std, dtype = self.saved("_x"), self._shift, self._inv_std, grad_output.dtype
        count = grad_output.size // grad_output.shape[1]
        sum_grad, sum_grad_x_hat = np.empty((2, grad_output.shape[1]))
        grad = np.empty_like(x)
        s, y = (None, None) if then is None else then.saved_terms()

        def backward_block(channels: slice) -> None:
            g, grad_part = grad_output[:, channels], grad[:, channels]
            if then is not None:  # the SiLU's input gradient, in this block's place of the result, in cache
                g = silu_grad(s[:, channels], y[:, channels], g, out=grad_part)
            centered = np.subtract(x[:, channels], shift[channels].reshape(shape))
            sum_grad[channels] = channel_sum(g)
            sum_grad_x_hat[channels] = channel_dot(g, centered) * inv_std[channels]
            scale = inv_std[channels]
            if self.weight is not None:
                scale = scale * self.weight.data[channels]
            np.multiply(g, scale.reshape(shape), out=grad_part)
            if self._batch_stats:
                # x_hat * mean(g * x_hat) = centered * inv_std * mean(g * x_hat)
                factor = (scale * inv_std[channels] * sum_grad_x_hat[channels] / count).astype(dtype)
                grad_part -= np.multiply(centered, factor.reshape(shape), out=centered)
                grad_part -= (scale * sum_grad[channels] / count).astype(dtype).reshape(shape)

        parallel.for_blocks(backward_block, grad.shape[1], grad.size)
        if self.weight is not None:
            self.weight.accumulate_grad(sum_grad_x_hat.astype(dtype))
        if self.bias is not None:
            self.bias.accumulate_grad(sum_grad.astype(dtype))
        return grad

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Over ``(N, C)`` or ``(N, C, L)``: each feature normalised across the batch (and the length)."""

    _expected_ndim = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Over ``(N, C, H, W)``: each channel normalised across the batch and the pixels."""

    _expected_ndim = (4,)
