"""Optimizer: parameter groups and per-parameter state, as ``torch.optim.Optimizer`` keeps them.

``state_dict()`` is flat (``state.<i>.<name>`` arrays, ``param_groups.<g>.<key>`` numbers) so a
checkpoint stores it in an ``.npz`` without pickle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lablib.nn.parameter import Parameter


class Optimizer:
    def __init__(self, params: Iterable[Parameter], defaults: Mapping[str, Any]) -> None:
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = [{"params": params, **self.defaults}]
        self.state: dict[int, dict[str, np.ndarray]] = {}

    def _indexed(self) -> Iterable[tuple[int, dict[str, Any], Parameter]]:
        index = 0
        for group in self.param_groups:
            for param in group["params"]:
                yield index, group, param
                index += 1

    def zero_grad(self) -> None:
        for _, _, param in self._indexed():
            param.grad = None

    def step(self) -> None:
        for index, group, param in self._indexed():
            if param.grad is not None:
                self._update(param, self.state.setdefault(index, {}), group)

    def _update(self, param: Parameter, state: dict[str, np.ndarray], group: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        flat: dict[str, np.ndarray] = {}
        for index, per_param in self.state.items():
            for name, value in per_param.items():
                flat[f"state.{index}.{name}"] = np.array(value, copy=True)
        for g, group in enumerate(self.param_groups):
            for key, value in group.items():
                if key != "params":
                    flat[f"param_groups.{g}.{key}"] = np.asarray(value)
        return flat

    def load_state_dict(self, state_dict: Mapping[str, np.ndarray]) -> None:
        self.state = {}
        for key, value in state_dict.items():
            kind, index, name = key.split(".", 2)
            if kind == "state":
                self.state.setdefault(int(index), {})[name] = np.array(value, copy=True)
            else:
                group = self.param_groups[int(index)]
                value = np.asarray(value)
                group[name] = tuple(value.tolist()) if value.ndim else value.item()
