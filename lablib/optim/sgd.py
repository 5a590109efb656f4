"""SGD with momentum, dampening, Nesterov momentum and L2 weight decay: ``torch.optim.SGD``.

The step is PyTorch's single-tensor one (``_single_tensor_sgd``)::

    g = grad + weight_decay * p
    b = g                                  on the first step
    b = momentum * b + (1 - dampening) * g afterwards
    g = g + momentum * b  (Nesterov)   or   g = b
    p = p - lr * g
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lablib.nn import parallel
from lablib.nn.parameter import Parameter
from lablib.optim.optimizer import Optimizer


class SGD(Optimizer):
    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[Mapping[str, Any]],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"lr, momentum and weight_decay must be >= 0, got {lr}, {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
        }
        super().__init__(params, defaults)

    def _update(self, param: Parameter, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        lr, momentum, dampening, weight_decay = (group[key] for key in ("lr", "momentum", "dampening", "weight_decay"))
        buf = state.get("momentum_buffer")
        first = buf is None
        if momentum != 0 and first:
            buf = state["momentum_buffer"] = np.empty_like(param.data)

        def update(rows: slice) -> None:
            # Blocks of rows, spread over the threads.
            grad = param.grad[rows]
            if weight_decay != 0:
                grad = param.data[rows] * weight_decay
                grad += param.grad[rows]
            if momentum != 0:
                b = buf[rows]
                if first:
                    b[...] = grad
                else:
                    b *= momentum
                    b += grad if dampening == 0 else (1 - dampening) * grad
                grad = grad + momentum * b if group["nesterov"] else b
            param.data[rows] -= lr * grad

        parallel.for_blocks(update, len(param.data), param.data.size)
