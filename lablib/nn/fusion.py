"""BatchNorm folded into the layer before it, for inference, as ``torch.nn.utils.fusion``.

In evaluation BatchNorm is an affine map of each channel, with its running statistics::

    y = (z - mean) * s + beta,   s = gamma / sqrt(var + eps)

and a convolution or linear layer before it, ``z = W x + b``, is affine too. Their composition is one
layer of the same kind::

    W' = s * W   (each output channel's row of W scaled by its s),   b' = (b - mean) * s + beta

The folded network computes the same function with one layer fewer and no pass over the
activations for BatchNorm. It is computed in float64 and stored in the weights' dtype, so its outputs
differ from the unfolded network's by float32 rounding; only evaluation uses it, training never does.
"""

from __future__ import annotations

import copy

import numpy as np

from lablib.nn.batchnorm import BatchNorm1d, BatchNorm2d
from lablib.nn.conv import Conv2d
from lablib.nn.linear import Linear
from lablib.nn.module import Module, Sequential
from lablib.nn.parameter import Parameter


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
    """A copy of ``model`` in eval mode in which every Conv2d or Linear followed by a BatchNorm with
    running statistics, in a ``Sequential``, is one folded layer; the rest is copied as it is."""
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
            folded.append(fuse_bn_eval(layer, layers.pop(0)))
        else:
            folded.append(layer)
    return Sequential(*folded)
