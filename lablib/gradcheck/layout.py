"""Layouts: the order of a foreign layer's input and output axes, and arrays moved between it and PyTorch's.

Students lay inputs out in orders of their own: ``(N, H, W, C)``, batch-last ``(C, H, W, N)``,
features-first ``(in, N)``, a tutorial's ``(H, W)`` images of a batch of 1. ``Layout("NHWC")``,
``parse_layout("HW->HWC")`` or :func:`infer_layout` from an input shape says which; the checker hands
the layer its arrays in that layout and reads them back in PyTorch's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lablib.adapter.errors import AdapterError


def torch_letters(letters: str) -> str:
    """PyTorch's layout of the tensor a layout describes: ``NCHW`` for images, ``NC`` for features."""
    return "NCHW" if set(letters) & set("HW") else "NC"


@dataclass(frozen=True)
class Layout:
    """The letters of the layer's input and output axes (``N`` batch, ``C`` channels, ``H``, ``W``).

    A letter that is absent is an axis of size 1 the layer does not have: ``HW`` is one image of one
    channel, ``HWC`` one image.
    """

    input: str
    output: str = ""

    def __post_init__(self) -> None:
        if not self.output:
            out = self.input if "C" in self.input else self.input + "C"
            object.__setattr__(self, "output", out)
        for letters in (self.input, self.output):
            if len(set(letters)) != len(letters) or not set(letters) <= set("NCHW") or "C" not in letters + "C":
                raise AdapterError(f"layout {letters!r}: use each of the letters N, C, H, W at most once, e.g. NHWC")

    def __str__(self) -> str:
        return self.input if self.output == self.input else f"{self.input}->{self.output}"

    @property
    def is_torch(self) -> bool:
        return self.input == torch_letters(self.input) and self.output == torch_letters(self.output)

    def layer_shape(self, shape: Sequence[int]) -> tuple[int, ...] | None:
        """An input shape in PyTorch's layout as the layer's layout has it; None if it has no such axis."""
        return _shape_to(tuple(shape), torch_letters(self.input), self.input)

    def torch_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        return _shape_to(tuple(shape), self.input, torch_letters(self.input))


def _shape_to(shape: tuple[int, ...], source: str, target: str) -> tuple[int, ...] | None:
    sizes = dict(zip(source, shape, strict=True))
    if any(sizes[letter] != 1 for letter in source if letter not in target):
        return None
    return tuple(sizes.get(letter, 1) for letter in target)


def to_layer(x: np.ndarray, letters: str) -> np.ndarray:
    """A PyTorch-layout array in the layout ``letters``."""
    source = torch_letters(letters)
    if x.ndim != len(source):
        raise AdapterError(f"an array of shape {x.shape} is not {source}, so it cannot be laid out as {letters}")
    if any(x.shape[i] != 1 for i, letter in enumerate(source) if letter not in letters):
        lost = [letter for letter in source if letter not in letters]
        raise AdapterError(f"layout {letters} has no axis {', '.join(lost)}: it takes a size of 1 there, not {x.shape}")
    kept = [letter for letter in source if letter in letters]
    squeezed = x.reshape([size for size, letter in zip(x.shape, source, strict=True) if letter in letters])
    return squeezed.transpose([kept.index(letter) for letter in letters])


def to_torch(y: np.ndarray, letters: str) -> np.ndarray:
    """An array in the layout ``letters`` in PyTorch's layout."""
    if y.ndim != len(letters):
        raise AdapterError(f"the layer returned shape {y.shape}, which is not the layout {letters}")
    target = torch_letters(letters)
    ordered = y.transpose([letters.index(letter) for letter in target if letter in letters])
    sizes = dict(zip([letter for letter in target if letter in letters], ordered.shape, strict=True))
    return ordered.reshape([sizes.get(letter, 1) for letter in target])


def infer_layout(shape: Sequence[int], channels: int | None = None) -> tuple[Layout | None, str]:
    """The layout an input of ``shape`` is in, and how it was decided; None where the shape allows several.

    ``channels`` (the layer's input channels or features) decides between ``NCHW``, ``NHWC`` and
    batch-last ``CHWN``, or ``NC`` and features-first ``CN``; square images decide where it is unknown.
    """
    options = {1: ["C"], 2: ["NC", "CN", "HW"], 3: ["HWC", "CHW"], 4: ["NCHW", "NHWC", "CHWN"]}.get(len(shape), [])
    fits = []
    for letters in options:
        sizes = dict(zip(letters, shape, strict=True))
        square = "H" not in sizes or sizes["H"] == sizes["W"]
        if (sizes.get("C", 1) == channels) if channels is not None else square:
            fits.append(letters)
    if channels is None and len(shape) == 2:
        fits = ["NC"]
    square = [
        letters for letters in fits if "H" not in letters or shape[letters.index("H")] == shape[letters.index("W")]
    ]
    if len(fits) > 1 and len(square) == 1:
        return Layout(square[0]), f"inferred from the input shape, {channels} input channels and square images"
    if len(fits) == 1:
        why = f"{channels} input channels" if channels is not None else "square images"
        return Layout(fits[0]), f"inferred from the input shape and {why}"
    if not fits:
        return None, f"no layout of {options} fits input shape {tuple(shape)} with {channels} input channels"
    return None, f"input shape {tuple(shape)} fits layouts {', '.join(fits)}: give one with --layout"


def parse_layout(text: str) -> Layout:
    """``NHWC``, or ``HW->HWC`` where the output's layout differs from the input's."""
    source, _, target = text.upper().partition("->")
    return Layout(source.strip(), target.strip())
