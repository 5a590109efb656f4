"""One experiment of a series as a Dask task: run in its own clone of the series' commit, through DVC, and
sent back as a DVC experiment.

The task clones the series' commit from ``Job.git_url`` into ``<workdir>/<experiment>-<commit>-<digest>``
(the digest is of its settings and targets, so a clone serves one experiment only), runs ``dvc exp run -n
NAME -m MESSAGE TARGETS -S ...`` there with the name and commit message the local queue gives it, and
pushes it with ``dvc exp push``: its commit to ``Job.git_url``, its outputs to ``Job.dvc_url`` (the
project's own repository and cache through a shared filesystem, or its git and DVC remotes). The clone is
deleted once the experiment is pushed, or once it failed.

A worker lost mid-run leaves its clone behind. The scheduler gives the task to another worker; if that
worker reaches the clone (the same machine, or a shared ``workdir``), it ends what the lost attempt left
running there and runs DVC again in it, so the training resumes from its last finished epoch
(``checkpoints/<framework>.npz`` in the clone) and ends as an uninterrupted run would. Where the clone is
out of reach the experiment starts over, and the task says so. Each step is logged as a Dask event on
``TOPIC``, which the client prints as it comes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lablib.experiments.config import set_args
from lablib.experiments.queue import THREAD_VARIABLES

TOPIC = "lablib-series"
REMOTE = "lablib-series"  # the DVC remote the clone pushes its outputs to, set in its .dvc/config.local
GROUP = ".dvc/tmp/lablib-group"  # "<host> <process group>" of the attempt running DVC in a clone
LOG = ".dvc/tmp/lablib-run.log"  # DVC's output in a clone (.dvc/tmp is ignored, so no experiment holds it)
LOG_LINES = 20  # the lines of DVC's output a failed experiment reports
GONE_SECONDS = 30  # how long an earlier attempt's processes may take to die


@dataclass(frozen=True)
class Job:
    """What a worker needs to run one experiment: its name, row and seed, what it runs, the commit message
    the local queue would give it, the series' commit, where it comes from and goes to, and its threads."""

    name: str
    row: str
    seed: int | None
    targets: tuple[str, ...]
    settings: Mapping[str, Any]
    message: str
    commit: str
    git_url: str
    dvc_url: str
    threads: int
    workdir: str | None
    submission: str  # this run of the series, so that only its own earlier attempts count
    identity: Mapping[str, str] = field(default_factory=dict)  # git's user.name and user.email, where set


@dataclass(frozen=True)
class Outcome:
    """How an experiment ended on its worker: pushed or failed (with the end of DVC's output), what the task
    said about resuming, and the seconds of each step."""

    name: str
    host: str
    ok: bool
    note: str
    log: str
    seconds: Mapping[str, float]


def clone_dir(job: Job) -> Path:
    """Where the worker keeps the experiment's clone: the same path for every attempt of the same experiment."""
    digest = hashlib.sha256(json.dumps([job.settings, job.targets], sort_keys=True).encode()).hexdigest()[:8]
    root = Path(job.workdir) if job.workdir else Path(tempfile.gettempdir()) / "lablib-series"
    return root / f"{job.name}-{job.commit[:12]}-{digest}"


def run_job(job: Job) -> Outcome:
    """Run ``job`` on this worker: clone (or take over an earlier attempt's clone), run, push, clean up."""
    host, clone, started = socket.gethostname(), clone_dir(job), time.monotonic()
    earlier = _earlier_attempts(job)
    _event(job, "started", host=host)
    if clone.is_dir():
        _end_attempt(clone)
        note = _resume_note(clone)
    else:
        _clone(job, clone)
        note = f"started over: the clone of its attempt on {', '.join(earlier)} is out of reach here" if earlier else ""
    if note:
        _event(job, "note", note=note)
    cloned = time.monotonic()
    if not _has_experiment(clone, job.name):
        status = _run_dvc(job, clone)
        if status != 0:
            log = "\n".join(_read_log(clone).splitlines()[-LOG_LINES:])
            shutil.rmtree(clone, ignore_errors=True)
            return Outcome(job.name, host, False, note, log, {"clone": cloned - started})
    ran = time.monotonic()
    _command(clone, "dvc", "exp", "push", "-f", "-r", REMOTE, job.git_url, job.name)
    pushed = time.monotonic()
    log = _read_log(clone)
    shutil.rmtree(clone, ignore_errors=True)
    seconds = {"clone": cloned - started, "run": ran - cloned, "push": pushed - ran}
    return Outcome(job.name, host, True, note, log, seconds)


