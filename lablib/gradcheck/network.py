"""The network check: a whole template ``Network``'s backward pass against central finite differences.

The course template fixes the interface, ``forward(input, target) -> (pred, loss)`` and ``backward()``,
and leaves everything inside to the student: layers as attributes or in a list, parameters and
gradients under names of their own (found as :mod:`lablib.adapter` finds them). The check:

* draws every parameter afresh at a well-conditioned scale (weights ``N(0, 1/fan_in)``, biases
  small, scales near 1): students initialise with unscaled ``np.random.randn``, which saturates the
  softmax and leaves finite differences nothing to measure;
* through the whole network, on a small batch: the gradient of the loss with respect to sampled
  entries of every parameter and of the input, against central differences of the loss;
* each layer alone, on the input it received in that pass: its backward against central differences
  of ``sum(output * g)`` for a random ``g``, on sampled entries of its input and parameters. A
  gradient that is wrong through the network (every layer below a faulty backward inherits its
  error) is so traced to the layer whose own backward is wrong.

The random state is reseeded before every forward, so dropout draws the same mask each time. A
parameter whose gradient is exactly zero where the differences find none (a bias before a
normalisation) passes and is noted; a stored quantity whose name says it is a class centre is
reported as an update rule, not a gradient; any parameter can be left out by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tabulate import tabulate

from lablib.adapter import (
    BACKWARD_NAMES,
    FORWARD_NAMES,
    WEIGHT_NAMES,
    Adapted,
    AdapterError,
    Pair,
    Path_,
    candidates,
    find_arrays,
    find_layers,
    find_method,
    find_pairs,
    get,
    gradient_path,
    is_loss,
    label,
    one_hot,
    plain_name,
    training_flag,
)
from lablib.rng import Stream, generator

STEP = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-2}
TOLERANCE = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 5e-2}
SCALE_FLOOR = 1e-3  # errors count against the gradient's magnitude, but never one below this
ENTRIES = 6  # sampled entries of each tensor, besides its largest gradient
FORWARD_SEED = 0  # np.random is reseeded with it before every forward: the same dropout mask each time
DEFAULT_INPUTS = ((3, 784), (3, 1, 28, 28))
CENTRE_NAMES = ("center", "centre")


class NetworkError(AdapterError):
    """The network cannot be checked as it is; the message says what is missing."""


@dataclass
class Row:
    """One tensor's gradient on sampled entries, against central differences."""

    layer: str
    tensor: str
    through: str  # "network" (d loss), "layer" (its own backward, d sum(output * g)) or "loss" (a loss layer's own)
    entries: int
    max_abs: float
    max_rel: float
    verdict: str  # ok, FAIL, zero, not a gradient
    where: str = ""


@dataclass
class NetworkResult:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(row.verdict != "FAIL" for row in self.rows)

    def worst(self) -> Row | None:
        """The failing row to name first: a layer's own backward before what the network inherits from it."""
        failing = [row for row in self.rows if row.verdict == "FAIL"]
        own = [row for row in failing if row.through != "network"]
        pool = own or failing or self.rows
        return max(pool, key=lambda row: np.inf if np.isnan(row.max_rel) else row.max_rel) if pool else None


def call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as error:  # the student's code: any failure becomes one line
        first = str(error).splitlines()[0] if str(error) else ""
        raise NetworkError(f"{what} failed: {type(error).__name__}: {first}") from error


