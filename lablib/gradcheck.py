"""Check anyone's NumPy layer: its output and every gradient against PyTorch autograd and finite differences.

  python -m lablib.gradcheck my_layers.py:MyConv2d --twin torch.nn.Conv2d --args "3, 8, 3, padding=1" --input 2,3,12,12

The layer follows the NumPy core's contract (``lablib.nn.Module``): ``forward(x)`` keeps what
``backward(grad_output)`` needs; ``backward`` accumulates each ``Parameter``'s gradient into its
``.grad`` and returns the gradient with respect to ``x``; parameters and buffers carry PyTorch's
names. Layer and twin are built from the same arguments, the layer's parameters are drawn afresh
(so that no weight of 1 or bias of 0 hides a mistake) and copied into the twin, and then:

* against autograd, in float32: the output, the input gradient, every parameter gradient and
  every buffer (BatchNorm's running statistics);
* against central finite differences, in float64: the input gradient and every parameter gradient.

Each check runs on a few random inputs of each input shape. An error counts against the largest
expected magnitude of its tensor (at least 1): the "max rel error" of the table. Without a twin
(a layer of one's own design) only finite differences check it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from tabulate import tabulate

from lablib.nn.gradient_check import eval_numerical_gradient_array
from lablib.nn.module import Module
from lablib.rng import Stream, generator

AUTOGRAD = "autograd (float32)"
FINITE_DIFFERENCES = "finite differences (float64)"
TOLERANCE = {AUTOGRAD: 1e-4, FINITE_DIFFERENCES: 1e-6}


class LayerError(Exception):
    """The layer, its twin or the command's arguments do not allow a check; the message says why."""


class TwinRefused(LayerError):
    """The twin fails on an input shape: PyTorch does not define the layer there."""


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

    @property
    def comparable(self) -> bool:
        """False when the shapes differ or a value is NaN: no error can be measured."""
        return not np.isnan(self.max_abs)


@dataclass
class GradcheckResult:
    comparisons: list[Comparison] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

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
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise LayerError(f"{what} failed: {type(error).__name__}: {first_line}") from error


def build(name: str, make: Callable[[], Any]) -> Module:
    layer = call(name, make)
    if not isinstance(layer, Module):
        raise LayerError(
            f"{name} built a {type(layer).__name__}, not a lablib.nn.Module: subclass lablib.nn.Module "
            "and define forward and backward"
        )
    return layer


def run_forward(layer: Module, name: str, x: np.ndarray) -> np.ndarray:
    y = call(f"{name}.forward on input of shape {x.shape}", layer.forward, x)
    if not isinstance(y, np.ndarray):
        raise LayerError(f"{name}.forward returned {type(y).__name__}, expected a NumPy array")
    if y.dtype != x.dtype:
        raise LayerError(f"{name}.forward returned {y.dtype} for {x.dtype} input: keep the input's dtype")
    return y


def run_backward(layer: Module, name: str, grad_output: np.ndarray) -> tuple[Any, dict[str, np.ndarray]]:
    """The input gradient and a copy of every parameter gradient, from one backward after ``zero_grad``."""
    layer.zero_grad()
    dx = call(f"{name}.backward", layer.backward, grad_output)
    grads = {}
    for pname, param in layer.named_parameters():
        if param.grad is None:
            raise LayerError(f"{name}.backward left {pname}.grad None: accumulate it with Parameter.accumulate_grad")
        grads[pname] = np.array(param.grad, copy=True)
    return dx, grads


