"""SGD with momentum, dampening, Nesterov momentum and L2 weight decay, as ``torch.optim.SGD``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lablib.nn.parameter import Parameter
from lablib.optim.optimizer import Optimizer


class SGD(Optimizer):
    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(
            params,
            {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay, "nesterov": nesterov},
        )

    def _update(self, param: Parameter, state: dict[str, np.ndarray], group: Mapping[str, Any]) -> None:
        grad = param.grad
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param.data
        if group["momentum"]:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(grad, copy=True)
            else:
                buf *= group["momentum"]
                buf += (1 - group["dampening"]) * grad
            grad = grad + group["momentum"] * buf if group["nesterov"] else buf
        param.data -= group["lr"] * grad