def fan_in(shape: tuple[int, ...]) -> int:
    """The inputs each output of a weight of this shape sums: its size over its output axis."""
    if len(shape) == 4:
        out = shape[0] if shape[2] == shape[3] else shape[-1]
        return max(1, int(np.prod(shape)) // out)
    return max(1, min(shape)) if len(shape) == 2 else max(1, int(np.prod(shape[1:])))


def redraw(array: np.ndarray, name: str, rng: np.random.Generator) -> None:
    """A parameter drawn afresh at a well-conditioned scale, in place, keeping its dtype."""
    plain, squeezed = plain_name(name), tuple(s for s in array.shape if s != 1)
    if len(squeezed) >= 2 and plain not in ("gamma", "beta", "scale", "shift"):
        array[...] = rng.standard_normal(array.shape) / np.sqrt(fan_in(squeezed))
    elif plain in ("gamma", "scale") or (plain in WEIGHT_NAMES and len(squeezed) <= 1):
        array[...] = rng.uniform(0.5, 1.5, array.shape)
    else:
        array[...] = rng.uniform(-0.1, 0.1, array.shape)


class Probe:
    """The network's forward and backward, called as the template defines them, with a fixed target."""

    def __init__(self, network: Any, x: np.ndarray, target: np.ndarray, encoding: str, classes: int) -> None:
        forward, backward = find_method(network, FORWARD_NAMES), find_method(network, BACKWARD_NAMES)
        if forward is None or backward is None:
            raise NetworkError(
                f"{type(network).__name__} has no {'forward' if forward is None else 'backward'} method: "
                "the template's Network has forward(input, target) and backward()"
            )
        if not is_loss(forward[1], backward[1]):
            raise NetworkError(
                f"{type(network).__name__}.{forward[0]} does not take (input, target) with {backward[0]}() "
                "taking nothing: check it as a layer, without --network"
            )
        self.network, self.forward_name, self._forward = network, forward[0], forward[1]
        self.backward_name, self._backward = backward
        self.flag = training_flag(self._forward)
        self.x = x
        self.target = one_hot(target, classes, x.dtype) if encoding == "onehot" else target
        self.built: dict[int, list[Path_]] = {}  # each layer's arrays as built: its parameters, not its caches

    def loss(self, x: np.ndarray | None = None) -> float:
        np.random.seed(FORWARD_SEED)  # noqa: NPY002 - the student's dropout draws from it
        kwargs = {self.flag: True} if self.flag else {}
        out = call(f"Network.{self.forward_name}", self._forward, self.x if x is None else x, self.target, **kwargs)
        loss = out[-1] if isinstance(out, tuple | list) else out
        self.dtype = np.asarray(loss).dtype
        return float(np.asarray(loss, np.float64).sum())

    def backward(self) -> Any:
        return call(f"Network.{self.backward_name}", self._backward)


def start(
    make_network: Callable[[], Any],
    inputs: Sequence[tuple[int, ...]],
    target: str | None,
    classes: int,
    rng: np.random.Generator,
) -> tuple[Probe, str]:
    """The network on the first input shape and target encoding its forward takes."""
    errors = []
    for shape in inputs:
        for encoding in [target] if target else ["onehot", "indices"]:
            network = call("Network()", make_network)
            built = {id(layer): list(find_arrays(layer)) for _, layer in find_layers(network)}
            x = rng.standard_normal(shape)
            labels = np.arange(shape[0]) % classes
            probe = Probe(network, x, labels, encoding, classes)
            probe.built = built
            try:
                probe.loss()
            except NetworkError as error:
                errors.append(f"input {shape} with {encoding} targets: {error}")
                continue
            return probe, f"input {shape}, targets as {'one-hot rows' if encoding == 'onehot' else 'class indices'}"
    raise NetworkError("; ".join(errors))


def sample(size: int, grad: np.ndarray, rng: np.random.Generator) -> list[int]:
    """A few flat indices: random ones and the entry of the largest gradient."""
    chosen = set(rng.choice(size, min(size, ENTRIES), replace=False).tolist())
    chosen.add(int(np.argmax(np.abs(grad))))
    return sorted(chosen)


def central(f: Callable[[], float], array: np.ndarray, index: int, h: float) -> float:
    original = array.flat[index]
    array.flat[index] = original + h
    plus = f()
    array.flat[index] = original - h
    minus = f()
    array.flat[index] = original
    return (plus - minus) / (2 * h)


def row(
    layer: str,
    tensor: str,
    through: str,
    analytic: np.ndarray,
    numeric: np.ndarray,
    dtype: np.dtype,
    where_in: tuple[list[int], tuple[int, ...]],
) -> Row:
    """The sampled entries of one gradient against their differences; ``where_in``: their flat indices, the shape."""
    error = np.abs(analytic - numeric)
    scale = max(float(np.abs(numeric).max()), float(np.abs(analytic).max()), SCALE_FLOOR)
    worst = int(np.argmax(error))
    index = tuple(int(i) for i in np.unravel_index(where_in[0][worst], where_in[1]))
    where = f"at index {index}: yours {analytic[worst]:.6g}, finite differences {numeric[worst]:.6g}"
    max_abs = float(error.max())
    verdict = "ok" if max_abs <= TOLERANCE[dtype] * scale else "FAIL"
    if verdict == "ok" and not np.any(analytic) and through == "network":
        verdict = "zero"
    return Row(layer, tensor, through, len(analytic), max_abs, max_abs / scale, verdict, where)


def layer_name(path: str, layer: Any) -> str:
    return f"{path} ({type(layer).__name__})"


def excluded(path: str, value: Path_, exclude: Sequence[str]) -> bool:
    return any(name in (value[-1], label(value), f"{path}.{label(value)}", path) for name in exclude)


def check_network(
    make_network: Callable[[], Any],
    inputs: Sequence[tuple[int, ...]] = DEFAULT_INPUTS,
    *,
    target: str | None = None,
    classes: int = 10,
    exclude: Sequence[str] = (),
) -> NetworkResult:
    """Every parameter's and the input's gradient through the network, then each layer's own backward."""
    rng = generator(0, Stream.GRADCHECK)
    probe, how = start(make_network, inputs, target, classes, rng)
    network = probe.network
    layers = list(find_layers(network))
    if not layers:
        raise NetworkError(
            f"{type(network).__name__} holds no layers (objects with forward and backward methods) as attributes "
            "or in lists"
        )
    result = NetworkResult(notes=[f"{type(network).__name__}: {len(layers)} layers, {how}"])
    with np.errstate(all="ignore"):  # at the student's own scale; only to let gradients appear beside parameters
        probe.backward()
    params: list[tuple[str, Any, Pair]] = []
    for path, layer in layers:
        for pair in find_pairs(layer, probe.built.get(id(layer))):
            if excluded(path, pair.value, exclude):
                result.notes.append(f"{path}.{label(pair.value)} left out, as asked")
                continue
            params.append((path, layer, pair))
            redraw(get(layer, pair.value), pair.value[-1], rng)
    captured = capture_inputs(layers)
    probe.loss()
    release(layers)
    dtype = probe.dtype if probe.dtype in STEP else np.dtype(np.float64)
    if dtype == np.float32:
        result.notes.append(f"the loss is float32: finite differences in float32 (step {STEP[dtype]:g})")
    dx = probe.backward()
    grads = {}
    for path, layer, pair in params:
        grad_path = pair.grad or gradient_path(layer, pair.value) or gradient_path(layer, pair.value, same_shape=False)
        grad = get(layer, grad_path) if grad_path else None
        tensor = f"{label(pair.value)}" + (f" (gradient {label(grad_path)})" if grad_path else "")
        shape = get(layer, pair.value).shape
        if not isinstance(grad, np.ndarray) or grad.shape != shape:
            where = (
                f"gradient of shape {grad.shape}, parameter {shape}" if grad is not None else "no gradient beside it"
            )
            result.rows.append(Row(layer_name(path, layer), tensor, "network", 0, np.nan, np.nan, "FAIL", where))
            continue
        grads[(path, pair.value)] = (tensor, np.array(grad, np.float64, copy=True))
    for path, layer, pair in params:
        if (path, pair.value) not in grads:
            continue
        tensor, grad = grads[(path, pair.value)]
        indices = sample(grad.size, grad, rng)
        numeric = np.array([central(probe.loss, get(layer, pair.value), i, STEP[dtype]) for i in indices])
        checked = row(
            layer_name(path, layer), tensor, "network", grad.flat[indices], numeric, dtype, (indices, grad.shape)
        )
        if any(word in pair.value[-1].lower() for word in CENTRE_NAMES) and checked.verdict == "FAIL":
            checked.verdict = "not a gradient"
            result.notes.append(
                f"{path}.{label(pair.value)} holds an update rule (a centre's step), not the loss's gradient"
            )
        result.rows.append(checked)
    if isinstance(dx, np.ndarray) and dx.size == probe.x.size:
        dx = dx.reshape(probe.x.shape)  # a network that reshapes its input returns the gradient in that shape
        indices = sample(dx.size, dx, rng)
        numeric = np.array([central(probe.loss, probe.x, i, STEP[dtype]) for i in indices])
        analytic = np.asarray(dx, np.float64).flat[indices]
        result.rows.append(row("input", "input", "network", analytic, numeric, dtype, (indices, dx.shape)))
    else:
        result.notes.append(f"Network.{probe.backward_name}() returns no input gradient: the input is not checked")
    for path, layer in layers:
        if path in captured:
            x, args = captured[path]
            forward, backward = find_method(layer, FORWARD_NAMES)[1], find_method(layer, BACKWARD_NAMES)[1]
            if is_loss(forward, backward):
                result.rows += check_loss_alone(path, layer, x, args, rng, dtype)
            else:
                result.rows += check_alone(path, layer, x, exclude, rng, dtype, probe.built.get(id(layer)))
    return result


def check_loss_alone(
    path: str, layer: Any, x: np.ndarray, args: list[Any], rng: np.random.Generator, dtype: np.dtype
) -> list[Row]:
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
    return [row(name, "input (its own backward)", "loss", dx.flat[indices], numeric, dtype, (indices, x.shape))]


def capture_inputs(layers: Sequence[tuple[str, Any]]) -> dict[str, tuple[np.ndarray, list[Any]]]:
    """Record what each layer's forward receives (copies: the input, a loss's target), by shadowing its forward."""
    captured: dict[str, tuple[np.ndarray, list[Any]]] = {}
    for path, layer in layers:
        name, forward = find_method(layer, FORWARD_NAMES)
        if name == "__call__":
            continue

        def recording(x: Any, *args: Any, _path: str = path, _forward: Callable = forward, **kwargs: Any) -> Any:
            if isinstance(x, np.ndarray):
                copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
                captured.setdefault(_path, (np.array(x, copy=True), copies))
            return _forward(x, *args, **kwargs)

        recording.__signature__ = inspect.signature(forward)  # type: ignore[attr-defined]
        setattr(layer, name, recording)
    return captured


def release(layers: Sequence[tuple[str, Any]]) -> None:
    for _, layer in layers:
        for name in FORWARD_NAMES:
            if name in vars(layer):
                delattr(layer, name)


def check_alone(
    path: str,
    layer: Any,
    x: np.ndarray,
    exclude: Sequence[str],
    rng: np.random.Generator,
    dtype: np.dtype,
    among: Sequence[Path_] | None,
) -> list[Row]:
    """One layer's own backward, on the input it received in the network, against ``sum(output * g)``."""
    try:
        readings = candidates(layer, among=among)
        module = Adapted(layer, readings[0])
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
    rows = []
    if isinstance(dx, np.ndarray) and dx.shape == x.shape:
        indices = sample(x.size, dx, rng)
        numeric = np.array([central(objective, x, i, STEP[dtype]) for i in indices])
        rows.append(
            row(
                name,
                "input (its own backward)",
                "layer",
                np.asarray(dx, np.float64).flat[indices],
                numeric,
                dtype,
                (indices, x.shape),
            )
        )
    for binding in module.bindings:
        if binding.kind != "parameter" or excluded(path, binding.value, exclude):
            continue
        grad = module._parameters[binding.name].grad
        if grad.shape != binding.shape:
            where = f"gradient of shape {grad.shape}, parameter {binding.stored}"
            rows.append(
                Row(name, f"{label(binding.value)} (its own backward)", "layer", 0, np.nan, np.nan, "FAIL", where)
            )
            continue
        grad = binding.to_layer(grad).astype(np.float64)
        indices = sample(grad.size, grad, rng)
        numeric = np.array([central(objective, get(layer, binding.value), i, STEP[dtype]) for i in indices])
        rows.append(
            row(
                name,
                f"{label(binding.value)} (its own backward)",
                "layer",
                grad.flat[indices],
                numeric,
                dtype,
                (indices, grad.shape),
            )
        )
    return rows


def format_network(result: NetworkResult) -> str:
    """The table, the failing tensors named with where they differ, the verdict."""
    rows = [
        (
            r.layer,
            r.tensor,
            "d sum(out*g)" if r.through == "layer" else "d loss",
            r.entries,
            "-" if np.isnan(r.max_abs) else f"{r.max_abs:.2e}",
            "-" if np.isnan(r.max_rel) else f"{r.max_rel:.2e}",
            r.verdict,
        )
        for r in result.rows
    ]
    headers = ["layer", "tensor", "gradient of", "entries", "max abs error", "max rel error", "verdict"]
    table = tabulate(rows, headers=headers, disable_numparse=True)
    failing = [r for r in result.rows if r.verdict == "FAIL"]
    lines = [*result.notes, "", table]
    lines += [
        f"{r.layer} {r.tensor}: wrong{' through the network' * (r.through == 'network')}, {r.where}" for r in failing
    ]
    zero = [r for r in result.rows if r.verdict == "zero"]
    lines += [
        f"{r.layer} {r.tensor}: exactly zero, as the differences find (a bias before a normalisation)" for r in zero
    ]
    worst = result.worst()
    if failing and worst is not None:
        lines.append(f"FAIL: {len(failing)} of {len(rows)} checks failed; look first at {worst.layer} {worst.tensor}")
    else:
        lines.append(f"ok: all {len(rows)} checks passed")
    return "\n".join(lines)
