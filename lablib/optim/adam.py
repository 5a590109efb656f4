"""Adam and AdamW: ``torch.optim.Adam`` and ``torch.optim.AdamW``, step for step.

The step is PyTorch's single-tensor one (``_single_tensor_adam``), at step ``t``::

    g = grad + weight_decay * p                 (Adam: L2 penalty in the gradient)
    p = p * (1 - lr * weight_decay)             (AdamW: decoupled decay, Loshchilov and Hutter)
    m = m + (1 - beta1) * (g - m)               (exp_avg.lerp_(g, 1 - beta1))
    v = beta2 * v + (1 - beta2) * g * g
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

Every array operation writes in place into the state or one scratch array.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lablib.nn import parallel
from lablib.nn.parameter import Parameter
from lablib.optim.optimizer import Optimizer


class Adam(Optimizer):
    decoupled_weight_decay = False

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[Mapping[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"lr, eps and weight_decay must be >= 0, got {lr}, {eps}, {weight_decay}")
        if not all(0 <= beta < 1 for beta in betas):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    def _update(self, param: Parameter, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        lr, (beta1, beta2), eps, weight_decay = (
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
        )
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param.data)
            state["exp_avg_sq"] = np.zeros_like(param.data)
        state["step"] += 1
        step, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
        step_size = lr / (1 - beta1**step)
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5

        def update(rows: slice) -> None:
            # Blocks of rows, in cache through the passes below, spread over the threads.
            p, m, v, grad = param.data[rows], exp_avg[rows], exp_avg_sq[rows], param.grad[rows]
            if weight_decay != 0 and self.decoupled_weight_decay:
                p *= 1 - lr * weight_decay
            elif weight_decay != 0:
                grad = p * weight_decay
                grad += param.grad[rows]

            scratch = np.subtract(grad, m)
            scratch *= 1 - beta1
            m += scratch

            np.multiply(grad, 1 - beta2, out=scratch)
            scratch *= grad
            v *= beta2
            v += scratch

            denom = np.sqrt(v, out=scratch)
            denom /= bias_correction2_sqrt
            denom += eps
            np.divide(m, denom, out=denom)
            denom *= step_size
            p -= denom

        parallel.for_blocks(update, len(param.data), param.data.size)


class AdamW(Adam):
    decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[Mapping[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
