"""Optimizer: parameter groups and per-parameter state, kept as ``torch.optim.Optimizer`` keeps them.

``param_groups`` is a list of dicts, each holding ``"params"`` and that group's hyper-parameters
(``"lr"``, ...); schedulers rewrite ``group["lr"]`` between steps, and every step reads it afresh.
``state`` maps each parameter to its buffers (momentum, moment estimates). ``state_dict()`` is flat:
``state.<i>.<name>`` and ``param_groups.<g>.<key>``, parameters numbered across groups in order
as PyTorch numbers them, holding only arrays and plain numbers, so ``np.savez`` stores it without
pickle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lablib.nn.parameter import Parameter


class Optimizer:
    """Base class: subclasses define ``_update``, the step of one parameter that has a gradient."""

    def __init__(self, params: Iterable[Parameter] | Iterable[Mapping[str, Any]], defaults: Mapping[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Parameter, dict[str, Any]] = {}
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], Mapping):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add parameters with their own hyper-parameters; those not given come from ``defaults``."""
        params = group["params"]
        params = [params] if isinstance(params, Parameter) else list(params)
        ids = [id(p) for p in self._params() + params]
        if len(set(ids)) != len(ids):
            raise ValueError("a parameter appears twice among the optimizer's parameter groups")
        hyper = {key: value for key, value in group.items() if key != "params"}
        self.param_groups.append({"params": params, **self.defaults, **hyper})

    def _params(self) -> list[Parameter]:
        return [param for group in self.param_groups for param in group["params"]]

    def zero_grad(self) -> None:
        """Set every gradient to ``None`` (PyTorch's default, ``set_to_none=True``)."""
        for param in self._params():
            param.grad = None

    def step(self) -> None:
        """Update, in place, every parameter that has a gradient; the others are left alone."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    self._update(param, self.state.setdefault(param, {}), group)

    def _update(self, param: Parameter, state: dict[str, Any], group: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """A flat copy of the state: arrays (copied), ints (``step``) and hyper-parameters.

        ``param_groups.<g>.params`` lists the numbers of the group's parameters, so loading into an
        optimizer over different parameters fails loudly; tuples (``betas``) become arrays.
        """
        flat: dict[str, Any] = {}
        params = self._params()
        for index, param in enumerate(params):
            for name, value in self.state.get(param, {}).items():
                flat[f"state.{index}.{name}"] = value.copy() if isinstance(value, np.ndarray) else value
        start = 0
        for g, group in enumerate(self.param_groups):
            flat[f"param_groups.{g}.params"] = np.arange(start, start + len(group["params"]))
            start += len(group["params"])
            for key, value in group.items():
                if key != "params":
                    flat[f"param_groups.{g}.{key}"] = np.array(value) if isinstance(value, tuple) else value
        return flat

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`, also after a round trip through ``np.savez``/``np.load``.

        Buffers are copied and cast to their parameter's dtype, as PyTorch casts them.
        """
        params = self._params()
        state: dict[Parameter, dict[str, Any]] = {}
        groups: list[dict[str, Any]] = [{} for _ in self.param_groups]
        for key, value in state_dict.items():
            kind, index, name = _split_key(key)
            value = np.asarray(value)
            if kind == "state" and index < len(params):
                param = params[index]
                if name == "step":
                    state.setdefault(param, {})[name] = int(value)
                elif value.shape == param.shape:
                    state.setdefault(param, {})[name] = value.astype(param.dtype, copy=True)
                else:
                    raise ValueError(f"state_dict[{key!r}] has shape {value.shape}, parameter {index} {param.shape}")
            elif kind == "param_groups" and index < len(groups):
                groups[index][name] = tuple(value.tolist()) if value.ndim else value.item()
            else:
                raise KeyError(f"state_dict key {key!r} names no parameter or group of this optimizer")
        start = 0
        for g, (group, loaded) in enumerate(zip(self.param_groups, groups, strict=True)):
            expected = tuple(range(start, start + len(group["params"])))
            start += len(group["params"])
            if loaded.pop("params", None) != expected:
                raise ValueError(f"parameter group {g} of the state_dict does not hold parameters {expected}")
        for group, loaded in zip(self.param_groups, groups, strict=True):
            group.update(loaded)
        self.state = state


def _split_key(key: str) -> tuple[str, int, str]:
    """``"state.3.exp_avg"`` -> ``("state", 3, "exp_avg")``."""
    parts = key.split(".", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        raise KeyError(f"state_dict key {key!r} is not of the form state.<i>.<name> or param_groups.<g>.<key>")
    return parts[0], int(parts[1]), parts[2]
