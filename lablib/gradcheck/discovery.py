"""What the naming conventions missed, found by probing a layer once: its gradients and running statistics.

The conventions (:mod:`lablib.adapter.tensors`) come first; this reads behaviour where they found nothing.
A parameter's gradient is the one array its backward writes (new, or with new values) of the
parameter's stored shape, else of its size (a gradient of the wrong shape, which a check then reports).
A running statistic is an array the layer held when built, that no convention reads and that a
training-mode forward moves: it is the twin's buffer of its shape whose batch statistic it moves toward.
The probing input has negative channel means and variances above 4, so a mean moves down and a variance
up. What is still unmatched never blocks a check: a parameter without a gradient is held (drawn and
copied into the twin like the others, its gradient not compared), a twin's buffer without an array is
left out, and a note names each with the ``--param`` that would compare it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from lablib.adapter.arrays import Path_, find_arrays, label
from lablib.adapter.binding import squeezed
from lablib.adapter.methods import BACKWARD_NAMES, find_method
from lablib.adapter.tensors import gradient_path
from lablib.gradcheck.build import Options, torch_input_shape, twin_shapes
from lablib.gradcheck.foreign import Foreign, adapt
from lablib.gradcheck.inspection import is_layer
from lablib.gradcheck.shapes import TensorMapping
from lablib.rng import Stream, generator

if TYPE_CHECKING:
    import torch

ALIGNED = 0.99  # the least cosine between a statistic's change and the way the twin's batch statistic lies
PROBE_DRAW = 99  # the draw of the probing input and gradient, apart from the checks' own

Arrays = dict[Path_, np.ndarray]


@dataclass
class Found:
    """What behaviour adds to the conventions' reading, and what it could not match."""

    mapping: dict[str, tuple[Path_, Path_ | None]] = field(default_factory=dict)
    held: tuple[str, ...] = ()  # parameters whose gradient was not found: drawn, not compared
    hidden: tuple[str, ...] = ()  # the twin's buffers no array matched: not compared
    notes: list[str] = field(default_factory=list)


def discover(
    make_layer: Callable[[], Any],
    make_twin: Callable[[], torch.nn.Module] | None,
    names: tuple[str, str],
    shape: tuple[int, ...],
    options: Options,
) -> Found:
    """Probe a fresh layer (and twin) on one input of ``shape``: the gradients and statistics conventions missed.

    A layer that fails to build or run is left to the checks, which report it.
    """
    try:
        layer = make_layer()
        twin = make_twin() if make_twin is not None else None
        if not is_layer(layer):
            return Found()
        shapes = twin_shapes(twin) if twin is not None else None
        foreign = adapt(layer, options.mapping, options.layout, shapes, choice=options.choice, target=options.target)
        if not isinstance(foreign, Foreign) or foreign.is_loss:
            return Found()
        rng = generator(0, Stream.GRADCHECK, PROBE_DRAW)
        x = probing_input(torch_input_shape(foreign, options, shape), rng)
        built = _copies(find_arrays(layer))
        raw = foreign.call_forward(foreign.layer_input(x))
        forwarded = _copies(find_arrays(layer))
        written: Arrays = {}
        if not foreign.updates_inside:
            find_method(layer, BACKWARD_NAMES)[1](rng.standard_normal(raw.shape))
            written = {p: a for p, a in find_arrays(layer).items() if p not in forwarded or _moved(forwarded[p], a)}
    except Exception:  # the student's crash, or a layer the adapter cannot read: the checks say which
        return Found()
    found = Found()
    taken = {b.value for b in foreign.bindings} | {b.grad for b in foreign.bindings}
    _find_gradients(foreign, written, taken, found, names[0])
    if twin is not None:
        kept = [p for p, a in built.items() if p not in taken and p in forwarded and forwarded[p].shape == a.shape]
        moved = {p: (built[p], forwarded[p] - built[p]) for p in kept if _moved(built[p], forwarded[p])}
        _find_statistics(foreign, twin, x, moved, found, names)
    return found


