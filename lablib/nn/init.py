"""Initial weights, drawn with a NumPy generator.

PyTorch's default: ``torch.nn.Linear`` and ``Conv2d`` call ``kaiming_uniform_(weight, a=sqrt(5))``,
which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and draw the bias from the same interval. A NumPy layer
and its PyTorch twin therefore start from the same distribution.

The from-scratch tutorials' scheme, :func:`normal_fan_in`: N(0, 1) / fan_in with zero biases, as in
``np.random.randn(8, 3, 3) / 9`` for 3x3 filters. Report 001 does not say which it used.
"""

from __future__ import annotations

import math

import numpy as np


def calculate_fan_in_and_fan_out(shape: tuple[int, ...]) -> tuple[int, int]:
    """Fan-in and fan-out of a weight of ``shape`` (out, in, *kernel), as PyTorch computes them."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight of at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def kaiming_uniform(
    shape: tuple[int, ...], rng: np.random.Generator, a: float = math.sqrt(5), dtype: type = np.float32
) -> np.ndarray:
    """``torch.nn.init.kaiming_uniform_`` (fan_in mode, leaky_relu gain with slope ``a``)."""
    fan_in, _ = calculate_fan_in_and_fan_out(shape)
    gain = math.sqrt(2.0 / (1 + a**2))
    bound = gain * math.sqrt(3.0 / fan_in)
    return rng.uniform(-bound, bound, shape).astype(dtype)


def bias_uniform(size: int, fan_in: int, rng: np.random.Generator, dtype: type = np.float32) -> np.ndarray:
    """The default bias of ``Linear`` and ``Conv2d``: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size).astype(dtype)


def normal_fan_in(shape: tuple[int, ...], rng: np.random.Generator, dtype: type = np.float32) -> np.ndarray:
    """N(0, 1) / fan_in: a standard deviation of 1/fan_in, much smaller than Kaiming's sqrt(2/fan_in)."""
    fan_in, _ = calculate_fan_in_and_fan_out(shape)
    return (rng.standard_normal(shape) / fan_in).astype(dtype)
