"""Presets and ablation series as DVC experiments, and the tables that compare them.

``experiments.yaml`` holds the data: presets (parameter overrides that reproduce a report's
system) and series (rows of overrides on a preset). This module only turns them into ``dvc exp``
commands: DVC's own queue runs the rows, in parallel when asked, and ``dvc exp show --json`` is read
back with pandas into the series table.

    python -m lablib.experiments preset lab2023 [--quick]
    python -m lablib.experiments series report001 --jobs 2 [--quick]
    python -m lablib.experiments table report001 [--quick]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import pandas as pd
import yaml

from lablib.errors import LabError
from lablib.params import FRAMEWORKS

TRAIN_METRICS = "dvclive/{framework}/metrics.json"
EVAL_METRICS = "evaluation/{framework}/metrics.json"


class ExperimentError(LabError):
    """A preset or series that cannot be run or tabled."""


def load_experiments(path: Path = Path("experiments.yaml")) -> dict[str, Any]:
    if not path.is_file():
        raise ExperimentError(f"{path} not found: run from the repository root")
    return yaml.safe_load(path.read_text())


def set_args(overrides: Mapping[str, Any]) -> list[str]:
    """``-S key=value`` arguments, values written as YAML so that null, booleans and lists survive."""
    args = []
    for key, value in overrides.items():
        text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        args += ["-S", f"{key}={text}"]
    return args


def experiment_name(series: str, row: str, quick: bool) -> str:
    return f"{series}-{row}{'-quick' if quick else ''}"


def preset_overrides(config: Mapping[str, Any], preset: str, quick: bool) -> dict[str, Any]:
    presets = config["presets"]
    if preset not in presets:
        raise ExperimentError(f"experiments.yaml: no preset {preset!r}; presets: {', '.join(presets)}")
    return {**presets[preset], **(config["quick"] if quick else {})}


def row_overrides(config: Mapping[str, Any], series: str, row: str, quick: bool) -> dict[str, Any]:
    spec = series_spec(config, series)
    return {**config["presets"][spec["preset"]], **spec["rows"][row], **(config["quick"] if quick else {})}


def series_spec(config: Mapping[str, Any], series: str) -> Mapping[str, Any]:
    if series not in config["series"]:
        raise ExperimentError(f"experiments.yaml: no series {series!r}; series: {', '.join(config['series'])}")
    return config["series"][series]


def dvc(*args: str, capture: bool = False) -> str:
    result = subprocess.run(["dvc", *args], capture_output=capture, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip() if capture else "see the output above"
        raise ExperimentError(f"dvc {' '.join(args)} failed ({detail})")
    return result.stdout if capture else ""


def wait_for_queue(names: Sequence[str], poll_seconds: float = 5.0) -> dict[str, str]:
    """Block until every named task has left the queue; returns each one's final status."""
    while True:
        status = queue_status(dvc("queue", "status", capture=True))
        pending = [name for name in names if status.get(name) in (None, "Queued", "Running")]
        if not pending:
            return {name: status[name] for name in names}
        time.sleep(poll_seconds)


def queue_status(text: str) -> dict[str, str]:
    """Name -> status from ``dvc queue status``'s table (Task, Name, Created, Status)."""
    status = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[-1] in ("Queued", "Running", "Success", "Failed", "Removed"):
            status[fields[1]] = fields[-1]
    return status


def experiments_frame(show_json: str) -> pd.DataFrame:
    """One row per named experiment from ``dvc exp show --json``: flattened params and metrics."""
    records = []
    for commit in json.loads(show_json):
        for experiment in commit.get("experiments") or []:
            for rev in experiment.get("revs") or []:
                data = rev.get("data") or {}
                record = {"name": rev.get("name") or experiment.get("name"), "rev": rev.get("rev")}
                for kind in ("params", "metrics"):
                    for file, content in (data.get(kind) or {}).items():
                        flat = pd.json_normalize(content.get("data") or {}, sep=".")
                        for column, value in flat.iloc[0].items() if len(flat) else ():
                            record[f"{file}:{column}"] = value
                records.append(record)
    return pd.DataFrame.from_records(records)


