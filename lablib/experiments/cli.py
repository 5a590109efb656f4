"""The command line of presets and series.

python -m lablib.experiments preset lab2023 [--quick]
python -m lablib.experiments series report001 --jobs 2 [--quick] [--force] [--rows baseline,kfold]
python -m lablib.experiments series report001 --scheduler tcp://host:8786 [--git-remote origin] [--threads 1]
python -m lablib.experiments table report001 [--quick]
python -m lablib.experiments equivalent 80a771d --evidence "a fresh clone's make repro at HEAD: ..."
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import pandas as pd
from click.core import ParameterSource

from lablib.dask_cluster import ClusterError, connect
from lablib.experiments.cluster import run_on_cluster
from lablib.experiments.config import (
    ExperimentError,
    Row,
    load_experiments,
    preset_run,
    series_rows,
    series_spec,
    set_args,
)
from lablib.experiments.equivalence import RECORD, append_entries, new_entries
from lablib.experiments.queue import run_series
from lablib.experiments.store import code_digest, dvc, expected_params, params_digest, short_commit, show_experiments
from lablib.experiments.tables import carried, commits, read_earlier, seed_table, summarise, write_tables

PARAMS = Path("params.yaml")


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
    """Run preset NAME as the DVC experiment NAME (NAME-quick with --quick), on the preset's targets."""
    try:
        overrides, targets = preset_run(load_experiments(config), name, quick)
        exp_name = f"{name}{'-quick' if quick else ''}"
        dvc("exp", "run", *(["--queue"] if queue else []), "-n", exp_name, *targets, *set_args(overrides))
    except ExperimentError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.argument("name")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(1), help="Queue workers.")
@click.option("--quick", is_flag=True, help="A subset and two epochs: see the mechanism work in minutes.")
@click.option("--force", is_flag=True, help="Rerun every row, also those that finished with the same parameters.")
@click.option("--rows", default="", help="Only these rows, comma-separated (each machine can run its part).")
@click.option("--poll-seconds", default=5.0, show_default=True, type=click.FloatRange(0.1), help="Queue polling.")
@click.option("--out", default="reports/experiments", show_default=True, type=click.Path(path_type=Path))
@click.option(
    "--scheduler",
    help="Run each experiment as a task of the Dask cluster whose scheduler is at this address (tcp://host:8786), "
    "instead of DVC's queue: each worker runs it in its own clone of HEAD's commit and pushes it back as a DVC "
    "experiment, through the shared filesystem (this repository and its cache) or, with --git-remote, the remotes.",
)
@click.option(
    "--local", "local_workers", type=click.IntRange(1), help="As --scheduler, on a Dask LocalCluster of N workers."
)
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1), help="On Dask: threads a task.")
@click.option(
    "--git-remote",
    help="On Dask: the workers clone from and push to this git remote, the outputs to the DVC default remote, and "
    "the experiments are pulled from there (for workers that do not share this filesystem).",
)
@click.option(
    "--workdir",
    help="On Dask: the folder of each experiment's clone on a worker [default: its temporary folder]; a shared "
    "one lets a task taken over from a lost worker on another machine resume from its checkpoint.",
)
@click.pass_obj
def series(
    config_path: Path,
    name: str,
    jobs: int,
    quick: bool,
    force: bool,
    rows: str,
    poll_seconds: float,
    out: Path,
    scheduler: str | None,
    local_workers: int | None,
    threads: int,
    git_remote: str | None,
    workdir: str | None,
) -> None:
    """Run the rows of series NAME, each with each of its seeds, on DVC's queue with JOBS workers (or on a
    Dask cluster: --scheduler, --local), wait, and write its table.

    Experiments that finished earlier on this commit with the same parameters and targets are kept;
    the others run, interrupted ones resuming from their last finished epoch.
    """
    try:
        on_dask = scheduler is not None or local_workers is not None
        _check_where(on_dask, scheduler, local_workers, click.get_current_context())
        # The cluster is reached first: an unreachable scheduler is one message before anything is read or sent.
        with connect(scheduler, local_workers) if on_dask else contextlib.nullcontext() as client:
            config = load_experiments(config_path)
            selected = series_rows(config, name, quick, [row for row in rows.split(",") if row])
            earlier = read_earlier(out, _stem(name, quick))
            to_run = selected if force else [row for row in selected if not _ran_earlier(row, earlier)]
            if client is not None:
                run_on_cluster(client, name, to_run, force, PARAMS, threads, git_remote, workdir)
            else:
                run_series(name, to_run, jobs, force, poll_seconds, PARAMS)
        if rows:
            table = summarise(seed_table(selected, show_experiments(), PARAMS, earlier), _seeds(selected), None)
            click.echo(table.to_string(index=False))
            click.echo(f"these rows are done; once every row has run: python -m lablib.experiments table {name}")
        else:
            _write_series_table(config, name, quick, out)
    except (ExperimentError, ClusterError) as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.argument("name")
