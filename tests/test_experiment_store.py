"""What the experiments store reads, and what a series table carries from one commit to another: the
parameters an experiment differs in, the code digest of a set of targets at a commit, and the experiments
and per-seed lines that ran the same code and parameters on an earlier commit.

The git repositories are small ones made here, with a four-stage ``dvc.yaml`` that DVC's own ``dvc dag``
reads: a few seconds in all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from lablib.experiments.config import ExperimentError, Row
from lablib.experiments.store import (
    RUN_RECORD,
    Experiment,
    code_digest,
    expected_params,
    params_digest,
    params_mismatch,
    ran_head_code,
)
from lablib.experiments.tables import carried, read_earlier, seed_table

PIPELINE = {
    "stages": {
        "prepare": {"cmd": "python prepare.py", "deps": ["prepare.py", "shared.py"], "outs": ["prepared"]},
        "train_numpy": {"cmd": "python train.py", "deps": ["train.py", "shared.py", "prepared"], "outs": ["model"]},
        "evaluate_numpy": {"cmd": "python evaluate.py", "deps": ["evaluate.py", "model"], "outs": ["scores"]},
        "report": {"cmd": "python report.py", "deps": ["report.py", "scores"], "outs": ["report.md"]},
    }
}
CODE = ("prepare.py", "shared.py", "train.py", "evaluate.py", "report.py")
PARAMS = {"lr": 0.1, "seed": 0, "data": {"subset": None, "kfold": 3}}
TRAIN = ("train_numpy",)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()


def commit(files: dict[str, str], message: str = "change") -> str:
    """Write ``files`` in the current repository and commit them; the new commit's hash."""
    for name, text in files.items():
        Path(name).write_text(text)
    git("add", "-A")
    git("commit", "-qm", message)
    return git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path, monkeypatch) -> str:
    """A git and DVC repository holding ``PIPELINE``, its code and ``params.yaml``, made the current
    directory; its one commit's hash."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    git("init", "-q")
    for key, value in (("user.email", "test@example.com"), ("user.name", "test"), ("commit.gpgsign", "false")):
        git("config", key, value)
    subprocess.run(["dvc", "init", "-q"], check=True)
    Path("dvc.yaml").write_text(yaml.safe_dump(PIPELINE))
    Path("params.yaml").write_text(yaml.safe_dump(PARAMS))
    return commit({name: f"# {name} 0\n" for name in (*CODE, "notes.md")}, "project")


def experiment(
    params: dict[str, Any],
    name: str = "s-a",
    baseline: str = "HEAD",
    rev: str | None = None,
    metrics: dict[str, float] | None = None,
) -> Experiment:
    """A finished experiment as ``dvc exp show`` gives it, run on commit ``baseline``."""
    return Experiment(name, rev or baseline, baseline, None, None, None, params, metrics or {})


def row(seed: int, name: str = "a") -> Row:
    """Row ``name`` of series s, run with ``seed`` and lr 0.2 up to ``train_numpy``."""
    return Row(name, seed, f"s-{name}-seed{seed}", {"lr": 0.2}, {"lr": 0.2, "seed": seed}, TRAIN)


def test_expected_params_are_params_yaml_flattened_under_the_rows_settings(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(PARAMS))
    expected = expected_params(path, {"lr": 0.2, "data": {"kfold": 5}, "data.subset": 100})
    assert expected == {"lr": 0.2, "seed": 0, "data.subset": 100, "data.kfold": 5}


def test_params_mismatch_names_the_first_parameter_that_differs():
    expected = {"lr": 0.2, "seed": 0, "data.subset": 100, "data.kfold": 5}
    assert params_mismatch(experiment(dict(expected)), expected) is None
    assert params_mismatch(experiment({**expected, "seed": 1}), expected) == "seed is 1, the row sets 0"
    both = experiment({**expected, "lr": 0.1, "seed": 1})
    assert params_mismatch(both, expected) == "lr is 0.1, the row sets 0.2", "the first in sorted order"
    lacking = {key: value for key, value in expected.items() if key != "data.kfold"}
    assert params_mismatch(experiment(lacking), expected) == "data.kfold is None, the row sets 5"
    assert params_mismatch(experiment({**expected, "width": 8}), expected) == "width is 8, the row sets None"


def test_the_code_digest_is_that_of_the_deps_of_the_stages_run_at_a_commit(repo):
    train, prepare, everything = code_digest(TRAIN), code_digest(("prepare",)), code_digest(())
    assert len({train, prepare, everything}) == 3, "each set of stages has its own code"
    commit({"notes.md": "# notes 1\n", "report.py": "# report 1\n"})
    assert (code_digest(TRAIN), code_digest(())) == (train, everything), "neither is code an experiment runs"
    commit({"train.py": "# train.py 1\n"})
    assert code_digest(TRAIN) != train
    assert code_digest(("prepare",)) == prepare, "train.py is no dep of prepare"
    assert code_digest(TRAIN, repo) == code_digest(TRAIN, "HEAD~1") == train, "the digest at an earlier commit"
    commit({"shared.py": "# shared.py 1\n"})
    assert code_digest(("prepare",)) != prepare


def test_uncommitted_code_is_refused(repo):
    Path("notes.md").write_text("# notes 1\n")
    Path("train.py").write_text("# train.py 1\n")
    assert code_digest(("prepare",)) == code_digest(("prepare",), repo), "neither file is prepare's code"
    with pytest.raises(ExperimentError, match=r"^train\.py changed since the last commit: commit the code first"):
        code_digest(TRAIN)


def test_an_experiment_of_an_earlier_commit_ran_heads_code_when_its_code_is_the_same(repo):
    changed = commit({"train.py": "# train.py 1\n"})
    commit({"notes.md": "# notes 1\n"})
    assert ran_head_code(experiment(PARAMS, baseline=changed), TRAIN)
    assert not ran_head_code(experiment(PARAMS, baseline=repo), TRAIN)
    assert ran_head_code(experiment(PARAMS, baseline=repo), ("prepare",)), "prepare's code has not changed"


def test_a_line_of_an_earlier_table_is_carried_only_with_the_same_row_code_and_params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no record of equivalent code links these digests
    line = {
        "row": "a",
        "seed": 0,
        "commit": "0123456",
        "code": "012345678901",
        "params": "p0",
        "numpy test acc %": 90.0,
    }
    pd.DataFrame(
        [
            line,
            {**line, "code": "987654321098", "numpy test acc %": 10.0},
            {**line, "params": "p1", "numpy test acc %": 20.0},
            {**line, "row": "b", "numpy test acc %": 30.0},
        ]
    ).to_csv(tmp_path / "s-seeds.csv", index=False)
    earlier = read_earlier(tmp_path, "s")
    assert carried(earlier, row(0), "012345678901", "p0") == line, "its row, code and params, digests as text"
    assert carried(earlier, row(0), "210987654321", "p0") is None
    assert carried(earlier, row(0), "012345678901", "p2") is None
    assert carried(earlier.iloc[1:], row(0, "b"), "012345678901", "p0")["numpy test acc %"] == 30.0
    assert carried(earlier.iloc[:0], row(0), "012345678901", "p0") is None
    assert read_earlier(tmp_path, "other") is None and carried(None, row(0), "012345678901", "p0") is None


def test_a_seed_table_takes_experiments_and_earlier_lines_that_ran_heads_code(repo, tmp_path):
    same_code = commit({"train.py": "# train.py 1\n"})
    commit({"notes.md": "# notes 1\n"})
    record = RUN_RECORD + json.dumps({"targets": list(TRAIN), "jobs": 2, "threads": 1})
    ran = git("commit-tree", "HEAD^{tree}", "-p", same_code, "-m", f"s-a-seed0\n\n{record}")
    train_metrics, test_metrics = "dvclive/numpy/metrics.json:", "evaluation/numpy/metrics.json:"
    metrics = {f"{train_metrics}best_val_acc": 0.9, f"{train_metrics}mean_epoch_seconds": 1.5}
    expected = [expected_params(Path("params.yaml"), row(seed).settings) for seed in (0, 1)]
    experiments = [
        experiment(expected[0], "s-a-seed0", repo, metrics={**metrics, f"{train_metrics}best_val_acc": 0.5}),
        experiment(expected[0], "s-a-seed0", same_code, ran, {**metrics, f"{test_metrics}test_acc": 0.8}),
    ]
    code, other = code_digest(TRAIN), code_digest(TRAIN, repo)
    seed1 = {"row": "a", "seed": 1, "commit": "abc1234", "code": code, "params": params_digest(expected[1])}
    pd.DataFrame(
        [
            {**seed1, "numpy val acc %": 80.0},
            {**seed1, "code": other, "numpy val acc %": 10.0},
            {**seed1, "row": "b", "seed": 0, "code": other, "params": params_digest(expected[0])},
        ]
    ).to_csv(tmp_path / "s-seeds.csv", index=False)
    earlier = read_earlier(tmp_path, "s")
    table = seed_table([row(0), row(1)], experiments, Path("params.yaml"), earlier)
    assert table["seed"].tolist() == [0, 1]
    assert table["numpy val acc %"].tolist() == [90.0, 80.0], "seed 0 run on the same code, seed 1 carried"
    taken, kept = table.iloc[0], table.iloc[1]
    assert (taken["commit"], taken["code"], taken["params"]) == (
        git("rev-parse", "--short", same_code),
        code,
        params_digest(expected[0]),
    )
    assert (taken["jobs"], taken["threads per job"], taken["numpy s/epoch"]) == (2, 1, 1.5)
    assert pd.isna(taken["numpy test acc %"]), "evaluate_numpy is not among the stages its targets run"
    assert (kept["commit"], kept["code"]) == ("abc1234", code)
    with pytest.raises(ExperimentError, match=r"experiment s-b-seed0 not found in dvc exp show"):
        seed_table([row(0, "b")], experiments, Path("params.yaml"), earlier)
