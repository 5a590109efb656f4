"""Check anyone's NumPy layer, network or class of hand-ins: each gradient against autograd and finite differences.

  python -m lablib.gradcheck my_layers.py:MyConv2d --twin torch.nn.Conv2d --args "3, 8, 3, padding=1" --input 2,3,12,12
  python -m lablib.gradcheck model/layer.py:Conv2d --twin torch.nn.Conv2d --args "3, 8, 3, 2, 1" --input 2,3,12,12
  python -m lablib.gradcheck model/network.py:Network
  python -m lablib.gradcheck handins/ --out grades/

One layer (:mod:`lablib.gradcheck.layer`): a ``lablib.nn.Module``, or a layer written to the course
template or a tutorial, read unchanged through the adapter (:mod:`lablib.gradcheck.foreign`, built on
:mod:`lablib.adapter`), against its PyTorch twin and finite differences. One network
(:mod:`lablib.gradcheck.network`): a template ``Network`` (``forward(input, target) -> (pred, loss)``,
``backward()``) by finite differences, through the whole network and layer by layer. One class
(:mod:`lablib.gradcheck.classroom`): a folder of hand-ins, each network (and, with a mapping file, each
named layer) checked in its own sealed process (:mod:`lablib.gradcheck.sandbox`), into one table, a
grid and a feedback file per student (:mod:`lablib.gradcheck.feedback`). Every check ends in one
:class:`~lablib.gradcheck.result.Check`, printed by :mod:`lablib.gradcheck.formatting`; every failure
that stops one is an :class:`~lablib.adapter.errors.AdapterError`, one line.
Exit status: 0 when every check passes, 1 when one fails (the student's constructor, forward or backward
raising included: the failure names the exception and the student's file and line), 2 when the command
cannot run (a missing file, a bad argument or shape).

The modules, one concern each: the command line's syntax (``arguments``); a foreign layer as the checks
read it (``foreign``, with ``layout``, ``shapes``, ``inspection`` and ``loader``); a layer's check
(``layer``, ``layer_checks``, ``build``, ``compare``); a network's (``network``, ``probe``, ``sampling``,
``alone``, ``network_twin``, ``network_discovery``); names found by behaviour (``discovery``); a class's
(``classroom``, ``sandbox``, ``feedback``); the result (``result``) and its text (``formatting``).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import NoReturn

import click

from lablib.adapter.errors import AdapterError, call
from lablib.adapter.methods import BACKWARD_NAMES, FORWARD_NAMES
from lablib.gradcheck.arguments import nearby_shapes, parse_args, parse_mapping, parse_shape
from lablib.gradcheck.build import Options
from lablib.gradcheck.diagnosis import crash_site
from lablib.gradcheck.formatting import format_layer, format_network
from lablib.gradcheck.inspection import is_loss
from lablib.gradcheck.layer import check_layer, resolve_layout
from lablib.gradcheck.layout import parse_layout
from lablib.gradcheck.loader import load_class
from lablib.gradcheck.network import DEFAULT_INPUTS, check_network
from lablib.gradcheck.result import Check
from lablib.nn.module import Module

__all__ = ["main"]


def run_layer(
    layer: str,
    twin: str | None,
    arguments: str,
    twin_arguments: str | None,
    inputs: tuple[str, ...],
    draws: int,
    options: Options,
) -> tuple[Check, str]:
    """The layer mode: the classes loaded, the layout and input shapes settled, the check and its header."""
    if not inputs:
        raise AdapterError("give the layer's input shape with --input, e.g. --input 2,3,12,12")
    shapes = [parse_shape(text) for text in inputs]
    args, kwargs = parse_args(arguments)
    twin_args, twin_kwargs = parse_args(twin_arguments) if twin_arguments is not None else (args, kwargs)
    layer_cls = load_class(layer)
    twin_cls = load_class(twin) if twin else None
    signature = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
    twin_signature = ", ".join([*map(repr, twin_args), *(f"{k}={v!r}" for k, v in twin_kwargs.items())])
    names = (f"{layer_cls.__name__}({signature})", f"{twin}({twin_signature})")
    make_layer = lambda: layer_cls(*args, **kwargs)  # noqa: E731
    make_twin = (lambda: twin_cls(*twin_args, **twin_kwargs)) if twin_cls else None
    layout_note = f"layout {options.layout}, as given"
    if options.layout is None:
        layout, layout_note = resolve_layout(names[0], make_layer, make_twin, shapes[0])
        options = Options(options.mapping, layout, options.choice, options.target)
    foreign_without_layout = options.layout is None and not isinstance(call(names[0], make_layer), Module)
    if len(shapes) == 1 and not foreign_without_layout:  # a layout unknown, the nearby shapes are too
        shapes = nearby_shapes(shapes[0], options.layout)
    result = check_layer(make_layer, shapes, make_twin, draws=draws, names=names, options=options)
    result.name = layer.rpartition(":")[2] or layer
    if options.layout is not None and layout_note:
        result.notes.append(f"  {layout_note}")
    against = f"{twin} autograd and finite differences" if twin else "finite differences alone"
    header = f"{names[0]} against {against}, inputs {', '.join(map(str, shapes))}, {draws} random inputs each\n"
    return result, header


def is_network(cls: type) -> bool:
    """True for a class shaped as the template's Network: ``forward(input, target)`` and ``backward()``,
    named a network or a model (a loss layer has the same methods)."""
    methods = [
        next((getattr(cls, n) for n in names if callable(getattr(cls, n, None))), None)
        for names in (FORWARD_NAMES[:1] + FORWARD_NAMES[2:], BACKWARD_NAMES)
    ]
    if not any(word in cls.__name__.lower() for word in ("net", "model")) or None in methods:
        return False
    return is_loss(*(functools.partial(method, None) for method in methods))


def cannot_run(error: AdapterError, json_file: str | None) -> NoReturn:
    """Exit 2, the command's misuse (a missing file, a bad shape), with its one line (and as JSON where asked)."""
    if json_file:
        Path(json_file).write_text(Check(failure="error", reason=str(error)).to_json())
    usage = click.ClickException(str(error))
    usage.exit_code = 2  # 1 means a check failed
    raise usage from None


