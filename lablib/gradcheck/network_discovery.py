"""A network's layers read by behaviour where names fail, from the network's own passes, by the rules of
:mod:`lablib.gradcheck.discovery`.

Each layer's arrays are taken before the network's backward and after: the one array that backward
wrote of a parameter's shape is its gradient (``grad_w`` beside ``weights``); an array the layer held
when built, that the forward reads (moving it moves the layer's output) and of whose shape the backward
wrote exactly one array, is a parameter with that gradient. Tensors given with ``--param
LAYER.NAME=ATTRIBUTE:GRADIENT`` (``fc1.weight=weights:grad_w``) come first. A gradient still unmatched
(several arrays fit) leaves its parameter held: drawn like the others, its gradient not compared, and a
note names the ``--param`` that would compare it. One that no written array fits stays missing: the check
through the network fails it, and the layer alone is checked without it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from lablib.adapter.arrays import Path_, find_arrays, get, label
from lablib.adapter.binding import squeezed
from lablib.adapter.errors import AdapterError
from lablib.adapter.methods import BACKWARD_NAMES, find_method
from lablib.adapter.tensors import Tensor, find_tensors, gradient_path
from lablib.gradcheck.discovery import (
    Found,
    Snapshot,
    changes_output,
    gradient_fits,
    unfound_note,
    unnamed_parameters,
    written,
)
from lablib.gradcheck.probe import Probe, capture_calls, release
from lablib.gradcheck.shapes import TensorMapping

Readings = dict[int, Found]  # by the layer's id: what behaviour and --param add to its names


def by_layer(given: TensorMapping, paths: Sequence[str]) -> dict[str, dict[str, tuple[Path_, Path_ | None]]]:
    """``--param`` given for a network, ``LAYER.NAME``, split by layer path; a name of no layer is misuse."""
    split: dict[str, dict[str, tuple[Path_, Path_ | None]]] = {}
    for key, value in given.items():
        path, dot, name = key.rpartition(".")
        if not dot or path not in paths:
            raise AdapterError(
                f"--param {key}=...: a network's tensor is named LAYER.NAME, e.g. --param {paths[0]}.weight="
                f"weights:d_weights; its layers are {', '.join(paths)}"
            )
        split.setdefault(path, {})[name] = value
    return split


def discover_network(
    probe: Probe, layers: Sequence[tuple[str, Any]], before: Mapping[int, Snapshot], given: TensorMapping
) -> Readings:
    """What each layer's names miss, read from the network's backward (run since ``before``) and forward."""
    given_by = by_layer(given, [path for path, _ in layers])
    return {
        id(layer): _read_layer(path, layer, probe, layers, written(before[id(layer)], layer), given_by.get(path, {}))
        for path, layer in layers
    }


def tensor_name(layer: Any, among: Sequence[Path_] | None, value: Path_) -> str:
    """PyTorch's name the conventions give the array ``value`` (``NAME`` where they give none)."""
    return next((name for name, (v, _, _) in _named(layer, among).items() if v == value), "NAME")


def _named(layer: Any, among: Sequence[Path_] | None) -> dict[str, Tensor]:
    try:
        return find_tensors(layer, among)
    except AdapterError:  # two arrays claim one name: the layer's own check says so
        return {}


def _read_layer(
    path: str,
    layer: Any,
    probe: Probe,
    layers: Sequence[tuple[str, Any]],
    wrote: dict[Path_, Any],
    given: dict[str, tuple[Path_, Path_ | None]],
) -> Found:
    """One layer: each parameter's gradient no name gives, then the parameters no name announces."""
    built = probe.built.get(id(layer))
    found = Found(mapping=dict(given))
    named = _named(layer, built)
    taken = {v for v, g, _ in named.values()} | {g for _, g, _ in named.values() if g}
    taken |= {v for v, _ in given.values()} | {g for _, g in given.values() if g}
    backward = f"{path}.{find_method(layer, BACKWARD_NAMES)[0]}"
    held, grads, missing = [], [], []
    for name, (value, grad, kind) in named.items():
        if kind != "parameter" or grad is not None or name in given:
            continue
        if gradient_path(layer, value) or gradient_path(layer, value, same_shape=False):
            continue
        stored = get(layer, value).shape
        fits = gradient_fits(stored, wrote, taken)
        if len(fits) == 1:
            found.mapping[name] = (value, fits[0])
            grads.append(label(fits[0]))
        elif fits:
            found.mapping[name] = (value, None)
            held.append(name)
            found.notes.append(unfound_note(f"{path}.{name}", value, backward, stored, len(fits), f"{path}.{name}"))
        else:
            missing.append(name)
    found.held, found.missing = tuple(held), tuple(missing)
    if grads:
        found.notes.append(f"  {path}: {', '.join(grads)}: found by behaviour, {backward} writes each")
    taken |= {v for v, _ in found.mapping.values()} | {g for _, g in found.mapping.values() if g}
    reads = lambda p: changes_output(layer, p, lambda: _outputs(probe, layers, path))  # noqa: E731
    unnamed = unnamed_parameters(layer, built or [], wrote, taken, reads)
    _name_unnamed(path, layer, unnamed, set(named) | set(found.mapping), found)
    return found


def _outputs(probe: Probe, layers: Sequence[tuple[str, Any]], path: str) -> tuple[Any, ...]:
    """The layer's output in one forward of the network, with the network's prediction and loss."""
    captured = capture_calls(layers)
    try:
        pred, loss = probe.outputs()
    finally:
        release(layers)
    return (captured[path][2] if path in captured else None, pred, loss)


def _name_unnamed(path: str, layer: Any, unnamed: Mapping[Path_, Path_], taken: set[str], found: Found) -> None:
    """Each parameter found by behaviour named as the conventions would by rank (weight, then bias), or by
    its own attribute where those are taken."""
    arrays = find_arrays(layer)
    free = [n for n in ("weight", "bias") if n not in taken]
    ranked = sorted(unnamed, key=lambda p: -len(squeezed(arrays[p].shape)))
    ranks = [len(squeezed(arrays[p].shape)) for p in ranked]
    by_rank = len(set(ranks)) == len(ranks) and len(ranked) <= len(free)
    for number, value in enumerate(ranked):
        name = free[number] if by_rank else re.sub(r"\W+", "_", label(value)).strip("_")
        found.mapping[name] = (value, unnamed[value])
    if unnamed:
        found.notes.append(
            f"  {path}: {', '.join(f'{label(v)} (gradient {label(g)})' for v, g in unnamed.items())}: parameters "
            "found by behaviour, the forward reads each and the backward writes one array of its shape"
        )
