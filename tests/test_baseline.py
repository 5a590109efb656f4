"""The committed baseline: ``dvc.lock`` describes the code, parameters and results in git.

Everything is read from the commit (HEAD), not the working tree: a run of your own rewrites the
metrics, the report and ``dvc.lock`` there, as it should.

``dvc metrics diff`` compares a run with the metrics committed beside ``dvc.lock``, and a fresh
clone's ``make repro`` must reproduce them; both hold only while ``dvc.lock`` records the files the
repository holds. After changing a stage's code or parameters, run ``make repro`` and commit
``dvc.lock`` with the files it names (``git status`` lists them).
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, check=True).stdout


@functools.cache
def tracked_files() -> set[str]:
    return set(git("ls-tree", "-r", "--name-only", "HEAD").decode().splitlines())


@functools.cache
def committed(path: str) -> bytes:
    return git("show", f"HEAD:{path}")


def lock() -> dict[str, Any]:
    return yaml.safe_load(committed("dvc.lock"))["stages"]


def test_every_stage_is_locked():
    assert "dvc.lock" in tracked_files(), "dvc.lock is not committed: run `make repro` and commit it"
    assert set(lock()) == set(yaml.safe_load(committed("dvc.yaml"))["stages"])


def test_locked_files_in_git_are_the_committed_ones():
    """Code a stage imports, and outputs kept in git (metrics, plots' files, the report)."""
    tracked = tracked_files()
    stale: dict[str, list[str]] = {}
    for stage, entry in lock().items():
        for item in entry.get("deps", []) + entry.get("outs", []):
            in_git = item["path"] in tracked and "md5" in item  # not folders, not DVC-cached data
            if in_git and hashlib.md5(committed(item["path"])).hexdigest() != item["md5"]:
                stale.setdefault(item["path"], []).append(stage)
    named = "; ".join(f"{path} (stages {', '.join(stages)})" for path, stages in stale.items())
    assert not stale, f"dvc.lock records other versions of {named}: run `make repro` and commit dvc.lock"


def test_locked_parameters_are_params_yaml():
    params = yaml.safe_load(committed("params.yaml"))
    stale = []
    for stage, entry in lock().items():
        for key, value in entry.get("params", {}).get("params.yaml", {}).items():
            node: Any = params
            for part in key.split("."):
                node = node[part]
            if node != value:
                stale.append(f"{stage}: {key} is {node!r}, dvc.lock has {value!r}")
    assert not stale, "; ".join(stale) + "; run `make repro` and commit dvc.lock"