def check_against_twin(
    make_layer: Callable[[], Module],
    make_twin: Callable[[], torch.nn.Module],
    names: tuple[str, str],
    shape: tuple[int, ...],
    rng: np.random.Generator,
) -> list[Comparison]:
    """Output, input and parameter gradients and buffers against autograd, in float32."""
    name, twin_name = names
    layer, twin = build(name, make_layer).float(), call(twin_name, make_twin)
    draw_parameters(layer, rng)
    state = layer.state_dict()
    twin_keys = list(twin.state_dict())
    if sorted(state) != sorted(twin_keys):
        raise LayerError(
            f"{name}'s parameters and buffers {sorted(state)} are not {twin_name}'s {sorted(twin_keys)}: "
            "name them as PyTorch does"
        )
    twin.load_state_dict({key: torch.from_numpy(np.array(value)) for key, value in state.items()})
    x = rng.standard_normal(shape).astype(np.float32)
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
    checks.append(compare("input.grad", AUTOGRAD, shape, dx, tx.grad.numpy()))
    twin_params = dict(twin.named_parameters())
    checks += [compare(f"{p}.grad", AUTOGRAD, shape, grads[p], twin_params[p].grad.numpy()) for p in grads]
    buffers = layer.state_dict()
    checks += [
        compare(b, AUTOGRAD, shape, buffers[b], value.numpy())
        for b, value in twin.named_buffers()
        if value.is_floating_point()
    ]
    return checks


def check_by_finite_differences(
    make_layer: Callable[[], Module], name: str, shape: tuple[int, ...], rng: np.random.Generator
) -> list[Comparison]:
    """Input and parameter gradients against central differences of ``sum(forward(x) * grad_output)``, in float64."""
    layer = build(name, make_layer).double()
    draw_parameters(layer, rng)
    x = rng.standard_normal(shape)
    grad_output = rng.standard_normal(run_forward(layer, name, x).shape)
    dx, grads = run_backward(layer, name, grad_output)
    forward = layer.forward
    checks = [
        compare("input.grad", FINITE_DIFFERENCES, shape, dx, eval_numerical_gradient_array(forward, x, grad_output))
    ]
    for pname, param in layer.named_parameters():
        numeric = eval_numerical_gradient_array(lambda _: forward(x), param.data, grad_output)
        checks.append(compare(f"{pname}.grad", FINITE_DIFFERENCES, shape, grads[pname], numeric))
    return checks


def check_layer(
    make_layer: Callable[[], Module],
    input_shapes: Sequence[tuple[int, ...]],
    make_twin: Callable[[], torch.nn.Module] | None = None,
    *,
    draws: int = 2,
    names: tuple[str, str] = ("layer", "twin"),
) -> GradcheckResult:
    """Check the layer ``make_layer()`` builds on ``draws`` random inputs of each shape.

    Against ``make_twin()`` by autograd on every input when a twin is given; by finite differences,
    which take two forward passes per input and parameter value, on the first input of each shape
    (on every input without a twin). The first shape must work; a later one that the twin refuses is
    skipped and noted.
    """
    result = GradcheckResult()
    for number, shape in enumerate(input_shapes):
        rngs = [generator(number, Stream.GRADCHECK, draw) for draw in range(draws)]
        if make_twin is not None:
            try:
                checks = [c for rng in rngs for c in check_against_twin(make_layer, make_twin, names, shape, rng)]
            except TwinRefused as error:
                if number == 0:
                    raise
                result.skipped.append(f"input {shape} skipped: {error}")
                continue
            result.comparisons += checks
            if not all(c.comparable for c in checks if c.tensor == "output"):
                continue  # an output of the wrong shape has no gradient to check
        for rng in rngs if make_twin is None else rngs[:1]:
            result.comparisons += check_by_finite_differences(make_layer, names[0], shape, rng)
    return result


def format_result(result: GradcheckResult) -> str:
    """The table (the worst of every input per tensor), where each failing tensor differs most, the verdict."""
    rows, failures = [], []
    for (tensor, against), comparisons in result.by_tensor().items():
        passed = all(c.passed for c in comparisons)
        worst = max(comparisons, key=lambda c: (not c.passed, not c.comparable, c.max_rel))
        errors = ("-", "-")
        if all(c.comparable for c in comparisons):
            errors = (f"{max(c.max_abs for c in comparisons):.2e}", f"{worst.max_rel:.2e}")
        rows.append((tensor, against, *errors, "ok" if passed else "FAIL"))
        if not passed:
            failures.append(f"{tensor} differs from {against} for input {worst.input_shape}, {worst.where}")
    headers = ["tensor", "against", "max abs error", "max rel error", "verdict"]
    verdict = (
        f"FAIL: {len(failures)} of {len(rows)} checks failed" if failures else f"ok: all {len(rows)} checks passed"
    )
    return "\n".join([tabulate(rows, headers=headers, disable_numparse=True), *result.skipped, *failures, verdict])


