"""Report 000's Table 1 for any model: layer, parameters, input and output shape, and the total.

python -m lablib.models.summary --model lab2025_cnn
"""

from __future__ import annotations

from dataclasses import dataclass

import click
import numpy as np

from lablib.models.numpy_model import Classifier, build_numpy
from lablib.models.specs import get_spec
from lablib.params import MODELS
from lablib.rng import placeholder

HEADER = ("Layer Name", "Parameters", "Input Shape", "Output Shape")


@dataclass(frozen=True)
class SummaryRow:
    """One leaf layer: its class name, parameter count and per-sample shapes (batch axis left out)."""

    layer: str
    parameters: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


def summary(model: Classifier, input_shape: tuple[int, ...] = (1, 28, 28)) -> list[SummaryRow]:
    """One row per layer, in order, found by passing one sample of zeros through the model in eval mode.

    The model's training mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    x = np.zeros((1, *input_shape), dtype=next(model.parameters()).dtype)
    rows = []
    for layer in [*model.features, *model.classifier]:
        y = layer(x)
        parameters = sum(p.data.size for p in layer.parameters())
        rows.append(SummaryRow(type(layer).__name__, parameters, x.shape[1:], y.shape[1:]))
        x = y
    model.train(was_training)
    return rows


def total_parameters(rows: list[SummaryRow]) -> int:
    return sum(row.parameters for row in rows)


def _shape(shape: tuple[int, ...]) -> str:
    """``(32, 28, 28)``, and ``(4096)`` for one axis, as Table 1 writes it."""
    return f"({', '.join(str(d) for d in shape)})"


def _cells(rows: list[SummaryRow]) -> list[tuple[str, str, str, str]]:
    return [(r.layer, f"{r.parameters:,}", _shape(r.input_shape), _shape(r.output_shape)) for r in rows]


def format_summary(rows: list[SummaryRow]) -> str:
    """Table 1 as aligned text (parameters right-aligned) and the total on the last line."""
    table = [HEADER, *_cells(rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    lines = [
        f"{name:<{widths[0]}}  {params:>{widths[1]}}  {shape_in:<{widths[2]}}  {shape_out}".rstrip()
        for name, params, shape_in, shape_out in table
    ]
    lines.append(f"Total number of parameters: {total_parameters(rows):,}")
    return "\n".join(lines)


def summary_markdown(rows: list[SummaryRow]) -> str:
    """Table 1 as a Markdown table, the total in its last row."""
    lines = [f"| {' | '.join(HEADER)} |", "| --- | ---: | --- | --- |"]
    lines += [f"| {' | '.join(cells)} |" for cells in _cells(rows)]
    lines.append(f"| **Total** | **{total_parameters(rows):,}** | | |")
    return "\n".join(lines)


@click.command()
@click.option("--model", "name", type=click.Choice(sorted(MODELS)), default="lab2025_cnn", show_default=True)
@click.option("--width", default=20, show_default=True, help="Filters of lab2023_cnn.")
def main(name: str, width: int) -> None:
    """Print the layer table of a model."""
    click.echo(format_summary(summary(build_numpy(get_spec(name, width), rng=placeholder()))))


if __name__ == "__main__":
    main()
