"""Each layer of a network alone, on the input it received in the network's forward: its own backward
against central differences of ``sum(output * g)`` for a random ``g`` (a loss layer's, of its loss), on
sampled entries of its input and parameters.

A gradient that is wrong through the network (every layer below a faulty backward inherits its
error) is so traced to the layer whose own backward is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lablib.adapter.arrays import Path_, get, label
from lablib.adapter.errors import AdapterError, call
from lablib.adapter.methods import BACKWARD_NAMES, FORWARD_NAMES, find_method
from lablib.gradcheck.diagnosis import Context, diagnose, wrong_shape
from lablib.gradcheck.discovery import Found
from lablib.gradcheck.foreign import Foreign
from lablib.gradcheck.probe import FORWARD_SEED
from lablib.gradcheck.result import Comparison
from lablib.gradcheck.sampling import (
    STEP,
    TOLERANCE,
    central,
    compare_sampled,
    excluded,
    layer_name,
    sample,
    unmeasured,
)
from lablib.gradcheck.shapes import Permuted, candidates

OWN = "input (its own backward)"


def diagnosed(
    c: Comparison, analytic: np.ndarray, numeric: np.ndarray, dtype: np.dtype, shape: tuple[int, ...]
) -> Comparison:
    """``c`` with, where it fails, the diagnosis of its sampled entries (``shape``: the layer's input)."""
    if not c.passed:
        c.diagnosis = diagnose(analytic, numeric, Context(shape, TOLERANCE[dtype]))
    return c


def check_loss_alone(
    path: str, layer: Any, x: np.ndarray, args: list[Any], rng: np.random.Generator, dtype: np.dtype
) -> list[Comparison]:
    """A loss layer's own backward(), on the input and target it received, against differences of its loss."""
    forward, backward = find_method(layer, FORWARD_NAMES), find_method(layer, BACKWARD_NAMES)

    def objective() -> float:
        out = call(f"{path}.{forward[0]}", forward[1], x, *args)
        return float(np.asarray(out[-1] if isinstance(out, tuple | list) else out, np.float64).sum())

    objective()
    dx = call(f"{path}.{backward[0]}", backward[1])
    if not isinstance(dx, np.ndarray) or dx.size != x.size:
        return []
    dx = np.asarray(dx, np.float64).reshape(x.shape)
    indices = sample(x.size, dx, rng)
    numeric = np.array([central(objective, x, i, STEP[dtype]) for i in indices])
    name = layer_name(path, layer)
    analytic = dx.flat[indices]
    checked = compare_sampled(name, OWN, "loss", analytic, numeric, dtype, (indices, x.shape))
    return [diagnosed(checked, analytic, numeric, dtype, x.shape)]


def check_alone(
    path: str,
    layer: Any,
    x: np.ndarray,
    exclude: Sequence[str],
    rng: np.random.Generator,
    dtype: np.dtype,
    among: Sequence[Path_] | None,
    reading: Found,
) -> list[Comparison]:
    """One layer's own backward, on the input it received in the network, against ``sum(output * g)``; its
    tensors as ``reading`` adds to their names (a parameter without a gradient found is not compared)."""
    try:
        bindings = candidates(layer, reading.mapping, among=among, held=reading.ungraded)[0]
        module = Foreign(layer, bindings, held=reading.ungraded)
    except AdapterError:
        return []
    if module.updates_inside:
        return []
    module.double() if x.dtype == np.float64 else module.float()

    def objective() -> float:
        np.random.seed(FORWARD_SEED)  # noqa: NPY002 - the student's dropout draws from it
        return float(np.sum(np.asarray(module.forward(x), np.float64) * g))

    np.random.seed(FORWARD_SEED)  # noqa: NPY002 - the student's dropout draws from it
    y = call(f"{path}.forward", module.forward, x)
    g = rng.standard_normal(y.shape)
    dx = call(f"{path}.backward", module.backward, g.astype(y.dtype))
    name = layer_name(path, layer)
    checks = []
    if isinstance(dx, np.ndarray) and dx.shape == x.shape:
        indices = sample(x.size, dx, rng)
        numeric = np.array([central(objective, x, i, STEP[dtype]) for i in indices])
        analytic = np.asarray(dx, np.float64).flat[indices]
        checked = compare_sampled(name, OWN, "layer", analytic, numeric, dtype, (indices, x.shape))
        checks.append(diagnosed(checked, analytic, numeric, dtype, x.shape))
    for binding in module.bindings:
        if binding.kind == "parameter" and not excluded(path, binding.value, exclude):
            checks.append(_parameter_alone(module, binding, name, objective, rng, dtype, x.shape))
    return checks


def _parameter_alone(
    module: Foreign,
    binding: Permuted,
    name: str,
    objective: Callable[[], float],
    rng: np.random.Generator,
    dtype: np.dtype,
    input_shape: tuple[int, ...],
) -> Comparison:
    """The gradient of one parameter that the layer's own backward left, against differences of ``objective``."""
    tensor = f"{label(binding.value)} (its own backward)"
    grad = getattr(module, binding.name).grad
    if grad.shape != binding.shape:
        c = unmeasured(name, tensor, "layer", f"gradient of shape {grad.shape}, parameter {binding.stored}")
        c.diagnosis = wrong_shape(grad, np.empty(binding.stored), Context(input_shape))
        return c
    grad = binding.to_layer(grad).astype(np.float64)
    indices = sample(grad.size, grad, rng)
    numeric = np.array([central(objective, get(module.layer, binding.value), i, STEP[dtype]) for i in indices])
    checked = compare_sampled(name, tensor, "layer", grad.flat[indices], numeric, dtype, (indices, grad.shape))
    return diagnosed(checked, grad.flat[indices], numeric, dtype, input_shape)
