"""The layer check: one layer's output and every gradient against PyTorch autograd and finite differences.

The layer is either a ``lablib.nn.Module`` (``forward(x)`` keeps what ``backward(grad_output)`` needs,
``backward`` accumulates each ``Parameter``'s gradient and returns the input gradient, PyTorch's
names) or any layer that :mod:`lablib.gradcheck.foreign` can present as one: the course template's, a
tutorial's, with its own names, shapes and layout. Each check (:mod:`lablib.gradcheck.layer_checks`)
runs on a few random inputs of each input shape. An error counts against the largest expected
magnitude of its tensor (at least 1): the "max rel error" of the table. Without a twin (a layer of
one's own design) only finite differences check it. Gradients and running statistics under names no
convention knows are found by behaviour (:mod:`lablib.gradcheck.discovery`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from lablib.adapter.errors import AdapterError, call
from lablib.gradcheck.build import AS_FOUND, Options, build, run_backward, run_forward, torch_input_shape, twin_shapes
from lablib.gradcheck.compare import FINITE_DIFFERENCES_32, STEP, TOLERANCE
from lablib.gradcheck.discovery import discover, merged, without_buffers
from lablib.gradcheck.foreign import Foreign, adapt
from lablib.gradcheck.inspection import is_layer
from lablib.gradcheck.layer_checks import check_against_twin, check_by_finite_differences, check_loss, twin_refusal
from lablib.gradcheck.layout import Layout, infer_layout
from lablib.gradcheck.result import Check
from lablib.gradcheck.shapes import candidates
from lablib.nn.module import Module
from lablib.rng import Stream, generator

if TYPE_CHECKING:
    import torch


def input_channels(shapes: Mapping[str, tuple[int, ...]]) -> int | None:
    """The channels (features) a layer with these parameter shapes takes: a weight's axis 1, a norm's size."""
    weight = shapes.get("weight")
    if weight is None:
        return None
    return weight[1] if len(weight) >= 2 else weight[0]


def resolve_layout(
    name: str, make_layer: Callable[[], Any], make_twin: Callable[[], torch.nn.Module] | None, shape: tuple[int, ...]
) -> tuple[Layout | None, str]:
    """The layout a foreign layer's input of ``shape`` is in (None: the layer is a Module or no twin needs one)."""
    layer = call(name, make_layer)
    if isinstance(layer, Module) or make_twin is None or not is_layer(layer) or adapt(layer).is_loss:
        return None, ""
    channels = input_channels(twin_shapes(call("the twin", make_twin)))
    layout, how = infer_layout(shape, channels)
    if layout is None:
        raise AdapterError(f"{name}: {how}")
    return layout, f"layout {layout}, {how}"


def reading_note(layer: Module) -> list[str]:
    """For an adapted layer: which attribute stood for which tensor, and how its methods were called."""
    if not isinstance(layer, Foreign):
        return []
    lines = [f"{layer.name} read through lablib.adapter: {layer.forward_name} and {layer.backward_name}"]
    if layer.flag:
        lines[0] += f", {layer.forward_name}({layer.flag}=True)"
    if layer.updates_inside:
        lines[0] += f", the gradients recovered from the update {layer.backward_name} makes at rate 1 (undone)"
    lines += [f"  {line}" for line in layer.describe()] or ["  no parameters"]
    return lines


def choose_reading(
    make_layer: Callable[[], Any],
    make_twin: Callable[[], torch.nn.Module],
    names: tuple[str, str],
    shape: tuple[int, ...],
    options: Options,
) -> tuple[Options, str]:
    """Where square shapes allow several readings of the arrays, the first whose output is the twin's."""
    layer = call(names[0], make_layer)
    if isinstance(layer, Module):
        return options, ""
    readings = candidates(layer, options.mapping, twin_shapes(call(names[1], make_twin)))
    if len(readings) < 2:
        return options, ""
    for choice in range(len(readings)):
        tried = replace(options, choice=choice)
        checks = check_against_twin(make_layer, make_twin, names, shape, generator(0, Stream.GRADCHECK), tried)
        if checks[0].passed:
            return tried, "" if choice == 0 else f"reading {choice + 1} of the arrays' shapes gives the twin's output"
    return options, f"the shapes allow {len(readings)} readings of the arrays and none gives the twin's output"


