"""What the naming conventions missed, found by probing a layer once: its parameters, gradients and running
statistics.

The conventions (:mod:`lablib.adapter.tensors`) come first; this reads behaviour where they found nothing.
A parameter's gradient is the one array its backward writes (new, replaced or with new values) of the
parameter's stored shape, else of its size (a gradient of the wrong shape, which a check then reports).
A parameter no name announces is an array the layer held when built that the forward reads (changing it
changes the output), that neither pass writes, and of whose shape the backward writes exactly one array:
its gradient. A running statistic is an array the layer held when built, that no convention reads and
that a training-mode forward moves: it is the twin's buffer of its shape whose batch statistic it moves
toward. The probing input has negative channel means and variances above 4, so a mean moves down and a
variance up. What is still unmatched never blocks a check: a parameter without a gradient is held
(drawn and copied into the twin like the others, its gradient not compared), a twin's buffer without an
array is left out, and a note names each with the ``--param`` that would compare it.

:func:`discover` probes one layer for the layer check; a network's layers are read from the network's
own passes by :mod:`lablib.gradcheck.network_discovery`, with the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from lablib.adapter.arrays import Path_, find_arrays, get, label, put
from lablib.adapter.binding import squeezed
from lablib.adapter.methods import BACKWARD_NAMES, find_method
from lablib.adapter.tensors import ACTIVATION_NAMES, gradient_path, plain_name
from lablib.gradcheck.build import Options, torch_input_shape, twin_momentum, twin_shapes
from lablib.gradcheck.foreign import Foreign, adapt
from lablib.gradcheck.inspection import is_layer
from lablib.gradcheck.probe import FORWARD_SEED
from lablib.gradcheck.shapes import TensorMapping, permutations
from lablib.rng import Stream, generator

if TYPE_CHECKING:
    import torch

ALIGNED = 0.99  # the least cosine between a statistic's change and the way the twin's batch statistic lies
PROBE_DRAW = 99  # the draw of the probing input and gradient, apart from the checks' own

Arrays = dict[Path_, np.ndarray]
Snapshot = dict[Path_, tuple[np.ndarray, np.ndarray]]  # each array as it was: the object and a copy of its values


@dataclass
class Found:
    """What behaviour adds to the conventions' reading, and what it could not match."""

    mapping: dict[str, tuple[Path_, Path_ | None]] = field(default_factory=dict)
    held: tuple[str, ...] = ()  # parameters whose gradient was not found: drawn, not compared
    hidden: tuple[str, ...] = ()  # the twin's buffers no array matched: not compared
    missing: tuple[str, ...] = ()  # a network's parameters whose backward writes no gradient: failed through it

    @property
    def ungraded(self) -> tuple[str, ...]:
        """The parameters read as buffers where a layer is run alone: no gradient to compare."""
        return self.held + self.missing

    notes: list[str] = field(default_factory=list)


def snapshot(obj: Any) -> Snapshot:
    """Every floating array ``obj`` holds, as it is now."""
    return {path: (array, array.copy()) for path, array in find_arrays(obj).items()}


def written(before: Snapshot, obj: Any) -> Arrays:
    """The arrays ``obj`` holds that are new since ``before``, replaced, or hold new values."""
    return {
        path: array
        for path, array in find_arrays(obj).items()
        if path not in before or array is not before[path][0] or _moved(before[path][1], array)
    }


def gradient_fits(stored: tuple[int, ...], wrote: Arrays, taken: Iterable[Path_], exact: bool = False) -> list[Path_]:
    """The arrays a backward wrote, not ``taken``, that may be the gradient of a parameter of shape ``stored``:
    those of its shape, else (unless ``exact``) those of its size, a gradient of the wrong shape."""
    free = {p: a for p, a in wrote.items() if p not in set(taken)}
    fits = [p for p, a in free.items() if a.shape == stored]
    return fits if fits or exact else [p for p, a in free.items() if a.size == int(np.prod(stored))]


def unnamed_parameters(
    layer: Any,
    built: Iterable[Path_],
    wrote: Arrays,
    taken: Iterable[Path_],
    reads: Callable[[Path_], bool],
) -> dict[Path_, Path_]:
    """Parameters no name announces, each with its gradient: an array ``built`` (held at construction) that
    neither pass wrote, whose shape exactly one array the backward ``wrote`` has, and that the forward
    ``reads``. Two arrays claiming one gradient are neither taken."""
    taken = set(taken)
    arrays = find_arrays(layer)
    claims: dict[Path_, list[Path_]] = {}
    for path in built:
        if path in taken or path in wrote or path not in arrays or plain_name(path[-1]) in ACTIVATION_NAMES:
            continue
        fits = gradient_fits(arrays[path].shape, wrote, taken | {path}, exact=True)
        if len(fits) == 1 and arrays[path].size > 1 and reads(path):
            claims.setdefault(fits[0], []).append(path)
    return {values[0]: grad for grad, values in claims.items() if len(values) == 1}


def changes_output(obj: Any, path: Path_, run: Callable[[], Any]) -> bool:
    """True when ``run()`` gives another result with the array at ``path`` moved by 1 (put back after)."""
    original = get(obj, path)
    base = _result(run)
    put(obj, path, original + 1)
    try:
        moved = _result(run)
    finally:
        put(obj, path, original)
    return base is not None and moved is not None and _moved(base, moved)


