"""Experiments end to end: a two-row series on DVC's queue with two workers, its table, and sharing
the cache through the DVC remote."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.pipeline.conftest import Workspace

pytestmark = pytest.mark.slow

SERIES = {
    "presets": {"tiny": {"model": "lab2023_cnn", "width": 4, "batch_size": 20, "sampling": "shuffle"}},
    "quick": {"data.subset": 200, "data.val_per_class": 10, "epochs": 1, "evaluate.feature_samples": 50},
    "series": {"lrs": {"preset": "tiny", "rows": {"small": {"lr": 0.001}, "large": {"lr": 0.02}}}},
}


@pytest.fixture(scope="module")
def repo(workspace_factory):
    ws = workspace_factory({"model": "lab2023_cnn", "width": 4, "batch_size": 20, "epochs": 1})
    (ws.root / "series.yaml").write_text(yaml.safe_dump(SERIES, sort_keys=False))
    ws.run("dvc", "repro")
    ws.commit("baseline")
    return ws


def test_series_runs_on_the_queue_and_tables_each_row(repo):
    result = repo.run(
        "python",
        "-m",
        "lablib.experiments",
        "--config",
        "series.yaml",
        "series",
        "lrs",
        "--jobs",
        "2",
        "--quick",
        "--out",
        "tables",
    )
    table = pd.read_csv(repo.root / "tables/lrs-quick.csv")
    assert table["row"].tolist() == ["small", "large"]
    assert table["overrides"].tolist() == ["lr=0.001", "lr=0.02"]
    for column in ("numpy val acc %", "torch val acc %"):
        assert table[column].between(0, 100).all(), result.stdout
    assert "lrs-small-quick" in (repo.root / "tables/lrs-quick.md").read_text() or "small" in result.stdout
    shown = json.loads(repo.run("dvc", "exp", "show", "--json").stdout)
    names = {rev.get("name") for commit in shown for exp in commit.get("experiments") or [] for rev in exp["revs"]}
    assert {"lrs-small-quick", "lrs-large-quick"} <= names


def test_applied_experiment_reproduces_its_metrics(repo):
    table = pd.read_csv(repo.root / "tables/lrs-quick.csv")
    repo.run("dvc", "exp", "apply", "lrs-large-quick")
    metrics = json.loads((repo.root / "dvclive/numpy/metrics.json").read_text())
    assert round(100 * metrics["best_val_acc"], 2) == table.loc[1, "numpy val acc %"]
    status = repo.run("dvc", "status")
    assert "up to date" in status.stdout, status.stdout


def test_push_and_pull_through_the_remote(repo, tmp_path):
    repo.run("dvc", "remote", "modify", "storage", "url", str(tmp_path / "remote"))
    repo.run("git", "init", "-q", "--bare", str(tmp_path / "origin.git"))
    repo.run("git", "remote", "add", "origin", str(tmp_path / "origin.git"))
    repo.commit("results")
    repo.run("git", "push", "-q", "origin", "main")
    repo.run("dvc", "push")
    repo.run("dvc", "exp", "push", "origin", "-A")
    clone = tmp_path / "clone"
    repo.run("git", "clone", "-q", "-b", "main", str(tmp_path / "origin.git"), str(clone))
    pulled = Workspace(clone, Path(repo.env["FASHION_MNIST_DIR"]))
    pulled.run("dvc", "pull")
    for path in ("data/prepared/train_images.npy", "models/numpy.npz", "models/torch.npz"):
        assert (clone / path).read_bytes() == (repo.root / path).read_bytes(), path
    assert "up to date" in pulled.run("dvc", "status").stdout
    pulled.run("dvc", "exp", "pull", "origin", "-A")
    assert "lrs-small-quick" in pulled.run("dvc", "exp", "show", "--all-commits", "--json").stdout


def test_preset_runs_as_a_named_experiment(repo):
    repo.run("python", "-m", "lablib.experiments", "--config", "series.yaml", "preset", "tiny", "--quick")
    shown = json.loads(repo.run("dvc", "exp", "show", "--json").stdout)
    names = {rev.get("name") for commit in shown for exp in commit.get("experiments") or [] for rev in exp["revs"]}
    assert "tiny-quick" in names


def test_unknown_preset_and_series_are_named(repo):
    result = repo.run("python", "-m", "lablib.experiments", "--config", "series.yaml", "preset", "nope", check=False)
    assert result.returncode == 1 and "no preset 'nope'; presets: tiny" in result.stderr
    result = repo.run("python", "-m", "lablib.experiments", "--config", "series.yaml", "series", "nope", check=False)
    assert result.returncode == 1 and "no series 'nope'; series: lrs" in result.stderr
