"""Probing a template ``Network``: its forward and backward called as the template defines them, its
parameters drawn afresh at a well-conditioned scale, and each layer's first call recorded.

The course template fixes the interface, ``forward(input, target) -> (pred, loss)`` and ``backward()``,
and leaves everything inside to the student. Students initialise with unscaled ``np.random.randn``,
which saturates the softmax and leaves finite differences nothing to measure, so weights are drawn
``N(0, 1/fan_in)``, biases small, scales near 1. The random state is reseeded before every forward, so
dropout draws the same mask each time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lablib.adapter.arrays import Path_, find_arrays
from lablib.adapter.errors import AdapterError, call
from lablib.adapter.methods import BACKWARD_NAMES, FORWARD_NAMES, find_method, training_flag
from lablib.adapter.tensors import WEIGHT_NAMES, plain_name
from lablib.gradcheck.foreign import one_hot
from lablib.gradcheck.inspection import find_layers, is_loss

FORWARD_SEED = 0  # np.random is reseeded with it before every forward: the same dropout mask each time

Captured = dict[str, tuple[np.ndarray, list[Any], Any]]  # by layer path: its first input, what else it got, its output


def fan_in(shape: tuple[int, ...], width: int | None = None) -> int:
    """The inputs each output of a weight of this shape sums: its size over its output axis. A matrix's is the
    layer's input ``width`` where one of its axes has it, else its larger axis (too large a fan-in shrinks
    the signal, too small a one saturates the softmax)."""
    if len(shape) == 4:
        out = shape[0] if shape[2] == shape[3] else shape[-1]
        return max(1, int(np.prod(shape)) // out)
    if len(shape) == 2:
        return width if width in shape else max(shape)
    return max(1, int(np.prod(shape[1:])))


def redraw(array: np.ndarray, name: str, rng: np.random.Generator, width: int | None = None) -> None:
    """A parameter drawn afresh at a well-conditioned scale, in place, keeping its dtype; ``width``: its
    layer's input features, where known."""
    plain, squeezed = plain_name(name), tuple(s for s in array.shape if s != 1)
    if len(squeezed) >= 2 and plain not in ("gamma", "beta", "scale", "shift"):
        array[...] = rng.standard_normal(array.shape) / np.sqrt(fan_in(squeezed, width))
    elif plain in ("gamma", "scale") or (plain in WEIGHT_NAMES and len(squeezed) <= 1):
        array[...] = rng.uniform(0.5, 1.5, array.shape)
    else:
        array[...] = rng.uniform(-0.1, 0.1, array.shape)


class Probe:
    """The network's forward and backward, called as the template defines them, with a fixed target."""

    def __init__(self, network: Any, x: np.ndarray, target: np.ndarray, encoding: str, classes: int) -> None:
        forward, backward = find_method(network, FORWARD_NAMES), find_method(network, BACKWARD_NAMES)
        if forward is None or backward is None:
            raise AdapterError(
                f"{type(network).__name__} has no {'forward' if forward is None else 'backward'} method: "
                "the template's Network has forward(input, target) and backward()"
            )
        if not is_loss(forward[1], backward[1]):
            raise AdapterError(
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


def output_width(make_network: Callable[[], Any], shape: tuple[int, ...]) -> int | None:
    """The number of classes a network scores: the width of the last ``(batch, width)`` array a forward gives,
    its prediction or, where the loss does not take class indices, a layer's output before it."""
    x = np.random.default_rng(FORWARD_SEED).standard_normal(shape)
    probe = Probe(call("Network()", make_network), x, np.zeros(shape[0], np.int64), "indices", 2)
    layers = list(find_layers(probe.network))
    captured = capture_calls(layers)
    try:
        outputs = [probe.outputs()[0]]
    except AdapterError:
        outputs = []  # a loss that wants one-hot targets: the layers' outputs before it still tell
    finally:
        release(layers)
    outputs += [out for _, _, out in reversed(list(captured.values()))]
    widths = (o.shape[1] for o in outputs if isinstance(o, np.ndarray) and o.ndim == 2 and len(o) == shape[0])
    return next(widths, None)


def start(
    make_network: Callable[[], Any],
    inputs: Sequence[tuple[int, ...]],
    target: str | None,
    classes: int | None,
    rng: np.random.Generator,
) -> tuple[Probe, str]:
    """The network on the first input shape and target encoding its forward takes; without ``classes``, as
    many classes as its output is wide."""
    errors = []
    for shape in inputs:
        width = classes or output_width(make_network, shape)
        if width is None:
            errors.append(f"input {shape}: no output of shape (batch, classes) to count the classes by (--classes)")
            continue
        for encoding in [target] if target else ["onehot", "indices"]:
            network = call("Network()", make_network)
            built = {id(layer): list(find_arrays(layer)) for _, layer in find_layers(network)}
            x = rng.standard_normal(shape)
            labels = np.arange(shape[0]) % width
            probe = Probe(network, x, labels, encoding, width)
            probe.built = built
            try:
                probe.loss()
            except AdapterError as error:
                errors.append(f"input {shape} with {encoding} targets: {error}")
                continue
            how = f"input {shape}, targets as {'one-hot rows' if encoding == 'onehot' else 'class indices'}"
            return probe, how + ("" if classes else f", {width} classes (the output's width)")
    raise AdapterError("; ".join(errors))


def capture_calls(layers: Sequence[tuple[str, Any]]) -> Captured:
    """Record each layer's first call, in the order they come, by shadowing its forward: copies of the input
    and of what else it receives (a loss's target), and what it returns."""
    captured: Captured = {}
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
    """Undo :func:`capture_calls`: each layer's own forward again."""
    for _, layer in layers:
        for name in FORWARD_NAMES:
            if name in vars(layer):
                delattr(layer, name)