def _result(run: Callable[[], Any]) -> np.ndarray | None:
    np.random.seed(FORWARD_SEED)  # noqa: NPY002 - a student's dropout draws from it
    try:
        out = run()
    except Exception:  # the student's code on a moved array: no answer, so no claim
        return None
    parts = out if isinstance(out, tuple | list) else (out,)
    return np.concatenate([np.asarray(p, np.float64).ravel() for p in parts if isinstance(p, np.ndarray | float)])


def discover(
    make_layer: Callable[[], Any],
    make_twin: Callable[[], torch.nn.Module] | None,
    names: tuple[str, str],
    shape: tuple[int, ...],
    options: Options,
) -> Found:
    """Probe a fresh layer (and twin) on one input of ``shape``: the tensors conventions missed.

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
        forwarded = snapshot(layer)
        wrote: Arrays = {}
        if not foreign.updates_inside:
            find_method(layer, BACKWARD_NAMES)[1](rng.standard_normal(raw.shape))
            wrote = written(forwarded, layer)
    except Exception:  # the student's crash, or a layer the adapter cannot read: the checks say which
        return Found()
    found = Found()
    taken = {b.value for b in foreign.bindings} | {b.grad for b in foreign.bindings}
    _find_gradients(foreign, wrote, taken, found, names[0])
    if not foreign.updates_inside:
        still = [p for p, a in built.items() if p in forwarded and not _moved(a, forwarded[p][1])]
        run = lambda: foreign.call_forward(foreign.layer_input(x))  # noqa: E731
        unnamed = unnamed_parameters(layer, still, wrote, taken, lambda path: changes_output(layer, path, run))
        _name_parameters(foreign, unnamed, shapes, found)
    if twin is not None:
        kept = [p for p, a in built.items() if p not in taken and p in forwarded and forwarded[p][1].shape == a.shape]
        moved = {p: (built[p], forwarded[p][1] - built[p]) for p in kept if _moved(built[p], forwarded[p][1])}
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


def unfound_note(name: str, value: Path_, backward: str, stored: tuple[int, ...], fits: int, param: str) -> str:
    """The line for a parameter whose gradient no name nor behaviour tells: what is not compared, and the
    ``--param`` (``param``, PyTorch's name, with a layer's path in a network) that would compare it."""
    why = f"{fits} arrays it writes have" if fits else "it writes no array of"
    return (
        f"  {name}.grad not compared: {backward} leaves no gradient of {label(value)} by name, and {why} its "
        f"shape {stored}: give --param {param}={label(value)}:GRADIENT"
    )


def _find_gradients(foreign: Foreign, wrote: Arrays, taken: set[Any], found: Found, name: str) -> None:
    """Each parameter without a gradient by name: the one array its backward wrote of the parameter's shape."""
    if foreign.updates_inside:
        return
    held, grads = [], []
    for binding in foreign.bindings:
        if binding.kind != "parameter" or binding.grad is not None:
            continue
        if gradient_path(foreign.layer, binding.value) or gradient_path(foreign.layer, binding.value, same_shape=False):
            continue
        fits = gradient_fits(binding.stored, wrote, taken)
        if len(fits) == 1:
            found.mapping[binding.name] = (binding.value, fits[0])
            grads.append(label(fits[0]))
            continue
        held.append(binding.name)
        backward = f"{name}.{foreign.backward_name}"
        found.notes.append(unfound_note(binding.name, binding.value, backward, binding.stored, len(fits), binding.name))
    if grads:
        found.notes.append(
            f"  {', '.join(grads)}: found by behaviour, {foreign.backward_name} writes each, of its parameter's shape"
        )
    found.held = tuple(held)


def _name_parameters(
    foreign: Foreign, unnamed: Mapping[Path_, Path_], shapes: Mapping[str, tuple[int, ...]] | None, found: Found
) -> None:
    """PyTorch's name of each parameter found by behaviour: the twin's one parameter not yet read whose shape
    it has (in some order of its axes), or without a twin weight and bias by rank; else a note asks for it."""
    if not unnamed:
        return
    bound = {b.name for b in foreign.bindings} | set(found.mapping)
    arrays = find_arrays(foreign.layer)
    if shapes is not None:
        free = [n for n in shapes if n not in bound and not n.startswith("running_")]
        fitting = {p: [n for n in free if permutations(arrays[p].shape, shapes[n])] for p in unnamed}
    else:
        free = [n for n in ("weight", "bias") if n not in bound]
        ranked = sorted(unnamed, key=lambda p: -len(squeezed(arrays[p].shape)))
        ranks = [len(squeezed(arrays[p].shape)) for p in ranked]
        distinct = len(set(ranks)) == len(ranks) and len(ranked) <= len(free)
        fitting = {p: [free[i]] if distinct else free for i, p in enumerate(ranked)}
    named = []
    for path, grad in unnamed.items():
        names = fitting[path]
        claimed = [p for p, ns in fitting.items() if ns == names]
        if len(names) == 1 and claimed == [path]:
            found.mapping[names[0]] = (path, grad)
            named.append(f"{names[0]} = {label(path)} (gradient {label(grad)})")
            continue
        found.notes.append(
            f"  {label(path)} is read by {foreign.forward_name} and {foreign.backward_name} writes its gradient "
            f"{label(grad)}, but nothing tells which tensor it is: give --param NAME={label(path)}:{label(grad)}"
        )
    if named:
        found.notes.append(
            f"  {', '.join(named)}: found by behaviour, {foreign.forward_name} reads each and "
            f"{foreign.backward_name} writes one array of its shape"
        )


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
    momentum = twin_momentum(twin)
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
