"""The class check: every hand-in of a folder, each in its own process with a time limit, into one table.

A hand-in is a sub-folder or a single ``.py`` file per student, or, in one flat folder, the course's
files named with the student's id (``network_<id>.py``, ``layer_<id>.py``, notebooks and a report, never
run), grouped by id. The template fixes ``Network``'s interface, so the core of the table needs no
mapping: the first file that defines ``class Network`` is checked by :mod:`lablib.gradcheck.network`,
imported as :mod:`lablib.gradcheck.loader` imports a hand-in's file (inside its package, if any). A
small YAML file adds per-layer rows: under ``"*"`` the layers every student writes, under a student's
name that student's own, each entry as the command line would give it::

    "*":
      - {class: FullyConnected, twin: torch.nn.Linear, args: "20, 10", input: "4,20"}
    alice:
      - {class: Convolution, twin: torch.nn.Conv2d, args: "8, 3, 3", twin_args: "3, 8, 3", input: "2,12,12,3"}

Each check runs sealed by :mod:`lablib.gradcheck.sandbox`, in a private copy of the hand-in's files,
so a hand-in that does not import, raises, hangs, prints pages, or breaks a limit gets its own row with
the reason and never stops the others nor harms the grader's machine. Rows go to the screen as Markdown
with the grid of :mod:`lablib.gradcheck.feedback`, and with ``out`` to ``gradcheck.md``,
``gradcheck.csv``, ``grid.md`` and one ``feedback/<student>.md`` each.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import yaml
from tabulate import tabulate

from lablib.adapter.errors import AdapterError
from lablib.atomic import staged_file
from lablib.gradcheck.feedback import Row, grid, write_feedback
from lablib.gradcheck.result import Check
from lablib.gradcheck.sandbox import CPU_PER_SECOND, PROJECT, Limits, Sandbox, isolation, private_copy

MAX_LINES = 200  # a check that prints more than this has its output noted, not shown
LAYER_KEYS = {"class", "twin", "args", "twin_args", "input", "layout", "param", "target"}
COURSE_NETWORK = re.compile(r"network_(?P<id>\w+)\.py")  # the course's flat format: one id a student
HEADERS = ["student", "check", "verdict", "worst_error", "layer", "tensor", "reason"]

HandIn = tuple[Path, list[Path]]  # the folder a hand-in's files are relative to, and its .py files


def hand_ins(folder: Path) -> list[tuple[str, list[Path]]]:
    """Each student's name and the ``.py`` files of their hand-in, in name order: a sub-folder's, a single
    file, or the files of one id beside a ``network_<id>.py`` (each file to the longest id it ends with)."""
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith((".", "_")))
    ids = sorted((m["id"] for p in entries if p.is_file() and (m := COURSE_NETWORK.fullmatch(p.name))), key=len)
    grouped: dict[str, list[Path]] = {}
    taken: set[Path] = set()
    for student in reversed(ids):
        grouped[student] = [
            p for p in entries if p.suffix == ".py" and p.stem.endswith(f"_{student}") and p not in taken
        ]
        taken.update(grouped[student])
    for entry in entries:
        if entry.is_dir() or (entry.suffix == ".py" and entry not in taken):
            grouped[entry.stem] = sorted(entry.rglob("*.py")) if entry.is_dir() else [entry]
    return sorted(grouped.items())


def defining(files: list[Path], cls: str) -> Path | None:
    """The first of the hand-in's files that defines ``class cls``."""
    pattern = re.compile(rf"^class\s+{re.escape(cls)}\b", re.MULTILINE)
    return next((file for file in files if pattern.search(file.read_text(errors="replace"))), None)


def reproduce(arguments: Sequence[str], file: Path) -> str:
    """The command that reruns a check from the repository root (``arguments`` name the class in ``file``)."""
    file = file.resolve()
    shown = os.path.relpath(file, PROJECT) if file.is_relative_to(PROJECT) else str(file)
    spec = f"{shown}:{arguments[0].rpartition(':')[2]}"
    return shlex.join(["python", "-m", "lablib.gradcheck", spec, *arguments[1:]])


def run_check(
    arguments: Sequence[str], file: Path, hand_in: HandIn, sandbox: Sandbox, timeout: int
) -> tuple[Check, str]:
    """``python -m lablib.gradcheck ARGUMENTS`` sealed in a private copy of the hand-in, from ``file``'s folder:
    its check, read back from the JSON it writes, and a note on its output."""
    root, files = hand_in
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        verdict_file, output_file = work / "verdict.json", work / "output.txt"
        private_copy(files, root, work / "hand-in")
        cwd = work / "hand-in" / file.parent.relative_to(root)
        command = [sys.executable, "-m", "lablib.gradcheck", *arguments, "--json", str(verdict_file)]
        with output_file.open("wb") as output:
            status = sandbox.run(command, work, cwd, output, timeout)
        if status is None:
            return Check(failure="timeout", reason=f"no answer within {timeout} s"), ""
        lines = output_file.read_text(errors="replace").splitlines()
        note = f"printed {len(lines)} lines" if len(lines) > MAX_LINES else ""
        if verdict_file.is_file():
            return Check.from_json(verdict_file.read_text()), note
        last = next((line for line in reversed(lines) if line.strip()), "")
        reason = sandbox.limits.exceeded(status) or f"exit status {status}: {last[:200]}"
        return Check(failure="error", reason=reason), note


