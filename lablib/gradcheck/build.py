"""A layer made ready for a check, and run once: built (through the adapter where it is foreign), its
parameters drawn, its forward and backward called with every failure turned into one line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lablib.adapter.errors import AdapterError, call
from lablib.gradcheck.foreign import Foreign, adapt
from lablib.gradcheck.inspection import is_layer
from lablib.gradcheck.layout import Layout
from lablib.gradcheck.shapes import TensorMapping
from lablib.nn.module import Module

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Options:
    """How to read a layer written to another contract (see :mod:`lablib.gradcheck.foreign`)."""

    mapping: TensorMapping = field(default_factory=dict)
    layout: Layout | None = None
    choice: int = 0  # which reading of square-shaped arrays (see lablib.gradcheck.shapes.candidates)
    target: str | None = None  # a loss layer's target: "indices", "onehot", or tried
    held: tuple[str, ...] = ()  # parameters without a gradient found: drawn, their gradients not compared


AS_FOUND = Options()  # the layer read as the adapter finds it: no mapping, PyTorch's layout, the first reading
TORCH_MOMENTUM = 0.1  # PyTorch's BatchNorm default, taken for a twin whose momentum is None (a cumulative average)


def build(name: str, make: Callable[[], Any], options: Options, shapes: Mapping[str, Any] | None = None) -> Module:
    """The layer ``make()`` builds: a ``lablib.nn.Module`` as it is, any other layer through the adapter."""
    layer = call(name, make)
    if isinstance(layer, Module):
        return layer
    if not is_layer(layer):
        raise AdapterError(
            f"{name} built a {type(layer).__name__}, not a lablib.nn.Module: subclass lablib.nn.Module "
            "and define forward and backward, or give it a forward and a backward method "
            "(forward or __call__; backward or backprop)"
        )
    return adapt(
        layer,
        options.mapping,
        options.layout,
        shapes,
        choice=options.choice,
        target=options.target,
        held=options.held,
    )


def twin_shapes(twin: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """The shape of each floating parameter and buffer of the twin, by name: what a foreign layer is read as."""
    return {key: tuple(value.shape) for key, value in twin.state_dict().items() if value.is_floating_point()}


def twin_momentum(twin: torch.nn.Module) -> float:
    """The share of the batch statistic a twin's running statistic takes each step: its ``momentum``, or
    :data:`TORCH_MOMENTUM` where it has none."""
    return getattr(twin, "momentum", None) or TORCH_MOMENTUM


def torch_input_shape(layer: Module, options: Options, shape: tuple[int, ...]) -> tuple[int, ...]:
    """An input shape in the layer's own layout as PyTorch lays it out: what the adapted layer takes."""
    return options.layout.torch_shape(shape) if isinstance(layer, Foreign) and options.layout else shape


def draw_parameters(layer: Module, rng: np.random.Generator) -> None:
    """Every parameter (and every one held without a gradient) drawn from U(-1, 1) in place, keeping its dtype."""
    for param in layer.parameters():
        param.data[...] = rng.uniform(-1, 1, param.shape)
    held = layer.held if isinstance(layer, Foreign) else ()
    for name, buffer in layer.named_buffers():
        if name in held:
            buffer[...] = rng.uniform(-1, 1, buffer.shape)


def run_forward(layer: Module, name: str, x: np.ndarray) -> np.ndarray:
    """``layer.forward(x)``, which must return an array of ``x``'s dtype."""
    y = call(f"{name}.forward on input of shape {x.shape}", layer.forward, x)
    if not isinstance(y, np.ndarray):
        raise AdapterError(f"{name}.forward returned {type(y).__name__}, expected a NumPy array")
    if y.dtype != x.dtype:
        raise AdapterError(f"{name}.forward returned {y.dtype} for {x.dtype} input: keep the input's dtype")
    return y


def run_backward(layer: Module, name: str, grad_output: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """The input gradient and a copy of every parameter gradient, from one backward after ``zero_grad``."""
    layer.zero_grad()
    dx = call(f"{name}.backward", layer.backward, grad_output)
    grads = {}
    for pname, param in layer.named_parameters():
        if param.grad is None:
            raise AdapterError(f"{name}.backward left {pname}.grad None: accumulate it with Parameter.accumulate_grad")
        grads[pname] = np.array(param.grad, copy=True)
    return dx, grads


def no_input_grad(layer: Module, dx: Any) -> bool:
    """True for an adapted layer whose backward returns nothing: a first layer, checked on its parameters."""
    return isinstance(layer, Foreign) and dx is None
