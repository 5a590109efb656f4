"""Running a series' experiments on DVC's queue: finished ones are kept, interrupted ones resume.

A series can be run again: each (row, seed) whose experiment already finished with the same code (on
this commit or a recent one), parameters and targets is kept, an interrupted one resumes from its last
finished epoch (the train stage keeps a queued run's checkpoint in the real repository), ``force`` reruns
every one.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import click

from lablib.experiments.config import ExperimentError, Row, set_args
from lablib.experiments.store import (
    Experiment,
    dvc,
    expected_params,
    params_mismatch,
    ran_head_code,
    run_message,
    run_record,
    short_commit,
    show_experiments,
    stages_run,
)
from lablib.params import FRAMEWORKS

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PENDING = ("Queued", "Running")
# Polls in a row without a live queue worker, while rows are pending, before the wait gives up.
NO_WORKER_POLLS = 12


def reusable(row: Row, experiment: Experiment, expected: Mapping[str, object]) -> bool:
    """A finished experiment that ran exactly this row: same code, same parameters (the seed among them),
    same targets."""
    if not experiment.finished or params_mismatch(experiment, expected) is not None:
        return False
    record = run_record(experiment.rev)
    return "targets" in record and tuple(record["targets"]) == row.targets and ran_head_code(experiment, row.targets)


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


def run_series(
    series: str,
    rows: Sequence[Row],
    jobs: int,
    force: bool,
    poll_seconds: float,
    params_path: Path = Path("params.yaml"),
) -> None:
    """Queue the experiments that have not finished (all with ``force``), run the queue, wait for them.

    When the experiments left are no more than half the workers, each that trains both frameworks
    first trains them side by side, as experiments of their own (``<name>-train_numpy``,
    ``<name>-train_torch``); it then finds both trainings in DVC's run cache and only evaluates. Its
    numbers are the same either way, in half the wall time.
    """
    threads = thread_share(jobs)
    experiments = show_experiments()
    left = [row for row in rows if _plan(row, experiments, force, params_path)[0] == "queue"]
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


def _plan(row: Row, experiments: Sequence[Experiment], force: bool, params_path: Path) -> tuple[str, Experiment | None]:
    """What the runner does with a row: ``kept`` (finished earlier), ``wait`` (running), ``queue``, with the
    experiment kept or waited for; a row running with other parameters or code is an error."""
    same_name = [exp for exp in experiments if exp.name == row.name]
    expected = expected_params(params_path, row.settings)
    kept = None if force else next((exp for exp in same_name if reusable(row, exp, expected)), None)
    if kept is not None:
        return "kept", kept
    running = next((exp for exp in same_name if exp.running and exp.task), None)
    if running is None:
        return "queue", None
    if params_mismatch(running, expected) is None and ran_head_code(running, row.targets):
        return "wait", running
    raise ExperimentError(
        f"{row.name} is running on the queue (on commit {short_commit(running.baseline)}) with other parameters "
        f"or code; wait for it or `dvc queue kill {running.task[:7]}`"
    )


def _queue(series: str, rows: Sequence[Row], jobs: int, threads: int, force: bool, params_path: Path) -> dict[str, str]:
    """Queue each row that needs running; returns the tasks to wait for (id -> experiment name)."""
    experiments = show_experiments()
    known_tasks = {exp.task for exp in experiments}
    tasks: dict[str, str] = {}
    for row in rows:
        same_name = [exp for exp in experiments if exp.name == row.name]
        plan, found = _plan(row, experiments, force, params_path)
        if plan == "kept":
            click.echo(
                f"{row.name}: finished earlier (on commit {short_commit(found.baseline)}) with the same code, "
                "parameters and targets; kept"
            )
            continue
        if plan == "wait":
            click.echo(f"{row.name}: already running on the queue; waiting for it")
            tasks[found.task] = row.name
            continue
        for stale in (exp for exp in same_name if exp.state == "queued" and exp.task):
            dvc("queue", "remove", stale.task[:7], capture=True)  # left by an interrupted series: queued anew
        message = run_message(series, row, jobs, threads)
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