def probing_input(torch_shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random input in PyTorch's layout whose channels have means from -2 to -5 and variances from 4 to 16."""
    channels = torch_shape[1] if len(torch_shape) > 1 else 1
    axis = (1, channels) + (1,) * (len(torch_shape) - 2) if len(torch_shape) > 1 else (channels,)
    mean = -(2.0 + np.arange(channels) % 4).reshape(axis)
    std = (2.0 + np.arange(channels)[::-1] % 3).reshape(axis)
    return mean + std * rng.standard_normal(torch_shape)


def without_buffers(make_twin: Callable[[], torch.nn.Module], hidden: tuple[str, ...]) -> Callable[[], Any]:
    """``make_twin`` whose buffers ``hidden`` are kept as plain attributes: used by its forward, never compared."""

    def make() -> torch.nn.Module:
        twin = make_twin()
        for name in hidden:
            value = getattr(twin, name)
            delattr(twin, name)
            object.__setattr__(twin, name, value)
        return twin

    return make


def _copies(arrays: Mapping[Path_, np.ndarray]) -> Arrays:
    return {path: array.copy() for path, array in arrays.items()}


def _moved(before: np.ndarray, after: np.ndarray) -> bool:
    return before.shape != after.shape or not np.array_equal(before, after)


def _find_gradients(foreign: Foreign, written: Arrays, taken: set[Any], found: Found, name: str) -> None:
    """Each parameter without a gradient by name: the one array its backward wrote of the parameter's shape."""
    if foreign.updates_inside:
        return
    held, grads = [], []
    for binding in foreign.bindings:
        if binding.kind != "parameter" or binding.grad is not None:
            continue
        if gradient_path(foreign.layer, binding.value) or gradient_path(foreign.layer, binding.value, same_shape=False):
            continue
        free = {p: a for p, a in written.items() if p not in taken}
        fits = [p for p, a in free.items() if a.shape == binding.stored]
        fits = fits or [p for p, a in free.items() if a.size == np.prod(binding.stored)]  # a wrong shape, reported
        if len(fits) == 1:
            found.mapping[binding.name] = (binding.value, fits[0])
            grads.append(label(fits[0]))
            continue
        held.append(binding.name)
        why = f"{len(fits)} arrays it writes have" if fits else "it writes no array of"
        found.notes.append(
            f"  {binding.name}.grad not compared: {name}.{foreign.backward_name} leaves no gradient of "
            f"{label(binding.value)} by name, and {why} its shape {binding.stored}: "
            f"give --param {binding.name}={label(binding.value)}:GRADIENT"
        )
    if grads:
        found.notes.append(
            f"  {', '.join(grads)}: found by behaviour, {foreign.backward_name} writes each, of its parameter's shape"
        )
    found.held = tuple(held)


def _find_statistics(
    foreign: Foreign,
    twin: torch.nn.Module,
    x: np.ndarray,
    moved: Mapping[Path_, tuple[np.ndarray, np.ndarray]],
    found: Found,
    names: tuple[str, str],
) -> None:
    """Each of the twin's buffers without an array: the array that moves as it does, from its own start toward
    the batch statistic (the cosine of the two ways at least :data:`ALIGNED`)."""
    import torch

    bound = {b.name for b in foreign.bindings}
    buffers = {n: b.detach().clone() for n, b in twin.named_buffers() if b.is_floating_point() and n not in bound}
    if not buffers:
        return
    twin.train()
    try:
        with torch.no_grad():
            twin(torch.from_numpy(x.astype(np.float32)))
    except Exception:  # the twin refuses the input: the checks say so
        return
    momentum = getattr(twin, "momentum", None) or 0.1
    scores = []
    for buffer, start in buffers.items():
        after = dict(twin.named_buffers())[buffer].numpy().astype(np.float64)
        batch = start.numpy() + (after - start.numpy()) / momentum
        for path, (before, change) in moved.items():
            if squeezed(before.shape) == squeezed(batch.shape):
                scores.append((_cosine(change.ravel(), (batch.ravel() - before.ravel())), buffer, path))
    matched: dict[str, Path_] = {}
    for score, buffer, path in sorted(scores, key=lambda s: -s[0]):
        if score >= ALIGNED and buffer not in matched and path not in matched.values():
            matched[buffer] = path
            found.mapping[buffer] = (path, None)
    if matched:
        found.notes.append(
            f"  {', '.join(label(p) for p in matched.values())}: found by behaviour, a training-mode forward moves "
            f"each as {names[1]} moves its {' and '.join(matched)}"
        )
    found.hidden = tuple(b for b in buffers if b not in matched)
    if found.hidden:
        found.notes.append(
            f"  {', '.join(found.hidden)} not compared: no array of {foreign.name} moves as {names[1]}'s "
            f"{'does' if len(found.hidden) == 1 else 'do'}; to compare, give "
            + " ".join(f"--param {b}=ATTRIBUTE" for b in found.hidden)
        )


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norms if norms else 0.0


def merged(options: Options, found: Found) -> Options:
    """``options`` with what behaviour found; what was given by ``--param`` wins."""
    mapping: TensorMapping = {**found.mapping, **options.mapping}
    return replace(options, mapping=mapping, held=found.held)
