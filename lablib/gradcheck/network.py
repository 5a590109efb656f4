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
  error) is so traced to the layer whose own backward is wrong;
* where the layers, in the order the forward calls them, are one of our specs layer for layer (kind and
  shapes, a softmax cross-entropy loss at the end), the same parameters copied into the spec's PyTorch
  twin: the output, the loss and every parameter gradient against autograd.

The random state is reseeded before every forward, so dropout draws the same mask each time. A
parameter whose gradient is exactly zero where the differences find none (a bias before a
normalisation) passes and is noted; a stored quantity whose name says it is a class centre is
reported as an update rule, not a gradient; any parameter can be left out by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tabulate import tabulate

from lablib.adapter import (
    BACKWARD_NAMES,
    FORWARD_NAMES,
    WEIGHT_NAMES,
    Adapted,
    AdapterError,
    Binding,
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
from lablib.gradcheck.layer import AUTOGRAD, Comparison, compare
from lablib.gradcheck.layer import TOLERANCE as LAYER_TOLERANCE
from lablib.models.specs import MODELS, Spec, get_spec
from lablib.rng import Stream, generator

if TYPE_CHECKING:
    import torch

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
    against: str = ""  # a twin row's reference: "PyTorch twin (lab2023_cnn)"


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

    def outputs(self, x: np.ndarray | None = None) -> tuple[Any, float]:
        """What the forward returns before the loss (None if only the loss), and the loss."""
        np.random.seed(FORWARD_SEED)  # noqa: NPY002 - the student's dropout draws from it
        kwargs = {self.flag: True} if self.flag else {}
        out = call(f"Network.{self.forward_name}", self._forward, self.x if x is None else x, self.target, **kwargs)
        several = isinstance(out, tuple | list)
        loss = out[-1] if several else out
        self.dtype = np.asarray(loss).dtype
        return out[0] if several and len(out) > 1 else None, float(np.asarray(loss, np.float64).sum())

    def loss(self, x: np.ndarray | None = None) -> float:
        return self.outputs(x)[1]

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
    captured = capture_calls(layers)
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
            x, args, _ = captured[path]
            forward, backward = find_method(layer, FORWARD_NAMES)[1], find_method(layer, BACKWARD_NAMES)[1]
            if is_loss(forward, backward):
                result.rows += check_loss_alone(path, layer, x, args, rng, dtype)
            else:
                result.rows += check_alone(path, layer, x, exclude, rng, dtype, probe.built.get(id(layer)))
    check_twin(probe, layers, captured, grads, result)
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


def capture_calls(layers: Sequence[tuple[str, Any]]) -> dict[str, tuple[np.ndarray, list[Any], Any]]:
    """Record each layer's first call, in the order they come, by shadowing its forward: copies of the input
    and of what else it receives (a loss's target), and what it returns."""
    captured: dict[str, tuple[np.ndarray, list[Any], Any]] = {}
    for path, layer in layers:
        name, forward = find_method(layer, FORWARD_NAMES)
        if name == "__call__":
            continue

        def recording(x: Any, *args: Any, _path: str = path, _forward: Callable = forward, **kwargs: Any) -> Any:
            first = isinstance(x, np.ndarray) and _path not in captured
            copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in (x, *args)] if first else []
            out = _forward(x, *args, **kwargs)
            if first:
                kept = np.array(out, copy=True) if isinstance(out, np.ndarray) else out
                captured[_path] = (copies[0], copies[1:], kept)
            return out

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


