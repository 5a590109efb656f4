"""A layer's forward and backward, whatever they are called, and how they take a training flag and a rate.

Forward is ``forward``, ``__call__``, ``call`` or ``forward_pass``; backward is ``backward``,
``backprop``, ``backward_pass`` or ``backpropagation``. A forward with a training flag (``training``,
``train``, ...) receives ``Module.training``. A backward that takes a learning rate
(``backprop(d_out, learn_rate)``) updates the weights itself: it is handed :data:`KNOWN_RATE`, so
that its update is minus the gradient.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

FORWARD_NAMES = ("forward", "__call__", "call", "forward_pass")
BACKWARD_NAMES = ("backward", "backprop", "backward_pass", "backpropagation")
TRAINING_FLAGS = ("training", "train", "is_training", "train_mode")
RATE_NAMES = ("lr", "learn_rate", "learning_rate", "eta", "alpha", "step_size", "rate")
KNOWN_RATE = 1.0  # the rate a backward that updates in place is handed: its update is then minus the gradient


def find_method(obj: Any, names: Sequence[str]) -> tuple[str, Callable[..., Any]] | None:
    """The first of ``names`` that ``obj``'s class defines (``__call__`` only where a class of Python code does)."""
    for name in names:
        attr = getattr(type(obj), name, None)
        if callable(attr) and (name != "__call__" or inspect.isfunction(attr)):
            return name, getattr(obj, name)
    return None


def parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    """``fn``'s parameters; none where Python cannot read its signature."""
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []


def positional(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    """``fn``'s parameters that can be given by position."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p for p in parameters(fn) if p.kind in kinds]


def training_flag(fn: Callable[..., Any]) -> str | None:
    """The name of ``fn``'s training flag, if it has one."""
    return next((p.name for p in parameters(fn) if p.name in TRAINING_FLAGS), None)


def takes_rate(fn: Callable[..., Any]) -> bool:
    """True for a backward that updates the weights itself: ``backprop(d_out, learn_rate)``."""
    given = positional(fn)
    return len(given) >= 2 and (given[1].name.lower() in RATE_NAMES or given[1].default is inspect.Parameter.empty)
