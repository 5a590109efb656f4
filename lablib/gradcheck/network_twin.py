"""A network against the PyTorch twin of one of our specs, where it is that spec layer for layer.

Where the layers, in the order the forward calls them, are one of our specs layer for layer (kind and
shapes, a softmax cross-entropy loss at the end), the same parameters are copied into the spec's
PyTorch twin: the output, the loss and every parameter gradient against autograd, in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lablib.adapter.arrays import Path_, get
from lablib.adapter.errors import AdapterError
from lablib.adapter.methods import BACKWARD_NAMES, FORWARD_NAMES, find_method
from lablib.adapter.tensors import find_pairs
from lablib.gradcheck.compare import AUTOGRAD, TOLERANCE, compare
from lablib.gradcheck.diagnosis import FORWARD_DIFFERS
from lablib.gradcheck.inspection import is_loss
from lablib.gradcheck.network_discovery import Readings
from lablib.gradcheck.probe import Captured, Probe
from lablib.gradcheck.result import Check, Comparison
from lablib.gradcheck.sampling import layer_name
from lablib.gradcheck.shapes import Permuted, candidates
from lablib.models.specs import MODELS, Spec, get_spec
from lablib.nn.functional import log_softmax

if TYPE_CHECKING:
    import torch

Call = tuple[str, Any, np.ndarray, Any]  # a layer's path, the layer, its input, its output
Gradients = dict[tuple[str, Path_], tuple[str, np.ndarray]]  # by layer path and array: the tensor's label, its gradient


def loss_reduction(loss: float, logits: Any, target: np.ndarray) -> str | None:
    """``mean`` or ``sum`` when the network's loss is the softmax cross-entropy of ``logits`` so reduced."""
    if not isinstance(logits, np.ndarray) or logits.ndim != 2 or len(logits) != len(target):
        return None
    each = -log_softmax(np.asarray(logits, np.float64))[np.arange(len(target)), target]
    for reduction, value in (("mean", each.mean()), ("sum", each.sum())):
        if abs(loss - value) <= TOLERANCE[AUTOGRAD] * max(1.0, abs(value)):
            return reduction
    return None


def match_layers(
    spec: Spec, calls: Sequence[Call], built: dict[int, list[Path_]], readings: Readings
) -> tuple[list[torch.nn.Module], list[list[Permuted]]] | str:
    """The spec's PyTorch layers and, for each, which of the student's arrays stands for which of its
    parameters (by name, else as ``readings`` found them); or why the layers are not the spec's, layer for
    layer (kind, parameter shapes, output shape)."""
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
        among, found = built.get(id(layer)), readings[id(layer)]
        params = {pair.value for pair in find_pairs(layer, among)}
        params |= {value for name, (value, _) in found.mapping.items() if not name.startswith("running_")}
        try:
            options = candidates(layer, found.mapping, expected, among, found.ungraded) if expected else [[]]
        except AdapterError:
            options = []
        if len(params) != len(expected) or not options:
            return f"{path} is no {kind} {tuple(expected.values())}"
        try:
            with torch.no_grad():
                shape = tuple(module(torch.from_numpy(np.asarray(x, np.float64))).shape)
        except RuntimeError:
            shape = None
        if not isinstance(out, np.ndarray) or shape != out.shape:
            return f"{path} gives {getattr(out, 'shape', type(out).__name__)}, a {kind} there {shape}"
        bindings.append(options[0])
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
    log_probs = log_softmax(logits)
    rows = np.asarray(pred, np.float64)
    if np.all(rows >= 0) and np.allclose(rows.sum(axis=1), 1.0, atol=1e-4):
        return "probabilities", np.exp(log_probs)
    if np.allclose(np.log(np.exp(rows).sum(axis=1)), 0.0, atol=1e-4):
        return "log-probabilities", log_probs
    return "logits", logits


def from_twin(layer: str, tensor: str, against: str, c: Comparison, entries: int) -> Comparison:
    """A comparison with the twin, as the network's table shows it."""
    where = c.where.replace("expected", "PyTorch")
    return Comparison(
        tensor,
        against,
        c.max_abs,
        c.max_rel,
        c.verdict,
        where,
        c.diagnosis,
        layer=layer,
        through="twin",
        entries=entries,
    )


