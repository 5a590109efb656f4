"""The command line's own syntax: constructor arguments (``--args``), input shapes (``--input``) and which
attribute is which tensor (``--param``)."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from typing import Any

from lablib.adapter.arrays import Path_
from lablib.adapter.errors import AdapterError
from lablib.gradcheck.layout import Layout


def parse_args(text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``"3, 8, 3, padding=1"`` as positional and keyword arguments (Python literals only)."""
    try:
        call_node = ast.parse(f"f({text})", mode="eval").body
        args = tuple(ast.literal_eval(arg) for arg in call_node.args)
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call_node.keywords}
        if None in kwargs:
            raise ValueError("**kwargs is not supported")
    except (SyntaxError, ValueError) as error:
        raise AdapterError(
            f'--args {text!r} does not parse as arguments of Python literals, e.g. "3, 8, 3, padding=1" ({error})'
        ) from None
    return args, kwargs


def parse_shape(text: str) -> tuple[int, ...]:
    """``"2,3,12,12"`` as a shape of positive sizes."""
    try:
        shape = tuple(int(size) for size in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise AdapterError(f"--input {text!r} is not a shape: write positive sizes separated by commas, e.g. 2,3,12,12")
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


def parse_mapping(items: Sequence[str]) -> dict[str, tuple[Path_, Path_ | None]]:
    """``["weight=weights:d_weights", "running_var=rv", "bias=params['b']:grads['b']"]`` as paths by torch name."""
    mapping: dict[str, tuple[Path_, Path_ | None]] = {}
    for item in items:
        name, sep, rest = item.partition("=")
        value, _, grad = rest.partition(":")
        if not sep or not name.strip() or not value.strip():
            raise AdapterError(
                f"--param {item!r}: write TORCH_NAME=ATTRIBUTE[:GRADIENT], e.g. weight=weights:d_weights"
            )
        mapping[name.strip()] = (_parse_path(value), _parse_path(grad) if grad.strip() else None)
    return mapping


def _parse_path(text: str) -> Path_:
    match = re.fullmatch(r"\s*(\w+)((?:\[['\"]?\w+['\"]?\])*)\s*", text)
    if not match:
        raise AdapterError(f"{text!r} is not an attribute: write NAME or NAME['KEY']")
    return (match.group(1), *re.findall(r"\[['\"]?(\w+)['\"]?\]", match.group(2)))
