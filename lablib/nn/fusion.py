"""BatchNorm folded into the layer before it, for inference, as ``torch.nn.utils.fusion``.

In evaluation BatchNorm is an affine map of each channel, with its running statistics::

    y = (z - mean) * s + beta,   s = gamma / sqrt(var + eps)

and a convolution or linear layer before it, ``z = W x + b``, is affine too. Their composition is one
layer of the same kind::

    W' = s * W   (each output channel's row of W scaled by its s),   b' = (b - mean) * s + beta

The folded network computes the same function with one layer fewer and no pass over the
activations for BatchNorm. It is computed in float64 and stored in the weights' dtype, so its outputs
differ from the unfolded network's by float32 rounding; only evaluation uses it, training never does.

Its convolutions are :class:`InferenceConv2d`: the same product, a band of output rows at a time, so
that a band's columns are multiplied while they are still in cache and the whole column matrix is
never formed. The bands give other float32 roundings than one product over all columns (BLAS splits
the work by shape), which inference may allow and validation during training may not.
"""

from __future__ import annotations

import copy

import numpy as np

from lablib.nn import parallel
from lablib.nn.batchnorm import BatchNorm1d, BatchNorm2d
from lablib.nn.conv import Conv2d
from lablib.nn.functional import pad_batch_last, windows
from lablib.nn.grad_mode import is_grad_enabled
from lablib.nn.linear import Linear
from lablib.nn.module import Module, Sequential
from lablib.nn.parameter import Parameter

# A band's columns: small enough to stay in the last-level cache between their copy and their product.
BAND_BYTES = 2**21


class InferenceConv2d(Conv2d):
    """A :class:`Conv2d` without a backward, for inference under ``no_grad``: ``W·cols + b`` computed
    one band of output rows at a time (rows ``y`` of ``cols[(c, i, j), (y, x, n)]`` are whole columns)."""

    @classmethod
    def from_conv(cls, conv: Conv2d) -> InferenceConv2d:
        """``conv``'s weights (shared, not copied) in an inference convolution."""
        shape = (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding)
        # The initial weights it draws are replaced at once.
        inference = cls(*shape, bias=conv.bias is not None, dtype=conv.weight.data.dtype)
        inference.weight, inference.bias = conv.weight, conv.bias
        return inference

    def forward(self, x: np.ndarray) -> np.ndarray:
        if is_grad_enabled():
            raise RuntimeError("InferenceConv2d has no backward: run it under lablib.nn.no_grad()")
        n, c, _, _ = x.shape
        if c != self.in_channels:
            raise ValueError(f"Conv2d expects {self.in_channels} input channels, got input of shape {x.shape}")
        taps = windows(pad_batch_last(x, self.padding), self.kernel_size, self.stride)
        _, k, _, oh, ow, _ = taps.shape
        weight = self.weight.data.reshape(self.out_channels, -1)
        # Row-major output (OH, out, OW, N): each output row is one contiguous product's result.
        out = np.empty((oh, self.out_channels, ow * n), x.dtype)
        band = max(1, min(oh, BAND_BYTES // (weight.size // self.out_channels * ow * n * x.itemsize)))
        buffer = np.empty((band, c, k, k, ow, n), x.dtype)
        for top in range(0, oh, band):
            rows = min(band, oh - top)
            cols = buffer[:rows]
            parallel.copyto(cols.transpose(1, 2, 3, 0, 4, 5), taps[:, :, :, top : top + rows])
            part = out[top : top + rows]
            np.matmul(weight, cols.reshape(rows, weight.shape[1], ow * n), out=part)
            if self.bias is not None:
                part += self.bias.data[:, None]  # while the band's output is still in cache
        return out.reshape(oh, self.out_channels, ow, n).transpose(3, 1, 0, 2)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        raise RuntimeError("InferenceConv2d has no backward; train a Conv2d")


def fuse_bn_eval(layer: Conv2d | Linear, bn: BatchNorm1d | BatchNorm2d) -> Conv2d | Linear:
    """A copy of ``layer`` that computes ``bn(layer(x))`` with ``bn``'s running statistics."""
    if not bn.track_running_stats or bn.num_features != layer.weight.data.shape[0]:
        raise ValueError(f"cannot fold {bn!r} into {layer!r}: it needs running statistics of each output")
    dtype = layer.weight.data.dtype
    gamma = np.ones(bn.num_features) if bn.weight is None else bn.weight.data.astype(np.float64)
    beta = np.zeros(bn.num_features) if bn.bias is None else bn.bias.data.astype(np.float64)
    scale = gamma / np.sqrt(bn.running_var.astype(np.float64) + bn.eps)
    bias = np.zeros(bn.num_features) if layer.bias is None else layer.bias.data.astype(np.float64)
    fused = copy.deepcopy(layer)
    weight = layer.weight.data.astype(np.float64) * scale.reshape(-1, *(1,) * (layer.weight.data.ndim - 1))
    fused.weight = Parameter(weight.astype(dtype))
    fused.bias = Parameter(((bias - bn.running_mean.astype(np.float64)) * scale + beta).astype(dtype))
    return fused


def fuse_for_inference(model: Module) -> Module:
    """A copy of ``model`` for inference, in eval mode: every Conv2d or Linear followed by a BatchNorm
    with running statistics, in a ``Sequential``, is one folded layer, every Conv2d an
    :class:`InferenceConv2d`; the rest is copied as it is. Run it under ``no_grad``."""
    return _fold(copy.deepcopy(model)).eval()


def _fold(module: Module) -> Module:
    for name, child in list(module._modules.items()):
        setattr(module, name, _fold(child))
    if not isinstance(module, Sequential):
        return module
    layers, folded = list(module), []
    while layers:
        layer = layers.pop(0)
        pair = (Conv2d, BatchNorm2d) if isinstance(layer, Conv2d) else (Linear, BatchNorm1d)
        following = layers[0] if layers else None
        if isinstance(layer, pair[0]) and isinstance(following, pair[1]) and following.track_running_stats:
            layer = fuse_bn_eval(layer, layers.pop(0))
        folded.append(InferenceConv2d.from_conv(layer) if isinstance(layer, Conv2d) else layer)
    return Sequential(*folded)
