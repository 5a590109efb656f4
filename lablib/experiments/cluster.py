"""A series on a Dask cluster: each experiment (row x seed) a task on any worker, back as a DVC experiment.

The scheduler (``--scheduler ADDRESS``, or ``--local N`` for a ``LocalCluster`` of N single-thread
workers) hands each experiment to a worker, which runs it in its own clone of the series' commit
(:mod:`lablib.experiments.worker`). The experiments come back one of two ways:

* through a shared filesystem (the default): the workers clone this repository by its path and push
  each experiment into it, its outputs into its DVC cache, so ``dvc exp show`` lists them at once;
* through the project's remotes (``--git-remote NAME``): the workers clone from git remote NAME, which
  must hold the series' commit, and push each experiment there, its outputs to the DVC default remote;
  this runner then pulls each one (``dvc exp pull``).

Either way the series table is then built from ``dvc exp show`` exactly as after DVC's local queue:
the experiments have the same names and the same commit messages (the run record). Finished ones are
kept as the local runner keeps them. The scheduler reschedules the experiment of a worker that was lost
(the attempt that takes it over resumes from its checkpoint where it reaches the lost one's clone), and
retries a task that raised (a clone or a push that failed); an experiment that fails (a bad override)
is reported with its row and seed once the others have finished.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lablib.dask_cluster import threads_of
from lablib.experiments.config import ExperimentError, Row
from lablib.experiments.queue import reusable
from lablib.experiments.store import (
    code_digest,
    dvc,
    expected_params,
    git,
    run_message,
    short_commit,
    show_experiments,
)
from lablib.experiments.worker import TOPIC, Job, Outcome, run_job

if TYPE_CHECKING:
    from distributed import Client, Future

RETRIES = 2  # a task that raised (a clone or a push that failed) runs again this many times
# Files the workers take from the commit, not from this workspace: a change to them would not run there.
RUN_FROM_COMMIT = ("params.yaml", "dvc.yaml")


def run_on_cluster(
    client: Client,
    series: str,
    rows: Sequence[Row],
    force: bool,
    params_path: Path,
    threads: int,
    git_remote: str | None,
    workdir: str | None,
) -> list[Outcome]:
    """Run the experiments of ``rows`` not finished yet (all with ``force``) as tasks of ``client``'s cluster,
    ``threads`` threads each; returns how each ended. Any that failed is an error, raised after the others."""
    commit = git("rev-parse", "HEAD").strip()
    _refuse_uncommitted(rows)
    git_url, dvc_url = _shared() if git_remote is None else _remotes(git_remote, commit)
    if git_remote is not None:
        _pull_finished(git_remote, rows)
    left = rows if force else _not_kept(rows, params_path)
    if not left:
        return []
    jobs = max(1, threads_of(client))
    submission = uuid.uuid4().hex
    identity = {key: value for key in ("user.name", "user.email") if (value := _git_config(key))}
    by_key: dict[str, tuple[Row, Future]] = {}
    for row in left:
        job = Job(
            name=row.name,
            row=row.row,
            seed=row.seed,
            targets=row.targets,
            settings=dict(row.settings),
            message=run_message(series, row, jobs, threads),
            commit=commit,
            git_url=git_url,
            dvc_url=dvc_url,
            threads=threads,
            workdir=workdir,
            submission=submission,
            identity=identity,
        )
        future = client.submit(run_job, job, key=f"{row.name}-{submission[:8]}", pure=False, retries=RETRIES)
        by_key[future.key] = (row, future)
    where = f"git remote {git_remote}" if git_remote else "this repository, through the shared filesystem"
    click.echo(f"running {len(left)} experiments on the Dask cluster: {jobs} worker threads, {threads} threads a task;")
    click.echo(f"the workers clone commit {short_commit(commit)} and push each experiment back to {where}")
    client.subscribe_topic(TOPIC, _print_event(submission))
    try:
        return _collect(by_key, git_remote)
    finally:
        client.unsubscribe_topic(TOPIC)


def _collect(by_key: dict[str, tuple[Row, Future]], git_remote: str | None) -> list[Outcome]:
    """Each experiment's outcome as it finishes (pulled from the remotes where it went there); failures last."""
    from distributed import as_completed

    outcomes, failures = [], []
    for future in as_completed([future for _, future in by_key.values()]):
        row, _ = by_key[future.key]
        where = f"{row.name} (row {row.row}, seed {_seed(row)})"
        try:
            outcome = future.result()
        except Exception as error:  # a task that raised after its retries, or a worker lost too often
            failures.append(f"{where}: {type(error).__name__}: {error}")
            continue
        outcomes.append(outcome)
        if not outcome.ok:
            lines = [line for line in outcome.log.splitlines() if line.strip()]
            last = next((line for line in reversed(lines) if line.startswith("Error:")), lines[-1] if lines else "")
            failures.append(f"{where}: dvc exp run failed on {outcome.host}: {last}")
            click.echo(f"{row.name}: FAILED on {outcome.host}; its output ends:\n{outcome.log}")
            continue
        if git_remote is not None:
            dvc("exp", "pull", "-f", git_remote, row.name, capture=True)
        steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in outcome.seconds.items())
        click.echo(f"{row.name}: finished on {outcome.host} ({steps})")
    if failures:
        raise ExperimentError(
            f"{len(failures)} of {len(by_key)} experiments failed; the others finished and are kept: "
            + "; ".join(failures)
        )
    return outcomes


