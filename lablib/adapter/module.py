"""The training wrapper: a layer written to another contract as a ``lablib.nn.Module`` over its own arrays.

    layer = adapt(FullyConnected(784, 128))  # weights (784, 128) and d_weights, biases (128, 1) and d_biases
    y = layer.forward(x)                     # the layer's own forward, with its training flag if it has one
    dx = layer.backward(grad_output)         # accumulates layer.weight.grad, layer.bias.grad
    SGD(layer.parameters(), lr=0.1).step()   # writes into the layer's own arrays

Each parameter and buffer is a view of the layer's array with its size-1 axes dropped (a ``(out, 1)``
bias is presented as ``(out,)``), so an update in place is the layer's update. A backward that takes
a learning rate updates the weights itself: the gradient is recovered from that update at the rate
:data:`~lablib.adapter.methods.KNOWN_RATE` and the weights are put back, so only our optimiser moves
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lablib.adapter.arrays import Path_, get, label, put
from lablib.adapter.binding import Binding, bind
from lablib.adapter.errors import AdapterError, call
from lablib.adapter.methods import BACKWARD_NAMES, FORWARD_NAMES, KNOWN_RATE, find_method, takes_rate, training_flag
from lablib.adapter.tensors import gradient_path
from lablib.nn.module import Module
from lablib.nn.parameter import Parameter


class Adapted(Module):
    """A foreign layer as a ``lablib.nn.Module``: PyTorch's names, the layer's own arrays."""

    def __init__(self, layer: Any, bindings: Sequence[Binding]) -> None:
        super().__init__()
        forward, backward = find_method(layer, FORWARD_NAMES), find_method(layer, BACKWARD_NAMES)
        if forward is None or backward is None:
            missing = "forward" if forward is None else "backward"
            names = FORWARD_NAMES if forward is None else BACKWARD_NAMES
            raise AdapterError(f"{type(layer).__name__} has no {missing} method (one of {', '.join(names)})")
        object.__setattr__(self, "layer", layer)
        self.name = type(layer).__name__
        self.forward_name, self._forward = forward
        self.backward_name, self._backward = backward
        self.flag = training_flag(self._forward)
        self.updates_inside = takes_rate(self._backward)
        self.bindings = list(bindings)
        self.grad_paths: dict[str, Path_] = {}  # gradients found beside their parameter once backward has run
        for binding in self.bindings:
            data = binding.to_torch(get(layer, binding.value))
            if binding.kind == "parameter":
                setattr(self, binding.name, Parameter(data))
            else:
                self.register_buffer(binding.name, data)

    def sync(self) -> None:
        """Present the layer's current arrays again: a layer may have replaced one (``self.W = self.W - ...``)."""
        for binding in self.bindings:
            array = get(self.layer, binding.value)
            if not isinstance(array, np.ndarray) or array.shape != binding.stored:
                got = array.shape if isinstance(array, np.ndarray) else type(array).__name__
                raise AdapterError(f"{self.name}.{label(binding.value)} became {got}, not {binding.stored}")
            data = binding.to_torch(array)
            if binding.kind == "parameter":
                self._parameters[binding.name].data = data
            else:
                self.register_buffer(binding.name, data)

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = self.call_forward(x)
        self.sync()  # a forward that replaced an array (a cast to float32) is read again
        return y.astype(x.dtype, copy=False)

    def call_forward(self, x: np.ndarray) -> np.ndarray:
        """The layer's own forward on its current arrays, with its training flag: its output, as it is."""
        self.sync()
        raw = call(f"{self.name}.{self.forward_name}", self._forward, x, **self.flags())
        if not isinstance(raw, np.ndarray):
            raise AdapterError(f"{self.name}.{self.forward_name} returned {type(raw).__name__}, not a NumPy array")
        return raw

    def flags(self) -> dict[str, bool]:
        """The keyword that hands the layer's forward ``Module.training``, where it takes one."""
        return {self.flag: self.training} if self.flag else {}

    def backward(self, grad_output: np.ndarray) -> np.ndarray | None:
        dx = self.call_backward(grad_output)
        return dx.astype(grad_output.dtype, copy=False) if isinstance(dx, np.ndarray) else None

    def call_backward(self, *grad_output: Any) -> Any:
        """The layer's own backward on ``grad_output`` (nothing, for a loss layer), handed the known rate where
        it updates inside; each parameter's gradient accumulated. Returns what the backward returns."""
        for binding in self.bindings:
            path = binding.grad or self.grad_paths.get(binding.name)
            grad = get(self.layer, path) if path else None
            if isinstance(grad, np.ndarray):
                grad[...] = 0  # a backward that accumulates with += counts this pass alone
        params = [b for b in self.bindings if b.kind == "parameter"]
        before = {
            b.name: (get(self.layer, b.value), get(self.layer, b.value).copy()) for b in params if self.updates_inside
        }
        args = (*grad_output, KNOWN_RATE) if self.updates_inside and grad_output else grad_output
        dx = call(f"{self.name}.{self.backward_name}", self._backward, *args)
        for binding in params:
            grad = self._undo_update(binding, *before[binding.name]) if self.updates_inside else self._gradient(binding)
            if grad is not None:
                param = self._parameters[binding.name]
                param.accumulate_grad(np.array(binding.to_torch(grad), dtype=param.dtype))
        return dx

    def _undo_update(self, binding: Binding, original: np.ndarray, copy: np.ndarray) -> np.ndarray:
        """The gradient a backward's update at the known rate implies; the layer's array put back as it was."""
        grad = (copy - get(self.layer, binding.value)) / KNOWN_RATE
        original[...] = copy
        put(self.layer, binding.value, original)
        return grad

    def _gradient(self, binding: Binding) -> np.ndarray | None:
        """The gradient the backward left beside the parameter (None where :meth:`mismatched` keeps it)."""
        path = binding.grad or self.grad_paths.get(binding.name) or gradient_path(self.layer, binding.value)
        path = path or gradient_path(self.layer, binding.value, same_shape=False)
        grad = get(self.layer, path) if path else None
        if isinstance(grad, np.ndarray) and grad.shape != binding.stored:
            self.mismatched(binding, grad)
            return None
        if not isinstance(grad, np.ndarray):
            raise AdapterError(
                f"{self.name}.{self.backward_name} left no gradient of {label(binding.value)} "
                f"(shape {binding.stored}) beside it: name it d_{binding.value[-1]}"
            )
        self.grad_paths[binding.name] = path
        return grad

    def mismatched(self, binding: Binding, grad: np.ndarray) -> None:
        """A gradient of another shape than its parameter's: training cannot use it."""
        raise AdapterError(
            f"{self.name}.{self.backward_name} left a gradient of {label(binding.value)} of shape {grad.shape}, "
            f"not its parameter's {binding.stored}"
        )

    def extra_repr(self) -> str:
        return f"{self.name}; " + "; ".join(f"{b.name} = {label(b.value)}" for b in self.bindings)


def adapt(layer: Any) -> Module:
    """``layer`` as a ``lablib.nn.Module`` (a ``Module`` already is one and comes back as it is)."""
    return layer if isinstance(layer, Module) else Adapted(layer, bind(layer))
