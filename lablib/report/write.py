"""Writing the report: read the run, analyse, draw, render, then replace the old report in one step."""

from __future__ import annotations

from pathlib import Path

from lablib.atomic import staged_dir, staged_file
from lablib.report.analysis import tsne_map
from lablib.report.contents import FIGURES
from lablib.report.figures import draw_figures
from lablib.report.inputs import RunPaths, load_run
from lablib.report.text import render_markdown


def write_report(paths: RunPaths, out: Path, dpi: int = 110) -> list[Path]:
    """Write ``out/report.md`` and ``out/figures/*.png``; on any error both stay as they were."""
    run = load_run(paths)
    fmap = tsne_map(run.features, run.feature_labels, run.params.train.seed)
    made = draw_figures(run, fmap)
    text = render_markdown(run, fmap)
    with staged_dir(out / "figures") as staging, staged_file(out / "report.md") as markdown:
        for key, fig in made.items():
            fig.savefig(staging / FIGURES[key], dpi=dpi)
        markdown.write_text(text)
    return [out / "report.md", *(out / "figures" / name for key, name in FIGURES.items() if key in made)]
