"""Linear: ``y = x Wᵀ + b``."""

from __future__ import annotations

import numpy as np

from lablib.nn.grad_mode import is_grad_enabled
from lablib.nn.init import bias_uniform, kaiming_uniform
from lablib.nn.module import Module
from lablib.nn.parameter import Parameter


class Linear(Module):
    """``y = x Wᵀ + b`` over ``(N, in_features)``; ``dW = gᵀ x``, ``db = Σ g``, ``dx = g W``.

    Weight ``(out_features, in_features)`` and bias drawn as ``torch.nn.Linear`` draws them.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: type = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(kaiming_uniform((out_features, in_features), rng, dtype=dtype))
        self.bias = Parameter(bias_uniform(out_features, in_features, rng, dtype)) if bias else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x if is_grad_enabled() else None
        y = x @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray | None:
        x = self.saved("_x")
        if len(grad_output) == 1:  # an outer product: BLAS would pay a thread hand-off for a rank-1 GEMM
            self.weight.accumulate_grad(grad_output.T * x)
        else:
            self.weight.accumulate_grad(grad_output.T @ x)
        if self.bias is not None:
            self.bias.accumulate_grad(grad_output.sum(axis=0))
        return grad_output @ self.weight.data if self.needs_input_grad else None

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
