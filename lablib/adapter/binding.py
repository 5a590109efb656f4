"""Which array of a layer stands for which of PyTorch's tensors, presented with its size-1 axes dropped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lablib.adapter.arrays import Path_, get
from lablib.adapter.tensors import find_tensors, in_torch_order


def squeezed(shape: Sequence[int]) -> tuple[int, ...]:
    """``shape`` without its size-1 axes: a ``(out, 1)`` bias is ``(out,)``."""
    return tuple(size for size in shape if size != 1)


@dataclass(frozen=True)
class Binding:
    """Which array of the layer stands for which of PyTorch's tensors, and the shape it is presented in."""

    name: str  # PyTorch's name: weight, bias, running_mean, running_var
    value: Path_
    grad: Path_ | None  # None: a buffer, or a parameter the layer updates inside backward
    kind: str  # "parameter" or "buffer"
    stored: tuple[int, ...]
    shape: tuple[int, ...]  # as it is presented

    def to_torch(self, array: np.ndarray) -> np.ndarray:
        """The layer's array in the presented shape: a view of it."""
        return array.reshape(self.shape)


def bind(layer: Any) -> list[Binding]:
    """The layer's parameters and buffers in PyTorch's order, each presented squeezed (a scalar as ``(1,)``)."""
    named = find_tensors(layer)
    bindings = []
    for name in in_torch_order(list(named)):
        value, grad, kind = named[name]
        stored = get(layer, value).shape
        bindings.append(Binding(name, value, grad, kind, stored, squeezed(stored) or (1,)))
    return bindings