def series_table(config: Mapping[str, Any], series: str, quick: bool, frame: pd.DataFrame) -> pd.DataFrame:
    """The series table: row, overrides, accuracy per framework, seconds per epoch, the reference."""
    spec = series_spec(config, series)
    rows = []
    for row, overrides in spec["rows"].items():
        name = experiment_name(series, row, quick)
        found = frame[frame["name"] == name] if "name" in frame else frame.iloc[0:0]
        if found.empty:
            raise ExperimentError(f"experiment {name} not found in dvc exp show; run the series first")
        exp = found.iloc[0]
        line: dict[str, Any] = {
            "row": row,
            "overrides": ", ".join(f"{k}={v}" for k, v in overrides.items()) or "(preset)",
        }
        for framework in FRAMEWORKS:
            train = TRAIN_METRICS.format(framework=framework)
            line[f"{framework} val acc %"] = _percent(exp.get(f"{train}:best_val_acc"))
            evaluation = EVAL_METRICS.format(framework=framework)
            line[f"{framework} test acc %"] = _percent(exp.get(f"{evaluation}:test_acc"))
            line[f"{framework} s/epoch"] = _number(exp.get(f"{train}:mean_epoch_seconds"))
        if "reference" in spec:
            line["report %"] = spec["reference"].get(row)
        rows.append(line)
    return pd.DataFrame(rows)


def _percent(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else round(100 * float(value), 2)


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 2)


def write_table(table: pd.DataFrame, out_dir: Path, stem: str, title: str) -> tuple[Path, Path]:
    """``<stem>.csv`` and ``<stem>.md`` in ``out_dir``, each replaced atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = f"### {title}\n\n{table.to_markdown(index=False, floatfmt='.2f')}\n"
    paths = (out_dir / f"{stem}.csv", out_dir / f"{stem}.md")
    for path, text in zip(paths, (table.to_csv(index=False), markdown), strict=True):
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(tmp, path)
    return paths


@click.group()
@click.option(
    "--config",
    default="experiments.yaml",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Presets and series.",
)
@click.pass_context
def main(ctx: click.Context, config: Path) -> None:
    """Run the presets and ablation series of experiments.yaml as DVC experiments."""
    ctx.obj = config


@main.command()
@click.argument("name")
@click.option("--quick", is_flag=True, help="A subset and two epochs: see the mechanism work in minutes.")
@click.option("--queue", is_flag=True, help="Only queue it; start with `dvc queue start`.")
@click.pass_obj
def preset(config: Path, name: str, quick: bool, queue: bool) -> None:
    """Run preset NAME as the DVC experiment NAME (NAME-quick with --quick)."""
    try:
        overrides = preset_overrides(load_experiments(config), name, quick)
        exp_name = f"{name}{'-quick' if quick else ''}"
        dvc("exp", "run", *(["--queue"] if queue else []), "-n", exp_name, *set_args(overrides))
    except ExperimentError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.argument("name")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(1), help="Queue workers.")
@click.option("--quick", is_flag=True, help="A subset and two epochs: see the mechanism work in minutes.")
@click.option("--out", default="reports/experiments", show_default=True, type=click.Path(path_type=Path))
@click.pass_obj
def series(config_path: Path, name: str, jobs: int, quick: bool, out: Path) -> None:
    """Queue every row of series NAME, run the queue with JOBS workers, wait, and write its table."""
    try:
        config = load_experiments(config_path)
        names = []
        for row in series_spec(config, name)["rows"]:
            exp_name = experiment_name(name, row, quick)
            dvc("exp", "run", "--queue", "-n", exp_name, *set_args(row_overrides(config, name, row, quick)))
            names.append(exp_name)
        dvc("queue", "start", "--jobs", str(jobs))
        statuses = wait_for_queue(names)
        failed = [exp for exp, status in statuses.items() if status != "Success"]
        if failed:
            raise ExperimentError(f"experiments failed: {', '.join(failed)}; see `dvc queue logs NAME`")
        _write_series_table(config, name, quick, out)
    except ExperimentError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.argument("name")
@click.option("--quick", is_flag=True, help="The table of the quick runs.")
@click.option("--out", default="reports/experiments", show_default=True, type=click.Path(path_type=Path))
@click.pass_obj
def table(config: Path, name: str, quick: bool, out: Path) -> None:
    """Write the table of series NAME from the experiments DVC already holds."""
    try:
        _write_series_table(load_experiments(config), name, quick, out)
    except ExperimentError as error:
        raise click.ClickException(str(error)) from None


def _write_series_table(config: Mapping[str, Any], name: str, quick: bool, out: Path) -> None:
    frame = experiments_frame(dvc("exp", "show", "--json", capture=True))
    result = series_table(config, name, quick, frame)
    stem = re.sub(r"[^\w-]", "_", f"{name}{'-quick' if quick else ''}")
    csv_path, md_path = write_table(result, out, stem, f"Series {name}{' (quick)' if quick else ''}")
    click.echo(result.to_string(index=False))
    click.echo(f"written: {md_path}, {csv_path}")


if __name__ == "__main__":
    main()
