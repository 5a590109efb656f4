"""Which of a layer's arrays are its parameters, their gradients and its running statistics, by the
conventional names.

A parameter is an array with a gradient of its shape beside it (``d_X``, ``dX``, ``grad_X``,
``X_grad``, ``X_grads``, ``delta_X``, or the same key in a ``grads`` dict) or, for a layer that
updates inside backward, an array named like a weight or a bias. Its PyTorch name comes from its own
(``weights``, ``W``, ``kernel``, ``filters``, ``gamma`` -> ``weight``; ``biases``, ``b``, ``beta`` ->
``bias``), else from its rank; running statistics (``running_mean``, ``moving_var``, ...) become the
buffers ``running_mean`` and ``running_var``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lablib.adapter.arrays import Path_, find_arrays, label
from lablib.adapter.errors import AdapterError

WEIGHT_NAMES = ("weight", "weights", "w", "kernel", "kernels", "filter", "filters", "gamma", "scale", "theta")
BIAS_NAMES = ("bias", "biases", "b", "beta", "shift", "offset")
GRAD_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (r"d_?(.+)", r"grad_?(.+)", r"grads?_(.+)", r"(.+?)_?grads?", r"delta_?(.+)", r"(.+?)_?gradients?")
)
ACTIVATION_NAMES = ("x", "input", "inputs", "inp", "xp", "x_pad", "x_padded", "out", "output", "y", "z", "a", "h")
GRAD_DICTS = ("grads", "grad", "gradients", "d_params", "dparams", "param_grads")
RUNNING = re.compile(r"running|moving|global|ema|avg|average|pop", re.IGNORECASE)
TORCH_ORDER = ("weight", "bias", "running_mean", "running_var")

Tensor = tuple[Path_, Path_ | None, str]  # the array, its gradient (None: a buffer or updated inside), its kind


@dataclass(frozen=True)
class Pair:
    """A trainable array and the array its gradient is kept in (None: the layer updates it inside backward)."""

    value: Path_
    grad: Path_ | None


def plain_name(name: str) -> str:
    """``W1`` -> ``w``, ``_weights`` -> ``weights``: a name without case, underscores and a trailing number."""
    return re.sub(r"\d+$", "", name.lower().strip("_"))


def _gradient_base(path: Path_) -> list[Path_]:
    """The paths ``path`` may be the gradient of: ``d_weights`` -> ``weights``, ``grads['W']`` -> ``*['W']``."""
    bases = []
    if len(path) == 2 and path[0].lower() in GRAD_DICTS:
        bases.append(("*", path[1]))
    for pattern in GRAD_PATTERNS:
        match = pattern.fullmatch(path[-1])
        if match and match.group(1).strip("_"):
            bases.append((*path[:-1], match.group(1).strip("_")))
    return bases


def gradient_path(
    obj: Any, value: Path_, arrays: Mapping[Path_, np.ndarray] | None = None, same_shape: bool = True
) -> Path_ | None:
    """The array beside ``value`` that holds its gradient (a gradient's name; of its shape unless not asked)."""
    arrays = find_arrays(obj) if arrays is None else arrays
    for path, array in arrays.items():
        if path == value or (same_shape and array.shape != arrays[value].shape):
            continue
        for base in _gradient_base(path):
            if (base[-1] == value[-1]) if base[0] == "*" else base == value:
                return path
    return None


def find_pairs(obj: Any, among: Sequence[Path_] | None = None) -> list[Pair]:
    """The parameters of a layer: each array with a gradient of its shape beside it, and each array named
    like a weight or a bias (its gradient may appear only once backward has run, or never, for a layer
    that updates inside backward).

    What a forward keeps for its backward is no parameter, though ``x`` may sit beside ``dx``: names of
    inputs and activations are passed over, and ``among`` (the arrays a layer held when it was built)
    narrows the search to those.
    """
    arrays = find_arrays(obj)
    pairs, grads = [], set()
    for path in arrays:
        if (among is not None and path not in among) or plain_name(path[-1]) in ACTIVATION_NAMES:
            continue
        gradient = gradient_path(obj, path, arrays)
        if gradient is not None:
            pairs.append(Pair(path, gradient))
            grads.add(gradient)
    pairs = [p for p in pairs if p.value not in grads]
    paired = {p.value for p in pairs}
    names = WEIGHT_NAMES + BIAS_NAMES
    named = [path for path in arrays if path not in paired | grads and plain_name(path[-1]) in names]
    return pairs + [Pair(path, None) for path in named if among is None or path in among]


def torch_name(pair: Pair, pairs: Sequence[Pair], arrays: Mapping[Path_, np.ndarray]) -> str:
    """``weight`` or ``bias``: from the array's name, else from its rank among the layer's parameters."""
    plain = plain_name(pair.value[-1])
    if plain in WEIGHT_NAMES:
        return "weight"
    if plain in BIAS_NAMES:
        return "bias"
    ranks = sorted({int(np.squeeze(arrays[p.value]).ndim) for p in pairs})
    return "weight" if int(np.squeeze(arrays[pair.value]).ndim) == ranks[-1] else "bias"


def find_buffers(obj: Any, pairs: Sequence[Pair]) -> dict[str, Path_]:
    """Running statistics: an array whose name says running (moving, ema, ...) and mean or variance."""
    taken = {p.value for p in pairs} | {p.grad for p in pairs}
    buffers: dict[str, Path_] = {}
    for path in find_arrays(obj):
        name = path[-1].lower()
        if path in taken or not RUNNING.search(name):
            continue
        if "mean" in name or "mu" in name:
            buffers.setdefault("running_mean", path)
        elif "var" in name or "sigma" in name:
            buffers.setdefault("running_var", path)
    return buffers


def find_tensors(layer: Any, among: Sequence[Path_] | None = None) -> dict[str, Tensor]:
    """The layer's parameters and buffers by PyTorch's name; two arrays that claim one name are an error."""
    arrays = find_arrays(layer)
    pairs = find_pairs(layer, among)
    named: dict[str, Tensor] = {}
    for pair in pairs:
        name = torch_name(pair, pairs, arrays)
        if name in named:
            raise AdapterError(
                f"{type(layer).__name__}: both {label(named[name][0])} and {label(pair.value)} look like its {name}: "
                f"say which with --param {name}=ATTRIBUTE:GRADIENT"
            )
        named[name] = (pair.value, pair.grad, "parameter")
    for name, path in find_buffers(layer, pairs).items():
        named[name] = (path, None, "buffer")
    return named


def in_torch_order(names: Sequence[str]) -> list[str]:
    """``names`` as PyTorch registers them: weight, bias, running_mean, running_var, then any other by name."""
    return sorted(names, key=lambda n: (TORCH_ORDER.index(n) if n in TORCH_ORDER else len(TORCH_ORDER), n))