def softmax_cross_entropy(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each row's cross-entropy of the softmax of ``logits``, against class indices."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(target)), target]


def loss_reduction(loss: float, logits: Any, target: np.ndarray) -> str | None:
    """``mean`` or ``sum`` when the network's loss is the softmax cross-entropy of ``logits`` so reduced."""
    if not isinstance(logits, np.ndarray) or logits.ndim != 2 or len(logits) != len(target):
        return None
    each = softmax_cross_entropy(np.asarray(logits, np.float64), target)
    for reduction, value in (("mean", each.mean()), ("sum", each.sum())):
        if abs(loss - value) <= LAYER_TOLERANCE[AUTOGRAD] * max(1.0, abs(value)):
            return reduction
    return None


def match_layers(
    spec: Spec, calls: Sequence[tuple[str, Any, np.ndarray, Any]], built: dict[int, list[Path_]]
) -> tuple[list[torch.nn.Module], list[list[Binding]]] | str:
    """The spec's PyTorch layers and, for each, which of the student's arrays stands for which of its
    parameters; or why the layers are not the spec's, layer for layer (kind, parameter shapes, output shape)."""
    import torch

    from lablib.models.torch_model import build_torch

    twin = build_torch(spec).double()
    modules = [*twin.features, *twin.classifier]
    if len(calls) != len(modules):
        return f"{len(modules)} layers, not {len(calls)}"
    bindings = []
    for (path, layer, x, out), module in zip(calls, modules, strict=True):
        kind = type(module).__name__
        expected = {name: tuple(p.shape) for name, p in module.named_parameters()}
        pairs = find_pairs(layer, built.get(id(layer)))
        try:
            readings = candidates(layer, shapes=expected, among=built.get(id(layer))) if expected else [[]]
        except AdapterError:
            readings = []
        if len(pairs) != len(expected) or not readings:
            return f"{path} is no {kind} {tuple(expected.values())}"
        try:
            with torch.no_grad():
                shape = tuple(module(torch.from_numpy(np.asarray(x, np.float64))).shape)
        except RuntimeError:
            shape = None
        if not isinstance(out, np.ndarray) or shape != out.shape:
            return f"{path} gives {getattr(out, 'shape', type(out).__name__)}, a {kind} there {shape}"
        bindings.append(readings[0])
    return modules, bindings


def like_ours(pred: Any, logits: np.ndarray) -> tuple[str, np.ndarray] | None:
    """What the network's output is (logits, probabilities, log-probabilities or class predictions) and
    ours in that form."""
    if not isinstance(pred, np.ndarray):
        return None
    if pred.shape == (len(logits),) and np.issubdtype(pred.dtype, np.integer):
        return "class predictions", logits.argmax(axis=1)
    if pred.shape != logits.shape:
        return None
    log_probs = logits - logits.max(axis=1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(axis=1, keepdims=True))
    rows = np.asarray(pred, np.float64)
    if np.all(rows >= 0) and np.allclose(rows.sum(axis=1), 1.0, atol=1e-4):
        return "probabilities", np.exp(log_probs)
    if np.allclose(np.log(np.exp(rows).sum(axis=1)), 0.0, atol=1e-4):
        return "log-probabilities", log_probs
    return "logits", logits


def twin_row(layer: str, tensor: str, against: str, c: Comparison, entries: int) -> Row:
    verdict = "ok" if c.passed else "FAIL"
    return Row(
        layer, tensor, "twin", entries, c.max_abs, c.max_rel, verdict, c.where.replace("expected", "PyTorch"), against
    )


def check_twin(
    probe: Probe,
    layers: Sequence[tuple[str, Any]],
    captured: dict[str, tuple[np.ndarray, list[Any], Any]],
    grads: dict[tuple[str, Path_], tuple[str, np.ndarray]],
    result: NetworkResult,
) -> None:
    """Where the network is one of our specs, its output, loss and parameter gradients (at the parameters
    drawn afresh) against the spec's PyTorch twin in float64; else one note that none matches."""
    import torch

    by_path = dict(layers)
    calls = [(path, by_path[path], x, out) for path, (x, _, out) in captured.items()]  # in the order they ran
    losses = [c for c in calls if is_loss(find_method(c[1], FORWARD_NAMES)[1], find_method(c[1], BACKWARD_NAMES)[1])]
    network = type(probe.network).__name__
    target = probe.target.argmax(axis=1) if probe.target.ndim == 2 else np.asarray(probe.target)
    pred, loss = probe.outputs()
    reasons = []
    if len(captured) < len(layers):
        reasons.append("the forward of " + ", ".join(p for p, _ in layers if p not in captured) + " was not seen")
    elif losses and losses != calls[-1:]:
        reasons.append(f"{losses[0][0]} is a loss layer before the last")
    else:
        calls = calls[: len(calls) - len(losses)]
        reduction = loss_reduction(loss, calls[-1][3] if calls else None, target)
        if reduction is None:
            reasons.append("its loss is not the softmax cross-entropy of its last layer's output")
    width = next((c[3].shape[1] for c in calls if isinstance(c[3], np.ndarray) and c[3].ndim == 4), 20)
    for spec_name in MODELS if not reasons else ():
        matched = match_layers(get_spec(spec_name, width), calls, probe.built)
        if isinstance(matched, str):
            reasons.append(f"{spec_name}: {matched}")
            continue
        modules, bindings = matched
        against = f"PyTorch twin ({spec_name})"
        for (_, layer, _, _), module, reading in zip(calls, modules, bindings, strict=True):
            for binding in reading:
                value = np.asarray(binding.to_torch(get(layer, binding.value)), np.float64)
                getattr(module, binding.name).data = torch.from_numpy(np.array(value, copy=True))
        model = torch.nn.Sequential(*modules).train()
        x = torch.from_numpy(np.asarray(calls[0][2], np.float64))
        logits = model(x)
        ours = torch.nn.functional.cross_entropy(logits, torch.from_numpy(target), reduction=reduction)
        ours.backward()
        shown = like_ours(pred, logits.detach().numpy())
        result.notes.append(
            f"{network} is {spec_name} layer for layer ({', '.join(type(m).__name__ for m in modules)}, softmax "
            f"cross-entropy, {reduction} over the batch): compared with its {against}"
        )
        if shown is None:
            result.notes.append(
                f"{network}.{probe.forward_name} returns no logits nor probabilities: its loss is compared"
            )
        else:
            c = compare("output", AUTOGRAD, (), np.asarray(pred), shown[1])
            result.rows.append(twin_row(network, f"output ({shown[0]})", against, c, pred.size))
        c = compare("loss", AUTOGRAD, (), np.array([loss]), np.array([float(ours.detach())]))
        result.rows.append(twin_row(network, f"loss ({reduction})", against, c, 1))
        for (path, layer, _, _), module, reading in zip(calls, modules, bindings, strict=True):
            for binding in reading:
                if (path, binding.value) not in grads:
                    continue
                tensor, grad = grads[(path, binding.value)]
                expected = getattr(module, binding.name).grad.numpy()
                c = compare(tensor, AUTOGRAD, (), binding.to_torch(grad), expected)
                result.rows.append(twin_row(layer_name(path, layer), tensor, against, c, grad.size))
        return
    result.notes.append(f"no spec of ours matches {network} ({'; '.join(reasons)}): no PyTorch twin to compare with")


def how_wrong(r: Row) -> str:
    if r.against:
        return f" against the {r.against}"
    return " through the network" if r.through == "network" else ""


def format_network(result: NetworkResult) -> str:
    """The table, the failing tensors named with where they differ, the verdict."""
    rows = [
        (
            r.layer,
            r.tensor,
            r.against or ("d sum(out*g)" if r.through == "layer" else "d loss"),
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
    lines += [f"{r.layer} {r.tensor}: wrong{how_wrong(r)}, {r.where}" for r in failing]
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