def _clone(job: Job, clone: Path) -> None:
    """A clone of the series' commit, its DVC remote the place the experiment's outputs go."""
    clone.parent.mkdir(parents=True, exist_ok=True)
    partial = clone.with_name(f".{clone.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    _command(clone.parent, "git", "clone", "-q", "--no-checkout", job.git_url, partial.name)
    _command(partial, "git", "checkout", "-q", "--detach", job.commit)
    for key, value in job.identity.items():
        _command(partial, "git", "config", key, value)
    _command(partial, "dvc", "remote", "add", "--local", "-f", REMOTE, job.dvc_url)
    partial.rename(clone)  # whole or absent: a clone found later is one an attempt ran in


def _run_dvc(job: Job, clone: Path) -> int:
    """``dvc exp run`` of the experiment in the clone, its process group recorded for a later attempt."""
    command = ["dvc", "exp", "run", "-n", job.name, "-m", job.message, *job.targets, *set_args(job.settings)]
    env = {**_env(), **dict.fromkeys(THREAD_VARIABLES, str(job.threads))}
    (clone / LOG).parent.mkdir(exist_ok=True)
    with (clone / LOG).open("ab") as log:
        process = subprocess.Popen(
            command, cwd=clone, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        (clone / GROUP).write_text(f"{socket.gethostname()} {process.pid}")
        return process.wait()


def _end_attempt(clone: Path) -> None:
    """Kill what a lost attempt left running in ``clone`` on this machine (its worker died, its DVC did not)."""
    record = clone / GROUP
    if not record.is_file():
        return
    host, group = record.read_text().split()
    if host != socket.gethostname():
        return  # another machine's: its processes died with its job, or cannot be reached from here
    with contextlib.suppress(ProcessLookupError):
        os.killpg(int(group), signal.SIGKILL)
    deadline = time.monotonic() + GONE_SECONDS
    while time.monotonic() < deadline:
        try:
            os.killpg(int(group), 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def _resume_note(clone: Path) -> str:
    """What an attempt taking over an earlier one's clone (its worker lost, or the task raised) resumes from."""
    epochs = []
    for checkpoint in sorted((clone / "checkpoints").glob("*.npz")):
        with np.load(checkpoint) as saved:
            epochs.append(f"{checkpoint.stem} after epoch {json.loads(str(saved['meta'][()]))['epoch']}")
    if not epochs:
        return "runs again in the clone of an earlier attempt (no epoch had finished there; finished stages are kept)"
    return f"resumes in the clone of an earlier attempt from its checkpoints: {', '.join(epochs)}"


def _has_experiment(clone: Path, name: str) -> bool:
    """Whether the clone already holds the experiment (an attempt lost while pushing it)."""
    refs = _command(clone, "git", "for-each-ref", "--format=%(refname)", "refs/exps/").split()
    return any(ref.rsplit("/", 1)[-1] == name for ref in refs)


def _earlier_attempts(job: Job) -> list[str]:
    """The workers' hosts of this experiment's earlier attempts in this submission, from the scheduler's events."""
    from distributed import get_client

    return [
        message["host"]
        for _, message in get_client().get_events(TOPIC)
        if message.get("submission") == job.submission
        and message.get("experiment") == job.name
        and message.get("state") == "started"
    ]


def _event(job: Job, state: str, **details: str) -> None:
    from distributed import get_worker

    message = {"submission": job.submission, "experiment": job.name, "state": state, **details}
    get_worker().log_event(TOPIC, message)


def _env() -> dict[str, str]:
    """The worker's environment, its own Python's tools (dvc, python) first on the PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "DVC_NO_ANALYTICS": "1"}


def _command(cwd: Path, *args: str) -> str:
    """A git or DVC command of the task; its failure raises, so that Dask retries the task."""
    result = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed in {cwd}: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def _read_log(clone: Path) -> str:
    path = clone / LOG
    return path.read_text(errors="replace") if path.is_file() else ""
