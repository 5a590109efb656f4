"""What DVC holds: the experiments of the last commits (``dvc exp show --json``), the record the series
runner left in each one's commit message, the stages a set of targets runs, and the code they run."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from lablib.experiments.config import ExperimentError, Row, flatten
from lablib.experiments.equivalence import same_code

# The line of an experiment's commit message that records how the series runner ran it.
RUN_RECORD = "lablib-series: "
DIGEST_CHARS = 12
# The report stage reads the series tables themselves: its files are not code that made their numbers.
NOT_CODE_OF = ("report",)
# How many commits, HEAD first, hold the experiments the runner reads. One on an earlier commit counts where
# it ran the same code: a commit made while a series runs leaves the experiments finishing after it there.
RECENT_COMMITS = 10


@dataclass(frozen=True)
class Experiment:
    """One experiment of ``dvc exp show --json``."""

    name: str
    rev: str
    baseline: str  # the commit it ran on
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


def dvc(*args: str, capture: bool = False, env: Mapping[str, str] | None = None) -> str:
    result = subprocess.run(["dvc", *args], capture_output=capture, text=True, check=False, env=env)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip() if capture else "see the output above"
        raise ExperimentError(f"dvc {' '.join(args)} failed ({detail})")
    return result.stdout if capture else ""


def experiments_of(show_json: str) -> list[Experiment]:
    """Every experiment in ``dvc exp show --json``, newest commit first: queued, running, done or failed."""
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
                        baseline=commit["rev"],
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
    """The experiments of the last ``RECENT_COMMITS`` commits, HEAD's first."""
    return experiments_of(dvc("exp", "show", "--json", "--num", str(RECENT_COMMITS), capture=True))


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


def short_commit(rev: str = "HEAD") -> str:
    """A commit abbreviated as git does."""
    return git("rev-parse", "--short", rev).strip()


def run_message(series: str, row: Row, jobs: int, threads: int) -> str:
    """The commit message of a series' experiment: a line for people, then the record ``run_record`` reads back
    (its series, row, seed and targets, and how many jobs ran together with how many threads each)."""
    record = {"series": series, "row": row.row, "seed": row.seed, "targets": list(row.targets)}
    record.update({"jobs": jobs, "threads": threads})
    seed = "" if row.seed is None else f", seed {row.seed}"
    return f"{row.name}: series {series}, row {row.row}{seed}\n\n{RUN_RECORD}{json.dumps(record)}"


def run_record(rev: str) -> dict[str, Any]:
    """What the series runner wrote in an experiment's commit message (targets, jobs, threads); {} if none."""
    result = subprocess.run(["git", "log", "-1", "--format=%B", rev], capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        if line.startswith(RUN_RECORD):
            return json.loads(line.removeprefix(RUN_RECORD))
    return {}


def stages_run(targets: Sequence[str]) -> set[str]:
    """The stages ``dvc exp run TARGETS`` runs: each target and its ancestors (the whole pipeline if none)."""
    stages: set[str] = set()
    for target in targets or [""]:
        dot = dvc("dag", "--dot", *([target] if target else []), capture=True)
        stages.update(re.findall(r'^"([^"]+)";$', dot, flags=re.MULTILINE))
    return stages


def code_digest(targets: Sequence[str], commit: str = "HEAD", dvc_yaml: Path = Path("dvc.yaml")) -> str:
    """What identifies the code an experiment of ``targets`` runs: a digest of the git objects (at ``commit``)
    of every dependency in git of the stages it runs, as that commit's ``dvc.yaml`` names them (the
    workspace's for HEAD). Two commits with the same digest, or with digests the record of equivalent code
    links (:mod:`lablib.experiments.equivalence`), ran the same code: an experiment of one stands for the other."""
    pipeline = dvc_yaml.read_text() if commit == "HEAD" else git("show", f"{commit}:{dvc_yaml.as_posix()}")
    paths = _code_paths(tuple(targets), pipeline)
    if commit == "HEAD":
        changed = git("status", "--porcelain", "--untracked-files=no", "--", *paths)
        if changed.strip():
            files = ", ".join(line[3:] for line in changed.splitlines())
            raise ExperimentError(
                f"{files} changed since the last commit: commit the code first, so that the table names the code "
                "its experiments ran"
            )
    return hashlib.sha256(git("ls-tree", commit, "--", *paths).encode()).hexdigest()[:DIGEST_CHARS]


def ran_head_code(experiment: Experiment, targets: Sequence[str]) -> bool:
    """Whether ``experiment`` ran the code HEAD holds for ``targets``: on HEAD, or on a commit with the same code."""
    return same_code(code_digest(targets, experiment.baseline), code_digest(targets))


@cache  # keyed by the pipeline's text: each digest would otherwise ask `dvc dag` again
def _code_paths(targets: tuple[str, ...], pipeline: str) -> list[str]:
    stages = yaml.safe_load(pipeline)["stages"]
    return sorted(
        {
            dep
            for stage in stages_run(targets)
            if stage in stages and stage not in NOT_CODE_OF
            for dep in stages[stage].get("deps", [])
        }
    )


def params_digest(expected: Mapping[str, Any]) -> str:
    """A digest of the parameters an experiment runs with (``expected_params``)."""
    return hashlib.sha256(json.dumps(expected, sort_keys=True).encode()).hexdigest()[:DIGEST_CHARS]


def git(*args: str) -> str:
    """The output of a git command in the repository; a failure is one message."""
    result = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ExperimentError(f"git {args[0]} failed ({result.stderr.strip()}); run from the repository")
    return result.stdout
