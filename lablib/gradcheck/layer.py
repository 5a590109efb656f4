"""The layer check: one layer's output and every gradient against PyTorch autograd and finite differences.

The layer is either a ``lablib.nn.Module`` (``forward(x)`` keeps what ``backward(grad_output)`` needs,
``backward`` accumulates each ``Parameter``'s gradient and returns the input gradient, PyTorch's
names) or any layer that :mod:`lablib.adapter` can present as one: the course template's, a
tutorial's, with its own names, shapes and layout. Layer and twin are built from their arguments,
the layer's parameters are drawn afresh (so that no weight of 1 or bias of 0 hides a mistake) and
copied into the twin, and then:

* against autograd, in float32: the output, the input gradient, every parameter gradient and
  every buffer (BatchNorm's running statistics);
* against central finite differences, in float64 (in float32, with a step and tolerance fit for
  it, for a layer that computes in float32 whatever it is given): the input gradient and every
  parameter gradient.

Each check runs on a few random inputs of each input shape. An error counts against the largest
expected magnitude of its tensor (at least 1): the "max rel error" of the table. Without a twin
(a layer of one's own design) only finite differences check it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tabulate import tabulate

from lablib.adapter import Adapted, AdapterError, Layout, Path_, adapt, candidates, infer_layout, is_layer
from lablib.nn.gradient_check import eval_numerical_gradient_array
from lablib.nn.module import Module
from lablib.rng import Stream, generator

if TYPE_CHECKING:
    import torch

AUTOGRAD = "autograd (float32)"
FINITE_DIFFERENCES = "finite differences (float64)"
FINITE_DIFFERENCES_32 = "finite differences (float32 layer)"
TOLERANCE = {AUTOGRAD: 1e-4, FINITE_DIFFERENCES: 1e-6, FINITE_DIFFERENCES_32: 1e-2}
STEP = {FINITE_DIFFERENCES: 1e-6, FINITE_DIFFERENCES_32: 1e-2}
BUFFER_DIFFERS = "differs"


class LayerError(Exception):
    """The layer, its twin or the command's arguments do not allow a check; the message says why."""


class TwinRefused(LayerError):
    """The twin fails on an input shape: PyTorch does not define the layer there."""


@dataclass(frozen=True)
class Options:
    """How to read a layer written to another contract (see :mod:`lablib.adapter`)."""

    mapping: Mapping[str, tuple[Path_, Path_ | None]] = field(default_factory=dict)
    layout: Layout | None = None
    choice: int = 0  # which reading of square-shaped arrays (see lablib.adapter.candidates)
    target: str | None = None  # a loss layer's target: "indices", "onehot", or tried


@dataclass
class Comparison:
    """One tensor of the layer against its expected value, on one input."""

    tensor: str
    against: str
    input_shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    passed: bool
    where: str = ""  # where the two differ most, or how their shapes differ
    note: str = ""  # a buffer that differs from PyTorch's convention: why (not a wrong gradient)

    @property
    def comparable(self) -> bool:
        """False when the shapes differ or a value is NaN: no error can be measured."""
        return not np.isnan(self.max_abs)


@dataclass
class GradcheckResult:
    comparisons: list[Comparison] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how the layer was read: attributes, layout, dtype

    @property
    def passed(self) -> bool:
        return bool(self.comparisons) and all(c.passed for c in self.comparisons)

    def by_tensor(self) -> dict[tuple[str, str], list[Comparison]]:
        """The comparisons grouped by tensor and reference, in the order they were made."""
        groups: dict[tuple[str, str], list[Comparison]] = {}
        for c in self.comparisons:
            groups.setdefault((c.tensor, c.against), []).append(c)
        return groups


def compare(tensor: str, against: str, input_shape: tuple[int, ...], ours: Any, expected: np.ndarray) -> Comparison:
    """``ours`` against ``expected``: the largest error, relative to the largest expected magnitude."""
    if not isinstance(ours, np.ndarray) or ours.shape != expected.shape:
        got = f"shape {ours.shape}" if isinstance(ours, np.ndarray) else type(ours).__name__
        return Comparison(
            tensor, against, input_shape, np.nan, np.nan, False, f"{got}, expected shape {expected.shape}"
        )
    error = np.abs(ours.astype(np.float64) - expected)
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    index = np.unravel_index(np.argmax(error), error.shape) if error.size else ()
    max_abs = float(error.max(initial=0))
    where = f"at index {tuple(int(i) for i in index)}: yours {ours[index]:.6g}, expected {expected[index]:.6g}"
    return Comparison(
        tensor, against, input_shape, max_abs, max_abs / scale, max_abs <= TOLERANCE[against] * scale, where
    )


