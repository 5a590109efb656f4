"""Stage report: reports/report.md and its figures, regenerated from the run the pipeline just made."""

from pathlib import Path

import click

from lablib.report import RunPaths, write_report
from stages import RESTORE, user_errors

DirPath = click.Path(file_okay=False, path_type=Path)


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True, type=Path)
@click.option("--prepared", default="data/prepared", show_default=True, type=DirPath)
@click.option("--raw", default="data/raw", show_default=True, type=DirPath, help="Holds provenance.json.")
@click.option(
    "--live",
    default="dvclive",
    show_default=True,
    type=DirPath,
    help="DVCLive logs, one folder per framework.",
)
@click.option(
    "--evaluation",
    default="evaluation",
    show_default=True,
    type=DirPath,
    help="One folder per framework (metrics.json, confusion.csv, features.npz) and cross.json.",
)
@click.option(
    "--experiments",
    default="reports/experiments",
    show_default=True,
    type=DirPath,
    help="Tables of experiment series to include, when present.",
)
@click.option(
    "--config",
    default="experiments.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Presets and series, and the course reports' own results to compare with.",
)
@click.option("--out", default="reports", show_default=True, type=DirPath)
def main(
    params_path: Path,
    prepared: Path,
    raw: Path,
    live: Path,
    evaluation: Path,
    experiments: Path,
    config: Path,
    out: Path,
) -> None:
    """Write OUT/report.md and the PNG figures in OUT/figures/. Both are replaced only once everything
    has been produced, so a failure leaves the previous report as it was."""
    paths = RunPaths(params_path, prepared, raw, live, evaluation, experiments, config)
    with user_errors("report", RESTORE.format(stage="report")):
        written = write_report(paths, out)
    click.echo(f"report: {written[0]} and {len(written) - 1} figures in {written[1].parent}")


if __name__ == "__main__":
    main()