def load_class(path: str) -> type:
    """``file.py:Name``, ``package.module:Name`` or ``package.module.Name``."""
    module_path, sep, attr = path.rpartition(":") if ":" in path else path.rpartition(".")
    if not sep or not module_path or not attr:
        raise LayerError(f"{path!r} does not name a class: write FILE.py:CLASS or package.module.CLASS")
    if module_path.endswith(".py"):
        file = Path(module_path)
        if not file.is_file():
            raise LayerError(f"{path!r}: there is no file {module_path}")
        spec = importlib.util.spec_from_file_location(file.stem, file)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(file.resolve().parent))  # the file may import its neighbours
        try:
            call(f"importing {module_path}", spec.loader.exec_module, module)
        finally:
            sys.path.remove(str(file.resolve().parent))
    else:
        try:
            module = importlib.import_module(module_path)
        except ImportError as error:
            raise LayerError(f"{path!r}: cannot import {module_path}: {error}") from None
    cls = getattr(module, attr, None)
    if not isinstance(cls, type):
        defined = sorted(n for n, v in vars(module).items() if isinstance(v, type) and v.__module__ == module.__name__)
        raise LayerError(f"{path!r}: {module_path} has no class {attr} (it defines {', '.join(defined) or 'none'})")
    return cls


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


def nearby_shapes(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """``shape``, a batch of 1, and one more of every size but the channels: other batches, odd sizes."""
    shapes = [shape, (1, *shape[1:]), (shape[0] + 1, *shape[1:2], *(size + 1 for size in shape[2:]))]
    return list(dict.fromkeys(shapes))


@click.command()
@click.argument("layer")
@click.option(
    "--twin", help="PyTorch's layer to compare with, e.g. torch.nn.Conv2d; without it, finite differences only."
)
@click.option(
    "--args", "arguments", default="", show_default=True, help="Arguments of both constructors, Python literals."
)
@click.option(
    "--input",
    "inputs",
    multiple=True,
    required=True,
    help="An input shape, e.g. 2,3,12,12. Once: that shape and nearby ones (batch, odd sizes); repeat to set each.",
)
@click.option("--draws", default=2, show_default=True, type=click.IntRange(1), help="Random inputs per shape.")
def main(layer: str, twin: str | None, arguments: str, inputs: tuple[str, ...], draws: int) -> None:
    """Check LAYER (FILE.py:CLASS or package.module.CLASS), a NumPy layer with forward and backward, against
    PyTorch autograd (float32) and finite differences (float64). Exits 0 only when every check passes."""
    try:
        shapes = [parse_shape(text) for text in inputs]
        shapes = nearby_shapes(shapes[0]) if len(shapes) == 1 else shapes
        args, kwargs = parse_args(arguments)
        layer_cls = load_class(layer)
        twin_cls = load_class(twin) if twin else None
        signature = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        names = (f"{layer_cls.__name__}({signature})", f"{twin}({signature})")
        make_twin = (lambda: twin_cls(*args, **kwargs)) if twin_cls else None
        result = check_layer(lambda: layer_cls(*args, **kwargs), shapes, make_twin, draws=draws, names=names)
    except LayerError as error:
        usage = click.ClickException(str(error))
        usage.exit_code = 2  # 1 means a check failed
        raise usage from None
    against = f"{twin} autograd and finite differences" if twin else "finite differences alone"
    click.echo(f"{names[0]} against {against}, inputs {', '.join(map(str, shapes))}, {draws} random inputs each\n")
    click.echo(format_result(result))
    sys.exit(0 if result.passed else 1)


if __name__ == "__main__":
    main()
