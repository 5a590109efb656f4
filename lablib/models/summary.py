"""Report 000's Table 1 for any model: layer, parameters, input and output shape, and the total.

python -m lablib.models.summary --model lab2025_cnn
"""

from __future__ import annotations

from dataclasses import dataclass

import click
import numpy as np

from lablib.models.numpy_model import Classifier, build_numpy
from lablib.models.specs import MODELS, get_spec


@dataclass(frozen=True)
class SummaryRow:
    layer: str
    parameters: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


def summary(model: Classifier, input_shape: tuple[int, ...] = (1, 28, 28)) -> list[SummaryRow]:
    """One row per layer, in order, found by passing zeros through the model in eval mode."""
    model.eval()
    x = np.zeros((1, *input_shape), dtype=np.float32)
    rows = []
    for layer in [*model.features, *model.classifier]:
        y = layer(x)
        params = sum(p.data.size for p in layer.parameters())
        rows.append(SummaryRow(type(layer).__name__, params, x.shape[1:], y.shape[1:]))
        x = y
    return rows


def _shape(shape: tuple[int, ...]) -> str:
    return f"({', '.join(str(d) for d in shape)})"


def format_summary(rows: list[SummaryRow]) -> str:
    lines = [f"{'Layer Name':<12} {'Parameters':>12}  {'Input Shape':<15} {'Output Shape':<15}"]
    lines += [
        f"{r.layer:<12} {r.parameters:>12,}  {_shape(r.input_shape):<15} {_shape(r.output_shape):<15}" for r in rows
    ]
    lines.append(f"Total number of parameters: {sum(r.parameters for r in rows):,}")
    return "\n".join(lines)


def summary_markdown(rows: list[SummaryRow]) -> str:
    lines = ["| Layer | Parameters | Input shape | Output shape |", "| --- | ---: | --- | --- |"]
    lines += [f"| {r.layer} | {r.parameters:,} | {_shape(r.input_shape)} | {_shape(r.output_shape)} |" for r in rows]
    lines.append(f"| **Total** | **{sum(r.parameters for r in rows):,}** | | |")
    return "\n".join(lines)


@click.command()
@click.option("--model", "name", type=click.Choice(sorted(MODELS)), default="lab2025_cnn", show_default=True)
@click.option("--width", default=20, show_default=True, help="Filters of lab2023_cnn.")
def main(name: str, width: int) -> None:
    """Print the layer table of a model."""
    click.echo(format_summary(summary(build_numpy(get_spec(name, width), seed=0))))


if __name__ == "__main__":
    main()
