"""Presets and ablation series as DVC experiments, and the tables that compare them.

``experiments.yaml`` holds the data: presets (parameter overrides that reproduce a report's
system, optionally with the DVC targets to run) and series (rows of overrides on a preset). This
module only turns them into ``dvc exp`` commands: DVC's own queue runs the rows, in parallel when
asked, and ``dvc exp show --json`` is read back into the series table.

A series can be run again on the same commit: rows whose experiment already finished with the same
parameters and targets are kept, interrupted ones resume from their last finished epoch (the train
stage keeps a queued run's checkpoint in the real repository), ``--force`` reruns every row.

    python -m lablib.experiments preset lab2023 [--quick]
    python -m lablib.experiments series report001 --jobs 2 [--quick] [--force] [--rows baseline,kfold]
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import pandas as pd
import yaml

from lablib.errors import LabError
from lablib.params import FRAMEWORKS

TRAIN_METRICS = "dvclive/{framework}/metrics.json"
TEST_METRICS = "evaluation/{framework}/metrics.json"
# The line of an experiment's commit message that records how the series runner ran it.
RUN_RECORD = "lablib-series: "
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PENDING = ("Queued", "Running")
# Polls in a row without a live queue worker, while rows are pending, before the wait gives up.
NO_WORKER_POLLS = 12


class ExperimentError(LabError):
    """A preset or series that cannot be run or tabled."""


@dataclass(frozen=True)
class Row:
    """One row of a series: its experiment's name, the overrides it shows, all it sets, what it runs."""

    row: str
    name: str
    overrides: Mapping[str, Any]
    settings: Mapping[str, Any]
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Experiment:
    """One experiment of ``dvc exp show --json`` on the current commit."""

    name: str
    rev: str
    state: str | None  # the queue's state: queued, running, success, failed; None when not from the queue
    task: str | None
    pid: int | None  # the process that runs it, while it runs
    params: Mapping[str, Any]
    metrics: Mapping[str, Any]

    @property
    def finished(self) -> bool:
        return self.state in (None, "success")

    @property
    def running(self) -> bool:
        """Running now: DVC still says "running" for a task whose worker was killed, so ask the process."""
        if self.state != "running" or not self.pid:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, under another user
            pass
        return True


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


def split_targets(spec: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...] | None]:
    """A preset, series or row's parameter overrides, and its ``targets`` (None when it names none)."""
    overrides = {key: value for key, value in spec.items() if key != "targets"}
    targets = spec.get("targets")
    if targets is not None and not (isinstance(targets, list) and all(isinstance(t, str) for t in targets)):
        raise ExperimentError(f"experiments.yaml: targets must be a list of DVC stage names, got {targets!r}")
    return overrides, None if targets is None else tuple(targets)


def preset_run(config: Mapping[str, Any], preset: str, quick: bool) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A preset's overrides (with the quick ones under ``--quick``) and its DVC targets."""
    presets = config["presets"]
    if preset not in presets:
        raise ExperimentError(f"experiments.yaml: no preset {preset!r}; presets: {', '.join(presets)}")
    overrides, targets = split_targets(presets[preset] or {})
    return {**overrides, **(config["quick"] if quick else {})}, targets or ()


def series_spec(config: Mapping[str, Any], series: str) -> Mapping[str, Any]:
    if series not in config["series"]:
        raise ExperimentError(f"experiments.yaml: no series {series!r}; series: {', '.join(config['series'])}")
    return config["series"][series]


def series_rows(config: Mapping[str, Any], series: str, quick: bool, only: Sequence[str] = ()) -> list[Row]:
    """The rows of a series (those named in ``only`` when given), targets taken from row, series or preset."""
    spec = series_spec(config, series)
    unknown = [row for row in only if row not in spec["rows"]]
    if unknown:
        raise ExperimentError(
            f"series {series} has no row {', '.join(map(repr, unknown))}; rows: {', '.join(spec['rows'])}"
        )
    preset, preset_targets = preset_run(config, spec["preset"], quick=False)
    _, series_targets = split_targets({"targets": spec.get("targets")})
    rows = []
    for row, row_spec in spec["rows"].items():
        if only and row not in only:
            continue
        overrides, row_targets = split_targets(row_spec or {})
        rows.append(
            Row(
                row=row,
                name=experiment_name(series, row, quick),
                overrides=overrides,
                settings={**preset, **overrides, **(config["quick"] if quick else {})},
                targets=next(t for t in (row_targets, series_targets, preset_targets) if t is not None),
            )
        )
    return rows


