"""The checks of one layer on one input: against its PyTorch twin's autograd, against finite differences,
and a loss layer's own.

The layer's parameters are drawn afresh (so that no weight of 1 or bias of 0 hides a mistake) and
copied into the twin. Against autograd, in float32: the output, the input gradient, every parameter
gradient and every buffer (BatchNorm's running statistics). Against central finite differences, in
float64 (in float32, with a step and tolerance fit for it, for a layer that computes in float32
whatever it is given): the input gradient and every parameter gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from lablib.adapter.errors import AdapterError, call
from lablib.gradcheck.build import (
    Options,
    build,
    draw_parameters,
    no_input_grad,
    run_backward,
    run_forward,
    torch_input_shape,
    twin_momentum,
    twin_shapes,
)
from lablib.gradcheck.compare import AUTOGRAD, FINITE_DIFFERENCES, FINITE_DIFFERENCES_32, STEP, TOLERANCE, compare
from lablib.gradcheck.diagnosis import FORWARD_DIFFERS
from lablib.gradcheck.foreign import Foreign
from lablib.gradcheck.result import Comparison
from lablib.nn.gradient_check import eval_numerical_gradient_array
from lablib.nn.module import Module

if TYPE_CHECKING:
    import torch

KINK_ENTRIES = 20
# A one-sided difference is exact for a piecewise-linear layer and off by about h * f'' elsewhere.
KINK_TOLERANCE = 1e-4
GUARD_BOUND = 1e-3  # the most, relative, that an epsilon guard may move a loss or an output from its twin's
KINK_NOTE = "entries lie within the step of a kink (their one-sided differences disagree): judged by one side"


def twin_output(twin: torch.nn.Module, twin_name: str, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``twin(x)``; PyTorch's own refusal (an input smaller than the kernel) as one line."""
    try:
        return twin(x)
    except Exception as error:  # PyTorch's own refusal, e.g. an input smaller than the kernel
        raise AdapterError(f"{twin_name} refuses input of shape {shape}: {str(error).splitlines()[0]}") from error


def twin_refusal(
    make_twin: Callable[[], torch.nn.Module], twin_name: str, torch_shape: tuple[int, ...], shape: tuple[int, ...]
) -> str | None:
    """Why the twin refuses an input of ``shape`` (PyTorch does not define the layer there); None if it takes it."""
    import torch

    try:
        twin_output(call(twin_name, make_twin), twin_name, torch.zeros(torch_shape), shape)
    except AdapterError as error:
        return str(error)
    return None


def _twinned(
    make_layer: Callable[[], Any],
    make_twin: Callable[[], torch.nn.Module],
    names: tuple[str, str],
    rng: np.random.Generator,
    options: Options,
) -> tuple[Module, torch.nn.Module, dict[str, np.ndarray]]:
    """The layer in float32 with its parameters drawn, and the twin holding the same: both, and that state."""
    import torch

    name, twin_name = names
    twin = call(twin_name, make_twin)
    layer = build(name, make_layer, options, twin_shapes(twin)).float()
    foreign = isinstance(layer, Foreign)
    draw_parameters(layer, rng)
    state = {key: np.array(value, copy=True) for key, value in layer.state_dict().items()}
    twin_keys = list(twin_shapes(twin) if foreign else twin.state_dict())
    if sorted(state) != sorted(twin_keys):
        if foreign:
            missing = ", ".join(sorted(set(twin_keys) - set(state)))
            raise AdapterError(
                f"{name}: found no attribute for {twin_name}'s {missing} "
                f"({'; '.join(layer.describe()) or 'nothing found'}): say which with --param NAME=ATTRIBUTE:GRADIENT"
            )
        raise AdapterError(
            f"{name}'s parameters and buffers {sorted(state)} are not {twin_name}'s {sorted(twin_keys)}: "
            "name them as PyTorch does"
        )
    twin_state = twin.state_dict()
    wrong = [
        f"{key} {state[key].shape}" for key in state if key in twin_state and state[key].shape != twin_state[key].shape
    ]
    if wrong:
        raise AdapterError(
            f"{name}'s {', '.join(wrong)} are not the shapes of {twin_name}'s: shape them as PyTorch does"
        )
    twin.load_state_dict({key: torch.from_numpy(value) for key, value in state.items()}, strict=not foreign)
    return layer, twin, state