def draw_parameters(layer: Module, rng: np.random.Generator) -> None:
    """Every parameter drawn from U(-1, 1) in place, keeping its dtype."""
    for param in layer.parameters():
        param.data[...] = rng.uniform(-1, 1, param.shape)


def call(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, an exception in it turned into one line that names ``what`` failed."""
    try:
        return fn(*args)
    except Exception as error:  # the user's code: any failure becomes one clear line
        if isinstance(error, AdapterError) and error.__cause__ is not None:
            error = error.__cause__  # the student's own exception, as the adapter caught it
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise LayerError(f"{what} failed: {type(error).__name__}: {first_line}") from error


def build(
    name: str, make: Callable[[], Any], options: Options = Options(), shapes: Mapping[str, Any] | None = None
) -> Module:
    """The layer ``make()`` builds: a ``lablib.nn.Module`` as it is, any other layer through the adapter."""
    layer = call(name, make)
    if isinstance(layer, Module):
        return layer
    if not is_layer(layer):
        raise LayerError(
            f"{name} built a {type(layer).__name__}, not a lablib.nn.Module: subclass lablib.nn.Module "
            "and define forward and backward, or give it a forward and a backward method "
            "(forward or __call__; backward or backprop)"
        )
    return adapt(layer, options.mapping, options.layout, shapes, choice=options.choice, target=options.target)


def twin_shapes(twin: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """The shape of each floating parameter and buffer of the twin, by name: what a foreign layer is read as."""
    return {key: tuple(value.shape) for key, value in twin.state_dict().items() if value.is_floating_point()}


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
        raise LayerError(f"{name}: {how}")
    return layout, f"layout {layout}, {how}"


def reading_note(layer: Module) -> list[str]:
    """For an adapted layer: which attribute stood for which tensor, and how its methods were called."""
    if not isinstance(layer, Adapted):
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
        tried = Options(options.mapping, options.layout, choice, options.target)
        checks = check_against_twin(make_layer, make_twin, names, shape, generator(0, Stream.GRADCHECK), tried)
        if checks[0].passed:
            return tried, "" if choice == 0 else f"reading {choice + 1} of the arrays' shapes gives the twin's output"
    return options, f"the shapes allow {len(readings)} readings of the arrays and none gives the twin's output"


def run_forward(layer: Module, name: str, x: np.ndarray) -> np.ndarray:
    y = call(f"{name}.forward on input of shape {x.shape}", layer.forward, x)
    if not isinstance(y, np.ndarray):
        raise LayerError(f"{name}.forward returned {type(y).__name__}, expected a NumPy array")
    if y.dtype != x.dtype:
        raise LayerError(f"{name}.forward returned {y.dtype} for {x.dtype} input: keep the input's dtype")
    return y


def run_backward(layer: Module, name: str, grad_output: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """The input gradient and a copy of every parameter gradient, from one backward after ``zero_grad``."""
    layer.zero_grad()
    dx = call(f"{name}.backward", layer.backward, grad_output)
    grads = {}
    for pname, param in layer.named_parameters():
        if param.grad is None:
            raise LayerError(f"{name}.backward left {pname}.grad None: accumulate it with Parameter.accumulate_grad")
        grads[pname] = np.array(param.grad, copy=True)
    return dx, grads


def no_input_grad(layer: Module, dx: Any) -> bool:
    """True for an adapted layer whose backward returns nothing: a first layer, checked on its parameters."""
    return isinstance(layer, Adapted) and dx is None


def explain_buffer(
    buffer: str, ours: np.ndarray, before: np.ndarray, after: np.ndarray, momentum: float, count: int
) -> str:
    """Why a running statistic differs from PyTorch's: a convention, named where one explains it."""
    batch = (after - (1 - momentum) * before) / momentum  # PyTorch's batch statistic (unbiased for the variance)
    readings = {
        "with the momentum the other way round (momentum * batch statistic)": momentum * before + (1 - momentum) * batch
    }
    if buffer == "running_var":
        biased = batch * (count - 1) / count
        readings = {
            "kept biased (divided by n) where PyTorch keeps the unbiased variance (n - 1)": (1 - momentum) * before
            + momentum * biased,
            **readings,
            "kept biased and with the momentum the other way round": momentum * before + (1 - momentum) * biased,
        }
    for how, expected in readings.items():
        if np.allclose(ours, expected, rtol=1e-3, atol=1e-5):
            return f"{buffer} {how}: a buffer, not a gradient; it changes evaluation, not training"
    return f"{buffer} differs from PyTorch's: a buffer, not a gradient; it changes evaluation, not training"


def check_against_twin(
    make_layer: Callable[[], Any],
    make_twin: Callable[[], torch.nn.Module],
    names: tuple[str, str],
    shape: tuple[int, ...],
    rng: np.random.Generator,
    options: Options = Options(),
) -> list[Comparison]:
    """Output, input and parameter gradients and buffers against autograd, in float32."""
    import torch  # only where a twin is asked for: a network or a class check runs without it

    name, twin_name = names
    twin = call(twin_name, make_twin)
    layer = build(name, make_layer, options, twin_shapes(twin)).float()
    foreign = isinstance(layer, Adapted)
    draw_parameters(layer, rng)
    state = {key: np.array(value, copy=True) for key, value in layer.state_dict().items()}
    twin_keys = list(twin_shapes(twin) if foreign else twin.state_dict())
    if sorted(state) != sorted(twin_keys):
        if foreign:
            missing = ", ".join(sorted(set(twin_keys) - set(state)))
            raise LayerError(
                f"{name}: found no attribute for {twin_name}'s {missing} "
                f"({'; '.join(layer.describe()) or 'nothing found'}): say which with --param NAME=ATTRIBUTE:GRADIENT"
            )
        raise LayerError(
            f"{name}'s parameters and buffers {sorted(state)} are not {twin_name}'s {sorted(twin_keys)}: "
            "name them as PyTorch does"
        )
    twin.load_state_dict({key: torch.from_numpy(value) for key, value in state.items()}, strict=not foreign)
    torch_shape = options.layout.torch_shape(shape) if foreign and options.layout else shape
    x = rng.standard_normal(torch_shape).astype(np.float32)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    try:
        ty = twin(tx)
    except Exception as error:  # PyTorch's own refusal, e.g. an input smaller than the kernel
        raise TwinRefused(f"{twin_name} refuses input of shape {shape}: {str(error).splitlines()[0]}") from error
    y = run_forward(layer, name, x)
    expected_y = ty.detach().numpy()
    checks = [compare("output", AUTOGRAD, shape, y, expected_y)]
    if y.shape != expected_y.shape:
        return checks
    grad_output = rng.standard_normal(y.shape).astype(np.float32)
    dx, grads = run_backward(layer, name, grad_output)
    ty.backward(torch.from_numpy(grad_output))
    if not no_input_grad(layer, dx):
        checks.append(compare("input.grad", AUTOGRAD, shape, dx, tx.grad.numpy()))
    twin_params = dict(twin.named_parameters())
    checks += [compare(f"{p}.grad", AUTOGRAD, shape, grads[p], twin_params[p].grad.numpy()) for p in grads]
    buffers = layer.state_dict()
    for b, value in twin.named_buffers():
        if not value.is_floating_point():
            continue
        check = compare(b, AUTOGRAD, shape, buffers[b], value.numpy())
        if foreign and check.comparable and not check.passed:
            count = x.size // x.shape[1]
            check.note = explain_buffer(b, buffers[b], state[b], value.numpy(), twin.momentum or 0.1, count)
            check.passed = True
        checks.append(check)
    return checks


def check_by_finite_differences(
    make_layer: Callable[[], Any],
    name: str,
    shape: tuple[int, ...],
    rng: np.random.Generator,
    options: Options = Options(),
    shapes: Mapping[str, Any] | None = None,
) -> list[Comparison]:
    """Input and parameter gradients against central differences of ``sum(forward(x) * grad_output)``, in float64.

    A layer that computes in float32 whatever it is given is differentiated in float32, with a step and
    tolerance fit for float32 (its tensors are labelled so).
    """
    layer = build(name, make_layer, options, shapes).double()
    draw_parameters(layer, rng)
    torch_shape = options.layout.torch_shape(shape) if isinstance(layer, Adapted) and options.layout else shape
    x = rng.standard_normal(torch_shape)
    grad_output = rng.standard_normal(run_forward(layer, name, x).shape)
    against = FINITE_DIFFERENCES
    if isinstance(layer, Adapted) and layer.computes_in == np.float32:
        against = FINITE_DIFFERENCES_32
    dx, grads = run_backward(layer, name, grad_output)
    forward = layer.forward
    checks = []
    if not no_input_grad(layer, dx):
        numeric = eval_numerical_gradient_array(forward, x, grad_output, STEP[against])
        checks.append(compare("input.grad", against, shape, dx, numeric))
    for pname, param in layer.named_parameters():
        numeric = eval_numerical_gradient_array(lambda _: forward(x), param.data, grad_output, STEP[against])
        checks.append(compare(f"{pname}.grad", against, shape, grads[pname], numeric))
    return checks


def check_loss(
    make_layer: Callable[[], Any],
    make_twin: Callable[[], torch.nn.Module] | None,
    names: tuple[str, str],
    shape: tuple[int, ...],
    rng: np.random.Generator,
    options: Options,
) -> list[Comparison]:
    """A loss layer (``forward(input, target)``, ``backward()``): its loss and input gradient, class-index targets."""
    name, twin_name = names
    layer = build(name, make_layer, options).double()
    x = rng.standard_normal(shape)
    target = rng.integers(0, shape[1], shape[0])
    loss = call(f"{name}.forward", layer.forward, x, target)
    dx = call(f"{name}.backward", layer.backward)
    checks = []
    if make_twin is not None:
        import torch

        twin = call(twin_name, make_twin)
        tx = torch.from_numpy(x.astype(np.float32)).requires_grad_()
        expected = twin(tx, torch.from_numpy(target))
        expected.backward()
        checks.append(compare("loss", AUTOGRAD, shape, np.asarray(loss, np.float32), expected.detach().numpy()))
        checks.append(compare("input.grad", AUTOGRAD, shape, dx, tx.grad.numpy()))
    against = FINITE_DIFFERENCES_32 if layer.computes_in == np.float32 else FINITE_DIFFERENCES
    numeric = eval_numerical_gradient_array(
        lambda v: np.asarray(layer.forward(v, target)), x, np.ones(()), STEP[against]
    )
    checks.append(compare("input.grad", against, shape, dx, numeric))
    return checks


def check_layer(
    make_layer: Callable[[], Any],
    input_shapes: Sequence[tuple[int, ...]],
    make_twin: Callable[[], torch.nn.Module] | None = None,
    *,
    draws: int = 2,
    names: tuple[str, str] = ("layer", "twin"),
    options: Options = Options(),
) -> GradcheckResult:
    """Check the layer ``make_layer()`` builds on ``draws`` random inputs of each shape.

    Against ``make_twin()`` by autograd on every input when a twin is given; by finite differences,
    which take two forward passes per input and parameter value, on the first input of each shape
    (on every input without a twin). The first shape must work; a later one that the twin refuses is
    skipped and noted. Shapes are the layer's own: in its layout, for a layer read through the adapter.
    """
    result = GradcheckResult()
    if make_twin is not None:
        options, note = choose_reading(make_layer, make_twin, names, input_shapes[0], options)
        result.notes += [note] if note else []
    shapes = twin_shapes(call(names[1], make_twin)) if make_twin is not None else None
    probe = build(names[0], make_layer, options, shapes)
    if isinstance(probe, Adapted) and probe.is_loss:
        for number, shape in enumerate(input_shapes):
            for draw in range(draws):
                rng = generator(number, Stream.GRADCHECK, draw)
                result.comparisons += check_loss(make_layer, make_twin, names, shape, rng, options)
        probe.forward(np.zeros(input_shapes[0]), np.zeros(input_shapes[0][0], int))
        result.notes += [*reading_note(probe), f"  a loss layer: targets handed over as {probe.target}"]
        return result
    for number, shape in enumerate(input_shapes):
        rngs = [generator(number, Stream.GRADCHECK, draw) for draw in range(draws)]
        if make_twin is not None:
            try:
                checks = [
                    c for rng in rngs for c in check_against_twin(make_layer, make_twin, names, shape, rng, options)
                ]
            except TwinRefused as error:
                if number == 0:
                    raise
                result.skipped.append(f"input {shape} skipped: {error}")
                continue
            result.comparisons += checks
            if not all(c.comparable for c in checks if c.tensor == "output"):
                continue  # an output of the wrong shape has no gradient to check
        for rng in rngs if make_twin is None else rngs[:1]:
            result.comparisons += check_by_finite_differences(make_layer, names[0], shape, rng, options, shapes)
    probe = build(names[0], make_layer, options, shapes)
    if isinstance(probe, Adapted):
        probe.double()
        shape = options.layout.torch_shape(input_shapes[0]) if options.layout else input_shapes[0]
        run_backward(probe, names[0], run_forward(probe, names[0], np.zeros(shape)))
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
    return result


def format_result(result: GradcheckResult) -> str:
    """The table (the worst of every input per tensor), where each failing tensor differs most, the verdict."""
    rows, failures, differences = [], [], []
    for (tensor, against), comparisons in result.by_tensor().items():
        passed = all(c.passed for c in comparisons)
        worst = max(comparisons, key=lambda c: (not c.passed, not c.comparable, bool(c.note), c.max_rel))
        errors = ("-", "-")
        if all(c.comparable for c in comparisons):
            errors = (f"{max(c.max_abs for c in comparisons):.2e}", f"{worst.max_rel:.2e}")
        verdict = "ok" if passed and not worst.note else BUFFER_DIFFERS if passed else "FAIL"
        rows.append((tensor, against, *errors, verdict))
        if not passed:
            failures.append(f"{tensor} differs from {against} for input {worst.input_shape}, {worst.where}")
        elif worst.note and worst.note not in differences:
            differences.append(worst.note)
    headers = ["tensor", "against", "max abs error", "max rel error", "verdict"]
    verdict = (
        f"FAIL: {len(failures)} of {len(rows)} checks failed" if failures else f"ok: all {len(rows)} checks passed"
    )
    if differences and not failures:
        passed = len(rows) - len(differences)
        verdict = f"ok: all {passed} gradient and output checks passed; {len(differences)} buffer(s) differ"
    table = tabulate(rows, headers=headers, disable_numparse=True)
    return "\n".join(
        [*result.notes, *([""] if result.notes else []), table, *result.skipped, *differences, *failures, verdict]
    )


def parse_args(text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``"3, 8, 3, padding=1"`` as positional and keyword arguments (Python literals only)."""
    try:
        call_node = ast.parse(f"f({text})", mode="eval").body
        args = tuple(ast.literal_eval(arg) for arg in call_node.args)
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call_node.keywords}
        if None in kwargs:
            raise ValueError("**kwargs is not supported")
    except (SyntaxError, ValueError) as error:
        raise LayerError(
            f'--args {text!r} does not parse as arguments of Python literals, e.g. "3, 8, 3, padding=1" ({error})'
        ) from None
    return args, kwargs


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(size) for size in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise LayerError(f"--input {text!r} is not a shape: write positive sizes separated by commas, e.g. 2,3,12,12")
    return shape


def nearby_shapes(shape: tuple[int, ...], layout: Layout | None = None) -> list[tuple[int, ...]]:
    """``shape``, a batch of 1, and one more of every size but the channels: other batches, odd sizes.

    In the layer's own layout: a layout without a batch axis keeps a batch of 1.
    """
    torch_shape = layout.torch_shape(shape) if layout else shape
    nearby = [
        torch_shape,
        (1, *torch_shape[1:]),
        (torch_shape[0] + 1, *torch_shape[1:2], *(size + 1 for size in torch_shape[2:])),
    ]
    if layout:
        nearby = [layout.layer_shape(s) or layout.layer_shape((1, *s[1:])) for s in nearby]
    return list(dict.fromkeys(s for s in nearby if s))