def layer_arguments(entry: dict[str, Any], file: Path) -> list[str]:
    """The command line of one mapping-file entry."""
    arguments = [f"{file.name}:{entry['class']}"]
    for key in ("twin", "args", "twin_args", "layout", "target"):
        if key in entry:
            arguments += [f"--{key.replace('_', '-')}", str(entry[key])]
    inputs = entry.get("input", [])
    for shape in [inputs] if isinstance(inputs, str) else inputs:
        arguments += ["--input", str(shape)]
    for param in entry.get("param", []):
        arguments += ["--param", str(param)]
    return arguments


def read_layers(path: str | None) -> dict[str, list[dict[str, Any]]]:
    """The mapping file: layers to check by student (``"*"``: every student)."""
    if path is None:
        return {}
    try:
        layers = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise AdapterError(f"--layers {path}: {error}") from None
    problems = [
        f"{student}: {entry!r}"
        for student, entries in layers.items()
        for entry in (entries if isinstance(entries, list) else [entries])
        if not isinstance(entry, dict) or "class" not in entry or set(entry) - LAYER_KEYS
    ]
    if not isinstance(layers, dict) or problems:
        raise AdapterError(
            f"--layers {path}: each student ('*' for all) lists layers as {{class: ..., twin: ..., args: ..., "
            f"input: ...}}; not {', '.join(problems) or type(layers).__name__}"
        )
    return layers


def row_of(student: str, check: str, result: Check, note: str = "", command: str = "") -> Row:
    """The class table's row of one check: its summary, the note on its output added to the reason, and the
    command that reproduces it."""
    summary = result.summary()
    reason = "; ".join(filter(None, [summary.pop("reason"), note]))
    return {"student": student, "check": check, **summary, "reason": reason, "command": command}


def check_student(
    student: str,
    hand_in: HandIn,
    layers: list[dict[str, Any]],
    network_arguments: list[str],
    sandbox: Sandbox,
    timeout: int,
) -> list[Row]:
    """The rows of one hand-in: its network, then each layer the mapping file names for it."""
    checks = [("network", "Network", lambda file: [f"{file.name}:Network", "--network", *network_arguments])]
    checks += [
        (f"layer {entry['class']}", entry["class"], functools.partial(layer_arguments, entry)) for entry in layers
    ]
    rows = []
    for check, cls, arguments_of in checks:
        file = defining(hand_in[1], cls)
        if file is None:
            rows.append(row_of(student, check, Check(failure="error", reason=f"no file defines class {cls}")))
            continue
        arguments = arguments_of(file)
        result, note = run_check(arguments, file, hand_in, sandbox, timeout)
        rows.append(row_of(student, check, result, note, reproduce(arguments, file)))
    return rows


def grade_class(
    folder: Path,
    layers_file: str | None,
    timeout: int,
    out: Path | None,
    inputs: Sequence[str],
    target: str | None,
    limits: dict[str, int] | None = None,
    scheduler: str | None = None,
) -> int:
    """Check every hand-in in ``folder``, each sealed (``limits`` overrides :class:`Limits`' defaults), here or
    as tasks of the Dask cluster at ``scheduler``; print the table and the grid, write them and each student's
    feedback under ``out``; 1 if any check did not pass."""
    students = hand_ins(folder)
    if not students:
        raise AdapterError(
            f"{folder} holds no hand-ins: one sub-folder or one .py file per student, or network_<id>.py files"
        )
    layers = read_layers(layers_file)
    sandbox = Sandbox(isolation(), Limits(cpu_seconds=CPU_PER_SECOND * timeout, **(limits or {})), folder)
    network_arguments = [arg for shape in inputs for arg in ("--input", shape)]
    network_arguments += ["--target", target] if target else []
    rows: list[Row] = []
    if scheduler is not None:  # Dask is imported only here: a local class run does not need it
        from lablib.gradcheck.cluster import check_class

        classroom = sys.modules[__name__]
        rows, sandbox = check_class(scheduler, folder, students, layers, network_arguments, sandbox, timeout, classroom)
    else:
        for student, files in students:
            click.echo(f"checking {student} ...", err=True)
            own = layers.get("*", []) + layers.get(student, [])
            root = folder / student if (folder / student).is_dir() else folder
            rows += check_student(student, (root, files), own, network_arguments, sandbox, timeout)
    markdown = tabulate(
        [[row[key] for key in HEADERS] for row in rows], headers=HEADERS, tablefmt="github", disable_numparse=True
    )
    failed = sum(row["verdict"] != "ok" for row in rows)
    summary = f"{len(students)} students, {len(rows)} checks, {failed} not passed"
    click.echo(f"{sandbox.describe()}\n\n{markdown}\n\n{summary}\n\n{grid(rows)}")
    if out is not None:
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=HEADERS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        with staged_file(out / "gradcheck.csv") as tmp:
            tmp.write_text(table.getvalue())
        with staged_file(out / "gradcheck.md") as tmp:
            tmp.write_text(f"{markdown}\n\n{summary}; {sandbox.describe()}\n")
        write_feedback(rows, out)
    return 1 if failed else 0