def check_against_twin(
    make_layer: Callable[[], Any],
    make_twin: Callable[[], torch.nn.Module],
    names: tuple[str, str],
    shape: tuple[int, ...],
    rng: np.random.Generator,
    options: Options,
) -> list[Comparison]:
    """Output, input and parameter gradients and buffers against autograd, in float32."""
    import torch  # only where a twin is asked for: a network or a class check runs without it

    layer, twin, state = _twinned(make_layer, make_twin, names, rng, options)
    x = rng.standard_normal(torch_input_shape(layer, options, shape)).astype(np.float32)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = twin_output(twin, names[1], tx, shape)
    y = run_forward(layer, names[0], x)
    expected_y = ty.detach().numpy()
    checks = [compare("output", AUTOGRAD, shape, y, expected_y)]
    if not checks[0].passed:  # a backward of another function than the twin's: finite differences judge it
        checks[0].diagnosis = f"{checks[0].diagnosis}; {FORWARD_DIFFERS}"
        return checks
    grad_output = rng.standard_normal(y.shape).astype(np.float32)
    dx, grads = run_backward(layer, names[0], grad_output)
    ty.backward(torch.from_numpy(grad_output))
    if not no_input_grad(layer, dx):
        checks.append(compare("input.grad", AUTOGRAD, shape, dx, tx.grad.numpy()))
    twin_params = dict(twin.named_parameters())
    checks += [compare(f"{p}.grad", AUTOGRAD, shape, grads[p], twin_params[p].grad.numpy()) for p in grads]
    return checks + _buffer_checks(layer, twin, state, shape, x.size // x.shape[1])


def _buffer_checks(
    layer: Module, twin: torch.nn.Module, before: Mapping[str, np.ndarray], shape: tuple[int, ...], count: int
) -> list[Comparison]:
    """Each floating buffer against the twin's after one forward; a foreign layer's that differs by a
    convention passes, with a note saying which."""
    buffers = layer.state_dict()
    checks = []
    for b, value in twin.named_buffers():
        if not value.is_floating_point():
            continue
        check = compare(b, AUTOGRAD, shape, buffers[b], value.numpy())
        if isinstance(layer, Foreign) and check.comparable and not check.passed:
            check.note = explain_buffer(b, buffers[b], before[b], value.numpy(), twin_momentum(twin), count)
            check.verdict = "differs"
        checks.append(check)
    return checks


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


def check_by_finite_differences(
    make_layer: Callable[[], Any],
    name: str,
    shape: tuple[int, ...],
    rng: np.random.Generator,
    options: Options,
    shapes: Mapping[str, Any] | None = None,
    twin: tuple[Callable[[], torch.nn.Module], list[Comparison]] | None = None,
) -> list[Comparison]:
    """Input and parameter gradients against central differences of ``sum(forward(x) * grad_output)``, in float64.

    A layer that computes in float32 whatever it is given is differentiated in float32, with a step and
    tolerance fit for float32 (its tensors are labelled so). Given its ``twin`` (the twin's factory and the
    comparisons with it), a layer without parameters is judged by :func:`excuse_forward_guard` too.
    """
    layer = build(name, make_layer, options, shapes).double()
    draw_parameters(layer, rng)
    x = rng.standard_normal(torch_input_shape(layer, options, shape))
    grad_output = rng.standard_normal(run_forward(layer, name, x).shape)
    against = FINITE_DIFFERENCES
    if isinstance(layer, Foreign) and layer.computes_in == np.float32:
        against = FINITE_DIFFERENCES_32
    dx, grads = run_backward(layer, name, grad_output)
    forward = layer.forward
    checks = []
    if not no_input_grad(layer, dx):
        numeric = eval_numerical_gradient_array(forward, x, grad_output, STEP[against])
        kinks = at_kinks(forward, x, grad_output, STEP[against], dx, numeric, TOLERANCE[against])
        for index, slope in kinks.items():
            numeric[index] = slope
        comparison = compare("input.grad", against, shape, dx, numeric)
        if kinks:
            comparison = replace(comparison, note=f"input.grad: {len(kinks)} {KINK_NOTE}")
        checks.append(comparison)
    for pname, param in layer.named_parameters():
        numeric = eval_numerical_gradient_array(lambda _: forward(x), param.data, grad_output, STEP[against])
        checks.append(compare(f"{pname}.grad", against, shape, grads[pname], numeric))
    if twin is not None and len(checks) == 1 and not checks[0].passed:
        import torch

        make_twin, twin_checks = twin
        expected = call(name, make_twin).double()(torch.from_numpy(x)).detach().numpy()
        y = np.asarray(forward(x), np.float64)
        if y.shape == expected.shape:
            scale = np.maximum(np.abs(expected), 1e-12 * np.abs(expected).max() or 1e-300)
            checks[0] = excuse_forward_guard(twin_checks, checks[0], float((np.abs(y - expected) / scale).max()))
    return checks


def excuse_forward_guard(twin_checks: list[Comparison], differences: Comparison, r: float) -> Comparison:
    """A layer guarded in its forward alone (``e / (sum(e) + eps)``) passes, its failure so explained noted.

    Its backward is the unguarded function's, which the twin computes. If the guard scales the output by
    ``1 - d(x)`` with ``d`` at most ``r`` (the forward's largest shift from the twin's relative to each entry,
    measured in float64)
    and changing no faster than the output, the guarded function's derivatives differ from the backward by
    at most ``2 r`` relative. So where every comparison with autograd passed, ``r`` is within
    :data:`GUARD_BOUND`, and finite differences differ from the backward by at most their tolerance plus
    ``2 r``, both are the guard's. A backward off by more than autograd's tolerance fails against autograd;
    one off by less fails against finite differences unless the forward moved as much.
    """
    if (
        differences.passed
        or r > GUARD_BOUND
        or not twin_checks
        or not all(c.passed for c in twin_checks)
        or not differences.comparable
        or differences.max_rel > TOLERANCE[differences.against] + 2 * r
    ):
        return differences
    note = (
        f"your forward differs from the twin's by {r:.1e} (relative) and finite differences of it from your "
        f"backward by {differences.max_rel:.1e}: an epsilon guard such as e / (sum(e) + eps) explains both, as "
        "your backward agrees with autograd"
    )
    return replace(differences, verdict="guarded", note=note, diagnosis="")


def at_kinks(
    f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    grad_output: np.ndarray,
    h: float,
    ours: Any,
    numeric: np.ndarray,
    tolerance: float,
) -> dict[tuple[int, ...], float]:
    """The entries of ``x`` where a central difference straddles a kink of ``f`` (ReLU's at 0), each with the
    one-sided slope ``ours`` agrees with.

    Within ``h`` of a kink a central difference averages the slopes of both sides and matches neither. There
    the one-sided differences ``(f(x + h) - f(x)) / h`` and ``(f(x) - f(x - h)) / h`` disagree with each
    other, and a correct gradient equals one of them: such an entry is judged against that one. An entry
    whose one-sided differences agree, or that matches neither, stays as it was and fails. More than
    :data:`KINK_ENTRIES` disagreeing entries are a wrong gradient, not inputs that happen to lie at a kink.
    """
    if not isinstance(ours, np.ndarray) or ours.shape != numeric.shape:
        return {}
    scale = max(1.0, float(np.abs(numeric).max(initial=0)))
    wrong = np.argwhere(np.abs(ours - numeric) > tolerance * scale)
    if not 0 < len(wrong) <= KINK_ENTRIES:
        return {}
    centre = float(np.sum(np.asarray(f(x)) * grad_output))
    kinks = {}
    for index in map(tuple, wrong):
        original = x[index]
        slopes = []
        for step in (h, -h):
            x[index] = original + step
            slopes.append((float(np.sum(np.asarray(f(x)) * grad_output)) - centre) / step)
        x[index] = original
        close = [s for s in slopes if abs(ours[index] - s) <= KINK_TOLERANCE * scale]
        if abs(slopes[0] - slopes[1]) > KINK_TOLERANCE * scale and close:
            kinks[index] = close[0]
    return kinks


def check_loss(
    make_layer: Callable[[], Any],
    make_twin: Callable[[], torch.nn.Module] | None,
    names: tuple[str, str],
    shape: tuple[int, ...],
    rng: np.random.Generator,
    options: Options,
) -> list[Comparison]:
    """A loss layer (``forward(input, target)``, ``backward()``): its loss and input gradient, class-index targets.

    The loss is taken as one term of a larger sum, scaled by a random ``grad_output``, which its gradient must
    follow. An epsilon guard in the forward is judged by :func:`excuse_guard`.
    """
    name, twin_name = names
    layer = build(name, make_layer, options).double()
    x = rng.standard_normal(shape)
    target = rng.integers(0, shape[1], shape[0])
    grad_output = float(rng.uniform(0.5, 2))
    loss = call(f"{name}.forward", layer.forward, x, target)
    dx = call(f"{name}.backward", layer.backward, grad_output)
    checks = []
    moved = 0.0
    if make_twin is not None:
        import torch

        twin = call(twin_name, make_twin)
        tx = torch.from_numpy(x.astype(np.float32)).requires_grad_()
        expected = twin(tx, torch.from_numpy(target))
        expected.backward(torch.tensor(grad_output))
        checks.append(compare("loss", AUTOGRAD, shape, np.asarray(loss, np.float32), expected.detach().numpy()))
        checks.append(compare("input.grad", AUTOGRAD, shape, dx, tx.grad.numpy()))
        moved = abs(loss - float(twin.double()(torch.from_numpy(x), torch.from_numpy(target))))
    against = FINITE_DIFFERENCES_32 if layer.computes_in == np.float32 else FINITE_DIFFERENCES
    numeric = eval_numerical_gradient_array(
        lambda v: np.asarray(layer.forward(v, target)), x, np.array(grad_output), STEP[against]
    )
    checks.append(compare("input.grad", against, shape, dx, numeric))
    return excuse_guard(checks, moved * grad_output)


def excuse_guard(checks: list[Comparison], moved: float) -> list[Comparison]:
    """A loss whose forward carries an epsilon guard (``log(p + eps)``) passes, its failures so explained noted.

    The twin computes the unguarded loss exactly. A guard moves the loss from it by ``moved`` (measured in
    float64), and the finite differences of the guarded loss from an unguarded backward by no more than that:
    each entry's shift is one term of the loss's. So where the backward agrees with autograd, the loss differs
    from the twin's by at most :data:`GUARD_BOUND` (relative; a guard of 1e-5 moves it less), and finite
    differences differ from the backward by at most their tolerance plus ``2 * moved``, both are the guard's.
    A backward off by more than autograd's tolerance (1e-4) fails against autograd; one off by less fails
    against finite differences unless the forward moved as much.
    """
    if len(checks) < 3 or not checks[1].passed:
        return checks
    loss, _, differences = checks
    if not (loss.passed or loss.max_rel <= GUARD_BOUND) or differences.passed:
        return checks
    scale = differences.max_abs / differences.max_rel if differences.max_rel else 1.0
    if not differences.comparable or differences.max_abs > TOLERANCE[differences.against] * scale + 2 * moved:
        return checks
    note = (
        f"a guard moves the loss by {moved:.1e} from the twin's and finite differences of it from your backward by "
        f"{differences.max_abs:.1e}: an epsilon guard such as log(p + eps) explains both, as your backward "
        "agrees with autograd"
    )
    return [replace(c, verdict="guarded", note=note, diagnosis="") if not c.passed else c for c in checks]
