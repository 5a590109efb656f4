"""The network check: a whole template ``Network``'s backward pass against central finite differences.

The course template fixes the interface, ``forward(input, target) -> (pred, loss)`` and ``backward()``,
and leaves everything inside to the student: layers as attributes or in a list, parameters and
gradients under names of their own (found as :mod:`lablib.adapter.tensors` finds them). The check:

* draws every parameter afresh at a well-conditioned scale (:mod:`lablib.gradcheck.probe`);
* through the whole network, on a small batch: the gradient of the loss with respect to sampled
  entries of every parameter and of the input, against central differences of the loss
  (:mod:`lablib.gradcheck.sampling`);
* each layer alone, on the input it received in that pass (:mod:`lablib.gradcheck.alone`), so that
  a gradient wrong through the network is traced to the layer whose own backward is wrong;
* where the network is one of our specs layer for layer, against the spec's PyTorch twin
  (:mod:`lablib.gradcheck.network_twin`).

A parameter whose gradient is exactly zero where the differences find none (a bias before a
normalisation) passes and is noted; a stored quantity whose name says it is a class centre is
reported as an update rule, not a gradient; any parameter can be left out by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lablib.adapter.arrays import get, label
from lablib.adapter.errors import AdapterError
from lablib.adapter.methods import BACKWARD_NAMES, FORWARD_NAMES, find_method
from lablib.adapter.tensors import Pair, find_pairs, gradient_path
from lablib.gradcheck.alone import check_alone, check_loss_alone, diagnosed
from lablib.gradcheck.diagnosis import Context, wrong_shape
from lablib.gradcheck.discovery import snapshot
from lablib.gradcheck.inspection import find_layers, is_loss
from lablib.gradcheck.network_discovery import Readings, discover_network, tensor_name
from lablib.gradcheck.network_twin import Gradients, check_twin
from lablib.gradcheck.probe import Captured, Probe, capture_calls, redraw, release, start
from lablib.gradcheck.result import Check, Comparison
from lablib.gradcheck.sampling import STEP, central, compare_sampled, excluded, layer_name, sample, unmeasured
from lablib.gradcheck.shapes import TensorMapping
from lablib.rng import Stream, generator

DEFAULT_INPUTS = ((3, 784), (3, 1, 28, 28))
CENTRE_NAMES = ("center", "centre")

Param = tuple[str, Any, Pair]  # the layer's path, the layer, its parameter


def check_network(
    make_network: Callable[[], Any],
    inputs: Sequence[tuple[int, ...]] = DEFAULT_INPUTS,
    *,
    target: str | None = None,
    classes: int | None = None,
    exclude: Sequence[str] = (),
    mapping: TensorMapping | None = None,
) -> Check:
    """Every parameter's and the input's gradient through the network, then each layer's own backward; without
    ``classes``, as many classes as the network's output is wide. ``mapping`` names tensors the conventions and
    behaviour miss, by ``LAYER.NAME`` (:mod:`lablib.gradcheck.network_discovery`)."""
    rng = generator(0, Stream.GRADCHECK)
    probe, how = start(make_network, inputs, target, classes, rng)
    layers = list(find_layers(probe.network))
    if not layers:
        raise AdapterError(
            f"{type(probe.network).__name__} holds no layers (objects with forward and backward methods) as "
            "attributes or in lists"
        )
    result = Check(kind="network", notes=[f"{type(probe.network).__name__}: {len(layers)} layers, {how}"])
    before = {id(layer): snapshot(layer) for _, layer in layers}
    with np.errstate(all="ignore"):  # at the student's own scale; only to let gradients appear beside parameters
        probe.backward()
        readings = discover_network(probe, layers, before, mapping or {})
        seen = capture_calls(layers)
        probe.loss()
        release(layers)
    result.notes += [note for reading in readings.values() for note in reading.notes]
    widths = {path: x.shape[1] for path, (x, _, _) in seen.items() if x.ndim == 2}
    params = _redrawn_parameters(probe, layers, exclude, rng, result, readings, widths)
    captured = capture_calls(layers)
    probe.loss()
    release(layers)
    dtype = probe.dtype if probe.dtype in STEP else np.dtype(np.float64)
    if dtype == np.float32:
        result.notes.append(f"the loss is float32: finite differences in float32 (step {STEP[dtype]:g})")
    dx = probe.backward()
    grads = _gradients(probe, params, result)
    _check_through_network(probe, params, grads, rng, dtype, result)
    _check_input(probe, dx, rng, dtype, result)
    result.comparisons += _check_layers_alone(layers, captured, exclude, rng, dtype, probe, readings)
    check_twin(probe, layers, captured, grads, result, readings)
    return result


def _redrawn_parameters(
    probe: Probe,
    layers: Sequence[tuple[str, Any]],
    exclude: Sequence[str],
    rng: np.random.Generator,
    result: Check,
    readings: Readings,
    widths: dict[str, int],
) -> list[Param]:
    """Every layer's parameters, by name or by behaviour, each drawn afresh (a matrix at the fan-in its
    layer's input ``widths`` give); but those left out (noted) and those held (their gradient not found:
    drawn, not compared)."""
    params: list[Param] = []
    for path, layer in layers:
        reading = readings[id(layer)]
        pairs = {pair.value: pair for pair in find_pairs(layer, probe.built.get(id(layer)))}
        pairs |= {v: Pair(v, g) for name, (v, g) in reading.mapping.items() if not name.startswith("running_")}
        held = {reading.mapping[name][0] for name in reading.held}
        for pair in pairs.values():
            if excluded(path, pair.value, exclude):
                result.notes.append(f"{path}.{label(pair.value)} left out, as asked")
                continue
            redraw(get(layer, pair.value), pair.value[-1], rng, widths.get(path))
            if pair.value not in held:
                params.append((path, layer, pair))
    return params


def _gradients(probe: Probe, params: Sequence[Param], result: Check) -> Gradients:
    """Each parameter's gradient as the network's backward left it; a missing one, or one of the wrong shape,
    fails, saying so."""
    grads: Gradients = {}
    for path, layer, pair in params:
        grad_path = pair.grad or gradient_path(layer, pair.value) or gradient_path(layer, pair.value, same_shape=False)
        grad = get(layer, grad_path) if grad_path else None
        tensor = f"{label(pair.value)}" + (f" (gradient {label(grad_path)})" if grad_path else "")
        value = get(layer, pair.value)
        if not isinstance(grad, np.ndarray) or grad.shape != value.shape:
            if isinstance(grad, np.ndarray):
                where = f"gradient of shape {grad.shape}, parameter {value.shape}"
                why = wrong_shape(grad, value, Context(probe.x.shape))
            else:
                name = f"{path}.{tensor_name(layer, probe.built.get(id(layer)), pair.value)}"
                where = "no gradient beside it"
                why = (
                    f"no gradient: the backward writes no array of its shape {value.shape} (or the network's "
                    f"backward never calls this layer's); name it with --param {name}={label(pair.value)}:GRADIENT"
                )
            c = unmeasured(layer_name(path, layer), tensor, "network", where)
            c.diagnosis = why
            result.comparisons.append(c)
            continue
        grads[(path, pair.value)] = (tensor, np.array(grad, np.float64, copy=True))
    return grads


def _check_through_network(
    probe: Probe, params: Sequence[Param], grads: Gradients, rng: np.random.Generator, dtype: np.dtype, result: Check
) -> None:
    """Each parameter's gradient on sampled entries against central differences of the loss; a class centre's
    that fails is an update rule, noted as such."""
    for path, layer, pair in params:
        if (path, pair.value) not in grads:
            continue
        tensor, grad = grads[(path, pair.value)]
        indices = sample(grad.size, grad, rng)
        numeric = np.array([central(probe.loss, get(layer, pair.value), i, STEP[dtype]) for i in indices])
        analytic = grad.flat[indices]
        checked = compare_sampled(
            layer_name(path, layer), tensor, "network", analytic, numeric, dtype, (indices, grad.shape)
        )
        checked = diagnosed(checked, analytic, numeric, dtype, probe.x.shape)
        if any(word in pair.value[-1].lower() for word in CENTRE_NAMES) and checked.verdict == "FAIL":
            checked.verdict = "not a gradient"
            result.notes.append(
                f"{path}.{label(pair.value)} holds an update rule (a centre's step), not the loss's gradient"
            )
        result.comparisons.append(checked)


def _check_input(probe: Probe, dx: Any, rng: np.random.Generator, dtype: np.dtype, result: Check) -> None:
    """The input gradient the network's backward returns, if it returns one, against differences of the loss."""
    if not isinstance(dx, np.ndarray) or dx.size != probe.x.size:
        result.notes.append(f"Network.{probe.backward_name}() returns no input gradient: the input is not checked")
        return
    dx = dx.reshape(probe.x.shape)  # a network that reshapes its input returns the gradient in that shape
    indices = sample(dx.size, dx, rng)
    numeric = np.array([central(probe.loss, probe.x, i, STEP[dtype]) for i in indices])
    analytic = np.asarray(dx, np.float64).flat[indices]
    checked = compare_sampled("input", "input", "network", analytic, numeric, dtype, (indices, dx.shape))
    result.comparisons.append(diagnosed(checked, analytic, numeric, dtype, probe.x.shape))


def _check_layers_alone(
    layers: Sequence[tuple[str, Any]],
    captured: Captured,
    exclude: Sequence[str],
    rng: np.random.Generator,
    dtype: np.dtype,
    probe: Probe,
    readings: Readings,
) -> list[Comparison]:
    """Each layer whose call was seen, alone on the input it received: a loss layer's own loss, another's output."""
    checks = []
    for path, layer in layers:
        if path in captured:
            x, args, _ = captured[path]
            forward, backward = find_method(layer, FORWARD_NAMES)[1], find_method(layer, BACKWARD_NAMES)[1]
            if is_loss(forward, backward):
                checks += check_loss_alone(path, layer, x, args, rng, dtype)
            else:
                among = probe.built.get(id(layer))
                checks += check_alone(path, layer, x, exclude, rng, dtype, among, readings[id(layer)])
    return checks
