"""The record of equivalent code: moved code keeps a series' experiments only where the record links the
two digests, with its evidence; any other change of code still reruns them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lablib.experiments import store
from lablib.experiments.config import ExperimentError, Row
from lablib.experiments.equivalence import RECORD, append_entries, new_entries, read_record, same_code
from lablib.experiments.tables import carried

PIPELINE = {"stages": {"train": {"cmd": "python -m code.train", "deps": ["code/train.py", "data.csv"]}}}


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def commit_files(root: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)
    return git(root, "rev-parse", "--short", "HEAD")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository whose one stage's code moves from one file to two between its two commits."""
    git(tmp_path, "init", "-q")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(store, "stages_run", lambda targets: {"train"})
    before = commit_files(
        tmp_path,
        {"dvc.yaml": yaml.safe_dump(PIPELINE), "code/train.py": "def f(): return 1\ndef g(): return 2\n"},
        "one file",
    )
    moved = {"stages": {"train": {**PIPELINE["stages"]["train"], "deps": ["code/f.py", "code/train.py", "data.csv"]}}}
    after = commit_files(
        tmp_path,
        {"dvc.yaml": yaml.safe_dump(moved), "code/train.py": "from code.f import f\ndef g(): return 2\n"}
        | {"code/f.py": "def f(): return 1\n"},
        "f moved",
    )
    return tmp_path, before, after


def per_seed(code: str) -> pd.DataFrame:
    return pd.DataFrame([{"row": "default", "seed": 0, "commit": "abc1234", "code": code, "params": "p1"}])


ROW = Row(row="default", seed=0, name="seeds-default-seed0", overrides={}, settings={"seed": 0}, targets=("train",))


def test_without_a_record_only_equal_digests_are_the_same_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert same_code("aaa", "aaa")
    assert not same_code("aaa", "bbb")


def test_the_record_links_digests_both_ways_and_through_chains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    entry = {"targets": ["train"], "evidence": "a fresh clone's make repro"}
    append_entries(
        [
            {**entry, "before": {"commit": "c1", "code": "aaa"}, "after": {"commit": "c2", "code": "bbb"}},
            {**entry, "before": {"commit": "c2", "code": "bbb"}, "after": {"commit": "c3", "code": "ccc"}},
        ]
    )
    assert same_code("aaa", "bbb") and same_code("bbb", "aaa") and same_code("aaa", "ccc")
    assert not same_code("aaa", "ddd")
    assert not same_code("ddd", "ccc")


def test_a_malformed_record_is_refused_with_the_file_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    RECORD.write_text("- targets: [train]\n  before: {commit: c1, code: aaa}\n  after: {commit: c2}\n")
    with pytest.raises(ExperimentError, match=str(RECORD)):
        read_record()
    RECORD.write_text(
        "- targets: [train]\n  before: {commit: c1, code: aaa}\n  after: {commit: c2, code: bbb}\n  evidence: ''\n"
    )
    with pytest.raises(ExperimentError, match="evidence"):
        same_code("aaa", "bbb")


def test_moved_code_changes_the_digest_and_keeps_experiments_only_once_recorded(repo):
    _, before, after = repo
    old, new = store.code_digest(("train",), before), store.code_digest(("train",))
    assert old != new
    assert carried(per_seed(old), ROW, new, "p1") is None

    entries = new_entries([("train",), ("train",)], before, after, store.code_digest, "make repro at the new commit")
    assert entries == [
        {
            "targets": ["train"],
            "before": {"commit": before, "code": old},
            "after": {"commit": after, "code": new},
            "evidence": "make repro at the new commit",
        }
    ]
    append_entries(entries)
    assert read_record() == entries
    line = carried(per_seed(old), ROW, new, "p1")
    assert line is not None and line["code"] == old  # the table keeps what the experiment ran
    assert carried(per_seed(old), ROW, new, "p2") is None  # other parameters still rerun
    assert carried(per_seed("another"), ROW, new, "p1") is None


def test_a_later_change_of_code_is_not_covered_by_the_record(repo):
    root, before, after = repo
    append_entries(new_entries([("train",)], before, after, store.code_digest, "make repro"))
    old = store.code_digest(("train",), before)
    commit_files(root, {"code/f.py": "def f(): return 3\n"}, "f changed")
    assert carried(per_seed(old), ROW, store.code_digest(("train",)), "p1") is None


def test_unchanged_code_needs_no_entry(repo):
    after = repo[2]
    assert new_entries([("train",)], after, after, store.code_digest, "nothing moved") == []