def spec_shaped(
    layers: Sequence[tuple[str, Any]], captured: Captured, loss: float, target: np.ndarray
) -> tuple[list[Call], str | None, list[str]]:
    """The layers' calls in the order they ran (a loss layer at the end left out), the loss's reduction, and
    why the network cannot be a spec of ours (none where it may be)."""
    by_path = dict(layers)
    calls = [(path, by_path[path], x, out) for path, (x, _, out) in captured.items()]  # in the order they ran
    losses = [c for c in calls if is_loss(find_method(c[1], FORWARD_NAMES)[1], find_method(c[1], BACKWARD_NAMES)[1])]
    if len(captured) < len(layers):
        return calls, None, ["the forward of " + ", ".join(p for p, _ in layers if p not in captured) + " was not seen"]
    if losses and losses != calls[-1:]:
        return calls, None, [f"{losses[0][0]} is a loss layer before the last"]
    calls = calls[: len(calls) - len(losses)]
    reduction = loss_reduction(loss, calls[-1][3] if calls else None, target)
    if reduction is None:
        return calls, None, ["its loss is not the softmax cross-entropy of its last layer's output"]
    return calls, reduction, []


def check_twin(
    probe: Probe,
    layers: Sequence[tuple[str, Any]],
    captured: Captured,
    grads: Gradients,
    result: Check,
    readings: Readings,
) -> None:
    """Where the network is one of our specs, its output, loss and parameter gradients (at the parameters
    drawn afresh) against the spec's PyTorch twin in float64; else one note that none matches."""
    network = type(probe.network).__name__
    target = probe.target.argmax(axis=1) if probe.target.ndim == 2 else np.asarray(probe.target)
    pred, loss = probe.outputs()
    calls, reduction, reasons = spec_shaped(layers, captured, loss, target)
    width = next((c[3].shape[1] for c in calls if isinstance(c[3], np.ndarray) and c[3].ndim == 4), 20)
    for spec_name in MODELS if not reasons else ():
        matched = match_layers(get_spec(spec_name, width), calls, probe.built, readings)
        if isinstance(matched, str):
            reasons.append(f"{spec_name}: {matched}")
            continue
        _compare_with_twin(spec_name, *matched, calls, probe, (pred, loss, target), reduction, grads, result)
        return
    result.notes.append(f"no spec of ours matches {network} ({'; '.join(reasons)}): no PyTorch twin to compare with")


def _compare_with_twin(
    spec_name: str,
    modules: list[torch.nn.Module],
    bindings: list[list[Permuted]],
    calls: Sequence[Call],
    probe: Probe,
    outcome: tuple[Any, float, np.ndarray],
    reduction: str,
    grads: Gradients,
    result: Check,
) -> None:
    """The network's parameters copied into the spec's twin: its output (``outcome``: the prediction, the
    loss, the class indices), loss and parameter gradients against the twin's."""
    import torch

    pred, loss, target = outcome
    network, against = type(probe.network).__name__, f"PyTorch twin ({spec_name})"
    for (_, layer, _, _), module, reading in zip(calls, modules, bindings, strict=True):
        for binding in reading:
            value = np.asarray(binding.to_torch(get(layer, binding.value)), np.float64)
            getattr(module, binding.name).data = torch.from_numpy(np.array(value, copy=True))
    logits = torch.nn.Sequential(*modules).train()(torch.from_numpy(np.asarray(calls[0][2], np.float64)))
    ours = torch.nn.functional.cross_entropy(logits, torch.from_numpy(target), reduction=reduction)
    ours.backward()
    shown = like_ours(pred, logits.detach().numpy())
    result.notes.append(
        f"{network} is {spec_name} layer for layer ({', '.join(type(m).__name__ for m in modules)}, softmax "
        f"cross-entropy, {reduction} over the batch): compared with its {against}"
    )
    forward = []
    if shown is None:
        result.notes.append(f"{network}.{probe.forward_name} returns no logits nor probabilities: its loss is compared")
    else:
        c = compare("output", AUTOGRAD, probe.x.shape, np.asarray(pred), shown[1])
        forward.append(from_twin(network, f"output ({shown[0]})", against, c, pred.size))
    c = compare("loss", AUTOGRAD, probe.x.shape, np.array([loss]), np.array([float(ours.detach())]))
    forward.append(from_twin(network, f"loss ({reduction})", against, c, 1))
    result.comparisons += forward
    if not all(c.passed for c in forward):  # gradients of another function than the twin's: not judged by it
        for c in forward:
            c.diagnosis = c.diagnosis if c.passed else f"another function than the twin's: {FORWARD_DIFFERS}"
        result.notes.append(
            f"{network}'s forward differs from its {against}: the gradients are not compared with the twin's "
            "(finite differences judge them against your forward)"
        )
        return
    for (path, layer, _, _), module, reading in zip(calls, modules, bindings, strict=True):
        for binding in (b for b in reading if (path, b.value) in grads):
            tensor, grad = grads[(path, binding.value)]
            expected = getattr(module, binding.name).grad.numpy()
            c = compare(tensor, AUTOGRAD, probe.x.shape, binding.to_torch(grad), expected)
            result.comparisons.append(from_twin(layer_name(path, layer), tensor, against, c, grad.size))
