"""A class checked on a Dask cluster: each hand-in a task on any worker, sealed and timed there as at home.

``python -m lablib.gradcheck FOLDER --scheduler ADDRESS`` sends each student's ``.py`` files (their bytes:
a worker need not see this filesystem) with the layers to check to the scheduler; a worker writes them
into a class folder of its own and checks them with :func:`~lablib.gradcheck.classroom.check_student`,
each check in its own sealed process (:mod:`lablib.gradcheck.sandbox`: bubblewrap where it starts on that
worker, the limits always) under the same time limit. The rows come back in the students' order, each
command naming the hand-in where it lies here, so the table, the grid and the feedback files are those of
a local run. The header names the weaker seal if the workers differed.
"""

from __future__ import annotations

import shlex
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from lablib.adapter.errors import AdapterError
from lablib.dask_cluster import ClusterError, connect
from lablib.gradcheck.feedback import Row
from lablib.gradcheck.sandbox import Limits, Sandbox, isolation

SPEC = 3  # the index of FILE:CLASS in a row's command: python -m lablib.gradcheck FILE:CLASS ...


def check_class(
    scheduler: str,
    folder: Path,
    students: Sequence[tuple[str, list[Path]]],
    layers: dict[str, list[dict[str, Any]]],
    network_arguments: list[str],
    sandbox: Sandbox,
    timeout: int,
    classroom: ModuleType,
) -> tuple[list[Row], Sandbox]:
    """The rows of every student's checks, run as Dask tasks of the cluster at ``scheduler``, and the sandbox
    as it ran (the weaker isolation where workers differed). ``classroom`` is
    :mod:`lablib.gradcheck.classroom`, whose ``check_student`` each task runs and whose ``reproduce`` names
    each command (passed in: it imports this module)."""
    try:
        with connect(scheduler) as client:
            run = uuid.uuid4().hex[:8]
            futures = []
            for student, files in students:
                root = folder / student if (folder / student).is_dir() else folder
                hand_in = {file.relative_to(root).as_posix(): file.read_bytes() for file in files}
                own = layers.get("*", []) + layers.get(student, [])
                args = (classroom.check_student, student, hand_in, own, network_arguments, sandbox.limits, timeout)
                key = f"gradcheck-{student}-{run}"
                futures.append((root, client.submit(check_hand_in, *args, key=key, pure=False)))
            rows, modes = [], set()
            for (student, _), (root, future) in zip(students, futures, strict=True):
                own_rows, mode, worker_root = future.result()
                here = [_as_here(row["command"], Path(worker_root), root, classroom.reproduce) for row in own_rows]
                rows += [{**row, "command": command} for row, command in zip(own_rows, here, strict=True)]
                modes.add(mode)
                click.echo(f"checked {student} ({mode})", err=True)
    except ClusterError as error:
        raise AdapterError(str(error)) from None
    return rows, replace(sandbox, mode="limits" if "limits" in modes else "bwrap")


def check_hand_in(
    check_student: Callable[..., list[Row]],
    student: str,
    files: dict[str, bytes],
    layers: list[dict[str, Any]],
    network_arguments: list[str],
    limits: Limits,
    timeout: int,
) -> tuple[list[Row], str, str]:
    """On a worker: one student's rows, their hand-in written into a class folder of this worker's and
    checked sealed as a local class run checks it, the isolation that sealed it, and where the hand-in lay."""
    with tempfile.TemporaryDirectory(prefix="lablib-class-") as tmp:
        folder = Path(tmp).resolve() / "class"
        root = folder / student
        for name, content in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(content)
        sandbox = Sandbox(isolation(), limits, folder)
        own_files = [root / name for name in files]
        rows = check_student(student, (root, own_files), layers, network_arguments, sandbox, timeout)
    return rows, sandbox.mode, str(root)


def _as_here(command: str, worker_root: Path, root: Path, reproduce: Callable[[list[str], Path], str]) -> str:
    """A row's command with the hand-in's file named where it lies on the grader's machine, not the worker's
    copy (as :func:`~lablib.gradcheck.classroom.reproduce` names it there)."""
    if not command:
        return command
    words = shlex.split(command)
    file, _, cls = words[SPEC].rpartition(":")
    here = root / Path(file).relative_to(worker_root)
    return reproduce([f"{here.name}:{cls}", *words[SPEC + 1 :]], here)
