"""A layer's arrays read as its PyTorch twin's tensors: size-1 axes dropped or added, axes permuted.

With ``shapes`` (PyTorch's shape of each name, e.g. the twin's ``state_dict``), each array is
presented in that shape: a transposed weight, ``(K, K, C_in, C_out)`` kernels, ``gamma`` of shape
``(1, C, 1, 1)``. Where several permutations fit (a square weight), :func:`candidates` lists every
reading, the usual first; the checker tries them in turn. Each presented array is a view of the
layer's own, so an update in place is the layer's update.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lablib.adapter.arrays import Path_, get, label
from lablib.adapter.binding import Binding, squeezed
from lablib.adapter.errors import AdapterError
from lablib.adapter.tensors import find_tensors, in_torch_order

PERMUTATIONS_FIRST = {2: [(0, 1), (1, 0)], 4: [(0, 1, 2, 3), (3, 2, 0, 1), (0, 3, 1, 2), (3, 0, 1, 2)]}
MAX_CANDIDATES = 16

TensorMapping = Mapping[str, tuple[Path_, Path_ | None]]  # PyTorch's name -> the array and its gradient, as given


def permutations(stored: tuple[int, ...], target: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every order of ``stored``'s non-unit axes that gives ``target``'s non-unit axes, the usual ones first."""
    source, goal = squeezed(stored), squeezed(target)
    if sorted(source) != sorted(goal):
        return []
    usual = PERMUTATIONS_FIRST.get(len(source), [tuple(range(len(source)))])
    every = [*usual, *(p for p in itertools.permutations(range(len(source))) if p not in usual)]
    return [p for p in every if tuple(source[i] for i in p) == goal]


@dataclass(frozen=True)
class Permuted(Binding):
    """A binding whose array is presented in PyTorch's shape: its non-unit axes read in the order ``perm``."""

    perm: tuple[int, ...]  # the stored non-unit axes, in PyTorch's order

    def to_torch(self, array: np.ndarray) -> np.ndarray:
        """The layer's array in PyTorch's shape: a view where NumPy allows one."""
        return array.reshape(squeezed(self.stored)).transpose(self.perm).reshape(self.shape)

    def to_layer(self, array: np.ndarray) -> np.ndarray:
        """An array in PyTorch's shape as the layer stores it."""
        source = squeezed(self.stored)
        return array.reshape(tuple(source[i] for i in self.perm)).transpose(np.argsort(self.perm)).reshape(self.stored)

    def describe(self, grad: str = "") -> str:
        """``weight = weights (gradient d_weights), stored (5, 3) read with axes (1, 0) as (3, 5)``."""
        grad = f"gradient {label(self.grad)}" if self.grad else grad
        how = f"stored {self.stored}" if self.stored != self.shape else f"{self.shape}"
        if self.perm != tuple(range(len(self.perm))):
            how += f" read with axes {self.perm}"
        if self.stored != self.shape:
            how += f" as {self.shape}"
        return f"{self.name} = {label(self.value)}" + (f" ({grad})" if grad else "") + f", {how}"


def candidates(
    layer: Any,
    mapping: TensorMapping | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    among: Sequence[Path_] | None = None,
    held: Sequence[str] = (),
) -> list[list[Permuted]]:
    """Every reading of the layer's arrays as PyTorch's tensors, the likeliest first (several for square shapes).

    ``mapping`` overrides what the names say; ``among`` narrows the search to the arrays a layer held when
    it was built; the parameters ``held`` (no gradient found) are read as buffers: held, not differentiated.
    """
    named = find_tensors(layer, among)
    for name, (value, grad) in (mapping or {}).items():
        for other in [n for n, (v, _, _) in named.items() if v == value and n != name]:
            del named[other]
        kind = "buffer" if name.startswith("running_") else "parameter"
        named[name] = (value, grad, kind)
    for name in held:
        if name in named:
            named[name] = (named[name][0], None, "buffer")
    shapes = {name: tuple(shape) for name, shape in (shapes or {}).items()}
    if shapes:
        named = {name: item for name, item in named.items() if name in shapes}
    options: list[list[Permuted]] = []
    for name in in_torch_order(list(named)):
        value, grad, kind = named[name]
        array = get(layer, value)
        if not isinstance(array, np.ndarray):
            raise AdapterError(f"{type(layer).__name__} has no array {label(value)} (given for {name})")
        if grad is not None and not isinstance(get(layer, grad), np.ndarray | type(None)):
            raise AdapterError(f"{type(layer).__name__}.{label(grad)} is not an array (given as {name}'s gradient)")
        target = shapes.get(name, squeezed(array.shape) or (1,))
        perms = permutations(array.shape, target)
        if not perms:
            raise AdapterError(
                f"{type(layer).__name__}.{label(value)} has shape {array.shape}, which no reordering makes "
                f"{name}'s shape {target}: check the constructor's arguments, or map it with --param"
            )
        options.append([Permuted(name, value, grad, kind, array.shape, target, p) for p in perms])
    return [list(choice) for choice in itertools.islice(itertools.product(*options), MAX_CANDIDATES)]