@click.command()
@click.argument("layer")
@click.option(
    "--twin", help="PyTorch's layer to compare with, e.g. torch.nn.Conv2d; without it, finite differences only."
)
@click.option(
    "--args", "arguments", default="", show_default=True, help="Arguments of both constructors, Python literals."
)
@click.option("--twin-args", "twin_arguments", help="The twin's own arguments, where they differ from the layer's.")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    help="An input shape in the layer's own layout, e.g. 2,3,12,12. Once: that shape and nearby ones (batch, odd "
    "sizes); repeat to set each. A network tries (3, 784) and (3, 1, 28, 28) without it.",
)
@click.option("--draws", default=2, show_default=True, type=click.IntRange(1), help="Random inputs per shape.")
@click.option(
    "--param",
    "params",
    multiple=True,
    help="Which attribute is which tensor, e.g. weight=weights:d_weights or running_var=rv (repeat per tensor).",
)
@click.option("--layout", help="The layer's layout when the shapes leave it open: NCHW, NHWC, CHWN, NC, CN, HW->HWC.")
@click.option(
    "--target", type=click.Choice(["indices", "onehot"]), help="How a loss or network takes targets (default: tried)."
)
@click.option("--network", "as_network", is_flag=True, help="Check LAYER as a template Network (found on its own).")
@click.option("--exclude", multiple=True, help="A network's parameter to leave out, by attribute or layer.attribute.")
@click.option("--classes", type=click.IntRange(2), help="A network's classes (default: its output's width).")
@click.option("--layers", "layers_file", type=click.Path(dir_okay=False), help="Class mode: YAML of layers to check.")
@click.option("--timeout", default=120, show_default=True, type=click.IntRange(1), help="Class mode: seconds a check.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Class mode: folder for gradcheck.md, gradcheck.csv, grid.md and feedback/<student>.md.",
)
@click.option("--memory", type=click.IntRange(64), help="Class mode: MiB of address space a check (default 4096).")
@click.option("--file-size", type=click.IntRange(1), help="Class mode: MiB a check may write to a file (default 64).")
@click.option(
    "--scheduler",
    help="Class mode: check the hand-ins as tasks of the Dask cluster whose scheduler is at this address "
    "(tcp://host:8786), each sealed and timed on its worker as here.",
)
@click.option("--json", "json_file", type=click.Path(dir_okay=False), hidden=True, help="Write the verdict as JSON.")
def main(
    layer: str,
    twin: str | None,
    arguments: str,
    twin_arguments: str | None,
    inputs: tuple[str, ...],
    draws: int,
    params: tuple[str, ...],
    layout: str | None,
    target: str | None,
    as_network: bool,
    exclude: tuple[str, ...],
    classes: int | None,
    layers_file: str | None,
    timeout: int,
    out: str | None,
    memory: int | None,
    file_size: int | None,
    scheduler: str | None,
    json_file: str | None,
) -> None:
    """Check LAYER (FILE.py:CLASS or package.module.CLASS), a NumPy layer with forward and backward, against
    PyTorch autograd (float32) and finite differences (float64); a template Network (found on its own, or
    --network) by finite differences; or every hand-in in the folder LAYER. Exits 0 only when every check passes."""
    try:
        if Path(layer).is_dir():
            from lablib.gradcheck.classroom import grade_class

            given = {"memory": memory, "file_size": file_size}
            limits = {key: mib << 20 for key, mib in given.items() if mib is not None}
            out_dir = Path(out) if out else None
            sys.exit(grade_class(Path(layer), layers_file, timeout, out_dir, inputs, target, limits, scheduler))
        if scheduler:
            raise AdapterError(f"--scheduler checks a class: {layer} is not a folder of hand-ins")
        options = Options(parse_mapping(params), parse_layout(layout) if layout else None, target=target)
        layer_cls = load_class(layer)
    except AdapterError as error:
        cannot_run(error, json_file)
    try:
        if as_network or (twin is None and is_network(layer_cls)):
            network_cls = layer_cls
            args, kwargs = parse_args(arguments)
            shapes = [parse_shape(text) for text in inputs] or list(DEFAULT_INPUTS)
            result = check_network(
                lambda: network_cls(*args, **kwargs),
                shapes,
                target=target,
                classes=classes,
                exclude=exclude,
                mapping=options.mapping,
            )
            click.echo(format_network(result))
        else:
            result, header = run_layer(layer, twin, arguments, twin_arguments, inputs, draws, options)
            click.echo(header)
            click.echo(format_layer(result))
    except AdapterError as error:
        site = crash_site(error)
        if not site:
            cannot_run(error, json_file)
        result = Check(reason=f"{error} ({site})")  # the student's code raised: a failed check, not our misuse
        click.echo(f"FAIL: {result.reason}")
    if json_file:
        Path(json_file).write_text(result.to_json())
    sys.exit(0 if result.passed else 1)