@click.option("--quick", is_flag=True, help="The table of the quick runs.")
@click.option("--out", default="reports/experiments", show_default=True, type=click.Path(path_type=Path))
@click.pass_obj
def table(config: Path, name: str, quick: bool, out: Path) -> None:
    """Write the table of series NAME from the experiments DVC already holds (with several seeds a row,
    from those that have finished)."""
    try:
        _write_series_table(load_experiments(config), name, quick, out)
    except ExperimentError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.argument("before")
@click.option("--evidence", required=True, help="How the two commits were shown to compute the same results.")
@click.pass_obj
def equivalent(config_path: Path, before: str, evidence: str) -> None:
    """Record that the code of commit BEFORE and of HEAD run the same program, for every target set of every
    series, so that their tables keep the experiments run on BEFORE. Write it only with the evidence: a fresh
    clone's `make repro` at HEAD whose `dvc metrics diff BEFORE` moved nothing but timings."""
    try:
        config = load_experiments(config_path)
        targets = [row.targets for name in config["series"] for row in series_rows(config, name, quick=False)]
        for target_set in set(targets):
            code_digest(target_set)  # refuses code changed since the last commit
        entries = new_entries(targets, short_commit(before), short_commit(), code_digest, evidence)
        append_entries(entries)
    except ExperimentError as error:
        raise click.ClickException(str(error)) from None
    for entry in entries:
        click.echo(f"{' '.join(entry['targets']) or 'all'}: {entry['before']['code']} = {entry['after']['code']}")
    click.echo(f"{len(entries)} entries added to {RECORD}; commit it")


def _check_where(on_dask: bool, scheduler: str | None, local_workers: int | None, ctx: click.Context) -> None:
    """One place to run: DVC's queue (--jobs) or a Dask cluster (--scheduler or --local), not two."""
    if scheduler is not None and local_workers is not None:
        raise ExperimentError("give --scheduler or --local, not both")
    dask_only = ("threads", "git_remote", "workdir")
    if not on_dask and any(ctx.get_parameter_source(key) == ParameterSource.COMMANDLINE for key in dask_only):
        raise ExperimentError(
            "--threads, --git-remote and --workdir are for a Dask cluster: add --scheduler or --local"
        )
    if on_dask and ctx.get_parameter_source("jobs") == ParameterSource.COMMANDLINE:
        raise ExperimentError("--jobs sets DVC's queue workers; on a Dask cluster the workers are the cluster's")


def _seeds(rows: Sequence[Row]) -> Counter[str]:
    """How many seeds each row names."""
    return Counter(row.row for row in rows)


def _stem(name: str, quick: bool) -> str:
    return re.sub(r"[^\w-]", "_", f"{name}{'-quick' if quick else ''}")


def _ran_earlier(row: Row, earlier: pd.DataFrame | None) -> bool:
    """Whether the per-seed table written before holds ``row``, run with this code and these parameters."""
    expected = expected_params(PARAMS, row.settings)
    line = carried(earlier, row, code_digest(row.targets), params_digest(expected))
    if line is not None:
        click.echo(f"{row.name}: in the table, run on commit {line['commit']} with the same code and parameters; kept")
    return line is not None


def _write_series_table(config: Mapping[str, Any], name: str, quick: bool, out: Path) -> None:
    rows = series_rows(config, name, quick)
    stem = _stem(name, quick)
    per_seed = seed_table(rows, show_experiments(), PARAMS, read_earlier(out, stem))
    result = summarise(per_seed, _seeds(rows), series_spec(config, name).get("reference"))
    title = f"Series {name}{' (quick)' if quick else ''}, run on {commits(per_seed)}"
    paths = write_tables(per_seed, result, out, stem, title)
    click.echo(result.to_string(index=False))
    click.echo(f"written: {', '.join(map(str, paths))}")