def check_layer(
    make_layer: Callable[[], Any],
    input_shapes: Sequence[tuple[int, ...]],
    make_twin: Callable[[], torch.nn.Module] | None = None,
    *,
    draws: int = 2,
    names: tuple[str, str] = ("layer", "twin"),
    options: Options = AS_FOUND,
) -> Check:
    """Check the layer ``make_layer()`` builds on ``draws`` random inputs of each shape.

    Against ``make_twin()`` by autograd on every input when a twin is given; by finite differences,
    which take two forward passes per input and parameter value, on the first input of each shape
    (on every input without a twin). The first shape must work; a later one that the twin refuses is
    skipped and noted. Shapes are the layer's own: in its layout, for a layer read through the adapter.
    """
    result = Check()
    found = discover(make_layer, make_twin, names, input_shapes[0], options)
    options, result.notes = merged(options, found), found.notes
    if found.hidden and make_twin is not None:
        make_twin = without_buffers(make_twin, found.hidden)
    if make_twin is not None:
        options, note = choose_reading(make_layer, make_twin, names, input_shapes[0], options)
        result.notes += [note] if note else []
    shapes = twin_shapes(call(names[1], make_twin)) if make_twin is not None else None
    probe = build(names[0], make_layer, options, shapes)
    if isinstance(probe, Foreign) and probe.is_loss:
        return _check_loss_layer(probe, make_layer, make_twin, input_shapes, draws, names, options, result)
    if make_twin is None:
        _takes(build(names[0], make_layer, options), names[0], input_shapes[0], options)
    for number, shape in enumerate(input_shapes):
        rngs = [generator(number, Stream.GRADCHECK, draw) for draw in range(draws)]
        if make_twin is not None:
            torch_shape = torch_input_shape(probe, options, shape)
            refusal = twin_refusal(make_twin, names[1], torch_shape, shape) if number > 0 else None
            if refusal:  # a later shape PyTorch does not define the layer at; the first one must work
                result.skipped.append(f"input {shape} skipped: {refusal}")
                continue
            checks = [c for rng in rngs for c in check_against_twin(make_layer, make_twin, names, shape, rng, options)]
            result.comparisons += checks
            if not all(c.comparable for c in checks if c.tensor == "output"):
                continue  # an output of the wrong shape has no gradient to check
        twin = None if make_twin is None else (make_twin, checks)
        for rng in rngs if make_twin is None else rngs[:1]:
            result.comparisons += check_by_finite_differences(make_layer, names[0], shape, rng, options, shapes, twin)
    _note_reading(build(names[0], make_layer, options, shapes), names[0], input_shapes[0], options, result)
    return result


def _takes(layer: Module, name: str, shape: tuple[int, ...], options: Options) -> None:
    """Without a twin nothing vouches for the input shape given: a forward that refuses it is the command's
    misuse (exit 2), not the student's crash."""
    try:
        run_forward(layer.double(), name, np.zeros(torch_input_shape(layer, options, shape)))
    except AdapterError as error:
        raise AdapterError(str(error)) from None


def _check_loss_layer(
    probe: Foreign,
    make_layer: Callable[[], Any],
    make_twin: Callable[[], torch.nn.Module] | None,
    input_shapes: Sequence[tuple[int, ...]],
    draws: int,
    names: tuple[str, str],
    options: Options,
    result: Check,
) -> Check:
    """A loss layer's check on every draw of every shape, and how its targets were handed over."""
    for number, shape in enumerate(input_shapes):
        for draw in range(draws):
            rng = generator(number, Stream.GRADCHECK, draw)
            result.comparisons += check_loss(make_layer, make_twin, names, shape, rng, options)
    probe.forward(np.zeros(input_shapes[0]), np.zeros(input_shapes[0][0], int))
    result.notes += [*reading_note(probe), f"  a loss layer: targets handed over as {probe.target}"]
    return result


def _note_reading(probe: Module, name: str, shape: tuple[int, ...], options: Options, result: Check) -> None:
    """How a foreign layer was read, found by one pass on zeros: its attributes first, then an input gradient
    it does not return and a forward that computes in float32."""
    if not isinstance(probe, Foreign):
        return
    probe.double()
    run_backward(probe, name, run_forward(probe, name, np.zeros(torch_input_shape(probe, options, shape))))
    result.notes[:0] = reading_note(probe)
    if probe.returns_input_grad is False:
        result.notes.append(
            f"  {probe.name}.{probe.backward_name} returns no input gradient (a first layer): "
            "its parameter gradients alone are checked"
        )
    if probe.computes_in == np.float32:
        result.notes.append(
            f"  {probe.name}.{probe.forward_name} computes in float32 whatever it is given: finite differences "
            f"in float32, step {STEP[FINITE_DIFFERENCES_32]:g}, tolerance {TOLERANCE[FINITE_DIFFERENCES_32]:g}"
        )
