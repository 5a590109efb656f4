"""A foreign layer as the checker reads it: in its own layout, its arrays in its PyTorch twin's shapes.

The training wrapper (:class:`lablib.adapter.module.Adapted`) with what only the checks need:

    layer = adapt(Conv3x3(8), shapes={"weight": (8, 1, 3, 3)}, layout=Layout("HW->HWC"))
    y = layer.forward(x)                   # x in PyTorch's layout; the layer receives its own
    dx = layer.backward(grad_output)       # accumulates layer.weight.grad in PyTorch's shape

``adapt(layer, mapping=None, layout=None, shapes=None, choice=0, target=None) -> Foreign``: ``mapping``
says which attribute is which tensor, ``shapes`` and ``choice`` which reading of the arrays
(:mod:`lablib.gradcheck.shapes`), ``layout`` how inputs and outputs are laid out
(:mod:`lablib.gradcheck.layout`). A loss layer (``forward(input, target) -> (pred, loss)``,
``backward()``) becomes a loss module: ``forward(logits, target) -> float``,
``backward(grad_output=1.0) -> dx``, with ``target`` class indices, handed over as indices or one-hot
(``target="indices"`` or ``"onehot"``; by default one-hot, and indices where one-hot raises); the
parameters ``held`` are read as buffers, their gradients not compared.
``Foreign.computes_in`` is the dtype the layer's last forward computed in (float32 where its output or
any array it keeps is float32: a layer that casts whatever it is given), ``Foreign.returns_input_grad``
whether its backward returned a gradient (a first layer may not); a gradient of the wrong shape is kept
for a check to report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lablib.adapter.arrays import find_arrays, get, label, put
from lablib.adapter.errors import AdapterError
from lablib.adapter.module import Adapted
from lablib.gradcheck.inspection import is_loss
from lablib.gradcheck.layout import Layout, to_layer, to_torch
from lablib.gradcheck.shapes import Permuted, TensorMapping, candidates
from lablib.nn.module import Module


def one_hot(target: np.ndarray, classes: int, dtype: np.dtype) -> np.ndarray:
    """Class indices as one-hot rows of ``dtype``."""
    encoded = np.zeros((len(target), classes), dtype)
    encoded[np.arange(len(target)), target] = 1
    return encoded


class Foreign(Adapted):
    """A foreign layer as a ``lablib.nn.Module``: PyTorch's names, shapes and layout, the layer's own arrays."""

    bindings: list[Permuted]

    def __init__(
        self,
        layer: Any,
        bindings: Sequence[Permuted],
        layout: Layout | None = None,
        *,
        target: str | None = None,
        held: Sequence[str] = (),
    ) -> None:
        super().__init__(layer, bindings)
        self.is_loss = is_loss(self._forward, self._backward)
        self.layout = None if layout is None or layout.is_torch else layout
        self.target = target
        self.held = tuple(b.name for b in self.bindings if b.name in held)  # parameters read as buffers
        self.computes_in: np.dtype | None = None
        self.returns_input_grad: bool | None = None

    def forward(self, x: np.ndarray, target: np.ndarray | None = None) -> Any:
        if self.is_loss:
            self.sync()
            return self._loss_forward(x, target)
        raw = self.call_forward(self.layer_input(x))
        kept = [array.dtype for array in find_arrays(self.layer).values()]
        self.computes_in = np.dtype(np.float32) if np.dtype(np.float32) in [raw.dtype, *kept] else raw.dtype
        y = to_torch(raw, self.layout.output) if self.layout else raw
        self.sync()  # a forward that replaced an array (a cast to float32) is read again
        return y.astype(x.dtype, copy=False)

    def layer_input(self, x: np.ndarray) -> np.ndarray:
        """An input in PyTorch's layout as the layer takes it."""
        return np.ascontiguousarray(to_layer(x, self.layout.input)) if self.layout else x

    def _loss_forward(self, x: np.ndarray, target: np.ndarray | None) -> float:
        if target is None:
            raise AdapterError(f"{self.name} is a loss layer: call forward(input, target)")
        encodings = [self.target] if self.target else ["onehot", "indices"]
        for number, encoding in enumerate(encodings):
            given = one_hot(target, x.shape[1], x.dtype) if encoding == "onehot" else target
            try:
                out = self._forward(self.layer_input(x), given, **self.flags())
            except Exception:
                if number + 1 < len(encodings):
                    continue
                raise
            self.target = encoding
            break
        loss = out[-1] if isinstance(out, tuple | list) else out
        self.prediction = out[0] if isinstance(out, tuple | list) else None
        self.computes_in = np.asarray(loss).dtype
        return float(np.asarray(loss).sum())

    def backward(self, grad_output: Any = 1.0) -> np.ndarray | None:
        if self.is_loss:
            dx = self.call_backward()
        else:
            g = np.ascontiguousarray(to_layer(grad_output, self.layout.output)) if self.layout else grad_output
            dx = self.call_backward(g)
        self.returns_input_grad = isinstance(dx, np.ndarray)
        if not self.returns_input_grad:
            return None
        if self.is_loss:
            return dx * float(grad_output)
        dx = to_torch(dx, self.layout.input) if self.layout else dx
        return dx.astype(grad_output.dtype, copy=False)

    def mismatched(self, binding: Permuted, grad: np.ndarray) -> None:
        """A gradient of another shape than its parameter's, kept as it is for a check to report."""
        self._parameters[binding.name].grad = np.array(grad)

    def to(self, dtype: np.dtype | type) -> Module:
        """Cast the layer's own arrays (parameters, their gradients, buffers) and present them again."""
        for binding in self.bindings:
            for path in (binding.value, binding.grad or self.grad_paths.get(binding.name)):
                array = get(self.layer, path) if path else None
                if isinstance(array, np.ndarray):
                    put(self.layer, path, array.astype(dtype))
        self.sync()
        for param in self.parameters():
            param.grad = None
        return self

    def describe(self) -> list[str]:
        """One line per tensor: which of the layer's attributes stood for it."""
        lines = []
        for binding in self.bindings:
            grad = ""
            if binding.kind == "parameter":
                found = self.grad_paths.get(binding.name)
                grad = "recovered from its update inside backward" if self.updates_inside else ""
                grad = f"gradient {label(found)}" if found else grad
            lines.append(binding.describe(grad))
        return lines

    def extra_repr(self) -> str:
        return f"{self.name}, layout={self.layout or 'PyTorch'}; " + "; ".join(self.describe())


def adapt(
    layer: Any,
    mapping: TensorMapping | None = None,
    layout: Layout | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    *,
    choice: int = 0,
    target: str | None = None,
    held: Sequence[str] = (),
) -> Module:
    """``layer`` as a ``lablib.nn.Module`` the checks read (a ``Module`` already is one and comes back as it is)."""
    if isinstance(layer, Module):
        return layer
    readings = candidates(layer, mapping, shapes, held=held)
    return Foreign(layer, readings[min(choice, len(readings) - 1)], layout, target=target, held=held)