def _print_event(submission: str) -> Callable[[tuple[float, dict[str, Any]]], None]:
    """The handler that prints what the workers say about this submission's experiments as they say it."""

    def handler(event: tuple[float, dict[str, Any]]) -> None:
        _, message = event
        if message.get("submission") != submission:
            return
        if message["state"] == "started":
            click.echo(f"{message['experiment']}: started on {message['host']}")
        elif message["state"] == "note":
            click.echo(f"{message['experiment']}: {message['note']}")

    return handler


def _not_kept(rows: Sequence[Row], params_path: Path) -> list[Row]:
    """The rows without an experiment that finished with the same code, parameters and targets (which are kept)."""
    experiments = show_experiments()
    left = []
    for row in rows:
        expected = expected_params(params_path, row.settings)
        kept = next((exp for exp in experiments if exp.name == row.name and reusable(row, exp, expected)), None)
        if kept is None:
            left.append(row)
        else:
            click.echo(
                f"{row.name}: finished earlier (on commit {short_commit(kept.baseline)}) with the same code, "
                "parameters and targets; kept"
            )
    return left


def _refuse_uncommitted(rows: Sequence[Row]) -> None:
    """The workers run the commit: code, ``params.yaml`` or ``dvc.yaml`` changed since are refused."""
    for targets in {row.targets for row in rows}:
        code_digest(targets)  # refuses code changed since the last commit
    changed = git("status", "--porcelain", "--untracked-files=no", "--", *RUN_FROM_COMMIT)
    if changed.strip():
        files = ", ".join(line[3:] for line in changed.splitlines())
        raise ExperimentError(
            f"{files} changed since the last commit, and the workers run the commit: commit it first, or run the "
            "series on the local queue"
        )


def _shared() -> tuple[str, str]:
    """Through a shared filesystem: this repository by its path, and its DVC cache as the workers' remote."""
    root = git("rev-parse", "--show-toplevel").strip()
    cache = dvc("cache", "dir", capture=True).strip()
    return root, str(Path(cache).resolve())


def _remotes(git_remote: str, commit: str) -> tuple[str, str]:
    """Through the project's remotes: git remote ``git_remote``'s URL, which must hold ``commit``, and the DVC
    default remote's, relative paths made absolute (a worker's clone lies elsewhere)."""
    remotes = git("remote").split()
    if git_remote not in remotes:
        raise ExperimentError(
            f"no git remote {git_remote!r} (remotes: {', '.join(remotes) or 'none'}); add it with `git remote add "
            f"{git_remote} URL`, or leave --git-remote out to go through a shared filesystem"
        )
    git_url = git("remote", "get-url", git_remote).strip()
    root = Path(git("rev-parse", "--show-toplevel").strip())
    if "://" not in git_url and ":" not in git_url.split("/")[0] and not Path(git_url).is_absolute():
        git_url = str((root / git_url).resolve())
    git("fetch", "-q", git_remote)
    if not git("branch", "-r", "--list", f"{git_remote}/*", "--contains", commit).strip():
        raise ExperimentError(
            f"commit {short_commit(commit)} is not on git remote {git_remote}, where the workers clone it from: "
            f"push it first (git push {git_remote})"
        )
    name = dvc("remote", "default", capture=True).strip()
    if not name:
        raise ExperimentError("no default DVC remote for the workers to push outputs to: `dvc remote add -d NAME URL`")
    dvc_url = dvc("config", f"remote.{name}.url", capture=True).strip()
    if "://" not in dvc_url and not Path(dvc_url).is_absolute():
        dvc_url = str((root / ".dvc" / dvc_url).resolve())
    return git_url, dvc_url


def _pull_finished(git_remote: str, rows: Sequence[Row]) -> None:
    """Pull the experiments of ``rows`` that a run cut short pushed to the remote and this repository lacks."""
    local = {exp.name for exp in show_experiments()}
    remote = set(dvc("exp", "list", "--name-only", git_remote, capture=True).split())
    missing = [row.name for row in rows if row.name in remote and row.name not in local]
    if missing:
        dvc("exp", "pull", git_remote, *missing, capture=True)


def _git_config(key: str) -> str:
    """A git setting of this repository, or "" where unset."""
    try:
        return git("config", key).strip()
    except ExperimentError:
        return ""


def _seed(row: Row) -> str:
    return "of params.yaml" if row.seed is None else str(row.seed)
