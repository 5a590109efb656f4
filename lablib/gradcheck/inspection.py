"""What a student's object is, read from its methods: a layer, a loss layer, a network's layers."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from lablib.adapter.methods import BACKWARD_NAMES, FORWARD_NAMES, find_method, parameters, positional


def is_loss(forward: Callable[..., Any], backward: Callable[..., Any]) -> bool:
    """True for ``forward(input, target)`` with ``backward()``: a loss layer."""
    required = [p for p in positional(forward) if p.default is inspect.Parameter.empty]
    backward_params = [p for p in parameters(backward) if p.kind is not inspect.Parameter.VAR_KEYWORD]
    return len(required) >= 2 and not [p for p in backward_params if p.default is inspect.Parameter.empty]


def is_layer(obj: Any) -> bool:
    """True for an object with a forward and a backward method, whatever they are called."""
    if isinstance(obj, (type, np.ndarray, str, bytes, int, float)):
        return False
    return find_method(obj, FORWARD_NAMES) is not None and find_method(obj, BACKWARD_NAMES) is not None


def find_layers(obj: Any, prefix: str = "", seen: set[int] | None = None) -> Iterator[tuple[str, Any]]:
    """A network's layers by path (``fc1``, ``layers[2]``), held as attributes, in lists or dicts, nested.

    A layer held twice (as ``self.fc1`` and in ``self.layers``) is found once, under its first path.
    """
    seen = set() if seen is None else seen
    for name, value in vars(obj).items() if hasattr(obj, "__dict__") else ():
        path = f"{prefix}.{name}" if prefix else name
        items = (
            [(f"{path}[{i}]", v) for i, v in enumerate(value)]
            if isinstance(value, list | tuple)
            else [(f"{path}[{k!r}]", v) for k, v in value.items()]
            if isinstance(value, dict)
            else [(path, value)]
        )
        for item_path, item in items:
            if is_layer(item) and id(item) not in seen:
                seen.add(id(item))
                yield item_path, item
                yield from find_layers(item, item_path, seen)