def dvc(*args: str, capture: bool = False, env: Mapping[str, str] | None = None) -> str:
    result = subprocess.run(["dvc", *args], capture_output=capture, text=True, check=False, env=env)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip() if capture else "see the output above"
        raise ExperimentError(f"dvc {' '.join(args)} failed ({detail})")
    return result.stdout if capture else ""


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys, the form ``-S`` overrides take."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def experiments_on_head(show_json: str) -> list[Experiment]:
    """Every experiment of the current commit in ``dvc exp show --json``: queued, running, done or failed."""
    found = []
    for commit in json.loads(show_json):
        if commit.get("rev") == "workspace":
            continue
        for experiment in commit.get("experiments") or []:
            executor = experiment.get("executor") or {}
            for rev in (experiment.get("revs") or [])[:1]:
                data = rev.get("data") or {}
                found.append(
                    Experiment(
                        name=rev.get("name") or experiment.get("name") or "",
                        rev=rev["rev"],
                        state=executor.get("state"),
                        task=(executor.get("local") or {}).get("task_id"),
                        pid=(executor.get("local") or {}).get("pid"),
                        params=flatten((data.get("params") or {}).get("params.yaml", {}).get("data") or {}),
                        metrics={
                            f"{file}:{key}": value
                            for file, content in (data.get("metrics") or {}).items()
                            for key, value in flatten(content.get("data") or {}).items()
                        },
                    )
                )
    return found


def show_experiments() -> list[Experiment]:
    return experiments_on_head(dvc("exp", "show", "--json", capture=True))


def expected_params(params_path: Path, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters an experiment runs with: the workspace's ``params.yaml`` and the row's settings."""
    return {**flatten(yaml.safe_load(params_path.read_text())), **flatten(settings)}


def params_mismatch(experiment: Experiment, expected: Mapping[str, Any]) -> str | None:
    """The first parameter in which an experiment differs from the expected ones, or None."""
    for key in sorted(set(expected) | set(experiment.params)):
        ran, wanted = experiment.params.get(key), expected.get(key)
        if ran != wanted:
            return f"{key} is {ran!r}, the row sets {wanted!r}"
    return None


def head_commit() -> str:
    """The commit whose code the experiments on HEAD ran (their baseline), abbreviated as git does."""
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ExperimentError(f"git rev-parse HEAD failed ({result.stderr.strip()}); run from the repository")
    return result.stdout.strip()


def run_record(rev: str) -> dict[str, Any]:
    """What the series runner wrote in an experiment's commit message (targets, jobs, threads); {} if none."""
    result = subprocess.run(["git", "log", "-1", "--format=%B", rev], capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        if line.startswith(RUN_RECORD):
            return json.loads(line.removeprefix(RUN_RECORD))
    return {}


def reusable(row: Row, experiment: Experiment, expected: Mapping[str, Any]) -> bool:
    """A finished experiment that ran exactly this row: same parameters, same targets."""
    if not experiment.finished or params_mismatch(experiment, expected) is not None:
        return False
    record = run_record(experiment.rev)
    return "targets" in record and tuple(record["targets"]) == row.targets


def stages_run(targets: Sequence[str]) -> set[str]:
    """The stages ``dvc exp run TARGETS`` runs: each target and its ancestors (the whole pipeline if none)."""
    stages: set[str] = set()
    for target in targets or [""]:
        dot = dvc("dag", "--dot", *([target] if target else []), capture=True)
        stages.update(re.findall(r'^"([^"]+)";$', dot, flags=re.MULTILINE))
    return stages


def thread_share(jobs: int) -> int:
    """Each of ``jobs`` workers' share of the cores this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // jobs)


def queue_status(text: str) -> tuple[dict[str, str], int]:
    """``dvc queue status``: each task's status by its id (7 hex digits), and how many workers are alive."""
    tasks = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and re.fullmatch(r"[0-9a-f]{7}", fields[0]):
            tasks[fields[0]] = fields[-1]
    workers = re.search(r"Worker status: (\d+) active, (\d+) idle", text)
    return tasks, int(workers[1]) + int(workers[2]) if workers else 0


def wait_for_tasks(tasks: Mapping[str, str], poll_seconds: float) -> dict[str, str]:
    """Block until every task (id -> experiment name) has left the queue; returns name -> final status.

    Tasks are followed by id, so an earlier run of the same name cannot end the wait. When no
    worker is alive for ``NO_WORKER_POLLS`` polls in a row while tasks are still pending, the
    workers died (a known DVC failure mode) and the wait ends with what is left to do.
    """
    polls_without_worker = 0
    while True:
        status, workers = queue_status(dvc("queue", "status", capture=True))
        final = {name: status.get(task[:7], "Removed") for task, name in tasks.items()}
        pending = {name: state for name, state in final.items() if state in PENDING}
        if not pending:
            return final
        polls_without_worker = 0 if workers else polls_without_worker + 1
        if polls_without_worker >= NO_WORKER_POLLS:
            left = ", ".join(f"{name} ({state.lower()})" for name, state in pending.items())
            raise ExperimentError(
                f"no DVC queue worker is alive, yet {left} did not finish: the workers died. Finished rows are "
                "kept; run the same command again to run the rest (an interrupted training resumes from its "
                "last finished epoch)"
            )
        time.sleep(poll_seconds)


def series_table(
    rows: Sequence[Row], experiments: Sequence[Experiment], params_path: Path, spec: Mapping[str, Any]
) -> pd.DataFrame:
    """The series table: row, overrides, jobs, accuracy and seconds per epoch per framework, the reference.

    A row shows a metric only when its targets ran the stage that writes it; columns empty in every
    row are left out, so a NumPy-only series has no PyTorch columns.
    """
    finished = {exp.name: exp for exp in experiments if exp.finished}
    stages_of: dict[tuple[str, ...], set[str]] = {}
    lines = []
    for row in rows:
        exp = finished.get(row.name)
        if exp is None:
            raise ExperimentError(
                f"experiment {row.name} not found in dvc exp show; run the series first "
                "(or `dvc exp pull origin -A` where it ran elsewhere)"
            )
        mismatch = params_mismatch(exp, expected_params(params_path, row.settings))
        if mismatch:
            raise ExperimentError(f"experiment {row.name} ran other parameters ({mismatch}); run the series again")
        record = run_record(exp.rev)
        stages = stages_of.setdefault(row.targets, stages_run(row.targets))
        line: dict[str, Any] = {
            "row": row.row,
            "overrides": ", ".join(f"{k}={v}" for k, v in row.overrides.items()) or "(preset)",
            "targets": " ".join(row.targets) or "all",
            "jobs": record.get("jobs"),
            "threads per job": record.get("threads"),
        }
        for framework in FRAMEWORKS:
            train, test = TRAIN_METRICS.format(framework=framework), TEST_METRICS.format(framework=framework)
            trained, tested = f"train_{framework}" in stages, f"evaluate_{framework}" in stages
            line[f"{framework} val acc %"] = _percent(exp.metrics.get(f"{train}:best_val_acc") if trained else None)
            line[f"{framework} test acc %"] = _percent(exp.metrics.get(f"{test}:test_acc") if tested else None)
            line[f"{framework} s/epoch"] = _number(exp.metrics.get(f"{train}:mean_epoch_seconds") if trained else None)
        if "reference" in spec:
            line["report %"] = spec["reference"].get(row.row)
        lines.append(line)
    table = pd.DataFrame(lines).dropna(axis="columns", how="all")
    return table.drop(columns="targets") if (table["targets"] == "all").all() else table


def _percent(value: Any) -> float | None:
    return None if value is None else round(100 * float(value), 2)


def _number(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


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


def run_series(
    config: Mapping[str, Any],
    series: str,
    rows: Sequence[Row],
    jobs: int,
    force: bool,
    poll_seconds: float,
    params_path: Path = Path("params.yaml"),
) -> None:
    """Queue the rows that have no finished experiment (all with ``force``), run the queue, wait for them.

    When the rows left are no more than half the workers, each that trains both frameworks first
    trains them side by side, as experiments of their own (``<row>-train_numpy``, ``<row>-train_torch``);
    the row then finds both trainings in DVC's run cache and only evaluates. Its numbers are the same
    either way, in half the wall time.
    """
    threads = thread_share(jobs)
    experiments = show_experiments()
    left = [row for row in rows if _plan(row, experiments, force, params_path) == "queue"]
    if left and 2 * len(left) <= jobs:
        parts = [part for row in left for part in training_parts(row)]
        _run_tasks(_queue(series, parts, jobs, threads, force, params_path), jobs, threads, poll_seconds, "trainings")
    _run_tasks(_queue(series, rows, jobs, threads, force, params_path), jobs, threads, poll_seconds, "rows")


def training_parts(row: Row) -> list[Row]:
    """A row's training of each framework as a row of its own; none unless the row trains both."""
    stages = stages_run(row.targets)
    if not all(f"train_{framework}" in stages for framework in FRAMEWORKS):
        return []
    return [
        replace(row, row=f"{row.row}-{stage}", name=f"{row.name}-{stage}", targets=(stage,))
        for stage in (f"train_{framework}" for framework in FRAMEWORKS)
    ]


def _plan(row: Row, experiments: Sequence[Experiment], force: bool, params_path: Path) -> str:
    """What the runner does with a row: ``kept`` (finished earlier), ``wait`` (running), ``queue``;
    a row running with other parameters is an error."""
    same_name = [exp for exp in experiments if exp.name == row.name]
    expected = expected_params(params_path, row.settings)
    if not force and any(reusable(row, exp, expected) for exp in same_name):
        return "kept"
    running = [exp for exp in same_name if exp.running and exp.task]
    if running and params_mismatch(running[0], expected) is None:
        return "wait"
    if running:
        raise ExperimentError(
            f"{row.name} is running on the queue with other parameters; wait for it or `dvc queue kill {row.name}`"
        )
    return "queue"


def _queue(series: str, rows: Sequence[Row], jobs: int, threads: int, force: bool, params_path: Path) -> dict[str, str]:
    """Queue each row that needs running; returns the tasks to wait for (id -> experiment name)."""
    experiments = show_experiments()
    known_tasks = {exp.task for exp in experiments}
    tasks: dict[str, str] = {}
    for row in rows:
        same_name = [exp for exp in experiments if exp.name == row.name]
        plan = _plan(row, experiments, force, params_path)
        if plan == "kept":
            click.echo(f"{row.name}: finished earlier with the same parameters and targets; kept")
            continue
        if plan == "wait":
            click.echo(f"{row.name}: already running on the queue; waiting for it")
            task = next(exp.task for exp in same_name if exp.running and exp.task)
            tasks[task] = row.name
            continue
        for stale in (exp for exp in same_name if exp.state == "queued" and exp.task):
            dvc("queue", "remove", stale.task[:7], capture=True)  # left by an interrupted series: queued anew
        record = {"series": series, "row": row.row, "targets": list(row.targets), "jobs": jobs, "threads": threads}
        message = f"{row.name}: series {series}, row {row.row}\n\n{RUN_RECORD}{json.dumps(record)}"
        overwrite = ["-f"] if any(exp.finished for exp in same_name) else []
        dvc("exp", "run", "--queue", *overwrite, "-n", row.name, "-m", message, *row.targets, *set_args(row.settings))
    names = {row.name for row in rows}
    new = [exp for exp in show_experiments() if exp.task and exp.task not in known_tasks and exp.name in names]
    tasks.update({exp.task: exp.name for exp in new})
    return tasks


def _run_tasks(tasks: Mapping[str, str], jobs: int, threads: int, poll_seconds: float, what: str) -> None:
    """Start ``jobs`` queue workers with ``threads`` threads each and wait for ``tasks``; a failed one is an error."""
    if not tasks:
        return
    env = {**os.environ, **dict.fromkeys(THREAD_VARIABLES, str(threads))}
    started = re.search(r"Started '(\d+)'", dvc("queue", "start", "--jobs", str(jobs), capture=True, env=env))
    if started is None or int(started[1]) < jobs:
        click.echo(
            f"some of the {jobs} queue workers were already running; they keep their own thread settings "
            "(`dvc queue stop` ends them once idle)"
        )
    click.echo(f"running {len(tasks)} {what} on {jobs} queue workers, {threads} threads each")
    statuses = wait_for_tasks(tasks, poll_seconds)
    failed = {task: name for task, name in tasks.items() if statuses[name] != "Success"}
    if failed:
        logs = [f"{name} ({statuses[name].lower()}, log: `dvc queue logs {task[:7]}`)" for task, name in failed.items()]
        raise ExperimentError(f"{what} failed: {'; '.join(logs)}")


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
@click.pass_obj
def series(
    config_path: Path, name: str, jobs: int, quick: bool, force: bool, rows: str, poll_seconds: float, out: Path
) -> None:
    """Run the rows of series NAME on DVC's queue with JOBS workers, wait, and write its table.

    Rows that finished earlier on this commit with the same parameters and targets are kept;
    the others run, interrupted ones resuming from their last finished epoch.
    """
    try:
        config = load_experiments(config_path)
        selected = series_rows(config, name, quick, [row for row in rows.split(",") if row])
        run_series(config, name, selected, jobs, force, poll_seconds)
        if rows:
            table = series_table(selected, show_experiments(), Path("params.yaml"), series_spec(config, name))
            click.echo(table.to_string(index=False))
            click.echo(f"these rows are done; once every row has run: python -m lablib.experiments table {name}")
        else:
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
    rows = series_rows(config, name, quick)
    result = series_table(rows, show_experiments(), Path("params.yaml"), series_spec(config, name))
    stem = re.sub(r"[^\w-]", "_", f"{name}{'-quick' if quick else ''}")
    title = f"Series {name}{' (quick)' if quick else ''}, run on commit {head_commit()}"
    csv_path, md_path = write_table(result, out, stem, title)
    click.echo(result.to_string(index=False))
    click.echo(f"written: {md_path}, {csv_path}")


if __name__ == "__main__":
    main()
